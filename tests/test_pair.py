"""Tests of the MariaDB test harness in pair.py, run against real mariadbd processes."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from pair import (
    MONITOR_USER,
    Pair,
    Server,
    ServerStartError,
    free_port,
    start_pair,
)

ER_TABLEACCESS_DENIED_ERROR = 1142


def wait_for(condition: Callable[[], Any], timeout: float, message: str) -> Any:
    """Poll condition every 0.1 s and return its first truthy result."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} within {timeout} s")
        time.sleep(0.1)


def encryption_scheme(server: Server, tablespace: str) -> int | None:
    """Return ENCRYPTION_SCHEME of an InnoDB tablespace, None if it is not listed."""
    rows = server.execute(
        "SELECT ENCRYPTION_SCHEME FROM information_schema.INNODB_TABLESPACES_ENCRYPTION"
        " WHERE NAME = %s",
        (tablespace,),
    )
    return rows[0]["ENCRYPTION_SCHEME"] if rows else None


def create_table(pair: Pair, name: str) -> str:
    """Create harness.<name> on the source if missing and return its tablespace."""
    pair.source.execute("CREATE DATABASE IF NOT EXISTS harness")
    pair.source.execute(
        f"CREATE TABLE IF NOT EXISTS harness.{name}"
        " (id INT PRIMARY KEY, note VARCHAR(40))"
    )
    return f"harness/{name}"


def server_ids(gtid_position: str) -> set[int]:
    """Return the server ids in a GTID position such as '0-1-5,1-1-2'."""
    if not gtid_position:
        return set()
    return {int(gtid.split("-")[1]) for gtid in gtid_position.split(",")}


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with start_pair(tmp_path_factory.mktemp("pair")) as started:
        yield started


@pytest.fixture
def own_pair(tmp_path: Path) -> Iterator[Pair]:
    """A pair for one test that may kill or stop its servers."""
    with start_pair(tmp_path / "pair") as started:
        yield started


def test_pair_starts_without_gtids(own_pair: Pair) -> None:
    for server in own_pair.servers():
        rows = server.execute(
            "SELECT @@gtid_binlog_pos AS binlog, @@gtid_slave_pos AS slave"
        )
        assert rows == [{"binlog": "", "slave": ""}], server.name


def test_pair_replicates_row(pair: Pair) -> None:
    create_table(pair, "replicated")
    pair.source.execute("INSERT INTO harness.replicated VALUES (1, 'from source')")

    pair.wait_caught_up(timeout=30)

    rows = pair.target.execute("SELECT note FROM harness.replicated WHERE id = 1")
    assert rows == [{"note": "from source"}]


def test_target_table_encrypted(pair: Pair) -> None:
    tablespace = create_table(pair, "secret")
    pair.wait_caught_up(timeout=30)

    wait_for(
        lambda: encryption_scheme(pair.target, tablespace) == 1,
        timeout=30,
        message=f"{tablespace} was not encrypted on the target",
    )

    assert encryption_scheme(pair.source, tablespace) in (None, 0)


def test_target_system_tablespace_encrypted(pair: Pair) -> None:
    wait_for(
        lambda: encryption_scheme(pair.target, "innodb_system") == 1,
        timeout=30,
        message="innodb_system was not encrypted on the target",
    )


def test_target_encryption_variables(pair: Pair) -> None:
    variables = (
        "innodb_encrypt_tables",
        "innodb_encrypt_log",
        "encrypt_binlog",
        "encrypt_tmp_disk_tables",
        "encrypt_tmp_files",
        "aria_encrypt_tables",
    )
    for server, expected in ((pair.target, "ON"), (pair.source, "OFF")):
        for variable in variables:
            rows = server.execute("SHOW GLOBAL VARIABLES LIKE %s", (variable,))
            assert rows == [{"Variable_name": variable, "Value": expected}], server

    algorithm = pair.target.execute(
        "SELECT @@file_key_management_encryption_algorithm AS value"
    )
    assert algorithm[0]["value"] in ("aes_ctr", "aes_cbc")


