"""The daemon: store, monitor, scheduler and web server, until SIGTERM or SIGINT.

``encmond run`` applies gevent's monkey patching before this module is
imported, so PyMySQL's sockets and every sleep yield to other greenlets.
"""

from __future__ import annotations

import logging
import signal

import gevent
import gevent.event
from gevent.pywsgi import WSGIServer

from encmond import __version__
from encmond.config import Config, load_config
from encmond.monitor import Monitor
from encmond.plugins_loader import Plugins, load_plugins
from encmond.scheduler import CheckScheduler
from encmond.store import Store
from encmond.webapp import make_app
from encmond.webserver import make_server

log = logging.getLogger(__name__)

# gevent-websocket logs every HTTP request at INFO.
logging.getLogger("geventwebsocket.handler").setLevel(logging.WARNING)


def load(path: str) -> tuple[Config, Plugins]:
    """Load the configuration and plugins and validate one against the other."""
    config = load_config(path)
    plugins = load_plugins(config.plugin_dirs)
    config.bind_plugins(plugins.checks, plugins.notifiers)
    return config, plugins


class Daemon:
    """One running encmond: call ``run`` and it returns once it has stopped."""

    def __init__(self, config: Config, plugins: Plugins) -> None:
        self.config = config
        self.plugins = plugins
        self.stopping = gevent.event.Event()
        self.store: Store | None = None
        self.monitor: Monitor | None = None
        self.scheduler: CheckScheduler | None = None
        self.server: WSGIServer | None = None

    def run(self) -> int:
        gevent.signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        gevent.signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        self.store = Store(self.config.storage["path"])
        self.monitor = Monitor(self.config, self.plugins, self.store)
        try:
            self.start_web()
            self.monitor.dispatcher.start()
            self.scheduler = CheckScheduler(self.monitor)
            self.scheduler.start()
            log.info(
                "encmond %s started: source %s, targets %s, %d tables%s",
                __version__,
                self.config.source,
                ", ".join(str(t) for t in self.config.targets.values()),
                len(self.config.tables),
                self.web_address(),
            )
            self.stopping.wait()
        finally:
            self.shutdown()
        log.info("encmond stopped")
        return 0

    def start_web(self) -> None:
        web = self.config.web
        if web.host is None:
            return
        self.server = make_server(web, make_app(self.monitor))
        self.server.start()

    def web_address(self) -> str:
        if self.server is None:
            return ", web off"
        host, port = self.server.address[:2]
        return f", dashboard at http://{host}:{port}/"

    def request_stop(self, name: str) -> None:
        if not self.stopping.is_set():
            log.info("%s received, stopping", name)
        self.stopping.set()

    def shutdown(self) -> None:
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
