"""Notification delivery: one worker per notifier, fed from the SQLite outbox.

Workers run beside the checks, so a slow or failing receiver never delays a
check or another notifier. A failed delivery is retried with exponential
backoff up to ``MAX_BACKOFF``. The outbox is stored, so notifications still
pending at a restart are delivered after it.
"""

from __future__ import annotations

import logging
import time

import gevent
import gevent.event

from encmond.alerts import notification_from_payload
from encmond.model import Notifier
from encmond.store import Store

log = logging.getLogger(__name__)

FIRST_BACKOFF = 5.0
MAX_BACKOFF = 600.0
SEND_TIMEOUT = 30.0
IDLE_WAIT = 60.0


class Worker:
    """Delivers one notifier's queued notifications in order."""

    def __init__(self, store: Store, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier
        self.wakeup = gevent.event.Event()
        self.greenlet: gevent.Greenlet | None = None
        self.failing = False

    def start(self) -> None:
        self.greenlet = gevent.spawn(self.loop)

    def stop(self, timeout: float = 5.0) -> None:
        if self.greenlet is not None:
            self.greenlet.kill(timeout=timeout)

    def loop(self) -> None:
        while True:
            self.deliver_due()
            self.wakeup.clear()
            next_at = self.store.next_due(self.notifier.name)
            wait = IDLE_WAIT if next_at is None else max(0.0, next_at - time.time())
            self.wakeup.wait(timeout=min(wait, IDLE_WAIT))

    def deliver_due(self) -> None:
        for row in self.store.due_notifications(self.notifier.name, time.time()):
            notification = notification_from_payload(row["payload"])
            try:
                with gevent.Timeout(
                    SEND_TIMEOUT, TimeoutError(f"no response within {SEND_TIMEOUT:g} s")
                ):
                    self.notifier.send(notification)
            except Exception as exc:
                self.retry_later(row, notification, exc)
                return
            self.store.mark_delivered(row["id"], time.time())
            if self.failing:
                log.info("notifier %s delivers again", self.notifier)
                self.failing = False
            log.debug("notifier %s delivered %s", self.notifier, notification)

    def retry_later(self, row, notification, exc: Exception) -> None:
        backoff = min(FIRST_BACKOFF * 2 ** row["attempts"], MAX_BACKOFF)
        error = f"{type(exc).__name__}: {exc}"
        self.store.mark_failed(row["id"], error, time.time() + backoff)
        level = logging.DEBUG if self.failing else logging.WARNING
        log.log(
            level,
            "notifier %s could not deliver %s (attempt %d): %s; retrying in %g s",
            self.notifier,
            notification,
            row["attempts"] + 1,
            error,
            backoff,
        )
        self.failing = True


class Dispatcher:
    """Starts a Worker per notifier and wakes them when notifications arrive."""

    def __init__(self, store: Store, notifiers: list[Notifier]) -> None:
        self.workers = {
            notifier.name: Worker(store, notifier) for notifier in notifiers
        }

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    def wake(self) -> None:
        for worker in self.workers.values():
            worker.wakeup.set()

    def stop(self, timeout: float = 5.0) -> None:
        for worker in self.workers.values():
            worker.stop(timeout)
