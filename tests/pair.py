"""Start real MariaDB servers for tests: an unencrypted source that replicates with
GTID into one or more targets encrypted at rest.

Every server is a ``mariadbd`` child process with its own directory, datadir, socket,
pid file, error log and free TCP port on 127.0.0.1. Options files are never read
(``--no-defaults``).

Datadirs are copies of two templates that ``mariadb-install-db`` bootstraps once per
Python process: a plain one, and one bootstrapped with the encryption options for
encrypted servers. On MariaDB 10.11 a copy of the plain template started with the
encryption options works too, because InnoDB encrypts the redo log at startup and the
tablespaces right away. Its Aria system tables, such as ``mysql.global_priv`` with
the password hashes, stay unencrypted until rebuilt, which the encrypted template
avoids.

Servers still running when the interpreter exits are stopped by an ``atexit`` hook.

Example::

    with start_pair(tmp_path) as pair:
        pair.source.execute("CREATE DATABASE shop")
        pair.wait_caught_up()
        config = pair.encmond_config(tables=[])
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# Server rejects this port because the system MariaDB listens on it.
RESERVED_PORT = 3306

BUFFER_POOL_SIZE = "64M"
LOG_FILE_SIZE = "8M"
POLL_INTERVAL = 0.1  # seconds between readiness and status checks
LOG_TAIL_LINES = 30
# Linux limits a Unix socket path to 107 bytes (sockaddr_un.sun_path).
MAX_SOCKET_PATH = 100

MONITOR_USER = "encmond"
MONITOR_GRANTS = "SELECT, PROCESS, REPLICATION CLIENT, SLAVE MONITOR"
REPL_USER = "repl"
ER_ACCESS_DENIED_ERROR = 1045

_LOCK = threading.Lock()
_SOCKET_DIRECTORY: Path | None = None
# Servers started and not yet stopped or killed, for the atexit hook.
_RUNNING: set[Server] = set()


class ServerStartError(RuntimeError):
    """Failure of mariadbd or mariadb-install-db, with the end of its log."""


class PortInUseError(ServerStartError):
    """Start failure because another process listens on the server's port."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free when checked.

    Another process can take the port before a server binds it, which is why
    ``Server.start`` retries once on a new port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _find_program(name: str) -> str:
    search_path = os.pathsep.join(
        [os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/bin"]
    )
    path = shutil.which(name, path=search_path)
    if path is None:
        raise FileNotFoundError(
            f"{name} not found in PATH, /usr/sbin or /usr/local/sbin. "
            "Install the MariaDB server package."
        )
    return path


def _user_options() -> list[str]:
    # mariadbd exits at startup when run as root without --user=root.
    return ["--user=root"] if os.geteuid() == 0 else []


def _read_tail(path: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            text = stream.read().decode(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _short_directory() -> Path:
    """Return a per-process directory under /tmp for sockets whose path is too long."""
    global _SOCKET_DIRECTORY
    with _LOCK:
        if _SOCKET_DIRECTORY is None:
            _SOCKET_DIRECTORY = Path(tempfile.mkdtemp(prefix="pair-", dir="/tmp"))
        return _SOCKET_DIRECTORY


class _Templates:
    """Bootstrapped datadirs that servers copy, created on first use per process.

    Both templates share one key file because the encrypted template's pages are
    written with its keys, and every copy must be started with the same keys.
    """

    def __init__(self) -> None:
        self._locks = {False: threading.Lock(), True: threading.Lock()}
        self._root: Path | None = None
        self._datadirs: dict[bool, Path] = {}
        self._algorithm: str | None = None

    @property
    def key_file(self) -> Path:
        return self._directory() / "keys.txt"

    def datadir(self, encrypted: bool) -> Path:
        """Return the template datadir, bootstrapping it on first use."""
        with self._locks[encrypted]:
            if encrypted not in self._datadirs:
                self._datadirs[encrypted] = self._bootstrap(encrypted)
            return self._datadirs[encrypted]

    def encryption_options(self, key_file: Path) -> list[str]:
        """Return the mariadbd options that encrypt all data at rest with key_file."""
        return [
            "--plugin-load-add=file_key_management",
            f"--file-key-management-filename={key_file}",
            f"--file-key-management-encryption-algorithm={self.algorithm()}",
            "--innodb-encrypt-tables=ON",
            "--innodb-encrypt-log=ON",
            "--innodb-encryption-threads=2",
            "--encrypt-binlog=ON",
            "--encrypt-tmp-disk-tables=ON",
            "--encrypt-tmp-files=ON",
            "--aria-encrypt-tables=ON",
        ]

    def algorithm(self) -> str:
        """Return ``aes_ctr`` if this mariadbd build supports it, else ``aes_cbc``.

        The build lists the values it accepts in the help text of
        ``--file-key-management-encryption-algorithm``. Builds without AES-CTR
        support list only ``aes_cbc``.
        """
        if self._algorithm is None:
            self._algorithm = _supported_algorithm(self.key_file, self._directory())
        return self._algorithm

    def cleanup(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
            self._datadirs.clear()

    def _directory(self) -> Path:
        with _LOCK:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="pair-templates-"))
                _write_key_file(self._root / "keys.txt")
            return self._root

    def _bootstrap(self, encrypted: bool) -> Path:
        kind = "encrypted" if encrypted else "plain"
        datadir = self._directory() / kind
        # Concurrent bootstraps that share /tmp as tmpdir fail intermittently on
        # MariaDB 10.11.19 with "ERROR: 1051 Unknown table 'mysql.tmp_user_sys'".
        tmpdir = self._directory() / f"tmp-{kind}"
        tmpdir.mkdir(exist_ok=True)
        shutil.rmtree(datadir, ignore_errors=True)  # left by a failed bootstrap

        started = time.monotonic()
        result = subprocess.run(
            self._install_command(datadir, tmpdir, encrypted),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=300,
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"mariadb-install-db failed with exit status {result.returncode} "
                f"for {datadir}:\n{_bootstrap_errors(result.stdout)}"
            )

        elapsed = time.monotonic() - started
        log.info("bootstrapped %s template %s in %.2f s", kind, datadir, elapsed)
        return datadir

    def _install_command(
        self, datadir: Path, tmpdir: Path, encrypted: bool
    ) -> list[str]:
        command = [
            _find_program("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={datadir}",
            f"--tmpdir={tmpdir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            *_user_options(),
            f"--innodb-buffer-pool-size={BUFFER_POOL_SIZE}",
            f"--innodb-log-file-size={LOG_FILE_SIZE}",
        ]
        if encrypted:
            command += self.encryption_options(self.key_file)
        return command


def _bootstrap_errors(output: str) -> str:
    """Return the mariadbd lines of mariadb-install-db output without its advice.

    mariadb-install-db prints the server's errors first and then generic advice
    starting with "Installation of system tables failed!".
    """
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Installation of system tables failed"):
            lines = lines[:index]
            break
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _write_key_file(path: Path) -> None:
    """Write key ids 1 and 2 as random 256-bit keys in file_key_management format."""
    lines = [f"{key_id};{secrets.token_hex(32)}\n" for key_id in (1, 2)]
    path.write_text("".join(lines))
    path.chmod(0o600)


def _supported_algorithm(key_file: Path, scratch: Path) -> str:
    command = [
        _find_program("mariadbd"),
        "--no-defaults",
        *_user_options(),
        f"--datadir={scratch}",
        "--plugin-load-add=file_key_management",
        f"--file-key-management-filename={key_file}",
        "--verbose",
        "--help",
    ]
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    match = re.search(
        r"--file-key-management-encryption-algorithm=name.*?One of: ([a-z_, ]+)",
        result.stdout,
        re.DOTALL,
    )
    if match is None:
        raise ServerStartError(
            "mariadbd --help lists no values for "
            "--file-key-management-encryption-algorithm. Check that "
            "file_key_management.so is in the plugin directory. "
            f"stderr:\n{result.stderr[-2000:]}"
        )
    values = [value.strip() for value in match.group(1).split(",")]
    return "aes_ctr" if "aes_ctr" in values else "aes_cbc"


_TEMPLATES = _Templates()


class Server:
    """One mariadbd process in its own directory, listening on 127.0.0.1:port.

    ``basedir`` contains ``data/`` (the datadir), ``tmp/``, ``error.log``,
    ``mariadbd.pid``, ``mariadbd.sock`` and, when encrypted, ``keys.txt``. The socket
    moves to a short directory under /tmp if that path would be too long. Nothing is
    created before the first ``start()``, which copies a template datadir.
    """

    host = HOST

    def __init__(
        self,
        name: str,
        basedir: Path,
        *,
        server_id: int,
        encrypted: bool = False,
        port: int | None = None,
        extra_options: Iterable[str] = (),
    ) -> None:
        if port == RESERVED_PORT:
            raise ValueError(f"port {RESERVED_PORT} belongs to the system MariaDB")
        self.name = name
        self.basedir = Path(basedir).absolute()
        self.server_id = server_id
        self.encrypted = encrypted
        self.port = port if port is not None else free_port()
        self.extra_options = list(extra_options)
        self.datadir = self.basedir / "data"
        self.tmpdir = self.basedir / "tmp"
        self.log_path = self.basedir / "error.log"
        self.pid_file = self.basedir / "mariadbd.pid"
        self.key_file = self.basedir / "keys.txt"
        self.socket = self._socket_path()
        self._port_fixed = port is not None
        self._started_once = False
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        return f"<Server {self.name} {self.host}:{self.port} {state}>"

    @property
    def pid(self) -> int | None:
        """Process id of the current or last mariadbd process, None before start."""
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def options(self) -> list[str]:
        """Return the mariadbd command line."""
        options = [
            _find_program("mariadbd"),
            "--no-defaults",
            *_user_options(),
            f"--datadir={self.datadir}",
            f"--tmpdir={self.tmpdir}",
            f"--socket={self.socket}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log_path}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            "--skip-name-resolve",
            f"--server-id={self.server_id}",
            "--log-bin=binlog",
            "--relay-log=relay-bin",
            "--log-slave-updates=ON",
            "--binlog-format=ROW",
            "--gtid-strict-mode=ON",
            "--character-set-server=utf8mb4",
            f"--innodb-buffer-pool-size={BUFFER_POOL_SIZE}",
            f"--innodb-log-file-size={LOG_FILE_SIZE}",
        ]
        if self.encrypted:
            options += _TEMPLATES.encryption_options(self.key_file)
        return options + self.extra_options

    def start(self, timeout: float = 60) -> None:
        """Start mariadbd and wait until root can log in over TCP.

        The first start copies a template datadir. If the port turns out to be taken
        on the first start of a server whose port was chosen by ``free_port``, the
        start is retried once on a new port.

        Raises:
            RuntimeError: the server is already running.
            ServerStartError: mariadbd exited; the message contains its log tail.
            TimeoutError: root could not log in within ``timeout`` seconds. The
                process is killed before this is raised.
        """
        if self.running():
            raise RuntimeError(f"server {self.name} is already running")
        self._prepare()
        try:
            self._launch(timeout)
        except PortInUseError:
            if self._port_fixed or self._started_once:
                raise
            old_port, self.port = self.port, free_port()
            log.warning(
                "port %d of server %s is in use, retrying on port %d",
                old_port,
                self.name,
                self.port,
            )
            self._launch(timeout)
        self._started_once = True

    def stop(self, timeout: float = 60) -> None:
        """Shut mariadbd down with SIGTERM and wait for it to exit.

        A paused server is resumed first. After ``timeout`` seconds the process is
        killed with SIGKILL. Stopping a server that is not running does nothing.
        """
        process = self._process
        if process is None or process.poll() is not None:
            self._forget()
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "server %s (pid %d) did not exit %.0f s after SIGTERM, sending SIGKILL",
                self.name,
                process.pid,
                timeout,
            )
            process.kill()
            process.wait()
        log.info("stopped server %s (pid %d)", self.name, process.pid)
        self._forget()

    def kill(self) -> None:
        """Kill mariadbd with SIGKILL and wait for it, as in a crash.

        The datadir, port and configuration stay, so ``start()`` runs crash recovery.
        """
        process = self._running_process()
        process.kill()
        process.wait()
        log.info("killed server %s (pid %d)", self.name, process.pid)
        self._forget()

    def pause(self) -> None:
        """Suspend the process with SIGSTOP, like a hung server.

        Its sockets stay open, so clients connect but get no response.
        """
        self._running_process().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Continue a paused process with SIGCONT."""
        self._running_process().send_signal(signal.SIGCONT)

    def connect(
        self,
        user: str = "root",
        password: str = "",
        database: str | None = None,
        **kwargs: Any,
    ) -> pymysql.connections.Connection:
        """Open a TCP connection with autocommit, utf8mb4 and DictCursor.

        ``kwargs`` go to ``pymysql.connect`` and override the defaults, for example
        ``read_timeout`` in seconds. Without one, a query to a paused server blocks.
        """
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": user,
            "password": password,
            "database": database,
            "autocommit": True,
            "charset": "utf8mb4",
            "cursorclass": pymysql.cursors.DictCursor,
            "connect_timeout": 10,
        }
        options.update(kwargs)
        return pymysql.connect(**options)

    def execute(
        self, sql: str, args: Any = None, timeout: float | None = 60
    ) -> list[dict[str, Any]]:
        """Run one statement as root and return its rows, or [] if it returns none.

        ``timeout`` limits each network read and write in seconds (None: no limit).
        """
        connection = self.connect(read_timeout=timeout, write_timeout=timeout)
        with closing(connection), connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def execute_unlogged(self, *statements: str) -> None:
        """Run statements as root in one session with ``sql_log_bin=0``.

        The statements are not written to the binary log, so they neither replicate
        nor add GTIDs of this server's server_id.
        """
        connection = self.connect(read_timeout=60, write_timeout=60)
        with closing(connection), connection.cursor() as cursor:
            cursor.execute("SET SESSION sql_log_bin = 0")
            for statement in statements:
                cursor.execute(statement)

    def slave_status(self) -> dict[str, Any] | None:
        """Return the SHOW SLAVE STATUS row, or None if no master is configured."""
        rows = self.execute("SHOW SLAVE STATUS")
        return rows[0] if rows else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last lines of the error log."""
        return _read_tail(self.log_path, lines=lines)

    def _socket_path(self) -> Path:
        path = self.basedir / "mariadbd.sock"
        if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
            return path
        return _short_directory() / f"{self.name}-{secrets.token_hex(4)}.sock"

    def _prepare(self) -> None:
        self.basedir.mkdir(parents=True, exist_ok=True)
        self.tmpdir.mkdir(exist_ok=True)
        if self.encrypted and not self.key_file.exists():
            shutil.copy2(_TEMPLATES.key_file, self.key_file)
        if not self.datadir.exists():
            shutil.copytree(_TEMPLATES.datadir(self.encrypted), self.datadir)

    def _launch(self, timeout: float) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as output:
            # mariadbd writes to stderr until it opens --log-error, so both go there.
            self._process = subprocess.Popen(
                self.options(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        with _LOCK:
            _RUNNING.add(self)
        log.info(
            "starting server %s (pid %d) on %s:%d",
            self.name,
            self._process.pid,
            self.host,
            self.port,
        )
        self._wait_ready(timeout, offset)

    def _wait_ready(self, timeout: float, log_offset: int) -> None:
        process = self._running_process()
        started = time.monotonic()
        deadline = started + timeout
        while not self._accepts_root():
            returncode = process.poll()
            if returncode is not None:
                self._forget()
                raise self._exit_error(returncode, log_offset)
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(
                    f"timed out after {timeout} s waiting for a root login to server "
                    f"{self.name} on {self.host}:{self.port}. Last lines of "
                    f"{self.log_path}:\n{_read_tail(self.log_path, log_offset)}"
                )
            time.sleep(POLL_INTERVAL)
        log.info("server %s ready in %.2f s", self.name, time.monotonic() - started)

    def _accepts_root(self) -> bool:
        """Return whether root logs in without a password.

        Raises ServerStartError, after killing the process, if the server rejects
        root's login, because waiting longer cannot help.
        """
        try:
            connection = self.connect(connect_timeout=1, read_timeout=2)
        except pymysql.err.OperationalError as error:
            if error.args[0] != ER_ACCESS_DENIED_ERROR:
                return False
            self.kill()
            raise ServerStartError(
                f"server {self.name} rejected root without a password: {error}"
            ) from error
        connection.close()
        return True

    def _exit_error(self, returncode: int, log_offset: int) -> ServerStartError:
        tail = _read_tail(self.log_path, log_offset)
        output = _read_tail(self.log_path, log_offset, lines=1_000_000)
        port_in_use = "Address already in use" in output
        error = PortInUseError if port_in_use else ServerStartError
        return error(
            f"mariadbd for server {self.name} exited with status {returncode} "
            f"during start. Last lines of {self.log_path}:\n{tail}"
        )

    def _running_process(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError(f"server {self.name} is not running")
        return self._process

    def _forget(self) -> None:
        with _LOCK:
            _RUNNING.discard(self)


def _in_parallel(function: Callable[[Server], None], servers: Iterable[Server]) -> None:
    """Call function on every server in its own thread and re-raise the first error."""
    servers = list(servers)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(servers)) as pool:
        futures = [pool.submit(function, server) for server in servers]
    for future in futures:
        future.result()


class Pair:
    """A source server replicating with GTID into the target servers.

    Every server has the monitor user ``encmond`` with the grants that encmond
    needs. The source also has the replication user. The harness creates both
    users with ``sql_log_bin=0`` on each server, so they do not depend on
    replication and leave the source binlog and every ``gtid_binlog_pos`` empty
    until the caller writes.
    """

    monitor_user = MONITOR_USER
    repl_user = REPL_USER

    def __init__(self, source: Server, targets: dict[str, Server]) -> None:
        if "target" not in targets:
            raise ValueError(f"targets must include 'target', got {sorted(targets)}")
        self.source = source
        self.targets = targets
        self.monitor_password = secrets.token_hex(16)
        self.repl_password = secrets.token_hex(16)

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def target(self) -> Server:
        return self.targets["target"]

    def servers(self) -> list[Server]:
        """Return the source followed by the targets."""
        return [self.source, *self.targets.values()]

    def start(self, timeout: float = 60) -> None:
        """Start all servers, create the users and start replication on each target.

        Raises what ``Server.start`` raises, or TimeoutError if a target's
        replication threads do not run within ``timeout`` seconds.
        """
        _in_parallel(lambda server: server.start(timeout), self.servers())
        for server in self.servers():
            self._create_users(server)
        for target in self.targets.values():
            self.start_replication(target, timeout)

    def start_replication(self, target: Server, timeout: float = 60) -> None:
        """Point target at the source with GTID and wait until both threads run."""
        target.execute_unlogged(
            "CHANGE MASTER TO "
            f"MASTER_HOST='{self.source.host}', MASTER_PORT={self.source.port}, "
            f"MASTER_USER='{self.repl_user}', "
            f"MASTER_PASSWORD='{self.repl_password}', "
            "MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos",
            "START SLAVE",
        )
        self._wait_replicating(target, timeout)

    def wait_caught_up(self, timeout: float = 60) -> None:
        """Wait until every target has applied the source's ``@@gtid_binlog_pos``.

        Uses ``MASTER_GTID_WAIT`` on each target, so the wait covers only what the
        source had binlogged when the call began. ``timeout`` in seconds is for
        all targets together.

        Raises:
            TimeoutError: a target did not catch up in time or did not respond. The
                message contains both GTID positions and the replication errors.
        """
        deadline = time.monotonic() + timeout
        source_position = self.source.execute("SELECT @@gtid_binlog_pos AS pos")[0]
        source_position = source_position["pos"]
        for name, target in self.targets.items():
            remaining = max(deadline - time.monotonic(), 0.0)
            if not _gtid_wait(target, source_position, remaining):
                raise TimeoutError(
                    f"target {name} did not reach the source @@gtid_binlog_pos "
                    f"'{source_position}' within {timeout} s: "
                    f"{_replication_state(target)}"
                )

    def encmond_config(self, **overrides: Any) -> dict[str, Any]:
        """Return an encmond config dict for these servers and the monitor user.

        A pair with only ``target`` gets a ``target`` section, otherwise a
        ``targets`` mapping of name to section. ``overrides`` replace or add
        top-level keys.
        """
        config: dict[str, Any] = {"source": self._endpoint(self.source)}
        if list(self.targets) == ["target"]:
            config["target"] = self._endpoint(self.target)
        else:
            config["targets"] = {
                name: self._endpoint(server) for name, server in self.targets.items()
            }
        config.update(overrides)
        return config

    def stop(self) -> None:
        """Stop the targets, then the source. Calling it again does nothing.

        Stopping the source last keeps the targets from logging failed reconnects.
        """
        _in_parallel(lambda server: server.stop(), self.targets.values())
        self.source.stop()

    def _endpoint(self, server: Server) -> dict[str, Any]:
        return {
            "host": server.host,
            "port": server.port,
            "user": self.monitor_user,
            "password": self.monitor_password,
        }

    def _create_users(self, server: Server) -> None:
        statements = [
            f"DROP USER IF EXISTS ''@'{row['Host']}'"
            for row in server.execute("SELECT Host FROM mysql.user WHERE User = ''")
        ]
        statements += [
            f"CREATE USER '{self.monitor_user}'@'%' "
            f"IDENTIFIED BY '{self.monitor_password}'",
            f"GRANT {MONITOR_GRANTS} ON *.* TO '{self.monitor_user}'@'%'",
        ]
        if server is self.source:
            statements += [
                f"CREATE USER '{self.repl_user}'@'%' "
                f"IDENTIFIED BY '{self.repl_password}'",
                f"GRANT REPLICATION SLAVE ON *.* TO '{self.repl_user}'@'%'",
            ]
        server.execute_unlogged(*statements)

    def _wait_replicating(self, target: Server, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = target.slave_status() or {}
            io_running = status.get("Slave_IO_Running")
            sql_running = status.get("Slave_SQL_Running")
            if io_running == "Yes" and sql_running == "Yes":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"replication on target {target.name} did not start within "
                    f"{timeout} s: {_replication_state(target)}"
                )
            time.sleep(POLL_INTERVAL)


def _gtid_wait(target: Server, position: str, timeout: float) -> bool:
    """Return whether target applied position within timeout seconds."""
    try:
        connection = target.connect(
            connect_timeout=max(timeout, 1), read_timeout=timeout + 2
        )
        with closing(connection), connection.cursor() as cursor:
            cursor.execute(
                "SELECT MASTER_GTID_WAIT(%s, %s) AS result", (position, timeout)
            )
            return cursor.fetchone()["result"] == 0
    except pymysql.err.OperationalError as error:
        log.warning("MASTER_GTID_WAIT on target %s failed: %s", target.name, error)
        return False


def _replication_state(target: Server) -> str:
    """Describe gtid_slave_pos and the slave threads of target for error messages."""
    try:
        connection = target.connect(connect_timeout=2, read_timeout=2)
        with closing(connection), connection.cursor() as cursor:
            cursor.execute("SELECT @@gtid_slave_pos AS pos")
            position = cursor.fetchone()["pos"]
            cursor.execute("SHOW SLAVE STATUS")
            status = cursor.fetchone() or {}
    except pymysql.err.MySQLError as error:
        return f"its status could not be read: {error}"
    fields = (
        "Slave_IO_Running",
        "Slave_SQL_Running",
        "Last_IO_Error",
        "Last_SQL_Error",
    )
    details = ", ".join(f"{field}={status.get(field)!r}" for field in fields)
    return f"its @@gtid_slave_pos is '{position}', {details}"


def start_pair(
    basedir: Path,
    targets: Iterable[str] = ("target",),
    encrypted: Iterable[str] | None = None,
    timeout: float = 60,
) -> Pair:
    """Start a source and its targets under basedir and return the running Pair.

    Each server gets the directory ``basedir/<name>``, which must not exist yet.
    ``targets`` names the targets and must include ``target``. ``encrypted`` names
    the targets encrypted at rest (default: all). The source is never encrypted.
    Server ids are 1 for the source and 2, 3, ... for the targets in order.

    If any step fails, the servers already started are stopped before the error
    propagates.
    """
    if isinstance(targets, str) or isinstance(encrypted, str):
        raise TypeError("targets and encrypted must be collections of names, not str")
    basedir = Path(basedir)
    names = list(targets)
    encrypted_names = set(names if encrypted is None else encrypted)
    _validate_names(basedir, names, encrypted_names)
    basedir.mkdir(parents=True, exist_ok=True)
    source = Server("source", basedir / "source", server_id=1)
    target_servers = {
        name: Server(
            name,
            basedir / name,
            server_id=index + 2,
            encrypted=name in encrypted_names,
        )
        for index, name in enumerate(names)
    }
    pair = Pair(source, target_servers)
    started = time.monotonic()
    try:
        pair.start(timeout)
    except BaseException:
        pair.stop()
        raise
    log.info("pair under %s started in %.2f s", basedir, time.monotonic() - started)
    return pair


def _validate_names(basedir: Path, names: list[str], encrypted: set[str]) -> None:
    if len(set(names)) != len(names) or "source" in names:
        raise ValueError(f"target names must be unique and not 'source', got {names}")
    invalid = [name for name in names if not re.fullmatch(r"[A-Za-z0-9_-]+", name)]
    if invalid:
        raise ValueError(f"target names must match [A-Za-z0-9_-]+, got {invalid}")
    unknown = sorted(encrypted - set(names))
    if unknown:
        raise ValueError(f"encrypted contains names that are not targets: {unknown}")
    existing = [name for name in ["source", *names] if (basedir / name).exists()]
    if existing:
        raise FileExistsError(
            f"{basedir} already contains {existing}. Pass a directory without them."
        )


@atexit.register
def _cleanup() -> None:
    """Stop servers that are still running and remove the per-process directories."""
    with _LOCK:
        servers = list(_RUNNING)
    for server in servers:
        log.warning("stopping server %s left running at exit", server.name)
        server.stop(timeout=20)
    _TEMPLATES.cleanup()
    if _SOCKET_DIRECTORY is not None:
        shutil.rmtree(_SOCKET_DIRECTORY, ignore_errors=True)
