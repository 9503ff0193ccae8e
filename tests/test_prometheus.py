"""/metrics: the exposition in-process, and a real Prometheus scraping a daemon."""

from __future__ import annotations

import json
import math
import subprocess
import urllib.parse
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from daemon_process import free_port, wait_for
from encmond.webapp import make_app
from inprocess import Client, items_table, open_monitor, run_jobs

FAILING_PLUGIN = '''\
from encmond import Check, hookimpl


class Fails(Check):
    """Raises on every run."""

    name = "fails"
    scope = "server"
    interval = 60.0

    def run(self, ctx):
        raise RuntimeError("fails on purpose")


@hookimpl
def register_checks():
    return [Fails]
'''


@pytest.fixture(scope="module")
def monitor(pair, tmp_path_factory):
    """A monitor of one 100-row table, with a check that fails on each server."""
    directory = tmp_path_factory.mktemp("prometheus")
    plugins = directory / "plugins.d"
    plugins.mkdir()
    (plugins / "fails.py").write_text(FAILING_PLUGIN)
    plugin_dirs = {"dirs": [str(plugins)]}
    # Lag alerts fire and resolve on the first run, not after a minute.
    checks = {"replica_lag": {"for": 0, "keep_firing_for": 0}}
    with items_table(pair, "prom", 100) as table:
        with open_monitor(
            pair, directory, tables=[table], plugins=plugin_dirs, checks=checks
        ) as monitor:
            yield monitor


@pytest.fixture(scope="module")
def app(monitor):
    """The app, made before the first runs as in the daemon, so that its
    collector counts the failed runs."""
    app = make_app(monitor)
    run_jobs(monitor)
    return app


def scrape(app) -> dict[tuple, float]:
    """Return every sample of a scrape, keyed by (name, sorted label items)."""
    response = Client(app).get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, *sorted(labels.items()))]


def test_metrics_state(app):
    samples = scrape(app)
    for server in ("source", "target"):
        assert value(samples, "encmond_up", server=server, role=server) == 1
    assert value(samples, "encmond_replica_lag_seconds", target="target") == 0
    assert value(samples, "encmond_replica_lag_known", target="target") == 1
    for thread in ("io", "sql"):
        running = value(
            samples, "encmond_replica_thread_running", target="target", thread=thread
        )
        assert running == 1
    table = {"target": "target", "table": "prom.items"}
    assert value(samples, "encmond_table_checksum_match", **table) == 1
    for server in ("source", "target"):
        rows = value(samples, "encmond_table_rows", server=server, **table)
        assert rows == 100


def test_metrics_check_runs(app):
    samples = scrape(app)
    for check in ("connection", "fails"):
        for server in ("source", "target"):
            labels = {"check": check, "server": server}
            assert value(samples, "encmond_check_duration_seconds", **labels) >= 0
            errors = value(samples, "encmond_check_errors_total", **labels)
            assert errors == (1 if check == "fails" else 0)
    status = {"check": "checksum", "server": "target", "subject": "prom.items"}
    assert value(samples, "encmond_check_status", status="OK", **status) == 1
    assert value(samples, "encmond_check_status", status="CRITICAL", **status) == 0
    for server in ("source", "target"):
        firing = value(
            samples, "encmond_alerts_firing", server=server, severity="WARNING"
        )
        assert firing == 1
        critical = value(
            samples, "encmond_alerts_firing", server=server, severity="CRITICAL"
        )
        assert critical == 0


def test_metrics_null_lag(pair, monitor, app):
    critical = {"server": "target", "severity": "CRITICAL"}
    pair.target.execute("STOP SLAVE SQL_THREAD")
    try:
        run_jobs(monitor, "replica_lag")
        samples = scrape(app)
        assert math.isnan(
            value(samples, "encmond_replica_lag_seconds", target="target")
        )
        assert value(samples, "encmond_replica_lag_known", target="target") == 0
        sql = {"target": "target", "thread": "sql"}
        assert value(samples, "encmond_replica_thread_running", **sql) == 0
        assert value(samples, "encmond_alerts_firing", **critical) == 1
    finally:
        pair.target.execute("START SLAVE SQL_THREAD")
        pair.wait_caught_up()
    run_jobs(monitor, "replica_lag")
    samples = scrape(app)
    assert value(samples, "encmond_replica_lag_known", target="target") == 1
    assert value(samples, "encmond_alerts_firing", **critical) == 0


def test_metrics_scrape_no_query(monitor, app):
    statements = []
    for connection in (monitor.store.reader, monitor.store.writer):
        connection.set_trace_callback(statements.append)
    try:
        Client(app).get("/metrics")
    finally:
        for connection in (monitor.store.reader, monitor.store.writer):
            connection.set_trace_callback(None)
    assert statements == []


def start_prometheus(directory, target: str, token_file) -> tuple:
    """Start Debian's prometheus scraping ``target`` every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "encmond",
                "scrape_timeout": "1s",
                "authorization": {"credentials_file": str(token_file)},
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(directory / "prometheus.log", "wb")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config_path}",
            f"--storage.tsdb.path={directory / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
    )
    log.close()
    return process, port


def query(port: int, expression: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": expression}
    )
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]["result"]
    except OSError:
        return []


def test_prometheus_scrapes_lag(write_config, daemon, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("prometheus-test-token\n")
    encmond = daemon(
        write_config(
            web={"auth_token_file": str(token_file)},
            checks={"replica_lag": {"interval": "1s"}},
        )
    )
    process, port = start_prometheus(tmp_path, f"127.0.0.1:{encmond.port}", token_file)
    try:
        lag = wait_for(
            lambda: query(port, "encmond_replica_lag_seconds"),
            60,
            interval=0.5,
            message="prometheus stored no encmond_replica_lag_seconds",
        )
        assert lag[0]["metric"]["target"] == "target"
        assert lag[0]["metric"]["job"] == "encmond"
        assert float(lag[0]["value"][1]) == 0
        known = query(port, "encmond_replica_lag_known")
        assert float(known[0]["value"][1]) == 1
    finally:
        process.terminate()
        process.wait(30)
