"""Prometheus metrics at ``/metrics``, served from state kept in memory.

The collector reads the latest result of each (check, server, subject), the
statistics of each job's runs and the alert manager's open alerts, all held
in memory. A scrape sends no query to MariaDB or SQLite. The collector reads
the stored latest results once, when it is created, so a restarted daemon
exports the last known state at once.

Every series about a target carries its name in the ``target`` label, and
series about one server carry it in ``server``. A value that is not known,
such as the lag while ``Seconds_Behind_Master`` is NULL, is exported as NaN
instead of leaving the series out, so the series never vanishes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import bottle
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from encmond import __version__
from encmond.model import Result, Severity, Status
from encmond.monitor import Monitor
from encmond.runner import Job, Outcome

NAN = math.nan

ResultKey = tuple[str, str, str]


class StateCollector:
    """A prometheus_client collector of one Monitor's in-memory state."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.latest: dict[ResultKey, Result] = {
            result_key(result): result for result in monitor.store.latest()
        }
        self.durations: dict[tuple[str, str], float] = {}
        self.last_runs: dict[tuple[str, str], float] = {}
        self.errors: Counter[tuple[str, str]] = Counter()
        for result in self.latest.values():
            key = (result.check, result.server)
            if result.duration is not None:
                self.durations[key] = result.duration
            self.last_runs[key] = max(self.last_runs.get(key, 0.0), result.time)
        monitor.outcome_listeners.append(self.record)

    def record(self, job: Job, outcome: Outcome) -> None:
        """Keep the results and run statistics of one run."""
        key = (job.check.name, job.context.name)
        for result in outcome.results:
            self.latest[result_key(result)] = result
        if outcome.duration is not None:
            self.durations[key] = outcome.duration
        if outcome.results:
            self.last_runs[key] = max(result.time for result in outcome.results)
        if outcome.error and not outcome.unavailable:
            self.errors[key] += 1

    def result(self, check: str, server: str, subject: str) -> Result | None:
        return self.latest.get((check, server, subject))

    def collect(self) -> Iterator[Metric]:
        config = self.monitor.config
        info = GaugeMetricFamily(
            "encmond_build_info", "encmond's version; always 1", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        yield from self.server_metrics(config.servers)
        yield from self.replication_metrics(list(config.targets))
        tables = [str(table) for table in config.tables]
        yield from self.table_metrics(list(config.targets), tables)
        yield self.alert_metrics(list(config.servers))
        yield from self.check_metrics()

    def server_metrics(self, servers: dict) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "encmond_up",
            "1 when the last connection check reached the server, 0 when it "
            "did not, NaN when the check failed; absent until the first check",
            labels=["server", "role"],
        )
        latency = GaugeMetricFamily(
            "encmond_connection_latency_seconds",
            "round-trip time of SELECT 1 in the last connection check; NaN "
            "when the server was down",
            labels=["server", "role"],
        )
        for name, server in servers.items():
            found = self.result("connection", name, name)
            if found is None:
                continue
            labels = [name, server.role]
            up.add_metric(labels, known(found.metrics.get("up")))
            latency.add_metric(labels, known(found.metrics.get("latency_seconds")))
        yield up
        yield latency

    def replication_metrics(self, targets: list[str]) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "encmond_replica_lag_seconds",
            "replica lag of the target from the signal that drives the lag "
            "alert (Seconds_Behind_Master, GTID or heartbeat); NaN while "
            "unknown (see encmond_replica_lag_known)",
            labels=["target"],
        )
        lag_known = GaugeMetricFamily(
            "encmond_replica_lag_known",
            "1 when the target reported its lag, 0 when the lag is NULL or "
            "was not read",
            labels=["target"],
        )
        threads = GaugeMetricFamily(
            "encmond_replica_thread_running",
            "1 when the replication thread (io or sql) runs, else 0; NaN while unknown",
            labels=["target", "thread"],
        )
        behind = GaugeMetricFamily(
            "encmond_replica_transactions_behind",
            "GTID transactions the source binlogged that the target has not "
            "applied; NaN while unknown",
            labels=["target"],
        )
        for target in targets:
            found = self.result("replica_lag", target, "replication")
            metrics = found.metrics if found else {}
            seconds = metrics.get("lag_seconds")
            lag.add_metric([target], known(seconds))
            lag_known.add_metric([target], 0 if seconds is None else 1)
            for thread in ("io", "sql"):
                value = known(metrics.get(f"{thread}_running"))
                threads.add_metric([target, thread], value)
            behind.add_metric([target], known(metrics.get("transactions_behind")))
        yield from (lag, lag_known, threads, behind)

    def table_metrics(self, targets: list[str], tables: list[str]) -> Iterator[Metric]:
        match = GaugeMetricFamily(
            "encmond_table_checksum_match",
            "1 when the table's checksums match on source and target, 0 when "
            "they differ or the table is missing on one side, NaN while unknown",
            labels=["target", "table"],
        )
        rows = GaugeMetricFamily(
            "encmond_table_rows",
            "rows counted in the table on the server by the last row_count "
            "check; NaN while unknown",
            labels=["target", "table", "server"],
        )
        for target in targets:
            for table in tables:
                checksum = self.result("checksum", target, table)
                match.add_metric([target, table], checksum_match(checksum))
                count = self.result("row_count", target, table)
                metrics = count.metrics if count else {}
                for side, server in (("source", "source"), ("target", target)):
                    value = known(metrics.get(f"{side}_rows"))
                    rows.add_metric([target, table, server], value)
        yield match
        yield rows

    def alert_metrics(self, servers: list[str]) -> Metric:
        counts: Counter[tuple[str, str]] = Counter(
            (alert.server, alert.severity.value)
            for alert in list(self.monitor.alerts.open.values())
            if alert.state == "firing"
        )
        family = GaugeMetricFamily(
            "encmond_alerts_firing",
            "firing alerts, silenced or acknowledged ones included, by the "
            "server they are about and severity",
            labels=["server", "severity"],
        )
        names = dict.fromkeys(servers) | dict.fromkeys(s for s, _ in counts)
        for server in names:
            for severity in Severity:
                family.add_metric(
                    [server, severity.value], counts[(server, severity.value)]
                )
        return family

    def check_metrics(self) -> Iterator[Metric]:
        labels = ["check", "server"]
        duration = GaugeMetricFamily(
            "encmond_check_duration_seconds",
            "wall-clock time of the check's last run",
            labels=labels,
        )
        last_run = GaugeMetricFamily(
            "encmond_check_last_run_timestamp_seconds",
            "start of the check's last run with results, in Unix time",
            labels=labels,
        )
        errors = CounterMetricFamily(
            "encmond_check_errors",
            "runs that raised an error or timed out since encmond started; a "
            "run skipped because its server was unreachable is not counted",
            labels=labels,
        )
        status = GaugeMetricFamily(
            "encmond_check_status",
            "1 for the status of the check's last result for the subject, "
            "0 for the other statuses",
            labels=[*labels, "subject", "status"],
        )
        for job in self.monitor.jobs:
            key = (job.check.name, job.context.name)
            if key in self.durations:
                duration.add_metric(list(key), self.durations[key])
            if self.last_runs.get(key):
                last_run.add_metric(list(key), self.last_runs[key])
            errors.add_metric(list(key), self.errors[key])
        for key in [key for key in self.latest if not self.monitor.monitored(*key)]:
            del self.latest[key]  # removed from the configuration by a reload
        for (check, server, subject), result in sorted(self.latest.items()):
            for state in Status:
                value = int(result.status is state)
                status.add_metric([check, server, subject, state.value], value)
        yield from (duration, last_run, errors, status)


def result_key(result: Result) -> ResultKey:
    return (result.check, result.server, result.subject)


def known(value: float | None) -> float:
    """Return ``value`` as a float, or NaN for None."""
    return NAN if value is None else float(value)


def checksum_match(result: Result | None) -> float:
    if result is None:
        return NAN
    if result.status is Status.OK:
        return 1.0
    if result.status is Status.CRITICAL:
        return 0.0
    return NAN


def make_registry(monitor: Monitor) -> CollectorRegistry:
    """Return a registry with the state collector and the process's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(monitor))
    ProcessCollector(registry=registry)
    return registry


def install(app: bottle.Bottle, monitor: Monitor) -> None:
    """Add ``GET /metrics`` to ``app``."""
    registry = make_registry(monitor)

    @app.get("/metrics")
    def metrics():
        accept = bottle.request.get_header("Accept", "")
        encode, content_type = choose_encoder(accept)
        return bottle.HTTPResponse(
            body=encode(registry), headers={"Content-Type": content_type}
        )
