"""The PyMySQL helper against the real pair: pooling, errors and abandoned queries."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import yaml

from daemon_process import wait_for

ABANDON = """\
from gevent import monkey

monkey.patch_all()

import gevent

from encmond.config import load_config
from encmond.db import Database

config = load_config(CONFIG_PATH)
database = Database(config.targets["target"])
def started():
    gevent.sleep(0.5)
    rows = Database(config.targets["target"]).query("SHOW PROCESSLIST")
    if any("abandoned_by_encmond" in (row["Info"] or "") for row in rows):
        print("started")


watcher = gevent.spawn(started)
try:
    with gevent.Timeout(1):
        database.query(
        "SELECT SUM(seq % 7) AS abandoned_by_encmond FROM mysql.seq_1_to_100000000000"
    )
except gevent.Timeout:
    pass
gevent.sleep(2)
"""


def sleeping(server):
    return [
        row
        for row in server.execute("SHOW FULL PROCESSLIST")
        if "abandoned_by_encmond" in (row["Info"] or "") and row["User"] != "root"
    ]


def test_interrupted_query_killed(pair, write_config, tmp_path):
    """A statement abandoned by a check timeout does not keep running.

    The statement is a long scan: MariaDB notices a closed client connection
    during SLEEP(), but not during a scan, which runs on until killed.
    """
    path = write_config()
    config = yaml.safe_load(path.read_text())
    config["target"]["read_timeout"] = "60s"
    path.write_text(yaml.safe_dump(config))
    script = tmp_path / "abandon.py"
    script.write_text(ABANDON.replace("CONFIG_PATH", repr(str(path))))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    wait_for(
        lambda: not sleeping(pair.target),
        10,
        message=textwrap.shorten(str(sleeping(pair.target)), 300),
    )
