"""The wheel and sdist, and the wheel installed into a clean virtual environment.

The clean environment gets encmond's wheel and its dependencies from the
package index, and nothing from the test environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from encmond import __version__

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = REPO / "tests" / "data" / "example-plugin"
BUNDLED_CHECKS = ("connection", "replica_lag", "checksum", "row_count")
DASHBOARD = (
    "index.html",
    "style.css",
    "app.js",
    "alerts.js",
    "api.js",
    "chart.js",
    "dom.js",
    "overview.js",
    "tables.js",
    "target.js",
    "vendor/uplot/uPlot.iife.min.js",
    "vendor/uplot/uPlot.min.css",
    "vendor/uplot/LICENSE",
)
PASSWORDS = {
    "SOURCE_DB_PASSWORD": "source-secret",
    "TARGET_DB_PASSWORD": "target-secret",
}
# Left out of the copy that the build reads: local environments and build output.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".demo",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "test-artifacts",
)


@dataclass
class Built:
    wheel: Path
    sdist: Path


def run(command, timeout=600, check=True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if check:
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(**extra) -> dict[str, str]:
    """The environment for the clean venv's commands: no test venv, no config."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "ENCMOND_CONFIG")
    }
    return {**env, **extra}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """Build the sdist, then the wheel from it, as ``python -m build`` does."""
    source = tmp_path_factory.mktemp("source") / "encmond"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, source])
    (wheel,) = out.glob("encmond-*.whl")
    (sdist,) = out.glob("encmond-*.tar.gz")
    return Built(wheel, sdist)


@pytest.fixture(scope="module")
def venv(tmp_path_factory, built) -> Path:
    """A new virtual environment with only the wheel and its dependencies."""
    path = tmp_path_factory.mktemp("venv") / "env"
    run([sys.executable, "-m", "venv", path])
    run([path / "bin" / "pip", "install", "--quiet", built.wheel], env=clean_env())
    return path


def encmond(venv: Path, *args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return run(
        [venv / "bin" / "encmond", *args],
        timeout=120,
        check=False,
        env=clean_env(**(env or {})),
        cwd=cwd or venv,
    )


def test_wheel_files(built):
    names = zipfile.ZipFile(built.wheel).namelist()
    for name in DASHBOARD:
        assert f"encmond/web/{name}" in names
    for check in BUNDLED_CHECKS:
        assert f"encmond/plugins/checks/{check}.py" in names
    assert "encmond/plugins/notifiers/log.py" in names
    assert not [n for n in names if n.startswith(("plugins/", "web/", "tests/"))]


def test_sdist_files(built):
    prefix = f"encmond-{__version__}/"
    names = set(tarfile.open(built.sdist).getnames())
    for name in [
        "systemd/encmond.service",
        "config.example.yaml",
        "README.md",
        "LICENSE",
        "Makefile",
        "tests/pair.py",
        "tests/data/example-plugin/pyproject.toml",
        "web/index.html",
    ]:
        assert prefix + name in names
    assert not [n for n in names if "__pycache__" in n]


def test_wheel_version(venv):
    done = encmond(venv, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"encmond {__version__}"


def test_wheel_dashboard_files(venv):
    done = run(
        [
            venv / "bin" / "python",
            "-c",
            "from encmond.webapp import web_root; print(web_root())",
        ],
        env=clean_env(),
        cwd=venv,
    )
    root = Path(done.stdout.strip())
    assert root.is_relative_to(venv)
    for name in DASHBOARD:
        assert (root / name).is_file()


def test_wheel_plugins(venv):
    done = encmond(venv, "plugins", "-c", REPO / "config.example.yaml", env=PASSWORDS)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    for check in BUNDLED_CHECKS:
        assert [f"encmond.plugins.checks.{check}", "bundled", check, "-"] in rows
    assert ["encmond.plugins.notifiers.log", "bundled", "-", "log"] in rows


def test_wheel_validate_example(venv):
    done = encmond(venv, "validate", "-c", REPO / "config.example.yaml", env=PASSWORDS)
    assert done.returncode == 0, done.stderr
    assert "configuration OK" in done.stdout
    assert "checks: connection, replica_lag, checksum, row_count" in done.stdout
    for password in PASSWORDS.values():
        assert password not in done.stdout + done.stderr


def test_example_plugin_check(venv, pair, write_config, tmp_path):
    source = tmp_path / "example-plugin"
    shutil.copytree(EXAMPLE_PLUGIN, source, ignore=NOT_SOURCES)
    # --no-deps: its dependency "encmond" is the wheel already installed.
    run([venv / "bin" / "pip", "install", "--quiet", "--no-deps", source])
    try:
        config_path = write_config(checks={"server_uptime": {"min_uptime": "1s"}})
        listed = encmond(venv, "plugins", "-c", config_path)
        assert "entry point of encmond-example-plugin 1.0.0" in listed.stdout
        done = encmond(
            venv, "check", "--json", "--only", "server_uptime", "-c", config_path
        )
    finally:
        run([venv / "bin" / "pip", "uninstall", "--yes", "encmond-example-plugin"])
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "OK"
    results = {r["server"]: r for r in report["results"]}
    assert set(results) == {"source", "target"}
    for result in results.values():
        assert result["check"] == "server_uptime"
        assert result["metrics"]["uptime_seconds"] > 0
