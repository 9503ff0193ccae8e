"""Read access to stored results, alerts and samples, for checks that need them.

The daemon gives every check a ``State`` over its Store. One-shot commands
(``encmond check``, ``encmond cutover``) add the results they just produced
on top, and read the daemon's database, when one exists, without writing.
"""

from __future__ import annotations

import threading
from pathlib import Path

from encmond.model import Alert, Result
from encmond.store import Store, connect

Key = tuple[str, str, str]


class ReadOnlyStore(Store):
    """An existing store opened for reading only: no writer, no migration."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.reader = connect(path, readonly=True)
        self.series_ids = {}

    def close(self) -> None:
        self.reader.close()


class State:
    """Latest results, firing alerts and metric samples, stored and fresh."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self.fresh: dict[Key, Result] = {}

    @classmethod
    def open(cls, path: str) -> State:
        """Read the store at ``path`` if it exists; never create one."""
        return cls(ReadOnlyStore(path) if Path(path).is_file() else None)

    def add(self, results: list[Result]) -> None:
        """Put results that were just produced over the stored ones."""
        for result in results:
            self.fresh[(result.check, result.server, result.subject)] = result

    def latest(self) -> list[Result]:
        stored = {}
        if self.store is not None:
            stored = {(r.check, r.server, r.subject): r for r in self.store.latest()}
        return list((stored | self.fresh).values())

    def result(self, check: str, server: str, subject: str) -> Result | None:
        key = (check, server, subject)
        if key in self.fresh:
            return self.fresh[key]
        for result in self.latest():
            if (result.check, result.server, result.subject) == key:
                return result
        return None

    def firing_alerts(self) -> list[Alert]:
        return self.store.open_alerts() if self.store is not None else []

    def samples(
        self, key: Key, metric: str, since: float, until: float
    ) -> list[tuple[float, float]]:
        """Return (time, value) samples of one metric, stored and fresh, in order."""
        found: dict[float, float] = {}
        if self.store is not None:
            check, server, subject = key
            for series in self.store.find_series(metric, check, server, subject):
                found.update(self.store.samples(series["id"], since, until))
        fresh = self.fresh.get(key)
        if fresh is not None and since <= fresh.time <= until:
            value = fresh.metrics.get(metric)
            if value is not None:
                found[fresh.time] = float(value)
        return sorted(found.items())

    def close(self) -> None:
        if isinstance(self.store, ReadOnlyStore):
            self.store.close()
