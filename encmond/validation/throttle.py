"""Pausing validation while the target lags or the source is busy.

Before a chunk, at most once per ``CHECK_INTERVAL`` seconds, the throttle
reads the target's replica lag and the source's ``Threads_running``. Over a
limit it pauses, logging once when a pause starts (with the reason) and once
when it ends, until both are under their limits again or the run's time is
up. A target without replica status (no replication configured) is not
throttled on lag; a stopped SQL thread (NULL lag) pauses.
"""

from __future__ import annotations

import logging
import time

from encmond.db import Database
from encmond.errors import PrivilegeError
from encmond.replication import replica_status

CHECK_INTERVAL = 1.0  # seconds between two looks at lag and load
PAUSE_STEP = 1.0  # seconds slept between two looks while paused


class Throttle:
    """Lag and load limits for one target; ``wait`` blocks while over them."""

    def __init__(
        self,
        source: Database,
        target: Database,
        max_lag: float,
        max_threads_running: int,
        log: logging.Logger,
    ) -> None:
        self.source = source
        self.target = target
        self.max_lag = max_lag
        self.max_threads_running = max_threads_running
        self.log = log
        self.checked_at = 0.0
        self.paused_seconds = 0.0
        self.pauses = 0
        self.warned = False

    def reason(self) -> str | None:
        """Return why validation should pause now, or None to go on."""
        status = self.replica_status()
        if status is not None:
            lag = status["lag_seconds"]
            if lag is None:
                return (
                    "target lag is unknown (replication SQL thread "
                    f"{status['sql_running'] or 'not running'})"
                )
            if lag > self.max_lag:
                return f"target lag {lag} s exceeds max_lag {self.max_lag:g} s"
        row = self.source.query_one("SHOW GLOBAL STATUS LIKE 'Threads_running'")
        running = int(row["Value"]) if row else 0
        if running > self.max_threads_running:
            return (
                f"source Threads_running {running} exceeds max_threads_running "
                f"{self.max_threads_running}"
            )
        return None

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
        """Block while over a limit; return False if ``deadline`` came first.

        ``deadline`` is a time.monotonic() value; ``label`` names the table
        in log lines.
        """
        now = time.monotonic()
        if now - self.checked_at < CHECK_INTERVAL:
            return True
        self.checked_at = now
        reason = self.reason()
        if reason is None:
            return True
        self.pauses += 1
        self.log.info("pausing validation of %s: %s", label, reason)
        started = now
        while reason is not None and time.monotonic() < deadline:
            time.sleep(min(PAUSE_STEP, max(deadline - time.monotonic(), 0)))
            reason = self.reason()
        paused = time.monotonic() - started
        self.paused_seconds += paused
        self.checked_at = time.monotonic()
        if reason is not None:
            self.log.info(
                "validation of %s stays paused after %.1f s: %s; it resumes on the "
                "next run",
                label,
                paused,
                reason,
            )
            return False
        self.log.info("resuming validation of %s after %.1f s", label, paused)
        return True
