"""The ``connection`` check: is each server reachable, and how it answers."""

from __future__ import annotations

import time

from encmond import Check, Result, Status, hookimpl
from encmond.errors import ServerUnavailable
from encmond.settings import Setting, at_least


class Connection(Check):
    """Connects to one server: latency, version, read_only and the TLS cipher."""

    name = "connection"
    scope = "server"
    interval = 10.0
    options = {
        "probe_timeout": Setting(
            at_least(1.0),
            10.0,
            "a server that does not respond within this is down, even when it "
            "accepts TCP connections (a hung process)",
        ),
    }

    def run(self, ctx):
        # A fresh connection with a short read timeout, so that a hung server
        # (one that accepts TCP but never replies) is reported down in time.
        try:
            with ctx.server.session(
                read_timeout=self.settings["probe_timeout"]
            ) as session:
                started = time.monotonic()
                session.query("SELECT 1")
                latency = time.monotonic() - started
                facts = session.query_one(
                    "SELECT VERSION() AS version, @@GLOBAL.read_only AS read_only, "
                    "@@hostname AS hostname, @@server_id AS server_id"
                )
                cipher = session.query_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        except ServerUnavailable as exc:
            return [
                Result(
                    subject=ctx.name,
                    status=Status.CRITICAL,
                    message=f"down: {exc.reason}",
                    metrics={"up": 0, "latency_seconds": None},
                    details={"error": exc.reason, "role": ctx.server.config.role},
                )
            ]
        tls = (cipher or {}).get("Value") or None
        read_only = bool(int(facts["read_only"]))
        message = (
            f"up, {facts['version']}, {latency * 1000:.1f} ms, "
            f"read_only {'ON' if read_only else 'OFF'}, TLS {tls or 'off'}"
        )
        return [
            Result(
                subject=ctx.name,
                status=Status.OK,
                message=message,
                metrics={
                    "up": 1,
                    "latency_seconds": latency,
                    "read_only": int(read_only),
                },
                details={
                    "role": ctx.server.config.role,
                    "version": facts["version"],
                    "hostname": facts["hostname"],
                    "server_id": facts["server_id"],
                    "read_only": read_only,
                    "tls_cipher": tls,
                    "address": f"{ctx.server.config.host}:{ctx.server.config.port}",
                },
            )
        ]


@hookimpl
def register_checks():
    return [Connection]
