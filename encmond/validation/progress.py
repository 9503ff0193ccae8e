"""Progress of validation passes, kept between runs and restarts.

One ``PassState`` per (check, server, table) lives as JSON in the SQLite
table ``validation_progress``. The daemon saves it every few seconds during
a run and at its end, so a restarted daemon resumes after the last chunk it
saved. ``encmond check`` has no store and keeps the state in memory.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

SAVE_INTERVAL = 2.0  # seconds between two saves during a run


@dataclass
class PassState:
    """One table's validation: the running pass and what earlier passes found.

    Chunks and key bounds are stored in the JSON forms of ``chunks``.
    ``started_at`` is 0 while no pass is running.
    """

    started_at: float = 0.0
    position: list[Any] | None = None
    scanned: bool = False
    chunk_size: float = 0.0
    chunks_done: int = 0
    rows_checked: int = 0
    source_rows: int = 0
    target_rows: int = 0
    rows_estimate: int | None = None
    rechecked: int = 0
    active_seconds: float = 0.0
    recheck: list[dict[str, Any]] = field(default_factory=list)
    diverged: list[dict[str, Any]] = field(default_factory=list)
    in_flux: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    first_seen: float = 0.0
    last_clean_pass: float | None = None
    last_pass: dict[str, Any] | None = None

    def start(self, now: float) -> None:
        """Begin a new pass, keeping what earlier passes found."""
        fresh = PassState(
            started_at=now,
            chunk_size=self.chunk_size,
            first_seen=self.first_seen or now,
            last_clean_pass=self.last_clean_pass,
            last_pass=self.last_pass,
        )
        self.__dict__.update(fresh.__dict__)

    def summary(self, outcome: str) -> dict[str, Any]:
        """Return what the pass found so far, labelled with ``outcome``."""
        return {
            "state": outcome,
            "started_at": self.started_at,
            "chunks_done": self.chunks_done,
            "rows_checked": self.rows_checked,
            "rechecked": self.rechecked,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "diverged": self.diverged,
            "in_flux": self.in_flux,
            "differences": self.differences,
        }

    @property
    def running(self) -> bool:
        return self.started_at > 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> PassState:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


class ProgressStore:
    """Loads and saves PassStates in the Store, or in memory without one."""

    def __init__(self, store: Any = None) -> None:
        self.store = store
        self.memory: dict[tuple[str, str, str], str] = {}
        self.saved_at: dict[tuple[str, str, str], float] = {}

    def load(self, key: tuple[str, str, str]) -> PassState:
        text = self.memory.get(key)
        if self.store is not None:
            row = self.store.reader.execute(
                "SELECT state FROM validation_progress WHERE check_name = ? AND "
                "server = ? AND subject = ?",
                key,
            ).fetchone()
            text = row[0] if row else None
        return PassState.from_json(text) if text else PassState()

    def save(self, key: tuple[str, str, str], state: PassState, force=True) -> None:
        """Save ``state``; unless ``force``, at most once per SAVE_INTERVAL."""
        now = time.monotonic()
        if not force and now - self.saved_at.get(key, 0.0) < SAVE_INTERVAL:
            return
        self.saved_at[key] = now
        text = state.to_json()
        if self.store is None:
            self.memory[key] = text
            return
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO validation_progress VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (check_name, server, subject) DO UPDATE SET "
                "state = excluded.state, updated_at = excluded.updated_at",
                (*key, text, time.time()),
            )

    def all(self) -> dict[tuple[str, str, str], PassState]:
        """Return every stored state by (check, server, table)."""
        if self.store is None:
            return {key: PassState.from_json(t) for key, t in self.memory.items()}
        rows = self.store.reader.execute(
            "SELECT check_name, server, subject, state FROM validation_progress"
        ).fetchall()
        return {tuple(row[:3]): PassState.from_json(row[3]) for row in rows}
