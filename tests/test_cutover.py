"""The cutover verdict: its rules over a real store, then the real pair."""

from __future__ import annotations

import pytest
import yaml

from daemon_process import wait_for
from encmond.cutover import NOTE_NO_CLEAN_PASS, evaluate, lag_problem
from encmond.loading import load
from encmond.model import Result, Status
from encmond.state import State
from encmond.store import Store
from helpers import cutover_cli

SETTINGS = {"max_lag": 5.0, "lag_window": 60.0, "validation_max_age": 3600.0}
NOW = 1_800_000_000.0


def test_lag_problem_cases():
    steady = [(NOW - 60 + second, 0.0) for second in range(0, 61, 5)]
    assert lag_problem(steady, NOW - 60, NOW, 15, 5.0) == ""
    assert lag_problem([], NOW - 60, NOW, 15, 5.0).startswith("no lag samples")
    late = steady[6:]
    assert lag_problem(late, NOW - 60, NOW, 15, 5.0).startswith(
        "lag has been watched for only"
    )
    holed = steady[:3] + steady[8:]
    assert lag_problem(holed, NOW - 60, NOW, 15, 5.0).startswith("lag was unknown")
    high = steady[:5] + [(NOW - 30, 9.0)] + steady[7:]
    assert lag_problem(high, NOW - 60, NOW, 15, 5.0).startswith("lag was 9 s at ")


@pytest.fixture
def config(tmp_path):
    """A configuration that is loaded but never connects."""
    path = tmp_path / "config.yaml"
    server = {"host": "127.0.0.1", "port": 1, "user": "encmond", "password": "x"}
    path.write_text(
        yaml.safe_dump(
            {
                "source": server,
                "target": server,
                "tables": ["shop.orders"],
                "storage": {"path": str(tmp_path / "encmond.db")},
                "plugins": {"dirs": []},
            }
        )
    )
    return load(str(path))[0]


def healthy() -> list[Result]:
    """Results of a caught-up, validated, encrypted pair; ``stored`` dates them."""
    return [
        Result(
            "replication",
            Status.OK,
            "caught up",
            {"lag_seconds": 0.0, "lag_known": 1, "io_running": 1, "sql_running": 1},
            check="replica_lag",
        ),
        Result(
            "shop.orders",
            Status.OK,
            "matches",
            details={"state": "match"},
            check="checksum",
        ),
        Result(
            "at_rest",
            Status.OK,
            "encrypted",
            details={"verdict": "encrypted"},
            check="encryption",
        ),
        Result("gtid", Status.OK, "no errant writes", check="errant_writes"),
        Result(
            "shop.orders", Status.OK, "same", details={"state": "match"}, check="schema"
        ),
    ]


def stored(tmp_path, results_at: dict[float, list[Result]]) -> State:
    store = Store(str(tmp_path / "state.db"))
    for moment, results in sorted(results_at.items()):
        for result in results:
            result.server, result.time = "target", moment
        store.save_results(results)
    return State(store)


def test_verdict_go_when_all_hold(tmp_path, config):
    state = stored(tmp_path, {NOW - 60 + s: healthy() for s in range(0, 61, 5)})
    verdict = evaluate(state, config, "target", SETTINGS, NOW)
    assert verdict.go, verdict.summary()
    assert verdict.summary() == "GO: all 7 conditions hold"
    assert verdict.notes == [NOTE_NO_CLEAN_PASS]
    assert all(fact.time is not None for fact in verdict.facts)


def test_verdict_lists_every_blocker(tmp_path, config):
    results = healthy()
    results[2].details = {"verdict": "in_progress"}
    results[1].details = {"state": "diverged"}
    state = stored(tmp_path, {NOW - 2: results})
    verdict = evaluate(state, config, "target", SETTINGS, NOW).to_dict()
    blockers = {b["condition"]: b for b in verdict["blockers"]}
    assert verdict["verdict"] == "NO-GO"
    assert set(blockers) == {
        "lag within 5 s for 1 min",
        "shop.orders validated",
        "target encrypted at rest",
    }
    assert blockers["target encrypted at rest"]["clears"].startswith(
        "wait until the encryption threads"
    )
    assert blockers["shop.orders validated"]["clears"].startswith("repair")


def test_verdict_old_clean_pass(tmp_path, config):
    results = healthy()
    results[1].details = {"state": "in_flux", "last_clean_pass": NOW - 7200}
    state = stored(tmp_path, {NOW - 60 + s: results for s in range(0, 61, 5)})
    verdict = evaluate(state, config, "target", SETTINGS, NOW)
    (blocker,) = verdict.blockers
    assert blocker.condition == "shop.orders validated"
    assert blocker.observed.endswith("older than 1 h")
    assert verdict.notes == []


def test_verdict_missing_results(tmp_path, config):
    verdict = evaluate(State(), config, "target", SETTINGS, NOW)
    assert not verdict.go
    assert len(verdict.blockers) == 6
    assert verdict.blockers[0].observed == (
        "no replica_lag result for replication on target: the check has not run yet"
    )


def test_stopped_replication_no_go(pair, write_config, schema):
    pair.source.execute(f"CREATE TABLE {schema}.items (id INT PRIMARY KEY)")
    pair.wait_caught_up()
    pair.target.execute_unlogged("STOP SLAVE")
    try:
        status, report = cutover_cli(write_config(tables=[f"{schema}.items"]))
    finally:
        pair.target.execute_unlogged("START SLAVE")
    lag = next(
        r
        for r in report["results"]
        if r["check"] == "replica_lag" and r["subject"] == "replication"
    )
    blockers = {b["condition"]: b for b in report["targets"]["target"]["blockers"]}
    assert status == 1
    assert report["verdict"] == "NO-GO"
    assert lag["metrics"]["lag_seconds"] is None
    assert blockers["replication running"]["problem"].startswith(
        "replication stopped: IO thread No, SQL thread No"
    )
    assert "START SLAVE" in blockers["replication running"]["clears"]


def test_caught_up_pair_go(pair, write_config, daemon, schema):
    table = f"{schema}.orders"
    pair.source.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, v INT)")
    pair.source.execute(
        f"INSERT INTO {table} SELECT seq, seq FROM {schema}.seq_1_to_50"
    )
    pair.wait_caught_up()
    checks = {
        "replica_lag": {"interval": "1s"},
        "checksum": {"interval": "2s"},
        "schema": {"interval": "2s"},
        "encryption": {"interval": "2s"},
        "errant_writes": {"interval": "2s"},
        "cutover": {"interval": "1s", "lag_window": "6s", "max_lag": "2s"},
    }
    path = write_config(tables=[table], checks=checks)
    encmond = daemon(path)
    report = wait_for(
        lambda: (r := encmond.json("/api/cutover"))["verdict"] == "GO" and r,
        90,
        interval=0.5,
        message="the verdict never became GO",
    )
    status, cli_report = cutover_cli(path)
    verdict = report["targets"]["target"]

    assert verdict["blockers"] == []
    assert len(verdict["facts"]) == 7
    assert all(fact["ok"] and fact["time"] for fact in verdict["facts"])
    assert status == 0, cli_report["targets"]["target"]["blockers"]
    assert cli_report["verdict"] == "GO"
    assert cli_report["history"] == encmond.db_path
    stored = wait_for(
        lambda: (r := encmond.result("cutover", "verdict")) and r["metrics"]["go"], 30
    )
    assert stored == 1
