"""``encmond run`` as a child process, watching the real pair."""

from __future__ import annotations

import json
import signal
import sqlite3
import textwrap

import websocket

from daemon_process import wait_for

FAST_CHECKS = {
    "connection": {"interval": "1s"},
    "replica_lag": {"interval": "1s"},
    "checksum": {"interval": "2s", "wait_timeout": "20s"},
    "row_count": {"interval": "2s"},
}

HANG_PLUGIN = '''\
import time

from encmond import Check, Result, Status, hookimpl


class HangLong(Check):
    """Sleeps far past the test, so only its timeout ends a run."""

    name = "hang_long"
    interval = 1.0
    timeout = 120.0

    def run(self, ctx):
        time.sleep(3600)
        return []


class HangShort(Check):
    name = "hang_short"
    interval = 1.0
    timeout = 1.0

    def run(self, ctx):
        time.sleep(3600)
        return []


class Tick(Check):
    name = "tick"
    interval = 0.5

    def run(self, ctx):
        return [Result("tick", Status.OK, "tick")]


@hookimpl
def register_checks():
    return [HangLong, HangShort, Tick]
'''


def test_run_serves_state(pair, write_config, daemon, table):
    encmond = daemon(write_config(tables=[table], checks=FAST_CHECKS))
    wait_for(lambda: encmond.result("checksum", table), 30)
    status, health = encmond.get("/api/health")
    assert status == 200
    assert health["servers"]["source"]["status"] == "up"
    assert health["servers"]["target"]["status"] == "up"

    metrics = encmond.json("/api/metrics")
    replication = metrics["targets"]["target"]["replication"]
    assert isinstance(replication["lag_seconds"], int)
    assert table in metrics["targets"]["target"]["tables"]
    assert metrics["targets"]["target"]["tables"][table]["checksum"]["status"] == "OK"

    status, page = encmond.get("/")
    assert status == 200
    assert "<title>encmond</title>" in page

    socket = websocket.create_connection(
        encmond.url.replace("http", "ws") + "/ws", timeout=10
    )
    try:
        first = json.loads(socket.recv())
        assert first["type"] == "snapshot"
        assert first["metrics"]["servers"]["target"]["status"] == "OK"
        second = json.loads(socket.recv())
        assert second["type"] in ("results", "alert")
    finally:
        socket.close()

    database = sqlite3.connect(encmond.db_path)
    samples = database.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    database.close()
    assert samples > 0
    assert encmond.stop() == 0
    assert "encmond stopped" in encmond.log_text()


def test_target_down_alert_resolves(pair, write_config, daemon):
    encmond = daemon(write_config(checks=FAST_CHECKS))
    wait_for(lambda: encmond.get("/api/health")[0] == 200, 30)
    pair.target.kill()
    try:
        wait_for(lambda: encmond.get("/api/health")[0] == 503, 30)
        firing = wait_for(
            lambda: [
                a
                for a in encmond.alerts("firing")
                if a["check"] == "connection" and a["server"] == "target"
            ],
            30,
            message="no firing connection alert for the target",
        )
        assert firing[0]["severity"] == "CRITICAL"
        assert encmond.process.poll() is None
    finally:
        pair.target.start()
        pair.target.execute("SET GLOBAL read_only = ON")
    wait_for(lambda: encmond.get("/api/health")[0] == 200, 60)
    resolved = wait_for(
        lambda: [
            a
            for a in encmond.alerts("resolved")
            if a["check"] == "connection" and a["server"] == "target"
        ],
        30,
    )
    assert resolved[0]["resolved_at"] is not None
    pair.wait_caught_up()
    assert encmond.stop() == 0


def test_bulk_insert_lag_no_false_alert(pair, write_config, daemon, table):
    checks = {**FAST_CHECKS, "replica_lag": {"interval": "500ms"}}
    encmond = daemon(write_config(tables=[table], checks=checks))
    wait_for(lambda: encmond.result("checksum", table), 30)
    schema = table.split(".")[0]
    pair.source.execute(
        f"INSERT INTO {table} SELECT seq, seq FROM {schema}.seq_1001_to_1500000",
        timeout=300,
    )

    def max_lag():
        status, body = encmond.get("/api/history?metric=lag_seconds&since=5m&points=50")
        return status == 200 and max(p["max"] for p in body["points"]) > 0

    wait_for(max_lag, 120, message="no non-zero lag was recorded")
    pair.wait_caught_up(timeout=300)
    wait_for(
        lambda: (
            encmond.result("replica_lag", "replication")["metrics"]["lag_seconds"] == 0
        ),
        60,
    )
    wait_for(
        lambda: encmond.result("row_count", table)["metrics"]["target_rows"] == 1500000,
        120,
    )
    alerts = [a for a in encmond.alerts() if a["check"] in ("checksum", "row_count")]
    assert alerts == []


def test_hanging_check_isolated(pair, write_config, daemon, tmp_path):
    plugins = tmp_path / "plugins.d"
    plugins.mkdir()
    (plugins / "hang.py").write_text(HANG_PLUGIN)
    encmond = daemon(
        write_config(
            plugins={"dirs": [str(plugins)]}, checks={"connection": {"interval": "1s"}}
        )
    )
    timed_out = wait_for(
        lambda: [a for a in encmond.alerts("firing") if a["check"] == "hang_short"],
        30,
        message="the hanging check raised no alert",
    )
    assert timed_out[0]["severity"] == "WARNING"
    assert "timed out after 1 s" in timed_out[0]["message"]

    first = wait_for(lambda: encmond.result("tick", "tick"), 30)
    ticks = set()

    def ticked_often():
        ticks.add(encmond.result("tick", "tick")["time"])
        return len(ticks) >= 6

    wait_for(
        ticked_often,
        60,
        interval=0.3,
        message="tick stopped while hang_long was running",
    )
    assert encmond.result("hang_long", "target") is None
    assert first["status"] == "OK"
    assert encmond.stop() == 0


def test_sigint_stops_cleanly(write_config, daemon):
    encmond = daemon(write_config())
    encmond.signal(signal.SIGINT)
    assert encmond.process.wait(30) == 0
    assert "SIGINT received" in encmond.log_text()


def test_bad_config_exits_78(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent("""\
        source: {host: 127.0.0.1, user: u}
        target: {host: 127.0.0.1, user: u, prot: 3307}
    """)
    )
    done = subprocess.run(
        [sys.executable, "-m", "encmond", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "line 2" in done.stderr
    assert "did you mean 'port'" in done.stderr
