"""Token auth and origin checks of the WebSocket on a running daemon."""

from __future__ import annotations

import base64
import json
import logging
import signal

import pytest
import websocket

from daemon_process import wait_for
from encmond.config import WebConfig
from encmond.settings import Secret
from encmond.webauth import warn_if_exposed

TOKEN = "ws/token+with=signs"


def token_protocol(token: str) -> str:
    return "bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def handshake_status(url: str, **options) -> int:
    """Open a WebSocket and return 101, or the HTTP status that refused it."""
    try:
        socket = websocket.create_connection(url, timeout=10, **options)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    try:
        assert json.loads(socket.recv())["type"] == "snapshot"
        assert socket.getsubprotocol() in (None, "encmond")
    finally:
        socket.close()
    return 101


def test_ws_admission(write_config, daemon, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    encmond = daemon(write_config(web={"auth_token_file": str(token_file)}))
    url = encmond.url.replace("http", "ws") + "/ws"
    own_origin = encmond.url
    cases = [
        ({}, 401),
        ({"subprotocols": ["encmond", token_protocol("wrong")]}, 401),
        ({"header": [f"Authorization: Bearer {TOKEN}"]}, 101),
        ({"subprotocols": ["encmond", token_protocol(TOKEN)]}, 101),
        (
            {
                "subprotocols": ["encmond", token_protocol(TOKEN)],
                "origin": "http://attacker.example",
            },
            403,
        ),
        (
            {
                "subprotocols": ["encmond", token_protocol(TOKEN)],
                "origin": own_origin.replace("127.0.0.1", "localhost"),
            },
            403,
        ),
        ({"header": [f"Authorization: Bearer {TOKEN}"], "origin": "null"}, 403),
        (
            {
                "subprotocols": ["encmond", token_protocol(TOKEN)],
                "origin": own_origin,
            },
            101,
        ),
    ]
    for options, expected in cases:
        assert handshake_status(url, **options) == expected, options
    assert encmond.get("/api/health")[0] != 401


def test_ws_subprotocol_selected(write_config, daemon):
    encmond = daemon(write_config())
    socket = websocket.create_connection(
        encmond.url.replace("http", "ws") + "/ws",
        subprotocols=["encmond"],
        timeout=10,
    )
    try:
        assert socket.getsubprotocol() == "encmond"
    finally:
        socket.close()


@pytest.mark.parametrize(
    ("host", "token", "warned"),
    [
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("192.0.2.10", None, True),
        ("0.0.0.0", Secret("x"), False),
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
    ],
)
def test_exposed_listen_warns(caplog, host, token, warned):
    with caplog.at_level(logging.WARNING, logger="encmond.webauth"):
        warn_if_exposed(WebConfig(host, 8080, token, None))
    assert ("not a loopback address" in caplog.text) is warned


def test_token_change_on_reload(write_config, daemon, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    encmond = daemon(write_config(web={"auth_token_file": str(token_file)}))
    first = {"Authorization": "Bearer first-token"}
    second = {"Authorization": "Bearer second-token"}
    assert encmond.get("/api/metrics", first)[0] == 200
    token_file.write_text("second-token\n")
    encmond.signal(signal.SIGHUP)
    wait_for(
        lambda: encmond.get("/api/metrics", second)[0] == 200,
        30,
        message="the token from the reloaded configuration was not accepted",
    )
    assert encmond.get("/api/metrics", first)[0] == 401


def test_foreign_host_refused_without_token(write_config, daemon):
    """A DNS-rebinding page reaches 127.0.0.1 with its own name in Host."""
    encmond = daemon(write_config())
    port = encmond.url.rsplit(":", 1)[1]
    evil = {"Host": f"evil.example:{port}"}
    status, body = encmond.get("/api/health", headers=evil)
    assert status == 403
    assert "not a loopback name" in body["error"]
    assert encmond.get("/api/alerts", headers=evil)[0] == 403
    assert encmond.get("/api/alerts", headers={"Host": f"localhost:{port}"})[0] == 200
    assert encmond.get("/api/alerts")[0] == 200
    url = encmond.url.replace("http", "ws") + "/ws"
    assert handshake_status(url, host=f"evil.example:{port}") == 403
    assert handshake_status(url) == 101


def test_foreign_host_allowed_with_token(write_config, daemon, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    encmond = daemon(write_config(web={"auth_token_file": str(token_file)}))
    port = encmond.url.rsplit(":", 1)[1]
    headers = {"Host": f"monitor.example:{port}", "Authorization": f"Bearer {TOKEN}"}
    assert encmond.get("/api/alerts", headers=headers)[0] == 200
