"""Turning a table's PassState into the Result that a check returns.

``details["state"]`` is one of match, in_progress, in_flux, diverged and
behind here. The table lookup before a pass gives missing, not_comparable,
and behind for a table not on the target yet. ``details["last_clean_pass"]``
is the epoch time at which the last pass without a diverged or changing chunk
finished, or None.
"""

from __future__ import annotations

import json
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
    max_differences: int = 0
    timeout: float = 0.0
    # False when a later run does not go on with this pass, as in
    # ``encmond check``, whose progress lives only as long as the command.
    resumable: bool = True


def pass_view(state: PassState) -> dict[str, Any]:
    """Return the running pass in the same form as ``state.last_pass``."""
    return state.summary(IN_PROGRESS)


def choose(state: PassState, outcome: Outcome) -> tuple[str, dict[str, Any]]:
    """Return the table's state and the summary of the pass that shows it.

    A divergence comes first. While a pass runs, the diverged chunks of the
    last finished pass stay, joined with those the running pass has found so
    far, until the running pass finishes. A lagging target comes next.
    """
    current = pass_view(state) if state.running else None
    last = state.last_pass
    last_diverged = last is not None and last["state"] == DIVERGED
    if current and last_diverged:
        return DIVERGED, joined(last, current)
    if current and current["diverged"]:
        return DIVERGED, current
    if outcome.behind or (outcome.paused and outcome.paused_by == LAG):
        return BEHIND, current or last or pass_view(state)
    if current or last is None:
        return IN_PROGRESS, current or pass_view(state)
    return last["state"], last


def joined(last: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Return ``last`` with the running pass's diverged chunks and differences
    added, one per key range and one per key, the running pass's entry winning.
    """
    chunks = {
        json.dumps(entry["chunk"], sort_keys=True, default=str): entry
        for entry in [*last["diverged"], *current["diverged"]]
    }
    differences = {
        json.dumps(difference["key"], sort_keys=True, default=str): difference
        for difference in [*last["differences"], *current["differences"]]
    }
    return last | {
        "diverged": list(chunks.values()),
        "differences": list(differences.values()),
    }


def table_result(table: Table, state: PassState, outcome: Outcome) -> Result:
    name, summary = choose(state, outcome)
    now = time.time()
    since = state.last_clean_pass or state.first_seen or now
    stale = name != DIVERGED and now - since > outcome.stale_after
    status = Status.WARNING if stale else STATUS_OF_STATE[name]
    message = describe(name, summary, state, outcome)
    if name == IN_PROGRESS and not outcome.resumable:
        # No later run finishes this pass, so "no difference so far" is no
        # result. An OK here would pass a one-shot check of a changed table.
        status = Status.worst([status, Status.UNKNOWN])
        message = unfinished_text(state, outcome)
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
        rows = plural(summary["rows_checked"], "row")
        return f"{rows} match in {plural(summary['chunks_done'], 'chunk')}"
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
            f"{plural(len(summary['in_flux']), 'chunk')} changed during every "
            f"comparison ({ranges}); compared again on the next pass"
        )
    return diverged_text(summary, outcome)


def diverged_text(summary: dict, outcome: Outcome) -> str:
    """Describe a divergence without ever stating fewer differing rows than
    there are. The listed rows are a lower bound whenever the list reached
    ``max_differences`` or some diverged chunks were not narrowed to rows.
    """
    entries = summary["diverged"]
    if outcome.check == "row_count":
        ranges = chunk_list([entry["chunk"] for entry in entries], outcome.key)
        return (
            f"row counts differ in {plural(len(entries), 'key range')} ({ranges}): "
            f"source {plural(summary['source_rows'], 'row')}, "
            f"target {summary['target_rows']}"
        )
    differences = summary["differences"]
    if not differences:
        ranges = chunk_list([entry["chunk"] for entry in entries], outcome.key)
        return f"data differs in {plural(len(entries), 'chunk')} ({ranges})"
    unlisted = [entry["chunk"] for entry in entries if not entry.get("localised")]
    capped = bool(outcome.max_differences) and (
        len(differences) >= outcome.max_differences
    )
    rows = plural(len(differences), "row")
    counts, keys = kind_counts(differences), key_list(differences)
    if not unlisted and not capped:
        return f"data differs in {rows} ({counts}): {keys}"
    if capped:
        counts += f", listed up to max_differences = {outcome.max_differences}"
    text = f"data differs in at least {rows} ({counts}): {keys}"
    if unlisted:
        ranges = chunk_list(unlisted, outcome.key)
        text += (
            f"; and in {plural(len(unlisted), 'key range')} whose rows are not "
            f"all listed: {ranges}"
        )
    return text


def kind_counts(differences: list[dict]) -> str:
    """Return the differences counted by kind: ``2 changed, 1 missing_on_target``."""
    kinds: dict[str, int] = {}
    for difference in differences:
        kinds[difference["kind"]] = kinds.get(difference["kind"], 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))


def key_list(differences: list[dict]) -> str:
    keys = "; ".join(
        ", ".join(f"{k}={v}" for k, v in difference["key"].items())
        for difference in differences[:SHOWN_KEYS]
    )
    return keys + (", ..." if len(differences) > SHOWN_KEYS else "")


def chunk_list(chunks: list[dict], key: list[str]) -> str:
    summary = [Chunk.from_json(chunk).describe(key) for chunk in chunks[:SHOWN_KEYS]]
    return "; ".join(summary) + ("; ..." if len(chunks) > SHOWN_KEYS else "")


def plural(count: int, noun: str) -> str:
    """Return the count with the noun in singular or plural: ``1 row``, ``2 rows``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def progress_text(state: PassState) -> str:
    done = percent(state)
    text = (
        f"pass in progress: {plural(state.chunks_done, 'chunk')}, "
        f"{plural(state.rows_checked, 'row')}"
    )
    if done is not None:
        text += f", about {done:.0f} %"
    left = eta(state)
    if left is not None:
        text += f", about {left:.0f} s left"
    return text


def unfinished_text(state: PassState, outcome: Outcome) -> str:
    """Describe a pass that stopped unfinished where no later run resumes it."""
    text = (
        f"not validated: the pass did not finish within the check's timeout of "
        f"{outcome.timeout:g} s; it compared {plural(state.chunks_done, 'chunk')}, "
        f"{plural(state.rows_checked, 'row')}"
    )
    done = percent(state)
    if done is not None:
        text += f", about {done:.0f} % of the table"
    if outcome.paused:
        text += f"; paused: {outcome.paused}"
    return text + (
        f"; this run does not resume the pass, so raise checks.{outcome.check}."
        "timeout or read the daemon's result (encmond run resumes its passes)"
    )


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
