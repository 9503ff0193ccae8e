"""The daemon: store, monitor, scheduler and web server, until SIGTERM or SIGINT.

SIGHUP reloads the configuration (see ``encmond.reload``).

``encmond run`` applies gevent's monkey patching before this module is
imported, so PyMySQL's sockets and every sleep yield to other greenlets.
"""

from __future__ import annotations

import logging
import signal
import sqlite3

import gevent
import gevent.event
from gevent.pywsgi import WSGIServer

from encmond import __version__
from encmond.config import Config
from encmond.errors import StartupError
from encmond.loading import load
from encmond.monitor import Monitor
from encmond.plugins_loader import Plugins
from encmond.reload import Reloader
from encmond.scheduler import CheckScheduler
from encmond.sdnotify import SystemdNotifier, watchdog_interval
from encmond.status import StatusLine
from encmond.store import Store
from encmond.webapp import make_app
from encmond.webserver import make_server

log = logging.getLogger(__name__)

# gevent-websocket logs every HTTP request at INFO.
logging.getLogger("geventwebsocket.handler").setLevel(logging.WARNING)


class Daemon:
    """One running encmond: call ``run`` and it returns once it has stopped.

    Under systemd it speaks the notify protocol: READY=1 once the store is open
    and the HTTP port is bound, STATUS= when the summary changes, WATCHDOG=1
    from the event loop, RELOADING=1 during a SIGHUP reload, STOPPING=1 at the
    end.
    """

    def __init__(
        self, config: Config, plugins: Plugins, notifier: SystemdNotifier | None = None
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.notifier = notifier or SystemdNotifier()
        self.stopping = gevent.event.Event()
        self.reload_requested = gevent.event.Event()
        self.store: Store | None = None
        self.monitor: Monitor | None = None
        self.scheduler: CheckScheduler | None = None
        self.server: WSGIServer | None = None
        self.status: StatusLine | None = None
        self.greenlets: list[gevent.Greenlet] = []

    def run(self) -> int:
        gevent.signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        gevent.signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        gevent.signal_handler(signal.SIGHUP, self.request_reload)
        try:
            self.start()
            self.stopping.wait()
        finally:
            self.shutdown()
        log.info("encmond stopped")
        return 0

    def start(self) -> None:
        self.store = open_store(self.config.storage["path"])
        self.monitor = Monitor(self.config, self.plugins, self.store)
        self.start_web()
        self.monitor.dispatcher.start()
        self.scheduler = CheckScheduler(self.monitor)
        self.scheduler.start()
        self.status = StatusLine(self.monitor, self.notifier)
        self.status.start()
        reloader = Reloader(self.monitor, self.scheduler, self.status, load)
        self.greenlets.append(gevent.spawn(self.serve_reloads, reloader))
        log.info(
            "encmond %s started: source %s, targets %s, %d tables%s",
            __version__,
            self.config.source,
            ", ".join(str(t) for t in self.config.targets.values()),
            len(self.config.tables),
            self.web_address(),
        )
        self.status.ready()
        self.start_watchdog()

    def start_web(self) -> None:
        web = self.config.web
        if web.host is None:
            return
        self.server = make_server(web, make_app(self.monitor))
        try:
            self.server.start()
        except OSError as exc:
            self.server = None
            raise StartupError(
                f"cannot listen on {web.host}:{web.port} (web.listen): "
                f"{exc.strerror or exc}"
            ) from None

    def start_watchdog(self) -> None:
        interval = watchdog_interval()
        if interval is None or not self.notifier.enabled:
            return
        self.greenlets.append(gevent.spawn(self.ping_watchdog, interval))
        log.info("systemd watchdog enabled: a ping every %g s", interval)

    def ping_watchdog(self, interval: float) -> None:
        """Ping from a greenlet, so a blocked event loop stops the pings."""
        while True:
            self.notifier.watchdog()
            gevent.sleep(interval)

    def web_address(self) -> str:
        if self.server is None:
            return ", web off"
        host, port = self.server.address[:2]
        return f", dashboard at http://{host}:{port}/"

    def request_stop(self, name: str) -> None:
        if not self.stopping.is_set():
            log.info("%s received, stopping", name)
        self.stopping.set()

    def request_reload(self) -> None:
        log.info("SIGHUP received, reloading the configuration")
        self.reload_requested.set()

    def serve_reloads(self, reloader: Reloader) -> None:
        """Reload once per request; signals that arrive during a reload coalesce."""
        while True:
            self.reload_requested.wait()
            self.reload_requested.clear()
            try:
                reloader.reload()
            except Exception:
                log.exception("reloading the configuration failed")

    def shutdown(self) -> None:
        self.notifier.stopping()
        gevent.killall(self.greenlets)
        if self.status is not None:
            self.status.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.monitor is not None:
            self.monitor.dispatcher.stop()
        if self.server is not None:
            self.server.stop(timeout=2)
        if self.monitor is not None:
            self.monitor.close()
        if self.store is not None:
            self.store.close()
        self.notifier.close()


def open_store(path: str) -> Store:
    """Open the store, turning a file system or SQLite error into a StartupError."""
    try:
        return Store(path)
    except (OSError, sqlite3.Error) as exc:
        raise StartupError(
            f"cannot open the SQLite database {path} (storage.path): {exc}"
        ) from None
