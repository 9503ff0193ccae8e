"""The web app in the test process: a Monitor on the real pair, called over WSGI.

``build_monitor`` loads a configuration for the pair and opens a store;
``run_jobs`` runs every job once, so the app serves real results. ``Client``
calls the app through ``wsgiref.validate``, which fails the test on any WSGI
violation.
"""

from __future__ import annotations

import json
import wsgiref.headers
import wsgiref.util
import wsgiref.validate
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from encmond.loading import load
from encmond.monitor import Monitor
from encmond.store import Store


@contextmanager
def items_table(pair, schema: str, rows: int) -> Iterator[str]:
    """Create ``schema.items`` with ``rows`` rows, replicated; drop the schema after."""
    pair.source.execute(f"CREATE DATABASE {schema}")
    pair.source.execute(f"CREATE TABLE {schema}.items (id INT PRIMARY KEY, v INT)")
    pair.source.execute(
        f"INSERT INTO {schema}.items SELECT seq, seq FROM {schema}.seq_1_to_{rows}"
    )
    pair.wait_caught_up()
    try:
        yield f"{schema}.items"
    finally:
        pair.source.execute(f"DROP DATABASE {schema}")
        pair.wait_caught_up()


@contextmanager
def open_monitor(pair, directory: Path, **overrides) -> Iterator[Monitor]:
    """Yield ``build_monitor``'s Monitor and close it and its store after."""
    monitor = build_monitor(pair, directory, **overrides)
    try:
        yield monitor
    finally:
        monitor.close()
        monitor.store.close()


def build_monitor(pair, directory: Path, **overrides) -> Monitor:
    """Return a Monitor of the pair; ``overrides`` replace top-level config keys."""
    config = pair.encmond_config(
        storage={"path": str(directory / "encmond.db")},
        web={"listen": "127.0.0.1:0"},
        plugins={"dirs": []},
    )
    config.update(overrides)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    loaded, plugins = load(str(path))
    return Monitor(loaded, plugins, Store(loaded.storage["path"]))


def run_jobs(monitor: Monitor, check: str | None = None) -> None:
    """Run every job once, or only the jobs of ``check``."""
    for job in monitor.jobs:
        if check is None or job.check.name == check:
            monitor.run_job(job)


@dataclass
class Response:
    status: int
    headers: wsgiref.headers.Headers
    body: bytes

    def json(self):
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)


class Client:
    """Calls a WSGI app in-process, one request at a time."""

    def __init__(self, app, headers: dict[str, str] | None = None) -> None:
        self.app = wsgiref.validate.validator(app)
        self.headers = headers or {}

    def get(self, target: str, headers: dict[str, str] | None = None) -> Response:
        return self.request("GET", target, headers)

    def request(
        self, method: str, target: str, headers: dict[str, str] | None = None
    ) -> Response:
        path, _, query = target.partition("?")
        environ: dict = {}
        wsgiref.util.setup_testing_defaults(environ)
        environ.update(REQUEST_METHOD=method, PATH_INFO=path, QUERY_STRING=query)
        for name, value in {**self.headers, **(headers or {})}.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        started = {}

        def start_response(status, response_headers, exc_info=None):
            started["status"] = int(status.split()[0])
            started["headers"] = wsgiref.headers.Headers(list(response_headers))

        chunks = self.app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            chunks.close()
        return Response(started["status"], started["headers"], body)
