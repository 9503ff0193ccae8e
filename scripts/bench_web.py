"""Benchmark the web API: /metrics against mysqld_exporter, and /api/history.

Starts, on free loopback ports under a temporary directory: a MariaDB source
and encrypted target (tests/pair.py) with 20 small tables, encmond watching
them, and Debian's prometheus-mysqld-exporter on the target with its own
credentials file. Before encmond starts, its store gets 24 hours of
one-second lag samples (86,400 rows in one series).

Then, in the same run: both /metrics endpoints are scraped in alternation
over keep-alive connections, and /api/history is requested for the whole
24 hours at two bucket counts. It prints the machine, each timing's median
and 95th percentile, and the ratio of the /metrics medians, in Markdown.

    .venv/bin/python scripts/bench_web.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# tests/ is on sys.path only now.
from daemon_process import DaemonProcess, free_port, wait_for  # noqa: E402
from encmond.model import Result, Status  # noqa: E402
from encmond.store import Store  # noqa: E402
from pair import start_pair  # noqa: E402

TABLES = 20
DAY = 86400
BATCH = 5000  # samples per store transaction while filling the history
WARMUP = 20
HISTORY_REQUESTS = 50
HISTORY_POINTS = (500, 10000)
EXPORTER = "prometheus-mysqld-exporter"


def create_tables(pair) -> list[str]:
    pair.source.execute("CREATE DATABASE bench")
    names = []
    for number in range(TABLES):
        name = f"bench.t{number:02d}"
        pair.source.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, v INT)")
        pair.source.execute(
            f"INSERT INTO {name} SELECT seq, seq FROM bench.seq_1_to_1000"
        )
        names.append(name)
    pair.wait_caught_up()
    return names


def fill_history(path: Path, now: float) -> None:
    """Store one lag sample per second for the 24 hours before ``now``."""
    store = Store(str(path))
    batch = []
    for second in range(DAY):
        batch.append(
            Result(
                "replication",
                Status.OK,
                "",
                {"lag_seconds": second % 7},
                check="replica_lag",
                server="target",
                time=now - DAY + second + 1,
            )
        )
        if len(batch) == BATCH:
            store.save_results(batch)
            batch = []
    store.save_results(batch)
    store.close()


def start_encmond(pair, directory: Path, tables: list[str]) -> DaemonProcess:
    config = pair.encmond_config(
        tables=tables,
        # Retention beyond 24 h keeps the first prune from trimming the history.
        storage={"path": str(directory / "encmond.db"), "retention": "25h"},
        web={"listen": "127.0.0.1:0"},
        plugins={"dirs": []},
    )
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    encmond = DaemonProcess(path, directory)
    encmond.start()
    wait_for(
        lambda: encmond.result("checksum", tables[-1]),
        120,
        message="encmond did not check every table",
    )
    return encmond


def start_exporter(pair, directory: Path) -> tuple[subprocess.Popen, int]:
    """Start mysqld_exporter on the target with its own credentials file."""
    credentials = directory / "exporter.my.cnf"
    credentials.write_text(
        "[client]\n"
        f"user={pair.monitor_user}\n"
        f"password={pair.monitor_password}\n"
        f"host={pair.target.host}\n"
        f"port={pair.target.port}\n"
    )
    credentials.chmod(0o600)
    port = free_port()
    log = open(directory / "exporter.log", "wb")
    process = subprocess.Popen(
        [
            EXPORTER,
            f"--config.my-cnf={credentials}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    wait_for(
        lambda: status(port, "/metrics") == 200,
        30,
        message=f"mysqld_exporter did not answer on port {port}",
    )
    return process, port


def status(port: int, path: str) -> int:
    """Return the HTTP status of GET ``path``, or 0 if the request failed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, 30)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


def timed(connection, path: str) -> tuple[float, int]:
    """Return the seconds one request took and the size of its body."""
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"GET {path} returned {response.status}: {body[:200]}")
    return elapsed, len(body)


def scrape_times(ports: dict[str, int], rounds: int) -> dict[str, list[float]]:
    """Scrape each /metrics ``rounds`` times, alternating between them."""
    connections = {
        name: http.client.HTTPConnection("127.0.0.1", port, 30)
        for name, port in ports.items()
    }
    times: dict[str, list[float]] = {name: [] for name in ports}
    for round_number in range(WARMUP + rounds):
        for name, connection in connections.items():
            elapsed, _ = timed(connection, "/metrics")
            if round_number >= WARMUP:
                times[name].append(elapsed)
    for connection in connections.values():
        connection.close()
    return times


def history_times(port: int) -> dict[int, tuple[list[float], int]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, 30)
    found = {}
    for points in HISTORY_POINTS:
        path = (
            "/api/history?metric=lag_seconds&check=replica_lag&server=target"
            f"&subject=replication&since=24h&points={points}"
        )
        times = []
        for number in range(WARMUP + HISTORY_REQUESTS):
            elapsed, size = timed(connection, path)
            if number >= WARMUP:
                times.append(elapsed)
        found[points] = (times, size)
    connection.close()
    return found


def stored_samples(path: Path) -> int:
    database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return database.execute(
            "SELECT COUNT(*) FROM samples JOIN series ON series.id = series_id "
            "WHERE metric = 'lag_seconds'"
        ).fetchone()[0]
    finally:
        database.close()


def milliseconds(times: list[float]) -> str:
    median = statistics.median(times) * 1000
    p95 = statistics.quantiles(times, n=20)[-1] * 1000
    return f"{median:.2f} | {p95:.2f}"


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    exporter = subprocess.run(
        [EXPORTER, "--version"], capture_output=True, text=True, check=False
    )
    return (
        f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB; Linux "
        f"{platform.release()}; Python {platform.python_version()}; SQLite "
        f"{sqlite3.sqlite_version}; {exporter.stderr.splitlines()[0]}"
    )


def report(times: dict, history: dict, samples: int, rounds: int) -> None:
    print(f"Machine: {machine()}\n")
    print(f"/metrics, {rounds} scrapes each, alternating, keep-alive:\n")
    print("| endpoint | median ms | p95 ms |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {milliseconds(values)} |")
    ratio = statistics.median(times["encmond"]) / statistics.median(
        times["mysqld_exporter"]
    )
    print(f"\nencmond / mysqld_exporter, medians: {ratio:.3f}\n")
    print(
        f"/api/history over 24 h, {samples} stored samples in the series, "
        f"{HISTORY_REQUESTS} requests each:\n"
    )
    print("| points | median ms | p95 ms | body bytes |")
    print("|---|---|---|---|")
    for points, (values, size) in history.items():
        print(f"| {points} | {milliseconds(values)} | {size} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=300, help="scrapes of each /metrics"
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-web-") as name:
        directory = Path(name)
        pair = start_pair(directory / "servers")
        encmond = exporter = None
        try:
            tables = create_tables(pair)
            fill_history(directory / "encmond.db", time.time())
            encmond = start_encmond(pair, directory, tables)
            exporter, exporter_port = start_exporter(pair, directory)
            ports = {"encmond": encmond.port, "mysqld_exporter": exporter_port}
            times = scrape_times(ports, options.rounds)
            history = history_times(encmond.port)
            samples = stored_samples(directory / "encmond.db")
            report(times, history, samples, options.rounds)
        finally:
            if exporter is not None:
                exporter.terminate()
                exporter.wait(30)
            if encmond is not None:
                encmond.stop()
            pair.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
