"""The monitor: runs jobs and sends each outcome to storage, alerts and clients."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from encmond.alerts import AlertManager, Route
from encmond.config import Config
from encmond.db import Database
from encmond.events import Hub
from encmond.model import Alert, Result, Status
from encmond.notify import Dispatcher
from encmond.plugins_loader import Plugins
from encmond.runner import RUN_SUBJECT, Job, Outcome, Runner, build_jobs
from encmond.store import Store

log = logging.getLogger(__name__)


class Monitor:
    """Everything one configuration watches, wired to one store."""

    def __init__(self, config: Config, plugins: Plugins, store: Store) -> None:
        self.config = config
        self.plugins = plugins
        self.store = store
        self.started_at = time.time()
        self.hub = Hub()
        self.databases = {
            name: Database(server) for name, server in config.servers.items()
        }
        self.checks = [
            cls(config.checks[name])
            for name, cls in plugins.checks.items()
            if config.checks[name]["enabled"]
        ]
        self.jobs = build_jobs(config, self.checks, self.databases)
        self.runner = Runner()
        self.runner.remember(store.latest())
        notifiers = [
            plugins.notifiers[settings["type"]](settings)
            for settings in config.notifiers
        ]
        self.alerts = AlertManager(
            store,
            [Route(settings) for settings in config.notifiers],
            config.alerts["renotify"],
            listeners=[self.on_alert],
        )
        self.dispatcher = Dispatcher(store, notifiers)
        # Called with (job, outcome) after each run is stored.
        self.outcome_listeners: list[Callable[[Job, Outcome], None]] = []

    def run_job(self, job: Job) -> Outcome:
        """Run one job and record its outcome."""
        outcome = self.runner.run(job)
        self.record(job, outcome)
        return outcome

    def record(self, job: Job, outcome: Outcome) -> None:
        results = outcome.results
        self.store.save_results(results)
        for listener in self.outcome_listeners:
            try:
                listener(job, outcome)
            except Exception:
                log.exception("an outcome listener failed on a run of %s", job)
        self.hub.publish(
            {"type": "results", "results": [result.to_dict() for result in results]}
        )
        changes = self.alerts.process(results + self.run_results(job, outcome))
        self.call_hook("on_results", results=results)
        if any(event for _, event in changes):
            self.dispatcher.wake()

    def run_results(self, job: Job, outcome: Outcome) -> list[Result]:
        """Return the pseudo-result that fires or resolves the job's "run" alert."""
        if outcome.unavailable:
            return []
        status = Status.WARNING if outcome.error else Status.OK
        message = f"check failed: {outcome.error}" if outcome.error else "check runs"
        return [
            Result(
                subject=RUN_SUBJECT,
                status=status,
                message=message,
                check=job.check.name,
                server=job.context.name,
                time=time.time(),
            )
        ]

    def on_alert(self, alert: Alert, event: str) -> None:
        self.hub.publish({"type": "alert", "event": event, "alert": alert.to_dict()})
        self.call_hook("on_alert", alert=alert, event=event)

    def call_hook(self, name: str, **kwargs) -> None:
        try:
            getattr(self.plugins.hook, name)(**kwargs)
        except Exception:
            log.exception("a plugin's %s hook failed", name)

    def close(self) -> None:
        for database in self.databases.values():
            database.close()
