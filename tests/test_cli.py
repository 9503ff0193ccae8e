"""The command line: output for runbooks, exit statuses and help texts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from daemon_process import free_port
from encmond.cli import COMMANDS, JSON, Command, build_parser, main


def encmond(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "encmond", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_check_json_only(write_config):
    done = encmond("check", "--json", "--only", "replica_lag", "-c", write_config())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "OK"
    assert report["counts"]["OK"] == len(report["results"])
    assert {r["check"] for r in report["results"]} == {"replica_lag"}
    (replication,) = [r for r in report["results"] if r["subject"] == "replication"]
    assert replication["metrics"]["lag_seconds"] == 0


def test_check_only_comma_list(write_config):
    done = encmond(
        "check", "--json", "--only", "connection,replica_lag", "-c", write_config()
    )
    assert done.returncode == 0, done.stderr
    checks = {r["check"] for r in json.loads(done.stdout)["results"]}
    assert checks == {"connection", "replica_lag"}


def test_check_table(write_config):
    done = encmond("check", "--only", "connection", "-c", write_config())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "SERVER", "SUBJECT", "STATUS", "MESSAGE"]
    assert lines[1].split()[:4] == ["connection", "source", "source", "OK"]
    assert lines[2].split()[:4] == ["connection", "target", "target", "OK"]
    assert lines[-1] == "OK: 2 OK"
    assert lines[0].index("STATUS") == lines[1].index("OK")


def test_check_critical_exit(write_config, pair):
    # Nothing listens on a port that free_port just released.
    target = {**pair.encmond_config()["target"], "port": free_port()}
    config = write_config(target={**target, "retry_attempts": 1})
    done = encmond("check", "--only", "connection", "-c", config)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "CRITICAL: 1 OK, 1 CRITICAL"


@pytest.mark.parametrize(
    ("command", "status"), [(["check", "--only", "connection"], 2), (["cutover"], 1)]
)
def test_closed_pipe_keeps_status(write_config, pair, command, status):
    """A reader that leaves early (``| head``) does not turn a failure into 0."""
    target = {**pair.encmond_config()["target"], "port": free_port()}
    config = write_config(target={**target, "retry_attempts": 1})
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "encmond", *command, "-c", str(config)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.returncode == status, done.stderr
    assert "BrokenPipeError" not in done.stderr


def test_check_unknown_only(write_config):
    done = encmond("check", "--only", "replica_lagg", "-c", write_config())
    assert done.returncode == 78
    assert "--only: unknown check 'replica_lagg'" in done.stderr
    assert "did you mean 'replica_lag'?" in done.stderr


def test_usage_error_exit(capsys):
    assert main(["check", "--jsn"]) == 78
    assert "unrecognized arguments: --jsn" in capsys.readouterr().err


def test_log_level_after_command(write_config):
    done = encmond("validate", "--log-level", "WARNING", "-c", write_config())
    assert done.returncode == 0, done.stderr
    assert "configuration OK" in done.stdout


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_help_texts(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "-c FILE, --config FILE YAML configuration file" in text
    assert "default: $ENCMOND_CONFIG, else /etc/encmond/config.yaml" in text
    assert "DEBUG, INFO, WARNING or ERROR (default: INFO)" in text
    assert "exit status: 0" in text


def test_parser_extra_command():
    def verdict(args, path):
        return 0

    extra = Command("verdict", verdict, "print the verdict", options=(JSON,))
    args = build_parser([*COMMANDS, extra]).parse_args(["verdict", "--json"])
    assert args.command_spec is extra
    assert args.json is True
