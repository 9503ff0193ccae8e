"""The ``errant_writes`` check: transactions on the target that bypassed replication.

Such a write makes the target differ from the source in a way no later
replication repairs, and it cannot be removed from the target's GTID state,
so it blocks a cutover until an operator has reviewed it and listed it
under ``accepted``.
"""

from __future__ import annotations

from encmond import Check, Result, Status, hookimpl
from encmond.parity import accepted_by, errant_gtids, parse_gtid_state
from encmond.settings import Setting, list_of, string


def gtid(value) -> str:
    text = string(value)
    try:
        parse_gtid_state(text)
    except ValueError:
        raise ValueError(
            f"expected a GTID such as 0-2-15 (domain-server_id-sequence), got {text!r}"
        ) from None
    return text


class ErrantWrites(Check):
    """Compares the target's GTID state with the source's, and reads read_only."""

    name = "errant_writes"
    interval = 30.0
    options = {
        "accepted": Setting(
            list_of(gtid),
            [],
            "GTIDs reviewed and accepted as errant; each covers lower sequences "
            "of its domain and server_id",
        ),
    }

    def run(self, ctx):
        # The target first: see errant_gtids.
        target = ctx.target.query_one(
            "SELECT @@server_id AS server_id, @@GLOBAL.gtid_binlog_state AS state, "
            "@@GLOBAL.gtid_current_pos AS current, @@GLOBAL.read_only AS read_only, "
            "@@GLOBAL.log_bin AS log_bin"
        )
        source = ctx.source.query_one(
            "SELECT @@GLOBAL.gtid_binlog_state AS state, "
            "@@GLOBAL.gtid_current_pos AS current"
        )
        return [self.gtid_result(target, source), read_only_result(target)]

    def gtid_result(self, target: dict, source: dict) -> Result:
        found = errant_gtids(
            parse_gtid_state(target["state"], target["current"]),
            parse_gtid_state(source["state"], source["current"]),
        )
        accepted = {
            gtid: reason
            for gtid, reason in found.items()
            if accepted_by(gtid, self.settings["accepted"])
        }
        errant = {gtid: r for gtid, r in found.items() if gtid not in accepted}
        details = {
            "errant": errant,
            "accepted": accepted,
            "target_server_id": target["server_id"],
            "target_gtid_binlog_state": target["state"],
            "target_gtid_current_pos": target["current"],
            "source_gtid_binlog_state": source["state"],
            "source_gtid_current_pos": source["current"],
        }
        metrics = {"errant_gtids": len(errant), "accepted_gtids": len(accepted)}
        if errant:
            listed = "; ".join(f"{g} ({r})" for g, r in list(errant.items())[:5])
            return Result(
                "gtid",
                Status.CRITICAL,
                f"errant writes on the target: {listed}",
                metrics,
                details,
            )
        if not int(target["log_bin"]):
            return Result(
                "gtid",
                Status.WARNING,
                "log_bin is OFF on the target, so a write made there leaves no "
                "GTID and cannot be detected",
                metrics,
                details,
            )
        message = "no errant writes: every GTID on the target came from the source"
        if accepted:
            message += f" or is accepted ({', '.join(accepted)})"
        return Result("gtid", Status.OK, message, metrics, details)


def read_only_result(target: dict) -> Result:
    read_only = bool(int(target["read_only"]))
    metrics = {"read_only": int(read_only)}
    if read_only:
        return Result("read_only", Status.OK, "read_only is ON on the target", metrics)
    return Result(
        "read_only",
        Status.WARNING,
        "read_only is OFF on the target, so any user with write privileges can "
        "change it outside replication; SET GLOBAL read_only = ON until cutover",
        metrics,
    )


@hookimpl
def register_checks():
    return [ErrantWrites]
