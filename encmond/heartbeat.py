"""Heartbeat lag: a pt-heartbeat table, its writer, and sub-second readings.

The table has pt-heartbeat's layout (``pt-heartbeat --create-table``): one
row per writing server, keyed by ``server_id``, whose ``ts`` column contains the
write time as text such as ``2026-05-01T12:34:56.123456``. encmond reads
``ts`` as UTC (pt-heartbeat ``--utc``) on the source server's clock: its own
writer takes ``UTC_TIMESTAMP(6)`` on the source, and pt-heartbeat is expected
to run on the source host.

A reading polls the target's row until it changes. The new row's apply delay
is the target's clock at the change, moved onto the source's clock by the
measured clock offset, minus the row's ``ts``. Its precision is half the poll
spacing plus half a round trip, far finer than the write interval.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

from encmond.config import Table
from encmond.db import Database, Session
from encmond.errors import DatabaseError

POLL_SPACING = 0.05  # seconds between two reads of the target's row
CLOCK_SAMPLES = 3  # round trips per server; the shortest one is kept
STALE_WRITES = 3  # a source row older than this many intervals is stale
NO_SUCH_TABLE = 1146
NO_SUCH_COLUMN = 1054
CREATE_TABLE = (
    "CREATE TABLE {table} (ts varchar(26) NOT NULL, server_id int unsigned "
    "NOT NULL PRIMARY KEY, file varchar(255) DEFAULT NULL, position bigint "
    "unsigned DEFAULT NULL, relay_master_log_file varchar(255) DEFAULT NULL, "
    "exec_master_log_pos bigint unsigned DEFAULT NULL)"
)


class HeartbeatError(DatabaseError):
    """The heartbeat table is missing, empty for the server id, or malformed."""


@dataclass
class ClockOffset:
    """How far a server's clock is ahead of encmond's, in seconds."""

    offset: float
    round_trip: float


@dataclass
class Row:
    """One read of the heartbeat row: its ``ts`` and the server's time then."""

    ts: float | None
    server_time: float


@dataclass
class HeartbeatReading:
    """One heartbeat lag measurement on a target.

    ``method`` is ``applied`` when a new row arrived during the poll and its
    apply delay was measured. It is ``age`` when none arrived, so ``lag`` is
    the age of the newest applied row, and ``stale`` when the source's row is
    not being updated, so ``lag`` is None. Times are epoch seconds, durations
    seconds.
    """

    method: str
    lag: float | None
    precision: float | None
    target_ts: float | None
    source_ts: float | None
    clock_offset: float
    message: str = ""

    def to_dict(self) -> dict:
        return dict(vars(self))


