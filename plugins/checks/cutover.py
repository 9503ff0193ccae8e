"""The ``cutover`` check: the GO/NO-GO verdict for one target, from the others.

Its status is OK whether the verdict is GO or NO-GO: NO-GO is the normal
state while a target catches up, and each blocker raises its own alert. The
verdict is in the message, in ``metrics["go"]`` and, with every fact behind
it, in ``details``.
"""

from __future__ import annotations

from encmond import Check, Result, Status, hookimpl
from encmond.cutover import evaluate
from encmond.settings import Setting, positive_duration
from encmond.state import State


class Cutover(Check):
    """Judges whether the target can take over from the source now."""

    name = "cutover"
    interval = 15.0
    depends_on = (
        "replica_lag",
        "checksum",
        "encryption",
        "errant_writes",
        "schema",
        "replication_filters",
    )
    options = {
        "max_lag": Setting(positive_duration, 5.0, "highest lag that allows GO"),
        "lag_window": Setting(
            positive_duration, 300.0, "how long lag must have stayed within max_lag"
        ),
        "validation_max_age": Setting(
            positive_duration,
            3600.0,
            "oldest clean validation pass of a table that still counts",
        ),
    }

    def run(self, ctx):
        verdict = evaluate(ctx.state or State(), ctx.config, ctx.name, self.settings)
        return [
            Result(
                "verdict",
                Status.OK,
                verdict.summary(),
                {"go": int(verdict.go), "blockers": len(verdict.blockers)},
                verdict.to_dict(),
            )
        ]


@hookimpl
def register_checks():
    return [Cutover]
