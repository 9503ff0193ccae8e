"""Logging setup: plain lines for journald, timestamped lines elsewhere.

Identical INFO-or-higher lines are collapsed: within ``REPEAT_WINDOW`` seconds
of a line, an identical one (same logger, level and text) is counted instead of
written, and the count is written once the window has passed.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

# journald reads a "<N>" prefix as the syslog priority of the line.
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REPEAT_WINDOW = 600.0  # seconds during which identical lines are counted, not written
MAX_TRACKED = 500  # distinct recent lines remembered for collapsing


class JournalFormatter(logging.Formatter):
    """Formats without a timestamp (journald adds one) and with a priority prefix."""

    def format(self, record: logging.LogRecord) -> str:
        priority = SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


def is_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Return whether ``stream`` is the journald stream that systemd connected.

    systemd sets ``$JOURNAL_STREAM`` to ``DEVICE:INODE`` of that stream. A
    child process inherits the variable even when its stderr goes elsewhere,
    so the numbers are compared with the stream's own, as systemd.exec(5)
    advises.
    """
    environ = os.environ if environ is None else environ
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


@dataclass
class _Seen:
    record: logging.LogRecord
    first: float
    last: float
    repeats: int = 0


class CollapsingHandler(logging.StreamHandler):
    """A StreamHandler that writes identical lines once per ``window`` seconds.

    A repeat within the window is counted. Once the window has passed, the
    next record of any kind first writes the pending count: the line's text
    followed by "(repeated N more times in T s)", T spanning the first to the
    last repeat. ``close`` writes the counts still pending. DEBUG lines are
    always written.
    """

    def __init__(self, stream: TextIO | None = None, window: float = REPEAT_WINDOW):
        super().__init__(stream)
        self.window = window
        self.seen: dict[tuple[str, int, str], _Seen] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.INFO:
            super().emit(record)
            return
        self.expire(record.created)
        key = (record.name, record.levelno, record.getMessage())
        seen = self.seen.get(key)
        if seen is not None:
            seen.repeats += 1
            seen.last = record.created
            return
        if len(self.seen) >= MAX_TRACKED:
            self.report(next(iter(self.seen)), record.created)
        self.seen[key] = _Seen(record, record.created, record.created)
        super().emit(record)

    def expire(self, now: float) -> None:
        """Forget lines older than the window, writing their repeat counts."""
        for key, seen in list(self.seen.items()):
            if now - seen.first >= self.window:
                self.report(key, now)

    def report(self, key: tuple[str, int, str], now: float) -> None:
        seen = self.seen.pop(key)
        if not seen.repeats:
            return
        summary = copy.copy(seen.record)
        summary.msg = (
            f"{key[2]} (repeated {seen.repeats} more times in "
            f"{seen.last - seen.first:.0f} s)"
        )
        summary.args = None
        summary.exc_info = summary.exc_text = None
        summary.created = now
        summary.msecs = now % 1 * 1000
        super().emit(summary)

    def close(self) -> None:
        self.acquire()
        try:
            for key in list(self.seen):
                self.report(key, time.time())
        finally:
            self.release()
        super().close()


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send encmond's log to ``stream`` (stderr by default) at ``level``."""
    stream = stream or sys.stderr
    handler = CollapsingHandler(stream)
    if is_journal(stream):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
