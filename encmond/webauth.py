"""Bearer-token authentication and WebSocket admission for the web app.

With ``web.auth_token_file`` set, every route needs ``Authorization: Bearer
<token>`` except the ones declared with ``auth=False``: the dashboard page, its
static files and ``/api/health``. Browsers cannot set headers on a WebSocket,
so ``/ws`` also accepts the token as an offered subprotocol
``bearer.<token as unpadded base64url>``, next to the subprotocol ``encmond``,
which the server selects. A WebSocket whose ``Origin`` header names another
host and port than its ``Host`` header is refused with 403.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import socket
import urllib.parse
from collections.abc import Callable

import bottle

from encmond.config import WebConfig
from encmond.responses import error_response
from encmond.settings import Secret

log = logging.getLogger(__name__)

WS_PATH = "/ws"
WS_PROTOCOL = "encmond"
TOKEN_PROTOCOL_PREFIX = "bearer."
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Refusal = tuple[int, str]


class TokenAuth:
    """The configured token, compared in constant time; no token admits all.

    ``token`` returns the token in force and is called per request, so a
    configuration reload that changes the token applies at once.
    """

    def __init__(self, token: Callable[[], Secret | None]) -> None:
        self._token = token

    def accepts(self, environ: dict, websocket: bool = False) -> bool:
        """Return whether the request carries the token (or none is configured).

        ``websocket`` also admits the token offered as a subprotocol.
        """
        token = self._token()
        if token is None:
            return True
        expected = token.reveal().encode()
        offered = [header_token(environ)]
        if websocket:
            offered += protocol_tokens(environ)
        # Compare every offered value, so the time taken does not depend on
        # which of them matched.
        matches = [
            hmac.compare_digest(value, expected)
            for value in offered
            if value is not None
        ]
        return any(matches)


def header_token(environ: dict) -> bytes | None:
    """Return the token of an ``Authorization: Bearer`` header, if any."""
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    # WSGI passes header values as latin-1 decoded str; this restores the bytes.
    return token.strip().encode("latin-1", "replace")


def protocol_tokens(environ: dict) -> list[bytes]:
    """Return the tokens offered as ``bearer.<base64url>`` WebSocket subprotocols."""
    tokens = []
    for protocol in environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "").split(","):
        protocol = protocol.strip()
        if not protocol.startswith(TOKEN_PROTOCOL_PREFIX):
            continue
        encoded = protocol[len(TOKEN_PROTOCOL_PREFIX) :]
        try:
            padding = "=" * (-len(encoded) % 4)
            tokens.append(base64.urlsafe_b64decode(encoded + padding))
        except (binascii.Error, ValueError):
            continue
    return tokens


def foreign_origin(environ: dict) -> bool:
    """Return whether the ``Origin`` header names another host:port than ``Host``.

    A request without ``Origin`` does not come from a browser page and is
    not foreign. The ``null`` origin of sandboxed pages is foreign.
    """
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return False
    try:
        parts = urllib.parse.urlsplit(origin)
        origin_port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        host = urllib.parse.urlsplit("//" + environ.get("HTTP_HOST", ""))
        host_port = host.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return True
    if not parts.hostname or parts.hostname != host.hostname:
        return True
    return origin_port != host_port


LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback_name(host: str) -> bool:
    """Return whether ``host`` is a loopback address or localhost, without DNS."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def foreign_host(environ: dict, web: WebConfig) -> str | None:
    """Return the refusal message for a ``Host`` header that is not loopback.

    It applies only while encmond listens on loopback without a token. A web
    page can then reach it through DNS rebinding: the page's own name,
    resolved again to 127.0.0.1, passes the browser's same-origin rule, but
    its requests still carry that name in ``Host``.
    """
    if web.auth_token is not None or not web.host or not is_loopback_name(web.host):
        return None
    header = environ.get("HTTP_HOST")
    if not header:
        return None
    try:
        name = urllib.parse.urlsplit("//" + header).hostname or ""
    except ValueError:
        name = ""
    if is_loopback_name(name) or name == web.host:
        return None
    return (
        f"Host {header!r} is not a loopback name: while encmond listens on "
        f"{web.host} without web.auth_token_file, it answers only requests to "
        f"http://{web.host}:{web.port}/ or localhost"
    )


class HostPlugin:
    """Bottle plugin: reject requests with a foreign ``Host`` header with 403."""

    name = "encmond_host"
    api = 2

    def __init__(self, web: Callable[[], WebConfig]) -> None:
        self.web = web

    def apply(self, callback: Callable, route: bottle.Route) -> Callable:
        def wrapper(*args, **kwargs):
            refusal = foreign_host(bottle.request.environ, self.web())
            if refusal is not None:
                return error_response(403, refusal)
            return callback(*args, **kwargs)

        return wrapper


def websocket_refusal(
    environ: dict, auth: TokenAuth, web: Callable[[], WebConfig]
) -> Refusal | None:
    """Return (status, message) when a WebSocket request must be refused."""
    host_refusal = foreign_host(environ, web())
    if host_refusal is not None:
        return 403, host_refusal
    if not auth.accepts(environ, websocket=True):
        return 401, UNAUTHORIZED
    if foreign_origin(environ):
        return 403, (
            f"WebSocket origin {environ.get('HTTP_ORIGIN')!r} is not this "
            "server; open the dashboard from this server's address"
        )
    return None


UNAUTHORIZED = (
    "missing or invalid token: send the contents of web.auth_token_file as "
    "'Authorization: Bearer <token>'"
)


def unauthorized() -> bottle.HTTPResponse:
    response = error_response(401, UNAUTHORIZED)
    response.set_header("WWW-Authenticate", 'Bearer realm="encmond"')
    return response


class AuthPlugin:
    """Bottle plugin: return 401 unless the request carries the token.

    A route opts out with ``auth=False`` in its route configuration.
    """

    name = "encmond_auth"
    api = 2

    def __init__(self, auth: TokenAuth) -> None:
        self.auth = auth

    def apply(self, callback: Callable, route: bottle.Route) -> Callable:
        if not route.config.get("auth", True):
            return callback
        websocket = route.rule == WS_PATH

        def wrapper(*args, **kwargs):
            if not self.auth.accepts(bottle.request.environ, websocket):
                return unauthorized()
            return callback(*args, **kwargs)

        return wrapper


def install(app: bottle.Bottle, auth: TokenAuth, web: Callable[[], WebConfig]) -> None:
    """Add the Host and token checks to ``app`` and the hooks its server calls.

    ``web`` returns the web configuration in force, read per request.
    """
    app.install(AuthPlugin(auth))
    app.install(HostPlugin(web))
    # gevent-websocket calls app_protocol to select a subprotocol, and
    # encmond.webserver.RequestHandler calls websocket_refusal before upgrading.
    app.app_protocol = lambda path: WS_PROTOCOL if path == WS_PATH else None
    app.websocket_refusal = lambda environ: websocket_refusal(environ, auth, web)


def warn_if_exposed(web: WebConfig) -> None:
    """Log a WARNING when the web server listens beyond loopback without a token."""
    if web.host is None or web.auth_token is not None or is_loopback(web.host):
        return
    log.warning(
        "the web server listens on %s:%d, which is not a loopback address, and "
        "web.auth_token_file is not set: anyone who can reach it can read the "
        "API, the WebSocket and /metrics; set web.auth_token_file or listen on "
        "127.0.0.1",
        web.host,
        web.port,
    )


def is_loopback(host: str) -> bool:
    """Return whether every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)
