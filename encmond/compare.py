"""Comparing one measurement of a table on source and target, with rechecks.

A first difference may only mean the target is behind. Before it counts, the
target waits (MASTER_GTID_WAIT) for the source position read after the first
measurement, and both sides are measured again. The tables have diverged only
when both sides then measure the same as in the round before and still
differ; a side that keeps changing is "in flux" and is compared on the next
run instead of raising an alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from encmond.config import Table
from encmond.db import Database
from encmond.model import Check, Result, Status
from encmond.replication import source_position, wait_for_position
from encmond.runner import CheckContext
from encmond.settings import Setting, positive_duration

MATCH = "match"
DIVERGED = "diverged"
IN_FLUX = "in_flux"
BEHIND = "behind"
MISSING = "missing"
NOT_COMPARABLE = "not_comparable"


@dataclass
class Comparison:
    """The outcome: state, the last values of both sides, and the rounds taken."""

    state: str
    source: Any = None
    target: Any = None
    position: str = ""
    rounds: list[dict[str, Any]] = field(default_factory=list)


def compare(
    ctx: CheckContext,
    measure: Callable[[Database], Any],
    wait_timeout: float,
    max_rounds: int = 3,
) -> Comparison:
    """Measure both sides until they match, differ stably, or rounds run out."""
    source, target = ctx.parallel(
        lambda: measure(ctx.source), lambda: measure(ctx.target)
    )
    comparison = Comparison(MATCH, source, target)
    comparison.rounds.append({"source": source, "target": target})
    for _ in range(max_rounds):
        if comparison.source == comparison.target:
            comparison.state = MATCH
            return comparison
        position = source_position(ctx.source)
        comparison.position = position
        if not wait_for_position(ctx.target, position, wait_timeout):
            comparison.state = BEHIND
            return comparison
        source, target = ctx.parallel(
            lambda: measure(ctx.source), lambda: measure(ctx.target)
        )
        stable = source == comparison.source and target == comparison.target
        comparison.source, comparison.target = source, target
        comparison.rounds.append(
            {"source": source, "target": target, "position": position}
        )
        if source != target and stable:
            comparison.state = DIVERGED
            return comparison
    comparison.state = MATCH if comparison.source == comparison.target else IN_FLUX
    return comparison


def table_kinds(db: Database, tables: list[Table]) -> dict[Table, str]:
    """Return TABLE_TYPE (BASE TABLE, VIEW, ...) of each table that exists."""
    if not tables:
        return {}
    pairs = ", ".join(["(%s, %s)"] * len(tables))
    args = [part for table in tables for part in (table.schema, table.name)]
    rows = db.query(
        "SELECT TABLE_SCHEMA AS `schema`, TABLE_NAME AS name, TABLE_TYPE AS kind "
        f"FROM information_schema.TABLES WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({pairs})",
        args,
    )
    found = {(row["schema"], row["name"]): row["kind"] for row in rows}
    return {
        table: found[(table.schema, table.name)]
        for table in tables
        if (table.schema, table.name) in found
    }


def not_on_target_yet(position: str, wait_timeout: float) -> str:
    """Return the message for a table that the lagging target may not have yet."""
    return (
        f"table not on the target yet: the target did not apply source "
        f"position {position} within {wait_timeout:g} s; looked up again on "
        "the next run"
    )


def presence_result(
    table: Table,
    source_kind: str | None,
    target_kind: str | None,
    behind: str = "",
    wait_timeout: float = 0.0,
) -> Result | None:
    """Return the result for a table that is missing or not a base table.

    ``behind`` is the source position that the target did not reach within
    ``wait_timeout`` seconds, or "". While it is set, a table found only on
    the source is UNKNOWN (behind) instead of CRITICAL, because the target
    may not have applied its CREATE TABLE yet.
    """
    subject = str(table)
    if behind and source_kind is not None and target_kind is None:
        return Result(
            subject,
            Status.UNKNOWN,
            not_on_target_yet(behind, wait_timeout),
            details={"state": BEHIND, "missing_on": ["target"], "behind": behind},
        )
    missing = [
        side
        for side, kind in (("source", source_kind), ("target", target_kind))
        if kind is None
    ]
    if missing:
        where = " and ".join(missing)
        return Result(
            subject,
            Status.CRITICAL,
            f"table missing on the {where}",
            details={"state": MISSING, "missing_on": missing},
        )
    if source_kind != "BASE TABLE" or target_kind != "BASE TABLE":
        return Result(
            subject,
            Status.UNKNOWN,
            f"not compared: a {source_kind.lower()} on the source and a "
            f"{target_kind.lower()} on the target",
            details={
                "state": NOT_COMPARABLE,
                "source_kind": source_kind,
                "target_kind": target_kind,
            },
        )
    return None


@dataclass
class Presence:
    """The TABLE_TYPE of each table found on each side, after any wait.

    ``behind`` is the source position the target did not reach within
    ``wait_timeout`` seconds, or "" when it reached it or needed no wait.
    """

    source: dict[Table, str]
    target: dict[Table, str]
    behind: str = ""
    wait_timeout: float = 0.0

    def result(self, table: Table) -> Result | None:
        """Return the table's result when it is missing or not a base table."""
        return presence_result(
            table,
            self.source.get(table),
            self.target.get(table),
            self.behind,
            self.wait_timeout,
        )


