"""The acknowledgement and silence routes, on the Bottle app called in process."""

from __future__ import annotations

import io
import json
import time
import wsgiref.util
import wsgiref.validate

import pytest

from encmond.model import Result, Status
from encmond.webapp import make_app
from receivers import Monitors


@pytest.fixture
def monitor(tmp_path):
    with Monitors(tmp_path) as monitors:
        yield monitors.build()


@pytest.fixture
def app(monitor):
    return wsgiref.validate.validator(make_app(monitor))


def call(app, method, path, body=None, content_type="application/json"):
    """Call the WSGI app; returns (status code, decoded JSON body)."""
    raw = b"" if body is None else json.dumps(body).encode()
    environ = {}
    wsgiref.util.setup_testing_defaults(environ)
    path, _, query = path.partition("?")
    environ.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        QUERY_STRING=query,
        CONTENT_LENGTH=str(len(raw)),
        CONTENT_TYPE=content_type,
    )
    environ["wsgi.input"] = io.BytesIO(raw)
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"] = int(status.split()[0])
        return lambda data: None

    result = app(environ, start_response)
    try:
        text = b"".join(result).decode()
    finally:
        result.close()
    return started["status"], json.loads(text)


def fire(monitor, subject="target"):
    now = time.time()
    monitor.alerts.process(
        [
            Result(
                subject,
                Status.CRITICAL,
                "down",
                check="connection",
                server=subject,
                time=now,
            )
        ],
        now,
    )
    return monitor.store.alerts("firing")[0]


def test_ack_records_who(app, monitor):
    alert = fire(monitor)
    status, body = call(
        app, "POST", f"/api/alerts/{alert.id}/ack", {"by": "alice", "comment": "on it"}
    )
    assert status == 200
    assert body["acknowledged"] is True
    assert body["acked_by"] == "alice"
    assert body["ack_comment"] == "on it"
    status, detail = call(app, "GET", f"/api/alerts/{alert.id}")
    assert detail["events"][-1]["event"] == "acknowledged"
    assert detail["events"][-1]["actor"] == "alice"
    status, body = call(app, "DELETE", f"/api/alerts/{alert.id}/ack?by=bob")
    assert status == 200
    assert body["acknowledged"] is False
    assert monitor.store.alert_events(alert.id)[-1]["actor"] == "bob"


def test_ack_needs_name(app, monitor):
    alert = fire(monitor)
    status, body = call(app, "POST", f"/api/alerts/{alert.id}/ack", {})
    assert status == 400
    assert body["parameter"] == "by"


def test_ack_unknown_alert(app):
    status, body = call(app, "POST", "/api/alerts/999/ack", {"by": "alice"})
    assert status == 404
    assert body["error"] == "no alert with id 999"


def test_ack_resolved_alert(app, monitor):
    alert = fire(monitor)
    now = time.time()
    monitor.alerts.process(
        [Result("target", Status.OK, "up", check="connection", server="target")], now
    )
    status, body = call(app, "POST", f"/api/alerts/{alert.id}/ack", {"by": "alice"})
    assert status == 409
    assert "resolved" in body["error"]


def test_ack_bad_body(app, monitor):
    alert = fire(monitor)
    status, body = call(app, "POST", f"/api/alerts/{alert.id}/ack", ["alice"])
    assert status == 400
    assert body["parameter"] == "body"


def test_silence_lifecycle(app, monitor):
    alert = fire(monitor)
    status, silence = call(
        app,
        "POST",
        "/api/silences",
        {"subject": "target", "duration": "2h", "by": "alice", "comment": "upgrade"},
    )
    assert status == 201
    assert silence["active"] is True
    assert silence["created_by"] == "alice"
    assert silence["ends_at"] - silence["starts_at"] == pytest.approx(7200)
    status, alerts = call(app, "GET", "/api/alerts?state=firing")
    assert alerts["alerts"][0]["silenced"] is True
    assert alerts["alerts"][0]["id"] == alert.id
    status, listed = call(app, "GET", "/api/silences")
    assert [s["id"] for s in listed["silences"]] == [silence["id"]]

    status, ended = call(app, "DELETE", f"/api/silences/{silence['id']}?by=bob")
    assert status == 200
    assert ended["active"] is False
    assert ended["ended_by"] == "bob"
    assert call(app, "GET", "/api/silences")[1]["silences"] == []
    assert len(call(app, "GET", "/api/silences?state=expired")[1]["silences"]) == 1
    status, alerts = call(app, "GET", "/api/alerts?state=firing")
    assert alerts["alerts"][0]["silenced"] is False
    status, again = call(app, "DELETE", f"/api/silences/{silence['id']}?by=bob")
    assert status == 409


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"duration": "2h", "by": "alice"}, "subject"),
        ({"subject": "target", "by": "alice"}, "duration"),
        ({"subject": "target", "duration": "soon", "by": "alice"}, "duration"),
        ({"subject": "target", "duration": "400d", "by": "alice"}, "duration"),
        ({"subject": "target", "duration": "2h"}, "by"),
        ({"subject": 5, "duration": "2h", "by": "alice"}, "subject"),
        ({"check": "nosuchcheck", "duration": "2h", "by": "alice"}, "check"),
        ({"server": "tagret", "duration": "2h", "by": "alice"}, "server"),
    ],
)
def test_silence_rejects(app, body, parameter):
    status, answer = call(app, "POST", "/api/silences", body)
    assert status == 400
    assert answer["parameter"] == parameter


def test_silence_typo_suggests_check(app):
    body = {"check": "replica_lagg", "duration": "2h", "by": "alice"}
    status, answer = call(app, "POST", "/api/silences", body)
    assert status == 400
    assert "did you mean 'replica_lag'?" in answer["error"]


def test_silence_unknown(app):
    status, body = call(app, "DELETE", "/api/silences/77?by=alice")
    assert status == 404


def test_alerts_state_pending(app, monitor):
    now = time.time()
    monitor.alerts.process(
        [
            Result(
                "replication",
                Status.CRITICAL,
                "lag 400 s",
                check="replica_lag",
                server="target",
                conditions={"lag": Status.CRITICAL},
            )
        ],
        now,
    )
    status, body = call(app, "GET", "/api/alerts?state=pending")
    assert status == 200
    assert [a["condition"] for a in body["alerts"]] == ["lag"]


def test_form_post_rejected(app):
    status, body = call(
        app,
        "POST",
        "/api/silences",
        {"server": "target", "duration": "1h", "by": "mallory"},
        content_type="application/x-www-form-urlencoded",
    )
    assert status == 415
    assert "application/json" in body["error"]
