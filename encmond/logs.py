"""Logging setup: plain lines for journald, timestamped lines elsewhere."""

from __future__ import annotations

import logging
import os
import sys

# journald reads a "<N>" prefix as the syslog priority of the line.
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class JournalFormatter(logging.Formatter):
    """Formats without a timestamp (journald adds one) and with a priority prefix."""

    def format(self, record: logging.LogRecord) -> str:
        priority = SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


def setup_logging(level: str = "INFO", stream=None) -> None:
    """Send encmond's log to stderr at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
