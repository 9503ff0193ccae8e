"""Running one check against one server or pair, with a timeout.

A run produces Results. A run that raises, or runs past its timeout, turns the
check's subjects UNKNOWN with the error and raises a WARNING alert keyed
(check, server, "run"). An unreachable server turns them UNKNOWN without an
alert, because the connection check alerts on that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent

from encmond.config import Config, Table
from encmond.db import Database
from encmond.errors import CheckTimeout, EncmondError, ServerUnavailable
from encmond.model import Check, Result, Status
from encmond.state import State

log = logging.getLogger(__name__)

RUN_SUBJECT = "run"


@dataclass
class CheckContext:
    """What a check run gets: the servers it looks at and the configuration.

    For a ``pair`` check, ``source`` and ``target`` are set and ``server`` is
    the target; for a ``server`` check, ``server`` is the one server to look at.
    ``name`` is the server label that results carry by default. ``state``
    reads other checks' latest results and the firing alerts.
    """

    check: Check
    config: Config
    name: str
    source: Database | None = None
    target: Database | None = None
    server: Database | None = None
    log: logging.Logger = field(default_factory=lambda: log)
    state: State | None = None

    @property
    def tables(self) -> list[Table]:
        return self.config.tables

    @property
    def settings(self) -> dict[str, Any]:
        return self.check.settings

    def parallel(self, *functions: Callable[[], Any]) -> list[Any]:
        """Call functions concurrently and return their values in order.

        The first exception is raised once all have finished; if the caller is
        interrupted (by its timeout, say), the remaining calls are killed.
        """
        greenlets = [gevent.spawn(capture, function) for function in functions]
        try:
            gevent.joinall(greenlets)
        finally:
            gevent.killall([g for g in greenlets if not g.dead], block=False)
        values = []
        for greenlet in greenlets:
            failed, value = greenlet.value
            if failed:
                raise value
            values.append(value)
        return values


def capture(function: Callable[[], Any]) -> tuple[bool, Any]:
    """Call ``function`` and return (failed, value or exception).

    Returning the exception instead of raising it keeps gevent from printing a
    traceback for every failed greenlet; ``parallel`` re-raises it.
    """
    try:
        return False, function()
    except Exception as exc:
        return True, exc


@dataclass
class Job:
    """One check bound to one server (server scope) or one target (pair scope)."""

    check: Check
    context: CheckContext

    @property
    def id(self) -> str:
        return f"{self.check.name}:{self.context.name}"

    @property
    def interval(self) -> float:
        return self.check.settings["interval"]

    @property
    def timeout(self) -> float:
        return self.check.settings["timeout"]

    def __str__(self) -> str:
        return f"{self.check.name} on {self.context.name}"


def build_jobs(
    config: Config,
    checks: list[Check],
    databases: dict[str, Database],
    state: State | None = None,
) -> list[Job]:
    """Bind each enabled check to the servers or targets its scope covers."""
    jobs = []
    source = databases["source"]
    for check in checks:
        if check.scope == "server":
            for name, database in databases.items():
                context = CheckContext(
                    check,
                    config,
                    name,
                    source=source,
                    server=database,
                    log=logging.getLogger(f"encmond.checks.{check}"),
                    state=state,
                )
                jobs.append(Job(check, context))
            continue
        for name in config.targets:
            context = CheckContext(
                check,
                config,
                name,
                source=source,
                target=databases[name],
                server=databases[name],
                log=logging.getLogger(f"encmond.checks.{check}"),
                state=state,
            )
            jobs.append(Job(check, context))
    return jobs


@dataclass
class Outcome:
    """The results of one run, and the error that made it fail, if any.

    ``duration`` is the run's wall-clock time in seconds.
    """

    results: list[Result]
    error: str | None = None
    unavailable: bool = False
    duration: float | None = None


class Runner:
    """Runs jobs and remembers each job's subjects, for UNKNOWN on failure."""

    def __init__(self) -> None:
        self.subjects: dict[str, list[str]] = {}
        self.failing: dict[str, str] = {}

    def remember(self, results: list[Result]) -> None:
        """Seed the known subjects from stored results (after a restart)."""
        for result in results:
            key = f"{result.check}:{result.server}"
            self.subjects.setdefault(key, []).append(result.subject)

    def forget(self, subjects: set[str]) -> None:
        """Stop reporting ``subjects`` as UNKNOWN when their job fails."""
        for job_id, known in self.subjects.items():
            self.subjects[job_id] = [name for name in known if name not in subjects]

    def run(self, job: Job) -> Outcome:
        started = time.time()
        clock = time.monotonic()
        try:
            with gevent.Timeout(job.timeout) as timeout:
                try:
                    results = list(job.check.run(job.context) or [])
                except gevent.Timeout as exc:
                    if exc is not timeout:
                        raise
                    raise CheckTimeout(job.check.name, job.timeout) from None
        except ServerUnavailable as exc:
            outcome = self.failed(job, str(exc), started, unavailable=True)
        except Exception as exc:
            if job.id not in self.failing:
                log.warning(
                    "%s failed: %s",
                    job,
                    exc,
                    exc_info=not isinstance(exc, EncmondError),
                )
            outcome = self.failed(
                job,
                f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, CheckTimeout)
                else str(exc),
                started,
            )
        else:
            if self.failing.pop(job.id, None) is not None:
                log.info("%s runs again", job)
            outcome = Outcome(results)
            self.subjects[job.id] = [result.subject for result in results]
        duration = time.monotonic() - clock
        outcome.duration = duration
        for result in outcome.results:
            result.check = job.check.name
            result.server = result.server or job.context.name
            result.time = result.time or started
            result.duration = duration
        return outcome

    def failed(
        self, job: Job, error: str, started: float, unavailable: bool = False
    ) -> Outcome:
        if not unavailable:
            self.failing[job.id] = error
        subjects = self.subjects.get(job.id) or [job.context.name]
        results = [
            Result(
                subject=subject,
                status=Status.UNKNOWN,
                message=error,
                details={"error": error},
                time=started,
            )
            for subject in dict.fromkeys(subjects)
        ]
        return Outcome(results, error=error, unavailable=unavailable)
