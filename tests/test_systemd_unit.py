"""The systemd unit: systemd-analyze accepts it, and its settings hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_process import DaemonProcess, wait_for

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "encmond.service"
INSTALLED_ENCMOND = "/opt/encmond/bin/encmond"

# Sets the kernel's memory-deny-write-execute flag (PR_SET_MDWE, Linux 6.3 and
# newer), which rejects writable and executable mappings and mappings that turn
# executable, as MemoryDenyWriteExecute=yes does.
SET_MDWE = """\
import ctypes, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0):
    sys.exit(f"prctl(PR_SET_MDWE) failed: errno {ctypes.get_errno()}")
"""
# Starts encmond with the flag set.
MDWE_LAUNCHER = (
    SET_MDWE
    + """\
from encmond.cli import main
sys.exit(main(sys.argv[1:]))
"""
)


@pytest.fixture
def rendered(tmp_path):
    """The unit with ExecStart pointing at this environment's encmond."""
    encmond = Path(sys.executable).parent / "encmond"
    assert encmond.is_file(), f"{encmond} is missing; install encmond first"
    text = UNIT.read_text()
    assert INSTALLED_ENCMOND in text
    path = tmp_path / "encmond.service"
    path.write_text(text.replace(INSTALLED_ENCMOND, str(encmond)))
    return path


def settings() -> list[tuple[int, str, str]]:
    """Return (line number, key, value) for every setting in the unit."""
    found = []
    for number, line in enumerate(UNIT.read_text().splitlines(), 1):
        match = re.match(r"^(\w+)=(.*)$", line)
        if match:
            found.append((number, match.group(1), match.group(2)))
    return found


def test_unit_verifies(rendered):
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(rendered)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_unit_exposure_low(rendered):
    # --threshold is in tenths: 20 means an exposure level of 2.0 or less.
    done = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            "--threshold=20",
            "--no-pager",
            str(rendered),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-2000:]


def test_unit_settings_commented():
    lines = UNIT.read_text().splitlines()
    for number, key, _ in settings():
        if key != "Description":
            assert lines[number - 2].startswith("#"), f"line {number}: {key}"


def test_unit_service_contract():
    found = {(key, value) for _, key, value in settings()}
    for expected in [
        ("Type", "notify"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "78"),
        ("StateDirectory", "encmond"),
        ("ConfigurationDirectory", "encmond"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
    ]:
        assert expected in found
    assert any(key == "WatchdogSec" for key, _ in found)


def test_daemon_without_wx_memory(write_config, tmp_path):
    probe = subprocess.run([sys.executable, "-c", SET_MDWE], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"this kernel cannot set PR_SET_MDWE: {probe.stderr.decode()}")
    encmond = DaemonProcess(
        write_config(),
        tmp_path,
        launcher=[sys.executable, "-c", MDWE_LAUNCHER],
    )
    try:
        encmond.start()
        wait_for(lambda: encmond.result("connection", "target"), 30)
        assert encmond.json("/api/health")["status"] == "up"
    finally:
        status = encmond.stop()
    assert status == 0, encmond.log_text()
