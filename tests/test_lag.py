"""Lag signals: the pure reconciliation, and replica_lag against the real pair."""

from __future__ import annotations

import subprocess
import threading

import pytest

from daemon_process import wait_for
from delay_proxy import DelayProxy
from encmond.config import parse_table
from encmond.db import Database
from encmond.heartbeat import CREATE_TABLE, format_ts, parse_ts, write
from encmond.lag import (
    BEHIND,
    CAUGHT_UP,
    IDLE,
    IO_BEHIND,
    STOPPED,
    GtidHistory,
    LagTrend,
    Signals,
    classify,
)
from encmond.loading import load
from encmond.model import Status
from encmond.plugins.checks.replica_lag import Memory
from encmond.runner import Runner
from helpers import find, job_of, results_of

DELAY = 3  # seconds of MASTER_DELAY


def signals(**overrides) -> Signals:
    values = dict(
        threads_running=True,
        seconds_behind_master=0,
        transactions_behind={0: 0},
        io_transactions_behind={0: 0},
        gtid_lag=0.0,
        heartbeat=None,
    )
    return Signals(**(values | overrides))


@pytest.mark.parametrize(
    ("overrides", "state"),
    [
        ({}, CAUGHT_UP),
        ({"threads_running": False}, STOPPED),
        ({"seconds_behind_master": None}, STOPPED),
        ({"io_transactions_behind": {0: 4}, "transactions_behind": {0: 4}}, IO_BEHIND),
        ({"idle_seconds": 30.0}, IDLE),
        ({"seconds_behind_master": 7, "transactions_behind": {0: 9}}, BEHIND),
        ({"gtid_lag": 2.5}, BEHIND),
    ],
)
def test_classify_states(overrides, state):
    assert classify(signals(**overrides)) == state


def test_gtid_history_ages_backlog():
    history = GtidHistory()
    history.record({0: (1, 10)}, 100.0)
    history.record({0: (1, 12)}, 102.0)
    history.record({0: (1, 15)}, 104.0)

    assert history.lag({0: (1, 15)}, 105.0) == (0.0, 0.0)
    assert history.lag({0: (1, 11)}, 105.0) == (4.0, 1.0)
    assert history.lag({0: (1, 9)}, 105.0) == (5.0, None)


def test_gtid_history_empty_unknown():
    assert GtidHistory().lag({0: (1, 3)}, 10.0) == (None, None)


def test_trend_eta_shrinking():
    trend = LagTrend(window=300)
    for second, lag in ((0, 100.0), (10, 90.0), (20, 80.0)):
        trend.add(1000.0 + second, lag)

    assert trend.rate() == pytest.approx(-1.0)
    assert trend.eta(80.0) == pytest.approx(80.0)


def test_trend_growing_no_eta():
    trend = LagTrend(window=300)
    for second in range(4):
        trend.add(float(second), 10.0 + second)

    assert trend.eta(13.0) is None
    assert trend.eta(0.0) == 0.0


def test_trend_reset_by_unknown_lag():
    trend = LagTrend(window=300)
    for second in range(3):
        trend.add(float(second), 5.0)
    trend.add(3.0, None)

    assert trend.rate() is None


def test_heartbeat_ts_round_trip():
    text = format_ts(1714566896.123456)

    assert text == "2024-05-01T12:34:56.123456"
    assert parse_ts(text) == pytest.approx(1714566896.123456)
    assert parse_ts("2024-05-01T12:34:56") == 1714566896.0
    assert parse_ts(None) is None


@pytest.fixture
def heartbeat_table(pair, schema):
    """A pt-heartbeat table on the source, replicated, writable by encmond there."""
    table = f"{schema}.heartbeat"
    pair.source.execute(CREATE_TABLE.format(table=f"`{schema}`.`heartbeat`"))
    grant = f"INSERT, UPDATE ON `{schema}`.`heartbeat`"
    pair.source.execute_unlogged(f"GRANT {grant} TO '{pair.monitor_user}'@'%'")
    pair.wait_caught_up()
    yield table
    pair.source.execute_unlogged(f"REVOKE {grant} FROM '{pair.monitor_user}'@'%'")


