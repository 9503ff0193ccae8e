"""Encryption facts of one server: data at rest, and connections in flight.

At rest, MariaDB shows its own encryption in SQL: the encryption variables,
the active key management plugin, and per InnoDB tablespace a scheme and key
versions in ``information_schema.INNODB_TABLESPACES_ENCRYPTION``. Amazon RDS
encrypts the storage volume instead, which SQL cannot see, so there only an
operator's attestation can vouch for it, and it is recorded as such.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from encmond.db import Database
from encmond.errors import DatabaseError
from encmond.platform import RDS

# Variables that must be ON (or FORCE) for all data at rest to be encrypted.
REQUIRED = (
    "innodb_encrypt_tables",
    "innodb_encrypt_log",
    "encrypt_binlog",
    "encrypt_tmp_disk_tables",
    "encrypt_tmp_files",
    "aria_encrypt_tables",
)
EXTRA = ("innodb_encrypt_temporary_tables", "innodb_encryption_threads", "log_bin")
UNKNOWN_TABLE = 1109
ON_VALUES = ("ON", "FORCE", "1")

ENCRYPTED = "encrypted"
IN_PROGRESS = "in_progress"
UNENCRYPTED = "unencrypted"
NOT_VISIBLE = "not_visible"
ATTESTED = "attested"


@dataclass
class Tablespace:
    """One InnoDB tablespace and its encryption state."""

    name: str
    scheme: int | None
    min_key_version: int | None
    current_key_version: int | None
    rotating: bool
    opted_out: bool = False

    @property
    def encrypted(self) -> bool:
        return self.scheme == 1 and (self.min_key_version or 0) > 0

    @property
    def pending(self) -> bool:
        """Whether background threads are encrypting it right now."""
        return not self.encrypted and self.scheme == 1


@dataclass
class AtRest:
    """The facts SQL shows about one server's encryption at rest."""

    platform: str
    variables: dict[str, str]
    key_plugins: list[str]
    tablespaces: list[Tablespace] | None

    @property
    def encrypted_count(self) -> int:
        return sum(space.encrypted for space in self.tablespaces or [])

    @property
    def rotating_count(self) -> int:
        return sum(space.rotating for space in self.tablespaces or [])

    @property
    def share(self) -> float | None:
        if not self.tablespaces:
            return None
        return self.encrypted_count / len(self.tablespaces)

    def variable_on(self, name: str) -> bool:
        return str(self.variables.get(name, "")).upper() in ON_VALUES

    def not_visible_reason(self) -> str | None:
        """Say why SQL cannot show this server's encryption, None if it can."""
        if self.platform == RDS:
            return "RDS encrypts the storage volume, which is not visible from SQL"
        if self.tablespaces is None:
            return "information_schema.INNODB_TABLESPACES_ENCRYPTION is absent"
        missing = [name for name in REQUIRED if name not in self.variables]
        if missing:
            return f"the server has no {', '.join(missing)} variable"
        return None

    def verdict(self) -> tuple[str, list[str]]:
        """Return encrypted, in_progress, unencrypted or not_visible, with reasons."""
        if self.not_visible_reason():
            return NOT_VISIBLE, [self.not_visible_reason()]
        off = [
            name
            for name in REQUIRED
            if not self.variable_on(name) and not self.not_applicable(name)
        ]
        reasons = []
        if off:
            verb = "is" if len(off) == 1 else "are"
            reasons.append(f"{', '.join(off)} {verb} OFF")
        if not self.key_plugins:
            reasons.append("no key management plugin is active")
        stuck = [s.name for s in self.tablespaces if not s.encrypted and not s.pending]
        pending = [s.name for s in self.tablespaces if s.pending]
        threads = int(self.variables.get("innodb_encryption_threads") or 0)
        if stuck and self.variable_on("innodb_encrypt_tables") and threads > 0:
            opted = {s.name for s in self.tablespaces if s.opted_out}
            pending += [name for name in stuck if name not in opted]
            stuck = [name for name in stuck if name in opted]
        if stuck:
            reasons.append(f"unencrypted tablespaces: {', '.join(stuck[:10])}")
        if reasons:
            return UNENCRYPTED, reasons
        if pending:
            return IN_PROGRESS, [f"still being encrypted: {', '.join(pending[:10])}"]
        return ENCRYPTED, []

    def not_applicable(self, name: str) -> bool:
        return name == "encrypt_binlog" and not self.variable_on("log_bin")


