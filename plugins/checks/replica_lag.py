"""The ``replica_lag`` check: replication threads, lag signals and catch-up.

Each run reads the source's GTID position first and the target's replica
status after it, so a transaction the target has not received yet was
written before the target was asked. Lag comes from Seconds_Behind_Master,
the GTID distance and, when ``checks.heartbeat.table`` is set, a heartbeat
table; ``signal`` chooses which of them sets ``lag_seconds`` and the alert.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from encmond import Check, Result, Status, hookimpl
from encmond.errors import DatabaseError, ServerUnavailable
from encmond.heartbeat import measure, source_server_id
from encmond.lag import (
    IDLE,
    IO_BEHIND,
    SIGNALS,
    STOPPED,
    GtidHistory,
    LagTrend,
    Retention,
    Signals,
    binlog_retention,
    classify,
    driving_signal,
    format_duration,
    lag_of,
    retention_problems,
)
from encmond.platform import detect_platform
from encmond.replication import (
    parse_gtid_position,
    replica_status,
    source_position,
    transactions_behind,
)
from encmond.settings import Setting, choice, duration, positive_duration

# Each alert condition fires on its own; a result names those it has evidence on.
STOPPED_CONDITIONS = {"stopped": Status.CRITICAL}
LAG_UNKNOWN_CONDITIONS = {"lag_unknown": Status.CRITICAL, "stopped": Status.OK}

IO_RECHECK = 1.0  # seconds to give the IO thread before calling it behind
RETENTION_REFRESH = 600.0  # seconds between two reads of the binlog retention


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


@dataclass
class Memory:
    """State kept between runs for one target."""

    trend: LagTrend
    gtid: GtidHistory = field(default_factory=GtidHistory)
    position: str | None = None
    position_changed_at: float | None = None


@dataclass
class Reading:
    """One run's raw facts: the source's side, the target's, the heartbeat's."""

    source_pos: str | None
    status: dict
    positions: dict
    heartbeat: object = None
    heartbeat_error: str | None = None
    time: float = 0.0


class ReplicaLag(Check):
    """Reads the target's replica status against the source's GTID position.

    The ``replication`` result alerts as separate conditions: ``stopped`` (a
    thread not running, with the server's error), ``lag_unknown`` (NULL lag
    while both threads run), ``lag`` (over a threshold) and ``signals`` (the
    lag signals disagree or one cannot be read).
    """

    name = "replica_lag"
    interval = 5.0
    timeout = 30.0
    replication_dependent = True
    options = {
        "warning": Setting(positive_duration, 30.0, "lag that raises a WARNING"),
        "critical": Setting(positive_duration, 300.0, "lag that raises a CRITICAL"),
        "signal": Setting(
            choice(*SIGNALS),
            "auto",
            "lag signal behind lag_seconds and the alert: seconds_behind_master, "
            "heartbeat, gtid, or auto (the heartbeat when it has a reading)",
        ),
        "eta_window": Setting(
            positive_duration, 300.0, "lag samples used for the catch-up rate and ETA"
        ),
        "retention_margin": Setting(
            duration,
            86400.0,
            "binlog retention on the source below this (RDS's unset retention "
            "included) makes catch_up a WARNING; 0 turns this off",
        ),
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

    def __init__(self, settings):
        super().__init__(settings)
        self.memory: dict[str, Memory] = {}
        self.retention: dict[str, tuple[float, Retention]] = {}
        self.heartbeat_server_id: int | None = None
        self.heartbeat_failing: dict[str, str] = {}  # target -> last error logged

    def run(self, ctx):
        memory = self.memory.setdefault(
            ctx.name, Memory(LagTrend(self.settings["eta_window"]))
        )
        reading = self.read(ctx)
        if reading is None:
            return [
                Result(
                    subject="replication",
                    status=Status.CRITICAL,
                    message="replication is not configured on this server "
                    "(SHOW REPLICA STATUS returned no row)",
                    metrics={"lag_known": 0, "io_running": 0, "sql_running": 0},
                    conditions=STOPPED_CONDITIONS,
                )
            ]
        signals = self.signals(reading, memory)
        replication = self.evaluate(reading, signals)
        lag = replication.metrics["lag_seconds"]
        memory.trend.add(reading.time, lag)
        return [replication, self.catch_up(ctx, memory, lag)]

    # Reading

    def read(self, ctx) -> Reading | None:
        connection_name = ctx.target.config.replication_connection
        source_pos = self.source_position(ctx)
        status = replica_status(ctx.target, connection_name)
        if status is None:
            return None
        if source_pos is not None and self.io_suspect(status, source_pos):
            time.sleep(IO_RECHECK)
            status = replica_status(ctx.target, connection_name) or status
        positions = ctx.target.query_one(
            "SELECT @@GLOBAL.gtid_slave_pos AS applied, "
            "@@GLOBAL.gtid_current_pos AS current"
        )
        reading = Reading(source_pos, status, positions or {}, time=time.time())
        if source_pos is not None:
            self.read_heartbeat(ctx, reading)
        return reading

    def source_position(self, ctx) -> str | None:
        try:
            return source_position(ctx.source)
        except ServerUnavailable:
            return None

    @staticmethod
    def io_suspect(status: dict, source_pos: str) -> bool:
        """Return whether the IO thread looks behind while the server reports 0."""
        if status["lag_seconds"] != 0 or status["gtid_io_pos"] is None:
            return False
        return any(transactions_behind(source_pos, status["gtid_io_pos"]).values())

    def read_heartbeat(self, ctx, reading: Reading) -> None:
        settings = ctx.config.checks.get("heartbeat") or {}
        table = settings.get("table")
        if table is None:
            return
        try:
            server_id = settings.get("server_id") or self.source_id(ctx)
            reading.heartbeat = measure(
                ctx.source, ctx.target, table, server_id, settings["interval"]
            )
        except DatabaseError as exc:
            if isinstance(exc, ServerUnavailable) and exc.server == ctx.target.name:
                raise
            reading.heartbeat_error = str(exc)
            if self.heartbeat_failing.get(ctx.name) != reading.heartbeat_error:
                ctx.log.warning(
                    "heartbeat reading on %s failed: %s; heartbeat lag stays unknown "
                    "until it works",
                    ctx.name,
                    exc,
                )
            self.heartbeat_failing[ctx.name] = reading.heartbeat_error
            return
        if self.heartbeat_failing.pop(ctx.name, None) is not None:
            ctx.log.info("heartbeat reading on %s works again", ctx.name)

    def source_id(self, ctx) -> int:
        if self.heartbeat_server_id is None:
            self.heartbeat_server_id = source_server_id(ctx.source)
        return self.heartbeat_server_id

    # Reconciling

    def signals(self, reading: Reading, memory: Memory) -> Signals:
        status = reading.status
        running = status["io_running"] == "Yes" and status["sql_running"] == "Yes"
        behind = io_behind = gtid_lag = gtid_precision = idle = None
        if reading.source_pos is not None:
            behind = transactions_behind(
                reading.source_pos, reading.positions.get("applied")
            )
            if status["gtid_io_pos"] is not None:
                io_behind = transactions_behind(
                    reading.source_pos, status["gtid_io_pos"]
                )
            memory.gtid.record(parse_gtid_position(reading.source_pos), reading.time)
            gtid_lag, gtid_precision = memory.gtid.lag(
                parse_gtid_position(reading.positions.get("applied")), reading.time
            )
            idle = self.idle_seconds(memory, reading)
        return Signals(
            threads_running=running,
            seconds_behind_master=status["lag_seconds"],
            transactions_behind=behind,
            io_transactions_behind=io_behind,
            gtid_lag=gtid_lag,
            gtid_lag_precision=gtid_precision,
            heartbeat=reading.heartbeat,
            idle_seconds=idle,
        )

    @staticmethod
    def idle_seconds(memory: Memory, reading: Reading) -> float | None:
        """Return how long the source position has stood still, None if it moved."""
        if memory.position != reading.source_pos:
            first = memory.position is None
            memory.position = reading.source_pos
            memory.position_changed_at = None if first else reading.time
            return None
        if memory.position_changed_at is None:
            memory.position_changed_at = reading.time
            return None
        return reading.time - memory.position_changed_at

    def evaluate(self, reading: Reading, signals: Signals) -> Result:
        state = classify(signals)
        signal = driving_signal(self.settings["signal"], signals)
        lag = lag_of(signal, signals)
        metrics = lag_metrics(reading, signals, lag)
        details = lag_details(reading, signals, state, signal)
        # The thresholds let a reader colour lag_seconds without the config.
        details["warning_seconds"] = self.settings["warning"]
        details["critical_seconds"] = self.settings["critical"]
        status, message, conditions = self.judge(reading, signals, state, signal, lag)
        return Result(
            "replication", status, message, metrics, details, conditions=conditions
        )

    def judge(self, reading, signals, state, signal, lag):
        """Return the status, the message and the status of each alert condition."""
        problem = thread_problem(reading.status)
        if problem:
            return Status.CRITICAL, f"{STOPPED}: {problem}", STOPPED_CONDITIONS
        if signals.seconds_behind_master is None:
            return (
                Status.CRITICAL,
                f"{STOPPED}: lag unknown, Seconds_Behind_Master is NULL",
                LAG_UNKNOWN_CONDITIONS,
            )
        lag_status = Status.OK
        if lag is not None and lag >= self.settings["critical"]:
            lag_status = Status.CRITICAL
        elif lag is not None and lag >= self.settings["warning"]:
            lag_status = Status.WARNING
        warnings = self.warnings(reading, signals, state, signal, lag)
        signals_status = Status.WARNING if warnings else Status.OK
        status = Status.worst([lag_status, signals_status])
        conditions = {
            "lag": lag_status,
            "signals": signals_status,
            "lag_unknown": Status.OK,
            "stopped": Status.OK,
        }
        parts = [f"{state}: lag {format_duration(lag)} ({signal})"]
        parts += side_by_side(signals, signal)
        if reading.status["sql_delay"]:
            parts.append(f"MASTER_DELAY {reading.status['sql_delay']} s")
        if state == IDLE:
            parts.append(
                f"no writes on the source for {format_duration(signals.idle_seconds)}"
                ", so a lag of 0 proves little without a heartbeat"
            )
        return status, ", ".join(parts + warnings), conditions

    def warnings(self, reading, signals, state, signal, lag) -> list[str]:
        found = []
        if state == IO_BEHIND:
            found.append(
                f"Seconds_Behind_Master is 0 but the IO thread has not received "
                f"{signals.io_behind} transactions the source wrote"
            )
        if reading.heartbeat_error:
            found.append(f"heartbeat unreadable: {reading.heartbeat_error}")
        elif signals.heartbeat is not None and signals.heartbeat.lag is None:
            found.append(f"heartbeat: {signals.heartbeat.message}")
        if lag is None:
            found.append(f"the {signal} signal has no reading")
        return found

    # Catch-up

    def catch_up(self, ctx, memory: Memory, lag: float | None) -> Result:
        rate = memory.trend.rate()
        eta = memory.trend.eta(lag)
        retention = self.source_retention(ctx)
        metrics = {
            "lag_rate": rate,
            "eta_seconds": eta,
            "binlog_retention_seconds": retention.seconds if retention else None,
        }
        details = {
            "samples": len(memory.trend.samples),
            "window_seconds": memory.trend.window,
            "retention_setting": retention.setting if retention else None,
            "retention_known": retention.known if retention else None,
        }
        problems = retention_problems(retention, eta, self.settings["retention_margin"])
        if lag is None:
            status, message = Status.UNKNOWN, "lag unknown, so no ETA"
        else:
            status, message = Status.OK, catch_up_message(lag, rate, eta)
        if problems:
            status = Status.WARNING
            message += "; " + "; ".join(problems)
        elif retention:
            message += f"; binlog retention {retention.setting}"
        return Result("catch_up", status, message, metrics, details)

    def source_retention(self, ctx) -> Retention | None:
        """Return the source's binlog retention, read again every 10 minutes."""
        cached = self.retention.get(ctx.source.name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < RETENTION_REFRESH:
            return cached[1]
        try:
            retention = binlog_retention(ctx.source, detect_platform(ctx.source))
        except ServerUnavailable:
            return cached[1] if cached else None
        self.retention[ctx.source.name] = (now, retention)
        return retention


def side_by_side(signals: Signals, shown: str) -> list[str]:
    """Describe the signals other than the one already shown, for the message."""
    parts = []
    if shown != "seconds_behind_master":
        parts.append(f"Seconds_Behind_Master {signals.seconds_behind_master}")
    if signals.heartbeat_lag is not None and shown != "heartbeat":
        parts.append(f"heartbeat {format_duration(signals.heartbeat_lag)}")
    behind = signals.behind
    if behind is not None:
        parts.append(f"{behind} transaction{'s' if behind != 1 else ''} behind")
    return parts


def catch_up_message(lag: float, rate: float | None, eta: float | None) -> str:
    if lag == 0:
        return "caught up"
    if rate is None:
        return f"lag {format_duration(lag)}; the trend needs more samples"
    per_minute = rate * 60
    if eta is None:
        return (
            f"not catching up: lag {format_duration(lag)} changes by "
            f"{per_minute:+.1f} s per minute"
        )
    return (
        f"catching up: lag {format_duration(lag)} shrinks by "
        f"{-per_minute:.1f} s per minute, ETA {format_duration(eta)}"
    )


def lag_metrics(reading: Reading, signals: Signals, lag: float | None) -> dict:
    status = reading.status
    heartbeat = signals.heartbeat
    return {
        "lag_seconds": lag,
        "lag_known": int(lag is not None),
        "io_running": int(status["io_running"] == "Yes"),
        "sql_running": int(status["sql_running"] == "Yes"),
        "transactions_behind": signals.behind,
        "io_transactions_behind": signals.io_behind,
        "seconds_behind_master": signals.seconds_behind_master,
        "heartbeat_lag_seconds": signals.heartbeat_lag,
        "heartbeat_precision_seconds": heartbeat.precision if heartbeat else None,
        "gtid_lag_seconds": signals.gtid_lag,
        "gtid_lag_precision_seconds": signals.gtid_lag_precision,
        "clock_offset_seconds": heartbeat.clock_offset if heartbeat else None,
        "sql_delay_seconds": status["sql_delay"],
    }


def lag_details(reading: Reading, signals: Signals, state: str, signal: str) -> dict:
    return {
        **reading.status,
        "source_gtid_binlog_pos": reading.source_pos,
        "gtid_slave_pos": reading.positions.get("applied"),
        "gtid_current_pos": reading.positions.get("current"),
        "transactions_behind": signals.behind,
        "transactions_behind_by_domain": signals.transactions_behind,
        "io_transactions_behind_by_domain": signals.io_transactions_behind,
        "lag_state": state,
        "lag_signal": signal,
        "idle_seconds": signals.idle_seconds,
        "heartbeat": reading.heartbeat.to_dict() if reading.heartbeat else None,
        "heartbeat_error": reading.heartbeat_error,
    }


@hookimpl
def register_checks():
    return [ReplicaLag]
