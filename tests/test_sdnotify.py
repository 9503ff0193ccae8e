"""The notify protocol module against real AF_UNIX datagram sockets."""

from __future__ import annotations

import os
import secrets

import pytest

from daemon_process import NotifyReceiver
from encmond.sdnotify import SystemdNotifier, socket_address, watchdog_interval


@pytest.fixture
def receiver(tmp_path):
    listening = NotifyReceiver(str(tmp_path / "notify.sock"))
    yield listening
    listening.close()


def test_notify_path_socket(receiver):
    notifier = SystemdNotifier(receiver.address)
    assert notifier.ready("all 2 servers up")
    assert notifier.watchdog()
    assert notifier.stopping()
    receiver.wait_for("STOPPING")
    notifier.close()
    assert receiver.messages[0] == {"READY": "1", "STATUS": "all 2 servers up"}
    assert receiver.messages[1] == {"WATCHDOG": "1"}
    assert receiver.messages[2] == {"STOPPING": "1", "STATUS": "stopping"}


def test_notify_abstract_socket():
    receiver = NotifyReceiver(f"@encmond-test-{secrets.token_hex(8)}")
    try:
        notifier = SystemdNotifier(receiver.address)
        assert notifier.status("reload failed")
        receiver.wait_for("STATUS")
        notifier.close()
    finally:
        receiver.close()
    assert receiver.messages == [{"STATUS": "reload failed"}]


def test_notify_status_one_line(receiver):
    notifier = SystemdNotifier(receiver.address)
    notifier.status("first line\nREADY=1")
    receiver.wait_for("STATUS")
    notifier.close()
    assert receiver.messages == [{"STATUS": "first line READY=1"}]


def test_notify_reloading_monotonic(receiver):
    notifier = SystemdNotifier(receiver.address)
    notifier.reloading("reloading /etc/encmond/config.yaml")
    receiver.wait_for("RELOADING")
    notifier.close()
    message = receiver.messages[0]
    assert message["RELOADING"] == "1"
    assert message["MONOTONIC_USEC"].isdigit()


def test_notify_without_socket():
    notifier = SystemdNotifier("")
    assert not notifier.enabled
    assert not notifier.ready("up")


def test_notify_missing_socket(tmp_path, caplog):
    notifier = SystemdNotifier(str(tmp_path / "absent.sock"))
    assert not notifier.watchdog()
    assert not notifier.watchdog()
    notifier.close()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "WATCHDOG=1" in warnings[0].getMessage()


def test_socket_address_abstract():
    assert socket_address("@encmond/notify") == "\0encmond/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address(None) is None


def test_watchdog_interval_half():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    pid = os.getpid()
    environ = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(pid)}
    assert watchdog_interval(environ, pid) == 1.0


def test_watchdog_interval_other_pid():
    environ = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}
    assert watchdog_interval(environ, 4242) is None


def test_watchdog_interval_unset():
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
