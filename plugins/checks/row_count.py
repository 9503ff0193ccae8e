"""The ``row_count`` check: exact COUNT(*) on source and target, compared."""

from __future__ import annotations

from encmond import hookimpl
from encmond.compare import TableCheck, compare, comparison_result
from encmond.settings import Setting, positive_duration


class RowCount(TableCheck):
    """Compares exact row counts, rechecking a difference once caught up."""

    name = "row_count"
    interval = 60.0
    options = {
        "wait_timeout": Setting(
            positive_duration,
            30.0,
            "how long a recheck waits for the target to reach the source position",
        ),
    }

    def compare_table(self, ctx, table):
        settings = self.settings_for(table)
        timeout = settings["timeout"]

        def measure(db):
            with db.session(read_timeout=timeout) as session:
                return session.value(f"SELECT COUNT(*) FROM {table.quoted}")

        comparison = compare(ctx, measure, settings["wait_timeout"])
        metrics = {
            "source_rows": comparison.source,
            "target_rows": comparison.target,
            "difference": None
            if None in (comparison.source, comparison.target)
            else comparison.target - comparison.source,
        }
        return comparison_result(
            table, comparison, "row count", metrics, settings["wait_timeout"]
        )


@hookimpl
def register_checks():
    return [RowCount]
