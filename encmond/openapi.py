"""The OpenAPI 3 document of the HTTP API, written by hand, at /api/openapi.json.

A route added to the web app gets an entry in ``PATHS`` (and its response
shapes in ``SCHEMAS``); a test fails for any ``/api`` route without one.
"""

from __future__ import annotations

import re
from typing import Any

import bottle

from encmond import __version__
from encmond.monitor import Monitor
from encmond.responses import error_response, json_response

STATUSES = ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
SEVERITIES = ["INFO", "WARNING", "CRITICAL"]
ALERT_STATES = ["pending", "firing", "resolved"]
VERDICTS = ["GO", "NO-GO"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def error(description: str) -> dict[str, Any]:
    return json_body(ref("Error"), description)


def query(name: str, schema: dict[str, Any], description: str, **extra) -> dict:
    return {
        "name": name,
        "in": "query",
        "schema": schema,
        "description": description,
        **extra,
    }


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def json_request(properties: dict[str, Any], required: list[str], **extra) -> dict:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": required,
                    "properties": properties,
                    **extra,
                }
            }
        },
    }


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def mapping(values: dict[str, Any]) -> dict[str, Any]:
    """Return the schema of an object whose keys are names (of servers, tables)."""
    return {"type": "object", "additionalProperties": values}


