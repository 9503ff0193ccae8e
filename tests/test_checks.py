"""The bundled checks against the real source/target pair, run in-process once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from daemon_process import wait_for
from encmond.model import Status
from helpers import find, results_of


@pytest.fixture
def orders(pair, schema):
    pair.source.execute(
        f"CREATE TABLE {schema}.orders (id INT PRIMARY KEY, note VARCHAR(40), "
        "amount DECIMAL(10, 2), created DATETIME)"
    )
    pair.source.execute(
        f"INSERT INTO {schema}.orders SELECT seq, CONCAT('order ', seq), seq / 7, "
        f"'2026-01-01' + INTERVAL seq MINUTE FROM {schema}.seq_1_to_500"
    )
    pair.wait_caught_up()
    return f"{schema}.orders"


def test_identical_pair_all_ok(write_config, orders):
    results = results_of(write_config(tables=[orders]))
    assert {r.check for r in results} == {
        "connection",
        "replica_lag",
        "checksum",
        "row_count",
        "encryption",
        "errant_writes",
        "schema",
        "replication_filters",
        "cutover",
    }
    for result in results:
        assert result.status is Status.OK, str(result) + " " + result.message
    assert find(results, "row_count", orders).metrics["source_rows"] == 500
    assert find(results, "connection", "target").details["role"] == "target"
    assert find(results, "replica_lag", "replication").metrics["lag_seconds"] == 0


def test_target_drift_named(pair, write_config, orders):
    pair.target.execute_unlogged(f"UPDATE {orders} SET note = 'drift' WHERE id = 42")
    results = results_of(write_config(tables=[orders]), ["checksum", "row_count"])
    checksum = find(results, "checksum", orders)
    assert checksum.status is Status.CRITICAL
    assert checksum.details["state"] == "diverged"
    assert "differs" in checksum.message
    assert find(results, "row_count", orders).status is Status.OK


def test_target_row_missing(pair, write_config, orders):
    pair.target.execute_unlogged(f"DELETE FROM {orders} WHERE id = 7")
    results = results_of(write_config(tables=[orders]), ["row_count"])
    count = find(results, "row_count", orders)
    assert count.status is Status.CRITICAL
    assert count.metrics["difference"] == -1


def test_table_missing_on_target(pair, write_config, schema):
    pair.source.execute_unlogged(f"CREATE TABLE {schema}.only_source (id INT)")
    results = results_of(write_config(tables=[f"{schema}.only_source"]), ["checksum"])
    result = find(results, "checksum", f"{schema}.only_source")
    assert result.status is Status.CRITICAL
    assert result.details["state"] == "missing"
    assert result.message == "table missing on the target"


def test_table_missing_on_both(write_config, schema):
    results = results_of(write_config(tables=[f"{schema}.nowhere"]), ["row_count"])
    result = find(results, "row_count", f"{schema}.nowhere")
    assert result.status is Status.CRITICAL
    assert result.message == "table missing on the source and target"


def test_view_not_comparable(pair, write_config, orders, schema):
    pair.source.execute(f"CREATE VIEW {schema}.v AS SELECT id FROM {orders}")
    pair.wait_caught_up()
    result = find(
        results_of(write_config(tables=[f"{schema}.v"]), ["checksum"]),
        "checksum",
        f"{schema}.v",
    )
    assert result.status is Status.UNKNOWN
    assert result.details["state"] == "not_comparable"
    assert "view" in result.message


def test_odd_table_names(pair, write_config, schema):
    names = ["we`ird", "dash-name", "tä_blé", "select"]
    for name in names:
        quoted = "`" + name.replace("`", "``") + "`"
        pair.source.execute(f"CREATE TABLE {schema}.{quoted} (id INT PRIMARY KEY)")
        pair.source.execute(f"INSERT INTO {schema}.{quoted} VALUES (1), (2)")
    pair.wait_caught_up()
    tables = [f"{schema}.{name}" for name in names]
    results = results_of(write_config(tables=tables), ["checksum", "row_count"])
    for table in tables:
        assert find(results, "checksum", table).status is Status.OK
        assert find(results, "row_count", table).metrics["target_rows"] == 2


def test_missing_privilege_names_grant(pair, write_config, schema):
    user = f"weak_{schema}"
    for server in (pair.source, pair.target):
        server.execute_unlogged(
            f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'",
            f"GRANT SELECT, PROCESS, REPLICATION CLIENT ON *.* TO '{user}'@'%'",
        )
    try:
        path = write_config()
        config = yaml.safe_load(path.read_text())
        for server in ("source", "target"):
            config[server].update(user=user, password="pw")
        path.write_text(yaml.safe_dump(config))
        result = find(results_of(path, ["replica_lag"]), "replica_lag", "target")
        assert result.status is Status.UNKNOWN
        assert "SLAVE MONITOR" in result.message
        assert f"GRANT SLAVE MONITOR ON *.* TO '{user}'@'%'" in result.message
    finally:
        for server in (pair.source, pair.target):
            server.execute_unlogged(f"DROP USER '{user}'@'%'")


def test_io_thread_error_text(pair, write_config):
    """A wrong replication password leaves the IO thread Connecting with 1045."""
    target = pair.target
    target.execute_unlogged(
        "STOP SLAVE", "CHANGE MASTER TO MASTER_PASSWORD='wrong'", "START SLAVE"
    )
    try:
        wait_for(
            lambda: (target.slave_status() or {}).get("Last_IO_Errno"),
            30,
            message="the IO thread never reported an error",
        )
        result = find(
            results_of(write_config(), ["replica_lag"]), "replica_lag", "replication"
        )
        assert result.status is Status.CRITICAL
        assert result.metrics["lag_seconds"] is None
        assert result.metrics["lag_known"] == 0
        assert "IO thread Connecting" in result.message
        assert "error 1045" in result.message
        assert "Access denied" in result.message
    finally:
        target.execute_unlogged(
            "STOP SLAVE",
            f"CHANGE MASTER TO MASTER_PASSWORD='{pair.repl_password}'",
            "START SLAVE",
        )
        pair.wait_caught_up()


def test_sql_thread_stopped(pair, write_config):
    pair.target.execute_unlogged("STOP SLAVE SQL_THREAD")
    try:
        result = find(
            results_of(write_config(), ["replica_lag"]), "replica_lag", "replication"
        )
        assert result.status is Status.CRITICAL
        assert "SQL thread No" in result.message
        assert result.metrics["lag_seconds"] is None
    finally:
        pair.target.execute_unlogged("START SLAVE SQL_THREAD")


def test_unreachable_server_unknown(write_config):
    path = write_config()
    config = yaml.safe_load(path.read_text())
    config["target"]["port"] = 1
    config["target"]["retry_attempts"] = 2
    path.write_text(yaml.safe_dump(config))
    results = results_of(path, ["connection", "replica_lag"])
    down = find(results, "connection", "target")
    assert down.status is Status.CRITICAL
    assert down.metrics["up"] == 0
    assert "after 2 attempts" in down.message
    assert find(results, "replica_lag", "target").status is Status.UNKNOWN


def run_cli(*args):
    done = subprocess.run(
        [sys.executable, "-m", "encmond", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def test_cli_check_exit_codes(pair, write_config, orders):
    path = str(write_config(tables=[orders]))
    code, out, err = run_cli("check", "-c", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["status"] == "OK"
    pair.target.execute_unlogged(f"UPDATE {orders} SET amount = 0 WHERE id = 9")
    code, out, err = run_cli("check", "-c", path, "--json")
    assert code == 2, err
    report = json.loads(out)
    assert report["status"] == "CRITICAL"
    critical = [r for r in report["results"] if r["status"] == "CRITICAL"]
    assert [(r["check"], r["subject"]) for r in critical] == [("checksum", orders)]
    code, out, _ = run_cli("check", "-c", path, "--only", "checksum")
    assert code == 2
    assert orders in out
    assert "CRITICAL" in out


def test_unicode_password(pair, write_config, schema):
    user, password = f"uni_{schema}", "Zürich€1"
    for server in (pair.source, pair.target):
        server.execute_unlogged(
            f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
            f"GRANT SELECT, PROCESS, REPLICATION CLIENT ON *.* TO '{user}'@'%'",
        )
    try:
        path = write_config()
        config = yaml.safe_load(path.read_text())
        for server in ("source", "target"):
            config[server].update(user=user, password=password)
        path.write_text(yaml.safe_dump(config, allow_unicode=True))
        results = results_of(path, ["connection"])
        assert [r.status for r in results] == [Status.OK, Status.OK]
    finally:
        for server in (pair.source, pair.target):
            server.execute_unlogged(f"DROP USER '{user}'@'%'")


def test_hung_target_is_down(pair, write_config):
    path = write_config(checks={"connection": {"probe_timeout": "2s"}})
    config = yaml.safe_load(path.read_text())
    config["target"]["retry_attempts"] = 2
    path.write_text(yaml.safe_dump(config))
    pair.target.pause()
    try:
        results = results_of(path, ["connection"])
    finally:
        pair.target.resume()
    down = find(results, "connection", "target")
    assert down.status is Status.CRITICAL
    assert "timed out" in down.message
    assert find(results, "connection", "source").status is Status.OK
