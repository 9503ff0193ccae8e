"""Notifier plugins delivering to real receivers on loopback, in process."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import time
from pathlib import Path

import pytest

from daemon_process import wait_for
from encmond.errors import ConfigError
from encmond.model import Result, Status
from receivers import (
    HANG,
    HTTPReceiver,
    Monitors,
    alertmanager,
    alertmanager_alerts,
    smtp_receiver,
)

NOW = 1_800_000_000.0
README = Path(__file__).parent.parent / "README.md"
TOKEN = "T0KEN-b7c1d2e3"

FAILING_PLUGIN = """\
from encmond import Notifier, hookimpl
from encmond.settings import Setting, secret, secret_url


class Failing(Notifier):
    type = "failing"
    options = {
        "url": Setting(secret_url),
        "password": Setting(secret),
    }

    def send(self, notification):
        url = self.settings["url"].reveal()
        password = self.settings["password"].reveal()
        raise RuntimeError(f"POST {url} with {password} refused")


@hookimpl
def register_notifiers():
    return [Failing]
"""


@pytest.fixture
def build(tmp_path):
    with Monitors(tmp_path) as monitors:
        yield monitors.build


def down(at, server="target", message="down: connection refused"):
    return Result(
        server,
        Status.CRITICAL,
        message,
        check="connection",
        server=server,
        time=at,
    )


def up(at, server="target"):
    return Result(server, Status.OK, "up", check="connection", server=server, time=at)


def outbox(monitor):
    rows = monitor.store.reader.execute(
        "SELECT attempts, last_error, delivered_at, gave_up_at FROM outbox ORDER BY id"
    ).fetchall()
    return [dict(row) for row in rows]


def test_webhook_alertmanager_shape(build):
    with HTTPReceiver() as receiver:
        monitor = build(
            notifiers=[
                {
                    "type": "webhook",
                    "url": receiver.url + "/hook",
                    "headers": {"Authorization": "Bearer " + TOKEN},
                }
            ]
        )
        worker = monitor.dispatcher.workers["webhook"]
        monitor.alerts.process([down(NOW)], NOW)
        assert worker.deliver_due(NOW) == 1
        monitor.alerts.process([up(NOW + 30)], NOW + 30)
        assert worker.deliver_due(NOW + 30) == 1
    firing, resolved = [request.json for request in receiver.accepted()]
    assert receiver.accepted()[0].path == "/hook"
    assert receiver.accepted()[0].headers["Authorization"] == "Bearer " + TOKEN
    assert firing["status"] == "firing"
    assert firing["event"] == "firing"
    assert firing["version"] == "4"
    alert = firing["alerts"][0]
    assert alert["labels"] == {
        "alertname": "connection",
        "check": "connection",
        "server": "target",
        "subject": "target",
        "severity": "critical",
    }
    assert alert["annotations"]["description"] == "down: connection refused"
    assert alert["annotations"]["summary"] == "connection on target: target"
    assert alert["startsAt"] == "2027-01-15T08:00:00.000Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2027-01-15T08:00:30.000Z"
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])


def test_slack_text_readable(build):
    with HTTPReceiver() as receiver:
        monitor = build(
            notifiers=[
                {"type": "slack", "url": f"{receiver.url}/services/{TOKEN}"},
            ]
        )
        worker = monitor.dispatcher.workers["slack"]
        monitor.alerts.process([down(NOW, message="down: <no route> & gone")], NOW)
        worker.deliver_due(NOW)
        monitor.alerts.process([up(NOW + 5)], NOW + 5)
        worker.deliver_due(NOW + 5)
    firing, resolved = [request.json["text"] for request in receiver.accepted()]
    assert firing.startswith(":red_circle: *CRITICAL* connection on target: target")
    assert "down: &lt;no route&gt; &amp; gone" in firing
    assert resolved.startswith(":white_check_mark: *RESOLVED* connection on target")


def test_500_three_times_delivers_once(build, caplog):
    with HTTPReceiver([500, 500, 500]) as receiver:
        monitor = build(
            notifiers=[{"type": "webhook", "url": f"{receiver.url}/x/{TOKEN}"}]
        )
        worker = monitor.dispatcher.workers["webhook"]
        monitor.alerts.process([down(NOW)], NOW)
        at = NOW
        for _ in range(10):
            worker.deliver_due(at)
            next_at = monitor.store.next_due("webhook")
            if next_at is None:
                break
            at = next_at
        for _ in range(3):
            assert worker.deliver_due(at + 3600) == 0
    assert receiver.count() == 4
    assert len(receiver.accepted()) == 1
    rows = outbox(monitor)
    assert len(rows) == 1
    assert rows[0]["attempts"] == 4
    assert rows[0]["delivered_at"] is not None
    assert "HTTP 500" in rows[0]["last_error"]
    assert at - NOW == 5 + 10 + 20
    assert "could not deliver" in caplog.text
    assert TOKEN not in caplog.text


def test_secrets_redacted_in_errors(build, tmp_path, caplog):
    plugins = tmp_path / "plugins.d"
    plugins.mkdir()
    (plugins / "failing.py").write_text(FAILING_PLUGIN)
    url = f"https://hooks.example.internal/services/{TOKEN}?key=q5Ecret"
    monitor = build(
        plugins={"dirs": [str(plugins)]},
        notifiers=[{"type": "failing", "url": url, "password": "pa55-w0rd"}],
    )
    worker = monitor.dispatcher.workers["failing"]
    monitor.alerts.process([down(NOW)], NOW)
    with caplog.at_level(logging.DEBUG, logger="encmond"):
        worker.deliver_due(NOW)
    error = outbox(monitor)[0]["last_error"]
    for text in (caplog.text, error):
        assert "https://hooks.example.internal***" in text
        assert TOKEN not in text
        assert "q5Ecret" not in text
        assert "pa55-w0rd" not in text


def test_hanging_receiver_times_out(build):
    with HTTPReceiver([HANG]) as receiver:
        monitor = build(
            notifiers=[{"type": "webhook", "url": receiver.url, "timeout": "1s"}]
        )
        worker = monitor.dispatcher.workers["webhook"]
        monitor.alerts.process([down(NOW)], NOW)
        assert worker.deliver_due(NOW) == 0
        error = outbox(monitor)[0]["last_error"]
        assert "timed out" in error
        assert worker.deliver_due(NOW + 5) == 1
    assert receiver.count() == 2


def test_gives_up_after_limit(build, caplog):
    with HTTPReceiver(default=503) as receiver:
        monitor = build(
            notifiers=[{"type": "webhook", "url": receiver.url, "give_up_after": "1m"}]
        )
        worker = monitor.dispatcher.workers["webhook"]
        monitor.alerts.process([down(NOW)], NOW)
        worker.deliver_due(NOW)
        worker.deliver_due(NOW + 120)
    rows = outbox(monitor)
    assert rows[0]["gave_up_at"] == NOW + 120
    assert rows[0]["delivered_at"] is None
    assert monitor.store.pending_count() == 0
    assert receiver.count() == 1
    assert "dropped firing CRITICAL connection/target/target" in caplog.text


def test_email_starttls_login(build, tmp_path):
    secret_file = tmp_path / "smtp.password"
    secret_file.write_text("s3cret-pass\n")
    with smtp_receiver(tmp_path, "encmond", "s3cret-pass") as (port, ca, mailbox):
        monitor = build(
            notifiers=[
                {
                    "type": "email",
                    "host": "localhost",
                    "port": port,
                    "username": "encmond",
                    "password_file": str(secret_file),
                    "ca_file": str(ca),
                    "from": "encmond@example.internal",
                    "to": ["dba@example.internal", "oncall@example.internal"],
                }
            ]
        )
        worker = monitor.dispatcher.workers["email"]
        monitor.alerts.process([down(NOW)], NOW)
        assert worker.deliver_due(NOW) == 1
    assert mailbox.logins == [("encmond", True)]
    [sent] = mailbox.messages
    assert sent["tls"] is True
    assert sent["authenticated"] is True
    assert sent["to"] == ["dba@example.internal", "oncall@example.internal"]
    message = email.message_from_string(sent["data"], policy=email.policy.default)
    assert message["Subject"] == "[encmond] CRITICAL connection on target: target"
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    assert body.startswith("down: connection refused\n")
    assert "Server:       target" in body


def test_email_wrong_password(build, tmp_path, caplog):
    with smtp_receiver(tmp_path, "encmond", "right") as (port, ca, mailbox):
        monitor = build(
            notifiers=[
                {
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "encmond",
                    "password": "wr0ng-pass",
                    "ca_file": str(ca),
                    "from": "encmond@example.internal",
                    "to": ["dba@example.internal"],
                }
            ]
        )
        worker = monitor.dispatcher.workers["email"]
        monitor.alerts.process([down(NOW)], NOW)
        assert worker.deliver_due(NOW) == 0
    assert mailbox.messages == []
    assert "SMTPAuthenticationError" in outbox(monitor)[0]["last_error"]
    assert "wr0ng-pass" not in caplog.text


def test_email_password_twice_rejected(build, tmp_path):
    secret_file = tmp_path / "smtp.password"
    secret_file.write_text("x\n")
    entry = {
        "type": "email",
        "host": "127.0.0.1",
        "username": "encmond",
        "password": "x",
        "password_file": str(secret_file),
        "from": "a@example.internal",
        "to": ["b@example.internal"],
    }
    with pytest.raises(ConfigError) as caught:
        build(notifiers=[entry])
    assert "either password or password_file" in str(caught.value)
    assert caught.value.key == "notifiers.0"


def test_alertmanager_firing_then_resolved(build, tmp_path):
    with alertmanager(tmp_path / "alertmanager") as url:
        monitor = build(notifiers=[{"type": "alertmanager", "url": url}])
        worker = monitor.dispatcher.workers["alertmanager"]
        now = time.time()
        monitor.alerts.process([down(now)], now)
        assert worker.deliver_due(now) == 1
        [posted] = wait_for(lambda: alertmanager_alerts(url), 30)
        assert posted["labels"]["check"] == "connection"
        assert posted["labels"]["severity"] == "critical"
        assert posted["status"]["state"] == "active"
        assert posted["annotations"]["description"] == "down: connection refused"

        worker.resend_due(now + 60)
        [resent] = alertmanager_alerts(url)
        assert resent["fingerprint"] == posted["fingerprint"]

        now = time.time()
        monitor.alerts.process([up(now)], now)
        assert worker.deliver_due(now) == 1
        wait_for(
            lambda: alertmanager_alerts(url) == [],
            30,
            message="Alertmanager still lists the resolved alert",
        )


def readme_notifier() -> str:
    """Return the custom notifier example from the README, as written there."""
    text = README.read_text()
    section = text.split("### A custom notifier", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_notifier_delivers(build, tmp_path):
    plugins = tmp_path / "plugins.d"
    plugins.mkdir()
    (plugins / "text_post.py").write_text(readme_notifier())
    with HTTPReceiver() as receiver:
        monitor = build(
            plugins={"dirs": [str(plugins)]},
            notifiers=[{"type": "text_post", "url": receiver.url + "/topic"}],
        )
        worker = monitor.dispatcher.workers["text_post"]
        monitor.alerts.process([down(NOW)], NOW)
        assert worker.deliver_due(NOW) == 1
    [request] = receiver.accepted()
    assert request.path == "/topic"
    assert request.body.decode() == (
        "[CRITICAL] connection on target: target: down: connection refused"
    )


def lag(status):
    return Result(
        "shop.orders",
        status,
        f"lag: {status.value.lower()}",
        check="lag",
        server="target",
        time=time.time(),
    )


def process(monitor, status):
    """Apply a lag result now, as the scheduler would; return the number of
    notifications the Alertmanager notifier delivered."""
    now = time.time()
    monitor.alerts.process([lag(status)], now)
    return monitor.dispatcher.workers["alertmanager"].deliver_due(now)


def resend(monitor):
    """Run the next periodic resend of the Alertmanager notifier at once."""
    worker = monitor.dispatcher.workers["alertmanager"]
    worker.resend_due(max(time.time(), worker.next_resend))


def active_severities(url: str) -> list[str]:
    """Return the severity labels of the active Alertmanager alerts of the
    lag alert on shop.orders."""
    return sorted(
        alert["labels"]["severity"]
        for alert in alertmanager_alerts(url)
        if alert["labels"]["check"] == "lag"
        and alert["labels"]["subject"] == "shop.orders"
        and alert["status"]["state"] == "active"
    )


def wait_for_severities(url: str, expected: list[str]) -> None:
    try:
        wait_for(lambda: active_severities(url) == expected, 30)
    except TimeoutError:
        pass
    assert active_severities(url) == expected


def test_alertmanager_severity_drop_and_rise(build, tmp_path):
    with alertmanager(tmp_path / "alertmanager") as url:
        monitor = build(notifiers=[{"type": "alertmanager", "url": url}])
        assert process(monitor, Status.CRITICAL) == 1
        wait_for_severities(url, ["critical"])

        # A drop is not notified, so the resend posts the new label set.
        assert process(monitor, Status.WARNING) == 0
        resend(monitor)
        wait_for_severities(url, ["warning"])

        # Back at the notified severity: no notification either.
        assert process(monitor, Status.CRITICAL) == 0
        resend(monitor)
        wait_for_severities(url, ["critical"])


def test_alertmanager_severity_drop_after_restart(build, tmp_path):
    with alertmanager(tmp_path / "alertmanager") as url:
        monitor = build(notifiers=[{"type": "alertmanager", "url": url}])
        assert process(monitor, Status.CRITICAL) == 1
        wait_for_severities(url, ["critical"])

        # A restarted notifier has no record of its posts, so it falls back
        # to the notified severity.
        monitor.dispatcher.workers["alertmanager"].notifier.posted_severity.clear()
        assert process(monitor, Status.WARNING) == 0
        resend(monitor)
        wait_for_severities(url, ["warning"])


def test_alertmanager_resolved_after_drop(build, tmp_path):
    with alertmanager(tmp_path / "alertmanager") as url:
        monitor = build(notifiers=[{"type": "alertmanager", "url": url}])
        assert process(monitor, Status.CRITICAL) == 1
        wait_for_severities(url, ["critical"])

        # No resend between the drop and the resolution.
        assert process(monitor, Status.WARNING) == 0
        assert process(monitor, Status.OK) == 1
        wait_for_severities(url, [])
