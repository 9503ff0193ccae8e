"""One daemon watching a source and two targets: an encrypted one, a plain one.

The session's ``trio`` has its own servers: ``target`` is encrypted at rest
and ``replica`` (an existing read replica, say) is not. Every view must show
both, each with its own verdict, and a killed target must not stop the
monitoring of the other.
"""

from __future__ import annotations

import json
import time

import pytest
import websocket
import yaml
from playwright.sync_api import expect

from browser import screenshot
from daemon_process import wait_for
from encmond.cutoveronce import run_cutover
from encmond.loading import load

pytestmark = pytest.mark.slow

TARGETS = ("target", "replica")  # the trio's, in their configured order
TABLE = "multi.items"
FAST_CHECKS = {
    "connection": {"interval": "1s"},
    "replica_lag": {"interval": "1s"},
    "encryption": {"interval": "2s"},
    "errant_writes": {"interval": "2s"},
    "checksum": {"interval": "2s"},
    "row_count": {"interval": "2s"},
    "cutover": {"interval": "2s"},
}
ENCRYPTION_FACT = "target encrypted at rest"


@pytest.fixture
def encmond(trio, daemon, tmp_path):
    """``encmond run`` on the trio, once every target has an encryption result."""
    config = trio.encmond_config(
        storage={"path": str(tmp_path / "encmond.db")},
        web={"listen": "127.0.0.1:0"},
        plugins={"dirs": []},
        tables=[TABLE],
        checks=FAST_CHECKS,
    )
    for server in ("source", *TARGETS):
        section = config["source"] if server == "source" else config["targets"][server]
        section.update(retry_delay="500ms", connect_timeout="2s")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    process = daemon(path)
    for name in TARGETS:
        wait_for(
            lambda name=name: (
                process.result("encryption", "at_rest", name)
                and process.result("replica_lag", "replication", name)
            ),
            60,
            message=f"no encryption or replica_lag result for {name}",
        )
    return process


def verdicts(results: list[dict]) -> dict[str, tuple[str, str]]:
    """Return each target's at-rest (verdict, status) from results as dicts."""
    return {
        r["server"]: (r["details"]["verdict"], r["status"])
        for r in results
        if r["check"] == "encryption" and r["subject"] == "at_rest"
        if r["server"] in TARGETS
    }


EXPECTED = {"target": ("encrypted", "OK"), "replica": ("unencrypted", "CRITICAL")}


def test_api_metrics_both(encmond):
    metrics = encmond.json("/api/metrics")
    assert set(metrics["targets"]) == set(TARGETS)
    assert set(metrics["servers"]) == {"source", *TARGETS}
    for name in TARGETS:
        assert metrics["servers"][name]["role"] == "target"
        assert metrics["targets"][name]["replication"]["status"] == "OK"
        assert TABLE in metrics["targets"][name]["tables"]
    assert verdicts(metrics["results"]) == EXPECTED


def test_api_cutover_both(encmond):
    report = encmond.json("/api/cutover")
    assert set(report["targets"]) == set(TARGETS)
    facts = {
        name: {f["condition"]: f for f in verdict["facts"]}
        for name, verdict in report["targets"].items()
    }
    assert facts["target"][ENCRYPTION_FACT]["ok"] is True
    assert facts["replica"][ENCRYPTION_FACT]["ok"] is False
    assert "not encrypted at rest" in facts["replica"][ENCRYPTION_FACT]["observed"]
    blockers = {b["condition"] for b in report["targets"]["replica"]["blockers"]}
    assert ENCRYPTION_FACT in blockers
    assert report["verdict"] == "NO-GO"


def test_prometheus_both(encmond):
    status, text = encmond.get("/metrics")
    assert status == 200
    for name in TARGETS:
        assert f'encmond_replica_lag_seconds{{target="{name}"}}' in text
        checksum = f'encmond_table_checksum_match{{table="{TABLE}",target="{name}"}}'
        assert f"{checksum} 1.0" in text
        assert f'encmond_up{{role="target",server="{name}"}} 1.0' in text
    for name, (_, state) in EXPECTED.items():
        series = (
            f'encmond_check_status{{check="encryption",server="{name}",'
            f'status="{state}",subject="at_rest"}} 1.0'
        )
        assert series in text


def test_websocket_snapshot_both(encmond):
    socket = websocket.create_connection(
        encmond.url.replace("http", "ws") + "/ws", timeout=10
    )
    try:
        snapshot = json.loads(socket.recv())
    finally:
        socket.close()
    assert snapshot["type"] == "snapshot"
    assert set(snapshot["metrics"]["targets"]) == set(TARGETS)
    assert verdicts(snapshot["metrics"]["results"]) == EXPECTED
    assert set(snapshot["health"]["servers"]) == {"source", *TARGETS}


def test_dashboard_card_per_target(encmond, browser):
    page = browser.new_page()
    page.goto(encmond.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    for name in TARGETS:
        server = page.locator("#servers .card", has_text=f"{name} (target)")
        expect(server).to_have_attribute("data-status", "OK")
        section = page.locator(f'section.target[data-target="{name}"]')
        replication = section.locator(".card.replication")
        expect(replication).to_have_attribute("data-status", "OK")
        cutover = section.locator(".card.cutover")
        expect(cutover).to_have_attribute("data-verdict", "NO-GO")
        expect(section.locator("table.validation tbody tr")).to_contain_text(TABLE)
    encryption = page.locator("#servers .card", has_text="replica (target)")
    expect(encryption).to_contain_text("not encrypted")
    screenshot(page, "dashboard-two-targets")


def test_dead_target_spares_other(trio, encmond):
    replica = trio.targets["replica"]
    replica.kill()
    try:
        killed_at = time.time()
        wait_for(
            lambda: (
                (encmond.result("connection", "replica", "replica") or {}).get("status")
                == "CRITICAL"
            ),
            60,
            message="the killed replica is not reported down",
        )
        seen = killed_at
        for _ in range(3):
            seen = wait_for(
                lambda seen=seen: newer_lag_result(encmond, "target", seen),
                60,
                message="the live target's replica_lag results stopped",
            )
        live = encmond.result("replica_lag", "replication", "target")
        assert live["status"] == "OK"
        assert encmond.result("connection", "target", "target")["status"] == "OK"
        dead = encmond.result("replica_lag", "replication", "replica")
        assert dead["status"] == "UNKNOWN"
        status, health = encmond.get("/api/health")
        assert status == 503
        assert health["servers"]["replica"]["status"] == "down"
        assert health["servers"]["target"]["status"] == "up"
    finally:
        replica.start()
    trio.wait_caught_up()


def newer_lag_result(encmond, target: str, after: float) -> float | None:
    """Return the time of ``target``'s replication result if it is after ``after``."""
    result = encmond.result("replica_lag", "replication", target)
    if result and result["time"] > after:
        return result["time"]
    return None


def test_cutover_one_target_skips_other(trio, tmp_path):
    config = trio.encmond_config(
        storage={"path": str(tmp_path / "none.db")}, plugins={"dirs": []}, tables=[]
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    config, plugins = load(str(path))
    replica = trio.targets["replica"]
    replica.kill()
    try:
        report = run_cutover(config, plugins, ["target"])
    finally:
        replica.start()
    trio.wait_caught_up()
    assert list(report["targets"]) == ["target"]
    assert "replica" not in {result["server"] for result in report["results"]}
