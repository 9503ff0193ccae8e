"""The ``webhook`` notifier: a JSON POST shaped like Alertmanager's webhook.

The body carries ``status``, ``labels``, ``annotations``, ``startsAt``,
``endsAt`` and a stable ``fingerprint``, plus ``event`` (firing, changed,
renotify or resolved), so a receiver written for Alertmanager reads it too.
"""

from __future__ import annotations

from encmond import Notifier, hookimpl
from encmond.receivers import (
    NO_END,
    alert_annotations,
    alert_labels,
    post_json,
    rfc3339,
)
from encmond.settings import Setting, optional_string, secret_mapping, secret_url


class WebhookNotifier(Notifier):
    """POSTs one JSON document per notification to ``url``."""

    type = "webhook"
    options = {
        "url": Setting(secret_url, help="receiver URL; its path and query are secret"),
        "headers": Setting(
            secret_mapping, {}, "extra HTTP headers, such as Authorization"
        ),
        "external_url": Setting(
            optional_string, None, "dashboard URL given to the receiver as a link"
        ),
    }

    def send(self, notification):
        headers = {
            name: value.reveal() for name, value in self.settings["headers"].items()
        }
        post_json(
            self.settings["url"].reveal(),
            self.payload(notification),
            self.settings["timeout"],
            headers,
        )

    def payload(self, notification):
        alert = notification.alert
        status = "resolved" if notification.event == "resolved" else "firing"
        labels = alert_labels(alert)
        annotations = alert_annotations(alert)
        external_url = self.settings["external_url"] or ""
        return {
            "version": "4",
            "groupKey": f"encmond:{alert.fingerprint}",
            "truncatedAlerts": 0,
            "status": status,
            "receiver": self.name,
            "groupLabels": {"alertname": alert.check},
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": external_url,
            "event": notification.event,
            "alerts": [
                {
                    "status": status,
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": rfc3339(alert.started_at),
                    "endsAt": rfc3339(alert.resolved_at)
                    if alert.resolved_at
                    else NO_END,
                    "generatorURL": external_url,
                    "fingerprint": alert.fingerprint,
                }
            ],
        }


@hookimpl
def register_notifiers():
    return [WebhookNotifier]
