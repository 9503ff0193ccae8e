"""Log formatting for journald and the collapsing of repeated lines."""

from __future__ import annotations

import io
import logging
import os

import pytest

from encmond.logs import CollapsingHandler, is_journal, setup_logging


@pytest.fixture
def root_logger():
    """Restore the root logger's handlers and level after setup_logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def collapsing():
    stream = io.StringIO()
    handler = CollapsingHandler(stream, window=60.0)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    yield handler, stream
    handler.close()


def record(text, at, name="encmond.db", level=logging.WARNING, args=()):
    entry = logging.LogRecord(name, level, __file__, 1, text, args, None)
    entry.created = at
    return entry


def test_collapse_counts_repeats(collapsing):
    handler, stream = collapsing
    for second in range(5):
        handler.handle(record("target is unreachable: %s", 100.0 + second, args=("x",)))
    assert stream.getvalue() == "WARNING encmond.db: target is unreachable: x\n"
    handler.handle(record("target is reachable again", 170.0, level=logging.INFO))
    lines = stream.getvalue().splitlines()
    assert lines[1] == (
        "WARNING encmond.db: target is unreachable: x (repeated 4 more times in 4 s)"
    )
    assert lines[2] == "INFO encmond.db: target is reachable again"
    assert len(lines) == 3


def test_collapse_keys_by_logger(collapsing):
    handler, stream = collapsing
    handler.handle(record("failed", 100.0, name="encmond.a"))
    handler.handle(record("failed", 101.0, name="encmond.b"))
    handler.handle(record("failed", 102.0, name="encmond.a", level=logging.ERROR))
    assert len(stream.getvalue().splitlines()) == 3


def test_collapse_interleaved(collapsing):
    handler, stream = collapsing
    for second in range(3):
        handler.handle(record("source down", 100.0 + second))
        handler.handle(record("target down", 100.5 + second))
    assert stream.getvalue().splitlines() == [
        "WARNING encmond.db: source down",
        "WARNING encmond.db: target down",
    ]


def test_collapse_window_passes(collapsing):
    handler, stream = collapsing
    handler.handle(record("lagging", 100.0))
    handler.handle(record("lagging", 200.0))
    assert stream.getvalue().splitlines() == [
        "WARNING encmond.db: lagging",
        "WARNING encmond.db: lagging",
    ]


def test_collapse_close_reports(collapsing):
    handler, stream = collapsing
    handler.handle(record("lagging", 100.0))
    handler.handle(record("lagging", 110.0))
    handler.close()
    assert stream.getvalue().splitlines()[-1] == (
        "WARNING encmond.db: lagging (repeated 1 more times in 10 s)"
    )


def test_collapse_keeps_debug(collapsing):
    handler, stream = collapsing
    for second in range(3):
        handler.handle(record("pruned", 100.0 + second, level=logging.DEBUG))
    assert len(stream.getvalue().splitlines()) == 3


def test_journal_stream_matches(tmp_path):
    with open(tmp_path / "log", "w") as stream:
        info = os.fstat(stream.fileno())
        assert is_journal(stream, {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
        other = f"{info.st_dev}:{info.st_ino + 1}"
        assert not is_journal(stream, {"JOURNAL_STREAM": other})
        assert not is_journal(stream, {"JOURNAL_STREAM": "journal"})
        assert not is_journal(stream, {})


def test_journal_lines_plain(tmp_path, monkeypatch, root_logger):
    with open(tmp_path / "log", "w") as stream:
        info = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        setup_logging("INFO", stream)
        logging.getLogger("encmond.test").warning("lag is %d s", 40)
    assert (tmp_path / "log").read_text() == "<4>encmond.test: lag is 40 s\n"


def test_terminal_lines_timestamped(tmp_path, monkeypatch, root_logger):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    with open(tmp_path / "log", "w") as stream:
        setup_logging("INFO", stream)
        logging.getLogger("encmond.test").info("started")
    line = (tmp_path / "log").read_text()
    assert line.endswith(" INFO encmond.test: started\n")
    assert line[:4].isdigit()
