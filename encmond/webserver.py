"""The HTTP server: gevent's WSGIServer with WebSocket upgrades on /ws."""

from __future__ import annotations

import logging
import socket

import bottle
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

from encmond.config import WebConfig
from encmond.webauth import warn_if_exposed

log = logging.getLogger(__name__)


class RequestHandler(WebSocketHandler):
    """Serves one connection; upgrades only the WebSocket requests the app admits."""

    def handle(self):
        # pywsgi sends a response's headers and body in two writes. On a
        # keep-alive connection, such as a Prometheus scrape's, Nagle's
        # algorithm then delays the body until the client's delayed ACK, about
        # 40 ms on Linux, so the connection turns it off.
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            log.debug("TCP_NODELAY not set on %s: %s", self.client_address, exc)
        super().handle()

    def upgrade_websocket(self):
        # gevent-websocket sends "101 Switching Protocols" before it calls the
        # application, so a refusal has to happen here. A refused request
        # reaches the application as plain HTTP, and its /ws route returns the
        # 401 or 403.
        refusal = getattr(self.application, "websocket_refusal", None)
        if refusal is not None and refusal(self.environ) is not None:
            return None
        return super().upgrade_websocket()


def make_server(web: WebConfig, app: bottle.Bottle) -> WSGIServer:
    """Return an unstarted server of ``app`` on ``web.host``:``web.port``."""
    warn_if_exposed(web)
    return WSGIServer(
        (web.host, web.port),
        app,
        handler_class=RequestHandler,
        log=None,
        error_log=logging.getLogger("encmond.web"),
    )
