"""The SQL that turns rows into comparable values: row text, chunk sums, counts.

A row's text is ``CONCAT_WS(',', QUOTE(c1), QUOTE(c2), ...)`` over every column
in the source's column order. QUOTE writes NULL as the bare word NULL and
every other value as a quoted string with quotes and backslashes escaped, so
NULL, '' and 'NULL' give different texts and no value can move across a
column boundary. Text columns are converted to utf8mb4 and compared with
``utf8mb4_bin``, so the bytes hashed do not depend on the column's character
set, and FLOAT columns are widened to DOUBLE, whose text keeps every bit.

A chunk's measure is ``COUNT(*)``, ``SUM(h)`` and ``SUM(h * h)`` over
``h = CRC32(row text)``. Both sums are integer sums computed exactly as
DECIMAL, so unlike a BIT_XOR of CRC32 values no edit cancels out across an
even number of rows. docs/validation.md explains the choice.
"""

from __future__ import annotations

from encmond.config import Table, quote_identifier
from encmond.validation.shape import Column, Shape

# MariaDB does not merge a derived table that has a LIMIT into the outer
# query, so CRC32 runs once per row although the outer query reads h twice.
NO_LIMIT = 18446744073709551615
UTF8MB4 = "utf8mb4"


def column_text(column: Column, target_charset: str | None) -> str:
    """Return the SQL for one column's text inside the row text."""
    name = quote_identifier(column.name)
    if column.data_type == "float":
        return f"QUOTE({name} + 0e0)"
    charsets = {column.charset, target_charset} - {None}
    if not charsets:
        return f"QUOTE({name})"
    if charsets == {UTF8MB4}:
        return f"QUOTE({name} COLLATE utf8mb4_bin)"
    return f"QUOTE(CONVERT({name} USING utf8mb4) COLLATE utf8mb4_bin)"


def row_text(source: Shape, target: Shape) -> str:
    """Return the row text expression, the same SQL for both servers."""
    target_charsets = {column.name: column.charset for column in target.columns}
    parts = [
        column_text(column, target_charsets.get(column.name))
        for column in source.columns
    ]
    return "CONCAT_WS(','," + ", ".join(parts) + ")"


def from_clause(table: Table, index: str | None) -> str:
    """Return FROM ... with FORCE INDEX on the ordering key, if there is one."""
    if index is None:
        return f"FROM {table.quoted}"
    return f"FROM {table.quoted} FORCE INDEX ({quote_identifier(index)})"


class Measure:
    """What a chunk is reduced to on each server; equal values mean equal chunks.

    ``chunk_sql`` returns a SELECT whose first column is the row count.
    """

    name = ""

    def chunk_sql(self, source: Shape, target: Shape, table: Table, where: str):
        raise NotImplementedError


class HashMeasure(Measure):
    """COUNT(*) with two exact sums of the rows' CRC32."""

    name = "checksum"

    def chunk_sql(self, source, target, table, where):
        return (
            "SELECT COUNT(*) AS row_count, SUM(h) AS hash_sum, "
            "SUM(h * h) AS square_sum FROM (SELECT "
            f"CRC32({row_text(source, target)}) AS h "
            f"{from_clause(table, source.index)} WHERE {where} "
            f"LIMIT {NO_LIMIT}) AS chunk"
        )


class CountMeasure(Measure):
    """COUNT(*) alone: cheap, and points a missing or extra row to a key range."""

    name = "row_count"

    def chunk_sql(self, source, target, table, where):
        return (
            f"SELECT COUNT(*) AS row_count {from_clause(table, source.index)} "
            f"WHERE {where}"
        )


def rows_sql(source: Shape, target: Shape, table: Table, where: str) -> str:
    """Return the SELECT of each row's key and MD5 of its text, in key order.

    Bisection uses it on chunks of a few hundred rows, where the cost of MD5
    no longer matters and a 128-bit hash per row leaves no doubt.
    """
    keys = ", ".join(source.quoted_key)
    return (
        f"SELECT {keys}, MD5({row_text(source, target)}) AS row_hash "
        f"{from_clause(table, source.index)} WHERE {where} ORDER BY {keys}"
    )
