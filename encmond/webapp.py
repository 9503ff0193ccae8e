"""The web app: dashboard, JSON API and WebSocket feed, as a Bottle application.

Every error response is JSON; no route returns a traceback.
"""

from __future__ import annotations

import datetime
import importlib.resources
import json
import logging
import re
import time
from typing import Any

import bottle
import gevent
import gevent.queue

from encmond import __version__, alert_api, openapi, prometheus, webauth
from encmond.model import Result, Status
from encmond.monitor import Monitor
from encmond.responses import error_response, json_response
from encmond.settings import duration
from encmond.validation import web as validation_web

log = logging.getLogger(__name__)

STATIC_SUFFIXES = (".js", ".css", ".svg", ".png", ".ico", ".html")
MAX_POINTS = 10000
DEFAULT_POINTS = 500
ALERT_STATES = ("pending", "firing", "resolved")
WS_HEARTBEAT = 25.0  # seconds between keep-alive messages on an idle WebSocket
# Accepted range of since and until, in epoch seconds: 1970 to the end of 9999.
MIN_TIME = 0.0
MAX_TIME = 253402300799.0
# The forms that int_parameter and time_parameter accept, and nothing else
# that int() or float() would take, such as "1e3", "inf" or " 5".
INTEGER = re.compile(r"-?[0-9]+")
TIME = re.compile(openapi.TIME_PATTERN)


class BadParameter(Exception):
    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"invalid parameter '{parameter}': {message}")


def web_root() -> str:
    return str(importlib.resources.files("encmond.web"))


def make_app(monitor: Monitor) -> bottle.Bottle:
    """Build the Bottle app that serves ``monitor``'s state."""
    app = bottle.Bottle(catchall=True)
    app.config["json.enable"] = False  # every route returns its own JSON response
    app.config["encmond.monitor"] = monitor
    root = web_root()

    def handle_error(error: bottle.HTTPError) -> str:
        if error.status_code >= 500:
            log.error(
                "%s %s failed: %s",
                bottle.request.method,
                bottle.request.path,
                error.traceback or error.body,
            )
            message = "internal error; see the encmond log"
        elif error.status_code == 404:
            message = f"no route {bottle.request.path}"
        elif error.status_code == 405:
            message = f"method {bottle.request.method} is not allowed here"
        else:
            message = str(error.body)
        bottle.response.content_type = "application/json"
        return json.dumps({"error": message})

    app.default_error_handler = handle_error

    @app.get("/", auth=False)
    def index():
        return bottle.static_file("index.html", root=root)

    @app.get("/static/<path:path>", auth=False)
    def static(path):
        # Only the dashboard's assets; the package directory also holds Python.
        if not path.endswith(STATIC_SUFFIXES) or "__pycache__" in path:
            return error_response(404, f"no route {bottle.request.path}")
        return bottle.static_file(path, root=root)

    @app.get("/api/health", auth=False)
    def health():
        report = health_report(monitor)
        return json_response(report, 200 if report["status"] == "up" else 503)

    @app.get("/api/metrics")
    def metrics():
        return json_response(metrics_report(monitor))

    @app.get("/api/alerts")
    def alerts():
        query = query_parameters()
        state = query.get("state")
        if state is not None and state not in ALERT_STATES:
            raise BadParameter(
                "state", f"expected one of {', '.join(ALERT_STATES)}, got {state!r}"
            )
        limit = int_parameter(query, "limit", 200, 1, 10000)
        found = monitor.store.alerts(state, limit)
        return json_response({"alerts": [alert.to_dict() for alert in found]})

    @app.get("/api/alerts/<alert_id:int>")
    def alert(alert_id):
        found = monitor.store.alert(alert_id)
        if found is None:
            return error_response(404, f"no alert with id {alert_id}")
        return json_response(
            found.to_dict() | {"events": monitor.store.alert_events(alert_id)}
        )

    @app.get("/api/history")
    def history():
        return history_response(monitor, query_parameters())

    @app.get("/ws")
    def websocket():
        socket = bottle.request.environ.get("wsgi.websocket")
        refusal = app.websocket_refusal(bottle.request.environ)
        if refusal is not None:
            return error_response(*refusal)
        if socket is None:
            return error_response(400, "expected a WebSocket upgrade request")
        serve_websocket(monitor, socket)
        return ""

    alert_api.install(app, monitor)
    app.install(catch_bad_parameters)
    from encmond import cutover_api  # imported here: it uses this module's helpers

    cutover_api.install(app, monitor)
    validation_web.install(app, monitor)
    webauth.install(
        app,
        webauth.TokenAuth(lambda: monitor.config.web.auth_token),
        lambda: monitor.config.web,
    )
    prometheus.install(app, monitor)
    openapi.install(app, monitor)
    return app


def query_parameters() -> bottle.FormsDict:
    """Return the query string decoded as UTF-8 (WSGI hands it over as latin-1)."""
    return bottle.request.query.decode()


