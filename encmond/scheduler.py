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
PRUNE_JOB = "prune"


class CheckScheduler:
    """Runs a Monitor's jobs at their intervals and prunes the store."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.scheduler = GeventScheduler(timezone=datetime.UTC)
        self.running: dict[str, gevent.Greenlet] = {}
        self.skipped: dict[str, int] = {}

    def start(self) -> None:
        self.schedule(self.monitor.jobs)
        self.scheduler.add_job(
            self.prune,
            "interval",
            id=PRUNE_JOB,
            name="prune storage",
            seconds=self.monitor.config.storage["prune_interval"],
            next_run_time=datetime.datetime.now(datetime.UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self.scheduler.start()
        log.info("scheduled %d check jobs", len(self.monitor.jobs))

    def schedule(self, jobs: list[Job], keep: dict | None = None) -> None:
        """Add an interval job per check job, each first run ``STAGGER`` apart.

        ``keep`` maps job ids to (interval, next run time) from ``unschedule``:
        a job whose interval is unchanged keeps its next run time, so a reload
        does not run every check at once.
        """
        keep = keep or {}
        now = datetime.datetime.now(datetime.UTC)
        for index, job in enumerate(jobs):
            interval, next_run = keep.get(job.id, (None, None))
            if interval != job.interval or next_run is None:
                next_run = now + datetime.timedelta(seconds=index * STAGGER)
            self.scheduler.add_job(
                self.run,
                "interval",
                args=[job],
                id=job.id,
                name=str(job),
                seconds=job.interval,
                next_run_time=next_run,
                max_instances=2,
                coalesce=True,
                misfire_grace_time=None,
            )

    def unschedule(self) -> dict[str, tuple[float, datetime.datetime]]:
        """Remove every check job; returns each one's interval and next run time."""
        removed = {}
        for scheduled in self.scheduler.get_jobs():
            if scheduled.id == PRUNE_JOB:
                continue
            interval = scheduled.trigger.interval.total_seconds()
            removed[scheduled.id] = (interval, scheduled.next_run_time)
            scheduled.remove()
        return removed

    def pause(self, grace: float) -> dict[str, tuple[float, datetime.datetime]]:
        """Remove the check jobs and stop running checks, for a reload.

        Running checks get ``grace`` seconds to finish and are killed after
        that, so no check of the old configuration runs once this returns.
        Returns what ``resume`` needs to keep each job's next run time.
        """
        keep = self.unschedule()
        self.stop_running(grace, "reload")
        return keep

    def resume(self, keep: dict[str, tuple[float, datetime.datetime]]) -> None:
        """Schedule the monitor's current jobs and prune interval after a reload."""
        self.schedule(self.monitor.jobs, keep)
        self.scheduler.reschedule_job(
            PRUNE_JOB,
            trigger="interval",
            seconds=self.monitor.config.storage["prune_interval"],
        )

    def stop_running(self, grace: float, reason: str) -> None:
        """Wait up to ``grace`` seconds for running checks, then kill the rest."""
        running = dict(self.running)
        if not running:
            return
        log.info(
            "%s: waiting up to %g s for running checks to finish: %s",
            reason,
            grace,
            ", ".join(sorted(running)),
        )
        gevent.joinall(list(running.values()), timeout=grace)
        left = {job_id: g for job_id, g in running.items() if not g.dead}
        if left:
            gevent.killall(list(left.values()), timeout=grace)
            log.warning(
                "%s: interrupted checks still running after %g s: %s",
                reason,
                grace,
                ", ".join(sorted(left)),
            )

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
        except gevent.GreenletExit:
            # stop_running killed it and logged that; returning keeps APScheduler
            # from logging the kill as the job's failure.
            log.debug("%s was interrupted", job)
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

    def shutdown(self, grace: float = 5.0) -> None:
        """Stop scheduling and kill checks still running after ``grace`` seconds."""
        self.scheduler.shutdown(wait=False)
        self.stop_running(grace, "stop")
