"""Run ``encmond run`` as a child process and talk to its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, interval: float = 0.2, message: str = ""):
    """Poll ``condition`` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(message or f"condition not met within {timeout} s")
        time.sleep(interval)


class DaemonProcess:
    """One ``encmond run`` child; its stderr goes to a log file in ``directory``."""

    def __init__(
        self,
        config_path: Path,
        directory: Path,
        env: dict | None = None,
        log_level: str = "DEBUG",
        launcher: list[str] | None = None,
    ):
        self.config_path = Path(config_path)
        self.directory = Path(directory)
        self.env = env or {}
        self.log_level = log_level
        self.launcher = launcher or [sys.executable, "-m", "encmond"]
        self.process: subprocess.Popen | None = None
        self.port = free_port()
        config = yaml.safe_load(self.config_path.read_text())
        config["web"] = {**config.get("web", {}), "listen": f"127.0.0.1:{self.port}"}
        # Unsorted, so that targets keep their configured order.
        self.config_path.write_text(
            yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
        )
        self.log_path = self.directory / f"encmond-{self.port}.log"
        self.db_path = config["storage"]["path"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        env = {**os.environ}
        env.pop("JOURNAL_STREAM", None)
        env.update(self.env)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                *self.launcher,
                "--log-level",
                self.log_level,
                "run",
                "-c",
                str(self.config_path),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_for(
            self.listening,
            timeout,
            message=f"encmond did not start:\n{self.log_text()}",
        )

    def listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"encmond exited with {self.process.returncode}:\n{self.log_text()}"
            )
        try:
            self.get("/api/health")
        except OSError:
            return False
        return True

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict | str]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, body, kind = (
                    response.status,
                    response.read(),
                    response.headers.get("Content-Type", ""),
                )
        except urllib.error.HTTPError as error:
            status, body, kind = (
                error.code,
                error.read(),
                error.headers.get("Content-Type", ""),
            )
        text = body.decode()
        return status, json.loads(text) if "json" in kind else text

    def json(self, path: str) -> dict:
        status, body = self.get(path)
        assert status == 200, (path, status, body)
        return body

    def result(self, check: str, subject: str, server: str | None = None):
        for result in self.json("/api/metrics")["results"]:
            if (
                result["check"] == check
                and result["subject"] == subject
                and (server is None or result["server"] == server)
            ):
                return result
        return None

    def alerts(self, state: str | None = None) -> list[dict]:
        query = f"?state={state}" if state else ""
        return self.json(f"/api/alerts{query}")["alerts"]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30, after: int = 0) -> int:
        """Wait until ``text`` is in the log past offset ``after``; return its end."""

        def find() -> int:
            found = self.log_text().find(text, after)
            return found + len(text) if found >= 0 else 0

        return wait_for(find, timeout, message=f"no {text!r} in:\n{self.log_text()}")

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; returns the exit status (None if it had to be killed)."""
        if self.process is None:
            return None
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.log.close()
        return self.process.returncode


class NotifyReceiver:
    """A systemd notify socket: an AF_UNIX datagram socket bound at ``address``.

    ``address`` is a file system path, or an abstract name starting with "@".
    A thread collects every datagram as a dict of its KEY=VALUE lines.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bound = "\0" + address[1:] if address.startswith("@") else address
        self.socket.bind(bound)
        self.socket.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.receive, daemon=True)
        self.thread.start()

    def receive(self) -> None:
        while not self.closed.is_set():
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            lines = data.decode().splitlines()
            self.messages.append(dict(line.split("=", 1) for line in lines))

    def wait_for(self, key: str, timeout: float = 30, after: int = 0) -> int:
        """Wait for a message with ``key`` at ``after`` or later; return its index."""

        def find() -> int | None:
            for index in range(after, len(self.messages)):
                if key in self.messages[index]:
                    return index + 1
            return None

        return wait_for(find, timeout, message=f"no {key} in {self.messages}") - 1

    def statuses(self) -> list[str]:
        return [m["STATUS"] for m in list(self.messages) if "STATUS" in m]

    def close(self) -> None:
        self.closed.set()
        self.thread.join(5)
        self.socket.close()
