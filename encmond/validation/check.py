"""The base of the ``checksum`` and ``row_count`` checks: chunked passes per table.

A run gives every configured table a result. Tables run one after another,
the one whose last pass finished longest ago first, until the run's time
share is used up. A table not reached shows its stored state. A run starts
no new chunk after ``RUN_SHARE`` of the check's timeout, so that it usually
returns results before the runner's timeout makes it UNKNOWN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from encmond.compare import presence_result, table_kinds
from encmond.config import Table
from encmond.model import Check, Result, Status
from encmond.runner import CheckContext
from encmond.settings import Setting, integer, positive_duration
from encmond.validation.engine import Limits, TableValidation
from encmond.validation.pinned import Pinned, pin_session
from encmond.validation.progress import PassState, ProgressStore
from encmond.validation.report import Outcome, table_result
from encmond.validation.rowhash import Measure
from encmond.validation.shape import (
    Shape,
    column_mismatch,
    read_shape,
    whole_table_reason,
)
from encmond.validation.throttle import Throttle

RUN_SHARE = 0.75


@dataclass
class Run:
    """One run of a check for one target: when it stops, and its throttle.

    ``deadline`` is a time.monotonic() value.
    """

    deadline: float
    throttle: Throttle


OPTIONS = {
    "chunk_time": Setting(
        positive_duration, 0.5, "target time of one chunk's read on the source"
    ),
    "max_lag": Setting(
        positive_duration, 10.0, "pause while the target's replica lag exceeds this"
    ),
    "max_threads_running": Setting(
        integer(1), 25, "pause while the source's Threads_running exceeds this"
    ),
    "max_differences": Setting(
        integer(1),
        100,
        "differing rows (checksum) or key ranges (row_count) listed per table",
    ),
    "stale_after": Setting(
        positive_duration,
        86400.0,
        "a table without a clean pass for this long is WARNING (stale)",
    ),
}


class ValidationCheck(Check):
    """Compares each table chunk by chunk with the class's ``measure``."""

    measure: ClassVar[Measure]

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings)
        self.progress = ProgressStore()

    def run(self, ctx: CheckContext):
        # One instance runs for every target, possibly at the same time, so
        # what belongs to one run (deadline, throttle) lives in ``run``.
        if self.progress.store is not ctx.store:
            self.progress = ProgressStore(ctx.store)
        run = Run(
            time.monotonic() + self.settings["timeout"] * RUN_SHARE,
            Throttle(
                ctx.source,
                ctx.target,
                self.settings["max_lag"],
                self.settings["max_threads_running"],
                ctx.log,
            ),
        )
        source_kinds, target_kinds = ctx.parallel(
            lambda: table_kinds(ctx.source, ctx.tables),
            lambda: table_kinds(ctx.target, ctx.tables),
        )
        for table in self.ordered(ctx):
            problem = presence_result(
                table, source_kinds.get(table), target_kinds.get(table)
            )
            if problem is None:
                yield self.compare_table(ctx, table, run)
                continue
            problem.details.update(last_clean_pass=None, differences=[])
            yield problem

    def ordered(self, ctx: CheckContext) -> list[Table]:
        """Return the tables whose last pass finished longest ago first."""

        def finished_at(table: Table) -> float:
            state = self.progress.load(self.key(ctx, table))
            return (state.last_pass or {}).get("finished_at", 0.0)

        return sorted(ctx.tables, key=finished_at)

    def key(self, ctx: CheckContext, table: Table) -> tuple[str, str, str]:
        return (self.name, ctx.name, str(table))

    def outcome(self, shape: Shape, whole_table: str | None) -> Outcome:
        return Outcome(
            self.name,
            shape.key,
            whole_table,
            wait_timeout=self.settings["wait_timeout"],
            stale_after=self.settings["stale_after"],
        )

    def compare_table(self, ctx: CheckContext, table: Table, run: Run) -> Result:
        key = self.key(ctx, table)
        state = self.progress.load(key)
        timeout = self.settings["timeout"]
        with (
            ctx.source.session(read_timeout=timeout) as source,
            ctx.target.session(read_timeout=timeout) as target,
        ):
            pin_session(source)
            pin_session(target)
            shapes = read_shape(source, table), read_shape(target, table)
            mismatch = column_mismatch(*shapes)
            if mismatch:
                return not_comparable(table, mismatch)
            whole_table = whole_table_reason(*shapes)
            if whole_table:
                shapes = (Shape(shapes[0].columns), shapes[1])
            outcome = self.outcome(shapes[0], whole_table)
            if time.monotonic() < run.deadline:
                wait = self.settings["wait_timeout"]
                pinned = Pinned(source, target, wait, timeout)
                self.advance(run, table, key, state, shapes, pinned, outcome)
        return table_result(table, state, outcome)

    def advance(self, run, table, key, state: PassState, shapes, pinned, outcome):
        """Run the table's pass until it finishes or the run's time is up."""
        if not state.running:
            state.start(time.time())
            state.rows_estimate = row_estimate(pinned, table)
        validation = TableValidation(
            table,
            self.measure,
            shapes,
            Limits(
                self.settings["chunk_time"],
                self.settings["wait_timeout"],
                self.settings["max_differences"],
            ),
            run.throttle,
            run.deadline,
            run.throttle.log,
        )
        started = time.monotonic()
        paused = run.throttle.paused_seconds
        try:
            validation.run(pinned, state, self.progress, key)
        finally:
            state.active_seconds += time.monotonic() - started
        outcome.behind = validation.behind
        outcome.paused_seconds = run.throttle.paused_seconds - paused


def row_estimate(pinned: Pinned, table: Table) -> int | None:
    """Return InnoDB's estimate of the source's row count, for progress."""
    value = pinned.source.value(
        "SELECT TABLE_ROWS FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (table.schema, table.name),
    )
    return int(value) if value is not None else None


def not_comparable(table: Table, mismatch: str) -> Result:
    return Result(
        str(table),
        Status.UNKNOWN,
        f"not compared: the columns differ ({mismatch})",
        details={
            "state": "not_comparable",
            "columns": mismatch,
            "last_clean_pass": None,
            "differences": [],
        },
    )