class Writer(threading.Thread):
    """Writes the heartbeat row every 0.25 s, as encmond's writer would."""

    def __init__(self, config_path, table: str) -> None:
        super().__init__(daemon=True)
        config, _ = load(str(config_path))
        self.source = Database(config.source)
        self.table = parse_table(table)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.25):
            write(self.source, self.table, 1)

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        self.source.close()


def set_delay(pair, seconds: int) -> None:
    pair.target.execute_unlogged(
        "STOP SLAVE", f"CHANGE MASTER TO MASTER_DELAY={seconds}", "START SLAVE"
    )


def test_master_delay_signals_agree(pair, write_config, heartbeat_table):
    path = write_config(
        checks={"heartbeat": {"table": heartbeat_table, "interval": "250ms"}}
    )
    job = job_of(path, "replica_lag")
    runner = Runner()
    writer = Writer(path, heartbeat_table)
    writer.start()
    set_delay(pair, DELAY)

    def steady():
        result = find(runner.run(job).results, "replica_lag", "replication")
        metrics = result.metrics
        ready = (
            (metrics["seconds_behind_master"] or 0) >= DELAY - 1
            and result.details["heartbeat"]["method"] == "applied"
            and metrics["gtid_lag_precision_seconds"] is not None
        )
        return result if ready else None

    try:
        result = wait_for(steady, 90, interval=0.1, message="lag never settled")
    finally:
        writer.stop()
        set_delay(pair, 0)
        pair.wait_caught_up()

    metrics = result.metrics
    sbm = metrics["seconds_behind_master"]
    heartbeat = metrics["heartbeat_lag_seconds"]
    gtid = metrics["gtid_lag_seconds"]
    # MASTER_DELAY counts from the event's whole-second timestamp, so a row
    # waits between DELAY - 1 and DELAY seconds.
    assert abs(sbm - DELAY) <= 1, metrics
    assert abs(heartbeat - DELAY) <= 1 + metrics["heartbeat_precision_seconds"]
    assert abs(gtid - DELAY) <= 1 + metrics["gtid_lag_precision_seconds"], metrics
    assert abs(heartbeat - sbm) <= 1 + metrics["heartbeat_precision_seconds"]
    assert metrics["lag_seconds"] == heartbeat
    assert metrics["sql_delay_seconds"] == DELAY
    assert result.details["lag_state"] == BEHIND
    assert result.details["lag_signal"] == "heartbeat"
    assert f"MASTER_DELAY {DELAY} s" in result.message


def test_thresholds_in_details(write_config):
    path = write_config(checks={"replica_lag": {"warning": "10s", "critical": "1m"}})
    outcome = Runner().run(job_of(path, "replica_lag"))
    details = find(outcome.results, "replica_lag", "replication").details
    assert details["warning_seconds"] == 10.0
    assert details["critical_seconds"] == 60.0


def test_stopped_replication_null_lag(pair, write_config):
    pair.target.execute_unlogged("STOP SLAVE")
    try:
        results = results_of(write_config(), ["replica_lag"])
    finally:
        pair.target.execute_unlogged("START SLAVE")
    replication = find(results, "replica_lag", "replication")
    assert replication.status is Status.CRITICAL
    assert replication.metrics["lag_seconds"] is None
    assert replication.details["lag_state"] == STOPPED
    assert replication.message.startswith("replication stopped: ")
    assert find(results, "replica_lag", "catch_up").status is Status.UNKNOWN


def test_io_thread_behind_named(pair, write_config, schema):
    pair.source.execute(f"CREATE TABLE {schema}.ticks (id INT PRIMARY KEY)")
    pair.wait_caught_up()
    job = job_of(write_config(), "replica_lag")
    runner = Runner()
    ticks = iter(range(1, 1000))

    def io_behind():
        pair.source.execute(f"INSERT INTO {schema}.ticks VALUES ({next(ticks)})")
        result = find(runner.run(job).results, "replica_lag", "replication")
        return result if result.details["lag_state"] == IO_BEHIND else None

    with DelayProxy(pair.source.port) as proxy:
        pair.target.execute_unlogged(
            "STOP SLAVE", f"CHANGE MASTER TO MASTER_PORT={proxy.port}", "START SLAVE"
        )
        try:
            wait_for(
                lambda: (
                    (pair.target.slave_status() or {}).get("Slave_IO_Running") == "Yes"
                ),
                30,
                message="the IO thread did not connect through the proxy",
            )
            pair.wait_caught_up()
            proxy.delay = 5.0
            result = wait_for(io_behind, 60, message="IO thread behind not named")
        finally:
            proxy.delay = 0.0
            pair.target.execute_unlogged(
                "STOP SLAVE",
                f"CHANGE MASTER TO MASTER_PORT={pair.source.port}",
                "START SLAVE",
            )
    pair.wait_caught_up()
    assert result.status is Status.WARNING
    assert result.metrics["seconds_behind_master"] == 0
    assert result.metrics["io_transactions_behind"] > 0
    assert "the IO thread has not received" in result.message


