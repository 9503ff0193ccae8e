"""Benchmark heartbeat lag against the apply delay measured directly.

Starts a local source and encrypted target (tests/pair.py), runs
``pt-heartbeat --update --utc --interval 1`` on the source, and for several
steady lags compares, round by round on the same pair:

- the direct apply delay: a row written on the source with the writer's
  clock, polled on the target every 5 ms until it appears;
- encmond's heartbeat lag (``encmond.heartbeat.measure``, as replica_lag
  reads it), on pt-heartbeat's table;
- ``pt-heartbeat --check --utc`` on the target.

Lag comes from a loopback proxy that holds the replication stream back by a
set time, and from MASTER_DELAY. MASTER_DELAY counts from an event's
whole-second timestamp, so a row's delay depends on when in the second it
was written: each probe row is written just after pt-heartbeat's write,
which pt-heartbeat makes on the whole second, so both rows have the same
phase.

Usage: python scripts/bench_lag.py [--rounds N]. It prints a Markdown table.
"""

from __future__ import annotations

import argparse
import math
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from delay_proxy import DelayProxy  # noqa: E402
from encmond.config import ServerConfig, Table  # noqa: E402
from encmond.db import Database  # noqa: E402
from encmond.heartbeat import measure  # noqa: E402
from encmond.settings import Secret  # noqa: E402
from pair import Pair, start_pair  # noqa: E402

HEARTBEAT = Table("percona", "heartbeat")
PROBE_POLL = 0.005  # seconds between two reads of the probe row on the target
PHASE = 0.01  # seconds after the whole second at which probe rows are written
# (name, proxy delay in seconds, MASTER_DELAY in seconds)
SCENARIOS = [
    ("caught up", 0.0, 0),
    ("network 0.3 s", 0.3, 0),
    ("network 1.2 s", 1.2, 0),
    ("network 2.5 s", 2.5, 0),
    ("MASTER_DELAY 2", 0.0, 2),
]


def database(pair: Pair, server, name: str) -> Database:
    return Database(
        ServerConfig(
            name=name,
            role=name,
            host=server.host,
            port=server.port,
            user=pair.monitor_user,
            password=Secret(pair.monitor_password),
            ssl=None,
            platform="mariadb",
            connect_timeout=5.0,
            read_timeout=30.0,
            write_timeout=30.0,
            retry_attempts=1,
            retry_delay=1.0,
        )
    )


