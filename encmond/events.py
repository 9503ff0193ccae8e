"""The in-process event hub that feeds WebSocket clients."""

from __future__ import annotations

import logging
from typing import Any

import gevent.queue

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class Hub:
    """Fans events out to subscriber queues; a subscriber that falls behind is
    dropped (it gets ``None``) rather than slowing the daemon down."""

    def __init__(self) -> None:
        self.queues: set[gevent.queue.Queue] = set()

    def subscribe(self) -> gevent.queue.Queue:
        queue: gevent.queue.Queue = gevent.queue.Queue(QUEUE_SIZE)
        self.queues.add(queue)
        return queue

    def unsubscribe(self, queue: gevent.queue.Queue) -> None:
        self.queues.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(event)
            except gevent.queue.Full:
                log.warning(
                    "dropping a WebSocket client that is %d events behind", QUEUE_SIZE
                )
                self.queues.discard(queue)
                drain(queue)
                queue.put_nowait(None)

    def __len__(self) -> int:
        return len(self.queues)


def drain(queue: gevent.queue.Queue) -> None:
    while not queue.empty():
        queue.get_nowait()
