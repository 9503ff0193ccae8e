"""Turning a table's PassState into the Result that a check returns.

``details["state"]`` is one of match, in_progress, in_flux, diverged and
behind here. The table lookup before a pass gives missing, not_comparable,
and behind for a table not on the target yet. ``details["last_clean_pass"]``
is the epoch time at which the last pass without a diverged or changing chunk
finished, or None.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from encmond.config import Table
from encmond.model import Result, Status
from encmond.validation.chunks import Chunk
from encmond.validation.progress import PassState
from encmond.validation.recheck import BEHIND, DIVERGED, IN_FLUX, MATCH
from encmond.validation.throttle import LAG

IN_PROGRESS = "in_progress"
STATUS_OF_STATE = {
    MATCH: Status.OK,
    IN_PROGRESS: Status.OK,
    DIVERGED: Status.CRITICAL,
    IN_FLUX: Status.UNKNOWN,
    BEHIND: Status.UNKNOWN,
}
SHOWN_KEYS = 3  # differing keys or ranges named in a message


@dataclass
class Outcome:
    """The findings of one run for a table that its PassState does not keep."""

    check: str
    key: list[str]
    whole_table: str | None = None
    behind: str = ""
    wait_timeout: float = 0.0
    stale_after: float = 0.0
    paused_seconds: float = 0.0
    paused: str | None = None
    paused_by: str = ""


def pass_view(state: PassState) -> dict[str, Any]:
    """Return the running pass in the same form as ``state.last_pass``."""
    return state.summary(IN_PROGRESS)


def choose(state: PassState, outcome: Outcome) -> tuple[str, dict[str, Any]]:
    """Return the table's state and the summary of the pass that shows it.

    A diverged chunk in the running pass comes first, then a lagging target.
    Next comes a divergence found by the last finished pass, which stays
    until a new pass has checked the table again.
    """
    current = pass_view(state) if state.running else None
    last = state.last_pass
    if current and current["diverged"]:
        return DIVERGED, current
    if outcome.behind or (outcome.paused and outcome.paused_by == LAG):
        return BEHIND, current or last or pass_view(state)
    if current and last and last["state"] == DIVERGED:
        return DIVERGED, last
    if current or last is None:
        return IN_PROGRESS, current or pass_view(state)
    return last["state"], last


def table_result(table: Table, state: PassState, outcome: Outcome) -> Result:
    name, summary = choose(state, outcome)
    now = time.time()
    since = state.last_clean_pass or state.first_seen or now
    stale = name != DIVERGED and now - since > outcome.stale_after
    status = Status.WARNING if stale else STATUS_OF_STATE[name]
    message = describe(name, summary, state, outcome)
    if outcome.whole_table:
        message = f"{outcome.whole_table}, so the whole table is compared: {message}"
    if stale:
        message += f"; stale: no clean pass for {now - since:.0f} s"
    return Result(
        str(table),
        status,
        message,
        metrics(name, summary, state, outcome),
        details(name, summary, state, outcome, stale),
    )


def describe(name: str, summary: dict, state: PassState, outcome: Outcome) -> str:
    if name == MATCH:
        rows, chunks = summary["rows_checked"], summary["chunks_done"]
        return f"{rows} rows match in {chunks} chunks"
    if name == IN_PROGRESS and outcome.paused:
        return f"{progress_text(state)}; paused: {outcome.paused}"
    if name == IN_PROGRESS:
        return progress_text(state)
    if name == BEHIND and outcome.paused:
        return f"validation paused: {outcome.paused}; the pass resumes on the next run"
    if name == BEHIND:
        return (
            f"the target did not apply source position {outcome.behind} within "
            f"{outcome.wait_timeout:g} s; the pass resumes on the next run"
        )
    if name == IN_FLUX:
        ranges = chunk_list(summary["in_flux"], outcome.key)
        return (
            f"{len(summary['in_flux'])} chunks changed during every comparison "
            f"({ranges}); compared again on the next pass"
        )
    return diverged_text(summary, outcome)


def diverged_text(summary: dict, outcome: Outcome) -> str:
    chunks = [entry["chunk"] for entry in summary["diverged"]]
    ranges = chunk_list(chunks, outcome.key)
    if outcome.check == "row_count":
        return (
            f"row counts differ in {len(chunks)} key ranges ({ranges}): "
            f"source {summary['source_rows']} rows, target {summary['target_rows']}"
        )
    differences = summary["differences"]
    if not differences:
        return f"data differs in {len(chunks)} chunks ({ranges})"
    kinds: dict[str, int] = {}
    for difference in differences:
        kinds[difference["kind"]] = kinds.get(difference["kind"], 0) + 1
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    keys = "; ".join(
        ", ".join(f"{k}={v}" for k, v in difference["key"].items())
        for difference in differences[:SHOWN_KEYS]
    )
    more = ", ..." if len(differences) > SHOWN_KEYS else ""
    return f"data differs in {len(differences)} rows ({counts}): {keys}{more}"


def chunk_list(chunks: list[dict], key: list[str]) -> str:
    summary = [Chunk.from_json(chunk).describe(key) for chunk in chunks[:SHOWN_KEYS]]
    return "; ".join(summary) + ("; ..." if len(chunks) > SHOWN_KEYS else "")


def progress_text(state: PassState) -> str:
    done = percent(state)
    text = f"pass in progress: {state.chunks_done} chunks, {state.rows_checked} rows"
    if done is not None:
        text += f", about {done:.0f} %"
    left = eta(state)
    if left is not None:
        text += f", about {left:.0f} s left"
    return text


def percent(state: PassState) -> float | None:
    if not state.rows_estimate:
        return None
    return min(100.0, 100.0 * state.rows_checked / state.rows_estimate)


def eta(state: PassState) -> float | None:
    """Estimate the seconds of validation work left in the running pass."""
    if not state.rows_estimate or not state.rows_checked or not state.active_seconds:
        return None
    rate = state.rows_checked / state.active_seconds
    return max(0.0, (state.rows_estimate - state.rows_checked) / rate)


def progress(state: PassState) -> dict[str, Any]:
    """Return the running pass's progress: chunks, rows, percent and ETA."""
    return {
        "pass_started": state.started_at,
        "chunks_done": state.chunks_done,
        "rows_checked": state.rows_checked,
        "rows_estimate": state.rows_estimate,
        "percent": percent(state),
        "eta_seconds": eta(state),
        "running": state.running,
    }


