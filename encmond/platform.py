"""Which kind of server a connection reaches: self-managed MariaDB or Amazon RDS."""

from __future__ import annotations

from encmond.db import Database

RDS = "rds"
MARIADB = "mariadb"
RDS_BASEDIR = "/rdsdbbin/"  # where RDS installs its MySQL and MariaDB builds


def detect_platform(db: Database) -> str:
    """Return ``rds`` or ``mariadb``: the configured platform, or for ``auto``
    ``rds`` when the server's ``@@basedir`` lies under /rdsdbbin/."""
    if db.config.platform != "auto":
        return db.config.platform
    row = db.query_one("SELECT @@basedir AS basedir") or {}
    return RDS if str(row.get("basedir") or "").startswith(RDS_BASEDIR) else MARIADB
