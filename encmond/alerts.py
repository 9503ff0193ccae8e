"""The alert manager: turns results into alert state changes and notifications.

An alert's key is (check, server, subject, condition). A CRITICAL or WARNING
result opens a ``pending`` alert, which fires once the condition has held for
the check's ``for``. An OK result starts a clear period: once the condition
has been clear for ``keep_firing_for``, a firing alert resolves and a pending
one is dropped (deleted: it never fired). A bad result within the clear period
ends it, so a condition that flaps faster than ``keep_firing_for`` makes one
alert. UNKNOWN changes nothing, because an unknown state proves neither.

A firing alert notifies once, again when its severity rises above the last
notified one, and again after ``renotify`` unless it is acknowledged. A drop
in severity updates the alert without a notification, so a value that swings
around the critical threshold does not notify at each crossing. Resolving
notifies the routes that were notified of the alert firing. An inhibited or
silenced alert changes state as usual but notifies nothing. Once it is no
longer muted, an inhibited alert that never notified goes back to pending, so
its condition is judged afresh after the recovery. A silenced one notifies
at once.

Alerts, their events and the queued notifications are written in one
transaction, so a restart neither loses an alert nor notifies twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from encmond.alert_policy import Policies, Policy
from encmond.inhibit import Inhibitions
from encmond.model import Alert, Notification, Result, Severity, Status
from encmond.silences import Silence, Silences
from encmond.store import Store

log = logging.getLogger(__name__)

SEVERITY_OF_STATUS = {
    Status.CRITICAL: Severity.CRITICAL,
    Status.WARNING: Severity.WARNING,
}

Change = tuple[Alert, str]


class Route:
    """The filter that selects the alerts one configured notifier receives."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.name = settings["name"]
        self.min_severity = Severity(settings["min_severity"])
        self.checks = set(settings.get("checks") or ())
        self.subjects = set(settings.get("subjects") or ())

    def accepts(self, alert: Alert, severity: Severity | None = None) -> bool:
        """Return whether ``alert`` goes to this notifier, at ``severity`` if given."""
        severity = severity or alert.severity
        if severity.rank < self.min_severity.rank:
            return False
        if self.checks and alert.check not in self.checks:
            return False
        return not self.subjects or alert.subject in self.subjects


class Batch:
    """The events of one call into the AlertManager, in order.

    Each entry is [alert, event, notify]: ``event`` "" is an update with no
    event of its own, and ``notify`` is None until ``settle`` decides it.
    """

    def __init__(self) -> None:
        self.entries: list[list[Any]] = []
        self.observed: dict[tuple, Alert] = {}
        self.actors: dict[int, str] = {}

    def add(
        self,
        alert: Alert,
        event: str,
        notify: bool | None = False,
        actor: str | None = None,
    ) -> None:
        self.entries.append([alert, event, notify])
        if actor:
            self.actors[len(self.entries) - 1] = actor

    def changes(self) -> list[tuple[int, Alert, str, bool]]:
        """Return (index, alert, event, notify), without empty events of alerts
        that have other events."""
        named = {id(alert) for alert, event, _ in self.entries if event}
        kept: list[tuple[int, Alert, str, bool]] = []
        updated: set[int] = set()
        for index, (alert, event, notify) in enumerate(self.entries):
            if not event and (id(alert) in named or id(alert) in updated):
                continue
            updated.add(id(alert))
            kept.append((index, alert, event, bool(notify)))
        return kept


