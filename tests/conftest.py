"""Shared fixtures: a real MariaDB pair for the session, configs and daemons."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
import yaml

TESTS = Path(__file__).parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from browser import chromium  # noqa: E402
from daemon_process import DaemonProcess  # noqa: E402
from pair import start_pair  # noqa: E402 - needs tests/ on sys.path first

_schemas = itertools.count(1)
TRIO = ("target", "replica")  # the trio's targets, in their configured order


@pytest.fixture(scope="session")
def pair(tmp_path_factory):
    """A source and an encrypted target replicating with GTID, for the session.

    The target is read-only. Tests that stop, kill or reconfigure a server
    restore it before they end.
    """
    with start_pair(tmp_path_factory.mktemp("pair")) as running:
        # A replica that will take over runs read-only until cutover.
        running.target.execute("SET GLOBAL read_only = ON")
        yield running


@pytest.fixture(scope="session")
def trio(tmp_path_factory):
    """A source with two read-only targets: ``target`` encrypted at rest and
    ``replica`` (an existing read replica, say) not, with the table
    ``multi.items`` of 50 rows. Tests that stop a server restart it."""
    with start_pair(
        tmp_path_factory.mktemp("trio"), targets=TRIO, encrypted={"target"}
    ) as running:
        for target in running.targets.values():
            target.execute("SET GLOBAL read_only = ON")
        running.source.execute("CREATE DATABASE multi")
        running.source.execute("CREATE TABLE multi.items (id INT PRIMARY KEY)")
        running.source.execute(
            "INSERT INTO multi.items SELECT seq FROM multi.seq_1_to_50"
        )
        running.wait_caught_up()
        yield running


@pytest.fixture
def schema(pair):
    """A fresh database on the source, replicated to the target, dropped after."""
    name = f"t{next(_schemas)}"
    pair.source.execute(f"CREATE DATABASE {name}")
    pair.wait_caught_up()
    yield name
    pair.source.execute(f"DROP DATABASE IF EXISTS {name}")
    pair.wait_caught_up()


@pytest.fixture
def table(pair, schema):
    """A 1000-row table in ``schema``, replicated to the target."""
    pair.source.execute(f"CREATE TABLE {schema}.items (id INT PRIMARY KEY, v INT)")
    pair.source.execute(
        f"INSERT INTO {schema}.items SELECT seq, seq FROM {schema}.seq_1_to_1000"
    )
    pair.wait_caught_up()
    return f"{schema}.items"


@pytest.fixture
def write_config(tmp_path, pair):
    """Write an encmond YAML config for the pair; keyword arguments override keys."""

    def write(**overrides):
        config = pair.encmond_config(
            storage={"path": str(tmp_path / "encmond.db")},
            web={"listen": "127.0.0.1:0"},
            plugins={"dirs": []},
        )
        for server in ("source", "target"):
            config[server]["retry_delay"] = "500ms"
            config[server]["connect_timeout"] = "2s"
        config.update(overrides)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True))
        return path

    return write


@pytest.fixture
def daemon(tmp_path):
    """Start ``encmond run`` on a config file; stopped (and checked) after the test."""
    started = []

    def start(config_path, **kwargs):
        process = DaemonProcess(config_path, tmp_path, **kwargs)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium context with a fresh profile, closed after the test."""
    with chromium(tmp_path / "chromium-profile") as context:
        yield context
