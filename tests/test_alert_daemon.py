"""Alerts through ``encmond run`` against the real pair and real receivers."""

from __future__ import annotations

import json
import sqlite3
import urllib.request

import pytest

from daemon_process import wait_for
from receivers import HANG, HTTPReceiver

FLAG_PLUGIN = '''\
from pathlib import Path

from encmond import Check, Result, Status, hookimpl
from encmond.settings import Setting, string


class Flag(Check):
    """Reports the status written in a file, so a test can raise an alert."""

    name = "flag"
    interval = 0.5
    options = {"path": Setting(string, help="file holding OK, WARNING or CRITICAL")}

    def run(self, ctx):
        path = Path(self.settings["path"])
        status = Status(path.read_text().strip()) if path.exists() else Status.OK
        return [Result("flag", status, f"flag is {status.value}")]


class Tick(Check):
    name = "tick"
    interval = 0.5

    def run(self, ctx):
        return [Result("tick", Status.OK, "tick")]


@hookimpl
def register_checks():
    return [Flag, Tick]
'''

FAST_CHECKS = {
    "connection": {"interval": "1s"},
    "replica_lag": {"interval": "1s", "for": "2s", "keep_firing_for": "2s"},
    "checksum": {"interval": "2s", "wait_timeout": "2s"},
    "row_count": {"interval": "2s", "wait_timeout": "2s"},
}


@pytest.fixture
def flag(tmp_path):
    """A plugin directory with the flag and tick checks, and the flag's file."""
    plugins = tmp_path / "plugins.d"
    plugins.mkdir()
    (plugins / "flag.py").write_text(FLAG_PLUGIN)
    return plugins, tmp_path / "flag"


def flag_config(write_config, plugins, flag_file, notifiers):
    return write_config(
        plugins={"dirs": [str(plugins)]},
        checks={
            "connection": {"interval": "1s"},
            "flag": {"path": str(flag_file)},
            "checksum": {"enabled": False},
            "row_count": {"enabled": False},
        },
        notifiers=notifiers,
    )


