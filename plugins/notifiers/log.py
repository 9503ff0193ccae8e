"""The ``log`` notifier: writes each notification to encmond's log."""

from __future__ import annotations

import logging

from encmond import Notifier, hookimpl

log = logging.getLogger("encmond.alerts")

LEVELS = {"CRITICAL": logging.ERROR, "WARNING": logging.WARNING, "INFO": logging.INFO}


class LogNotifier(Notifier):
    """Logs firing alerts at WARNING or ERROR and resolved ones at INFO."""

    type = "log"

    def send(self, notification):
        level = LEVELS[notification.alert.severity.value]
        if notification.event == "resolved":
            level = logging.INFO
        log.log(level, "%s", notification.summary())


@hookimpl
def register_notifiers():
    return [LogNotifier]