def test_target_aria_system_tables_encrypted(pair: Pair) -> None:
    # mysql.global_priv is an Aria table that stores user names in plain text
    # unless the datadir was bootstrapped with aria_encrypt_tables=ON.
    target_file = pair.target.datadir / "mysql" / "global_priv.MAD"
    source_file = pair.source.datadir / "mysql" / "global_priv.MAD"

    assert b"root" not in target_file.read_bytes()
    assert b"root" in source_file.read_bytes()


def test_target_key_file(pair: Pair) -> None:
    lines = pair.target.key_file.read_text().splitlines()

    assert [line.split(";")[0] for line in lines] == ["1", "2"]
    assert all(len(line.split(";")[1]) == 64 for line in lines)
    assert not pair.source.key_file.exists()


def test_target_no_errant_gtids(pair: Pair) -> None:
    create_table(pair, "gtids")
    pair.source.execute("INSERT INTO harness.gtids VALUES (1, 'a'), (2, 'b')")
    pair.wait_caught_up(timeout=30)

    position = pair.target.execute("SELECT @@gtid_binlog_pos AS pos")[0]["pos"]

    assert server_ids(position) == {pair.source.server_id}


def test_monitor_reads_replica_status(pair: Pair) -> None:
    connection = pair.target.connect(MONITOR_USER, pair.monitor_password)
    with connection, connection.cursor() as cursor:
        cursor.execute("SHOW SLAVE STATUS")
        slave_status = cursor.fetchall()
        cursor.execute("SHOW REPLICA STATUS")
        replica_status = cursor.fetchall()
        cursor.execute(
            "SELECT COUNT(*) AS spaces"
            " FROM information_schema.INNODB_TABLESPACES_ENCRYPTION"
        )
        spaces = cursor.fetchone()["spaces"]

    assert len(slave_status) == 1
    assert slave_status[0]["Slave_IO_Running"] == "Yes"
    assert slave_status[0]["Master_Port"] == pair.source.port
    assert len(replica_status) == 1
    assert spaces > 0


def test_monitor_grants(pair: Pair) -> None:
    for server in pair.servers():
        rows = server.execute(f"SHOW GRANTS FOR '{MONITOR_USER}'@'%'")
        grant = next(iter(rows[0].values()))
        # MariaDB 10.5+ shows REPLICATION CLIENT as BINLOG MONITOR.
        assert grant.startswith(
            "GRANT SELECT, PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO "
        ), grant
        assert len(rows) == 1, server.name


def test_monitor_reads_source_status(pair: Pair) -> None:
    connection = pair.source.connect(MONITOR_USER, pair.monitor_password)
    with connection, connection.cursor() as cursor:
        cursor.execute("SHOW MASTER STATUS")
        master_status = cursor.fetchall()
        cursor.execute("SHOW REPLICA STATUS")
        replica_status = cursor.fetchall()

    assert len(master_status) == 1
    assert replica_status == ()


@pytest.mark.parametrize("role", ["source", "target"])
def test_monitor_cannot_insert(pair: Pair, role: str) -> None:
    create_table(pair, "readonly")
    pair.wait_caught_up(timeout=30)
    server = pair.source if role == "source" else pair.target
    connection = server.connect(MONITOR_USER, pair.monitor_password)

    with (
        connection,
        connection.cursor() as cursor,
        pytest.raises(pymysql.err.MySQLError) as raised,
    ):
        cursor.execute("INSERT INTO harness.readonly VALUES (1, 'denied')")

    assert raised.value.args[0] == ER_TABLEACCESS_DENIED_ERROR


def test_encmond_config_single_target(pair: Pair) -> None:
    config = pair.encmond_config(tables=[])

    assert set(config) == {"source", "target", "tables"}
    assert config["tables"] == []
    assert config["source"]["port"] == pair.source.port
    assert config["target"]["port"] == pair.target.port
    for section in (config["source"], config["target"]):
        assert section["host"] == "127.0.0.1"
        assert section["user"] == "encmond"
        assert section["password"] == pair.monitor_password
        connection = pymysql.connect(**section)
        connection.close()


