"""Helpers for notifier plugins: JSON over HTTP and Alertmanager-shaped alerts.

The label and annotation names follow Prometheus Alertmanager, so receivers
built for it (its webhook format, its API v2) read encmond's alerts as they
are.
"""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from typing import Any

from encmond import __version__
from encmond.model import Alert

# Alertmanager's webhook payload writes this for "no end time".
NO_END = "0001-01-01T00:00:00Z"
ERROR_BODY_LIMIT = 300  # bytes of a receiver's error body kept in messages


class DeliveryError(Exception):
    """A receiver responded with an HTTP error status."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        self.status = status
        detail = f": {body}" if body else ""
        super().__init__(f"HTTP {status} {reason}{detail}")


def post_json(
    url: str, payload: Any, timeout: float, headers: dict[str, str] | None = None
) -> bytes:
    """POST ``payload`` as JSON and return the response body.

    Raises DeliveryError for an HTTP error status, and OSError (URLError,
    TimeoutError) when the receiver cannot be reached or does not respond
    within ``timeout`` seconds.
    """
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"encmond/{__version__}",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        body = error.read(ERROR_BODY_LIMIT).decode(errors="replace").strip()
        raise DeliveryError(error.code, error.reason, body) from None


def rfc3339(seconds: float) -> str:
    """Format epoch seconds as RFC 3339 in UTC, with milliseconds."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def readable_time(seconds: float) -> str:
    """Format epoch seconds as ``2025-01-31 14:05:09 UTC``."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def alert_labels(alert: Alert) -> dict[str, str]:
    """Return the labels that identify an alert; ``severity`` is lower case."""
    labels = {
        "alertname": alert.check,
        "check": alert.check,
        "server": alert.server,
        "subject": alert.subject,
        "severity": alert.severity.value.lower(),
    }
    if alert.condition:
        labels["condition"] = alert.condition
    return labels


def alert_annotations(alert: Alert) -> dict[str, str]:
    subject = alert.subject
    if alert.condition:
        subject += f" ({alert.condition})"
    annotations = {
        "summary": f"{alert.check} on {alert.server}: {subject}",
        "description": alert.message,
    }
    if alert.acked_by:
        annotations["acknowledged_by"] = alert.acked_by
    return annotations
