"""Connections to the watched servers, through one helper per server.

Every session uses utf8mb4, ``time_zone='+00:00'`` and a dict cursor, with the
server's connect, read and write timeouts. On MariaDB, ``max_statement_time``
also stops a statement on the server once the client has given up on it.
Connecting retries with exponential backoff. Once a server is known to be down
each connection gets a single attempt, so checks fail fast until it is back.
"""

from __future__ import annotations

import functools
import logging
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gevent
import pymysql
import pymysql.connections
import pymysql.cursors
from pymysql.constants import ER

from encmond.config import ServerConfig, quote_identifier
from encmond.errors import DatabaseError, PrivilegeError, ServerUnavailable

log = logging.getLogger(__name__)

# Client and server error numbers that mean the connection, not the statement,
# failed: can't connect (2002, 2003), server gone or lost (2006, 2013, 2055),
# too many connections (1040), shutdown in progress (1053), idle disconnect (4031).
CONNECTION_ERRNOS = {1040, 1053, 2002, 2003, 2006, 2013, 2055, 4031}
LOGIN_ERRNOS = {ER.ACCESS_DENIED_ERROR}
PRIVILEGE_ERRNOS = {
    ER.SPECIFIC_ACCESS_DENIED_ERROR,
    ER.TABLEACCESS_DENIED_ERROR,
    ER.COLUMNACCESS_DENIED_ERROR,
    ER.DBACCESS_DENIED_ERROR,
    ER.PROCACCESS_DENIED_ERROR,
}
MAX_IDLE = 2


class Connection(pymysql.connections.Connection):
    """A PyMySQL connection that shares one context for unverified TLS.

    Without ``ssl`` options, PyMySQL 1.2 tries TLS without verifying the
    server's certificate, and builds a new default context for every
    connection. Loading the system's CA certificates into each context took
    31 ms per connection under cProfile on a 2-core VM, and no certificate
    is ever checked against them. ``ssl`` options still get their own
    verifying context.
    """

    def _create_ssl_ctx(self, sslp):
        if sslp:
            return super()._create_ssl_ctx(sslp)
        return unverified_context()


