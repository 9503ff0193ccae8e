"""Helpers shared by the tests that run checks against the real pair."""

from __future__ import annotations

import json
import subprocess
import sys

from encmond.checkonce import run_once, selected_checks
from encmond.db import Database
from encmond.loading import load
from encmond.runner import Job, build_jobs
from encmond.state import State


def results_of(config_path, only=None, state=None):
    config, plugins = load(str(config_path))
    return run_once(config, plugins, only, state)


def find(results, check, subject, server=None):
    matches = [
        r
        for r in results
        if r.check == check
        and r.subject == subject
        and (server is None or r.server == server)
    ]
    assert len(matches) == 1, [str(r) for r in results]
    return matches[0]


def job_of(config_path, check: str, server: str = "target") -> Job:
    """Return the job of one check on one server, to run it several times."""
    config, plugins = load(str(config_path))
    checks = selected_checks(config, plugins, [check])
    databases = {name: Database(s) for name, s in config.servers.items()}
    jobs = build_jobs(config, checks, databases, State())
    return next(job for job in jobs if job.context.name == server)


def cutover_cli(config_path, *args) -> tuple[int, dict]:
    """Run ``encmond cutover --json`` in a child process; return status and report."""
    process = subprocess.run(
        [sys.executable, "-m", "encmond", "cutover", "-c", str(config_path), "--json"]
        + list(args),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.stdout, process.stderr
    return process.returncode, json.loads(process.stdout)