def read_at_rest(db: Database, platform: str) -> AtRest:
    """Collect the encryption variables, key plugins and tablespaces of ``db``."""
    variables = db.variables(*REQUIRED, *EXTRA)
    plugins = db.query(
        "SELECT PLUGIN_NAME AS name FROM information_schema.PLUGINS "
        "WHERE PLUGIN_TYPE = 'ENCRYPTION' AND PLUGIN_STATUS = 'ACTIVE'"
    )
    return AtRest(
        platform=platform,
        variables=variables,
        key_plugins=[row["name"] for row in plugins],
        tablespaces=read_tablespaces(db),
    )


def read_tablespaces(db: Database) -> list[Tablespace] | None:
    """Return every InnoDB tablespace but the temporary one, None if not shown.

    A tablespace created without encryption has no row in
    INNODB_TABLESPACES_ENCRYPTION, so the list comes from
    INNODB_SYS_TABLESPACES and the system tablespace, joined by space id.
    """
    try:
        crypt = db.query(
            "SELECT SPACE AS space, NAME AS name, ENCRYPTION_SCHEME AS scheme, "
            "MIN_KEY_VERSION AS min_key, CURRENT_KEY_VERSION AS current_key, "
            "ROTATING_OR_FLUSHING AS rotating, KEY_ROTATION_PAGE_NUMBER AS page "
            "FROM information_schema.INNODB_TABLESPACES_ENCRYPTION"
        )
        spaces = db.query(
            "SELECT SPACE AS space, NAME AS name "
            "FROM information_schema.INNODB_SYS_TABLESPACES"
        )
    except DatabaseError as exc:
        if exc.errno == UNKNOWN_TABLE:
            return None
        raise
    names = {0: "innodb_system"} | {row["space"]: row["name"] for row in spaces}
    by_space = {row["space"]: row for row in crypt}
    names |= {space: row["name"] for space, row in by_space.items()}
    opted_out = opted_out_tables(db)
    result = []
    for space, name in sorted(names.items()):
        if name == "innodb_temporary":
            continue
        name = decode_file_name(name)
        row = by_space.get(space, {})
        result.append(
            Tablespace(
                name=name,
                scheme=row.get("scheme"),
                min_key_version=row.get("min_key"),
                current_key_version=row.get("current_key"),
                rotating=bool(row.get("rotating")) or row.get("page") is not None,
                opted_out=name in opted_out,
            )
        )
    return result


FILE_NAME_ESCAPE = re.compile(r"@([0-9a-f]{4})")


def decode_file_name(name: str) -> str:
    """Return a tablespace name with MariaDB's @XXXX escapes decoded.

    InnoDB names a tablespace by its file name, in which a character other
    than a letter, digit or underscore of ASCII is ``@`` and four hex digits
    (``<`` is ``@003c``). Other escapes, for accented letters, stay as they are.
    """
    return FILE_NAME_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), name)


def opted_out_tables(db: Database) -> set[str]:
    """Return ``schema/table`` of tables created with ``ENCRYPTED=NO``."""
    rows = db.query(
        "SELECT TABLE_SCHEMA AS `schema`, TABLE_NAME AS name "
        "FROM information_schema.TABLES WHERE CREATE_OPTIONS LIKE %s",
        ("%`ENCRYPTED`='NO'%",),
    )
    return {f"{row['schema']}/{row['name']}" for row in rows}


def session_cipher(db: Database) -> str | None:
    """Return the TLS cipher of encmond's own connection to ``db``, None if plain."""
    row = db.query_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    return (row or {}).get("Value") or None


def channel_tls(status: dict[str, Any]) -> dict[str, Any]:
    """Return the replication channel's TLS facts from the normalised status."""
    return {
        "ssl_allowed": status.get("ssl_allowed") == "Yes",
        "verify_server_cert": status.get("ssl_verify_server_cert") == "Yes",
        "cipher": status.get("ssl_cipher") or None,
    }
