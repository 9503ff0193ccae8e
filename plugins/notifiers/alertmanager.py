"""The ``alertmanager`` notifier: alerts posted to Prometheus Alertmanager's API v2.

Alertmanager resolves an alert by itself once its ``endsAt`` passes. So
while an alert fires, this notifier posts it again every ``resend_interval``
with ``endsAt`` a few intervals ahead. A resolved alert is posted with
``endsAt`` set to the time it resolved.
"""

from __future__ import annotations

import time

from encmond import Notifier, hookimpl
from encmond.model import Severity
from encmond.receivers import alert_annotations, alert_labels, post_json, rfc3339
from encmond.settings import Setting, duration, optional_string, secret_url

# An alert stays firing in Alertmanager this many resend intervals after a
# post, so one or two failed resends do not resolve it there.
ENDS_AFTER_INTERVALS = 4


class AlertmanagerNotifier(Notifier):
    """POSTs to ``<url>/api/v2/alerts``."""

    type = "alertmanager"
    options = {
        "url": Setting(
            secret_url, help="Alertmanager base URL, such as http://127.0.0.1:9093"
        ),
        "resend_interval": Setting(
            duration, 60.0, "time between two posts of a firing alert; 0 for off"
        ),
        "external_url": Setting(
            optional_string, None, "dashboard URL sent as each alert's generatorURL"
        ),
    }

    def __init__(self, settings):
        super().__init__(settings)
        self.resend_interval = settings["resend_interval"]
        # The severity of the last successful post of each open alert, by
        # fingerprint. A drop in severity is never notified, so only a resend
        # posts it, and this record is the only source of the label set that
        # Alertmanager has. It is updated after the post, so a failed post is
        # retried with the old label set still to end.
        self.posted_severity: dict[str, Severity] = {}

    def send(self, notification):
        alert = notification.alert
        now = notification.time
        previous = self.previous_severity(alert, notification.previous_severity)
        if notification.event == "resolved":
            ended_at = alert.resolved_at or now
            self.post(self.with_old_ended(alert, previous, ended_at, ended_at))
            self.posted_severity.pop(alert.fingerprint, None)
        else:
            self.post(self.with_old_ended(alert, previous, self.ends_at(now), now))
            self.posted_severity[alert.fingerprint] = alert.severity

    def resend(self, alerts):
        now = time.time()
        ends_at = self.ends_at(now)
        posted = []
        for alert in alerts:
            previous = self.previous_severity(alert, alert.notified_severity)
            posted += self.with_old_ended(alert, previous, ends_at, now)
        self.post(posted)
        for alert in alerts:
            self.posted_severity[alert.fingerprint] = alert.severity

    def previous_severity(self, alert, notified: Severity | None) -> Severity | None:
        """Return the severity of the last successful post of ``alert``.

        ``notified`` is the severity of the alert's last notification, used
        when there is no record of a post, as after a restart.
        """
        # NOTE: after a restart, a label set that only resends posted (a
        # severity that dropped below the notified one) is not ended when the
        # severity returns to the notified one. Alertmanager then resolves it
        # at its own endsAt, ENDS_AFTER_INTERVALS resend intervals later.
        return self.posted_severity.get(alert.fingerprint, notified)

    def with_old_ended(
        self,
        alert,
        previous: Severity | None,
        ends_at: float | None,
        now: float,
    ) -> list[dict]:
        """Return ``alert`` to post, and its label set at the ``previous``
        severity with ``endsAt`` = ``now`` when that severity differs."""
        alerts = [self.posted(alert, ends_at)]
        if previous is not None and previous is not alert.severity:
            old = self.posted(alert, now)
            old["labels"]["severity"] = previous.value.lower()
            alerts.append(old)
        return alerts

    def ends_at(self, now: float) -> float | None:
        if self.resend_interval <= 0:
            return None
        return now + ENDS_AFTER_INTERVALS * self.resend_interval

    def posted(self, alert, ends_at: float | None) -> dict:
        posted = {
            "labels": alert_labels(alert),
            "annotations": alert_annotations(alert),
            "startsAt": rfc3339(alert.started_at),
        }
        if ends_at is not None:
            posted["endsAt"] = rfc3339(ends_at)
        if self.settings["external_url"]:
            posted["generatorURL"] = self.settings["external_url"]
        return posted

    def post(self, alerts: list[dict]) -> None:
        url = self.settings["url"].reveal().rstrip("/") + "/api/v2/alerts"
        post_json(url, alerts, self.settings["timeout"])


@hookimpl
def register_notifiers():
    return [AlertmanagerNotifier]