NUMBER = {"type": "number"}
STRING = {"type": "string"}
# Who acts: a non-blank name of at most 200 characters.
ACTOR = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"}
MATCHER = {"type": "string", "maxLength": 200}
# A blank matcher counts as missing.
NON_BLANK = {"type": "string", "pattern": "\\S"}
COMMENT = {"type": "string", "maxLength": 2000}
UNAUTHORIZED = {"401": error("web.auth_token_file is set and the token is missing")}
NOT_JSON = {"415": error("the Content-Type of the body is not application/json")}
# Epoch seconds, a duration, or an ISO 8601 date with an optional time and
# offset. JSON Schema patterns are ECMA-262 regexes; this one reads the same
# in Python's re, which the web app uses to accept exactly these forms.
TIME_PATTERN = (
    r"^[0-9]+(\.[0-9]+)?$"
    r"|^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$"
    r"|^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
TIME = {"type": "string", "pattern": TIME_PATTERN, "example": "1h"}
TIME_HELP = (
    "epoch seconds, an ISO 8601 time (UTC when it has no offset), or a "
    "duration meaning that long ago (30s, 5m, 1h)"
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {**STRING, "description": "what failed and how to fix it"},
            "parameter": {**STRING, "description": "the invalid query parameter"},
            "candidates": {
                "type": "array",
                "description": "the series that an ambiguous history query matched",
                "items": {"type": "object"},
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "encmond", "servers"],
        "properties": {
            "status": {"type": "string", "enum": ["up", "degraded"]},
            "encmond": {
                "type": "object",
                "required": ["status", "version", "uptime_seconds"],
                "properties": {
                    "status": {"type": "string", "enum": ["up"]},
                    "version": STRING,
                    "uptime_seconds": NUMBER,
                },
            },
            "servers": mapping(
                {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {
                        "status": {"type": "string", "enum": ["up", "down", "unknown"]},
                        "message": STRING,
                        "checked_at": NUMBER,
                        "age_seconds": NUMBER,
                    },
                }
            ),
        },
    },
    "Summary": {
        "type": "object",
        "description": "the latest result of one check for one subject, with its "
        "metrics and details merged in",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "string", "enum": STATUSES},
            "message": STRING,
            "checked_at": NUMBER,
        },
        "additionalProperties": True,
    },
    "Result": {
        "type": "object",
        "required": [
            "subject",
            "status",
            "message",
            "metrics",
            "details",
            "server",
            "check",
            "time",
            "duration",
            "conditions",
        ],
        "properties": {
            "subject": STRING,
            "status": {"type": "string", "enum": STATUSES},
            "message": STRING,
            "metrics": mapping(nullable(NUMBER)),
            "details": {"type": "object"},
            "server": STRING,
            "check": STRING,
            "time": {**NUMBER, "description": "start of the run, epoch seconds"},
            "duration": nullable({**NUMBER, "description": "run time, seconds"}),
            "conditions": {
                **mapping({"type": "string", "enum": STATUSES}),
                "description": "status of each separately alerting condition",
            },
        },
    },
    "Metrics": {
        "type": "object",
        "required": ["time", "servers", "targets", "results"],
        "properties": {
            "time": NUMBER,
            "servers": mapping(
                {
                    "allOf": [
                        ref("Summary"),
                        {
                            "type": "object",
                            "required": ["role", "address"],
                            "properties": {
                                "role": {
                                    "type": "string",
                                    "enum": ["source", "target"],
                                },
                                "address": STRING,
                            },
                        },
                    ]
                }
            ),
            "targets": mapping(
                {
                    "type": "object",
                    "required": ["replication", "tables"],
                    "properties": {
                        "replication": {**ref("Summary"), "nullable": True},
                        "tables": mapping(mapping(ref("Summary"))),
                    },
                }
            ),
            "results": {"type": "array", "items": ref("Result")},
        },
    },
    "History": {
        "type": "object",
        "required": [
            "metric",
            "check",
            "server",
            "subject",
            "since",
            "until",
            "points",
        ],
        "properties": {
            "metric": STRING,
            "check": STRING,
            "server": STRING,
            "subject": STRING,
            "since": NUMBER,
            "until": NUMBER,
            "points": {
                "type": "array",
                "description": "buckets with samples, oldest first",
                "items": {
                    "type": "object",
                    "required": ["time", "min", "max", "mean", "count"],
                    "properties": {
                        "time": {**NUMBER, "description": "start of the bucket"},
                        "min": NUMBER,
                        "max": NUMBER,
                        "mean": NUMBER,
                        "count": {"type": "integer", "minimum": 1},
                    },
                },
            },
        },
    },
    "Alert": {
        "type": "object",
        "required": [
            "id",
            "check",
            "server",
            "subject",
            "condition",
            "severity",
            "message",
            "state",
            "started_at",
            "updated_at",
            "resolved_at",
            "notified_at",
            "notified_severity",
            "details",
            "fingerprint",
            "pending_since",
            "fired_at",
            "clear_since",
            "inhibited_by",
            "silence_id",
            "acked_at",
            "acked_by",
            "ack_comment",
            "inhibited",
            "silenced",
            "acknowledged",
        ],
        "properties": {
            "id": {"type": "integer"},
            "check": STRING,
            "server": STRING,
            "subject": STRING,
            "condition": {**STRING, "description": "empty for the subject's own"},
            "severity": {"type": "string", "enum": SEVERITIES},
            "message": STRING,
            "state": {"type": "string", "enum": ALERT_STATES},
            "started_at": NUMBER,
            "updated_at": NUMBER,
            "resolved_at": nullable(NUMBER),
            "notified_at": nullable(NUMBER),
            # A strict validator checks the enum even when nullable allows null,
            # so the enum lists null itself.
            "notified_severity": nullable(
                {
                    "type": "string",
                    "enum": [*SEVERITIES, None],
                    "description": "null until the alert notifies",
                }
            ),
            "details": {"type": "object"},
            "fingerprint": STRING,
            "pending_since": nullable(NUMBER),
            "fired_at": nullable(NUMBER),
            "clear_since": nullable(NUMBER),
            "inhibited_by": nullable(STRING),
            "silence_id": nullable({"type": "integer"}),
            "acked_at": nullable(NUMBER),
            "acked_by": nullable(STRING),
            "ack_comment": nullable(STRING),
            "inhibited": {"type": "boolean"},
            "silenced": {"type": "boolean"},
            "acknowledged": {"type": "boolean"},
        },
    },
    "AlertWithEvents": {
        "allOf": [
            ref("Alert"),
            {
                "type": "object",
                "required": ["events"],
                "properties": {
                    "events": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ts", "event", "severity", "message"],
                            "properties": {
                                "ts": NUMBER,
                                "event": STRING,
                                "severity": {"type": "string", "enum": SEVERITIES},
                                "message": STRING,
                                "actor": nullable(STRING),
                            },
                        },
                    }
                },
            },
        ]
    },
    "Verdict": {
        "type": "object",
        "required": [
            "target",
            "verdict",
            "go",
            "time",
            "summary",
            "blockers",
            "facts",
            "notes",
            "settings",
        ],
        "properties": {
            "target": STRING,
            "verdict": {"type": "string", "enum": VERDICTS},
            "go": {"type": "boolean"},
            "time": NUMBER,
            "summary": STRING,
            "blockers": {
                "type": "array",
                "description": "the facts that do not hold",
                "items": {
                    "type": "object",
                    "required": ["condition", "problem", "clears", "time", "evidence"],
                    "properties": {
                        "condition": STRING,
                        "problem": STRING,
                        "clears": {**STRING, "description": "what clears it"},
                        "time": nullable(NUMBER),
                        "evidence": nullable(STRING),
                    },
                },
            },
            "facts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "condition",
                        "ok",
                        "observed",
                        "time",
                        "evidence",
                        "clears",
                    ],
                    "properties": {
                        "condition": STRING,
                        "ok": {"type": "boolean"},
                        "observed": STRING,
                        "time": nullable(NUMBER),
                        "evidence": nullable(STRING),
                        "clears": STRING,
                    },
                },
            },
            "notes": {"type": "array", "items": STRING},
            "settings": {"type": "object"},
        },
    },
    "Validation": {
        "type": "object",
        "description": "one validation check's latest result for one table",
        "required": ["status", "message", "checked_at", "state", "differences"],
        "properties": {
            "status": {"type": "string", "enum": STATUSES},
            "message": STRING,
            "checked_at": NUMBER,
            "state": nullable(
                {
                    **STRING,
                    "description": "match, in_progress, in_flux, diverged, behind, "
                    "missing or not_comparable; null when the run failed",
                }
            ),
            "last_clean_pass": nullable(
                {**NUMBER, "description": "epoch seconds of the last clean pass"}
            ),
            "stale": nullable({"type": "boolean"}),
            "differences": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "kind"],
                    "properties": {
                        "key": {"type": "object", "description": "key columns"},
                        "kind": {
                            "type": "string",
                            "enum": ["missing_on_target", "extra_on_target", "changed"],
                        },
                    },
                },
            },
            "diverged_ranges": {"type": "array", "items": STRING},
            "progress": nullable({"type": "object"}),
        },
    },
    "Silence": {
        "type": "object",
        "required": [
            "id",
            "check",
            "server",
            "subject",
            "starts_at",
            "ends_at",
            "created_by",
            "comment",
            "ended_by",
            "active",
        ],
        "properties": {
            "id": {"type": "integer"},
            "check": {**nullable(STRING), "description": "null matches any"},
            "server": {**nullable(STRING), "description": "null matches any"},
            "subject": {**nullable(STRING), "description": "null matches any"},
            "starts_at": NUMBER,
            "ends_at": NUMBER,
            "created_by": STRING,
            "comment": STRING,
            "ended_by": nullable(STRING),
            "active": {"type": "boolean"},
        },
    },
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/health": {
        "get": {
            "summary": "Whether encmond and every server are up",
            "security": [],
            "responses": {
                "200": json_body(ref("Health"), "encmond and every server are up"),
                "503": json_body(ref("Health"), "a server is down or unknown"),
            },
        }
    },
    "/api/metrics": {
        "get": {
            "summary": "The latest state by server, target and table",
            "responses": {
                "200": json_body(ref("Metrics"), "the latest results"),
                **UNAUTHORIZED,
            },
        }
    },
    "/api/history": {
        "get": {
            "summary": "One stored series, downsampled to buckets of min, max, mean",
            "parameters": [
                query(
                    "metric",
                    {**STRING, "minLength": 1},
                    "metric name, for example lag_seconds",
                    required=True,
                ),
                query("check", STRING, "check name, when several series match"),
                query("server", STRING, "server name, when several series match"),
                query("subject", STRING, "subject, when several series match"),
                query(
                    "since",
                    TIME,
                    f"start; {TIME_HELP}; default: retention ago. "
                    "It must be earlier than until.",
                ),
                query(
                    "until",
                    TIME,
                    f"end; {TIME_HELP}; default: now. It must be later than "
                    "since, so since=1h&until=1h is invalid.",
                ),
                query(
                    "points",
                    {"type": "integer", "minimum": 1, "maximum": 10000},
                    "the number of buckets; default 500",
                ),
            ],
            "responses": {
                "200": json_body(ref("History"), "the buckets that have samples"),
                "400": error(
                    "a parameter is invalid, until is not later than since, or "
                    "several series match"
                ),
                "404": error("no stored series matches"),
                **UNAUTHORIZED,
            },
        }
    },
    "/api/alerts": {
        "get": {
            "summary": "Alerts, most recently updated first",
            "parameters": [
                query(
                    "state",
                    {"type": "string", "enum": ALERT_STATES},
                    "only alerts in this state",
                ),
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 10000},
                    "at most this many alerts; default 200",
                ),
            ],
            "responses": {
                "200": json_body(
                    {
                        "type": "object",
                        "required": ["alerts"],
                        "properties": {
                            "alerts": {"type": "array", "items": ref("Alert")}
                        },
                    },
                    "the alerts",
                ),
                "400": error("a parameter is invalid"),
                **UNAUTHORIZED,
            },
        }
    },
    "/api/alerts/{alert_id}": {
        "get": {
            "summary": "One alert with its events, oldest first",
            "parameters": [path_id("alert_id")],
            "responses": {
                "200": json_body(ref("AlertWithEvents"), "the alert"),
                "404": error("no alert has this id"),
                **UNAUTHORIZED,
            },
        }
    },
    "/api/alerts/{alert_id}/ack": {
        "post": {
            "summary": "Acknowledge an open alert",
            "parameters": [path_id("alert_id")],
            "requestBody": json_request({"by": ACTOR, "comment": COMMENT}, ["by"]),
            "responses": {
                "200": json_body(ref("Alert"), "the acknowledged alert"),
                "400": error("the body is invalid"),
                "404": error("no alert has this id"),
                "409": error("the alert is resolved"),
                **NOT_JSON,
                **UNAUTHORIZED,
            },
        },
        "delete": {
            "summary": "Withdraw the acknowledgement of an open alert",
            "parameters": [
                path_id("alert_id"),
                query("by", ACTOR, "who withdraws it", required=True),
            ],
            "responses": {
                "200": json_body(ref("Alert"), "the alert"),
                "400": error("by is missing or invalid"),
                "404": error("no alert has this id"),
                "409": error("the alert is resolved"),
                **UNAUTHORIZED,
            },
        },
    },
    "/api/silences": {
        "get": {
            "summary": "Silences, newest first",
            "parameters": [
                query(
                    "state",
                    {"type": "string", "enum": ["active", "expired", "all"]},
                    "default: active",
                ),
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 10000},
                    "at most this many silences; default 200",
                ),
            ],
            "responses": {
                "200": json_body(
                    {
                        "type": "object",
                        "required": ["silences"],
                        "properties": {
                            "silences": {"type": "array", "items": ref("Silence")}
                        },
                    },
                    "the silences",
                ),
                "400": error("a parameter is invalid"),
                **UNAUTHORIZED,
            },
        },
        "post": {
            "summary": "Silence the alerts that match check, server and subject",
            "description": "At least one of check, server and subject must be "
            "given, and a check or server must be a configured name, because "
            "the silence would otherwise match nothing.",
            "requestBody": json_request(
                {
                    "check": MATCHER,
                    "server": MATCHER,
                    "subject": MATCHER,
                    "duration": {
                        "description": "up to 90 days: seconds, or 30m, 2h, 7d",
                        "anyOf": [
                            {"type": "string"},
                            {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                        ],
                    },
                    "by": ACTOR,
                    "comment": COMMENT,
                },
                ["duration", "by"],
                anyOf=[
                    {"required": [name], "properties": {name: NON_BLANK}}
                    for name in ("check", "server", "subject")
                ],
            ),
            "responses": {
                "201": json_body(ref("Silence"), "the new silence"),
                "400": error(
                    "the body is invalid, has no check, server or subject, or "
                    "names a check or server that is not configured"
                ),
                **NOT_JSON,
                **UNAUTHORIZED,
            },
        },
    },
    "/api/silences/{silence_id}": {
        "delete": {
            "summary": "End a silence now",
            "parameters": [
                path_id("silence_id"),
                query("by", ACTOR, "who ends it", required=True),
            ],
            "responses": {
                "200": json_body(ref("Silence"), "the ended silence"),
                "400": error("by is missing or invalid"),
                "404": error("no silence has this id"),
                "409": error("the silence has already ended"),
                **UNAUTHORIZED,
            },
        }
    },
    "/api/cutover": {
        "get": {
            "summary": "The cutover verdict of every target, judged now",
            "responses": {
                "200": json_body(
                    {
                        "type": "object",
                        "required": ["time", "verdict", "targets"],
                        "properties": {
                            "time": NUMBER,
                            "verdict": {
                                "type": "string",
                                "enum": VERDICTS,
                                "description": "GO only when every target is GO",
                            },
                            "targets": mapping(ref("Verdict")),
                        },
                    },
                    "the verdicts",
                ),
                "404": error("the cutover check is not loaded"),
                **UNAUTHORIZED,
            },
        }
    },
    "/api/validation": {
        "get": {
            "summary": "Per target and table, each validation check's state, "
            "progress, last clean pass and differing keys",
            "responses": {
                "200": json_body(
                    {
                        "type": "object",
                        "required": ["targets"],
                        "properties": {
                            "targets": mapping(mapping(mapping(ref("Validation"))))
                        },
                    },
                    "targets by name, then tables, then checks",
                ),
                **UNAUTHORIZED,
            },
        }
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {
                "200": json_body({"type": "object"}, "the OpenAPI document"),
                **UNAUTHORIZED,
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics, all named encmond_*, plus process_*",
            "responses": {
                "200": {
                    "description": "the Prometheus text format, or OpenMetrics "
                    "when the Accept header asks for it",
                    "content": {
                        "text/plain": {"schema": STRING},
                        "application/openmetrics-text": {"schema": STRING},
                    },
                },
                **UNAUTHORIZED,
            },
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "encmond",
        "version": __version__,
        "description": "State, history and alerts of a MariaDB encryption "
        "migration. With web.auth_token_file set, every operation but "
        "/api/health needs 'Authorization: Bearer <token>'.",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"bearerAuth": []}],
}