def catch_bad_parameters(callback):
    """Bottle plugin: answer BadParameter with 400 and the parameter's name."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except BadParameter as exc:
            return error_response(400, str(exc), parameter=exc.parameter)

    return wrapper


def int_parameter(query, name: str, default: int, minimum: int, maximum: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not INTEGER.fullmatch(text):
        raise BadParameter(name, f"expected a whole number, got {text!r}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise BadParameter(name, f"expected {minimum} to {maximum}, got {value}")
    return value


def time_parameter(query, name: str, default: float, now: float) -> float:
    """Parse epoch seconds, an ISO 8601 time, or a duration meaning "that long ago"."""
    text = query.get(name)
    if text is None:
        return default
    value = parse_time(text, now)
    if value is None:
        raise BadParameter(
            name,
            "expected epoch seconds, an ISO 8601 time or a "
            f"duration such as 1h, got {text!r}",
        )
    if not MIN_TIME <= value <= MAX_TIME:
        raise BadParameter(
            name, f"expected a time from 1970 to 9999, got {text!r} ({value:g})"
        )
    return value


def parse_time(text: str, now: float) -> float | None:
    """Return ``text`` as epoch seconds, or None when it is no time at all."""
    if not TIME.fullmatch(text):
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is not None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    try:
        return now - duration(text)
    except ValueError:
        return None


def history_response(monitor: Monitor, query) -> bottle.HTTPResponse:
    metric = query.get("metric")
    if not metric:
        raise BadParameter("metric", "required, for example metric=lag_seconds")
    now = time.time()
    retention = monitor.config.storage["retention"]
    since = time_parameter(query, "since", now - retention, now)
    until = time_parameter(query, "until", now, now)
    if until <= since:
        if query.get("until"):
            raise BadParameter("until", "must be later than since")
        raise BadParameter("since", "must be earlier than until (default: now)")
    points = int_parameter(query, "points", DEFAULT_POINTS, 1, MAX_POINTS)
    keys = {name: query.get(name) or None for name in ("check", "server", "subject")}
    found = monitor.store.find_series(metric, **keys)
    if not found:
        return error_response(
            404,
            f"no stored series matches metric={metric!r}"
            + "".join(f" {k}={v!r}" for k, v in keys.items() if v),
        )
    if len(found) > 1:
        candidates = [
            {"check": s["check_name"], "server": s["server"], "subject": s["subject"]}
            for s in found
        ]
        return error_response(
            400,
            f"{len(found)} series match metric={metric!r}; "
            "add check=, server= or subject=",
            parameter="metric",
            candidates=candidates,
        )
    series = found[0]
    buckets = monitor.store.history(series["id"], since, until, points)
    return json_response(
        {
            "metric": metric,
            "check": series["check_name"],
            "server": series["server"],
            "subject": series["subject"],
            "since": since,
            "until": until,
            "points": buckets,
        }
    )


def server_results(results: list[Result]) -> dict[str, Result]:
    return {r.server: r for r in results if r.check == "connection"}


def health_report(monitor: Monitor) -> dict[str, Any]:
    """Return each part's state; "up" only when every server is connected."""
    now = time.time()
    connections = server_results(monitor.store.latest())
    interval = monitor.config.checks.get("connection", {}).get("interval", 10.0)
    servers = {}
    for name in monitor.config.servers:
        result = connections.get(name)
        if result is None:
            servers[name] = {"status": "unknown", "message": "not checked yet"}
            continue
        age = now - result.time
        state = "up" if result.status is Status.OK else "down"
        if age > 3 * interval + 60:
            state = "unknown"
        servers[name] = {
            "status": state,
            "message": result.message,
            "checked_at": result.time,
            "age_seconds": round(age, 3),
        }
    overall = "up" if all(s["status"] == "up" for s in servers.values()) else "degraded"
    return {
        "status": overall,
        "encmond": {
            "status": "up",
            "version": __version__,
            "uptime_seconds": round(now - monitor.started_at, 3),
        },
        "servers": servers,
    }


def metrics_report(monitor: Monitor) -> dict[str, Any]:
    """Return the latest state, grouped by server, target and table."""
    results = monitor.store.latest()
    config = monitor.config
    tables = {str(table) for table in config.tables}
    servers = {}
    for name, server in config.servers.items():
        result = server_results(results).get(name)
        servers[name] = summarise(result) | {
            "role": server.role,
            "address": f"{server.host}:{server.port}",
        }
    targets = {
        name: {"replication": None, "tables": {t: {} for t in sorted(tables)}}
        for name in config.targets
    }
    for result in results:
        target = targets.get(result.server)
        if target is None:
            continue
        if result.check == "replica_lag" and result.subject == "replication":
            target["replication"] = summarise(result)
        elif result.subject in tables:
            target["tables"][result.subject][result.check] = summarise(result)
    return {
        "time": time.time(),
        "servers": servers,
        "targets": targets,
        "results": [result.to_dict() for result in results],
    }


def summarise(result: Result | None) -> dict[str, Any]:
    if result is None:
        return {"status": "UNKNOWN", "message": "not checked yet"}
    return {
        "status": result.status.value,
        "message": result.message,
        "checked_at": result.time,
        **result.metrics,
        **{k: v for k, v in result.details.items() if k not in result.metrics},
    }


def serve_websocket(monitor: Monitor, socket) -> None:
    """Send a snapshot, then every event, until the client goes away."""
    queue = monitor.hub.subscribe()
    reader = gevent.spawn(drain_client, socket, queue)
    try:
        socket.send(json.dumps(snapshot(monitor), default=str))
        while not socket.closed:
            try:
                event = queue.get(timeout=WS_HEARTBEAT)
            except gevent.queue.Empty:
                event = {"type": "heartbeat", "time": time.time()}
            if event is None:
                break
            socket.send(json.dumps(event, default=str))
    except Exception as exc:
        log.debug("WebSocket client gone: %s", exc)
    finally:
        monitor.hub.unsubscribe(queue)
        reader.kill(block=False)


def drain_client(socket, queue: gevent.queue.Queue) -> None:
    """Read (and ignore) client messages; wake the sender when the socket closes."""
    try:
        while socket.receive() is not None:
            pass
    except Exception:
        pass
    queue.put_nowait(None)


def snapshot(monitor: Monitor) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "metrics": metrics_report(monitor),
        "alerts": [alert.to_dict() for alert in monitor.store.alerts(limit=100)],
        "health": health_report(monitor),
    }
