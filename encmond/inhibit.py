"""Inhibition: which open alerts hold back the notifications of others.

While a server is down, or replication into a target is stopped, the lag and
data-comparison alerts of that target only repeat the one real problem. Those
alerts (of checks marked ``replication_dependent``) stay stored and visible,
flagged with the inhibiting alert's name, and notify nothing until the
inhibiting alert is gone. While a server is down, the "run" alerts of every
check on it are inhibited too, because a check that cannot reach the server
fails or times out.
"""

from __future__ import annotations

from collections.abc import Iterable

from encmond.model import Alert
from encmond.runner import RUN_SUBJECT

SOURCE_SERVER = "source"
ALL_TARGETS = "*"


def inhibited_scope(alert: Alert) -> str | None:
    """Return the server whose dependent alerts ``alert`` inhibits, if any.

    A down source inhibits the dependent alerts of every target
    (``ALL_TARGETS``); a down target, or its stopped replication, its own.
    """
    if is_server_down(alert):
        return ALL_TARGETS if alert.server == SOURCE_SERVER else alert.server
    if alert.check == "replica_lag" and alert.condition == "stopped":
        return alert.server
    return None


def is_server_down(alert: Alert) -> bool:
    """Return whether ``alert`` is the connection alert of its own server."""
    return alert.check == "connection" and alert.subject == alert.server


class Inhibitions:
    """The inhibiting alert of each server, from the open alerts."""

    def __init__(self, dependent_checks: Iterable[str]) -> None:
        self.dependent_checks = set(dependent_checks)

    def compute(self, alerts: Iterable[Alert]) -> dict[tuple, str | None]:
        """Return the inhibiting alert's name (or None) for each alert's key."""
        alerts = list(alerts)
        sources: dict[str, str] = {}
        down: dict[str, str] = {}
        for alert in sorted(alerts, key=lambda a: a.started_at):
            scope = inhibited_scope(alert)
            if scope is None:
                continue
            sources.setdefault(scope, alert.name)
            if is_server_down(alert):
                down.setdefault(scope, alert.name)
        return {alert.key: self.inhibitor(alert, sources, down) for alert in alerts}

    def inhibitor(
        self, alert: Alert, sources: dict[str, str], down: dict[str, str]
    ) -> str | None:
        """Return the name of the alert that inhibits ``alert``, or None.

        ``sources`` maps a scope to any inhibiting alert and ``down`` to a
        connection alert only, because a stopped replication inhibits the
        dependent checks but not the "run" alerts of the others.
        """
        if inhibited_scope(alert) is not None:
            return None
        if alert.check in self.dependent_checks:
            return sources.get(alert.server) or sources.get(ALL_TARGETS)
        if alert.subject == RUN_SUBJECT:
            return down.get(alert.server) or down.get(ALL_TARGETS)
        return None