def read_presence(
    ctx: CheckContext, tables: list[Table], wait_timeout: float
) -> Presence:
    """Look the tables up on both sides, waiting for a target that is behind.

    A table created on the source shows on the target only after the target
    applies the CREATE TABLE. When a table is found only on the source, the
    target waits (MASTER_GTID_WAIT) up to ``wait_timeout`` seconds for the
    source position read after the lookup, and looks those tables up again.
    A table still not there after the wait is missing on the target.
    """
    source_kinds, target_kinds = ctx.parallel(
        lambda: table_kinds(ctx.source, tables),
        lambda: table_kinds(ctx.target, tables),
    )
    presence = Presence(source_kinds, target_kinds, wait_timeout=wait_timeout)
    late = [
        table for table in tables if table in source_kinds and table not in target_kinds
    ]
    if not late:
        return presence
    position = source_position(ctx.source)
    if wait_for_position(ctx.target, position, wait_timeout):
        presence.target.update(table_kinds(ctx.target, late))
    else:
        presence.behind = position
    return presence


def comparison_result(
    table: Table,
    comparison: Comparison,
    what: str,
    metrics: dict[str, float | None],
    wait_timeout: float,
) -> Result:
    """Turn a Comparison into a Result; ``what`` names the measurement."""
    subject = str(table)
    details = {
        "state": comparison.state,
        "source": comparison.source,
        "target": comparison.target,
        "position": comparison.position,
        "rounds": comparison.rounds,
    }
    if comparison.state == MATCH:
        message = f"{what} matches ({comparison.source})"
        return Result(subject, Status.OK, message, metrics, details)
    if comparison.state == DIVERGED:
        message = (
            f"{what} differs: source {comparison.source}, target "
            f"{comparison.target}, after the target applied source position "
            f"{comparison.position or '(empty)'}"
        )
        return Result(subject, Status.CRITICAL, message, metrics, details)
    if comparison.state == BEHIND:
        message = (
            f"{what} differs while the target is behind: it did not reach "
            f"source position {comparison.position} within "
            f"{wait_timeout:g} s; compared again on the next run"
        )
        return Result(subject, Status.UNKNOWN, message, metrics, details)
    message = (
        f"{what} changed during the comparison (source {comparison.source}, "
        f"target {comparison.target}); compared again on the next run"
    )
    return Result(subject, Status.UNKNOWN, message, metrics, details)


class TableCheck(Check):
    """Base of checks that compare each configured table on source and target.

    Subclasses implement ``compare_table``; a table missing on either side, or
    not a base table, gets its own result without reaching it. Their alerts
    are inhibited while replication is stopped or a server is down.
    Subclasses that declare options keep ``TableCheck.options`` among them.
    """

    replication_dependent = True
    options = {
        "wait_timeout": Setting(
            positive_duration,
            60.0,
            "how long a table found only on the source waits for the target "
            "to reach the source position",
        ),
    }

    def run(self, ctx: CheckContext):
        presence = read_presence(ctx, ctx.tables, self.settings["wait_timeout"])
        for table in ctx.tables:
            problem = presence.result(table)
            if problem is not None:
                yield problem
                continue
            yield self.compare_table(ctx, table)

    def compare_table(self, ctx: CheckContext, table: Table) -> Result:
        raise NotImplementedError
