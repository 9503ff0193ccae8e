#!/usr/bin/env python3
"""Time encmond's validation against pt-table-checksum and reladiff, side by side.

Starts a local source and encrypted target (tests/pair.py), fills a table of
``--rows`` rows (1,000,000 by default) and, in the same run:

1. validation: ``encmond check --only checksum`` against ``pt-table-checksum``
   on the identical table, both from process start to exit;
2. localisation: one row changed on the target, then the same encmond command
   against ``reladiff`` (its hashdiff with default settings), both of which
   must name the changed row's key.

After one untimed warm-up run of each, each tool runs ``--rounds`` times,
alternating which goes first, and the medians give the ratios encmond / peer.
pt-table-checksum writes its checksums table on the source and needs
statement-based binary logging in its session, so it runs as root. That is
the peer's design, and it happens only on this benchmark pair. encmond and reladiff run
as the read-only monitoring user.

Needs mariadbd, pt-table-checksum (Debian percona-toolkit) and reladiff
(``pip install -e '.[bench]'``). Example::

    .venv/bin/python scripts/bench_validation.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pair import start_pair  # noqa: E402 - needs tests/ on sys.path first

SCHEMA, TABLE = "bench", "t"
CHANGED_ID = 654321
TARGETS = {"validation": 1.0, "localisation": 0.5}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="table rows")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tool")
    return parser.parse_args()


def fill(pair, rows: int) -> None:
    """Create bench.t: an INT key, text, numbers, a DATETIME and some NULLs."""
    source = pair.source
    source.execute(f"CREATE DATABASE {SCHEMA}")
    source.execute(
        f"CREATE TABLE {SCHEMA}.{TABLE} (id INT PRIMARY KEY, a INT, "
        "b VARCHAR(40), c DECIMAL(12, 2), d DATETIME, e DOUBLE, f VARCHAR(60))"
    )
    source.execute(
        f"INSERT INTO {SCHEMA}.{TABLE} SELECT seq, seq * 7 % 1000, "
        "CONCAT('name-', seq), seq / 3, '2020-01-01' + INTERVAL seq SECOND, "
        "seq / 7, IF(seq % 5 = 0, NULL, REPEAT('x', seq % 50)) "
        f"FROM {SCHEMA}.seq_1_to_{rows}",
        timeout=600,
    )
    pair.wait_caught_up(timeout=600)


def prepare_pt(pair) -> list[str]:
    """Return the pt-table-checksum command, after creating its DSN table.

    The DSN table names the target by port, so pt-table-checksum never looks
    for replicas on port 3306.
    """
    source, target = pair.source, pair.target
    source.execute("CREATE DATABASE percona")
    source.execute(
        "CREATE TABLE percona.dsns (id INT AUTO_INCREMENT PRIMARY KEY, "
        "parent_id INT, dsn VARCHAR(255) NOT NULL)"
    )
    source.execute(
        "INSERT INTO percona.dsns (dsn) VALUES (%s)",
        (f"h={target.host},P={target.port},u=root",),
    )
    pair.wait_caught_up()
    base = f"h={source.host},P={source.port},u=root"
    return [
        "pt-table-checksum",
        base,
        f"--databases={SCHEMA}",
        f"--tables={TABLE}",
        f"--recursion-method=dsn={base},D=percona,t=dsns",
        "--replicate=percona.checksums",
        "--create-replicate-table",
        "--no-check-binlog-format",
    ]


def encmond_command(pair, directory: Path) -> list[str]:
    config = pair.encmond_config(
        tables=[f"{SCHEMA}.{TABLE}"],
        storage={"path": str(directory / "encmond.db")},
        plugins={"dirs": []},
        checks={"checksum": {"timeout": "10m"}},
    )
    path = directory / "encmond.yaml"
    path.write_text(yaml.safe_dump(config))
    encmond = Path(sys.executable).parent / "encmond"
    return [str(encmond), "check", "-c", str(path), "--only", "checksum", "--json"]


def reladiff_command(pair) -> list[str]:
    def url(server) -> str:
        return (
            f"mysql://{pair.monitor_user}:{pair.monitor_password}@"
            f"{server.host}:{server.port}/{SCHEMA}"
        )

    reladiff = shutil.which("reladiff") or str(Path(sys.executable).parent / "reladiff")
    return [
        reladiff,
        url(pair.source),
        TABLE,
        url(pair.target),
        TABLE,
        "-k",
        "id",
        "-c",
        "%",
        "--json",
    ]


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    # reladiff prints through rich, which wraps lines at COLUMNS even in a pipe.
    environment = {**os.environ, "COLUMNS": "100000"}
    # pip compiled the peers' installed packages at install time; letting the
    # warm-up run write encmond's bytecode puts the editable install on the
    # same footing instead of compiling its sources at every start.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=1800, env=environment
    )
    return time.monotonic() - started, done


def check_pt(done: subprocess.CompletedProcess) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"pt-table-checksum failed or found diffs:\n{done.stdout}")


def check_encmond(done: subprocess.CompletedProcess, changed: int | None) -> None:
    result = json.loads(done.stdout)["results"][0]
    details = result["details"]
    if changed is None and details["state"] != "match":
        raise RuntimeError(f"encmond did not report a match: {result['message']}")
    expected = [{"key": {"id": changed}, "kind": "changed"}]
    if changed is not None and details["differences"] != expected:
        raise RuntimeError(f"encmond did not name id {changed}: {result['message']}")


def check_reladiff(done: subprocess.CompletedProcess, changed: int) -> None:
    """Check that reladiff printed the changed row, as ["-"|"+", [id, ...]]."""
    lines = [json.loads(line) for line in done.stdout.splitlines() if line]
    keys = {values[0] for _, values in lines}
    if keys != {str(changed)}:
        raise RuntimeError(f"reladiff named {keys}, not {changed}:\n{done.stderr}")


def compare(name, ours, theirs, rounds, check_ours, check_theirs) -> dict:
    """Run both commands ``rounds`` times, alternating; return the medians."""
    times: dict[str, list[float]] = {"encmond": [], "peer": []}
    for command, check in ((ours, check_ours), (theirs, check_theirs)):
        check(timed(command)[1])  # warm-up: both read the table into memory once
    for round_number in range(rounds):
        order = [("encmond", ours, check_ours), ("peer", theirs, check_theirs)]
        if round_number % 2:
            order.reverse()
        for label, command, check in order:
            seconds, done = timed(command)
            check(done)
            times[label].append(seconds)
            print(f"  {name} round {round_number + 1}: {label} {seconds:.2f} s")
    medians = {label: statistics.median(values) for label, values in times.items()}
    return {"times": times, "medians": medians}


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    versions = [
        subprocess.run(
            [command, "--version"], capture_output=True, text=True
        ).stdout.strip()
        for command in ("/usr/sbin/mariadbd", "pt-table-checksum")
    ]
    return (
        f"{model}, {os.cpu_count()} CPUs, {int(memory) // 1024} MiB RAM, "
        f"{platform.platform()}, Python {platform.python_version()}; "
        + "; ".join(versions)
    )


def report(results: dict) -> None:
    print(f"\nmachine: {machine()}")
    for name, peer in (
        ("validation", "pt-table-checksum"),
        ("localisation", "reladiff"),
    ):
        medians = results[name]["medians"]
        ratio = medians["encmond"] / medians["peer"]
        verdict = "met" if ratio <= TARGETS[name] else "NOT met"
        print(
            f"{name}: encmond {medians['encmond']:.2f} s, {peer} "
            f"{medians['peer']:.2f} s, ratio {ratio:.2f} (target <= "
            f"{TARGETS[name]}: {verdict})"
        )


def missing_tools() -> list[str]:
    """Return an install hint for each peer tool that is not installed."""
    hints = []
    if shutil.which("pt-table-checksum") is None:
        hints.append("pt-table-checksum: apt-get install percona-toolkit")
    reladiff = Path(sys.executable).parent / "reladiff"
    if shutil.which("reladiff") is None and not reladiff.exists():
        hints.append("reladiff: pip install -e '.[bench]'")
    return hints


def main() -> int:
    args = parse_args()
    hints = missing_tools()
    if hints:
        print("missing peer tools:\n  " + "\n  ".join(hints), file=sys.stderr)
        return 1
    directory = Path(tempfile.mkdtemp(prefix="bench-validation-"))
    pair = start_pair(directory / "pair")
    try:
        print(f"filling {SCHEMA}.{TABLE} with {args.rows} rows")
        fill(pair, args.rows)
        pt = prepare_pt(pair)
        ours = encmond_command(pair, directory)
        results = {
            "validation": compare(
                "validation",
                ours,
                pt,
                args.rounds,
                lambda done: check_encmond(done, None),
                check_pt,
            )
        }
        changed = min(CHANGED_ID, args.rows // 2)
        pair.target.execute_unlogged(
            f"UPDATE {SCHEMA}.{TABLE} SET b = 'changed' WHERE id = {changed}"
        )
        results["localisation"] = compare(
            "localisation",
            ours,
            reladiff_command(pair),
            args.rounds,
            lambda done: check_encmond(done, changed),
            lambda done: check_reladiff(done, changed),
        )
        report(results)
    finally:
        pair.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
