"""Real notification receivers on loopback (HTTP, SMTP with STARTTLS,
Alertmanager) and in-process monitors that deliver to them."""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from daemon_process import free_port, wait_for
from encmond.loading import load
from encmond.monitor import Monitor
from encmond.store import Store

HANG = "hang"  # a response that never comes


class Monitors:
    """Builds real Monitors from configuration sections, without a daemon.

    The servers are configured on a closed loopback port and never
    contacted; tests feed results to ``monitor.alerts`` and deliver with
    ``monitor.dispatcher.workers[name]``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.built: list[tuple[Monitor, Store]] = []

    def build(self, **sections: Any) -> Monitor:
        config = {
            "source": {"host": "127.0.0.1", "port": 9, "user": "encmond"},
            "target": {"host": "127.0.0.1", "port": 9, "user": "encmond"},
            "tables": ["shop.orders", "shop.audit"],
            "storage": {"path": str(self.directory / "encmond.db")},
            "web": {"listen": None},
            "plugins": {"dirs": []},
            "notifiers": [{"type": "log"}],
            **sections,
        }
        path = self.directory / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        loaded, plugins = load(str(path))
        store = Store(loaded.storage["path"])
        monitor = Monitor(loaded, plugins, store)
        self.built.append((monitor, store))
        return monitor

    def __enter__(self) -> Monitors:
        return self

    def __exit__(self, *exc_info) -> None:
        for monitor, store in self.built:
            monitor.close()
            store.close()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class HTTPReceiver:
    """An HTTP server that records every POST and responds as scripted.

    ``responses`` lists the status codes of the first requests (or ``HANG``,
    which holds the request open until the receiver stops); later requests
    get ``default``.
    """

    def __init__(self, responses: list | None = None, default: int | str = 200):
        self.responses = list(responses or [])
        self.default = default
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.handle(self)

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        with self.lock:
            status = self.responses.pop(0) if self.responses else self.default
            self.requests.append(
                Request(handler.path, dict(handler.headers), body, status)
            )
        if status == HANG:
            self.released.wait()
            return
        payload = b"ok" if status < 400 else b"receiver error"
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def accepted(self) -> list[Request]:
        """Return the requests that got a 2xx status."""
        with self.lock:
            return [
                r
                for r in self.requests
                if isinstance(r.status, int) and 200 <= r.status < 300
            ]

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def __enter__(self) -> HTTPReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a certificate for localhost and 127.0.0.1 and its key; return both."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "smtp-cert.pem"
    key_path = directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the SMTP receiver saw: messages, logins, and whether TLS was on."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)


@contextmanager
def smtp_receiver(
    directory: Path, user: str, password: str
) -> Iterator[tuple[int, Path, Mailbox]]:
    """Run aiosmtpd on loopback, requiring STARTTLS and a login.

    Yields the port, the CA file that verifies it and the Mailbox.
    """
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed_certificate(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        valid = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (user, password)
        mailbox.logins.append((auth_data.login.decode(), session.ssl is not None))
        # handled=False makes aiosmtpd reply 535 to a failed login itself.
        return AuthResult(success=valid, handled=False)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            mailbox.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "data": envelope.content.decode().replace("\r\n", "\n"),
                    "tls": session.ssl is not None,
                    "authenticated": session.authenticated,
                }
            )
            return "250 OK"

    port = free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticate,
    )
    controller.start()
    try:
        yield port, cert, mailbox
    finally:
        controller.stop()


@contextmanager
def alertmanager(directory: Path) -> Iterator[str]:
    """Run Prometheus Alertmanager on a free loopback port; yield its base URL."""
    program = shutil.which("prometheus-alertmanager")
    assert program, "install the Debian package prometheus-alertmanager"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: nowhere\n  group_wait: 1s\nreceivers:\n  - name: nowhere\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(directory / "alertmanager.log", "wb")
    process = subprocess.Popen(
        [
            program,
            f"--config.file={config}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: ready(url, process, directory),
            30,
            message="Alertmanager did not become ready",
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def ready(url: str, process: subprocess.Popen, directory: Path) -> bool:
    if process.poll() is not None:
        text = (directory / "alertmanager.log").read_text(errors="replace")
        raise RuntimeError(f"Alertmanager exited with {process.returncode}:\n{text}")
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def alertmanager_alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/api/v2/alerts", timeout=10) as response:
        return json.loads(response.read())
