"""``encmond run`` as systemd runs it: notify protocol, reload, stop, logging."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import websocket
import yaml

from daemon_process import DaemonProcess, NotifyReceiver, free_port, wait_for
from encmond.monitor import NO_LONGER_MONITORED

PROBE_PLUGIN = '''\
from encmond import Check, Notifier, Result, Status, hookimpl
from encmond.settings import Setting, choice, string


class Probe(Check):
    """Reports its configured settings, so a test can tell which are in force."""

    name = "probe"
    interval = 0.5
    options = {
        "label": Setting(string, "first", "text of the result"),
        "status": Setting(choice("OK", "WARNING"), "OK", "status of the result"),
    }

    def run(self, ctx):
        status = Status(self.settings["status"])
        return [Result("probe", status, self.settings["label"])]


class LineFile(Notifier):
    """Appends each notification's summary line to a file."""

    type = "line_file"
    options = {"path": Setting(string, help="file to append to")}

    def send(self, notification):
        with open(self.settings["path"], "a") as file:
            file.write(notification.summary() + "\\n")


@hookimpl
def register_checks():
    return [Probe]


@hookimpl
def register_notifiers():
    return [LineFile]
'''

# Writes a marker file, then sleeps far past the test: only a kill ends it.
STUCK_PLUGIN = """\
import os
import time

from encmond import Check, hookimpl


class Stuck(Check):
    name = "stuck"
    interval = 1.0
    timeout = 600.0

    def run(self, ctx):
        open(os.environ["ENCMOND_TEST_MARKER"], "w").close()
        time.sleep(3600)
        return []


@hookimpl
def register_checks():
    return [Stuck]
"""

# Every run returns BULK_SUBJECTS results of BULK_METRICS metrics, so saving
# one run is a long SQLite transaction. "writing" is created when a run's
# results go to the store; on_results, called after they are stored,
# creates "written".
BULK_SUBJECTS = 400
BULK_METRICS = 250
BULK_PLUGIN = f"""\
import os
from pathlib import Path

from encmond import Check, Result, Status, hookimpl

MARKERS = Path(os.environ["ENCMOND_TEST_MARKER"])


class Bulk(Check):
    name = "bulk"
    interval = 0.5

    def run(self, ctx):
        (MARKERS / "written").unlink(missing_ok=True)
        metrics = {{f"m{{i}}": float(i) for i in range({BULK_METRICS})}}
        results = [
            Result(f"s{{n}}", Status.OK, "bulk", dict(metrics))
            for n in range({BULK_SUBJECTS})
        ]
        (MARKERS / "writing").touch()
        return results


@hookimpl
def on_results(results):
    if results and results[0].check == "bulk":
        (MARKERS / "writing").unlink(missing_ok=True)
        (MARKERS / "written").touch()


@hookimpl
def register_checks():
    return [Bulk]
"""

UP = "all 2 servers up; no alerts firing"
RELOAD_FAILED = "reload failed, the running configuration stays in force: "
QUIET_CHECKS = {
    "connection": {"interval": "1s"},
    "replica_lag": {"interval": "1s"},
}


@pytest.fixture
def plugin_dir(tmp_path):
    directory = tmp_path / "plugins.d"
    directory.mkdir()
    return directory


@pytest.fixture
def notify_socket(tmp_path):
    receiver = NotifyReceiver(str(tmp_path / "notify.sock"))
    yield receiver
    receiver.close()


def rewrite(path, **changes):
    """Change top-level keys of a config file written by write_config."""
    config = yaml.safe_load(path.read_text())
    config.update(changes)
    path.write_text(yaml.safe_dump(config, allow_unicode=True))


def query_one(db_path, sql: str, args=()):
    database = sqlite3.connect(db_path)
    try:
        return database.execute(sql, args).fetchone()[0]
    finally:
        database.close()


def integrity(db_path) -> str:
    return query_one(db_path, "PRAGMA integrity_check")


def samples_until(db_path, until: float) -> int:
    return query_one(db_path, "SELECT COUNT(*) FROM samples WHERE ts <= ?", (until,))


def test_notify_sequence(write_config, daemon, notify_socket):
    env = {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "1000000"}
    encmond = daemon(write_config(checks=QUIET_CHECKS), env=env)
    ready = notify_socket.wait_for("READY")
    first_ping = notify_socket.wait_for("WATCHDOG", after=ready)
    notify_socket.wait_for("WATCHDOG", after=first_ping + 1)
    wait_for(lambda: UP in notify_socket.statuses(), 30, message="never all up")
    assert encmond.stop() == 0
    stopping = notify_socket.wait_for("STOPPING")
    messages = notify_socket.messages
    assert "STATUS" in messages[ready]
    assert all("READY" not in m and "STATUS" not in m for m in messages[:ready])
    assert ready < first_ping < stopping
    assert stopping == len(messages) - 1
    assert "systemd watchdog enabled: a ping every 0.5 s" in encmond.log_text()


def test_status_on_change_only(write_config, daemon, notify_socket):
    env = {"NOTIFY_SOCKET": notify_socket.address}
    encmond = daemon(write_config(checks=QUIET_CHECKS), env=env)
    wait_for(lambda: UP in notify_socket.statuses(), 30, message="never all up")
    checked = encmond.result("connection", "source")["time"]
    wait_for(lambda: encmond.result("connection", "source")["time"] > checked + 2, 30)
    assert notify_socket.statuses().count(UP) == 1
    assert encmond.stop() == 0


def test_reload_applies_change(
    pair, schema, write_config, daemon, notify_socket, plugin_dir, tmp_path
):
    (plugin_dir / "probe.py").write_text(PROBE_PLUGIN)
    pair.source.execute(f"CREATE TABLE {schema}.added (id INT PRIMARY KEY)")
    pair.wait_caught_up()
    config_path = write_config(checks=QUIET_CHECKS)
    encmond = daemon(config_path, env={"NOTIFY_SOCKET": notify_socket.address})
    before = wait_for(lambda: encmond.result("connection", "target"), 30)

    client = websocket.create_connection(
        encmond.url.replace("http", "ws") + "/ws", timeout=10
    )
    try:
        assert json.loads(client.recv())["type"] == "snapshot"
        ready = notify_socket.wait_for("READY")
        alerts = tmp_path / "alerts.txt"
        rewrite(
            config_path,
            plugins={"dirs": [str(plugin_dir)]},
            tables=[f"{schema}.added"],
            checks={
                **QUIET_CHECKS,
                "probe": {"label": "second", "status": "WARNING"},
                "row_count": {"interval": "1s"},
                "replica_lag": {"interval": "1s", "warning": "10s"},
            },
            notifiers=[{"type": "log"}, {"type": "line_file", "path": str(alerts)}],
        )
        encmond.signal(signal.SIGHUP)
        encmond.wait_for_log("configuration reloaded")

        probe = wait_for(lambda: encmond.result("probe", "probe"), 30)
        assert probe["message"] == "second"
        count = wait_for(lambda: encmond.result("row_count", f"{schema}.added"), 30)
        assert count["status"] == "OK"
        assert probe_event(client)["message"] == "second"
        sent = wait_for(
            lambda: alerts.exists() and alerts.read_text(),
            30,
            message="the new notifier got no alert",
        )
        assert sent == "[WARNING] probe on target: probe: second\n"
    finally:
        client.close()

    reloading = notify_socket.wait_for("RELOADING", after=ready + 1)
    assert notify_socket.wait_for("READY", after=reloading) > reloading
    assert samples_until(encmond.db_path, before["time"]) > 0
    assert "changed tables, checks, notifiers, plugins.dirs" in encmond.log_text()
    assert encmond.process.poll() is None
    assert encmond.stop() == 0


def probe_event(client) -> dict:
    """Read WebSocket events until a probe result arrives; return that result."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        event = json.loads(client.recv())
        for result in event.get("results", []):
            if result["check"] == "probe":
                return result
    raise TimeoutError("no probe result on the WebSocket")


def test_reload_resolves_removed_alerts(
    pair, schema, write_config, daemon, plugin_dir, tmp_path
):
    (plugin_dir / "probe.py").write_text(PROBE_PLUGIN)
    table = f"{schema}.drift"
    pair.source.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
    pair.source.execute(f"INSERT INTO {table} VALUES (1), (2)")
    pair.wait_caught_up()
    pair.target.execute_unlogged(f"DELETE FROM {table} WHERE id = 2")
    sent = tmp_path / "sent.txt"
    line_file = {"type": "line_file", "path": str(sent)}
    # Nothing listens on this port, so the notifier's queue stays undelivered.
    dead = {
        "type": "webhook",
        "name": "dead",
        "url": f"http://127.0.0.1:{free_port()}/",
    }
    checks = {
        **QUIET_CHECKS,
        "probe": {"status": "WARNING"},
        "row_count": {"interval": "1s"},
    }
    config_path = write_config(
        plugins={"dirs": [str(plugin_dir)]},
        tables=[table],
        checks=checks,
        notifiers=[line_file, dead],
    )
    encmond = daemon(config_path)
    expected = {("probe", "probe"), ("row_count", table)}

    def firing() -> set:
        return {(a["check"], a["subject"]) for a in encmond.alerts("firing")}

    wait_for(lambda: firing() >= expected, 60, message="the alerts never fired")
    undelivered = (
        "SELECT COUNT(*) FROM outbox WHERE notifier = 'dead' "
        "AND delivered_at IS NULL AND gave_up_at IS NULL"
    )
    wait_for(lambda: query_one(encmond.db_path, undelivered) > 0, 30)

    rewrite(
        config_path,
        tables=[],
        checks={**QUIET_CHECKS, "probe": {"enabled": False}},
        notifiers=[line_file],
    )
    encmond.signal(signal.SIGHUP)
    encmond.wait_for_log("configuration reloaded")

    assert not firing() & expected
    resolved = {
        (a["check"], a["subject"]): a["message"] for a in encmond.alerts("resolved")
    }
    assert resolved[("probe", "probe")] == NO_LONGER_MONITORED
    assert resolved[("row_count", table)] == NO_LONGER_MONITORED
    lines = wait_for(
        lambda: sent.read_text().count("[RESOLVED]") >= 2 and sent.read_text(),
        30,
        message="no resolved notification",
    )
    assert f"[RESOLVED] probe on target: probe: {NO_LONGER_MONITORED}" in lines
    assert f"[RESOLVED] row_count on target: {table}: " in lines
    assert query_one(encmond.db_path, undelivered) == 0
    assert table not in encmond.get("/metrics")[1]
    retired = r"closed \d+ open alerts and forgot \d+ results"
    assert re.search(retired, encmond.log_text())
    assert encmond.stop() == 0


def test_restart_resolves_removed_table(pair, schema, write_config, daemon):
    table = f"{schema}.gone"
    pair.source.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
    pair.source.execute(f"INSERT INTO {table} VALUES (1), (2)")
    pair.wait_caught_up()
    pair.target.execute_unlogged(f"DELETE FROM {table} WHERE id = 2")
    checks = {**QUIET_CHECKS, "row_count": {"interval": "1s"}}
    config_path = write_config(tables=[table], checks=checks)
    encmond = daemon(config_path)
    wait_for(
        lambda: (
            ("row_count", table)
            in {(a["check"], a["subject"]) for a in encmond.alerts("firing")}
        ),
        60,
        message="the row_count alert never fired",
    )
    assert encmond.stop() == 0

    rewrite(config_path, tables=[])
    encmond = daemon(config_path)
    resolved = {
        (a["check"], a["subject"]): a["message"] for a in encmond.alerts("resolved")
    }
    assert resolved[("row_count", table)] == NO_LONGER_MONITORED
    assert not [a for a in encmond.alerts("firing") if a["subject"] == table]
    assert table not in encmond.get("/metrics")[1]
    assert encmond.stop() == 0


def test_reload_invalid_keeps_config(write_config, daemon, notify_socket, plugin_dir):
    (plugin_dir / "probe.py").write_text(PROBE_PLUGIN)
    checks = {**QUIET_CHECKS, "probe": {"label": "first"}}
    config_path = write_config(plugins={"dirs": [str(plugin_dir)]}, checks=checks)
    encmond = daemon(config_path, env={"NOTIFY_SOCKET": notify_socket.address})
    wait_for(lambda: encmond.result("probe", "probe"), 30)

    rewrite(config_path, checks={**checks, "probe": {"label": "x", "intervall": "1s"}})
    encmond.signal(signal.SIGHUP)
    failed = encmond.wait_for_log(RELOAD_FAILED)
    line = encmond.log_text()[failed:].splitlines()[0]
    assert str(config_path) in line
    assert "line " in line
    assert "checks.probe.intervall: unknown key 'intervall'" in line
    wait_for(lambda: any("reload failed" in s for s in notify_socket.statuses()), 30)
    assert fresh_probe(encmond)["message"] == "first"

    (plugin_dir / "broken.py").write_text("def register_checks(:\n")
    rewrite(config_path, checks={**checks, "probe": {"label": "second"}})
    encmond.signal(signal.SIGHUP)
    failed = encmond.wait_for_log(RELOAD_FAILED, after=failed)
    assert "broken.py failed to import: SyntaxError" in encmond.log_text()[failed:]
    assert fresh_probe(encmond)["message"] == "first"

    (plugin_dir / "broken.py").unlink()
    encmond.signal(signal.SIGHUP)
    encmond.wait_for_log("configuration reloaded", after=failed)
    wait_for(lambda: fresh_probe(encmond)["message"] == "second", 30)
    assert not any("reload failed" in s for s in notify_socket.statuses()[-1:])
    assert encmond.stop() == 0


def test_reload_restart_settings(write_config, daemon, notify_socket, tmp_path):
    config_path = write_config(checks=QUIET_CHECKS)
    encmond = daemon(config_path, env={"NOTIFY_SOCKET": notify_socket.address})
    other_db = tmp_path / "other.db"
    rewrite(
        config_path,
        storage={"path": str(other_db)},
        web={"listen": f"127.0.0.1:{free_port()}"},
    )
    encmond.signal(signal.SIGHUP)
    encmond.wait_for_log("configuration reloaded")

    log = encmond.log_text()
    assert f"storage.path changed from {encmond.db_path} to {other_db}" in log
    assert "web.listen changed from 127.0.0.1:" in log
    wait_for(
        lambda: any(
            s.endswith("restart to apply storage.path, web.listen")
            for s in notify_socket.statuses()
        ),
        30,
    )
    assert encmond.get("/api/health")[0] in (200, 503)
    assert not other_db.exists()
    assert encmond.stop() == 0


@pytest.fixture
def stuck(write_config, daemon, plugin_dir, tmp_path):
    """A daemon whose stuck check has started; returns it and the marker file."""
    (plugin_dir / "stuck.py").write_text(STUCK_PLUGIN)
    marker = tmp_path / "stuck-started"
    config_path = write_config(plugins={"dirs": [str(plugin_dir)]}, checks=QUIET_CHECKS)
    encmond = daemon(config_path, env={"ENCMOND_TEST_MARKER": str(marker)})
    wait_for(marker.exists, 30, message="the stuck check never started")
    return encmond, marker


def test_reload_waits_for_checks(stuck):
    encmond, marker = stuck
    marker.unlink()

    encmond.signal(signal.SIGHUP)
    encmond.wait_for_log("reload: waiting up to 10 s for running checks to finish")
    encmond.wait_for_log("reload: interrupted checks still running after 10 s")
    encmond.wait_for_log("configuration reloaded")
    wait_for(marker.exists, 30, message="the stuck check did not run again")
    log = encmond.log_text()
    assert "raised an exception" not in log
    assert "Traceback" not in log
    assert encmond.stop() == 0


def fresh_probe(encmond) -> dict:
    """Wait for a probe result newer than now and return it."""
    now = time.time()

    def newer():
        result = encmond.result("probe", "probe")
        return result if result and result["time"] > now else None

    return wait_for(newer, 30, message="no probe result after the reload")


def test_sigterm_during_check(stuck):
    encmond, _ = stuck
    assert encmond.stop() == 0
    log = encmond.log_text()
    assert "stop: interrupted checks still running after 5 s: stuck:target" in log
    assert "Traceback" not in log
    assert integrity(encmond.db_path) == "ok"


def test_sigterm_during_write(write_config, daemon, plugin_dir, tmp_path):
    (plugin_dir / "bulk.py").write_text(BULK_PLUGIN)
    markers = tmp_path / "markers"
    markers.mkdir()
    config_path = write_config(plugins={"dirs": [str(plugin_dir)]}, checks=QUIET_CHECKS)
    encmond = daemon(config_path, env={"ENCMOND_TEST_MARKER": str(markers)})
    wait_for((markers / "written").exists, 60, message="no bulk run was stored")

    def writing() -> bool:
        return (markers / "writing").exists() and not (markers / "written").exists()

    wait_for(writing, 60, interval=0.01, message="never caught a bulk write")
    encmond.signal(signal.SIGTERM)
    assert encmond.process.wait(30) == 0
    assert integrity(encmond.db_path) == "ok"
    samples = query_one(
        encmond.db_path,
        "SELECT COUNT(*) FROM samples JOIN series ON series.id = series_id "
        "WHERE check_name = 'bulk'",
    )
    assert samples > 0
    assert samples % (BULK_SUBJECTS * BULK_METRICS) == 0


def test_journal_log_plain(write_config, tmp_path):
    encmond = DaemonProcess(
        write_config(checks=QUIET_CHECKS), tmp_path, log_level="INFO"
    )
    encmond.log_path.touch()
    info = os.stat(encmond.log_path)
    encmond.env["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
    try:
        encmond.start()
        first = wait_for(lambda: encmond.result("connection", "source"), 30)
        wait_for(
            lambda: encmond.result("connection", "source")["time"] > first["time"] + 3,
            30,
        )
    finally:
        status = encmond.stop()
    assert status == 0
    lines = encmond.log_text().splitlines()
    for line in lines:
        assert re.match(r"<[2-7]>encmond[\w.]*: ", line), line
    assert len(lines) == len(set(lines))
    assert any(": encmond 0.1.0 started: " in line for line in lines)
    assert lines[-1] == "<6>encmond.daemon: encmond stopped"


def run_until_exit(config_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "encmond", "run", "-c", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_port_in_use_exit_1(write_config):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_until_exit(write_config(web={"listen": f"127.0.0.1:{port}"}))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (web.listen): " in done.stderr
    assert "Traceback" not in done.stderr


def test_storage_unwritable_exit_1(write_config, tmp_path):
    (tmp_path / "a-file").write_text("")
    done = run_until_exit(write_config(storage={"path": str(tmp_path / "a-file/x.db")}))
    assert done.returncode == 1
    assert "cannot open the SQLite database" in done.stderr
    assert "(storage.path)" in done.stderr
    assert "Traceback" not in done.stderr
