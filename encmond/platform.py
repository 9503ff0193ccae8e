"""Which kind of server a connection reaches, and which version it runs.

Amazon RDS shows itself to SQL in two ways: the stored procedures it installs
as ``mysql.rds_*`` (``mysql.rds_replica_status``,
``mysql.rds_show_configuration`` and others), and its binaries under
/rdsdbbin/, which ``@@basedir`` names.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from encmond.db import Database
from encmond.errors import DatabaseError, ServerUnavailable

log = logging.getLogger(__name__)

RDS = "rds"
MARIADB = "mariadb"
MYSQL = "mysql"
RDS_BASEDIR = "/rdsdbbin/"  # where RDS installs its MySQL and MariaDB builds
RDS_PROCEDURE_PATTERN = "rds\\_%"  # LIKE pattern of the procedures' names
# information_schema.ROUTINES lists only routines the user may execute, while
# MariaDB's mysql.proc lists all of them to a user with SELECT on it.
RDS_PROCEDURE_QUERIES = (
    "SELECT ROUTINE_NAME AS name FROM information_schema.ROUTINES "
    "WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME LIKE %s",
    "SELECT name FROM mysql.proc WHERE db = 'mysql' AND name LIKE %s",
)
# MariaDB before 11.0 prefixes the version in its handshake with "5.5.5-".
_HANDSHAKE_PREFIX = "5.5.5-"
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def detect_platform(db: Database) -> str:
    """Return ``rds`` or ``mariadb``: the configured platform, or for ``auto``
    ``rds`` when the server has ``mysql.rds_*`` procedures or its ``@@basedir``
    lies under /rdsdbbin/. The detected platform is kept on ``db``."""
    if db.config.platform != "auto":
        return db.config.platform
    if db.platform is None:
        found = rds_evidence(db)
        db.platform = RDS if found else MARIADB
        log.info(
            "%s: platform %s%s", db.name, db.platform, f" ({found})" if found else ""
        )
    return db.platform


def rds_evidence(db: Database) -> str:
    """Describe what shows that ``db`` runs on RDS, or return '' if nothing does."""
    row = db.query_one("SELECT @@basedir AS basedir") or {}
    basedir = str(row.get("basedir") or "")
    if basedir.startswith(RDS_BASEDIR):
        return f"@@basedir is {basedir}"
    procedures = rds_procedures(db)
    if procedures:
        return "it has the procedures " + ", ".join(f"mysql.{p}" for p in procedures)
    return ""


def rds_procedures(db: Database) -> list[str]:
    """Return the names of the ``mysql.rds_*`` procedures the user can see."""
    names: set[str] = set()
    for sql in RDS_PROCEDURE_QUERIES:
        try:
            rows = db.query(sql, (RDS_PROCEDURE_PATTERN,))
        except ServerUnavailable:
            raise
        except DatabaseError as exc:
            # No mysql.proc (MySQL 8) or no SELECT on it: the other query decides.
            log.debug("%s: %s failed: %s", db.name, sql.split(" FROM ")[1], exc)
            continue
        names.update(str(row["name"]) for row in rows)
    return sorted(names)


@dataclass(frozen=True)
class ServerVersion:
    """A server's flavour (``mariadb`` or ``mysql``) and version number."""

    flavour: str
    number: tuple[int, int, int]

    def __str__(self) -> str:
        return f"{self.flavour} {'.'.join(map(str, self.number))}"


def parse_version(text: str | None) -> ServerVersion | None:
    """Parse a version string such as ``10.11.6-MariaDB-log`` or ``8.4.0``.

    Returns None when the text holds no version number.
    """
    if not text:
        return None
    mariadb = "mariadb" in text.lower()
    if mariadb and text.startswith(_HANDSHAKE_PREFIX):
        text = text[len(_HANDSHAKE_PREFIX) :]
    match = _VERSION.match(text)
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return ServerVersion(MARIADB if mariadb else MYSQL, (major, minor, patch))
