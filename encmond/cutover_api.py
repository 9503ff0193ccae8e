"""``GET /api/cutover``: the verdict for every target, judged at request time."""

from __future__ import annotations

import time

import bottle

from encmond.cutover import evaluate
from encmond.monitor import Monitor
from encmond.webapp import json_response


def report(monitor: Monitor) -> dict:
    """Return each target's verdict from the stored state, and GO only if all are."""
    settings = monitor.config.checks.get("cutover")
    now = time.time()
    targets = {
        name: evaluate(monitor.state, monitor.config, name, settings, now).to_dict()
        for name in monitor.config.targets
    }
    go = all(target["go"] for target in targets.values())
    return {"time": now, "verdict": "GO" if go else "NO-GO", "targets": targets}


def install(app: bottle.Bottle, monitor: Monitor) -> None:
    @app.get("/api/cutover")
    def cutover():
        if "cutover" not in monitor.config.checks:
            return json_response({"error": "the cutover plugin is not loaded"}, 404)
        return json_response(report(monitor))
