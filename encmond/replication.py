"""Replication facts shared by checks: replica status, GTID positions, waiting.

``replica_status`` returns the status row with MariaDB's and MySQL 8's column
names mapped to one set of lower-case fields, so checks never look at raw names.
"""

from __future__ import annotations

import time
from typing import Any

from encmond.db import Database
from encmond.errors import DatabaseError

# Normalised field -> column names, MariaDB and MySQL 5.7 first, MySQL 8 second.
STATUS_COLUMNS: dict[str, tuple[str, ...]] = {
    "connection_name": ("Connection_name", "Channel_Name"),
    "io_state": ("Slave_IO_State", "Replica_IO_State"),
    "source_host": ("Master_Host", "Source_Host"),
    "source_port": ("Master_Port", "Source_Port"),
    "source_user": ("Master_User", "Source_User"),
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
}
SYNTAX_ERROR = 1064


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
    ):
        if status[field] not in (None, ""):
            status[field] = int(status[field])
    return status


def status_statements(connection_name: str) -> list[tuple[str, tuple]]:
    """Return the statements to try, newest syntax first."""
    if connection_name:
        return [
            ("SHOW REPLICA %s STATUS", (connection_name,)),
            ("SHOW SLAVE %s STATUS", (connection_name,)),
        ]
    return [("SHOW REPLICA STATUS", ()), ("SHOW SLAVE STATUS", ())]


def replica_status(db: Database, connection_name: str = "") -> dict[str, Any] | None:
    """Return the normalised replica status, or None when none is configured.

    ``SHOW REPLICA STATUS`` (MariaDB 10.5.1+, MySQL 8.0.22+) is tried first and
    ``SHOW SLAVE STATUS`` after a syntax error; the statement that worked is
    remembered per server.
    """
    statements = status_statements(connection_name)
    remembered = db.status_statement
    if remembered is not None:
        statements = [statements[remembered]]
    for index, (sql, args) in enumerate(statements):
        try:
            rows = db.query(sql, args or None)
        except DatabaseError as exc:
            if exc.errno == SYNTAX_ERROR and index + 1 < len(statements):
                continue
            raise
        db.status_statement = index if remembered is None else remembered
        return normalise_status(rows[0]) if rows else None
    return None


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
