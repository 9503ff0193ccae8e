"""The columns of a table and the key that orders its rows, on one server.

A pass orders rows by the primary key, else by a unique key whose columns
are all NOT NULL and indexed in full (no prefix). A table with neither is
compared as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from encmond.config import Table, quote_identifier
from encmond.db import Session

INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "bigint"}


@dataclass(frozen=True)
class Column:
    """One column as information_schema.COLUMNS describes it."""

    name: str
    data_type: str
    charset: str | None
    collation: str | None
    nullable: bool = True


@dataclass
class Shape:
    """Columns in table order, and the ordering key (empty when there is none)."""

    columns: list[Column]
    key: list[str] = field(default_factory=list)
    index: str | None = None

    @property
    def integer_key(self) -> bool:
        return len(self.key) == 1 and self.column(self.key[0]).data_type in (
            INTEGER_TYPES
        )

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    @property
    def quoted_key(self) -> list[str]:
        return [quote_identifier(name) for name in self.key]


def read_shape(session: Session, table: Table) -> Shape:
    """Read the columns and the ordering key of ``table``."""
    rows = session.query(
        "SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, "
        "CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation, "
        "IS_NULLABLE AS nullable "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (table.schema, table.name),
    )
    columns = [
        Column(
            r["name"],
            r["data_type"].lower(),
            r["charset"],
            r["collation"],
            r["nullable"] == "YES",
        )
        for r in rows
    ]
    index, key = ordering_key(session, table)
    return Shape(columns, key, index)


def ordering_key(session: Session, table: Table) -> tuple[str | None, list[str]]:
    """Return the index name and columns of the key that orders the rows."""
    rows = session.query(
        "SELECT INDEX_NAME AS name, COLUMN_NAME AS col, SEQ_IN_INDEX AS seq, "
        "NULLABLE AS nullable, SUB_PART AS sub_part "
        "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = %s AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        (table.schema, table.name),
    )
    indexes: dict[str, list[dict]] = {}
    for row in rows:
        indexes.setdefault(row["name"], []).append(row)
    usable = {
        name: [part["col"] for part in parts]
        for name, parts in indexes.items()
        if all(p["nullable"] != "YES" and p["sub_part"] is None for p in parts)
    }
    if "PRIMARY" in usable:
        return "PRIMARY", usable["PRIMARY"]
    if usable:
        name = min(usable, key=lambda n: (len(usable[n]), n))
        return name, usable[name]
    return None, []


def column_mismatch(source: Shape, target: Shape) -> str | None:
    """Describe how the column names differ between the servers, or None."""
    source_names = [column.name for column in source.columns]
    target_names = {column.name for column in target.columns}
    only_source = [name for name in source_names if name not in target_names]
    only_target = sorted(target_names - set(source_names))
    parts = []
    if only_source:
        parts.append(f"only on the source: {', '.join(only_source)}")
    if only_target:
        parts.append(f"only on the target: {', '.join(only_target)}")
    return "; ".join(parts) or None


def whole_table_reason(source: Shape, target: Shape) -> str | None:
    """Return why chunks by key cannot be used on this pair, or None if they can.

    Key ranges select the same rows on both servers only when both order the
    key the same way, so the key columns must have the same collation on both.
    """
    if not source.key:
        return "no primary key or NOT NULL unique key"
    target_names = {column.name for column in target.columns}
    for name in source.key:
        if name not in target_names:
            return f"key column {name} is missing on the target"
        left, right = source.column(name), target.column(name)
        if left.collation != right.collation:
            return (
                f"key column {name} has collation {left.collation} on the source "
                f"and {right.collation} on the target"
            )
    return None
