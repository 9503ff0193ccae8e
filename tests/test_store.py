"""The SQLite store and the alert manager, on real database files."""

import sqlite3

import pytest

from encmond.alerts import AlertManager, Route
from encmond.model import Result, Severity, Status
from encmond.store import MIGRATIONS, Store

NOW = 1_800_000_000.0


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "encmond.db"))
    yield store
    store.close()


def lag(value, at, status=Status.OK):
    return Result(
        "replication",
        status,
        f"lag {value}",
        {"lag_seconds": value},
        check="replica_lag",
        server="target",
        time=at,
    )


def route(name="log", min_severity="INFO", checks=(), subjects=()):
    return Route(
        {
            "name": name,
            "min_severity": min_severity,
            "checks": list(checks),
            "subjects": list(subjects),
        }
    )


def test_store_wal_and_version(store):
    connection = sqlite3.connect(store.path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    connection.close()


def test_store_reopen_keeps_data(tmp_path):
    path = str(tmp_path / "encmond.db")
    first = Store(path)
    first.save_results([lag(3, NOW)])
    first.close()
    second = Store(path)
    assert second.latest()[0].metrics == {"lag_seconds": 3}
    second.close()


def test_store_rejects_newer_schema(tmp_path):
    path = str(tmp_path / "encmond.db")
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 999")
    connection.close()
    with pytest.raises(RuntimeError, match="schema version 999"):
        Store(path)


def test_latest_replaces_previous(store):
    store.save_results([lag(3, NOW)])
    store.save_results([lag(5, NOW + 1)])
    latest = store.latest()
    assert len(latest) == 1
    assert latest[0].metrics["lag_seconds"] == 5
    assert latest[0].time == NOW + 1


def test_null_metric_not_stored(store):
    store.save_results([lag(None, NOW, Status.CRITICAL)])
    assert store.latest()[0].metrics["lag_seconds"] is None
    assert store.find_series("lag_seconds") == []


def test_history_downsamples(store):
    store.save_results([lag(value % 10, NOW + value) for value in range(1000)])
    series = store.find_series("lag_seconds", server="target")[0]
    buckets = store.history(series["id"], NOW, NOW + 1000, 10)
    assert len(buckets) == 10
    assert sum(bucket["count"] for bucket in buckets) == 1000
    assert buckets[0]["min"] == 0
    assert buckets[0]["max"] == 9
    assert buckets[0]["mean"] == pytest.approx(4.5)


def test_history_respects_range(store):
    store.save_results([lag(value, NOW + value) for value in range(100)])
    series = store.find_series("lag_seconds")[0]
    buckets = store.history(series["id"], NOW + 50, NOW + 59, 100)
    assert sum(bucket["count"] for bucket in buckets) == 10
    assert min(bucket["min"] for bucket in buckets) == 50


def test_prune_old_rows(store):
    store.save_results([lag(1, NOW - 90000), lag(2, NOW)])
    counts = store.prune(86400, now=NOW)
    assert counts["samples"] == 1
    series = store.find_series("lag_seconds")[0]
    assert [b["count"] for b in store.history(series["id"], 0, NOW + 1, 1)] == [1]
    assert store.integrity_check() == "ok"


def test_prune_keeps_firing_alerts(store):
    alerts = AlertManager(store, [], 3600)
    alerts.process([lag(400, NOW - 90000, Status.CRITICAL)], now=NOW - 90000)
    store.prune(86400, now=NOW)
    assert len(store.alerts("firing")) == 1


def test_alert_fires_and_resolves(store):
    alerts = AlertManager(store, [route()], 3600)
    changes = alerts.process([lag(400, NOW, Status.CRITICAL)], now=NOW)
    assert [event for _, event in changes] == ["firing"]
    changes = alerts.process([lag(0, NOW + 10)], now=NOW + 10)
    assert [event for _, event in changes] == ["resolved"]
    stored = store.alerts()[0]
    assert stored.state == "resolved"
    assert stored.resolved_at == NOW + 10
    assert [e["event"] for e in store.alert_events(stored.id)] == ["firing", "resolved"]
    assert store.pending_count("log") == 2


def test_alert_repeat_is_deduplicated(store):
    alerts = AlertManager(store, [route()], 3600)
    for offset in range(10):
        alerts.process([lag(400, NOW + offset, Status.CRITICAL)], now=NOW + offset)
    assert store.pending_count() == 1
    assert len(store.alerts()) == 1


def test_alert_renotify_after_interval(store):
    alerts = AlertManager(store, [route()], 3600)
    alerts.process([lag(400, NOW, Status.CRITICAL)], now=NOW)
    changes = alerts.process([lag(400, NOW + 3600, Status.CRITICAL)], now=NOW + 3600)
    assert [event for _, event in changes] == ["renotify"]
    assert store.pending_count() == 2


def test_alert_severity_change_notifies(store):
    alerts = AlertManager(store, [route()], 3600)
    alerts.process([lag(40, NOW, Status.WARNING)], now=NOW)
    changes = alerts.process([lag(400, NOW + 5, Status.CRITICAL)], now=NOW + 5)
    assert [event for _, event in changes] == ["changed"]
    assert store.alerts()[0].severity is Severity.CRITICAL


def test_alert_unknown_changes_nothing(store):
    alerts = AlertManager(store, [route()], 3600)
    alerts.process([lag(400, NOW, Status.CRITICAL)], now=NOW)
    changes = alerts.process([lag(None, NOW + 5, Status.UNKNOWN)], now=NOW + 5)
    assert changes == []
    assert store.alerts()[0].state == "firing"


def test_alert_survives_restart(store):
    AlertManager(store, [route()], 3600).process(
        [lag(400, NOW, Status.CRITICAL)], now=NOW
    )
    restarted = AlertManager(store, [route()], 3600)
    changes = restarted.process([lag(400, NOW + 5, Status.CRITICAL)], now=NOW + 5)
    assert [event for _, event in changes if event] == []
    assert store.pending_count() == 1
    changes = restarted.process([lag(0, NOW + 10)], now=NOW + 10)
    assert [event for _, event in changes] == ["resolved"]


def test_route_filters(store):
    routes = [
        route("critical-only", "CRITICAL"),
        route("lag-only", checks=["x"]),
        route("all"),
    ]
    AlertManager(store, routes, 3600).process([lag(40, NOW, Status.WARNING)], now=NOW)
    assert store.pending_count("critical-only") == 0
    assert store.pending_count("lag-only") == 0
    assert store.pending_count("all") == 1


def test_history_sample_at_until(store):
    store.save_results([lag(value, NOW + value) for value in range(11)])
    series = store.find_series("lag_seconds")[0]
    buckets = store.history(series["id"], NOW, NOW + 10, 5)
    assert len(buckets) == 5
    assert buckets[-1]["max"] == 10
    assert sum(bucket["count"] for bucket in buckets) == 11


def test_history_values_exact(store):
    value = 0.1 + 0.2
    store.save_results([lag(value, NOW), lag(-1 / 3, NOW + 1)])
    series = store.find_series("lag_seconds")[0]
    buckets = store.history(series["id"], NOW, NOW + 2, 1)
    assert buckets[0]["max"] == value
    assert buckets[0]["min"] == -1 / 3
    assert buckets[0]["mean"] == (value - 1 / 3) / 2
