"""Run ``encmond run`` as a child process and talk to its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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

    def __init__(self, config_path: Path, directory: Path, env: dict | None = None):
        self.config_path = Path(config_path)
        self.directory = Path(directory)
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.port = free_port()
        config = yaml.safe_load(self.config_path.read_text())
        config["web"] = {**config.get("web", {}), "listen": f"127.0.0.1:{self.port}"}
        self.config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
        self.log_path = self.directory / f"encmond-{self.port}.log"
        self.db_path = config["storage"]["path"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        env = {**os.environ, **self.env}
        env.pop("JOURNAL_STREAM", None)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "encmond",
                "--log-level",
                "DEBUG",
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