def test_wait_caught_up_timeout(pair: Pair) -> None:
    create_table(pair, "paused")
    pair.wait_caught_up(timeout=30)
    pair.target.pause()
    try:
        pair.source.execute("INSERT INTO harness.paused VALUES (1, 'late')")
        position = pair.source.execute("SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            pair.wait_caught_up(timeout=1)
        elapsed = time.monotonic() - started
    finally:
        pair.target.resume()

    assert position in str(raised.value)
    assert elapsed < 10
    pair.wait_caught_up(timeout=30)
    assert pair.target.execute("SELECT COUNT(*) AS n FROM harness.paused") == [{"n": 1}]


def test_wait_caught_up_stopped_slave(pair: Pair) -> None:
    create_table(pair, "stopped")
    pair.wait_caught_up(timeout=30)
    pair.target.execute("STOP SLAVE")
    try:
        pair.source.execute("INSERT INTO harness.stopped VALUES (1, 'late')")
        with pytest.raises(TimeoutError) as raised:
            pair.wait_caught_up(timeout=1)
    finally:
        pair.target.execute("START SLAVE")

    assert "Slave_SQL_Running='No'" in str(raised.value)
    pair.wait_caught_up(timeout=30)


def test_target_resumes_after_kill(own_pair: Pair) -> None:
    create_table(own_pair, "crash")
    own_pair.source.execute("INSERT INTO harness.crash VALUES (1, 'before')")
    own_pair.wait_caught_up(timeout=30)
    pid = own_pair.target.pid

    own_pair.target.kill()
    assert not own_pair.target.running()
    assert not process_exists(pid)
    own_pair.source.execute("INSERT INTO harness.crash VALUES (2, 'during')")
    own_pair.target.start()
    own_pair.source.execute("INSERT INTO harness.crash VALUES (3, 'after')")
    own_pair.wait_caught_up(timeout=60)

    rows = own_pair.target.execute("SELECT id FROM harness.crash ORDER BY id")
    assert rows == [{"id": 1}, {"id": 2}, {"id": 3}]
    status = own_pair.target.slave_status()
    assert status["Slave_IO_Running"] == "Yes"
    assert status["Slave_SQL_Running"] == "Yes"


def test_target_reconnects_after_source_kill(own_pair: Pair) -> None:
    create_table(own_pair, "restart")
    own_pair.wait_caught_up(timeout=30)

    own_pair.source.kill()
    own_pair.source.start()
    own_pair.source.execute("INSERT INTO harness.restart VALUES (1, 'after')")
    own_pair.wait_caught_up(timeout=60)

    rows = own_pair.target.execute("SELECT id FROM harness.restart")
    assert rows == [{"id": 1}]


def test_stop_leaves_no_process(own_pair: Pair) -> None:
    pids = [server.pid for server in own_pair.servers()]

    own_pair.stop()
    own_pair.stop()

    for server, pid in zip(own_pair.servers(), pids, strict=True):
        assert not server.running()
        assert not process_exists(pid), f"{server.name} pid {pid} still exists"


def test_pair_two_targets(tmp_path: Path) -> None:
    with start_pair(
        tmp_path / "pair", targets=("target", "replica2"), encrypted={"target"}
    ) as pair:
        tablespace = create_table(pair, "fanout")
        pair.source.execute("INSERT INTO harness.fanout VALUES (1, 'both')")
        pair.wait_caught_up(timeout=30)
        config = pair.encmond_config()

        for target in pair.targets.values():
            rows = target.execute("SELECT note FROM harness.fanout")
            assert rows == [{"note": "both"}], target.name
        wait_for(
            lambda: encryption_scheme(pair.target, tablespace) == 1,
            timeout=30,
            message=f"{tablespace} was not encrypted on the target",
        )
        assert encryption_scheme(pair.targets["replica2"], tablespace) in (None, 0)
        server_ids = [server.server_id for server in pair.servers()]

    assert len(set(server_ids)) == 3
    assert set(config) == {"source", "targets"}
    assert set(config["targets"]) == {"target", "replica2"}
    assert config["targets"]["replica2"]["port"] == pair.targets["replica2"].port


def test_start_error_includes_log(tmp_path: Path) -> None:
    server = Server(
        "broken",
        tmp_path / "broken",
        server_id=9,
        extra_options=["--no-such-option=1"],
    )

    with pytest.raises(ServerStartError) as raised:
        server.start(timeout=30)

    assert "unknown variable 'no-such-option=1'" in str(raised.value)
    assert not server.running()


def test_start_timeout_kills_process(tmp_path: Path) -> None:
    server = Server("late", tmp_path / "late", server_id=9)

    with pytest.raises(TimeoutError) as raised:
        server.start(timeout=0)

    assert "timed out" in str(raised.value)
    assert not server.running()
    assert not process_exists(server.pid)


def test_start_root_password_rejected(tmp_path: Path) -> None:
    server = Server("locked", tmp_path / "locked", server_id=9)
    server.start(timeout=30)
    server.execute("SET PASSWORD FOR 'root'@'127.0.0.1' = PASSWORD('changed')")
    server.stop()

    with pytest.raises(ServerStartError) as raised:
        server.start(timeout=30)

    assert "rejected root" in str(raised.value)
    assert not server.running()


def test_start_retries_taken_port(tmp_path: Path) -> None:
    server = Server("retry", tmp_path / "retry", server_id=9)
    taken_port = server.port
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken_port))
        listener.listen()
        server.start(timeout=30)
    try:
        assert server.port != taken_port
        assert server.execute("SELECT @@port AS port") == [{"port": server.port}]
    finally:
        server.stop()