def metrics(name: str, summary: dict, state: PassState, outcome: Outcome) -> dict:
    match = None
    if name == MATCH:
        match = 1
    elif name == DIVERGED:
        match = 0
    values: dict[str, float | None] = {
        "match": match,
        "chunks_done": summary["chunks_done"],
        "rows_checked": summary["rows_checked"],
        "diverged_chunks": len(summary["diverged"]),
        "rechecked_chunks": summary.get("rechecked", 0),
        "progress_percent": percent(state) if state.running else 100.0,
    }
    if outcome.check == "row_count":
        values["source_rows"] = summary["source_rows"]
        values["target_rows"] = summary["target_rows"]
        values["difference"] = summary["target_rows"] - summary["source_rows"]
    else:
        values["differences"] = len(summary["differences"])
    return values


def details(name, summary, state: PassState, outcome: Outcome, stale: bool) -> dict:
    return {
        "state": name,
        "last_clean_pass": state.last_clean_pass,
        "stale": stale,
        "method": "whole_table" if outcome.whole_table else "chunks",
        "key": outcome.key,
        "differences": summary["differences"],
        "diverged_ranges": [
            Chunk.from_json(entry["chunk"]).describe(outcome.key)
            for entry in summary["diverged"]
        ],
        "in_flux_ranges": [
            Chunk.from_json(chunk).describe(outcome.key) for chunk in summary["in_flux"]
        ],
        "progress": progress(state)
        | {"pass_started": state.started_at or summary.get("started_at")},
        "last_pass": {
            key: value
            for key, value in (state.last_pass or {}).items()
            if key not in ("diverged", "in_flux", "differences")
        },
        "behind": outcome.behind or None,
        "paused": outcome.paused,
        "paused_seconds": round(outcome.paused_seconds, 3),
    }
