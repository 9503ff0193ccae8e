"""The one-line STATUS= summary, fed with hub events in-process."""

from __future__ import annotations

import pytest

from encmond.loading import load
from encmond.monitor import Monitor
from encmond.sdnotify import SystemdNotifier
from encmond.status import StatusLine
from encmond.store import Store


@pytest.fixture
def status(write_config):
    config, plugins = load(str(write_config()))
    store = Store(config.storage["path"])
    monitor = Monitor(config, plugins, store)
    yield StatusLine(monitor, SystemdNotifier(""))
    monitor.close()
    store.close()


def connection(server: str, status: str) -> dict:
    return {
        "check": "connection",
        "server": server,
        "subject": server,
        "status": status,
    }


def alert(subject: str, severity: str, state: str = "firing") -> dict:
    return {
        "type": "alert",
        "alert": {
            "check": "checksum",
            "server": "target",
            "subject": subject,
            "severity": severity,
            "state": state,
        },
    }


def test_status_before_checks(status):
    status.load()
    assert status.text() == (
        "source not checked yet, target not checked yet; no alerts firing"
    )


def test_status_server_states(status):
    results = [connection("source", "OK"), connection("target", "CRITICAL")]
    status.apply({"type": "results", "results": results})
    assert status.text() == "target down; no alerts firing"
    status.apply({"type": "results", "results": [connection("target", "UNKNOWN")]})
    assert status.text() == "target unknown; no alerts firing"
    status.apply({"type": "results", "results": [connection("target", "OK")]})
    assert status.text() == "all 2 servers up; no alerts firing"


def test_status_alert_counts(status):
    status.apply({"type": "results", "results": [connection("source", "OK")]})
    status.apply({"type": "results", "results": [connection("target", "OK")]})
    status.apply(alert("shop.orders", "CRITICAL"))
    assert status.text() == "all 2 servers up; 1 alert firing (1 CRITICAL)"
    status.apply(alert("shop.customers", "WARNING"))
    assert status.text() == (
        "all 2 servers up; 2 alerts firing (1 CRITICAL, 1 WARNING)"
    )
    status.apply(alert("shop.orders", "CRITICAL", state="resolved"))
    assert status.text() == "all 2 servers up; 1 alert firing (1 WARNING)"


def test_status_note_appended(status):
    status.note = "reload failed: config.yaml, line 3: tables: expected a list"
    assert status.text().endswith(
        "; no alerts firing; reload failed: config.yaml, line 3: tables: "
        "expected a list"
    )
