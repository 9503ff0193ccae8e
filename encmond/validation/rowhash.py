"""The SQL that turns rows into comparable values: row text, chunk sums, counts.

A row's text is ``CONCAT_WS(',', ...)`` over every column in the source's
column order, and each column writes one or two fields:

- numbers, dates and times write their value, or the letter N for NULL.
  Their text never contains a comma and is never N, so the field ends at
  the next comma and NULL differs from every value;
- strings write their length, or N for NULL, then the value itself
  (nothing for NULL). The length tells where the value ends, whatever
  commas it contains, so NULL, '' and 'NULL' give different texts and no
  part of a value can move across a column boundary;
- other types (BIT, spatial, INET6, UUID) write ``QUOTE(value)``, which is
  self-delimiting and NULL-safe.

Text columns are converted to utf8mb4 and compared with ``utf8mb4_bin``, so
the bytes hashed do not depend on the column's character set, and FLOAT
columns are widened to DOUBLE, whose text keeps every bit.

A chunk's measure is ``COUNT(*)``, ``SUM(h)`` and ``SUM(h * h)`` over
``h = CRC32(row text)``. Both sums are integer sums computed exactly as
DECIMAL, so unlike a BIT_XOR of CRC32 values no edit cancels out across an
even number of rows. docs/validation.md explains the choice.
"""

from __future__ import annotations

from encmond.config import Table, quote_identifier
from encmond.validation.shape import INTEGER_TYPES, Column, Shape

# MariaDB does not merge a derived table that has a LIMIT into the outer
# query, so CRC32 runs once per row although the outer query reads h twice.
NO_LIMIT = 18446744073709551615
UTF8MB4 = "utf8mb4"

# Types whose text is made of digits, signs, '.', 'e', ':', '-' and spaces.
PLAIN_TYPES = INTEGER_TYPES | {
    "decimal",
    "float",
    "double",
    "date",
    "datetime",
    "timestamp",
    "time",
    "year",
}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}


def column_text(source: Column, target: Column | None) -> str:
    """Return the SQL for one column's fields in the row text.

    ``target`` is the same column on the target. Both servers run the same
    SQL, so the choice depends on the types and character sets of both.
    """
    target = target or source
    name = quote_identifier(source.name)
    types = {source.data_type, target.data_type}
    nullable = source.nullable or target.nullable
    if types <= PLAIN_TYPES:
        value = f"{name} + 0e0" if "float" in types else name
        return f"IFNULL({value}, 'N')" if nullable else value
    charsets = {source.charset, target.charset} - {None}
    if charsets == {UTF8MB4}:
        length, value = f"LENGTH({name})", f"{name} COLLATE utf8mb4_bin"
    elif charsets:
        # Characters, not bytes: the count is the same in either character set.
        length = f"CHAR_LENGTH({name})"
        value = f"CONVERT({name} USING utf8mb4) COLLATE utf8mb4_bin"
    elif types <= BINARY_TYPES:
        length, value = f"LENGTH({name})", name
    else:
        return f"QUOTE({name})"
    if nullable:
        length = f"IFNULL({length}, 'N')"
    return f"{length}, {value}"


def row_text(source: Shape, target: Shape) -> str:
    """Return the row text expression, the same SQL for both servers."""
    target_columns = {column.name: column for column in target.columns}
    parts = [
        column_text(column, target_columns.get(column.name))
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
