"""The alert lifecycle, inhibition, silences and acknowledgements, in process.

A real Monitor is built from a configuration file (its servers are never
contacted), results go through its AlertManager, and notifications are
delivered by its Worker to receivers on loopback.
"""

from __future__ import annotations

import pytest

from encmond.errors import ConfigError
from encmond.model import Result, Severity, Status
from encmond.silences import Silence
from receivers import HTTPReceiver, Monitors

NOW = 1_800_000_000.0
TABLES = ["shop.orders", "shop.audit"]  # as Monitors configures them


@pytest.fixture
def build(tmp_path):
    with Monitors(tmp_path) as monitors:
        yield monitors.build


def evaluate(status, settings=None):
    """Run replica_lag's own evaluation on a replica status row, offline."""
    from encmond.lag import LagTrend
    from encmond.plugins.checks.replica_lag import Memory, Reading, ReplicaLag
    from encmond.replication import normalise_status

    check = ReplicaLag(
        {"signal": "seconds_behind_master", "eta_window": 300.0}
        | (settings or {"warning": 30.0, "critical": 300.0})
    )
    reading = Reading(None, normalise_status({}) | status, {})
    return check.evaluate(reading, check.signals(reading, Memory(LagTrend(300.0))))


def lag_result(seconds, at, settings=None):
    """Build a replica_lag result through the check's own evaluation."""
    status = {
        "io_running": "Yes",
        "sql_running": "Yes",
        "lag_seconds": seconds,
        "last_io_errno": 0,
        "last_io_error": "",
        "last_sql_errno": 0,
        "last_sql_error": "",
    }
    return stamp(evaluate(status, settings), "replica_lag", at)


def stopped_result(at, error="Duplicate entry '7' for key 'PRIMARY'"):
    status = {
        "io_running": "Yes",
        "sql_running": "No",
        "lag_seconds": None,
        "last_io_errno": 0,
        "last_io_error": "",
        "last_sql_errno": 1062,
        "last_sql_error": error,
    }
    return stamp(evaluate(status), "replica_lag", at)


def stamp(result, check, at, server="target"):
    result.check = check
    result.server = server
    result.time = at
    return result


def result(check, subject, status, at, server="target", message=None):
    return Result(
        subject,
        status,
        message or f"{subject} {status.value}",
        check=check,
        server=server,
        time=at,
    )


def events(changes):
    return [event for _, event in changes if event]


def webhook(url, **extra):
    return {"type": "webhook", "url": url, "retry_delay": "1s", **extra}


def test_lag_pending_for_a_minute(build):
    monitor = build()
    alerts, store = monitor.alerts, monitor.store
    assert events(alerts.process([lag_result(400, NOW)], NOW)) == ["pending"]
    assert store.alerts("pending")[0].condition == "lag"
    assert events(alerts.process([lag_result(400, NOW + 30)], NOW + 30)) == []
    assert store.pending_count() == 0
    changes = alerts.process([lag_result(400, NOW + 60)], NOW + 60)
    assert events(changes) == ["firing"]
    assert store.pending_count("log") == 1
    firing = store.alerts("firing")[0]
    assert firing.pending_since == NOW
    assert firing.fired_at == NOW + 60


def test_connection_loss_fires_at_once(build):
    monitor = build()
    changes = monitor.alerts.process(
        [result("connection", "target", Status.CRITICAL, NOW)], NOW
    )
    assert events(changes) == ["firing"]


def test_pending_dropped_when_clear(build):
    monitor = build()
    alerts, store = monitor.alerts, monitor.store
    alerts.process([lag_result(400, NOW)], NOW)
    alerts.process([lag_result(0, NOW + 10)], NOW + 10)
    changes = alerts.process([lag_result(0, NOW + 80)], NOW + 80)
    assert events(changes) == ["dropped"]
    assert store.alerts() == []
    assert store.pending_count() == 0


