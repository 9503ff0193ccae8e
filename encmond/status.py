"""The one-line summary that systemd shows as the unit's status.

``StatusLine`` follows the monitor's event hub, the same feed the WebSocket
clients get (so ``len(hub)`` counts it as a subscriber), and sends ``STATUS=``
only when the summary text changes, so a steady state sends nothing however
often the checks run.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import gevent

from encmond.model import Severity, Status
from encmond.monitor import Monitor
from encmond.sdnotify import SystemdNotifier

log = logging.getLogger(__name__)


class StatusLine:
    """The servers' reachability and the firing alerts, as one line."""

    def __init__(self, monitor: Monitor, notifier: SystemdNotifier) -> None:
        self.monitor = monitor
        self.notifier = notifier
        self.servers: dict[str, str] = {}
        self.alerts: dict[tuple[str, str, str], str] = {}
        self.note = ""
        self.sent: str | None = None
        self.greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self.greenlet = gevent.spawn(self.follow)

    def stop(self) -> None:
        if self.greenlet is not None:
            self.greenlet.kill()

    def load(self) -> None:
        """Take the current state from the store."""
        self.servers = {
            result.server: server_state(result.status.value)
            for result in self.monitor.store.latest()
            if result.check == "connection"
        }
        self.alerts = {
            alert.key: alert.severity.value
            for alert in self.monitor.store.open_alerts()
        }

    def follow(self) -> None:
        """Apply hub events and send the summary when it changes."""
        while True:
            queue = self.monitor.hub.subscribe()
            self.load()
            self.send()
            try:
                # The hub puts None after dropping a subscriber that fell behind.
                for event in iter(queue.get, None):
                    self.apply(event)
                    self.send()
            finally:
                self.monitor.hub.unsubscribe(queue)

    def apply(self, event: dict[str, Any]) -> None:
        if event.get("type") == "results":
            for result in event["results"]:
                if result["check"] == "connection":
                    self.servers[result["server"]] = server_state(result["status"])
        elif event.get("type") == "alert":
            alert = event["alert"]
            key = (alert["check"], alert["server"], alert["subject"])
            if alert["state"] == "resolved":
                self.alerts.pop(key, None)
            else:
                self.alerts[key] = alert["severity"]

    def ready(self) -> None:
        """Send READY=1 with the current summary."""
        self.sent = self.text()
        self.notifier.ready(self.sent)

    def send(self) -> None:
        text = self.text()
        if text != self.sent:
            self.notifier.status(text)
            self.sent = text
            log.debug("status: %s", text)

    def text(self) -> str:
        """Return the summary, for example "all 2 servers up; no alerts firing"."""
        parts = [self.servers_text(), self.alerts_text()]
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)

    def servers_text(self) -> str:
        names = list(self.monitor.config.servers)
        states = {name: self.servers.get(name, "not checked yet") for name in names}
        if all(state == "up" for state in states.values()):
            return f"all {len(names)} servers up"
        return ", ".join(
            f"{name} {state}" for name, state in states.items() if state != "up"
        )

    def alerts_text(self) -> str:
        if not self.alerts:
            return "no alerts firing"
        counts = Counter(self.alerts.values())
        by_severity = ", ".join(
            f"{counts[severity.value]} {severity.value}"
            for severity in sorted(Severity, key=lambda s: -s.rank)
            if counts[severity.value]
        )
        plural = "s" if len(self.alerts) > 1 else ""
        return f"{len(self.alerts)} alert{plural} firing ({by_severity})"


def server_state(status: str) -> str:
    """Return "up", "down" or "unknown" for a connection check's status."""
    if status == Status.OK.value:
        return "up"
    if status == Status.CRITICAL.value:
        return "down"
    return "unknown"
