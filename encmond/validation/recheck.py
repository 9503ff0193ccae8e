"""Deciding whether a chunk that differed once is in flux or has diverged.

A target read waits for a position at or after the source snapshot before
it, and can only have applied what the source had binlogged by the next
source snapshot. So when two consecutive source snapshots measure a chunk
the same, the target read between them must measure the same too, unless
the target has diverged (or the source changed the chunk and changed it back
in between). A chunk is "diverged" after two such confirmations in a row:
source S1 = S2 = S3 while the target read after S1 and the one after S2 both
differ. A target read equal to its source read means "match". A chunk whose
source side changes in every round is "in flux" and is retried later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from encmond.validation.pinned import Pinned

MATCH = "match"
DIVERGED = "diverged"
IN_FLUX = "in_flux"
BEHIND = "behind"
CONFIRMATIONS = 2


@dataclass
class Observation:
    """One source read of a chunk and the target read that followed it."""

    source: tuple[Any, ...]
    target: tuple[Any, ...] | None
    position: str


def confirm(
    pinned: Pinned, sql: str, args: list[Any], first: Observation, rounds: int
) -> tuple[str, Observation]:
    """Re-read a chunk whose first observation differed, up to ``rounds`` times.

    Returns the verdict (MATCH, DIVERGED, IN_FLUX or BEHIND) and the last
    observation, whose values are the evidence for the verdict.
    """
    previous = first
    confirmations = 0
    for _ in range(rounds):
        source, target = pinned.read_both(sql, args)
        if source.value == previous.source:
            confirmations += 1
            if confirmations >= CONFIRMATIONS:
                return DIVERGED, previous
        else:
            confirmations = 0
        if target is None:
            return BEHIND, Observation(source.value, None, source.position)
        current = Observation(source.value, target.value, source.position)
        if target.value == source.value:
            return MATCH, current
        previous = current
    return IN_FLUX, previous
