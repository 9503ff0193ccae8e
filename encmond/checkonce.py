"""``encmond check``: every enabled check once, without the store or alerts."""

from __future__ import annotations

import difflib

import gevent

from encmond.config import Config
from encmond.db import Database
from encmond.errors import ConfigError
from encmond.model import Result
from encmond.plugins_loader import Plugins
from encmond.runner import Job, Runner, build_jobs
from encmond.state import State


def selected_checks(config: Config, plugins: Plugins, only: list[str] | None):
    """Return the check instances to run; ``only`` overrides ``enabled``."""
    for name in only or []:
        if name not in plugins.checks:
            nearest = difflib.get_close_matches(name, plugins.checks, n=1)
            hint = f"; did you mean '{nearest[0]}'?" if nearest else ""
            raise ConfigError(
                f"unknown check '{name}'{hint} (known: "
                f"{', '.join(sorted(plugins.checks))})",
                key="--only",
            )
    return [
        cls(config.checks[name])
        for name, cls in plugins.checks.items()
        if (name in only if only else config.checks[name]["enabled"])
    ]


def run_once(
    config: Config,
    plugins: Plugins,
    only: list[str] | None,
    state: State | None = None,
) -> list[Result]:
    """Run the selected checks concurrently and return all results in order.

    Checks with ``depends_on`` run after the others, and read their results
    (over what ``state`` has stored) through ``ctx.state``.
    """
    state = state or State()
    checks = selected_checks(config, plugins, only)
    databases = {name: Database(server) for name, server in config.servers.items()}
    results: list[Result] = []
    try:
        for phase in (
            [check for check in checks if not check.depends_on],
            [check for check in checks if check.depends_on],
        ):
            found = run_jobs(build_jobs(config, phase, databases, state))
            state.add(found)
            results += found
    finally:
        for database in databases.values():
            database.close()
    order = {check.name: index for index, check in enumerate(checks)}
    return sorted(results, key=lambda r: (order[r.check], r.server, r.subject))


def run_jobs(jobs: list[Job]) -> list[Result]:
    runner = Runner()
    greenlets = [gevent.spawn(runner.run, job) for job in jobs]
    gevent.joinall(greenlets, raise_error=True)
    return [result for g in greenlets for result in g.value.results]
