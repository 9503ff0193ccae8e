"""Notification delivery: one worker per notifier, fed from the SQLite outbox.

Workers run beside the checks, so a slow or failing receiver never delays a
check or another notifier. A failed delivery is retried after the notifier's
``retry_delay``, doubled for each further attempt up to ``max_retry_delay``;
a notification still undelivered after ``give_up_after`` is dropped with a
warning. Because the outbox is stored, notifications still pending at a
restart are delivered after it. Every error is logged through the notifier's
``redact``, so URL tokens and passwords stay out of the log and the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import gevent
import gevent.event

from encmond.alerts import notification_from_payload
from encmond.model import Alert, Notification, Notifier
from encmond.store import Store

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
FIRST_BACKOFF = 5.0
MAX_BACKOFF = 600.0
GIVE_UP_AFTER = 86400.0
IDLE_WAIT = 60.0
# Extra time for a send past the notifier's own timeout, which may apply per
# connection step (connect, then each read) rather than to the whole send.
TIMEOUT_GRACE = 5.0


class Worker:
    """Delivers one notifier's queued notifications in order.

    ``firing`` returns the alerts a notifier with a ``resend_interval`` sends
    again periodically.
    """

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        firing: Callable[[], list[Alert]] | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.firing = firing
        settings = notifier.settings
        self.timeout = settings.get("timeout", DEFAULT_TIMEOUT)
        self.retry_delay = settings.get("retry_delay", FIRST_BACKOFF)
        self.max_retry_delay = settings.get("max_retry_delay", MAX_BACKOFF)
        self.give_up_after = settings.get("give_up_after", GIVE_UP_AFTER)
        self.wakeup = gevent.event.Event()
        self.greenlet: gevent.Greenlet | None = None
        self.failing = False
        self.resend_failing = False
        self.next_resend = 0.0

    def start(self) -> None:
        self.greenlet = gevent.spawn(self.loop)

    def stop(self, timeout: float = 5.0) -> None:
        if self.greenlet is not None:
            self.greenlet.kill(timeout=timeout)

    def loop(self) -> None:
        while True:
            self.deliver_due()
            self.resend_due()
            self.wakeup.clear()
            self.wakeup.wait(timeout=self.wait_time(time.time()))

    def wait_time(self, now: float) -> float:
        waits = [IDLE_WAIT]
        next_at = self.store.next_due(self.notifier.name)
        if next_at is not None:
            waits.append(next_at - now)
        if self.notifier.resend_interval > 0:
            waits.append(self.next_resend - now)
        return max(0.0, min(waits))

    def deliver_due(self, now: float | None = None) -> int:
        """Deliver the notifications due at ``now``; returns how many went out.

        Delivery stops at the first failure, so a notifier receives its
        notifications in the order they were queued.
        """
        now = now or time.time()
        delivered = 0
        for row in self.store.due_notifications(self.notifier.name, now):
            notification = notification_from_payload(row["payload"])
            if now - row["created_at"] > self.give_up_after:
                self.give_up(row, notification, now)
                continue
            try:
                self.send(notification)
            except Exception as exc:
                self.retry_later(row, notification, exc, now)
                break
            self.store.mark_delivered(row["id"], time.time())
            delivered += 1
            if self.failing:
                log.info("notifier %s delivers again", self.notifier)
                self.failing = False
            log.debug("notifier %s delivered %s", self.notifier, notification)
        return delivered

    def send(self, notification: Notification) -> None:
        limit = self.timeout + TIMEOUT_GRACE
        with gevent.Timeout(limit, TimeoutError(f"no response within {limit:g} s")):
            self.notifier.send(notification)

    def error_text(self, exc: Exception) -> str:
        return self.notifier.redact(f"{type(exc).__name__}: {exc}")

    def retry_later(self, row, notification, exc: Exception, now: float) -> None:
        backoff = min(self.retry_delay * 2 ** row["attempts"], self.max_retry_delay)
        error = self.error_text(exc)
        self.store.mark_failed(row["id"], error, now + backoff)
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

    def give_up(self, row, notification, now: float) -> None:
        self.store.give_up(row["id"], "not delivered within give_up_after", now)
        log.warning(
            "notifier %s dropped %s after %d failed attempts in %g s",
            self.notifier,
            notification,
            row["attempts"],
            self.give_up_after,
        )

    def resend_due(self, now: float | None = None) -> None:
        """Send the firing alerts again when ``resend_interval`` has passed."""
        now = now or time.time()
        interval = self.notifier.resend_interval
        if interval <= 0 or self.firing is None or now < self.next_resend:
            return
        self.next_resend = now + interval
        alerts = self.firing()
        if not alerts:
            return
        limit = self.timeout + TIMEOUT_GRACE
        try:
            with gevent.Timeout(limit, TimeoutError(f"no response within {limit:g} s")):
                self.notifier.resend(alerts)
        except Exception as exc:
            level = logging.DEBUG if self.resend_failing else logging.WARNING
            log.log(
                level,
                "notifier %s could not resend %d firing alerts: %s; trying again "
                "in %g s",
                self.notifier,
                len(alerts),
                self.error_text(exc),
                interval,
            )
            self.resend_failing = True
            return
        self.resend_failing = False


class Dispatcher:
    """Starts a Worker per notifier and wakes them when notifications arrive.

    ``firing`` maps a notifier's name to the alerts it would resend.
    """

    def __init__(
        self,
        store: Store,
        notifiers: list[Notifier],
        firing: Callable[[str], list[Alert]] | None = None,
    ) -> None:
        self.workers = {
            notifier.name: Worker(store, notifier, bind(firing, notifier.name))
            for notifier in notifiers
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


def bind(firing: Callable[[str], list[Alert]] | None, name: str):
    if firing is None:
        return None
    return lambda: firing(name)
