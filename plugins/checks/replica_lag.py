"""The ``replica_lag`` check: replication threads, errors, lag and GTID distance."""

from __future__ import annotations

from encmond import Check, Result, Status, hookimpl
from encmond.errors import ServerUnavailable
from encmond.replication import replica_status, source_position, transactions_behind
from encmond.settings import Setting, duration, positive_duration

# Each condition alerts on its own; a result names those it has evidence on.
STOPPED = {"stopped": Status.CRITICAL}
LAG_UNKNOWN = {"lag_unknown": Status.CRITICAL, "stopped": Status.OK}


def thread_problem(status: dict) -> str | None:
    """Describe stopped or connecting replication threads, with the server's error."""
    problems = []
    if status["io_running"] != "Yes":
        text = f"IO thread {status['io_running'] or 'not running'}"
        if status["last_io_errno"]:
            text += f" (error {status['last_io_errno']}: {status['last_io_error']})"
        problems.append(text)
    if status["sql_running"] != "Yes":
        text = f"SQL thread {status['sql_running'] or 'not running'}"
        if status["last_sql_errno"]:
            text += f" (error {status['last_sql_errno']}: {status['last_sql_error']})"
        problems.append(text)
    return ", ".join(problems) or None


class ReplicaLag(Check):
    """Reads the target's replica status and the source's GTID position.

    The ``replication`` result alerts as three conditions: ``stopped`` (a
    thread not running, with the server's error), ``lag_unknown`` (NULL lag
    while both threads run) and ``lag`` (over a threshold).
    """

    name = "replica_lag"
    interval = 5.0
    timeout = 30.0
    replication_dependent = True
    options = {
        "warning": Setting(positive_duration, 30.0, "lag that raises a WARNING"),
        "critical": Setting(positive_duration, 300.0, "lag that raises a CRITICAL"),
        "for": Setting(
            duration, 60.0, "how long a condition holds before its alert fires"
        ),
        "keep_firing_for": Setting(
            duration, 60.0, "how long a condition stays clear before it resolves"
        ),
    }

    @classmethod
    def check_settings(cls, settings):
        if settings["warning"] > settings["critical"]:
            raise ValueError(
                f"warning ({settings['warning']:g} s) must not exceed critical "
                f"({settings['critical']:g} s)"
            )

    def run(self, ctx):
        connection_name = ctx.target.config.replication_connection
        status, source_pos = ctx.parallel(
            lambda: replica_status(ctx.target, connection_name),
            lambda: self.source_position(ctx),
        )
        if status is None:
            return [
                Result(
                    subject="replication",
                    status=Status.CRITICAL,
                    message="replication is not configured on this server "
                    "(SHOW REPLICA STATUS returned no row)",
                    metrics={"lag_known": 0, "io_running": 0, "sql_running": 0},
                    conditions=STOPPED,
                )
            ]
        positions = ctx.target.query_one(
            "SELECT @@GLOBAL.gtid_slave_pos AS applied, "
            "@@GLOBAL.gtid_current_pos AS current"
        )
        return [self.evaluate(status, source_pos, positions or {})]

    def source_position(self, ctx) -> str | None:
        try:
            return source_position(ctx.source)
        except ServerUnavailable:
            return None

    def evaluate(self, status: dict, source_pos: str | None, positions: dict) -> Result:
        lag = status["lag_seconds"]
        behind = None
        if source_pos is not None:
            behind = sum(
                transactions_behind(source_pos, positions.get("applied")).values()
            )
        details = {
            **status,
            "source_gtid_binlog_pos": source_pos,
            "gtid_slave_pos": positions.get("applied"),
            "gtid_current_pos": positions.get("current"),
            "transactions_behind": behind,
        }
        metrics = {
            "lag_seconds": lag,
            "lag_known": int(lag is not None),
            "io_running": int(status["io_running"] == "Yes"),
            "sql_running": int(status["sql_running"] == "Yes"),
            "transactions_behind": behind,
        }
        problem = thread_problem(status)
        if problem:
            return Result(
                "replication",
                Status.CRITICAL,
                f"replication stopped: {problem}",
                metrics,
                details,
                conditions=STOPPED,
            )
        if lag is None:
            return Result(
                "replication",
                Status.CRITICAL,
                "lag unknown: Seconds_Behind_Master is NULL",
                metrics,
                details,
                conditions=LAG_UNKNOWN,
            )
        message = f"lag {lag} s"
        if behind is not None:
            message += f", {behind} transaction{'s' if behind != 1 else ''} behind"
        state = Status.OK
        if lag >= self.settings["critical"]:
            state = Status.CRITICAL
        elif lag >= self.settings["warning"]:
            state = Status.WARNING
        conditions = {"lag": state, "lag_unknown": Status.OK, "stopped": Status.OK}
        return Result(
            "replication", state, message, metrics, details, conditions=conditions
        )


@hookimpl
def register_checks():
    return [ReplicaLag]
