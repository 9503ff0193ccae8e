"""The monitor: runs jobs and sends each outcome to storage, alerts and clients."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from encmond.alert_policy import Policies
from encmond.alerts import AlertManager, Route
from encmond.config import Config, ServerConfig
from encmond.db import Database
from encmond.events import Hub
from encmond.model import Alert, Check, Notifier, Result, Status
from encmond.notify import Dispatcher
from encmond.plugins_loader import Plugins
from encmond.runner import RUN_SUBJECT, Job, Outcome, Runner, build_jobs
from encmond.state import State
from encmond.store import Store

log = logging.getLogger(__name__)

NO_LONGER_MONITORED = "no longer monitored: removed from the configuration"
# Store metadata: the configured tables, to find the ones removed across a restart.
TABLES_META = "tables"


@dataclass
class Setup:
    """The parts built from one configuration, ready to be swapped in."""

    config: Config
    plugins: Plugins
    databases: dict[str, Database]
    checks: list[Check]
    jobs: list[Job]
    notifiers: list[Notifier]
    routes: list[Route]


class Monitor:
    """Everything one configuration watches, wired to one store.

    The store, the event hub and the runner's memory stay for the daemon's
    life; a reload replaces the rest through ``prepare`` and ``apply``.
    """

    def __init__(self, config: Config, plugins: Plugins, store: Store) -> None:
        self.store = store
        self.started_at = time.time()
        self.hub = Hub()
        self.runner = Runner()
        self.runner.remember(store.latest())
        self.state = State(store)
        # Called with (job, outcome) after each run is stored; kept on reload.
        self.outcome_listeners: list[Callable[[Job, Outcome], None]] = []
        self.databases: dict[str, Database] = {}
        self.config: Config | None = None
        self.apply(self.prepare(config, plugins))

    def prepare(self, config: Config, plugins: Plugins) -> Setup:
        """Build the parts of ``config`` without touching the running ones.

        A server whose settings are unchanged keeps its Database, so its
        connections and its known up or down state carry over.
        """
        databases = {
            name: self.reuse_database(server) for name, server in config.servers.items()
        }
        checks = [
            cls(config.checks[name])
            for name, cls in plugins.checks.items()
            if config.checks[name]["enabled"]
        ]
        notifiers = [
            plugins.notifiers[settings["type"]](settings)
            for settings in config.notifiers
        ]
        return Setup(
            config,
            plugins,
            databases,
            checks,
            build_jobs(config, checks, databases, self.state),
            notifiers,
            [Route(settings) for settings in config.notifiers],
        )

    def reuse_database(self, server: ServerConfig) -> Database:
        running = self.databases.get(server.name)
        if running is not None and running.config == server:
            return running
        return Database(server)

    def apply(self, setup: Setup) -> list[Database]:
        """Swap in ``setup``; returns the Databases it no longer uses.

        The caller stops the old dispatcher, starts the new one and closes the
        returned Databases once no job uses them.
        """
        retired = [
            database
            for database in self.databases.values()
            if database not in setup.databases.values()
        ]
        if self.config is not None:
            previous = table_names(self.config)
        else:
            previous = set(self.store.get_meta(TABLES_META) or [])
        removed_tables = previous - table_names(setup.config)
        self.config = setup.config
        self.plugins = setup.plugins
        self.databases = setup.databases
        self.checks = setup.checks
        self.jobs = setup.jobs
        self.alerts = AlertManager(
            self.store,
            setup.routes,
            setup.config.alerts["renotify"],
            listeners=[self.on_alert],
            policies=Policies(setup.config.checks),
            dependent_checks=[c.name for c in setup.checks if c.replication_dependent],
        )
        self.dispatcher = Dispatcher(
            self.store, setup.notifiers, self.alerts.firing_for
        )
        self.monitored = monitored_by(setup, removed_tables)
        self.runner.forget(removed_tables)
        self.retire_unmonitored()
        self.retire_outbox(setup.config)
        self.store.set_meta(TABLES_META, sorted(table_names(setup.config)))
        return retired

    def retire_unmonitored(self) -> None:
        """Close the alerts and forget the results that ``monitored`` rejects."""
        monitored = self.monitored
        changes = self.alerts.retire(
            lambda alert: monitored(alert.check, alert.server, alert.subject),
            NO_LONGER_MONITORED,
        )
        forgotten = self.store.forget_latest(monitored)
        if changes or forgotten:
            log.info(
                "closed %d open alerts and forgot %d results of checks, servers "
                "or tables no longer configured",
                len(changes),
                forgotten,
            )

    def retire_outbox(self, config: Config) -> None:
        """Give up the queued notifications of notifiers no longer configured."""
        names = [settings["name"] for settings in config.notifiers]
        dropped = self.store.give_up_others(names, NO_LONGER_MONITORED, time.time())
        if dropped:
            log.info(
                "dropped %d queued notifications of notifiers no longer configured",
                dropped,
            )

    def run_job(self, job: Job) -> Outcome:
        """Run one job and record its outcome."""
        outcome = self.runner.run(job)
        self.record(job, outcome)
        return outcome

    def record(self, job: Job, outcome: Outcome) -> None:
        # A run that started before a reload can report what it removed.
        results = [
            result
            for result in outcome.results
            if self.monitored(result.check, result.server, result.subject)
        ]
        outcome.results = results
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


def table_names(config: Config) -> set[str]:
    return {str(table) for table in config.tables}


def monitored_by(
    setup: Setup, removed_tables: set[str]
) -> Callable[[str, str, str], bool]:
    """Return whether a (check, server, subject) is still configured in ``setup``.

    Checks now disabled or gone and servers removed are not, and neither are
    the tables removed since the last configuration, at a reload or since the
    last start.
    """
    checks = {check.name for check in setup.checks}
    servers = set(setup.config.servers)

    def monitored(check: str, server: str, subject: str) -> bool:
        return check in checks and server in servers and subject not in removed_tables

    return monitored
