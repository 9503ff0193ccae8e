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

from encmond.compare import read_presence
from encmond.config import Table
from encmond.model import Check, Result, Status
from encmond.runner import CheckContext
from encmond.settings import Setting, integer, positive_duration
from encmond.state import ReadOnlyStore
from encmond.store import Store
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
    """One run of a check for one target; ``deadline`` is a time.monotonic()
    value after which the run starts no new chunk."""

    deadline: float


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
    replication_dependent = True

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings)
        self.progress = ProgressStore()
        # Pauses still open at the end of a run, by (target, table), so that
        # a pause over several runs is logged once when it starts and ends.
        self.paused: dict[tuple[str, str], str] = {}

    def run(self, ctx: CheckContext):
        store = writable_store(ctx)
        if self.progress.store is not store:
            self.progress = ProgressStore(store)
        # One instance runs for every target, possibly at the same time, so
        # the deadline of one run is passed along instead of kept on self.
        run = Run(time.monotonic() + self.settings["timeout"] * RUN_SHARE)
        # A table found only on the source waits for the target once per run,
        # with the check's wait_timeout (not a per-table override), and never
        # past the run's deadline.
        wait_timeout = min(
            self.settings["wait_timeout"], max(0.0, run.deadline - time.monotonic())
        )
        presence = read_presence(ctx, ctx.tables, wait_timeout)
        for table in self.ordered(ctx):
            problem = presence.result(table)
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

    def outcome(self, settings, shape: Shape, whole_table: str | None) -> Outcome:
        return Outcome(
            self.name,
            shape.key,
            whole_table,
            wait_timeout=settings["wait_timeout"],
            stale_after=settings["stale_after"],
            max_differences=settings["max_differences"],
            timeout=self.settings["timeout"],
            # Without a writable store the progress ends with the command.
            resumable=self.progress.store is not None,
        )

    def compare_table(self, ctx: CheckContext, table: Table, run: Run) -> Result:
        key = self.key(ctx, table)
        state = self.progress.load(key)
        settings = self.settings_for(table)
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
            outcome = self.outcome(settings, shapes[0], whole_table)
            if time.monotonic() < run.deadline:
                pinned = Pinned(source, target, settings["wait_timeout"], timeout)
                throttle = self.throttle(ctx, table, settings)
                outcome.behind = self.advance(
                    run, table, key, state, shapes, pinned, throttle
                )
                self.record_pause(ctx, table, throttle, outcome)
        return table_result(table, state, outcome)

    def throttle(self, ctx: CheckContext, table: Table, settings) -> Throttle:
        limits = (
            settings["max_lag"],
            settings["max_threads_running"],
            settings["wait_timeout"],
        )
        paused = self.paused.get((ctx.name, str(table)))
        return Throttle(ctx.source, ctx.target, limits, ctx.log, paused)

    def record_pause(self, ctx, table, throttle: Throttle, outcome: Outcome):
        """Keep a pause that is still open for the next run, and report it."""
        if throttle.paused is None:
            self.paused.pop((ctx.name, str(table)), None)
        else:
            self.paused[(ctx.name, str(table))] = throttle.paused
        outcome.paused_seconds = throttle.paused_seconds
        outcome.paused = throttle.stopped
        outcome.paused_by = throttle.stopped_by

    def advance(self, run, table, key, state: PassState, shapes, pinned, throttle):
        """Run the table's pass until it finishes or the run's time is up.

        Returns the source position the target did not reach, or "".
        """
        if not state.running:
            state.start(time.time())
            state.rows_estimate = row_estimate(pinned, table)
        settings = self.settings_for(table)
        validation = TableValidation(
            table,
            self.measure,
            shapes,
            Limits(
                settings["chunk_time"],
                settings["wait_timeout"],
                settings["max_differences"],
            ),
            throttle,
            run.deadline,
            throttle.log,
        )
        started = time.monotonic()
        try:
            validation.run(pinned, state, self.progress, key)
        finally:
            state.active_seconds += time.monotonic() - started
        return validation.behind


def writable_store(ctx: CheckContext) -> Store | None:
    """Return the daemon's store, or None where the store is read-only.

    ``encmond check`` reads the daemon's database without writing, so its
    passes keep their progress in memory and start from the first chunk.
    """
    store = ctx.state.store if ctx.state is not None else None
    if store is None or isinstance(store, ReadOnlyStore):
        return None
    return store


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
