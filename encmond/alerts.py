"""The alert manager: turns results into alert state changes and notifications.

An alert's key is (check, server, subject). CRITICAL and WARNING results fire
or update an alert, OK resolves it, and UNKNOWN leaves it as it is, because an
unknown state proves neither. A firing alert notifies again only when its
severity changes or once ``renotify`` has passed; resolving notifies once.
Alerts and queued notifications are written in one transaction, so a restart
neither loses an alert nor notifies twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from encmond.model import Alert, Notification, Result, Severity, Status
from encmond.store import Store

log = logging.getLogger(__name__)

SEVERITY_OF_STATUS = {
    Status.CRITICAL: Severity.CRITICAL,
    Status.WARNING: Severity.WARNING,
}

Change = tuple[Alert, str]


class Route:
    """Which alerts one configured notifier receives."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.name = settings["name"]
        self.min_severity = Severity(settings["min_severity"])
        self.checks = set(settings.get("checks") or ())
        self.subjects = set(settings.get("subjects") or ())

    def accepts(self, alert: Alert) -> bool:
        if alert.severity.rank < self.min_severity.rank:
            return False
        if self.checks and alert.check not in self.checks:
            return False
        return not self.subjects or alert.subject in self.subjects


class AlertManager:
    """Keeps open alerts in memory and in SQLite, and queues notifications."""

    def __init__(
        self,
        store: Store,
        routes: list[Route],
        renotify: float,
        listeners: list[Callable[[Alert, str], None]] | None = None,
    ) -> None:
        self.store = store
        self.routes = routes
        self.renotify = renotify
        self.listeners = listeners or []
        self.open: dict[tuple[str, str, str], Alert] = {
            alert.key: alert for alert in store.open_alerts()
        }

    def process(self, results: list[Result], now: float | None = None) -> list[Change]:
        """Apply the results of one run; returns the (alert, event) changes."""
        now = now or time.time()
        changes: list[Change] = []
        for result in results:
            key = (result.check, result.server, result.subject)
            severity = SEVERITY_OF_STATUS.get(result.status)
            if severity is not None:
                change = self.fire(key, severity, result.message, result.details, now)
            elif result.status is Status.OK:
                change = self.resolve(key, result.message, now)
            else:
                change = None
            if change:
                changes.append(change)
        self.commit(changes, now)
        return changes

    def fire(
        self, key, severity: Severity, message: str, details: dict, now: float
    ) -> Change | None:
        alert = self.open.get(key)
        if alert is None:
            alert = Alert(
                *key,
                severity=severity,
                message=message,
                started_at=now,
                updated_at=now,
                details=details,
            )
            self.open[key] = alert
            return alert, "firing"
        event = ""
        if alert.severity is not severity:
            event = "changed"
        elif alert.notified_at is None or now - alert.notified_at >= self.renotify:
            event = "renotify"
        if not event and alert.message == message:
            return None
        alert.severity = severity
        alert.message = message
        alert.details = details
        alert.updated_at = now
        return alert, event

    def resolve(self, key, message: str, now: float) -> Change | None:
        alert = self.open.pop(key, None)
        if alert is None:
            return None
        alert.state = "resolved"
        alert.resolved_at = now
        alert.updated_at = now
        alert.message = message or alert.message
        return alert, "resolved"

    def commit(self, changes: list[Change], now: float) -> None:
        if not changes:
            return
        with self.store.transaction() as db:
            for alert, event in changes:
                notify = bool(event)
                if notify:
                    alert.notified_at = now
                    alert.notified_severity = alert.severity
                self.store.save_alert(db, alert, event)
                if not notify:
                    continue
                notification = Notification(event, alert, now)
                for route in self.routes:
                    if route.accepts(alert):
                        self.store.enqueue(
                            db,
                            route.name,
                            event,
                            alert,
                            notification_payload(notification),
                            now,
                        )
        for alert, event in changes:
            if event:
                log.debug("alert %s: %s", event, alert)
            for listener in self.listeners:
                listener(alert, event)


def notification_payload(notification: Notification) -> dict[str, Any]:
    return {
        "event": notification.event,
        "time": notification.time,
        "alert": notification.alert.to_dict(),
    }


def notification_from_payload(payload: dict[str, Any]) -> Notification:
    data = dict(payload["alert"])
    data.pop("fingerprint", None)
    data["severity"] = Severity(data["severity"])
    if data.get("notified_severity"):
        data["notified_severity"] = Severity(data["notified_severity"])
    return Notification(payload["event"], Alert(**data), payload["time"])
