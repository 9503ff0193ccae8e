"""Start a local source/target pair with a write load and encmond watching it.

Everything lives under .demo/ in the repository and stops on Ctrl-C.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pair import start_pair  # noqa: E402 - tests/ is on sys.path only now

DEMO = ROOT / ".demo"
PREFERRED_PORT = 8080
WRITES_PER_SECOND = 20

SCHEMA = [
    "CREATE DATABASE shop",
    "CREATE TABLE shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, "
    "name VARCHAR(80) NOT NULL, email VARCHAR(120), created DATETIME NOT NULL)",
    "CREATE TABLE shop.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, "
    "customer_id INT NOT NULL, amount DECIMAL(10, 2) NOT NULL, "
    "status ENUM('new', 'paid', 'shipped') NOT NULL, created DATETIME NOT NULL)",
    "INSERT INTO shop.customers (name, email, created) SELECT CONCAT('customer ', "
    "seq), CONCAT('c', seq, '@example.com'), NOW() FROM shop.seq_1_to_2000",
    "INSERT INTO shop.orders (customer_id, amount, status, created) SELECT "
    "1 + seq % 2000, seq % 500 + 0.99, 'paid', NOW() FROM shop.seq_1_to_20000",
]


def web_port() -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", PREFERRED_PORT))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_load(source, stop: threading.Event) -> None:
    """Insert and update orders on the source until ``stop`` is set."""
    connection = source.connect()
    with connection.cursor() as cursor:
        while not stop.wait(1 / WRITES_PER_SECOND):
            if random.random() < 0.7:
                cursor.execute(
                    "INSERT INTO shop.orders (customer_id, amount, status, created) "
                    "VALUES (%s, %s, 'new', NOW())",
                    (random.randint(1, 2000), round(random.uniform(1, 500), 2)),
                )
            else:
                cursor.execute(
                    "UPDATE shop.orders SET status = 'shipped' WHERE id = %s",
                    (random.randint(1, 20000),),
                )
    connection.close()


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    print("starting a MariaDB source and an encrypted target under .demo/ ...")
    pair = start_pair(DEMO / "servers")
    stop = threading.Event()
    encmond = loader = None
    try:
        for statement in SCHEMA:
            pair.source.execute(statement)
        pair.wait_caught_up()
        # As on a migration target: only replication writes to it.
        pair.target.execute("SET GLOBAL read_only = ON")
        loader = threading.Thread(target=write_load, args=(pair.source, stop))
        loader.start()
        port = web_port()
        config = pair.encmond_config(
            tables=["shop.orders", "shop.customers"],
            checks={"checksum": {"interval": "1m"}, "row_count": {"interval": "30s"}},
            storage={"path": str(DEMO / "encmond.db")},
            web={"listen": f"127.0.0.1:{port}"},
            plugins={"dirs": []},
        )
        config_path = DEMO / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        encmond = subprocess.Popen(
            [sys.executable, "-m", "encmond", "run", "-c", str(config_path)]
        )
        print(f"\nencmond dashboard: http://127.0.0.1:{port}/")
        print(f"configuration: {config_path}")
        print(
            "source and target: "
            + ", ".join(f"{s.name} on 127.0.0.1:{s.port}" for s in pair.servers())
        )
        print("press Ctrl-C to stop everything\n")
        signal.signal(signal.SIGTERM, interrupt)
        encmond.wait()
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        stop.set()
        if loader is not None:
            loader.join()
        if encmond is not None and encmond.poll() is None:
            encmond.send_signal(signal.SIGTERM)
            encmond.wait(30)
        pair.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