def post(encmond, path, body):
    request = urllib.request.Request(
        encmond.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def ticks_advance(encmond, count):
    """Wait until the tick check has stored ``count`` new results."""
    seen = set()

    def advanced():
        tick = encmond.result("tick", "tick")
        if tick is not None:
            seen.add(tick["time"])
        return len(seen) > count

    wait_for(advanced, 60, interval=0.2, message="the tick check stopped running")


def outbox_rows(encmond):
    database = sqlite3.connect(encmond.db_path)
    try:
        database.row_factory = sqlite3.Row
        rows = database.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        return [dict(row) for row in rows]
    finally:
        database.close()


def test_replication_stopped_one_critical(pair, write_config, daemon, table):
    with HTTPReceiver() as receiver:
        webhook = {"type": "webhook", "url": receiver.url, "retry_delay": "500ms"}
        encmond = daemon(
            write_config(tables=[table], checks=FAST_CHECKS, notifiers=[webhook])
        )
        wait_for(lambda: encmond.result("row_count", table), 30)
        pair.target.execute_unlogged(f"INSERT INTO {table} VALUES (5001, 1)")
        try:
            pair.source.execute(f"INSERT INTO {table} VALUES (5001, 2)")
            pair.source.execute(f"INSERT INTO {table} VALUES (5002, 2)")
            wait_for(
                receiver.accepted, 60, message="no notification of the stopped thread"
            )
            counted = set()

            def compared_often():
                result = encmond.result("row_count", table)
                counted.add(result["time"])
                return len(counted) > 3 and result["status"] != "OK"

            wait_for(compared_often, 60, message="row_count did not run on")
            [stopped] = [request.json for request in receiver.accepted()]
            firing = [a for a in encmond.alerts("firing") if not a["inhibited"]]
        finally:
            pair.target.execute_unlogged(
                f"DELETE FROM {table} WHERE id = 5001", "START SLAVE SQL_THREAD"
            )
            pair.wait_caught_up()
        wait_for(
            lambda: len(receiver.accepted()) == 2,
            60,
            message="no notification that replication runs again",
        )
        statuses = [r.json["status"] for r in receiver.accepted()]
    alert = stopped["alerts"][0]
    assert alert["labels"]["condition"] == "stopped"
    assert alert["labels"]["severity"] == "critical"
    assert "error 1062" in alert["annotations"]["description"]
    assert "Duplicate entry '5001'" in alert["annotations"]["description"]
    assert [(a["check"], a["condition"]) for a in firing] == [
        ("replica_lag", "stopped")
    ]
    assert statuses == ["firing", "resolved"]
    assert (
        receiver.accepted()[1].json["alerts"][0]["fingerprint"]
        == (alert["fingerprint"])
    )


def test_hung_receiver_delays_nothing(write_config, daemon, flag):
    plugins, flag_file = flag
    with HTTPReceiver(default=HANG) as hung, HTTPReceiver() as working:
        notifiers = [
            {"type": "webhook", "name": "hung", "url": hung.url, "timeout": "5m"},
            {"type": "webhook", "name": "working", "url": working.url},
        ]
        encmond = daemon(flag_config(write_config, plugins, flag_file, notifiers))
        ticks_advance(encmond, 1)
        flag_file.write_text("CRITICAL")
        wait_for(lambda: hung.count() == 1, 30, message="the hung receiver got nothing")
        wait_for(working.accepted, 30, message="the working receiver got nothing")
        ticks_advance(encmond, 10)
        assert hung.count() == 1
        assert hung.accepted() == []
        assert encmond.result("connection", "target")["status"] == "OK"
        assert encmond.stop() == 0


def test_restart_mid_retries_once(write_config, daemon, flag):
    plugins, flag_file = flag
    with HTTPReceiver(default=500) as receiver:
        webhook = {
            "type": "webhook",
            "url": receiver.url,
            "retry_delay": "200ms",
            "max_retry_delay": "1s",
        }
        path = flag_config(write_config, plugins, flag_file, [webhook])
        flag_file.write_text("CRITICAL")
        first = daemon(path)
        wait_for(lambda: receiver.count() >= 2, 60, message="no retried delivery")
        assert first.stop() == 0
        [row] = outbox_rows(first)
        assert row["delivered_at"] is None
        assert row["attempts"] >= 2
        with receiver.lock:
            receiver.default = 200

        second = daemon(path)
        wait_for(receiver.accepted, 60, message="not delivered after the restart")
        ticks_advance(second, 6)
        assert second.stop() == 0
    [delivered] = receiver.accepted()
    assert delivered.json["alerts"][0]["labels"]["check"] == "flag"
    [row] = outbox_rows(second)
    assert row["delivered_at"] is not None
    assert "HTTP 500" in row["last_error"]


def test_ack_and_silence_over_http(write_config, daemon, flag):
    plugins, flag_file = flag
    encmond = daemon(flag_config(write_config, plugins, flag_file, [{"type": "log"}]))
    flag_file.write_text("WARNING")
    [alert] = wait_for(
        lambda: [a for a in encmond.alerts("firing") if a["check"] == "flag"], 30
    )
    acked = post(encmond, f"/api/alerts/{alert['id']}/ack", {"by": "alice"})
    assert acked["acked_by"] == "alice"
    silence = post(
        encmond,
        "/api/silences",
        {"check": "flag", "duration": "1h", "by": "bob", "comment": "noisy"},
    )
    assert silence["created_by"] == "bob"
    [shown] = [a for a in encmond.alerts("firing") if a["check"] == "flag"]
    assert shown["acknowledged"] is True
    assert shown["silenced"] is True
    assert shown["silence_id"] == silence["id"]
    assert encmond.json("/api/silences")["silences"][0]["comment"] == "noisy"
    assert encmond.stop() == 0
    assert "acknowledged by alice" in encmond.log_text()
