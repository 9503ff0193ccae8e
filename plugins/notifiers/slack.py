"""The ``slack`` notifier: a readable line per notification to an incoming webhook."""

from __future__ import annotations

from encmond import Notifier, hookimpl
from encmond.receivers import post_json, readable_time
from encmond.settings import Setting, optional_string, secret_url

MARKS = {
    "CRITICAL": ":red_circle:",
    "WARNING": ":warning:",
    "INFO": ":information_source:",
}
RESOLVED_MARK = ":white_check_mark:"


def escape(text: str) -> str:
    """Escape the three characters Slack's message format reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier(Notifier):
    """Posts ``{"text": ...}`` with the severity, the key and the message."""

    type = "slack"
    options = {
        "url": Setting(secret_url, help="the incoming webhook URL, which is secret"),
        "channel": Setting(
            optional_string, None, "channel to post to, if the webhook allows it"
        ),
        "username": Setting(optional_string, None, "name to post as"),
    }

    def send(self, notification):
        post_json(
            self.settings["url"].reveal(),
            self.payload(notification),
            self.settings["timeout"],
        )

    def payload(self, notification):
        payload = {"text": self.text(notification)}
        for key in ("channel", "username"):
            if self.settings[key]:
                payload[key] = self.settings[key]
        return payload

    def text(self, notification) -> str:
        alert = notification.alert
        if notification.event == "resolved":
            mark, state = RESOLVED_MARK, "RESOLVED"
        else:
            mark, state = MARKS[alert.severity.value], alert.severity.value
        subject = alert.subject
        if alert.condition:
            subject += f" ({alert.condition})"
        headline = f"{mark} *{state}* {alert.check} on {alert.server}: {subject}"
        lines = [escape(headline), escape(alert.message)]
        if notification.event in ("changed", "renotify"):
            since = readable_time(alert.started_at)
            lines.append(f"({notification.event}, since {since})")
        return "\n".join(lines)


@hookimpl
def register_notifiers():
    return [SlackNotifier]
