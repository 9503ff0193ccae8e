"""The ``schema`` check: each configured table defined the same on both servers.

Columns (position, type, nullability, default, character set, collation,
extra), indexes, foreign keys, engine and table collation are compared.
Encryption table options are meant to differ, so they are left out. A difference,
or a table not on the target yet, seen while the target is behind is compared
again once it has applied the source's position.
"""

from __future__ import annotations

from encmond import Check, Result, Status, hookimpl
from encmond.compare import (
    BEHIND,
    DIVERGED,
    MATCH,
    MISSING,
    compare,
    not_on_target_yet,
)
from encmond.parity import describe_tables, schema_differences
from encmond.settings import Setting, positive_duration


class Schema(Check):
    """Compares table definitions from information_schema on both servers."""

    name = "schema"
    interval = 300.0
    options = {
        "wait_timeout": Setting(
            positive_duration,
            60.0,
            "how long a recheck waits for the target to reach the source position",
        ),
    }

    def run(self, ctx):
        if not ctx.tables:
            return []
        comparison = compare(
            ctx,
            lambda db: describe_tables(db, ctx.tables),
            self.settings["wait_timeout"],
        )
        return [
            self.table_result(
                str(table),
                comparison.source[str(table)],
                comparison.target[str(table)],
                comparison,
            )
            for table in ctx.tables
        ]

    def table_result(self, subject, source, target, comparison) -> Result:
        state = comparison.state
        if state == BEHIND and source is not None and target is None:
            return Result(
                subject,
                Status.UNKNOWN,
                not_on_target_yet(comparison.position, self.settings["wait_timeout"]),
                {"differences": None},
                {"state": BEHIND, "missing_on": ["target"]},
            )
        missing = [
            side
            for side, found in (("source", source), ("target", target))
            if found is None
        ]
        if missing:
            return Result(
                subject,
                Status.CRITICAL,
                f"table missing on the {' and '.join(missing)}",
                {"differences": None},
                {"state": MISSING, "missing_on": missing},
            )
        differences = schema_differences(source, target)
        details = {"differences": differences, "source": source, "target": target}
        metrics = {"differences": len(differences)}
        if not differences:
            message = (
                f"same definition: {len(source['columns'])} columns, "
                f"{len(source['keys'])} key{'s' * (len(source['keys']) != 1)}"
            )
            return Result(
                subject, Status.OK, message, metrics, details | {"state": MATCH}
            )
        if state == DIVERGED:
            return Result(
                subject,
                Status.CRITICAL,
                "definition differs: " + "; ".join(differences),
                metrics,
                details | {"state": DIVERGED},
            )
        reason = "the target is behind" if state == BEHIND else "a definition changed"
        return Result(
            subject,
            Status.UNKNOWN,
            f"definition differs while {reason}: {'; '.join(differences)}; "
            "compared again on the next run",
            metrics,
            details | {"state": state},
        )


@hookimpl
def register_checks():
    return [Schema]
