"""Parity between source and target: errant GTIDs and table definitions.

An errant transaction is one the target committed that did not come from
the source. MariaDB's ``gtid_binlog_state`` keeps the last GTID of every
(domain, server_id) pair ever binlogged, so a local write shows there even
after later replicated transactions in the same domain, where
``gtid_binlog_pos`` would hide it.
"""

from __future__ import annotations

from typing import Any

from encmond.config import Table
from encmond.db import Database

GtidState = dict[tuple[int, int], int]


def parse_gtid_state(*texts: str | None) -> GtidState:
    """Parse GTID lists into {(domain, server_id): highest sequence}."""
    state: GtidState = {}
    for text in texts:
        for part in (text or "").replace("\n", "").split(","):
            part = part.strip()
            if not part:
                continue
            domain, server_id, sequence = (int(value) for value in part.split("-"))
            key = (domain, server_id)
            state[key] = max(sequence, state.get(key, 0))
    return state


def format_gtid(key: tuple[int, int], sequence: int) -> str:
    return f"{key[0]}-{key[1]}-{sequence}"


def errant_gtids(target: GtidState, source: GtidState) -> dict[str, str]:
    """Return the target's GTIDs that the source never wrote, with the reason.

    The target's state must be read before the source's, so every
    transaction the target replicated is already in what the source shows.
    """
    errant = {}
    source_domains = {domain for domain, _ in source}
    for key, sequence in sorted(target.items()):
        written = source.get(key)
        if written is not None and written >= sequence:
            continue
        domain, server_id = key
        if domain not in source_domains:
            reason = f"domain {domain} was never written on the source"
        elif written is None:
            reason = (
                f"the source has no transaction from server_id {server_id} "
                f"in domain {domain}"
            )
        else:
            reason = f"the source is at {format_gtid(key, written)}"
        errant[format_gtid(key, sequence)] = reason
    return errant


def accepted_by(gtid: str, accepted: list[str]) -> bool:
    """Return whether an operator accepted ``gtid`` (same domain and server
    id, at the same or a higher sequence) after reviewing it."""
    state = parse_gtid_state(gtid)
    [(key, sequence)] = state.items()
    return any(parse_gtid_state(entry).get(key, -1) >= sequence for entry in accepted)


# Table definitions

COLUMN_FIELDS = {
    "ORDINAL_POSITION": "position",
    "COLUMN_TYPE": "type",
    "IS_NULLABLE": "nullable",
    "COLUMN_DEFAULT": "default",
    "CHARACTER_SET_NAME": "character set",
    "COLLATION_NAME": "collation",
    "EXTRA": "extra",
    "GENERATION_EXPRESSION": "generation expression",
}
TABLE_FIELDS = {"ENGINE": "engine", "TABLE_COLLATION": "table collation"}


def tables_filter(tables: list[Table]) -> tuple[str, list[str]]:
    pairs = ", ".join(["(%s, %s)"] * len(tables))
    args = [part for table in tables for part in (table.schema, table.name)]
    return f"(TABLE_SCHEMA, TABLE_NAME) IN ({pairs})", args


def describe_tables(db: Database, tables: list[Table]) -> dict[str, Any]:
    """Return each table's columns, keys and table options, None if missing.

    Encryption options are left out on purpose: they are meant to differ.
    """
    where, args = tables_filter(tables)
    described: dict[str, Any] = {str(table): None for table in tables}
    for row in db.query(
        f"SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, {', '.join(TABLE_FIELDS)} "
        f"FROM information_schema.TABLES WHERE {where}",
        args,
    ):
        described[f"{row['s']}.{row['t']}"] = {
            "table": {label: row[name] for name, label in TABLE_FIELDS.items()},
            "columns": {},
            "keys": {},
        }
    for row in db.query(
        f"SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c, "
        f"{', '.join(COLUMN_FIELDS)} FROM information_schema.COLUMNS WHERE {where}",
        args,
    ):
        entry = described.get(f"{row['s']}.{row['t']}")
        if entry is not None:
            entry["columns"][row["c"]] = {
                label: row[name] for name, label in COLUMN_FIELDS.items()
            }
    add_keys(db, described, where, args)
    return described


def add_keys(db: Database, described: dict, where: str, args: list) -> None:
    """Add indexes and foreign keys as readable one-line definitions."""
    parts: dict[tuple[str, str], list[str]] = {}
    for row in db.query(
        "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, INDEX_NAME AS name, "
        "NON_UNIQUE AS non_unique, COLUMN_NAME AS c, SUB_PART AS sub, "
        "INDEX_TYPE AS kind FROM information_schema.STATISTICS "
        f"WHERE {where} ORDER BY s, t, name, SEQ_IN_INDEX",
        args,
    ):
        kind = "unique " if not int(row["non_unique"]) else ""
        label = f"{kind}{row['kind'].lower()} index"
        column = row["c"] + (f"({row['sub']})" if row["sub"] else "")
        parts.setdefault((f"{row['s']}.{row['t']}", row["name"]), [label]).append(
            column
        )
    for row in db.query(
        "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, CONSTRAINT_NAME AS name, "
        "COLUMN_NAME AS c, REFERENCED_TABLE_SCHEMA AS rs, "
        "REFERENCED_TABLE_NAME AS rt, REFERENCED_COLUMN_NAME AS rc "
        f"FROM information_schema.KEY_COLUMN_USAGE WHERE {where} "
        "AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY s, t, name, "
        "ORDINAL_POSITION",
        args,
    ):
        label = f"foreign key to {row['rs']}.{row['rt']}"
        parts.setdefault((f"{row['s']}.{row['t']}", "FK " + row["name"]), [label])
        parts[(f"{row['s']}.{row['t']}", "FK " + row["name"])].append(
            f"{row['c']}->{row['rc']}"
        )
    for (table, name), (label, *columns) in parts.items():
        entry = described.get(table)
        if entry is not None:
            entry["keys"][name] = f"{label} ({', '.join(columns)})"


def schema_differences(source: dict, target: dict) -> list[str]:
    """Describe in plain words how the target's definition differs."""
    found = [
        f"{label}: {source['table'][label]} on the source, "
        f"{target['table'][label]} on the target"
        for label in TABLE_FIELDS.values()
        if source["table"][label] != target["table"][label]
    ]
    found += compare_named("column", source["columns"], target["columns"])
    found += compare_named("key", source["keys"], target["keys"])
    return found


def compare_named(kind: str, source: dict, target: dict) -> list[str]:
    found = []
    for name in sorted(source.keys() | target.keys(), key=str):
        if name not in target:
            found.append(f"{kind} {name}: only on the source")
        elif name not in source:
            found.append(f"{kind} {name}: only on the target")
        elif isinstance(source[name], dict):
            found += [
                f"{kind} {name}: {label} {value!s} on the source, "
                f"{target[name].get(label)!s} on the target"
                for label, value in source[name].items()
                if target[name].get(label) != value
            ]
        elif source[name] != target[name]:
            found.append(
                f"{kind} {name}: {source[name]} on the source, "
                f"{target[name]} on the target"
            )
    return found
