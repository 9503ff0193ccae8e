"""The ``replication_filters`` check: filters that make a target skip tables.

A configured table that the target's filters skip can never match the
source, so it is CRITICAL. GTID domain filters can skip changes to any table
and are a WARNING. RDS's rules for its own ``mysql.rds_*`` tables, and rules
that touch no configured table, are listed but not alerted on.
"""

from __future__ import annotations

from encmond import Check, Result, Status, hookimpl
from encmond.filters import FilterReport, analyse
from encmond.platform import RDS, detect_platform
from encmond.replication import replica_status


class ReplicationFilters(Check):
    """Reads the target's replication filters and the tables they skip."""

    name = "replication_filters"
    interval = 60.0

    def run(self, ctx):
        target = ctx.target
        status = replica_status(target, target.config.replication_connection)
        if status is None:
            return [
                Result(
                    "filters",
                    Status.UNKNOWN,
                    "replication is not configured on this server, so it has no "
                    "filters to read",
                )
            ]
        rds = detect_platform(target) == RDS
        report = analyse(status, ctx.tables, rds)
        return [filters_result(report)]


def filters_result(report: FilterReport) -> Result:
    status = Status.OK
    parts = []
    if report.skipped:
        status = Status.CRITICAL
        count = len(report.skipped)
        listed = "; ".join(f"{t} ({why})" for t, why in report.skipped.items())
        parts.append(
            f"{count} configured table{'s' if count > 1 else ''} skipped by "
            f"replication: {listed}"
        )
    if report.domains:
        status = Status.worst([status, Status.WARNING])
        parts.append(
            "GTID domain filters can skip changes to any table: "
            + ", ".join(map(str, report.domains))
        )
    if report.rds:
        parts.append(
            "RDS's own filters for its mysql.rds_* tables (expected): "
            + ", ".join(map(str, report.rds))
        )
    if report.other and not report.skipped:
        parts.append(
            "filters that skip no configured table: "
            + ", ".join(map(str, report.other))
        )
    elif report.other:
        parts.append("all filters: " + ", ".join(map(str, report.other)))
    return Result(
        "filters",
        status,
        "; ".join(parts) or "no replication filters",
        metrics={
            "filters": len(report.rules),
            "skipped_tables": len(report.skipped),
        },
        details={
            "skipped_tables": report.skipped,
            "domain_filters": [str(rule) for rule in report.domains],
            "rds_filters": [str(rule) for rule in report.rds],
            "other_filters": [str(rule) for rule in report.other],
        },
    )


@hookimpl
def register_checks():
    return [ReplicationFilters]
