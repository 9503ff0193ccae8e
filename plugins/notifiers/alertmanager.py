"""The ``alertmanager`` notifier: alerts posted to Prometheus Alertmanager's API v2.

Alertmanager resolves an alert by itself once its ``endsAt`` passes. So
while an alert fires, this notifier posts it again every ``resend_interval``
with ``endsAt`` a few intervals ahead. A resolved alert is posted with
``endsAt`` set to the time it resolved.
"""

from __future__ import annotations

import time

from encmond import Notifier, hookimpl
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

    def send(self, notification):
        alert = notification.alert
        now = notification.time
        if notification.event == "resolved":
            alerts = [self.posted(alert, alert.resolved_at or now)]
        else:
            alerts = [self.posted(alert, self.ends_at(now))]
            previous = notification.previous_severity
            if previous is not None and previous is not alert.severity:
                # The severity label changed, so the old label set is another
                # alert to Alertmanager: end it now.
                old = self.posted(alert, now)
                old["labels"]["severity"] = previous.value.lower()
                alerts.append(old)
        self.post(alerts)

    def resend(self, alerts):
        ends_at = self.ends_at(time.time())
        self.post([self.posted(alert, ends_at) for alert in alerts])

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
