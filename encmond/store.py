"""SQLite storage: samples, latest results, alerts and the notification outbox.

One writer connection takes ``BEGIN IMMEDIATE`` per batch; readers use a
separate read-only connection. The database runs in WAL mode with
``synchronous=NORMAL``, so a committed batch survives a killed process.
``PRAGMA user_version`` is the schema version; ``MIGRATIONS`` upgrades it.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from encmond.model import Alert, Result, Severity, Status

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        check_name TEXT NOT NULL,
        server TEXT NOT NULL,
        subject TEXT NOT NULL,
        metric TEXT NOT NULL,
        UNIQUE (check_name, server, subject, metric)
    );
    CREATE TABLE samples (
        series_id INTEGER NOT NULL REFERENCES series (id),
        ts REAL NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series_id, ts)
    ) WITHOUT ROWID;
    CREATE TABLE latest (
        check_name TEXT NOT NULL,
        server TEXT NOT NULL,
        subject TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        metrics TEXT NOT NULL,
        details TEXT NOT NULL,
        ts REAL NOT NULL,
        duration REAL,
        PRIMARY KEY (check_name, server, subject)
    );
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        check_name TEXT NOT NULL,
        server TEXT NOT NULL,
        subject TEXT NOT NULL,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        resolved_at REAL,
        notified_at REAL,
        notified_severity TEXT
    );
    CREATE UNIQUE INDEX alerts_open ON alerts (check_name, server, subject)
        WHERE state != 'resolved';
    CREATE INDEX alerts_updated ON alerts (updated_at);
    CREATE TABLE alert_events (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        ts REAL NOT NULL,
        event TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX alert_events_alert ON alert_events (alert_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        notifier TEXT NOT NULL,
        event TEXT NOT NULL,
        alert_id INTEGER NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        last_error TEXT,
        delivered_at REAL
    );
    CREATE INDEX outbox_pending ON outbox (notifier, next_at)
        WHERE delivered_at IS NULL;
    """,
    """
    ALTER TABLE alerts ADD COLUMN condition TEXT NOT NULL DEFAULT '';
    ALTER TABLE alerts ADD COLUMN pending_since REAL;
    ALTER TABLE alerts ADD COLUMN fired_at REAL;
    ALTER TABLE alerts ADD COLUMN clear_since REAL;
    ALTER TABLE alerts ADD COLUMN inhibited_by TEXT;
    ALTER TABLE alerts ADD COLUMN silence_id INTEGER;
    ALTER TABLE alerts ADD COLUMN acked_at REAL;
    ALTER TABLE alerts ADD COLUMN acked_by TEXT;
    ALTER TABLE alerts ADD COLUMN ack_comment TEXT;
    UPDATE alerts SET fired_at = started_at WHERE state = 'firing';
    DROP INDEX alerts_open;
    CREATE UNIQUE INDEX alerts_open_condition
        ON alerts (check_name, server, subject, condition)
        WHERE state != 'resolved';
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        check_name TEXT,
        server TEXT,
        subject TEXT,
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        ended_by TEXT
    );
    CREATE INDEX silences_ends ON silences (ends_at);
    ALTER TABLE outbox ADD COLUMN gave_up_at REAL;
    ALTER TABLE alert_events ADD COLUMN actor TEXT;
    """,
    """
    CREATE TABLE validation_progress (
        check_name TEXT NOT NULL,
        server TEXT NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (check_name, server, subject)
    );
    """,
    """
    CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
]

# One primary-key range scan per bucket. A single GROUP BY over the whole
# range sorts every sample first, which took about three times as long for
# 86,400 samples and 500 buckets (scripts/bench_web.py measures the endpoint).
# A scalar subquery returns one value, so the aggregates come back as one
# string. SQLite's printf stops at 16 significant digits unless the '!' flag
# is given, and 17 keep every double exact.
HISTORY_QUERY = """
WITH RECURSIVE buckets (number) AS (
    SELECT 0 UNION ALL SELECT number + 1 FROM buckets WHERE number + 1 < :points
), bounds AS (
    SELECT number, :since + number * :width AS low,
        CASE WHEN number + 1 = :points THEN :end
        ELSE :since + (number + 1) * :width END AS high
    FROM buckets
)
SELECT number, (
    SELECT printf('%!.17g %!.17g %!.17g %d', MIN(value), MAX(value), AVG(value),
        COUNT(*))
    FROM samples WHERE series_id = :series AND ts >= low AND ts < high
) FROM bounds
"""

# Columns of ``alerts`` that save_alert writes, in the order of alert_values.
ALERT_FIELDS = (
    "check_name",
    "server",
    "subject",
    "condition",
    "severity",
    "state",
    "message",
    "details",
    "started_at",
    "updated_at",
    "resolved_at",
    "notified_at",
    "notified_severity",
    "pending_since",
    "fired_at",
    "clear_since",
    "inhibited_by",
    "silence_id",
    "acked_at",
    "acked_by",
    "ack_comment",
)
ALERT_COLUMNS = "id, " + ", ".join(ALERT_FIELDS)


def connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        connection = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False
        )
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


class Store:
    """The SQLite database at ``path``, opened (and migrated) on creation."""

    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.writer = connect(path)
        self.writer.execute("PRAGMA journal_mode = WAL")
        self.writer.execute("PRAGMA synchronous = NORMAL")
        self.writer.execute("PRAGMA foreign_keys = ON")
        self.migrate()
        self.reader = connect(path, readonly=True)
        self.series_ids: dict[tuple[str, str, str, str], int] = {}

    def migrate(self) -> None:
        version = self.writer.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {version}, newer than this encmond "
                f"({len(MIGRATIONS)}); upgrade encmond or use another storage.path"
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction() as db:
                db.executescript_in_transaction(MIGRATIONS[number])
                db.execute(f"PRAGMA user_version = {number + 1}")
            log.info("storage %s migrated to schema version %d", self.path, number + 1)

    @contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        """Run a write batch under BEGIN IMMEDIATE; roll back if it raises."""
        with self.lock:
            self.writer.execute("BEGIN IMMEDIATE")
            try:
                yield _Transaction(self.writer)
            except BaseException:
                self.writer.execute("ROLLBACK")
                raise
            self.writer.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.reader.close()
            self.writer.close()

    # Results and samples

    def save_results(self, results: list[Result]) -> None:
        with self.transaction() as db:
            for result in results:
                db.execute(
                    "INSERT INTO latest VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (check_name, server, subject) DO UPDATE SET "
                    "status = excluded.status, message = excluded.message, "
                    "metrics = excluded.metrics, details = excluded.details, "
                    "ts = excluded.ts, duration = excluded.duration",
                    (
                        result.check,
                        result.server,
                        result.subject,
                        result.status.value,
                        result.message,
                        json.dumps(result.metrics),
                        json.dumps(result.details, default=str),
                        result.time,
                        result.duration,
                    ),
                )
                for metric, value in result.metrics.items():
                    if value is None:
                        continue
                    key = (result.check, result.server, result.subject, metric)
                    db.execute(
                        "INSERT OR REPLACE INTO samples VALUES (?, ?, ?)",
                        (self.series_id(db, key), result.time, float(value)),
                    )

    def series_id(self, db: _Transaction, key: tuple[str, str, str, str]) -> int:
        if key not in self.series_ids:
            db.execute(
                "INSERT OR IGNORE INTO series (check_name, server, subject, "
                "metric) VALUES (?, ?, ?, ?)",
                key,
            )
            row = db.execute(
                "SELECT id FROM series WHERE check_name = ? AND "
                "server = ? AND subject = ? AND metric = ?",
                key,
            ).fetchone()
            self.series_ids[key] = row[0]
        return self.series_ids[key]

    def get_meta(self, name: str) -> Any:
        """Return the JSON value stored under ``name``, or None."""
        row = self.reader.execute(
            "SELECT value FROM meta WHERE name = ?", (name,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, name: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET value = excluded.value",
                (name, json.dumps(value)),
            )

    def forget_latest(self, keep: Callable[[str, str, str], bool]) -> int:
        """Delete the latest results whose (check, server, subject) ``keep``
        rejects; returns how many."""
        keys = self.reader.execute(
            "SELECT check_name, server, subject FROM latest"
        ).fetchall()
        removed = [tuple(key) for key in keys if not keep(*key)]
        with self.transaction() as db:
            for key in removed:
                db.execute(
                    "DELETE FROM latest WHERE check_name = ? AND server = ? "
                    "AND subject = ?",
                    key,
                )
        return len(removed)

    def latest(self) -> list[Result]:
        rows = self.reader.execute(
            "SELECT * FROM latest ORDER BY check_name, server, subject"
        ).fetchall()
        return [
            Result(
                subject=row["subject"],
                status=Status(row["status"]),
                message=row["message"],
                metrics=json.loads(row["metrics"]),
                details=json.loads(row["details"]),
                server=row["server"],
                check=row["check_name"],
                time=row["ts"],
                duration=row["duration"],
            )
            for row in rows
        ]

    def find_series(
        self,
        metric: str,
        check: str | None = None,
        server: str | None = None,
        subject: str | None = None,
    ) -> list[dict]:
        """Return the series named ``metric``, narrowed by the given key parts."""
        sql = "SELECT * FROM series WHERE metric = ?"
        args: list[Any] = [metric]
        for column, value in (
            ("check_name", check),
            ("server", server),
            ("subject", subject),
        ):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        return [dict(row) for row in self.reader.execute(sql, args).fetchall()]

    def samples(
        self, series_id: int, since: float, until: float
    ) -> list[tuple[float, float]]:
        """Return one series' (time, value) samples from ``since`` to ``until``."""
        rows = self.reader.execute(
            "SELECT ts, value FROM samples WHERE series_id = ? AND ts >= ? AND "
            "ts <= ? ORDER BY ts",
            (series_id, since, until),
        ).fetchall()
        return [(row["ts"], row["value"]) for row in rows]

    def history(
        self, series_id: int, since: float, until: float, points: int
    ) -> list[dict[str, float]]:
        """Downsample one series to at most ``points`` buckets of min, max and mean.

        The buckets split [since, until] into equal parts, and only buckets
        with samples are returned, oldest first.
        """
        width = max((until - since) / points, 1e-6)
        arguments = {
            "series": series_id,
            "since": since,
            "width": width,
            "points": points,
            # The last bucket ends just past ``until``, so it includes ``until``.
            "end": math.nextafter(until, math.inf),
        }
        buckets = []
        for number, aggregates in self.reader.execute(HISTORY_QUERY, arguments):
            low, high, mean, count = aggregates.split()
            if count == "0":
                continue
            buckets.append(
                {
                    "time": since + number * width,
                    "min": float(low),
                    "max": float(high),
                    "mean": float(mean),
                    "count": int(count),
                }
            )
        return buckets

    # Alerts

    def open_alerts(self) -> list[Alert]:
        rows = self.reader.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state != 'resolved'"
        ).fetchall()
        return [alert_from_row(row) for row in rows]

    def alerts(self, state: str | None = None, limit: int = 200) -> list[Alert]:
        sql = f"SELECT {ALERT_COLUMNS} FROM alerts"
        args: list[Any] = []
        if state is not None:
            sql += " WHERE state = ?"
            args.append(state)
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
        args.append(limit)
        return [alert_from_row(row) for row in self.reader.execute(sql, args)]

    def alert(self, alert_id: int) -> Alert | None:
        if not is_rowid(alert_id):
            return None
        row = self.reader.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
        ).fetchone()
        return alert_from_row(row) if row else None

    def alert_events(self, alert_id: int) -> list[dict[str, Any]]:
        rows = self.reader.execute(
            "SELECT ts, event, severity, message, actor FROM alert_events "
            "WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        ).fetchall()
        return [dict(row) for row in rows]

    def save_alert(
        self, db: _Transaction, alert: Alert, event: str, actor: str | None = None
    ) -> None:
        """Insert or update an alert and record the event, inside a transaction.

        ``actor`` names who caused the event (an acknowledgement, a silence).
        """
        values = alert_values(alert)
        if alert.id is None:
            placeholders = ", ".join("?" * len(ALERT_FIELDS))
            cursor = db.execute(
                f"INSERT INTO alerts ({', '.join(ALERT_FIELDS)}) "
                f"VALUES ({placeholders})",
                values,
            )
            alert.id = cursor.lastrowid
        else:
            assignments = ", ".join(f"{name} = ?" for name in ALERT_FIELDS)
            db.execute(
                f"UPDATE alerts SET {assignments} WHERE id = ?", values + (alert.id,)
            )
        if event:
            db.execute(
                "INSERT INTO alert_events (alert_id, ts, event, severity, message, "
                "actor) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    alert.id,
                    alert.updated_at,
                    event,
                    alert.severity.value,
                    alert.message,
                    actor,
                ),
            )

    def delete_alert(self, db: _Transaction, alert: Alert) -> None:
        """Delete an alert and its events, inside a transaction."""
        if alert.id is not None:
            db.execute("DELETE FROM alerts WHERE id = ?", (alert.id,))

    # Notification outbox

    def enqueue(
        self,
        db: _Transaction,
        notifier: str,
        event: str,
        alert: Alert,
        payload: dict[str, Any],
        now: float,
    ) -> None:
        db.execute(
            "INSERT INTO outbox (notifier, event, alert_id, payload, created_at, "
            "next_at) VALUES (?, ?, ?, ?, ?, ?)",
            (notifier, event, alert.id, json.dumps(payload, default=str), now, now),
        )

    def due_notifications(
        self, notifier: str, now: float, limit: int = 20
    ) -> list[dict[str, Any]]:
        rows = self.reader.execute(
            "SELECT id, event, payload, attempts, created_at FROM outbox "
            "WHERE notifier = ? AND delivered_at IS NULL AND gave_up_at IS NULL "
            "AND next_at <= ? ORDER BY id LIMIT ?",
            (notifier, now, limit),
        ).fetchall()
        return [dict(row) | {"payload": json.loads(row["payload"])} for row in rows]

    def next_due(self, notifier: str) -> float | None:
        row = self.reader.execute(
            "SELECT MIN(next_at) FROM outbox WHERE notifier = ? AND "
            "delivered_at IS NULL AND gave_up_at IS NULL",
            (notifier,),
        ).fetchone()
        return row[0]

    def mark_delivered(self, outbox_id: int, now: float) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                (now, outbox_id),
            )

    def mark_failed(self, outbox_id: int, error: str, next_at: float) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_at = ? WHERE id = ?",
                (error, next_at, outbox_id),
            )

    def give_up(self, outbox_id: int, error: str, now: float) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "gave_up_at = ? WHERE id = ?",
                (error, now, outbox_id),
            )

    def give_up_others(self, notifiers: list[str], error: str, now: float) -> int:
        """Give up the pending notifications of notifiers not in ``notifiers``.

        Returns how many there were. Retention deletes them later like any
        notification given up.
        """
        marks = ", ".join("?" * len(notifiers))
        with self.transaction() as db:
            return db.execute(
                "UPDATE outbox SET last_error = ?, gave_up_at = ? "
                "WHERE delivered_at IS NULL AND gave_up_at IS NULL "
                f"AND notifier NOT IN ({marks})",
                (error, now, *notifiers),
            ).rowcount

    def pending_count(self, notifier: str | None = None) -> int:
        sql = (
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND "
            "gave_up_at IS NULL"
        )
        args: tuple = ()
        if notifier is not None:
            sql += " AND notifier = ?"
            args = (notifier,)
        return self.reader.execute(sql, args).fetchone()[0]

    # Retention

    def prune(self, retention: float, now: float | None = None) -> dict[str, int]:
        """Delete rows older than ``retention`` seconds; firing alerts stay."""
        cutoff = (now or time.time()) - retention
        counts = {}
        with self.transaction() as db:
            deleted = 0
            for (series_id,) in db.execute("SELECT id FROM series").fetchall():
                deleted += db.execute(
                    "DELETE FROM samples WHERE series_id = ? AND ts < ?",
                    (series_id, cutoff),
                ).rowcount
            counts["samples"] = deleted
            counts["results"] = db.execute(
                "DELETE FROM latest WHERE ts < ?", (cutoff,)
            ).rowcount
            counts["notifications"] = db.execute(
                "DELETE FROM outbox WHERE delivered_at < ? OR gave_up_at < ?",
                (cutoff, cutoff),
            ).rowcount
            counts["silences"] = db.execute(
                "DELETE FROM silences WHERE ends_at < ?", (cutoff,)
            ).rowcount
            counts["alerts"] = db.execute(
                "DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ? AND "
                "id NOT IN (SELECT alert_id FROM outbox WHERE delivered_at IS NULL "
                "AND gave_up_at IS NULL)",
                (cutoff,),
            ).rowcount
        return counts

    def integrity_check(self) -> str:
        return self.reader.execute("PRAGMA integrity_check").fetchone()[0]