@functools.cache
def unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def error_number(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def error_text(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2:
        return str(args[1])
    return str(exc) or type(exc).__name__


def grant_for(errno: int, message: str, account: str) -> str:
    """Return the GRANT statement that fixes a privilege error."""
    if errno == ER.SPECIFIC_ACCESS_DENIED_ERROR:
        # "you need (at least one of) the SUPER, SLAVE MONITOR privilege(s)":
        # grant the narrowest one, never SUPER when another would do.
        match = re.search(r"the (.+?) privilege", message)
        choices = [p.strip() for p in match.group(1).split(",")] if match else []
        narrow = [p for p in choices if p != "SUPER"] or choices or ["PROCESS"]
        return f"GRANT {narrow[0]} ON *.* TO {account}"
    match = re.search(r"^(\w+) command denied .* for routine '(.+?)'$", message)
    if match:
        # encmond calls stored procedures only, never stored functions.
        command, routine = match.groups()
        target = ".".join(quote_identifier(part) for part in routine.split(".", 1))
        return f"GRANT {command.upper()} ON PROCEDURE {target} TO {account}"
    match = re.search(r"^(\w+) command denied .* for table [`']?(.+?)[`']?$", message)
    if match:
        command, table = match.groups()
        target = ".".join(quote_identifier(part) for part in table.split("`.`"))
        return f"GRANT {command} ON {target} TO {account}"
    match = re.search(r"to database '(.+?)'", message)
    if match:
        return f"GRANT SELECT ON {quote_identifier(match.group(1))}.* TO {account}"
    return f"GRANT SELECT ON *.* TO {account}"


class Session:
    """One connection, checked out of a Database for a series of statements."""

    def __init__(self, database: Database, connection: pymysql.Connection) -> None:
        self.database = database
        self.connection = connection
        self.in_query = False

    @property
    def thread_id(self) -> int:
        return self.connection.thread_id()

    def query(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        """Run one statement and return its rows as dicts (an empty list if none).

        ``in_query`` stays true when the statement may still run on the server
        (the client was interrupted, or gave up waiting at its read timeout),
        so that the session kills it there. After a lost connection it does
        not: a restarted server reuses thread ids.
        """
        self.in_query = True
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, args)
                rows = cursor.fetchall()
        except pymysql.MySQLError as exc:
            error = self.database.translate(exc, self)
            self.in_query = isinstance(error, ServerUnavailable) and (
                "timed out" in error_text(exc)
            )
            raise error from exc
        self.in_query = False
        return list(rows or [])

    def query_one(self, sql: str, args: Any = None) -> dict[str, Any] | None:
        rows = self.query(sql, args)
        return rows[0] if rows else None

    def value(self, sql: str, args: Any = None) -> Any:
        """Return the first column of the first row, or None without rows."""
        row = self.query_one(sql, args)
        return next(iter(row.values())) if row else None

    def current_account(self) -> str:
        user, _, host = (self.value("SELECT CURRENT_USER()") or "@").partition("@")
        return f"'{user}'@'{host}'"


class Database:
    """The helper for one configured server: sessions, retries, error mapping."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.name = config.name
        self.idle: list[pymysql.Connection] = []
        self.down_since: float | None = None
        self.last_error: str | None = None
        self.server_version: str | None = None
        # Which replica status statement this server accepted, once known:
        # replication.REPLICA, SLAVE or RDS_PROCEDURE.
        self.status_statement: str | None = None
        # The platform that platform.detect_platform found, once known.
        self.platform: str | None = None

    def __str__(self) -> str:
        return str(self.config)

    @property
    def is_mariadb(self) -> bool:
        return self.server_version is None or "mariadb" in self.server_version.lower()

    def connect(self, read_timeout: float | None = None) -> pymysql.Connection:
        """Open a connection, retrying with backoff unless the server is down."""
        config = self.config
        attempts = 1 if self.down_since is not None else config.retry_attempts
        delay = config.retry_delay
        for attempt in range(1, attempts + 1):
            try:
                connection = self.open(read_timeout or config.read_timeout)
            except pymysql.MySQLError as exc:
                if error_number(exc) not in CONNECTION_ERRNOS:
                    raise self.translate(exc) from exc
                self.last_error = error_text(exc)
                if attempt < attempts:
                    log.debug(
                        "%s: attempt %d of %d failed: %s; next in %g s",
                        self.name,
                        attempt,
                        attempts,
                        self.last_error,
                        delay,
                    )
                    time.sleep(delay)
                    delay *= 2
                continue
            self.mark_up()
            return connection
        self.mark_down()
        raise ServerUnavailable(
            self.name,
            f"unreachable at {config.host}:{config.port} after {attempts} "
            f"attempt{'s' if attempts > 1 else ''}: {self.last_error}",
        )

    def open(self, read_timeout: float) -> pymysql.Connection:
        config = self.config
        ssl = config.ssl or {}
        connection = Connection(
            host=config.host,
            port=config.port,
            user=config.user,
            # PyMySQL encodes a str password as latin-1; the mariadb client and
            # server use the UTF-8 bytes.
            password=config.password.reveal().encode("utf-8"),
            charset="utf8mb4",
            autocommit=True,
            cursorclass=pymysql.cursors.DictCursor,
            connect_timeout=config.connect_timeout,
            read_timeout=read_timeout,
            write_timeout=config.write_timeout,
            init_command="SET time_zone = '+00:00'",
            program_name="encmond",
            ssl_ca=ssl.get("ca"),
            ssl_cert=ssl.get("cert"),
            ssl_key=ssl.get("key"),
            ssl_verify_cert=ssl.get("verify_cert") if ssl else None,
            ssl_verify_identity=ssl.get("verify_identity") if ssl else None,
        )
        self.server_version = connection.get_server_info()
        if self.is_mariadb:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET SESSION max_statement_time = %s",
                    (max(1.0, read_timeout - 1.0),),
                )
        return connection

    def mark_up(self) -> None:
        if self.down_since is not None:
            log.info(
                "%s is reachable again after %.0f s",
                self,
                time.time() - self.down_since,
            )
        self.down_since = None
        self.last_error = None

    def mark_down(self) -> None:
        if self.down_since is None:
            self.down_since = time.time()
            log.warning(
                "%s is unreachable: %s; each check tries once more until it is back",
                self,
                self.last_error,
            )
        self.close()

    @contextmanager
    def session(self, read_timeout: float | None = None) -> Iterator[Session]:
        """Check out a connection; a longer ``read_timeout`` gets a fresh one.

        The connection returns to the pool unless the block failed on the
        connection itself or was interrupted (a timeout or a kill), in which
        case it is closed and a running statement is killed on the server.
        """
        dedicated = (
            read_timeout is not None and read_timeout != self.config.read_timeout
        )
        connection = None if dedicated else self.pooled()
        if connection is None:
            connection = self.connect(read_timeout)
        session = Session(self, connection)
        try:
            yield session
        except BaseException as exc:
            # A statement error leaves the connection usable; anything else
            # (lost connection, timeout, kill) does not.
            usable = isinstance(exc, DatabaseError) and not isinstance(
                exc, ServerUnavailable
            )
            if usable:
                self.release(connection, dedicated)
                raise
            if session.in_query:
                gevent.spawn(self.kill_query, connection.thread_id())
            discard(connection)
            raise
        else:
            self.release(connection, dedicated)

    def pooled(self) -> pymysql.Connection | None:
        """Return an idle connection that still responds to COM_PING, if any."""
        while self.idle:
            connection = self.idle.pop()
            try:
                connection.ping(reconnect=False)
            except pymysql.MySQLError:
                discard(connection)
                continue
            return connection
        return None

    def release(self, connection: pymysql.Connection, dedicated: bool) -> None:
        if dedicated or len(self.idle) >= MAX_IDLE or not connection.open:
            discard(connection)
        else:
            self.idle.append(connection)

    def query(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        """Run one statement on a pooled connection."""
        with self.session() as session:
            return session.query(sql, args)

    def query_one(self, sql: str, args: Any = None) -> dict[str, Any] | None:
        rows = self.query(sql, args)
        return rows[0] if rows else None

    def variables(self, *names: str) -> dict[str, str]:
        """Return global variables by lower-case name; absent ones are left out."""
        placeholders = ", ".join(["%s"] * len(names))
        rows = self.query(
            "SELECT LOWER(VARIABLE_NAME) AS name, VARIABLE_VALUE AS value "
            "FROM information_schema.GLOBAL_VARIABLES "
            f"WHERE VARIABLE_NAME IN ({placeholders})",
            [name.upper() for name in names],
        )
        return {row["name"]: row["value"] for row in rows}

    def kill_query(self, thread_id: int) -> None:
        """Stop a statement that encmond abandoned, so it does not load the server."""
        try:
            connection = self.open(self.config.connect_timeout)
        except pymysql.MySQLError:
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute("KILL QUERY %s", (thread_id,))
            log.debug("%s: killed abandoned query of thread %d", self.name, thread_id)
        except pymysql.MySQLError as exc:
            log.debug("%s: KILL QUERY %d failed: %s", self.name, thread_id, exc)
        finally:
            discard(connection)

    def translate(self, exc: pymysql.MySQLError, session: Session | None = None):
        """Map a PyMySQL error to ServerUnavailable, PrivilegeError or DatabaseError."""
        errno = error_number(exc)
        text = error_text(exc)
        if errno in CONNECTION_ERRNOS:
            return ServerUnavailable(self.name, text, errno)
        if errno in PRIVILEGE_ERRNOS and session is not None:
            try:
                account = session.current_account()
            except DatabaseError:
                account = f"'{self.config.user}'@'%'"
            return PrivilegeError(
                self.name, text, errno, grant_for(errno, text, account)
            )
        if errno in LOGIN_ERRNOS:
            return DatabaseError(
                self.name,
                f"{text}; check the user and password configured for this server",
                errno,
            )
        return DatabaseError(self.name, text, errno)

    def close(self) -> None:
        while self.idle:
            discard(self.idle.pop())


def discard(connection: pymysql.Connection) -> None:
    """Close a connection without waiting on a server that may be gone."""
    # close() would send COM_QUIT first and wait on a broken socket.
    try:
        connection._force_close()
    except Exception:
        pass
