"""The systemd notify protocol (sd_notify(3)), spoken without libsystemd.

systemd names its socket in ``$NOTIFY_SOCKET``: a file system path, or an
abstract socket name when the value starts with ``@``. Each notification is one
datagram of ``KEY=VALUE`` lines. Without the variable every call does nothing,
so encmond behaves the same under systemd and in a terminal.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

SEND_TIMEOUT = 2.0  # seconds a notification may wait for room in the socket buffer


def socket_address(value: str | None) -> str | None:
    """Return the address to send to: ``@name`` becomes the abstract ``\\0name``."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


def watchdog_interval(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Return the seconds between two WATCHDOG=1 pings, or None without a watchdog.

    systemd sets ``$WATCHDOG_USEC`` to ``WatchdogSec=`` in microseconds and
    ``$WATCHDOG_PID`` to the process it watches. Pinging at half the timeout,
    as sd_watchdog_enabled(3) advises, leaves room for one late ping.
    """
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    watched = environ.get("WATCHDOG_PID", "")
    if watched and watched != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 1e6 / 2


class SystemdNotifier:
    """Sends notifications to systemd; a send that fails with OSError is logged."""

    def __init__(self, address: str | None = None) -> None:
        if address is None:
            address = os.environ.get("NOTIFY_SOCKET")
        self.address = socket_address(address)
        self.socket: socket.socket | None = None
        self.failing = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines; returns whether it went out."""
        if self.address is None:
            return False
        message = "".join(f"{key}={one_line(value)}\n" for key, value in fields.items())
        try:
            if self.socket is None:
                self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.socket.settimeout(SEND_TIMEOUT)
            self.socket.sendto(message.encode(), self.address)
        except OSError as exc:
            level = logging.DEBUG if self.failing else logging.WARNING
            log.log(level, "sending %r to systemd failed: %s", message.strip(), exc)
            self.failing = True
            return False
        if self.failing:
            log.info("sending notifications to systemd works again")
            self.failing = False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY="1", STATUS=status)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def reloading(self, status: str) -> bool:
        # Type=notify-reload (systemd 253 and newer) requires MONOTONIC_USEC with
        # RELOADING=1; older versions ignore it.
        usec = str(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
        return self.send(RELOADING="1", MONOTONIC_USEC=usec, STATUS=status)

    def stopping(self, status: str = "stopping") -> bool:
        return self.send(STOPPING="1", STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def one_line(value: str) -> str:
    """Flatten a value to one line: a newline would start another KEY=VALUE."""
    return " ".join(str(value).split())
