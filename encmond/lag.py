"""Replica lag from several signals, reconciled, with a catch-up trend.

The signals are ``Seconds_Behind_Master`` (whole seconds, NULL while a
thread is down), the GTID distance per replication domain (transactions the
target has yet to apply, and how long ago the oldest of them was written),
and the heartbeat (``encmond.heartbeat``). Each can mislead alone: the server
reports 0 while its IO thread has not fetched the newest events, and every
signal reads 0 on a source that writes nothing. ``classify`` names these
cases as states.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

from encmond.db import Database
from encmond.errors import DatabaseError, ServerUnavailable
from encmond.heartbeat import HeartbeatReading

STOPPED = "replication stopped"
IO_BEHIND = "IO thread behind"
IDLE = "idle"
BEHIND = "behind"
CAUGHT_UP = "caught up"

SBM = "seconds_behind_master"
GTID = "gtid"
HEARTBEAT = "heartbeat"
SIGNALS = ("auto", SBM, HEARTBEAT, GTID)

MAX_SAMPLES = 10000  # per domain or target; bounds memory over days of lag
MIN_TREND_SAMPLES = 3
SHRINKING = -0.001  # lag seconds per second below which lag counts as shrinking


@dataclass
class Signals:
    """The signals of one run; ``None`` means that signal had no reading."""

    threads_running: bool
    seconds_behind_master: int | None
    transactions_behind: dict[int, int] | None
    io_transactions_behind: dict[int, int] | None
    gtid_lag: float | None
    heartbeat: HeartbeatReading | None
    idle_seconds: float | None = None
    gtid_lag_precision: float | None = None

    @property
    def behind(self) -> int | None:
        if self.transactions_behind is None:
            return None
        return sum(self.transactions_behind.values())

    @property
    def io_behind(self) -> int | None:
        if self.io_transactions_behind is None:
            return None
        return sum(self.io_transactions_behind.values())

    @property
    def heartbeat_lag(self) -> float | None:
        return self.heartbeat.lag if self.heartbeat else None


def classify(signals: Signals) -> str:
    """Name the replication state that the signals describe together."""
    if not signals.threads_running or signals.seconds_behind_master is None:
        return STOPPED
    if signals.seconds_behind_master == 0 and (signals.io_behind or 0) > 0:
        return IO_BEHIND
    if (
        signals.heartbeat is None
        and signals.idle_seconds is not None
        and not signals.behind
    ):
        return IDLE
    lags = [signals.seconds_behind_master, signals.heartbeat_lag, signals.gtid_lag]
    if (signals.behind or 0) > 0 or any(lag is not None and lag >= 1 for lag in lags):
        return BEHIND
    return CAUGHT_UP


def driving_signal(choice: str, signals: Signals) -> str:
    """Return the signal that sets ``lag_seconds``: the configured one, or for
    ``auto`` the heartbeat when it has a reading, else Seconds_Behind_Master."""
    if choice != "auto":
        return choice
    if signals.heartbeat is not None and signals.heartbeat.lag is not None:
        return HEARTBEAT
    return SBM


def lag_of(signal: str, signals: Signals) -> float | None:
    """Return the lag in seconds that ``signal`` reports, None when unknown."""
    if not signals.threads_running:
        return None
    if signal == HEARTBEAT:
        return signals.heartbeat_lag
    if signal == GTID:
        return signals.gtid_lag
    return signals.seconds_behind_master


@dataclass
class GtidHistory:
    """When each source sequence number was first seen, per domain.

    The oldest transaction the target has not applied was written between
    the last sample that did not include it and the first one that did, so
    its age is known to within half the time between two samples.
    """

    samples: dict[int, collections.deque] = field(default_factory=dict)

    def record(self, position: dict[int, tuple[int, int]], now: float) -> None:
        for domain, (_, sequence) in position.items():
            history = self.samples.setdefault(
                domain, collections.deque(maxlen=MAX_SAMPLES)
            )
            if not history or history[-1][1] != sequence:
                history.append((now, sequence))

    def lag(
        self, applied: dict[int, tuple[int, int]], now: float
    ) -> tuple[float | None, float | None]:
        """Return the age of the oldest unapplied transaction and its precision.

        The precision is None when that transaction predates the first
        sample, so the age is a lower bound. Returns (None, None) without
        samples.
        """
        if not self.samples:
            return None, None
        worst: tuple[float, float | None] = (0.0, 0.0)
        for domain, history in self.samples.items():
            done = applied.get(domain, (0, 0))[1]
            age = self.domain_lag(history, done, now)
            if age is not None and age[0] > worst[0]:
                worst = age
        return worst

    @staticmethod
    def domain_lag(
        history: collections.deque, done: int, now: float
    ) -> tuple[float, float | None] | None:
        for index, (seen, sequence) in enumerate(history):
            if sequence <= done:
                continue
            if index == 0:
                return now - seen, None
            # Samples before the last applied one are no longer needed.
            for _ in range(index - 1):
                history.popleft()
            before = history[0][0]
            return now - (before + seen) / 2, (seen - before) / 2
        return None


@dataclass
class LagTrend:
    """Lag samples over ``window`` seconds, for the rate of change and an ETA."""

    window: float
    samples: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=MAX_SAMPLES)
    )

    def add(self, now: float, lag: float | None) -> None:
        """Add a sample; an unknown lag starts the trend over."""
        if lag is None:
            self.samples.clear()
            return
        self.samples.append((now, lag))
        while self.samples and self.samples[0][0] < now - self.window:
            self.samples.popleft()

    def rate(self) -> float | None:
        """Return the least-squares slope in lag seconds per second, if known."""
        if len(self.samples) < MIN_TREND_SAMPLES:
            return None
        times = [sample[0] for sample in self.samples]
        lags = [sample[1] for sample in self.samples]
        mean_time = sum(times) / len(times)
        mean_lag = sum(lags) / len(lags)
        spread = sum((t - mean_time) ** 2 for t in times)
        if spread == 0:
            return None
        covariance = sum(
            (t - mean_time) * (lag - mean_lag)
            for t, lag in zip(times, lags, strict=True)
        )
        return covariance / spread

    def eta(self, lag: float | None) -> float | None:
        """Return the seconds until lag reaches 0 at the current rate.

        0 when there is no lag; None when the lag is unknown or not shrinking.
        """
        if lag is None:
            return None
        if lag == 0:
            return 0.0
        rate = self.rate()
        if rate is None or rate > SHRINKING:
            return None
        return lag / -rate


@dataclass
class Retention:
    """How long the source keeps binary logs.

    ``seconds`` None means forever, unless ``known`` is false: then reading
    the retention failed and ``setting`` says why. ``fix`` is the statement
    that sets a longer retention.
    """

    seconds: float | None
    setting: str
    fix: str = ""
    known: bool = True


RDS_FIX = "CALL mysql.rds_set_configuration('binlog retention hours', <hours>)"
MARIADB_FIX = "SET GLOBAL binlog_expire_logs_seconds = <seconds>"


def binlog_retention(db: Database, platform: str) -> Retention:
    """Read the source's binlog retention.

    On RDS it is ``binlog retention hours`` from
    ``mysql.rds_show_configuration``, where NULL means that RDS keeps no
    binary logs for replication; elsewhere ``binlog_expire_logs_seconds``,
    else ``expire_logs_days``, where 0 turns automatic purging off.
    """
    if platform == "rds":
        return rds_retention(db)
    values = db.variables("binlog_expire_logs_seconds", "expire_logs_days")
    seconds = float(values.get("binlog_expire_logs_seconds") or 0)
    if seconds > 0:
        return Retention(
            seconds, f"binlog_expire_logs_seconds={seconds:g}", MARIADB_FIX
        )
    days = float(values.get("expire_logs_days") or 0)
    if days > 0:
        return Retention(days * 86400, f"expire_logs_days={days:g}", MARIADB_FIX)
    return Retention(None, "binlog_expire_logs_seconds=0 (never purged)")


def rds_retention(db: Database) -> Retention:
    try:
        rows = db.query("CALL mysql.rds_show_configuration")
    except ServerUnavailable:
        raise
    except DatabaseError as exc:
        return Retention(
            None,
            f"unknown: mysql.rds_show_configuration failed: {exc}",
            known=False,
        )
    for row in rows:
        if str(row.get("name", "")).lower() == "binlog retention hours":
            value = row.get("value")
            if value in (None, "", "NULL"):
                return Retention(
                    0.0,
                    "binlog retention hours=NULL (RDS keeps no binary logs for "
                    "replication)",
                    RDS_FIX,
                )
            hours = float(value)
            return Retention(hours * 3600, f"binlog retention hours={hours:g}", RDS_FIX)
    return Retention(
        None,
        "unknown: mysql.rds_show_configuration has no 'binlog retention hours' row",
        known=False,
    )


def retention_problems(
    retention: Retention | None, eta: float | None, margin: float
) -> list[str]:
    """Describe how the source's binlog retention endangers the target.

    A retention shorter than ``margin`` seconds (0 turns this off) is one
    problem, and so is one that could not be read, because RDS keeps no
    binary logs for replication until it is set. A catch-up ETA past the
    retention is another.
    """
    if retention is not None and not retention.known and margin > 0:
        return [
            f"the source's binlog retention is {retention.setting}, and RDS keeps "
            "no binary logs for replication unless binlog retention hours is set"
        ]
    if retention is None or retention.seconds is None:
        return []
    problems = []
    if margin > 0 and retention.seconds < margin:
        problems.append(
            f"the source's binlog retention ({retention.setting}) is shorter than "
            f"retention_margin ({format_duration(margin)}), so a target that "
            "stops replicating for longer cannot resume; fix with: "
            f"{retention.fix}"
        )
    if eta is not None and eta > retention.seconds:
        problems.append(
            f"the ETA passes the source's binlog retention ({retention.setting}), "
            "so binlogs the target still needs may be purged before it catches up"
        )
    return problems


def format_duration(seconds: float | None) -> str:
    """Format seconds for messages: 0.42 s, 12 s, 5 min, 5 min 3 s, 2 h 5 min."""
    if seconds is None or math.isnan(seconds):
        return "unknown"
    if seconds == int(seconds) and seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")
