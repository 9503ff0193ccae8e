"""HTTP routes that act on alerts: acknowledgements and silences.

Each change is recorded with who made it (``by``, required) and when.

- ``POST /api/alerts/<id>/ack`` with ``{"by", "comment"}`` acknowledges an
  open alert; ``DELETE /api/alerts/<id>/ack?by=`` withdraws that.
- ``GET /api/silences?state=active|expired|all`` lists silences, newest first.
- ``POST /api/silences`` with ``{"check", "server", "subject", "duration",
  "by", "comment"}`` silences the matching alerts; ``DELETE
  /api/silences/<id>?by=`` ends a silence now.

With ``web.auth_token_file`` set, these routes need the token like the rest
of the API (see ``encmond.webauth``).
"""

from __future__ import annotations

import difflib
import json
import time
from functools import partial
from typing import Any

import bottle

from encmond import webapp
from encmond.monitor import Monitor
from encmond.settings import positive_duration
from encmond.silences import Silence

MAX_NAME = 200  # characters of "by", check, server and subject
MAX_COMMENT = 2000
MAX_SILENCE = 90 * 86400.0  # seconds; a longer silence is more likely a mistake
SILENCE_STATES = ("active", "expired", "all")


def install(app: bottle.Bottle, monitor: Monitor) -> None:
    """Add the acknowledgement and silence routes to ``app``."""
    app.post("/api/alerts/<alert_id:int>/ack", callback=partial(ack, monitor))
    app.delete("/api/alerts/<alert_id:int>/ack", callback=partial(unack, monitor))
    app.get("/api/silences", callback=partial(list_silences, monitor))
    app.post("/api/silences", callback=partial(create_silence, monitor))
    app.delete("/api/silences/<silence_id:int>", callback=partial(end_silence, monitor))


def request_data() -> dict[str, Any]:
    """Return the JSON object in the request body ({} when the body is empty).

    A POST must say ``Content-Type: application/json``. A browser sends that
    cross-site only after a CORS preflight, which encmond never grants, so a
    page on another site cannot acknowledge or silence alerts with a form.
    """
    if bottle.request.method == "POST" and not bottle.request.content_type.startswith(
        "application/json"
    ):
        raise webapp.error_response(
            415, "send the request body as JSON with Content-Type: application/json"
        )
    raw = bottle.request.body.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise webapp.BadParameter("body", "expected a JSON object") from None
    if not isinstance(data, dict):
        raise webapp.BadParameter("body", "expected a JSON object")
    return data


def text_field(
    data: dict, name: str, required: bool = False, limit: int = MAX_NAME
) -> str | None:
    """Return a string field of the body (or of the query string), stripped."""
    value = data.get(name, bottle.request.query.decode().get(name))
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise webapp.BadParameter(name, "required, a non-empty string")
        return None
    if not isinstance(value, str):
        raise webapp.BadParameter(name, f"expected a string, got {value!r}")
    if len(value) > limit:
        raise webapp.BadParameter(name, f"longer than {limit} characters")
    return value.strip()


def open_alert(monitor: Monitor, alert_id: int):
    """Return the alert, or raise 404 when unknown and 409 when resolved."""
    alert = monitor.store.alert(alert_id)
    if alert is None:
        raise webapp.error_response(404, f"no alert with id {alert_id}")
    if alert.state == "resolved":
        raise webapp.error_response(
            409, f"alert {alert_id} is resolved; only open alerts can be acknowledged"
        )
    return alert


def ack(monitor: Monitor, alert_id: int):
    data = request_data()
    alert = open_alert(monitor, alert_id)
    by = text_field(data, "by", required=True)
    comment = text_field(data, "comment", limit=MAX_COMMENT) or ""
    alert = monitor.alerts.acknowledge(alert, by, comment)
    return webapp.json_response(alert.to_dict())


def unack(monitor: Monitor, alert_id: int):
    data = request_data()
    alert = open_alert(monitor, alert_id)
    by = text_field(data, "by", required=True)
    alert = monitor.alerts.unacknowledge(alert, by)
    return webapp.json_response(alert.to_dict())


def list_silences(monitor: Monitor):
    query = bottle.request.query.decode()
    state = query.get("state", "active")
    if state not in SILENCE_STATES:
        raise webapp.BadParameter(
            "state", f"expected one of {', '.join(SILENCE_STATES)}, got {state!r}"
        )
    limit = webapp.int_parameter(query, "limit", 200, 1, 10000)
    now = time.time()
    found = monitor.alerts.silence_store.list(
        now, None if state == "all" else state, limit
    )
    return webapp.json_response({"silences": [s.to_dict(now) for s in found]})


def create_silence(monitor: Monitor):
    data = request_data()
    matchers = {name: text_field(data, name) for name in ("check", "server", "subject")}
    if not any(matchers.values()):
        raise webapp.BadParameter(
            "subject", "give at least one of check, server and subject to match"
        )
    known = {"check": monitor.plugins.checks, "server": monitor.config.servers}
    for name, names in known.items():
        value = matchers[name]
        if value and value not in names:
            nearest = difflib.get_close_matches(value, names, n=1)
            hint = f"; did you mean '{nearest[0]}'?" if nearest else ""
            raise webapp.BadParameter(
                name,
                f"unknown {name} '{value}', so the silence would match nothing"
                f"{hint} (known: {', '.join(sorted(names))})",
            )
    seconds = silence_duration(data.get("duration"))
    by = text_field(data, "by", required=True)
    comment = text_field(data, "comment", limit=MAX_COMMENT) or ""
    now = time.time()
    silence = Silence(
        **matchers,
        starts_at=now,
        ends_at=now + seconds,
        created_by=by,
        comment=comment,
    )
    monitor.alerts.add_silence(silence, now)
    return webapp.json_response(silence.to_dict(now), 201)


def silence_duration(value: Any) -> float:
    if value is None:
        raise webapp.BadParameter("duration", "required, such as 30m or 2h")
    try:
        seconds = positive_duration(value)
    except ValueError as exc:
        raise webapp.BadParameter("duration", str(exc)) from None
    if seconds > MAX_SILENCE:
        raise webapp.BadParameter(
            "duration", f"at most {MAX_SILENCE / 86400:g} days, got {value!r}"
        )
    return seconds


def end_silence(monitor: Monitor, silence_id: int):
    data = request_data()
    silence = monitor.alerts.silence_store.get(silence_id)
    if silence is None:
        return webapp.error_response(404, f"no silence with id {silence_id}")
    now = time.time()
    if not silence.active(now):
        return webapp.error_response(409, f"silence {silence_id} has already ended")
    by = text_field(data, "by", required=True)
    monitor.alerts.end_silence(silence, by, now)
    # Alerts that fired during the silence notify now.
    monitor.dispatcher.wake()
    return webapp.json_response(silence.to_dict(now))