def parse_ts(text: str | bytes | datetime.datetime | None) -> float | None:
    """Parse a heartbeat ``ts`` as UTC into epoch seconds; None for no value."""
    if text is None or text == "":
        return None
    if isinstance(text, bytes):
        text = text.decode()
    if isinstance(text, datetime.datetime):
        moment = text
    else:
        moment = datetime.datetime.fromisoformat(str(text).strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def format_ts(epoch: float) -> str:
    """Format epoch seconds the way pt-heartbeat writes ``ts`` in UTC."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def server_time(session: Session) -> float:
    """Return the server's UTC clock as epoch seconds (sessions run in UTC)."""
    value = session.value("SELECT UTC_TIMESTAMP(6)")
    return value.replace(tzinfo=datetime.UTC).timestamp()


def measure_offset(db: Database, samples: int = CLOCK_SAMPLES) -> ClockOffset:
    """Measure ``db``'s clock against encmond's, keeping the shortest round trip.

    The server's time is taken as read at the middle of the round trip, so the
    error is at most half the round trip kept.
    """
    best: ClockOffset | None = None
    with db.session() as session:
        for _ in range(samples):
            sent = time.time()
            remote = server_time(session)
            received = time.time()
            sample = ClockOffset(remote - (sent + received) / 2, received - sent)
            if best is None or sample.round_trip < best.round_trip:
                best = sample
    assert best is not None
    return best


def read_row(session: Session, table: Table, server_id: int) -> Row:
    """Read the row of ``server_id`` and the server's time in one statement."""
    try:
        row = session.query_one(
            f"SELECT ts, UTC_TIMESTAMP(6) AS now FROM {table.quoted} "
            "WHERE server_id = %s",
            (server_id,),
        )
    except DatabaseError as exc:
        raise table_error(session.database.name, table, exc) from exc
    if row is None:
        now = server_time(session)
        return Row(None, now)
    now = row["now"].replace(tzinfo=datetime.UTC).timestamp()
    return Row(parse_ts(row["ts"]), now)


def table_error(server: str, table: Table, exc: DatabaseError) -> DatabaseError:
    """Explain a missing or legacy heartbeat table with the statement to create it."""
    create = CREATE_TABLE.format(table=table.quoted)
    if exc.errno == NO_SUCH_TABLE:
        problem = "not found"
    elif exc.errno == NO_SUCH_COLUMN:
        problem = "has no server_id column (pt-heartbeat's legacy id, ts layout)"
    else:
        return exc
    return HeartbeatError(
        server,
        f"heartbeat table {table} {problem}; create it on the source with "
        f"pt-heartbeat --create-table or: {create}",
        exc.errno,
    )


@dataclass
class Poll:
    """The reads of one poll: the first, the last before a change, the change."""

    first: Row
    last: Row
    changed: Row | None = None


def poll_target(target: Database, table: Table, server_id: int, window: float) -> Poll:
    """Poll the target's row for up to ``window`` seconds until its ts changes."""
    with target.session() as session:
        poll = Poll(*[read_row(session, table, server_id)] * 2)
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            time.sleep(POLL_SPACING)
            current = read_row(session, table, server_id)
            if current.ts is not None and current.ts != poll.first.ts:
                poll.changed = current
                return poll
            poll.last = current
    return poll


def measure(
    source: Database,
    target: Database,
    table: Table,
    server_id: int,
    interval: float,
) -> HeartbeatReading:
    """Measure the target's heartbeat lag, corrected for the clock offset.

    ``interval`` is the time between two writes of the row. The poll lasts
    one interval plus half a second, so a running replica shows a new row.
    """
    source_clock = measure_offset(source)
    target_clock = measure_offset(target)
    offset = source_clock.offset - target_clock.offset
    clock_error = (source_clock.round_trip + target_clock.round_trip) / 2
    poll = poll_target(target, table, server_id, interval + 0.5)
    with source.session() as session:
        source_row = read_row(session, table, server_id)
    changed = poll.changed
    if changed is not None:
        before = poll.last.server_time
        applied_at = (before + changed.server_time) / 2 + offset
        return HeartbeatReading(
            method="applied",
            lag=max(0.0, applied_at - changed.ts),
            precision=(changed.server_time - before) / 2 + clock_error,
            target_ts=changed.ts,
            source_ts=source_row.ts,
            clock_offset=offset,
            message="apply delay of a new heartbeat row",
        )
    return unchanged_reading(poll, source_row, offset, interval, server_id)


def unchanged_reading(
    poll: Poll, source_row: Row, offset: float, interval: float, server_id: int
) -> HeartbeatReading:
    """Build the reading when no new row reached the target during the poll.

    When the target already has the source's newest row, its age at the first
    read bounds the delay. Otherwise the target is not applying, so the age at
    the last read is how far behind it is.
    """
    if source_row.ts is None:
        raise HeartbeatError(
            "source",
            f"the heartbeat table has no row for server_id {server_id}; start "
            "the writer (pt-heartbeat --update, or checks.heartbeat.write: true)",
        )
    target_row = poll.first if poll.first.ts == source_row.ts else poll.last
    source_age = source_row.server_time - source_row.ts
    if source_age < -1.0:
        raise HeartbeatError(
            "source",
            f"the heartbeat row's ts is {-source_age:.0f} s ahead of the source's "
            "UTC clock; run pt-heartbeat with --utc",
        )
    if source_age > max(STALE_WRITES * interval, interval + 5.0):
        return HeartbeatReading(
            method="stale",
            lag=None,
            precision=None,
            target_ts=target_row.ts,
            source_ts=source_row.ts,
            clock_offset=offset,
            message=f"the source's heartbeat row was last written {source_age:.0f} "
            "s ago; its writer is not running",
        )
    if target_row.ts is None:
        return HeartbeatReading(
            method="age",
            lag=None,
            precision=None,
            target_ts=None,
            source_ts=source_row.ts,
            clock_offset=offset,
            message="the heartbeat row has not reached the target yet",
        )
    lag = target_row.server_time + offset - target_row.ts
    return HeartbeatReading(
        method="age",
        lag=max(0.0, lag),
        precision=interval,
        target_ts=target_row.ts,
        source_ts=source_row.ts,
        clock_offset=offset,
        message="no new heartbeat row arrived; lag is the age of the newest one",
    )


def write(source: Database, table: Table, server_id: int) -> float:
    """Write the heartbeat row of ``server_id`` on the source; return its ts.

    The statement carries literal values (pt-heartbeat does the same), so
    statement-based replication cannot substitute the replica's own values.
    """
    with source.session() as session:
        now = server_time(session)
        status = session.query_one("SHOW MASTER STATUS") or {}
        try:
            session.query(
                f"INSERT INTO {table.quoted} (ts, server_id, file, position) "
                "VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE ts = VALUES(ts), "
                "file = VALUES(file), position = VALUES(position)",
                (format_ts(now), server_id, status.get("File"), status.get("Position")),
            )
        except DatabaseError as exc:
            raise table_error(source.name, table, exc) from exc
    return now


def source_server_id(db: Database) -> int:
    """Return the source's ``@@server_id``, the heartbeat row pt-heartbeat writes."""
    return int(db.query_one("SELECT @@server_id AS id")["id"])
