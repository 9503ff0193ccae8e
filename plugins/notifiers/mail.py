"""The ``email`` notifier: a plain-text mail per notification, over SMTP.

STARTTLS is the default. The server's certificate is verified against
``ca_file`` when set, else against the system's CAs. With ``security:
starttls``, a server that does not offer STARTTLS fails the delivery, so the
login never goes out in clear text.
"""

from __future__ import annotations

import email.message
import email.utils
import json
import smtplib
import ssl

from encmond import Notifier, hookimpl
from encmond.receivers import readable_time
from encmond.settings import (
    Setting,
    choice,
    integer,
    list_of,
    optional_secret,
    optional_string,
    secret_file,
    string,
)


def recipients(value):
    addresses = list_of(string)(value)
    if not addresses:
        raise ValueError("expected at least one address")
    return addresses


class EmailNotifier(Notifier):
    """Sends one mail per notification to every address in ``to``."""

    type = "email"
    options = {
        "host": Setting(string, help="SMTP server host name"),
        "port": Setting(integer(1, 65535), 587, "SMTP server port"),
        "security": Setting(
            choice("starttls", "tls", "none"),
            "starttls",
            "starttls (port 587), tls (implicit TLS, port 465) or none",
        ),
        "username": Setting(optional_string, None, "login name; no login if unset"),
        "password": Setting(optional_secret, None, "login password"),
        "password_file": Setting(
            secret_file,
            None,
            "absolute path of a file whose first line is the password",
        ),
        "ca_file": Setting(
            optional_string, None, "CA certificates (PEM) to verify the server with"
        ),
        "from": Setting(string, help="sender address"),
        "to": Setting(recipients, help="list of recipient addresses"),
        "subject_prefix": Setting(string, "[encmond]", "text before each subject"),
    }

    @classmethod
    def check_settings(cls, settings):
        if settings["password"] is not None and settings["password_file"] is not None:
            raise ValueError("set either password or password_file, not both")
        if settings["security"] == "none" and settings["username"]:
            raise ValueError(
                "a login needs security starttls or tls, so the password is not "
                "sent in clear text"
            )

    def send(self, notification):
        message = self.message(notification)
        with self.connect() as smtp:
            self.login(smtp)
            smtp.send_message(message)

    def connect(self) -> smtplib.SMTP:
        host, port = self.settings["host"], self.settings["port"]
        timeout = self.settings["timeout"]
        if self.settings["security"] == "tls":
            return smtplib.SMTP_SSL(host, port, timeout=timeout, context=self.tls())
        smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if self.settings["security"] == "starttls":
                smtp.starttls(context=self.tls())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings["ca_file"])

    def login(self, smtp: smtplib.SMTP) -> None:
        if not self.settings["username"]:
            return
        secret = self.settings["password"] or self.settings["password_file"]
        smtp.login(self.settings["username"], secret.reveal() if secret else "")

    def message(self, notification) -> email.message.EmailMessage:
        alert = notification.alert
        state = "RESOLVED" if notification.event == "resolved" else alert.severity.value
        subject = alert.subject
        if alert.condition:
            subject += f" ({alert.condition})"
        message = email.message.EmailMessage()
        message["Subject"] = (
            f"{self.settings['subject_prefix']} {state} {alert.check} on "
            f"{alert.server}: {subject}"
        )
        message["From"] = self.settings["from"]
        message["To"] = ", ".join(self.settings["to"])
        message["Date"] = email.utils.formatdate(notification.time)
        message["Message-ID"] = email.utils.make_msgid("encmond")
        message.set_content(self.body(notification))
        return message

    def body(self, notification) -> str:
        alert = notification.alert
        facts = [
            ("Event", notification.event),
            ("Severity", alert.severity.value),
            ("Check", alert.check),
            ("Server", alert.server),
            ("Subject", alert.subject),
            ("Condition", alert.condition or "-"),
            ("Started", readable_time(alert.started_at)),
            (
                "Resolved",
                readable_time(alert.resolved_at) if alert.resolved_at else "-",
            ),
            ("Acknowledged", alert.acked_by or "-"),
            ("Alert id", str(alert.id)),
            ("Fingerprint", alert.fingerprint),
        ]
        lines = [alert.message, ""]
        lines += [f"{name + ':':<14}{value}" for name, value in facts]
        if alert.details:
            lines += ["", "Details:", json.dumps(alert.details, indent=2, default=str)]
        return "\n".join(lines) + "\n"


@hookimpl
def register_notifiers():
    return [EmailNotifier]