class AlertManager:
    """Keeps open alerts in memory and in SQLite, and queues notifications.

    ``policies`` gives each check's (and table's) ``for``, ``keep_firing_for``
    and ``max_severity``; ``dependent_checks`` names the checks whose alerts a
    stopped replication or a down server inhibits.
    """

    def __init__(
        self,
        store: Store,
        routes: list[Route],
        renotify: float,
        listeners: list[Callable[[Alert, str], None]] | None = None,
        policies: Policies | None = None,
        dependent_checks: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.routes = routes
        self.renotify = renotify
        self.listeners = listeners or []
        self.policies = policies or Policies({})
        self.inhibitions = Inhibitions(dependent_checks)
        self.silence_store = Silences(store)
        self.silences: list[Silence] = self.silence_store.list(time.time(), "active")
        self.lock = threading.RLock()
        self.open: dict[tuple[str, str, str, str], Alert] = {
            alert.key: alert for alert in store.open_alerts()
        }

    def process(self, results: list[Result], now: float | None = None) -> list[Change]:
        """Apply the results of one run; returns the (alert, event) changes."""
        now = now or time.time()
        batch = Batch()
        with self.lock:
            for result in results:
                policy = self.policies.lookup(result.check, result.subject)
                statuses = result.condition_statuses()
                if result.conditions:
                    # A subject that reports conditions clears its alert
                    # without one, left from before it did (an upgrade).
                    statuses.setdefault("", Status.OK)
                for condition, status in statuses.items():
                    self.observe(batch, result, condition, status, policy, now)
            return self.finish(batch, now)

    def observe(self, batch, result, condition, status, policy, now) -> None:
        key = (result.check, result.server, result.subject, condition)
        alert = self.open.get(key)
        severity = SEVERITY_OF_STATUS.get(status)
        if severity is not None:
            self.hold(batch, key, policy.cap(severity), result, policy, now)
        elif status is Status.OK and alert is not None:
            self.clear(batch, alert, result.message, policy, now)

    def hold(
        self,
        batch: Batch,
        key: tuple,
        severity: Severity,
        result: Result,
        policy: Policy,
        now: float,
    ) -> None:
        """Record that the condition of ``key`` is present at ``severity``."""
        alert = self.open.get(key)
        new = alert is None
        if alert is None:
            alert = Alert(
                *key[:3],
                condition=key[3],
                severity=severity,
                message=result.message,
                state="pending",
                started_at=now,
                updated_at=now,
                pending_since=now,
                details=result.details,
            )
            self.open[key] = alert
        elif (
            alert.message != result.message
            or alert.severity is not severity
            or alert.clear_since is not None
        ):
            alert.severity = severity
            alert.message = result.message
            alert.details = result.details
            alert.clear_since = None
            alert.updated_at = now
            batch.add(alert, "")
        batch.observed[key] = alert
        if alert.state == "pending" and now - alert.pending_since >= policy.pending_for:
            alert.state = "firing"
            alert.fired_at = now
            alert.updated_at = now
            batch.add(alert, "firing", notify=None)
        elif new:
            batch.add(alert, "pending")

    def clear(
        self, batch: Batch, alert: Alert, message: str, policy: Policy, now: float
    ) -> None:
        """Record that the condition of ``alert`` is clear; resolve or drop it
        once it has been clear for ``keep_firing_for``."""
        if alert.clear_since is None:
            alert.clear_since = now
            alert.updated_at = now
            batch.add(alert, "")
        if now - alert.clear_since < policy.keep_firing_for:
            return
        self.close(batch, alert, message, now)

    def close(self, batch: Batch, alert: Alert, message: str, now: float) -> None:
        """Resolve a firing alert, or drop a pending one that never fired."""
        del self.open[alert.key]
        alert.updated_at = now
        if alert.state == "pending":
            batch.add(alert, "dropped")
            return
        alert.state = "resolved"
        alert.resolved_at = now
        alert.message = message or alert.message
        batch.add(alert, "resolved", notify=alert.notified_at is not None)

    def retire(
        self, monitored: Callable[[Alert], bool], message: str, now: float | None = None
    ) -> list[Change]:
        """Resolve the open alerts that ``monitored`` returns False for.

        A check, target or table removed from the configuration reports no
        more results, so nothing else would ever resolve its alerts.
        """
        now = now or time.time()
        batch = Batch()
        with self.lock:
            for alert in list(self.open.values()):
                if not monitored(alert):
                    self.close(batch, alert, message, now)
            return self.finish(batch, now)

    # Muting: inhibition, silences and acknowledgements

    def refresh_inhibitions(self, batch: Batch, now: float) -> None:
        inhibitors = self.inhibitions.compute(self.open.values())
        for key, inhibitor in inhibitors.items():
            alert = self.open[key]
            if inhibitor == alert.inhibited_by:
                continue
            previous, alert.inhibited_by = alert.inhibited_by, inhibitor
            alert.updated_at = now
            if inhibitor is None:
                if alert.notified_at is None:
                    alert.state = "pending"
                    alert.pending_since = now
                    alert.fired_at = None
                batch.add(alert, "uninhibited")
            else:
                batch.add(alert, "inhibited" if previous is None else "")

    def refresh_silences(self, batch: Batch, now: float) -> None:
        self.silences = [s for s in self.silences if s.active(now)]
        for alert in self.open.values():
            silence = next((s for s in self.silences if s.matches(alert)), None)
            silence_id = silence.id if silence else None
            if silence_id == alert.silence_id:
                continue
            previous, alert.silence_id = alert.silence_id, silence_id
            alert.updated_at = now
            if silence is None:
                batch.add(alert, "unsilenced")
            else:
                event = "silenced" if previous is None else ""
                batch.add(alert, event, actor=silence.created_by)

    def muted(self, alert: Alert) -> bool:
        return alert.inhibited_by is not None or alert.silence_id is not None

    def add_silence(self, silence: Silence, now: float | None = None) -> Silence:
        """Store a silence and apply it to the open alerts."""
        with self.lock:
            self.silence_store.add(silence)
            self.silences.append(silence)
            self.finish(Batch(), now or time.time())
        log.info(
            "%s created by %s until %s",
            silence,
            silence.created_by,
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(silence.ends_at)),
        )
        return silence

    def end_silence(self, silence: Silence, by: str, now: float | None = None) -> None:
        """End a silence now; alerts it muted notify as they would have."""
        now = now or time.time()
        with self.lock:
            self.silence_store.end(silence, by, now)
            self.silences = [s for s in self.silences if s.id != silence.id]
            self.finish(Batch(), now)
        log.info("%s ended by %s", silence, by)

    def acknowledge(
        self, alert: Alert, by: str, comment: str = "", now: float | None = None
    ) -> Alert:
        """Acknowledge an open alert: it is not renotified until it resolves.

        A higher severity and the resolution still notify.
        """
        return self.set_acknowledgement(alert, by, comment, True, now)

    def unacknowledge(self, alert: Alert, by: str, now: float | None = None) -> Alert:
        return self.set_acknowledgement(alert, by, None, False, now)

    def set_acknowledgement(self, alert, by, comment, acknowledged, now) -> Alert:
        now = now or time.time()
        with self.lock:
            alert = self.open.get(alert.key, alert)
            alert.acked_at = now if acknowledged else None
            alert.acked_by = by if acknowledged else None
            alert.ack_comment = comment if acknowledged else None
            alert.updated_at = now
            batch = Batch()
            event = "acknowledged" if acknowledged else "unacknowledged"
            batch.add(alert, event, actor=by)
            self.finish(batch, now)
        log.info("alert %s %s by %s", alert, event, by)
        return alert

    # Notifications

    def finish(self, batch: Batch, now: float) -> list[Change]:
        self.settle(batch, now)
        return self.commit(batch, now)

    def settle(self, batch: Batch, now: float) -> None:
        """Apply inhibitions and silences, then decide the notifications."""
        self.refresh_inhibitions(batch, now)
        self.refresh_silences(batch, now)
        notified: set[int] = set()
        for entry in batch.entries:
            alert, event, notify = entry
            if event == "firing" and notify is None:
                entry[2] = alert.state == "firing" and not self.muted(alert)
                if entry[2]:
                    notified.add(id(alert))
        candidates = list(batch.observed.values()) + [
            alert
            for alert, event, _ in batch.entries
            if event in ("uninhibited", "unsilenced")
        ]
        for alert in {id(alert): alert for alert in candidates}.values():
            if id(alert) in notified or self.open.get(alert.key) is not alert:
                continue
            event = self.due_notification(alert, now)
            if event:
                notified.add(id(alert))
                batch.add(alert, event, notify=True)

    def due_notification(self, alert: Alert, now: float) -> str | None:
        """Return the notification a firing alert is due, if any."""
        if alert.state != "firing" or self.muted(alert):
            return None
        if alert.notified_at is None:
            return "firing"
        notified = alert.notified_severity or alert.severity
        if alert.severity.rank > notified.rank:
            return "changed"
        if alert.acked_at is None and now - alert.notified_at >= self.renotify:
            return "renotify"
        return None

    def commit(self, batch: Batch, now: float) -> list[Change]:
        changes = batch.changes()
        if not changes:
            return []
        with self.store.transaction() as db:
            for index, alert, event, notify in changes:
                if event == "dropped":
                    self.store.delete_alert(db, alert)
                    continue
                previous = alert.notified_severity
                if notify and event != "resolved":
                    alert.notified_at = now
                    alert.notified_severity = alert.severity
                self.store.save_alert(db, alert, event, batch.actors.get(index))
                if notify:
                    self.enqueue(db, Notification(event, alert, now, previous))
        for _, alert, event, notify in changes:
            if event:
                log.debug("alert %s: %s%s", event, alert, "" if notify else " (quiet)")
            for listener in self.listeners:
                listener(alert, event)
        return [(alert, event) for _, alert, event, _ in changes]

    def enqueue(self, db, notification: Notification) -> None:
        alert = notification.alert
        severity = alert.severity
        if notification.event == "resolved" and alert.notified_severity:
            severity = max(severity, alert.notified_severity, key=lambda s: s.rank)
        payload = notification_payload(notification)
        for route in self.routes:
            if route.accepts(alert, severity):
                self.store.enqueue(
                    db,
                    route.name,
                    notification.event,
                    alert,
                    payload,
                    notification.time,
                )

    def firing_for(self, route_name: str) -> list[Alert]:
        """Return the firing, notified and unmuted alerts that a route accepts."""
        route = next((r for r in self.routes if r.name == route_name), None)
        with self.lock:
            return [
                alert
                for alert in self.open.values()
                if route is not None
                and alert.state == "firing"
                and alert.notified_at is not None
                and not self.muted(alert)
                and route.accepts(alert)
            ]


def notification_payload(notification: Notification) -> dict[str, Any]:
    previous = notification.previous_severity
    return {
        "event": notification.event,
        "time": notification.time,
        "alert": notification.alert.to_dict(),
        "previous_severity": previous.value if previous else None,
    }


def notification_from_payload(payload: dict[str, Any]) -> Notification:
    previous = payload.get("previous_severity")
    return Notification(
        payload["event"],
        Alert.from_dict(payload["alert"]),
        payload["time"],
        Severity(previous) if previous else None,
    )