def test_flapping_lag_notifies_once(build):
    with HTTPReceiver() as receiver:
        monitor = build(notifiers=[webhook(receiver.url)])
        worker = monitor.dispatcher.workers["webhook"]
        at = NOW
        # Ten minutes of lag crossing the 30 s threshold every 3 seconds.
        for step in range(600):
            at = NOW + step
            lag = 45 if (step // 3) % 2 == 0 else 5
            monitor.alerts.process([lag_result(lag, at)], at)
            worker.deliver_due(at)
        assert len(monitor.store.alerts()) == 1
        assert [r.json["status"] for r in receiver.accepted()] == ["firing"]
        for step in range(1, 121):
            monitor.alerts.process([lag_result(0, at + step)], at + step)
            worker.deliver_due(at + step)
    statuses = [r.json["status"] for r in receiver.accepted()]
    assert statuses == ["firing", "resolved"]
    assert receiver.count() == 2


def test_lag_conditions_are_distinct(build):
    monitor = build(checks={"replica_lag": {"for": 0, "keep_firing_for": 0}})
    alerts, store = monitor.alerts, monitor.store
    alerts.process([lag_result(400, NOW)], NOW)
    alerts.process([stopped_result(NOW + 5)], NOW + 5)
    firing = {alert.condition: alert for alert in store.alerts("firing")}
    assert sorted(firing) == ["lag", "stopped"]
    assert "error 1062: Duplicate entry '7' for key 'PRIMARY'" in (
        firing["stopped"].message
    )
    assert firing["lag"].inhibited_by == "replica_lag/target/replication/stopped"
    assert firing["stopped"].inhibited_by is None
    assert firing["stopped"].subject == "replication"
    assert firing["lag"].fingerprint != firing["stopped"].fingerprint
    changes = alerts.process([lag_result(None, NOW + 10)], NOW + 10)
    assert "resolved" in events(changes)
    open_alerts = {a.condition: a for a in store.alerts() if a.state != "resolved"}
    assert sorted(open_alerts) == ["lag", "lag_unknown"]


def test_alert_without_condition_resolved(build):
    monitor = build(checks={"replica_lag": {"for": 0, "keep_firing_for": 0}})
    old = Result(
        "replication",
        Status.CRITICAL,
        "replication stopped",
        check="replica_lag",
        server="target",
    )
    monitor.alerts.process([old], NOW)
    assert events(monitor.alerts.process([lag_result(0, NOW + 5)], NOW + 5)) == [
        "resolved"
    ]
    assert monitor.store.alerts("firing") == []


def test_keep_firing_for_bridges_gap(build):
    monitor = build(checks={"connection": {"keep_firing_for": "30s"}})
    alerts, store = monitor.alerts, monitor.store
    down = [result("connection", "target", Status.CRITICAL, NOW)]
    up = [result("connection", "target", Status.OK, NOW)]
    alerts.process(down, NOW)
    assert events(alerts.process(up, NOW + 10)) == []
    assert events(alerts.process(up, NOW + 20)) == []
    assert events(alerts.process(down, NOW + 25)) == []
    assert events(alerts.process(up, NOW + 30)) == []
    assert events(alerts.process(up, NOW + 60)) == ["resolved"]
    assert len(store.alerts()) == 1
    assert store.pending_count("log") == 2


def test_pending_survives_restart(build, tmp_path):
    monitor = build()
    monitor.alerts.process([lag_result(400, NOW)], NOW)
    restarted = build()
    changes = restarted.alerts.process([lag_result(400, NOW + 60)], NOW + 60)
    assert events(changes) == ["firing"]
    assert len(restarted.store.alerts()) == 1


def test_severity_drop_is_quiet(build):
    monitor = build(checks={"replica_lag": {"for": 0}})
    alerts, store = monitor.alerts, monitor.store
    alerts.process([lag_result(400, NOW)], NOW)
    assert events(alerts.process([lag_result(40, NOW + 5)], NOW + 5)) == []
    assert store.alerts()[0].severity is Severity.WARNING
    assert events(alerts.process([lag_result(400, NOW + 10)], NOW + 10)) == []
    assert store.pending_count("log") == 1


def test_target_down_inhibits(build):
    monitor = build()
    alerts, store = monitor.alerts, monitor.store
    alerts.process([result("connection", "target", Status.CRITICAL, NOW)], NOW)
    alerts.process([lag_result(400, NOW + 1)], NOW + 1)
    checksum = [result("checksum", "shop.orders", Status.CRITICAL, NOW + 2)]
    for offset in range(2, 300, 10):
        alerts.process(checksum, NOW + offset)
        alerts.process([lag_result(400, NOW + offset)], NOW + offset)
    assert store.pending_count("log") == 1
    held = {a.check: a for a in store.alerts() if a.check != "connection"}
    assert sorted(held) == ["checksum", "replica_lag"]
    for alert in held.values():
        assert alert.inhibited_by == "connection/target/target"
        assert alert.to_dict()["inhibited"] is True
        events_of = [e["event"] for e in store.alert_events(alert.id)]
        assert "inhibited" in events_of

    alerts.process([result("connection", "target", Status.OK, NOW + 300)], NOW + 300)
    assert store.pending_count("log") == 2
    rechecked = {a.check: a for a in store.alerts() if a.check != "connection"}
    assert rechecked["checksum"].state == "pending"
    assert rechecked["checksum"].inhibited_by is None
    assert rechecked["checksum"].pending_since == NOW + 300
    ok = [result("checksum", "shop.orders", Status.OK, NOW + 310)]
    assert events(alerts.process(ok, NOW + 310)) == ["dropped"]
    alerts.process([lag_result(400, NOW + 320)], NOW + 320)
    assert store.pending_count("log") == 2
    assert events(alerts.process([lag_result(400, NOW + 360)], NOW + 360)) == ["firing"]
    assert store.pending_count("log") == 3


def test_source_down_inhibits_targets(build):
    monitor = build(checks={"row_count": {"for": 0}})
    alerts = monitor.alerts
    alerts.process([result("connection", "source", Status.CRITICAL, NOW, "source")])
    alerts.process([result("row_count", "shop.orders", Status.CRITICAL, NOW)], NOW)
    counted = [a for a in monitor.store.alerts() if a.check == "row_count"]
    assert counted[0].inhibited_by == "connection/source/source"
    assert monitor.store.pending_count("log") == 1


def test_target_down_inhibits_run_alert(build):
    """A failed run of a check that is not replication dependent is
    inhibited on the down target only, and judged afresh after it is up."""
    server = {"host": "127.0.0.1", "port": 9, "user": "encmond"}
    monitor = build(target=None, targets={"replica": server, "replica2": server})
    alerts, store = monitor.alerts, monitor.store
    failed = "check failed: errant_writes timed out after 60 s"
    down = result("connection", "replica", Status.CRITICAL, NOW, "replica")
    assert events(alerts.process([down], NOW)) == ["firing"]
    runs = [
        result("errant_writes", "run", Status.WARNING, NOW + 60, name, failed)
        for name in ("replica", "replica2")
    ]
    alerts.process(runs, NOW + 60)
    errant = {a.server: a for a in store.alerts() if a.check == "errant_writes"}
    assert errant["replica"].state == "firing"
    assert errant["replica"].inhibited_by == "connection/replica/replica"
    assert errant["replica"].notified_at is None
    assert errant["replica"].to_dict()["inhibited"] is True
    assert "inhibited" in [e["event"] for e in store.alert_events(errant["replica"].id)]
    assert errant["replica2"].inhibited_by is None
    assert errant["replica2"].notified_at is not None
    assert store.pending_count("log") == 2

    up = result("connection", "replica", Status.OK, NOW + 120, "replica")
    alerts.process([up], NOW + 120)
    rechecked = {a.server: a for a in store.alerts() if a.check == "errant_writes"}
    assert rechecked["replica"].state == "pending"
    assert rechecked["replica"].inhibited_by is None
    assert rechecked["replica"].pending_since == NOW + 120
    assert store.pending_count("log") == 3
    ok = result("errant_writes", "run", Status.OK, NOW + 180, "replica", "check runs")
    assert events(alerts.process([ok], NOW + 180)) == ["dropped"]
    assert store.pending_count("log") == 3


def test_replication_stopped_keeps_run_alert(build):
    """A stopped replication inhibits no "run" alert of an independent check."""
    monitor = build()
    alerts, store = monitor.alerts, monitor.store
    alerts.process([stopped_result(NOW)], NOW)
    failed = "check failed: replication_filters timed out after 60 s"
    run = result("replication_filters", "run", Status.WARNING, NOW + 60, message=failed)
    alerts.process([run], NOW + 60)
    [alert] = [a for a in store.alerts() if a.check == "replication_filters"]
    assert alert.inhibited_by is None


def test_replication_stopped_one_critical(build):
    monitor = build(checks={"replica_lag": {"for": "10s"}})
    alerts, store = monitor.alerts, monitor.store
    alerts.process([lag_result(0, NOW)], NOW)
    for offset in range(1, 600, 5):
        at = NOW + offset
        alerts.process([stopped_result(at)], at)
        for check in ("checksum", "row_count"):
            for table in TABLES:
                alerts.process([result(check, table, Status.CRITICAL, at)], at)
    rows = store.reader.execute("SELECT payload FROM outbox").fetchall()
    assert len(rows) == 1
    notified = [a for a in store.alerts() if a.notified_at is not None]
    assert [(a.check, a.condition, a.severity) for a in notified] == [
        ("replica_lag", "stopped", Severity.CRITICAL)
    ]
    held = [a for a in store.alerts() if a.notified_at is None]
    assert len(held) == 4
    assert all(a.inhibited_by for a in held)


def test_silence_mutes_until_ended(build):
    monitor = build()
    alerts, store = monitor.alerts, monitor.store
    silence = Silence(
        check=None,
        server="target",
        subject="target",
        starts_at=NOW,
        ends_at=NOW + 3600,
        created_by="alice",
        comment="maintenance",
    )
    alerts.add_silence(silence, NOW)
    alerts.process([result("connection", "target", Status.CRITICAL, NOW + 1)], NOW + 1)
    alert = store.alerts("firing")[0]
    assert alert.silence_id == silence.id
    assert alert.to_dict()["silenced"] is True
    assert store.pending_count() == 0
    assert store.alert_events(alert.id)[-1]["actor"] == "alice"
    alerts.end_silence(silence, "bob", NOW + 100)
    assert store.pending_count("log") == 1
    assert store.alerts("firing")[0].silence_id is None
    assert alerts.silence_store.get(silence.id).ended_by == "bob"


def test_silence_expires(build):
    monitor = build()
    alerts, store = monitor.alerts, monitor.store
    silence = Silence("connection", None, None, NOW, NOW + 60, "alice")
    alerts.add_silence(silence, NOW)
    down = [result("connection", "target", Status.CRITICAL, NOW)]
    alerts.process(down, NOW + 1)
    assert store.pending_count() == 0
    changes = alerts.process(down, NOW + 61)
    assert events(changes) == ["unsilenced", "firing"]
    assert store.pending_count("log") == 1


def test_ack_stops_renotify(build):
    monitor = build(checks={"replica_lag": {"for": 0}})
    alerts, store = monitor.alerts, monitor.store
    alerts.process([lag_result(40, NOW)], NOW)
    alert = store.alerts()[0]
    alerts.acknowledge(alert, "carol", "looking at it", NOW + 1)
    assert events(alerts.process([lag_result(40, NOW + 7200)], NOW + 7200)) == []
    assert store.pending_count("log") == 1
    changes = alerts.process([lag_result(400, NOW + 7300)], NOW + 7300)
    assert events(changes) == ["changed"]
    stored = store.alert(alert.id)
    assert stored.acked_by == "carol"
    assert stored.ack_comment == "looking at it"
    assert [e["actor"] for e in store.alert_events(alert.id)].count("carol") == 1


def test_max_severity_per_table(build):
    monitor = build(
        checks={"checksum": {"tables": {"shop.audit": {"max_severity": "WARNING"}}}}
    )
    monitor.alerts.process(
        [
            result("checksum", "shop.audit", Status.CRITICAL, NOW),
            result("checksum", "shop.orders", Status.CRITICAL, NOW),
        ],
        NOW,
    )
    severities = {a.subject: a.severity for a in monitor.store.alerts()}
    assert severities == {
        "shop.audit": Severity.WARNING,
        "shop.orders": Severity.CRITICAL,
    }


def test_for_per_table(build):
    monitor = build(
        checks={"row_count": {"for": "5m", "tables": {"shop.orders": {"for": 0}}}}
    )
    changes = monitor.alerts.process(
        [
            result("row_count", "shop.audit", Status.CRITICAL, NOW),
            result("row_count", "shop.orders", Status.CRITICAL, NOW),
        ],
        NOW,
    )
    assert [(a.subject, e) for a, e in changes] == [
        ("shop.audit", "pending"),
        ("shop.orders", "firing"),
    ]


def test_table_settings_reach_check(build):
    monitor = build(
        checks={"checksum": {"tables": {"shop.audit": {"wait_timeout": "5m"}}}}
    )
    checksum = next(c for c in monitor.checks if c.name == "checksum")
    assert checksum.settings_for("shop.audit")["wait_timeout"] == 300.0
    assert checksum.settings_for("shop.orders")["wait_timeout"] == 60.0


def test_unknown_table_rejected(build):
    with pytest.raises(ConfigError) as caught:
        build(checks={"checksum": {"tables": {"shop.ordres": {"for": "1m"}}}})
    assert caught.value.key == "checks.checksum.tables.shop.ordres"
    assert "did you mean 'shop.orders'" in str(caught.value)


def test_table_interval_rejected(build):
    with pytest.raises(ConfigError) as caught:
        build(checks={"checksum": {"tables": {"shop.orders": {"interval": "1m"}}}})
    assert caught.value.key == "checks.checksum.tables.shop.orders.interval"


def test_resolve_reaches_notified_route(build):
    monitor = build(
        checks={"replica_lag": {"for": 0, "keep_firing_for": 0}},
        notifiers=[{"type": "log", "name": "pager", "min_severity": "CRITICAL"}],
    )
    alerts, store = monitor.alerts, monitor.store
    alerts.process([lag_result(400, NOW)], NOW)
    alerts.process([lag_result(40, NOW + 5)], NOW + 5)
    alerts.process([lag_result(0, NOW + 10)], NOW + 10)
    rows = store.reader.execute("SELECT event FROM outbox ORDER BY id").fetchall()
    assert [row["event"] for row in rows] == ["firing", "resolved"]
