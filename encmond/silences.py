"""Silences: mute the notifications of matching alerts for a while.

A silence matches alerts by check, server and subject; a part left empty
matches any value. It is recorded with who created it and when, and ends at
``ends_at`` or when someone ends it early (``ended_by``). A silenced alert
still changes state and still shows, flagged with the silence's id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from encmond.model import Alert
from encmond.store import Store, is_rowid

SILENCE_COLUMNS = (
    "id, check_name, server, subject, starts_at, ends_at, created_by, comment, ended_by"
)


@dataclass
class Silence:
    """One silence; ``check``, ``server`` and ``subject`` are None for "any"."""

    check: str | None
    server: str | None
    subject: str | None
    starts_at: float
    ends_at: float
    created_by: str
    comment: str = ""
    ended_by: str | None = None
    id: int | None = None

    def matches(self, alert: Alert) -> bool:
        return all(
            wanted is None or wanted == value
            for wanted, value in (
                (self.check, alert.check),
                (self.server, alert.server),
                (self.subject, alert.subject),
            )
        )

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def to_dict(self, now: float) -> dict[str, Any]:
        return asdict(self) | {"active": self.active(now)}

    def __str__(self) -> str:
        parts = [self.check or "*", self.server or "*", self.subject or "*"]
        return f"silence {self.id} of {'/'.join(parts)}"


class Silences:
    """The ``silences`` table of a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, silence: Silence) -> Silence:
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO silences (check_name, server, subject, starts_at, "
                "ends_at, created_by, comment) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    silence.check,
                    silence.server,
                    silence.subject,
                    silence.starts_at,
                    silence.ends_at,
                    silence.created_by,
                    silence.comment,
                ),
            )
        silence.id = cursor.lastrowid
        return silence

    def end(self, silence: Silence, by: str, now: float) -> None:
        """End an active silence now, recording who ended it."""
        silence.ends_at = now
        silence.ended_by = by
        with self.store.transaction() as db:
            db.execute(
                "UPDATE silences SET ends_at = ?, ended_by = ? WHERE id = ?",
                (now, by, silence.id),
            )

    def get(self, silence_id: int) -> Silence | None:
        if not is_rowid(silence_id):
            return None
        row = self.store.reader.execute(
            f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = ?", (silence_id,)
        ).fetchone()
        return silence_from_row(row) if row else None

    def list(self, now: float, state: str | None = None, limit: int = 200):
        """Return silences, newest first; ``state`` is active, expired or None."""
        sql = f"SELECT {SILENCE_COLUMNS} FROM silences"
        args: list[Any] = []
        if state == "active":
            sql += " WHERE starts_at <= ? AND ends_at > ?"
            args += [now, now]
        elif state == "expired":
            sql += " WHERE ends_at <= ?"
            args.append(now)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        rows = self.store.reader.execute(sql, args).fetchall()
        return [silence_from_row(row) for row in rows]


def silence_from_row(row) -> Silence:
    return Silence(
        id=row["id"],
        check=row["check_name"],
        server=row["server"],
        subject=row["subject"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_by=row["created_by"],
        comment=row["comment"],
        ended_by=row["ended_by"],
    )
