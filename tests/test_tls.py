"""encmond's own connections to a MariaDB server that offers TLS."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from encmond.config import load_config
from encmond.db import Database
from encmond.errors import ServerUnavailable
from pair import Server

PASSWORD = "tls-test-password"


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A server with a certificate for 127.0.0.1 signed by the test CA ``ca.pem``."""
    directory = tmp_path_factory.mktemp("tls")
    make_ca(directory, "ca")
    make_ca(directory, "other-ca")
    (directory / "san.cnf").write_text("subjectAltName = IP:127.0.0.1\n")
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    server = Server(
        "tls",
        directory / "server",
        server_id=1,
        extra_options=[
            f"--ssl-cert={directory / 'server.pem'}",
            f"--ssl-key={directory / 'server.key'}",
            f"--ssl-ca={directory / 'ca.pem'}",
        ],
    )
    server.start()
    try:
        server.execute(f"CREATE USER 'mon'@'%' IDENTIFIED BY '{PASSWORD}'")
        yield server, directory
    finally:
        server.stop()


def database(tls_server, tmp_path, ssl=None) -> Database:
    server, _ = tls_server
    settings = {
        "host": server.host,
        "port": server.port,
        "user": "mon",
        "password": PASSWORD,
        "retry_attempts": 1,
    }
    if ssl is not None:
        settings["ssl"] = ssl
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"source": settings, "target": settings}))
    return Database(load_config(str(path)).source)


def cipher(db: Database) -> str:
    return db.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")[0]["Value"]


def test_tls_without_settings(tls_server, tmp_path):
    """Without ``ssl`` settings the connection still uses TLS when offered."""
    assert cipher(database(tls_server, tmp_path)) != ""


def test_tls_verified_with_ca(tls_server, tmp_path):
    _, directory = tls_server
    ssl = {"ca": str(directory / "ca.pem"), "verify_identity": True}
    assert cipher(database(tls_server, tmp_path, ssl)) != ""


def test_tls_wrong_ca_rejected(tls_server, tmp_path):
    _, directory = tls_server
    ssl = {"ca": str(directory / "other-ca.pem"), "verify_cert": True}
    with pytest.raises(ServerUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        database(tls_server, tmp_path, ssl).query("SELECT 1")