def openapi_path(rule: str) -> str:
    """Return the OpenAPI path of a Bottle route rule: <name:int> becomes {name}."""
    return re.sub(r"<(\w+)(:[^>]*)?>", r"{\1}", rule)


def query_names(rule: str, method: str) -> set[str] | None:
    """Return the query parameters the document declares, None if no operation."""
    operation = PATHS.get(openapi_path(rule), {}).get(method.lower())
    if operation is None:
        return None
    parameters = operation.get("parameters", [])
    return {p["name"] for p in parameters if p["in"] == "query"}


class RejectUnknownQuery:
    """Bottle plugin: return 400 for a query parameter the document does not list.

    A misspelt parameter (``sinse=1h``) would otherwise be ignored silently.
    """

    name = "encmond_openapi_query"
    api = 2

    def apply(self, callback, route: bottle.Route):
        known = query_names(route.rule, route.method)
        if known is None:
            return callback

        def wrapper(*args, **kwargs):
            unknown = sorted(set(bottle.request.query) - known)
            if unknown:
                allowed = ", ".join(sorted(known)) or "none"
                return error_response(
                    400,
                    f"unknown query parameter '{unknown[0]}' (allowed: {allowed})",
                    parameter=unknown[0],
                )
            return callback(*args, **kwargs)

        return wrapper


def install(app: bottle.Bottle, monitor: Monitor) -> None:
    """Add ``GET /api/openapi.json`` and the unknown-parameter check to ``app``."""

    @app.get("/api/openapi.json")
    def document():
        return json_response(DOCUMENT)

    app.install(RejectUnknownQuery())
