"""Pausing validation while the target lags or the source is busy.

Before a chunk, at most once per ``CHECK_INTERVAL`` seconds, the throttle
reads the target's replica lag and the source's ``Threads_running``. Over a
limit it pauses until both are under their limits again, for at most
``max_pause`` seconds and never past the run's deadline; after that the run
ends and the next run goes on. A stopped SQL thread (NULL lag) cannot catch
up on its own, so the run ends at once. A target without replica status (no
replication configured) is not throttled on lag.

A pause is logged once when it starts, with the reason, and once when it
ends, even when it spans several runs: the caller passes the reason of a
pause still open from the last run as ``paused``.
"""

from __future__ import annotations

import logging
import time

from encmond.db import Database
from encmond.errors import PrivilegeError
from encmond.replication import replica_status

CHECK_INTERVAL = 1.0  # seconds between two looks at lag and load
PAUSE_STEP = 1.0  # seconds slept between two looks while paused
LAG, LOAD = "lag", "load"


class Throttle:
    """Lag and load limits for one table on one target.

    After ``wait`` returned False, ``stopped`` is the reason and
    ``stopped_by`` is LAG or LOAD; ``paused`` stays set while a pause is
    open, for the next run.
    """

    def __init__(
        self,
        source: Database,
        target: Database,
        limits: tuple[float, int, float],
        log: logging.Logger,
        paused: str | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.max_lag, self.max_threads_running, self.max_pause = limits
        self.log = log
        self.paused = paused
        self.stopped: str | None = None
        self.stopped_by = ""
        self.checked_at = 0.0
        self.paused_seconds = 0.0
        self.warned = False

    def reason(self) -> tuple[str | None, str, bool]:
        """Return (why to pause or None, LAG or LOAD, whether waiting can help)."""
        status = self.replica_status()
        if status is not None:
            lag = status["lag_seconds"]
            if lag is None:
                return (
                    f"target lag is unknown ({thread_states(status)})",
                    LAG,
                    False,
                )
            if lag > self.max_lag:
                text = f"target lag {lag} s exceeds max_lag {self.max_lag:g} s"
                return text, LAG, True
        row = self.source.query_one("SHOW GLOBAL STATUS LIKE 'Threads_running'")
        running = int(row["Value"]) if row else 0
        if running > self.max_threads_running:
            text = (
                f"source Threads_running {running} exceeds max_threads_running "
                f"{self.max_threads_running}"
            )
            return text, LOAD, True
        return None, "", True

    def replica_status(self) -> dict | None:
        """Return the target's replica status; None if unreadable or not a replica."""
        try:
            return replica_status(
                self.target, self.target.config.replication_connection
            )
        except PrivilegeError as exc:
            if not self.warned:
                self.warned = True
                self.log.warning("validation does not throttle on target lag: %s", exc)
            return None

    def wait(self, label: str, deadline: float) -> bool:
        """Block while over a limit; return False when the run should end.

        ``deadline`` is a time.monotonic() value; ``label`` names the table
        in log lines.
        """
        now = time.monotonic()
        if now - self.checked_at < CHECK_INTERVAL:
            return True
        self.checked_at = now
        reason, kind, can_wait = self.reason()
        if reason is not None and self.paused is None:
            self.log.info("pausing validation of %s: %s", label, reason)
        if reason is not None:
            self.paused = reason
        if reason is not None and can_wait:
            reason, kind = self.sleep(min(deadline, now + self.max_pause), kind)
        if reason is not None:
            self.stopped, self.stopped_by = reason, kind
            return False
        if self.paused is not None:
            self.log.info("resuming validation of %s", label)
            self.paused = None
        return True

    def sleep(self, until: float, kind: str) -> tuple[str | None, str]:
        """Sleep until under the limits or ``until``; return the last reason."""
        started = time.monotonic()
        reason = self.paused
        while reason is not None and time.monotonic() < until:
            time.sleep(min(PAUSE_STEP, max(until - time.monotonic(), 0)))
            reason, kind, _ = self.reason()
        self.paused_seconds += time.monotonic() - started
        self.checked_at = time.monotonic()
        return reason, kind


def thread_states(status: dict) -> str:
    """Name the replication threads that are not running, or both states."""
    threads = {"IO": status.get("io_running"), "SQL": status.get("sql_running")}
    stopped = [name for name, running in threads.items() if running != "Yes"]
    if not stopped:
        return "replication IO and SQL threads running"
    states = ", ".join(f"{name} {threads[name] or 'No'}" for name in stopped)
    return f"replication thread not running: {states}"
