"""Scheduling: one APScheduler interval job per check and server, plus pruning.

Each job runs in its own greenlet under ``GeventScheduler``. When a run is still
going at the next due time, that next run is skipped, so a check never runs
twice at once. The runner's timeout bounds how long a run can go on.
"""

from __future__ import annotations

import datetime
import logging
import time

import gevent
from apscheduler.schedulers.gevent import GeventScheduler

from encmond.monitor import Monitor
from encmond.runner import Job

log = logging.getLogger(__name__)

# APScheduler logs every run at INFO; its warnings and errors still show.
logging.getLogger("apscheduler").setLevel(logging.WARNING)

STAGGER = 0.2  # seconds between the first runs of consecutive jobs


class CheckScheduler:
    """Runs a Monitor's jobs at their intervals and prunes the store."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.scheduler = GeventScheduler(timezone=datetime.UTC)
        self.running: dict[str, gevent.Greenlet] = {}
        self.skipped: dict[str, int] = {}

    def start(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        for index, job in enumerate(self.monitor.jobs):
            self.scheduler.add_job(
                self.run,
                "interval",
                args=[job],
                id=job.id,
                name=str(job),
                seconds=job.interval,
                next_run_time=now + datetime.timedelta(seconds=index * STAGGER),
                max_instances=2,
                coalesce=True,
                misfire_grace_time=None,
            )
        storage = self.monitor.config.storage
        self.scheduler.add_job(
            self.prune,
            "interval",
            id="prune",
            name="prune storage",
            seconds=storage["prune_interval"],
            next_run_time=now,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self.scheduler.start()
        log.info("scheduled %d check jobs", len(self.monitor.jobs))

    def run(self, job: Job) -> None:
        if job.id in self.running:
            self.skipped[job.id] = self.skipped.get(job.id, 0) + 1
            if self.skipped[job.id] == 1:
                log.info(
                    "%s is still running at its next interval; skipping runs "
                    "until it finishes (timeout %g s)",
                    job,
                    job.timeout,
                )
            return
        skipped = self.skipped.pop(job.id, 0)
        if skipped:
            log.debug("%s runs on schedule again after %d skipped runs", job, skipped)
        self.running[job.id] = gevent.getcurrent()
        try:
            self.monitor.run_job(job)
        except Exception:
            log.exception("recording the outcome of %s failed", job)
        finally:
            self.running.pop(job.id, None)

    def prune(self) -> None:
        retention = self.monitor.config.storage["retention"]
        try:
            counts = self.monitor.store.prune(retention, time.time())
        except Exception:
            log.exception("pruning the store failed")
            return
        log.debug("pruned rows older than %g s: %s", retention, counts)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop scheduling and kill running checks after ``timeout`` seconds."""
        self.scheduler.shutdown(wait=False)
        running = list(self.running.values())
        if running:
            gevent.joinall(running, timeout=timeout)
            gevent.killall([g for g in running if not g.dead], timeout=timeout)
