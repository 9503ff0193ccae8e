"""``GET /api/validation``: per target and table, each validation check's state.

The stored result of the last run gives the state, the last clean pass and
the differing keys. The progress table, which a run updates every few
seconds, gives the live progress of a pass that is still running.
"""

from __future__ import annotations

from typing import Any

import bottle

from encmond.responses import json_response
from encmond.validation.check import ValidationCheck
from encmond.validation.progress import ProgressStore
from encmond.validation.report import progress


def install(app: bottle.Bottle, monitor: Any) -> None:
    """Add the route to ``app``, serving ``monitor``'s state."""

    @app.get("/api/validation")
    def validation():
        return json_response(validation_report(monitor))


def validation_report(monitor: Any) -> dict[str, Any]:
    names = {c.name for c in monitor.checks if isinstance(c, ValidationCheck)}
    tables = [str(table) for table in monitor.config.tables]
    report: dict[str, Any] = {
        target: {table: {} for table in tables} for target in monitor.config.targets
    }
    for result in monitor.store.latest():
        entry = report.get(result.server, {}).get(result.subject)
        if result.check in names and entry is not None:
            entry[result.check] = {
                "status": result.status.value,
                "message": result.message,
                "checked_at": result.time,
                "state": result.details.get("state"),
                "last_clean_pass": result.details.get("last_clean_pass"),
                "stale": result.details.get("stale"),
                "differences": result.details.get("differences", []),
                "diverged_ranges": result.details.get("diverged_ranges", []),
                "progress": result.details.get("progress"),
            }
    for (check, server, table), state in ProgressStore(monitor.store).all().items():
        entry = report.get(server, {}).get(table, {}).get(check)
        if entry is not None and state.running:
            entry["progress"] = progress(state)
    return {"targets": report}
