"""Key ranges over the ordering key, and the chunk size that adapts to time.

A chunk is the half-open key range (lower, upper]: rows whose key is greater
than ``lower`` and at most ``upper``, compared as a row of values (key order).
``None`` means unbounded, so the first chunk of a pass starts below every key
and the last one runs past every key: rows that exist only on the target are
inside some chunk wherever their keys fall.

Integer keys advance by a span of key values. Other keys advance by a number
of rows in key order, and the next bound is read from the source.
"""

from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass
from typing import Any

from encmond.config import Table
from encmond.db import Session
from encmond.validation.rowhash import from_clause
from encmond.validation.shape import Shape

Key = tuple[Any, ...]

MIN_SIZE = 100
MAX_SIZE = 10_000_000
INITIAL_SIZE = 1000
# Limits on how much one chunk's timing may change the next chunk's size.
MIN_FACTOR, MAX_FACTOR = 0.5, 10.0


@dataclass(frozen=True)
class Chunk:
    """The key range (lower, upper]; None is unbounded on that side."""

    lower: Key | None
    upper: Key | None

    @property
    def whole(self) -> bool:
        return self.lower is None and self.upper is None

    def describe(self, names: list[str]) -> str:
        """Return the range as text: ``(id) in (1000, 2000]``, or with a
        composite key ``(a, b) in ((1, 'x'), (5, 'y')]``."""
        if not names:
            return "the whole table"
        low = "-inf" if self.lower is None else display_key(self.lower)
        high = "+inf" if self.upper is None else display_key(self.upper)
        closing = ")" if self.upper is None else "]"
        return f"({', '.join(names)}) in ({low}, {high}{closing}"

    def to_json(self) -> dict[str, Any]:
        return {"lower": encode_key(self.lower), "upper": encode_key(self.upper)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chunk:
        return cls(decode_key(data["lower"]), decode_key(data["upper"]))


def predicate(columns: list[str], chunk: Chunk) -> tuple[str, list[Any]]:
    """Return the WHERE condition and its arguments that select ``chunk``.

    Row comparisons are written out as ORs of column comparisons, which the
    range optimizer turns into one index range. The optimizer does not always
    use ``(a, b) > (x, y)`` as a range.
    """
    parts, args = [], []
    if chunk.lower is not None:
        sql, values = compare_key(columns, chunk.lower, ">", ">")
        parts.append(sql)
        args += values
    if chunk.upper is not None:
        sql, values = compare_key(columns, chunk.upper, "<", "<=")
        parts.append(sql)
        args += values
    return (" AND ".join(parts) or "TRUE"), args


def compare_key(columns, key, strict: str, last: str) -> tuple[str, list[Any]]:
    """Return ``columns <op> key`` in key order, as an OR of prefixes."""
    terms, args = [], []
    for index, column in enumerate(columns):
        operator = last if index == len(columns) - 1 else strict
        equal = [f"{name} = %s" for name in columns[:index]]
        terms.append("(" + " AND ".join(equal + [f"{column} {operator} %s"]) + ")")
        args += list(key[:index]) + [key[index]]
    return "(" + " OR ".join(terms) + ")", args


class Chunker:
    """Picks the next chunk after a bound and resizes chunks toward a time.

    ``size`` is a span of key values for an integer key and a number of rows
    for any other key; ``chunk_time`` is the target duration in seconds of one
    chunk's read on the source. ``max_rows`` caps a chunk's rows, so that a
    pass has enough chunks to keep both servers busy: the target reads a
    chunk while the source reads the next one, and the last chunk's target
    read runs alone.
    """

    def __init__(
        self,
        shape: Shape,
        table: Table,
        chunk_time: float,
        size: float,
        max_rows: int | None = None,
    ):
        self.shape = shape
        self.table = table
        self.chunk_time = chunk_time
        self.size = min(max(size or INITIAL_SIZE, MIN_SIZE), MAX_SIZE)
        self.max_rows = max_rows
        self.max_key: int | None = None
        self.empty = False

    def start(self, session: Session) -> None:
        """Read the source's largest key, which ends integer spans."""
        if self.shape.integer_key:
            key = self.shape.quoted_key[0]
            self.max_key = session.value(
                f"SELECT MAX({key}) {from_clause(self.table, self.shape.index)}"
            )

    def next_chunk(self, session: Session, lower: Key | None) -> Chunk:
        if self.shape.integer_key:
            return Chunk(lower, self.integer_upper(session, lower))
        return Chunk(lower, self.ordered_upper(session, lower))

    def integer_upper(self, session: Session, lower: Key | None) -> Key | None:
        if self.max_key is None:
            return None
        start = lower[0] if lower is not None else None
        if start is None or self.empty:
            start = self.next_key(session, lower)
            if start is None:
                return None
            start -= 1
        upper = start + int(self.size)
        return None if upper >= self.max_key else (upper,)

    def next_key(self, session: Session, lower: Key | None) -> int | None:
        """Return the source's smallest key above ``lower``, skipping a gap."""
        key = self.shape.quoted_key[0]
        where, args = predicate(self.shape.quoted_key, Chunk(lower, None))
        return session.value(
            f"SELECT MIN({key}) {from_clause(self.table, self.shape.index)} "
            f"WHERE {where}",
            args,
        )

    def ordered_upper(self, session: Session, lower: Key | None) -> Key | None:
        keys = ", ".join(self.shape.quoted_key)
        where, args = predicate(self.shape.quoted_key, Chunk(lower, None))
        row = session.query_one(
            f"SELECT {keys} {from_clause(self.table, self.shape.index)} "
            f"WHERE {where} ORDER BY {keys} LIMIT 1 OFFSET %s",
            args + [max(int(self.size) - 1, 0)],
        )
        return None if row is None else tuple(row.values())

    def adapt(self, seconds: float, rows: int) -> None:
        """Resize the next chunk from the time and row count of the last one."""
        self.empty = rows == 0
        factor = self.chunk_time / max(seconds, 0.001)
        if self.max_rows and rows:
            factor = min(factor, self.max_rows / rows)
        factor = min(max(factor, MIN_FACTOR), MAX_FACTOR)
        self.size = min(max(self.size * factor, MIN_SIZE), MAX_SIZE)


def split_key(session: Session, shape: Shape, table: Table, chunk: Chunk, rows: int):
    """Return the key in the middle of ``chunk``'s rows on this server, or None."""
    if rows < 2:
        return None
    keys = ", ".join(shape.quoted_key)
    where, args = predicate(shape.quoted_key, chunk)
    row = session.query_one(
        f"SELECT {keys} {from_clause(table, shape.index)} WHERE {where} "
        f"ORDER BY {keys} LIMIT 1 OFFSET %s",
        args + [rows // 2 - 1],
    )
    return None if row is None else tuple(row.values())


# JSON forms of key values, so a pass can resume from a stored bound.


def encode_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {"time": value.total_seconds()}
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value).hex()}
    return value


def decode_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    kind, text = next(iter(value.items()))
    decoders = {
        "decimal": decimal.Decimal,
        "datetime": datetime.datetime.fromisoformat,
        "date": datetime.date.fromisoformat,
        "time": lambda seconds: datetime.timedelta(seconds=seconds),
        "bytes": bytes.fromhex,
    }
    return decoders[kind](text)


def encode_key(key: Key | None) -> list[Any] | None:
    return None if key is None else [encode_value(value) for value in key]


def decode_key(data: list[Any] | None) -> Key | None:
    return None if data is None else tuple(decode_value(value) for value in data)


def display_value(value: Any) -> Any:
    """Return a key value as JSON shows it to people: text for non-JSON types."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | datetime.timedelta):
        return str(value)
    return value


def display_key(key: Key) -> str:
    """Return a key as text: the value alone, or a tuple for a composite key."""
    text = ", ".join(repr(display_value(value)) for value in key)
    return text if len(key) == 1 else f"({text})"