def start_writer(pair: Pair) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "pt-heartbeat",
            "--update",
            "--create-table",
            "--utc",
            "--interval=1",
            "--database=percona",
            "--host=127.0.0.1",
            f"--port={pair.source.port}",
            "--user=root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def pt_check(pair: Pair) -> float:
    output = subprocess.run(
        [
            "pt-heartbeat",
            "--check",
            "--utc",
            "--master-server-id=1",
            "--database=percona",
            "--host=127.0.0.1",
            f"--port={pair.target.port}",
            "--user=root",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return float(output.stdout)


def direct_delay(pair: Pair, probe_id: int) -> float:
    """Write a probe row just after a whole second and time its arrival."""
    now = time.time()
    time.sleep(math.floor(now) + 1 + PHASE - now)
    source = pair.source.connect()
    target = pair.target.connect()
    try:
        with source.cursor() as cursor:
            written = time.time()
            cursor.execute(
                "INSERT INTO bench.probe VALUES (%s, %s)", (probe_id, written)
            )
        with target.cursor() as cursor:
            while True:
                before = time.time()
                cursor.execute("SELECT 1 FROM bench.probe WHERE id = %s", (probe_id,))
                after = time.time()
                if cursor.fetchone():
                    return (before + after) / 2 - written
                time.sleep(PROBE_POLL)
    finally:
        source.close()
        target.close()


def set_master_delay(pair: Pair, seconds: int, port: int) -> None:
    pair.target.execute_unlogged(
        "STOP SLAVE",
        f"CHANGE MASTER TO MASTER_DELAY={seconds}, MASTER_PORT={port}",
        "START SLAVE",
    )


def run_scenario(pair, proxy, source_db, target_db, scenario, rounds, first_id):
    name, network, master_delay = scenario
    set_master_delay(pair, master_delay, proxy.port)
    # The IO thread reconnects at full speed before the stream is held back.
    pair.wait_caught_up(timeout=120)
    proxy.delay = network
    time.sleep(max(network, master_delay) + 8)  # let the lag settle
    rows = []
    for index in range(rounds):
        direct = direct_delay(pair, first_id + index)
        encmond = measure(source_db, target_db, HEARTBEAT, 1, 1.0)
        peer = pt_check(pair)
        rows.append((direct, encmond.lag, encmond.method, peer))
    proxy.delay = 0.0
    return name, rows


def summarise(name: str, rows) -> str:
    direct = [row[0] for row in rows]
    ours = [abs(row[1] - row[0]) for row in rows]
    theirs = [abs(row[3] - row[0]) for row in rows]
    applied = sum(row[2] == "applied" for row in rows)
    ratio = statistics.mean(theirs) / max(statistics.mean(ours), 1e-6)
    return (
        f"| {name} | {statistics.mean(direct):.3f} | "
        f"{statistics.mean(row[1] for row in rows):.3f} | "
        f"{statistics.mean(ours):.3f} | {max(ours):.3f} | "
        f"{statistics.mean(row[3] for row in rows):.3f} | "
        f"{statistics.mean(theirs):.3f} | {max(theirs):.3f} | {ratio:.1f} | "
        f"{applied}/{len(rows)} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds per lag")
    parser.add_argument(
        "--only", metavar="LAG", help="run only the lag named so, e.g. 'caught up'"
    )
    parser.add_argument(
        "--raw", action="store_true", help="also print every round's values"
    )
    args = parser.parse_args()
    if shutil.which("pt-heartbeat") is None:
        print(
            "pt-heartbeat not found: apt-get install percona-toolkit", file=sys.stderr
        )
        return 1
    basedir = Path(tempfile.mkdtemp(prefix="bench-lag-"))
    pair = start_pair(basedir)
    writer = None
    try:
        pair.source.execute("CREATE DATABASE bench")
        pair.source.execute("CREATE TABLE bench.probe (id INT PRIMARY KEY, ts DOUBLE)")
        pair.source.execute("CREATE DATABASE percona")
        writer = start_writer(pair)
        time.sleep(2)
        if writer.poll() is not None:
            raise RuntimeError(f"pt-heartbeat --update exited: {writer.stderr.read()}")
        pair.wait_caught_up()
        source_db = database(pair, pair.source, "source")
        target_db = database(pair, pair.target, "target")
        print(
            f"machine: {platform.node()}, {platform.processor() or platform.machine()}"
        )
        print(
            "| lag | direct mean s | encmond mean s | encmond error mean s | "
            "encmond error max s | pt-heartbeat mean s | pt-heartbeat error mean s "
            "| pt-heartbeat error max s | error ratio pt/encmond | encmond applied |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        with DelayProxy(pair.source.port) as proxy:
            for number, scenario in enumerate(SCENARIOS):
                if args.only and scenario[0] != args.only:
                    continue
                name, rows = run_scenario(
                    pair,
                    proxy,
                    source_db,
                    target_db,
                    scenario,
                    args.rounds,
                    1000 * (number + 1),
                )
                print(summarise(name, rows), flush=True)
                if args.raw:
                    for row in rows:
                        print(f"<!-- {name}: direct, encmond, method, pt: {row} -->")
            set_master_delay(pair, 0, pair.source.port)
    finally:
        if writer is not None:
            writer.terminate()
            writer.wait(10)
        pair.stop()
        shutil.rmtree(basedir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
