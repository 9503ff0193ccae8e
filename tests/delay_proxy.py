"""A TCP proxy on loopback that holds back server-to-client bytes for a while.

Pointing a replica's IO thread at it makes the events it receives late by
``delay`` seconds, a steady network lag at sub-second precision. The delay
starts at 0, so the replica connects at full speed, and can be changed
while connections are open.

Example::

    with DelayProxy(source.port) as proxy:
        target.execute("CHANGE MASTER TO MASTER_PORT=%d" % proxy.port)
        proxy.delay = 0.5
"""

from __future__ import annotations

import collections
import socket
import threading
import time

HOST = "127.0.0.1"
CHUNK = 65536


class DelayProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``upstream_port``."""

    def __init__(self, upstream_port: int, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(
                target=self.pump, args=(client, upstream, False), daemon=True
            ).start()
            threading.Thread(
                target=self.pump, args=(upstream, client, True), daemon=True
            ).start()

    def pump(self, reader: socket.socket, writer: socket.socket, delayed: bool):
        """Copy bytes, holding each chunk back by ``delay`` when ``delayed``."""
        queue: collections.deque = collections.deque()
        ready = threading.Condition()
        if delayed:
            threading.Thread(
                target=self.send_due, args=(queue, ready, writer), daemon=True
            ).start()
        try:
            while data := reader.recv(CHUNK):
                if not delayed:
                    writer.sendall(data)
                    continue
                with ready:
                    queue.append((time.monotonic() + self.delay, data))
                    ready.notify()
        except OSError:
            pass
        finally:
            with ready:
                queue.append((time.monotonic() + self.delay, b""))
                ready.notify()
            if not delayed:
                shutdown(writer)

    def send_due(self, queue, ready: threading.Condition, writer) -> None:
        """Send queued chunks in order, each once its due time has come."""
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, data = queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    ready.wait(wait)
                    continue
                queue.popleft()
            if not data:
                shutdown(writer)
                return
            try:
                writer.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for sock in self.sockets:
            shutdown(sock)
            sock.close()


def shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