class _Transaction:
    """The writer connection inside BEGIN IMMEDIATE ... COMMIT."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        return self.connection.execute(sql, args)

    def executescript_in_transaction(self, script: str) -> None:
        # executescript() would COMMIT first, so run the statements one by one.
        for statement in script.split(";"):
            if statement.strip():
                self.connection.execute(statement)


def alert_values(alert: Alert) -> tuple:
    """Return the values of ALERT_FIELDS for ``alert``."""
    return (
        alert.check,
        alert.server,
        alert.subject,
        alert.condition,
        alert.severity.value,
        alert.state,
        alert.message,
        json.dumps(alert.details, default=str),
        alert.started_at,
        alert.updated_at,
        alert.resolved_at,
        alert.notified_at,
        alert.notified_severity.value if alert.notified_severity else None,
        alert.pending_since,
        alert.fired_at,
        alert.clear_since,
        alert.inhibited_by,
        alert.silence_id,
        alert.acked_at,
        alert.acked_by,
        alert.ack_comment,
    )


def is_rowid(value: int) -> bool:
    """Return whether ``value`` fits SQLite's 64-bit INTEGER, as every id does.

    sqlite3 raises OverflowError for a larger Python int in a query.
    """
    return -(2**63) <= value < 2**63


def alert_from_row(row: sqlite3.Row) -> Alert:
    return Alert(
        id=row["id"],
        check=row["check_name"],
        server=row["server"],
        subject=row["subject"],
        condition=row["condition"],
        severity=Severity(row["severity"]),
        state=row["state"],
        message=row["message"],
        details=json.loads(row["details"]),
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        resolved_at=row["resolved_at"],
        notified_at=row["notified_at"],
        notified_severity=(
            Severity(row["notified_severity"]) if row["notified_severity"] else None
        ),
        pending_since=row["pending_since"],
        fired_at=row["fired_at"],
        clear_since=row["clear_since"],
        inhibited_by=row["inhibited_by"],
        silence_id=row["silence_id"],
        acked_at=row["acked_at"],
        acked_by=row["acked_by"],
        ack_comment=row["ack_comment"],
    )