def test_start_fixed_port_taken(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        server = Server("fixed", tmp_path / "fixed", server_id=9, port=port)
        with pytest.raises(ServerStartError) as raised:
            server.start(timeout=30)

    assert "Address already in use" in str(raised.value)


def test_stop_timeout_kills(tmp_path: Path) -> None:
    server = Server("slow", tmp_path / "slow", server_id=9)
    server.start(timeout=30)
    pid = server.pid

    server.stop(timeout=0)

    assert not server.running()
    assert not process_exists(pid)


def test_stop_paused_server(tmp_path: Path) -> None:
    server = Server("paused", tmp_path / "paused", server_id=9)
    server.start(timeout=30)
    server.pause()

    server.stop(timeout=30)

    assert not server.running()


def test_restart_after_stop_keeps_data(tmp_path: Path) -> None:
    server = Server("restart", tmp_path / "restart", server_id=9, encrypted=True)
    server.start(timeout=30)
    server.execute("CREATE DATABASE kept")
    server.execute("CREATE TABLE kept.items (id INT PRIMARY KEY)")
    server.stop()

    server.start(timeout=30)
    try:
        rows = server.execute("SHOW TABLES FROM kept")
    finally:
        server.stop()

    assert rows == [{"Tables_in_kept": "items"}]


def test_long_basedir_moves_socket(tmp_path: Path) -> None:
    basedir = tmp_path / ("long-directory-name-" * 6) / "server"
    server = Server("long", basedir, server_id=9)
    server.start(timeout=30)
    try:
        rows = server.execute("SELECT @@socket AS socket")
    finally:
        server.stop()

    assert len(str(server.socket)) <= 100
    assert not server.socket.is_relative_to(basedir)
    assert rows == [{"socket": str(server.socket)}]


def test_reserved_port_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Server("system", tmp_path / "system", server_id=9, port=3306)


def test_start_pair_rejects_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()

    with pytest.raises(FileExistsError):
        start_pair(tmp_path)


def test_start_pair_requires_target(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        start_pair(tmp_path, targets=("replica1",))


def test_free_port_bindable() -> None:
    port = free_port()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))

    assert port != 3306