def test_stale_heartbeat_falls_back(pair, write_config, heartbeat_table):
    pair.source.execute(
        f"INSERT INTO {heartbeat_table} (ts, server_id) VALUES (%s, 1)",
        (format_ts(1_000_000_000.0),),
    )
    pair.wait_caught_up()
    path = write_config(checks={"heartbeat": {"table": heartbeat_table}})
    result = find(results_of(path, ["replica_lag"]), "replica_lag", "replication")
    assert result.status is Status.WARNING
    assert result.details["lag_signal"] == "seconds_behind_master"
    assert result.metrics["lag_seconds"] == 0
    assert result.metrics["heartbeat_lag_seconds"] is None
    assert "its writer is not running" in result.message


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        (None, "not found"),
        ("(id INT PRIMARY KEY, ts DATETIME)", "has no server_id column"),
    ],
)
def test_unusable_heartbeat_table(pair, write_config, schema, definition, problem):
    if definition:
        pair.source.execute(f"CREATE TABLE {schema}.beat {definition}")
        pair.wait_caught_up()
    path = write_config(checks={"heartbeat": {"table": f"{schema}.beat"}})
    result = find(results_of(path, ["replica_lag"]), "replica_lag", "replication")
    error = result.details["heartbeat_error"]
    assert result.status is Status.WARNING
    assert result.metrics["lag_seconds"] == 0
    assert f"heartbeat table {schema}.beat {problem}" in error
    assert "pt-heartbeat --create-table" in error
    assert "CREATE TABLE" in error


def test_writer_feeds_pt_heartbeat(pair, write_config, heartbeat_table):
    path = write_config(checks={"heartbeat": {"table": heartbeat_table, "write": True}})
    written = find(results_of(path, ["heartbeat"]), "heartbeat", "heartbeat")
    pair.wait_caught_up()
    schema, table = heartbeat_table.split(".")
    checked = subprocess.run(
        [
            "pt-heartbeat",
            "--check",
            "--utc",
            "--master-server-id=1",
            f"--database={schema}",
            f"--table={table}",
            "--host=127.0.0.1",
            f"--port={pair.target.port}",
            "--user=root",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert written.status is Status.OK
    assert written.server == "source"
    assert checked.returncode == 0, checked.stderr
    assert float(checked.stdout) >= 0


def test_eta_past_retention_warns(pair, write_config):
    job = job_of(write_config(), "replica_lag")
    memory = Memory(LagTrend(window=300))
    for second in range(0, 40, 10):
        memory.trend.add(1000.0 + second, 600.0 - second * 0.5)
    pair.source.execute("SET GLOBAL binlog_expire_logs_seconds = 600")
    try:
        result = job.check.catch_up(job.context, memory, 580.0)
    finally:
        pair.source.execute("SET GLOBAL binlog_expire_logs_seconds = 0")
    assert result.status is Status.WARNING
    assert result.metrics["eta_seconds"] == pytest.approx(1160.0)
    assert result.metrics["binlog_retention_seconds"] == 600
    assert "binlog_expire_logs_seconds=600" in result.message
    assert "the ETA passes the source's binlog retention" in result.message


def test_eta_within_retention_ok(pair, write_config):
    job = job_of(write_config(), "replica_lag")
    memory = Memory(LagTrend(window=300))
    for second in range(0, 40, 10):
        memory.trend.add(1000.0 + second, 60.0 - second)
    result = job.check.catch_up(job.context, memory, 30.0)
    assert result.status is Status.OK
    assert result.metrics["eta_seconds"] == pytest.approx(30.0)
    assert result.message.startswith("catching up: lag 30 s shrinks by 60.0 s")
