"""The ``checksum`` check: CHECKSUM TABLE on source and target, compared."""

from __future__ import annotations

from encmond import hookimpl
from encmond.compare import TableCheck, compare, comparison_result
from encmond.settings import Setting, positive_duration


class Checksum(TableCheck):
    """Compares whole-table checksums, rechecking a difference once caught up."""

    name = "checksum"
    interval = 900.0
    options = {
        "wait_timeout": Setting(
            positive_duration,
            60.0,
            "how long a recheck waits for the target to reach the source position",
        ),
    }

    def compare_table(self, ctx, table):
        settings = self.settings_for(table)
        timeout = settings["timeout"]

        def measure(db):
            with db.session(read_timeout=timeout) as session:
                row = session.query_one(f"CHECKSUM TABLE {table.quoted}")
            return row["Checksum"] if row else None

        comparison = compare(ctx, measure, settings["wait_timeout"])
        matched = int(comparison.source == comparison.target)
        return comparison_result(
            table,
            comparison,
            "checksum",
            {"match": matched},
            settings["wait_timeout"],
        )


@hookimpl
def register_checks():
    return [Checksum]
