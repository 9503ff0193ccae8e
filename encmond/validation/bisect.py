"""Narrowing a differing chunk down to the keys of the rows that differ.

The engine splits a differing chunk at the middle of its rows (``halves``),
measures each half pinned on both servers, and splits further only the
halves that differ. A small range is then read row by row (key and MD5 of
the row text) on both servers, twice (``leaf_differences``). A key is
reported only when its source row was the same in both reads and the target
differed both times, so a row written during the bisection is not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from encmond.config import Table
from encmond.validation.chunks import Chunk, Key, display_value, predicate, split_key
from encmond.validation.pinned import Pinned, Reading
from encmond.validation.rowhash import rows_sql
from encmond.validation.shape import Shape

MISSING_ON_TARGET = "missing_on_target"
EXTRA_ON_TARGET = "extra_on_target"
CHANGED = "changed"


@dataclass(frozen=True)
class Difference:
    """One differing row: its key and how it differs on the target."""

    key: Key
    kind: str

    def to_json(self, names: list[str]) -> dict[str, Any]:
        values = {
            name: display_value(value)
            for name, value in zip(names, self.key, strict=True)
        }
        return {"key": values, "kind": self.kind}


class BehindError(Exception):
    """The target did not reach a source position within the wait timeout."""


def halves(pinned: Pinned, shape: Shape, table: Table, chunk: Chunk, rows: int):
    """Split ``chunk`` at the middle key of its rows; [] if it cannot be split.

    The middle is read on the source, or on the target when the source has
    too few rows in the range (rows that exist only on the target).
    """
    middle = split_key(pinned.source, shape, table, chunk, rows) or split_key(
        pinned.target, shape, table, chunk, rows
    )
    if middle is None or middle == chunk.upper:
        return []
    return [Chunk(chunk.lower, middle), Chunk(middle, chunk.upper)]


def leaf_differences(
    pinned: Pinned, shapes: tuple[Shape, Shape], table: Table, chunk: Chunk
) -> list[Difference]:
    """Read ``chunk`` row by row on both servers, twice, and return the rows
    that differed both times while their source side stayed the same.

    Raises BehindError when the target does not catch up.
    """
    where, args = predicate(shapes[0].quoted_key, chunk)
    sql = rows_sql(shapes[0], shapes[1], table, where)
    first_source, first_target = read_pinned(pinned, sql, args)
    first = row_differences(first_source.rows, first_target.rows)
    if not first:
        return []
    second_source, second_target = read_pinned(pinned, sql, args)
    second = row_differences(second_source.rows, second_target.rows)
    before, after = row_hashes(first_source.rows), row_hashes(second_source.rows)
    return [
        Difference(key, kind)
        for key, kind in sorted(second.items())
        if key in first and before.get(key) == after.get(key)
    ]


def read_pinned(pinned: Pinned, sql: str, args: list[Any]) -> tuple[Reading, Reading]:
    source, target = pinned.read_both(sql, args)
    if target is None:
        raise BehindError(source.position)
    return source, target


def row_hashes(rows: list[dict[str, Any]]) -> dict[Key, str]:
    """Map each row's key (every column but the last) to its hash (the last)."""
    hashes = {}
    for row in rows:
        values = tuple(row.values())
        hashes[values[:-1]] = values[-1]
    return hashes


def row_differences(source_rows, target_rows) -> dict[Key, str]:
    """Return the kind of difference of each key that differs."""
    source, target = row_hashes(source_rows), row_hashes(target_rows)
    differences = {}
    for key, digest in source.items():
        if key not in target:
            differences[key] = MISSING_ON_TARGET
        elif target[key] != digest:
            differences[key] = CHANGED
    for key in target.keys() - source.keys():
        differences[key] = EXTRA_ON_TARGET
    return differences
