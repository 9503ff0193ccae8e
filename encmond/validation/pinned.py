"""Reading the same statement on the source, pinned, and on the caught-up target.

On the source the statement runs inside ``START TRANSACTION WITH CONSISTENT
SNAPSHOT``, and ``@@GLOBAL.gtid_binlog_pos`` is read in the same transaction.
That position is at or after the snapshot, so once the target has applied it
(``MASTER_GTID_WAIT``) the target contains at least everything the snapshot saw.
Nothing is ever written to either server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gevent

from encmond.db import Session
from encmond.runner import capture

# Session settings that change how values are written as text. Every session
# that reads rows for comparison pins them, on both servers alike; db.py
# already pins time_zone and the utf8mb4 character set.
SESSION_SETTINGS = (
    "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
)


def pin_session(session: Session) -> None:
    for statement in SESSION_SETTINGS:
        session.query(statement)


@dataclass
class Reading:
    """The rows of one statement, how long it took, and the source position.

    ``derived`` replaces the first row's values for a reading computed from
    other readings instead of read.
    """

    rows: list[dict[str, Any]]
    seconds: float
    position: str = ""
    derived: tuple[Any, ...] | None = None

    @property
    def value(self) -> tuple[Any, ...]:
        """The first row's values, NULL as 0 (SUM over no rows is NULL)."""
        if self.derived is not None:
            return self.derived
        if not self.rows:
            return ()
        return tuple(0 if value is None else value for value in self.rows[0].values())

    @property
    def count(self) -> int:
        return int(self.value[0] or 0) if self.value else 0


class Pinned:
    """A source session and a target session that read statements pinned.

    ``wait_timeout`` is how long, in seconds, a target read waits for the
    target to apply the source position before it gives up. ``read_timeout``
    is the sessions' read timeout in seconds. MariaDB stops a statement one
    second before it (``max_statement_time``), so each MASTER_GTID_WAIT
    waits at most two seconds less.
    """

    def __init__(
        self,
        source: Session,
        target: Session,
        wait_timeout: float,
        read_timeout: float,
    ) -> None:
        self.source = source
        self.target = target
        self.wait_timeout = wait_timeout
        self.piece = max(1.0, read_timeout - 2.0)
        self.reached = ""

    def read_source(self, sql: str, args: list[Any]) -> Reading:
        """Run ``sql`` in a new consistent snapshot; return rows and position."""
        started = time.monotonic()
        self.source.query("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        try:
            rows = self.source.query(sql, args)
            position = self.source.value("SELECT @@GLOBAL.gtid_binlog_pos") or ""
        finally:
            self.source.query("COMMIT")
        return Reading(rows, time.monotonic() - started, position)

    def read_target(self, sql: str, args: list[Any], position: str):
        """Wait until the target applied ``position``, then run ``sql``.

        Returns None when the target did not get there within wait_timeout.
        """
        if not self.wait(position):
            return None
        started = time.monotonic()
        rows = self.target.query(sql, args)
        return Reading(rows, time.monotonic() - started)

    def wait(self, position: str) -> bool:
        """Wait with MASTER_GTID_WAIT, in slices shorter than the read timeout.

        Returns False when wait_timeout passes first.
        """
        if not position or position == self.reached:
            return True
        deadline = time.monotonic() + self.wait_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            reached = self.target.value(
                "SELECT MASTER_GTID_WAIT(%s, %s)",
                (position, round(min(self.piece, remaining), 3)),
            )
            if reached == 0:
                self.reached = position
                return True
            if reached is None:
                return False

    def read_both(self, sql: str, args: list[Any]):
        """Read on the source and on the target once caught up.

        Once the target has applied some position, the target read starts
        at the same time as the source read, and counts if the source read
        returns that same position (nothing was written in between);
        otherwise the target is read again after waiting. Returns (source
        reading, target reading or None when behind).
        """
        if not self.reached:
            source = self.read_source(sql, args)
            return source, self.read_target(sql, args, source.position)
        reached = self.reached
        early = gevent.spawn(capture, lambda: self.target.query(sql, args))
        try:
            source = self.read_source(sql, args)
        except BaseException:
            early.kill(block=False)
            raise
        early.join()
        failed, rows = early.value
        if failed:
            raise rows
        if source.position == reached:
            return source, Reading(rows, 0.0)
        return source, self.read_target(sql, args, source.position)
