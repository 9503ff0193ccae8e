"""Replication facts shared by checks: replica status, GTID positions, waiting.

``replica_status`` returns the status row with MariaDB's and MySQL 8's column
names mapped to one set of lower-case fields, so checks never look at raw names.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from encmond.db import Database
from encmond.errors import DatabaseError, PrivilegeError
from encmond.platform import (
    MARIADB,
    MYSQL,
    RDS,
    ServerVersion,
    detect_platform,
    parse_version,
)

log = logging.getLogger(__name__)

# Normalised field -> column names: MariaDB's and older MySQL's first, then
# MySQL 8's (SHOW REPLICA STATUS). RDS's mysql.rds_replica_status mixes both
# (Source_Host next to Seconds_Behind_Master), so each field is looked up alone.
STATUS_COLUMNS: dict[str, tuple[str, ...]] = {
    "connection_name": ("Connection_name", "Channel_Name"),
    "io_state": ("Slave_IO_State", "Replica_IO_State"),
    "source_host": ("Master_Host", "Source_Host"),
    "source_port": ("Master_Port", "Source_Port"),
    "source_user": ("Master_User", "Source_User"),
    "source_uuid": ("Master_UUID", "Source_UUID"),
    "source_log_file": ("Master_Log_File", "Source_Log_File"),
    "read_source_log_pos": ("Read_Master_Log_Pos", "Read_Source_Log_Pos"),
    "exec_source_log_pos": ("Exec_Master_Log_Pos", "Exec_Source_Log_Pos"),
    "io_running": ("Slave_IO_Running", "Replica_IO_Running"),
    "sql_running": ("Slave_SQL_Running", "Replica_SQL_Running"),
    "sql_state": ("Slave_SQL_Running_State", "Replica_SQL_Running_State"),
    "lag_seconds": ("Seconds_Behind_Master", "Seconds_Behind_Source"),
    "last_io_errno": ("Last_IO_Errno",),
    "last_io_error": ("Last_IO_Error",),
    "last_sql_errno": ("Last_SQL_Errno",),
    "last_sql_error": ("Last_SQL_Error",),
    "ssl_allowed": ("Master_SSL_Allowed", "Source_SSL_Allowed"),
    "ssl_verify_server_cert": (
        "Master_SSL_Verify_Server_Cert",
        "Source_SSL_Verify_Server_Cert",
    ),
    "ssl_cipher": ("Master_SSL_Cipher", "Source_SSL_Cipher"),
    "source_server_id": ("Master_Server_Id", "Source_Server_Id"),
    "using_gtid": ("Using_Gtid",),
    "auto_position": ("Auto_Position",),
    "gtid_io_pos": ("Gtid_IO_Pos",),
    "retrieved_gtid_set": ("Retrieved_Gtid_Set",),
    "executed_gtid_set": ("Executed_Gtid_Set",),
    "sql_delay": ("SQL_Delay",),
    "replicate_do_table": ("Replicate_Do_Table",),
    "replicate_ignore_table": ("Replicate_Ignore_Table",),
    "replicate_wild_do_table": ("Replicate_Wild_Do_Table",),
    "replicate_wild_ignore_table": ("Replicate_Wild_Ignore_Table",),
    "replicate_do_db": ("Replicate_Do_DB",),
    "replicate_ignore_db": ("Replicate_Ignore_DB",),
    "replicate_rewrite_db": ("Replicate_Rewrite_DB",),
    "replicate_do_domain_ids": ("Replicate_Do_Domain_Ids",),
    "replicate_ignore_domain_ids": ("Replicate_Ignore_Domain_Ids",),
}
SYNTAX_ERROR = 1064
ACCESS_DENIED = 1227  # "you need (at least one of) the ... privilege(s)"
NO_SUCH_PROCEDURE = 1305

# The kinds of replica status statement, as remembered in Database.status_statement.
REPLICA = "replica"
SLAVE = "slave"
RDS_PROCEDURE = "rds_replica_status"
RDS_CALL = "CALL mysql.rds_replica_status"
FIRST_REPLICA_SYNTAX = {MARIADB: (10, 5, 1), MYSQL: (8, 0, 22)}
MYSQL_WITHOUT_SLAVE = (8, 4, 0)


def normalise_status(row: dict[str, Any]) -> dict[str, Any]:
    """Map one SHOW REPLICA/SLAVE STATUS row to the normalised field names."""
    status: dict[str, Any] = {}
    for field, columns in STATUS_COLUMNS.items():
        for column in columns:
            if column in row:
                status[field] = row[column]
                break
        else:
            status[field] = None
    for field in (
        "lag_seconds",
        "last_io_errno",
        "last_sql_errno",
        "sql_delay",
        "source_port",
        "source_server_id",
        "read_source_log_pos",
        "exec_source_log_pos",
    ):
        if status[field] not in (None, ""):
            status[field] = int(status[field])
    return status


def status_statements(
    version: ServerVersion | None, connection_name: str = ""
) -> list[tuple[str, str, tuple]]:
    """Return (kind, SQL, arguments) of each statement to try, in order.

    ``SHOW REPLICA STATUS`` exists from MariaDB 10.5.1 and MySQL 8.0.22 and is
    tried first there, with ``SHOW SLAVE STATUS`` after a syntax error. MySQL
    8.4 removed ``SHOW SLAVE STATUS``, so it is never sent to 8.4 and newer.
    An unknown version gets both, ``SHOW REPLICA STATUS`` first.
    """
    if version is None:
        kinds = [REPLICA, SLAVE]
    elif version.flavour == MYSQL and version.number >= MYSQL_WITHOUT_SLAVE:
        kinds = [REPLICA]
    elif version.number >= FIRST_REPLICA_SYNTAX[version.flavour]:
        kinds = [REPLICA, SLAVE]
    else:
        kinds = [SLAVE]
    mysql = version is not None and version.flavour == MYSQL
    return [(kind, *status_sql(kind, connection_name, mysql)) for kind in kinds]


def status_sql(kind: str, connection_name: str, mysql: bool) -> tuple[str, tuple]:
    """Return the SQL and arguments of one kind of status statement."""
    word = kind.upper()
    if not connection_name:
        return f"SHOW {word} STATUS", ()
    if mysql:
        return f"SHOW {word} STATUS FOR CHANNEL %s", (connection_name,)
    return f"SHOW {word} %s STATUS", (connection_name,)


def replica_status(db: Database, connection_name: str = "") -> dict[str, Any] | None:
    """Return the normalised replica status, or None when none is configured.

    The server's version decides which statements are tried (see
    ``status_statements``). On RDS, where ``SHOW REPLICA STATUS`` is denied
    with error 1227, ``CALL mysql.rds_replica_status`` returns the same row.
    The statement that worked is remembered per server, and named in the
    returned status as ``statement``.
    """
    if db.status_statement == RDS_PROCEDURE:
        return first_status(rds_replica_status(db, connection_name), RDS_CALL)
    if db.server_version is None:
        db.query("SELECT 1")  # connects, which reads the server's version
    statements = status_statements(parse_version(db.server_version), connection_name)
    if db.status_statement is not None:
        statements = [s for s in statements if s[0] == db.status_statement]
    for index, (kind, sql, args) in enumerate(statements):
        try:
            rows = db.query(sql, args or None)
        except PrivilegeError as exc:
            if exc.errno != ACCESS_DENIED or detect_platform(db) != RDS:
                raise
            rows = rds_replica_status(db, connection_name, exc)
            kind, sql = RDS_PROCEDURE, RDS_CALL
        except DatabaseError as exc:
            if exc.errno == SYNTAX_ERROR and index + 1 < len(statements):
                continue
            raise
        if db.status_statement != kind:
            log.debug("%s: replica status from %s", db.name, sql)
        db.status_statement = kind
        return first_status(rows, sql)
    return None


def rds_replica_status(
    db: Database, connection_name: str, denied: PrivilegeError | None = None
) -> list[dict[str, Any]]:
    """Return the rows of ``CALL mysql.rds_replica_status``.

    ``denied`` is the error of ``SHOW REPLICA STATUS`` that led here; it is
    raised again when the server has no such procedure.
    """
    if connection_name:
        raise DatabaseError(
            db.name,
            "mysql.rds_replica_status, which RDS provides instead of SHOW REPLICA "
            "STATUS, reports the default replication connection only, not "
            f'{connection_name!r}; set replication_connection to ""',
        )
    try:
        return db.query(RDS_CALL)
    except DatabaseError as exc:
        if exc.errno == NO_SUCH_PROCEDURE and denied is not None:
            raise denied from None
        raise


def first_status(rows: list[dict[str, Any]], statement: str) -> dict[str, Any] | None:
    if not rows:
        return None
    return normalise_status(rows[0]) | {"statement": statement}


def parse_gtid_position(text: str | None) -> dict[int, tuple[int, int]]:
    """Parse a MariaDB GTID position into {domain: (server_id, sequence)}."""
    position: dict[int, tuple[int, int]] = {}
    for part in (text or "").replace("\n", "").split(","):
        part = part.strip()
        if not part:
            continue
        domain, server_id, sequence = (int(value) for value in part.split("-"))
        position[domain] = (server_id, sequence)
    return position


def transactions_behind(source: str | None, target: str | None) -> dict[int, int]:
    """Return per domain how many transactions the target has yet to apply."""
    have = parse_gtid_position(target)
    behind = {}
    for domain, (_, sequence) in parse_gtid_position(source).items():
        applied = have.get(domain, (0, 0))[1]
        behind[domain] = max(0, sequence - applied)
    return behind


def wait_for_position(db: Database, position: str, timeout: float) -> bool:
    """Wait with MASTER_GTID_WAIT until ``db`` has applied ``position``.

    Waits in slices shorter than the read timeout, so no single statement
    outlives it. Returns False when ``timeout`` seconds pass first.
    """
    if not position:
        return True
    deadline = time.monotonic() + timeout
    piece = max(1.0, db.config.read_timeout - 2.0)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        row = db.query_one(
            "SELECT MASTER_GTID_WAIT(%s, %s) AS reached",
            (position, round(min(piece, remaining), 3)),
        )
        if row and row["reached"] == 0:
            return True
        if row is None or row["reached"] is None:
            return False


def source_position(db: Database) -> str:
    """Return the source's ``@@gtid_binlog_pos``: what it has written so far."""
    row = db.query_one("SELECT @@GLOBAL.gtid_binlog_pos AS position")
    return (row or {}).get("position") or ""
