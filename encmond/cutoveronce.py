"""``encmond cutover``: run the checks the verdict needs once, then judge.

The lag history, earlier validation passes and firing alerts come from the
daemon's database at ``storage.path`` when it exists; it is only read.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from encmond.checkonce import run_once
from encmond.config import Config
from encmond.errors import ConfigError
from encmond.plugins_loader import Plugins
from encmond.state import State


def run_cutover(
    config: Config, plugins: Plugins, targets: list[str] | None = None
) -> dict[str, Any]:
    """Return the report: the overall verdict, each target's, and the results."""
    for name in targets or []:
        if name not in config.targets:
            raise ConfigError(
                f"unknown target '{name}' (known: {', '.join(config.targets)})",
                key="--target",
            )
    if "cutover" not in plugins.checks:
        raise ConfigError("the cutover plugin is not loaded", key="plugins")
    only = [*plugins.checks["cutover"].depends_on, "cutover"]
    if targets:
        # Other targets are not judged, so they are not connected to either:
        # a down one would only delay the verdict by its connection retries.
        config = copy.copy(config)
        config.targets = {name: config.targets[name] for name in targets}
    storage = config.storage["path"]
    state = State.open(storage)
    try:
        results = run_once(config, plugins, only, state)
    finally:
        state.close()
    verdicts = {}
    for name in targets or list(config.targets):
        verdicts[name] = verdict_of(name, results)
    go = all(verdict["go"] for verdict in verdicts.values())
    return {
        "verdict": "GO" if go else "NO-GO",
        "go": go,
        "time": time.time(),
        "config": config.path,
        "history": storage if Path(storage).is_file() else None,
        "targets": verdicts,
        "results": [result.to_dict() for result in results],
    }


def verdict_of(target: str, results) -> dict[str, Any]:
    for result in results:
        if (result.check, result.server) == ("cutover", target):
            if "verdict" in result.details:
                return result.details
            return failed_verdict(target, result.message, result.time)
    return failed_verdict(target, "the cutover check returned nothing", time.time())


def failed_verdict(target: str, message: str, moment: float) -> dict[str, Any]:
    blocker = {
        "condition": "verdict computed",
        "problem": message,
        "clears": "fix the error and run encmond cutover again",
        "time": moment,
        "evidence": None,
    }
    return {
        "target": target,
        "verdict": "NO-GO",
        "go": False,
        "time": moment,
        "summary": f"NO-GO: {message}",
        "blockers": [blocker],
        "facts": [],
        "notes": [],
    }


def render(report: dict[str, Any]) -> str:
    """Format the report for a terminal: verdict, blockers, then every fact."""
    lines = []
    for name, verdict in report["targets"].items():
        lines.append(f"{name}: {verdict['verdict']}")
        for blocker in verdict["blockers"]:
            lines.append(f"  BLOCKER {blocker['condition']}: {blocker['problem']}")
            lines.append(f"          clears when: {blocker['clears']}")
        for fact in verdict["facts"]:
            mark = "ok  " if fact["ok"] else "FAIL"
            when = (
                time.strftime("%H:%M:%S", time.gmtime(fact["time"])) + "Z"
                if fact["time"]
                else "-"
            )
            lines.append(f"  {mark} {when} {fact['condition']}: {fact['observed']}")
        lines += [f"  {note}" for note in verdict["notes"]]
    if report["history"] is None:
        lines.append(
            "no daemon database found: lag history and alerts come from this run only"
        )
    lines.append(f"\nverdict: {report['verdict']}")
    return "\n".join(lines)
