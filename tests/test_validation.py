"""Chunked validation against the real pair: each kind of drift, named by key."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import subprocess
import sys
import threading
import time

import pymysql
import pytest

from daemon_process import wait_for
from encmond.checkonce import run_once
from encmond.db import Database
from encmond.loading import load
from encmond.model import Status
from encmond.runner import Runner, build_jobs
from encmond.state import State
from encmond.store import Store
from encmond.validation.chunks import Chunk
from encmond.validation.engine import finish
from encmond.validation.progress import PassState, ProgressStore
from encmond.validation.report import Outcome, table_result


def check_table(write_config, table, only="checksum", **settings):
    """Run one check once on one table and return its Result."""
    checks = {only: {"max_differences": 2000, **settings}}
    config, plugins = load(str(write_config(tables=[table], checks=checks)))
    results = [r for r in run_once(config, plugins, [only]) if r.subject == table]
    assert len(results) == 1, [str(r) for r in results]
    return results[0]


def keys_of(result, kind=None):
    """Return the differing keys as tuples of values, in key order."""
    return [
        tuple(difference["key"].values())
        for difference in result.details["differences"]
        if kind is None or difference["kind"] == kind
    ]


def create(pair, schema, name, columns, select, rows=2000):
    """Create ``schema.name`` on the source from ``select`` over seq, replicated."""
    table = f"{schema}.{name}"
    pair.source.execute(f"CREATE TABLE {table} ({columns})")
    pair.source.execute(
        f"INSERT INTO {table} SELECT {select} FROM {schema}.seq_1_to_{rows}"
    )
    pair.wait_caught_up()
    return table


def on_target(pair, *statements):
    """Change the target only, as drift that replication did not cause."""
    pair.target.execute_unlogged(*statements)


@pytest.fixture
def items(pair, schema):
    return create(
        pair,
        schema,
        "items",
        "id INT PRIMARY KEY, name VARCHAR(40), note VARCHAR(40) NULL, "
        "price DECIMAL(12, 2), weight FLOAT, seen DATETIME(6), at TIMESTAMP NULL",
        "seq, CONCAT('item ', seq), IF(seq % 3 = 0, NULL, CONCAT('n', seq)), "
        "seq / 4, seq / 8, '2026-01-01' + INTERVAL seq SECOND, "
        "'2026-01-01' + INTERVAL seq MINUTE",
    )


def test_identical_tables_match(write_config, items):
    result = check_table(write_config, items)
    assert result.status is Status.OK, result.message
    assert result.details["state"] == "match"
    assert result.details["method"] == "chunks"
    assert result.details["differences"] == []
    assert result.details["last_clean_pass"] is not None
    assert result.metrics["rows_checked"] == 2000


def test_changed_value_named(pair, write_config, items):
    on_target(pair, f"UPDATE {items} SET name = 'other' WHERE id = 1234")
    result = check_table(write_config, items)
    assert result.status is Status.CRITICAL
    assert result.details["state"] == "diverged"
    assert result.details["differences"] == [{"key": {"id": 1234}, "kind": "changed"}]
    assert "id=1234" in result.message
    assert result.details["last_clean_pass"] is None


def test_deleted_row_named(pair, write_config, items):
    on_target(pair, f"DELETE FROM {items} WHERE id = 17")
    result = check_table(write_config, items)
    assert keys_of(result, "missing_on_target") == [(17,)]
    assert keys_of(result) == [(17,)]


def test_extra_row_named(pair, write_config, items):
    on_target(
        pair,
        f"INSERT INTO {items} (id, name, price) VALUES (5000, 'ghost', 1), "
        "(-3, 'ghost', 2)",
    )
    result = check_table(write_config, items)
    assert keys_of(result, "extra_on_target") == [(-3,), (5000,)]
    assert keys_of(result) == [(-3,), (5000,)]


def test_even_rows_same_edit(pair, write_config, items):
    """A TIMESTAMP moved by one second on 1000 rows cancels out of a BIT_XOR
    of CRC32 values, as pt-table-checksum computes it, but not out of sums."""
    on_target(
        pair,
        f"UPDATE {items} SET at = at + INTERVAL 1 SECOND WHERE id BETWEEN 501 AND 1500",
    )
    linear = (
        "SELECT BIT_XOR(CRC32(CONCAT_WS('#', id, name, note, price, weight, "
        f"seen, at))) AS x FROM {items}"
    )
    source_xor = pair.source.execute(linear)[0]["x"]
    assert pair.target.execute(linear)[0]["x"] == source_xor
    result = check_table(write_config, items)
    assert result.details["state"] == "diverged"
    assert keys_of(result, "changed") == [(key,) for key in range(501, 1501)]


def test_null_empty_and_word_null(pair, write_config, items):
    on_target(
        pair,
        f"UPDATE {items} SET note = '' WHERE id = 3",
        f"UPDATE {items} SET note = 'NULL' WHERE id = 6",
        f"UPDATE {items} SET note = NULL WHERE id = 7",
    )
    result = check_table(write_config, items)
    assert keys_of(result, "changed") == [(3,), (6,), (7,)]


def test_shift_between_columns(pair, write_config, items):
    # Source: name 'item 20', note 'n20'. Target: name 'item 2', note '0n20'.
    on_target(pair, f"UPDATE {items} SET name = 'item 2', note = '0n20' WHERE id = 20")
    result = check_table(write_config, items)
    assert keys_of(result, "changed") == [(20,)]


def test_commas_nulls_and_letter_n(pair, write_config, schema):
    """Each target row would give the source row's text if fields were not delimited."""
    table = create(
        pair,
        schema,
        "fields",
        "id INT PRIMARY KEY, a INT NULL, s VARCHAR(20) NULL, t VARCHAR(20) NULL, "
        "v VARBINARY(20) NULL, w VARBINARY(20) NULL, flags BIT(8) NULL",
        "seq, seq, 'x', NULL, 'a,b', 'c', b'101'",
        rows=10,
    )
    on_target(
        pair,
        f"UPDATE {table} SET s = NULL, t = 'x' WHERE id = 2",
        f"UPDATE {table} SET s = 'x,', t = '' WHERE id = 3",
        f"UPDATE {table} SET s = 'N' WHERE id = 4",
        f"UPDATE {table} SET v = 'a', w = 'b,c' WHERE id = 5",
        f"UPDATE {table} SET a = NULL WHERE id = 6",
        f"UPDATE {table} SET flags = b'100' WHERE id = 7",
        f"UPDATE {table} SET flags = NULL WHERE id = 8",
    )
    result = check_table(write_config, table)
    assert keys_of(result, "changed") == [(2,), (3,), (4,), (5,), (6,), (7,), (8,)]


def test_decimal_float_datetime(pair, write_config, items):
    on_target(
        pair,
        f"UPDATE {items} SET price = price + 0.01 WHERE id = 100",
        f"UPDATE {items} SET weight = weight + 0.001 WHERE id = 200",
        f"UPDATE {items} SET seen = seen + INTERVAL 1 MICROSECOND WHERE id = 300",
    )
    result = check_table(write_config, items)
    assert keys_of(result, "changed") == [(100,), (200,), (300,)]


def test_float_below_display_precision(pair, write_config, schema):
    """FLOAT 123456.7 and 123456.9 both print as 123457; their bits differ."""
    table = create(
        pair, schema, "floats", "id INT PRIMARY KEY, f FLOAT", "seq, 123456.7", 10
    )
    on_target(pair, f"UPDATE {table} SET f = 123456.9 WHERE id = 4")
    result = check_table(write_config, table)
    assert keys_of(result, "changed") == [(4,)]


def test_utf8mb4_string(pair, write_config, schema):
    table = create(
        pair,
        schema,
        "texts",
        "id INT PRIMARY KEY, t VARCHAR(20) CHARACTER SET utf8mb4 "
        "COLLATE utf8mb4_general_ci",
        "seq, CONCAT('café ', seq, ' \U0001f600')",
        300,
    )
    on_target(pair, f"UPDATE {table} SET t = 'café 42 \U0001f601' WHERE id = 42")
    on_target(pair, f"UPDATE {table} SET t = 'CAFÉ 43 \U0001f600' WHERE id = 43")
    result = check_table(write_config, table)
    assert keys_of(result, "changed") == [(42,), (43,)]


def test_composite_key(pair, write_config, schema):
    table = create(
        pair,
        schema,
        "lines",
        "order_id INT, line INT, qty INT, PRIMARY KEY (order_id, line)",
        "seq DIV 10, seq MOD 10, seq",
        3000,
    )
    on_target(
        pair,
        f"UPDATE {table} SET qty = 0 WHERE order_id = 150 AND line = 4",
        f"DELETE FROM {table} WHERE order_id = 7 AND line = 9",
        f"INSERT INTO {table} VALUES (150, 11, 1)",
    )
    result = check_table(write_config, table)
    assert result.details["key"] == ["order_id", "line"]
    assert result.details["differences"] == [
        {"key": {"order_id": 7, "line": 9}, "kind": "missing_on_target"},
        {"key": {"order_id": 150, "line": 4}, "kind": "changed"},
        {"key": {"order_id": 150, "line": 11}, "kind": "extra_on_target"},
    ]


def test_string_key(pair, write_config, schema):
    table = create(
        pair,
        schema,
        "users",
        "email VARCHAR(60) PRIMARY KEY, name VARCHAR(40)",
        "CONCAT('user', LPAD(seq, 5, '0'), '@example.org'), CONCAT('name ', seq)",
        2500,
    )
    on_target(
        pair,
        f"UPDATE {table} SET name = 'x' WHERE email = 'user01234@example.org'",
        f"DELETE FROM {table} WHERE email = 'user00002@example.org'",
    )
    result = check_table(write_config, table)
    assert result.details["differences"] == [
        {"key": {"email": "user00002@example.org"}, "kind": "missing_on_target"},
        {"key": {"email": "user01234@example.org"}, "kind": "changed"},
    ]


def test_keyless_table_whole(pair, write_config, schema):
    table = create(pair, schema, "loose", "a INT, b VARCHAR(10)", "seq, 'x'", 100)
    result = check_table(write_config, table)
    assert result.status is Status.OK
    assert result.details["state"] == "match"
    assert result.details["method"] == "whole_table"
    assert "no primary key" in result.message

    on_target(pair, f"UPDATE {table} SET b = 'y' WHERE a = 50")
    result = check_table(write_config, table)
    assert result.status is Status.CRITICAL
    assert result.details["state"] == "diverged"
    assert result.details["method"] == "whole_table"
    assert result.details["differences"] == []
    assert "whole table" in result.message


def test_missing_table_state(pair, write_config, schema):
    pair.source.execute_unlogged(f"CREATE TABLE {schema}.gone (id INT PRIMARY KEY)")
    result = check_table(write_config, f"{schema}.gone")
    assert result.status is Status.CRITICAL
    assert result.details["state"] == "missing"
    assert result.details["missing_on"] == ["target"]
    assert result.details["last_clean_pass"] is None
    assert result.details["differences"] == []


def test_new_table_behind_not_missing(pair, write_config, schema):
    """A table created on the source while the target's SQL thread is stopped
    is behind, not missing, and matches once the target applies it."""
    table = f"{schema}.fresh"
    checks = ("checksum", "row_count")
    pair.target.execute_unlogged("STOP SLAVE SQL_THREAD")
    try:
        pair.source.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
        pair.source.execute(f"INSERT INTO {table} VALUES (1), (2), (3)")
        behind = {
            check: check_table(write_config, table, only=check, wait_timeout="1s")
            for check in checks
        }
    finally:
        pair.target.execute_unlogged("START SLAVE SQL_THREAD")
        pair.wait_caught_up()
    caught_up = {
        check: check_table(write_config, table, only=check) for check in checks
    }
    for check in checks:
        result = behind[check]
        assert result.status is Status.UNKNOWN, f"{check}: {result.message}"
        assert result.details["state"] == "behind", check
        assert result.details["missing_on"] == ["target"], check
        assert result.details["behind"], check
        assert result.message.startswith("table not on the target yet"), check
        assert caught_up[check].status is Status.OK, caught_up[check].message
        assert caught_up[check].details["state"] == "match", check


def test_new_table_waits_for_delay(pair, write_config, schema):
    """A table created on the source reaches a target with MASTER_DELAY = 2
    within wait_timeout, so the first run compares it."""
    table = f"{schema}.fresh"
    pair.target.execute_unlogged(
        "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 2", "START SLAVE"
    )
    try:
        pair.source.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
        pair.source.execute(f"INSERT INTO {table} VALUES (1), (2), (3)")
        result = check_table(write_config, table, only="row_count", wait_timeout="30s")
    finally:
        pair.target.execute_unlogged(
            "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 0", "START SLAVE"
        )
        pair.wait_caught_up()
    assert result.status is Status.OK, result.message
    assert result.details["state"] == "match"
    assert result.metrics["target_rows"] == 3


def test_columns_differ_not_comparable(pair, write_config, items):
    on_target(pair, f"ALTER TABLE {items} ADD COLUMN extra INT")
    result = check_table(write_config, items)
    assert result.status is Status.UNKNOWN
    assert result.details["state"] == "not_comparable"
    assert "only on the target: extra" in result.message


def test_row_count_names_range(pair, write_config, items):
    on_target(pair, f"DELETE FROM {items} WHERE id = 1500")
    result = check_table(write_config, items, only="row_count")
    assert result.status is Status.CRITICAL
    assert result.details["state"] == "diverged"
    assert result.metrics["difference"] == -1
    [described] = result.details["diverged_ranges"]
    low, high = (int(v) for v in described.split("(")[2].rstrip("]").split(", "))
    assert low < 1500 <= high
    assert high - low <= 1000


class Writer(threading.Thread):
    """Updates, inserts and deletes rows of a table on the source until stopped."""

    def __init__(self, pair, table: str) -> None:
        super().__init__(daemon=True)
        self.pair = pair
        self.table = table
        self.stopping = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        connection = self.pair.source.connect(read_timeout=30, write_timeout=30)
        chooser = random.Random(7)
        try:
            with connection.cursor() as cursor:
                next_id = 100_000
                while not self.stopping.is_set():
                    key = chooser.randint(1, 2000)
                    cursor.execute(
                        f"UPDATE {self.table} SET price = price + 1, note = %s "
                        "WHERE id = %s",
                        (f"w{self.writes}", key),
                    )
                    if self.writes % 10 == 0:
                        cursor.execute(
                            f"INSERT INTO {self.table} (id, name, price) "
                            "VALUES (%s, 'new', 0)",
                            (next_id,),
                        )
                        cursor.execute(
                            f"DELETE FROM {self.table} WHERE id = %s", (next_id - 5,)
                        )
                        next_id += 1
                    self.writes += 1
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        assert self.error is None, self.error


def assert_no_difference(result):
    assert result.status is not Status.CRITICAL, result.message
    assert result.details["state"] in ("match", "in_flux"), result.message
    assert result.details["differences"] == []
    assert result.details["diverged_ranges"] == []


def test_write_load_no_difference(pair, write_config, items):
    writer = Writer(pair, items)
    writer.start()
    try:
        wait_for(lambda: writer.writes > 50, 30)
        rechecked = 0
        for run in range(20):
            chunk_time = "500ms" if run % 2 else "5ms"
            result = check_table(write_config, items, chunk_time=chunk_time)
            assert_no_difference(result)
            rechecked += result.metrics["rechecked_chunks"]
            if rechecked >= 2:
                break
        assert rechecked >= 1, "no chunk differed during the write load"
    finally:
        writer.stop()
        pair.wait_caught_up()


def test_delayed_target_no_difference(pair, write_config, items):
    """MASTER_DELAY keeps the target 2 s behind while rows are written."""
    target = pair.target
    target.execute_unlogged(
        "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 2", "START SLAVE"
    )
    writer = Writer(pair, items)
    try:
        writer.start()
        wait_for(lambda: writer.writes > 50, 30)
        result = check_table(write_config, items, chunk_time="50ms", wait_timeout="30s")
        assert_no_difference(result)
    finally:
        writer.stop()
        target.execute_unlogged(
            "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 0", "START SLAVE"
        )
        pair.wait_caught_up()


@pytest.fixture
def job_of(write_config):
    """Build a job of one check on one table, run in-process by a Runner.

    The same check instance serves every run, as in the daemon; the
    databases are closed after the test.
    """
    opened = []

    def build(table, store=None, check="checksum", **settings):
        checks = {check: settings}
        config, plugins = load(str(write_config(tables=[table], checks=checks)))
        databases = {name: Database(s) for name, s in config.servers.items()}
        opened.extend(databases.values())
        instance = plugins.checks[check](config.checks[check])
        state = State(store) if store is not None else None
        [job] = build_jobs(config, [instance], databases, state)
        return job

    yield build
    for database in opened:
        database.close()


def run_job(job):
    [result] = Runner().run(job).results
    return result


def test_stopped_sql_thread_behind(pair, job_of, items, caplog):
    """A stopped SQL thread ends each run at once as behind; the pause is
    logged once over two runs, and once it runs again the pass matches."""
    caplog.set_level(logging.INFO, logger="encmond.checks")
    job = job_of(items)
    pair.target.execute_unlogged("STOP SLAVE SQL_THREAD")
    try:
        pair.source.execute(f"UPDATE {items} SET name = 'moved' WHERE id = 5")
        first, second = run_job(job), run_job(job)
    finally:
        pair.target.execute_unlogged("START SLAVE SQL_THREAD")
        pair.wait_caught_up()
    third = run_job(job)
    for result in (first, second):
        assert result.status is Status.UNKNOWN
        assert result.details["state"] == "behind"
        assert "replication thread not running: SQL No" in result.message
    assert caplog.text.count("pausing validation") == 1
    assert third.details["state"] == "match", third.message
    assert caplog.text.count("resuming validation") == 1


def test_lag_pause_then_resume(pair, job_of, items, caplog):
    """Lag over max_lag pauses the pass within a run until the target drains."""
    caplog.set_level(logging.INFO, logger="encmond.checks")
    target = pair.target
    job = job_of(items, max_lag="1s", wait_timeout="30s")
    target.execute_unlogged(
        "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 4", "START SLAVE"
    )
    try:
        pair.source.execute(f"UPDATE {items} SET name = 'late' WHERE id = 5")

        def lagging():
            lag = (target.slave_status() or {}).get("Seconds_Behind_Master")
            return lag is not None and lag >= 2

        wait_for(lagging, 30, message="the delayed target never lagged 2 s")
        result = run_job(job)
    finally:
        target.execute_unlogged(
            "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 0", "START SLAVE"
        )
        pair.wait_caught_up()
    assert result.details["state"] == "match", result.message
    assert result.details["paused_seconds"] > 0
    assert "pausing validation of " + items + ": target lag" in caplog.text
    assert "resuming validation of " + items in caplog.text


def test_pass_resumes_from_store(pair, job_of, items, tmp_path):
    """A pass saved at id 1000 goes on from there after a restart."""
    on_target(
        pair,
        f"UPDATE {items} SET name = 'early' WHERE id = 10",
        f"UPDATE {items} SET name = 'late' WHERE id = 1990",
    )
    store = Store(str(tmp_path / "resume.db"))
    job = job_of(items, store)
    key = ("checksum", "target", items)
    now = time.time()
    saved = PassState(started_at=now, position=[1000], chunks_done=3, first_seen=now)
    saved.rows_checked = saved.source_rows = saved.target_rows = 1000
    ProgressStore(store).save(key, saved)
    try:
        first = run_job(job)
        assert keys_of(first) == [(1990,)]
        assert first.metrics["rows_checked"] == 2000
        second = run_job(job)
        assert keys_of(second) == [(10,), (1990,)]
        reopened = ProgressStore(Store(str(tmp_path / "resume.db"))).load(key)
        assert reopened.last_pass["state"] == "diverged"
    finally:
        store.close()


QUERY_INTERRUPTED = 1317  # the MariaDB error of a query ended by KILL QUERY


@contextlib.contextmanager
def busy_source(pair, sessions):
    """Hold ``sessions`` queries running on the source, so that its
    Threads_running is above ``sessions``, until the block ends."""
    connections = [pair.source.connect(read_timeout=300) for _ in range(sessions)]
    ids = [connection.thread_id() for connection in connections]

    def sleep(connection):
        with connection.cursor() as cursor:
            try:
                cursor.execute("SELECT SLEEP(300)")
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != QUERY_INTERRUPTED:
                    raise

    threads = [
        threading.Thread(target=sleep, args=(connection,), daemon=True)
        for connection in connections
    ]
    for thread in threads:
        thread.start()

    def threads_running():
        rows = pair.source.execute("SHOW GLOBAL STATUS LIKE 'Threads_running'")
        return int(rows[0]["Value"])

    try:
        wait_for(lambda: threads_running() > sessions, 30)
        yield
    finally:
        for thread_id in ids:
            pair.source.execute(f"KILL QUERY {thread_id}")
        for thread, connection in zip(threads, connections, strict=True):
            thread.join(30)
            connection.close()


def test_unfinished_one_shot_unknown(pair, write_config, job_of, items, tmp_path):
    """A pass that a busy source keeps from finishing is UNKNOWN in
    ``encmond check``, whose progress ends with it, and in progress (OK) in
    the daemon, whose next run goes on with it."""
    on_target(pair, f"UPDATE {items} SET name = 'other' WHERE id = 1990")
    limits = {"max_threads_running": 2, "wait_timeout": "1s"}
    path = write_config(tables=[items], checks={"checksum": limits})
    store = Store(str(tmp_path / "daemon.db"))
    try:
        with busy_source(pair, 3):
            done = subprocess.run(
                [sys.executable, "-m", "encmond", "check", "--json"]
                + ["--only", "checksum", "-c", str(path)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            daemon_result = run_job(job_of(items, store, **limits))
    finally:
        store.close()

    assert done.returncode == 1, done.stdout + done.stderr
    [one_shot] = [
        r for r in json.loads(done.stdout)["results"] if r["subject"] == items
    ]
    assert one_shot["status"] == "UNKNOWN"
    assert one_shot["details"]["state"] == "in_progress"
    message = one_shot["message"]
    assert message.startswith(
        "not validated: the pass did not finish within the check's timeout of "
    )
    assert "it compared 0 chunks, 0 rows, about 0 % of the table" in message
    assert "paused: source Threads_running" in message
    assert "raise checks.checksum.timeout" in message

    assert daemon_result.status is Status.OK, daemon_result.message
    assert daemon_result.details["state"] == "in_progress"
    assert daemon_result.message.startswith("pass in progress: 0 chunks, 0 rows")


def test_capped_differences_no_exact_total(pair, write_config, items):
    """With more differing rows than max_differences, the message gives a
    lower bound and the diverged ranges cover every changed row."""
    on_target(
        pair,
        f"UPDATE {items} SET name = 'other' WHERE id BETWEEN 501 AND 1600",
    )
    result = check_table(write_config, items, max_differences=100)
    assert result.status is Status.CRITICAL
    assert result.details["state"] == "diverged"
    listed = len(result.details["differences"])
    assert 0 < listed <= 100
    assert keys_of(result, "changed") == keys_of(result)
    assert result.message.startswith(f"data differs in at least {listed} rows (")
    assert "listed up to max_differences = 100" in result.message
    assert "key range" in result.message
    ranges = [bounds(described) for described in result.details["diverged_ranges"]]
    for key in range(501, 1601):
        assert any(low < key <= high for low, high in ranges), key


def bounds(described: str) -> tuple[float, float]:
    """Return the bounds of an integer key range such as ``(id) in (5, 9]``."""
    low, high = described.split(" in (")[1].rstrip("])").split(", ")
    return float(low), float(high)


def test_stale_after_age():
    now = time.time()
    state = PassState(first_seen=now - 7200, last_clean_pass=now - 3600)
    state.last_pass = state.summary("match") | {"finished_at": now - 3600}
    fresh = table_result("s.t", state, Outcome("checksum", ["id"], stale_after=7200))
    assert fresh.status is Status.OK
    assert fresh.details["stale"] is False
    stale = table_result("s.t", state, Outcome("checksum", ["id"], stale_after=600))
    assert stale.status is Status.WARNING
    assert stale.details["stale"] is True
    assert stale.details["state"] == "match"
    assert "stale: no clean pass for" in stale.message


def diverged_entry(lower, upper, localised=True):
    """Return a diverged chunk (lower, upper] of an integer key as a pass keeps it."""
    chunk = Chunk((lower,), (upper,))
    return {"chunk": chunk.to_json(), "rows": upper - lower, "localised": localised}


def changed(*keys):
    return [{"key": {"id": key}, "kind": "changed"} for key in keys]


def test_running_pass_keeps_last_divergence():
    """While a new pass runs, the last finished pass's keys stay listed
    together with the running pass's, and the finished new pass replaces them."""
    now = time.time()
    state = PassState(first_seen=now - 60)
    state.diverged = [diverged_entry(0, 10), diverged_entry(10, 20)]
    state.differences = changed(3, 5, 12)
    state.last_pass = state.summary("diverged") | {"finished_at": now - 30}
    state.start(now)
    state.diverged = [diverged_entry(0, 10), diverged_entry(40, 50)]
    state.differences = [{"key": {"id": 3}, "kind": "missing_on_target"}]
    state.differences += changed(44)
    outcome = Outcome("checksum", ["id"], stale_after=3600)

    running = table_result("s.t", state, outcome)
    assert running.status is Status.CRITICAL
    assert running.details["state"] == "diverged"
    assert running.details["differences"] == [
        {"key": {"id": 3}, "kind": "missing_on_target"},
        *changed(5, 12, 44),
    ]
    assert running.details["diverged_ranges"] == [
        "(id) in (0, 10]",
        "(id) in (10, 20]",
        "(id) in (40, 50]",
    ]
    assert running.message.startswith("data differs in 4 rows (")

    state.differences = []
    state.diverged = []
    still_running = table_result("s.t", state, outcome)
    assert still_running.details["state"] == "diverged"
    assert len(still_running.details["differences"]) == 3

    state.diverged = [diverged_entry(40, 50)]
    state.differences = changed(44)
    finish(state)
    finished = table_result("s.t", state, outcome)
    assert finished.details["differences"] == changed(44)
    assert finished.details["diverged_ranges"] == ["(id) in (40, 50]"]
    assert finished.message == "data differs in 1 row (1 changed): id=44"


def test_unlisted_ranges_no_exact_total():
    """Rows beyond max_differences, or in chunks never read row by row,
    turn the listed count into a lower bound."""
    state = PassState(first_seen=time.time())
    state.diverged = [diverged_entry(0, 10), diverged_entry(600, 1100, False)]
    state.differences = changed(1, 2)
    finish(state)
    outcome = Outcome("checksum", ["id"], stale_after=3600, max_differences=100)
    unlisted = table_result("s.t", state, outcome).message
    assert unlisted.startswith("data differs in at least 2 rows (2 changed): ")
    assert "; and in 1 key range whose rows are not all listed: " in unlisted
    assert unlisted.endswith("(id) in (600, 1100]")

    capped = Outcome("checksum", ["id"], stale_after=3600, max_differences=2)
    message = table_result("s.t", state, capped).message
    assert message.startswith(
        "data differs in at least 2 rows "
        "(2 changed, listed up to max_differences = 2): id=1; id=2"
    )


def test_config_rejects_bad_chunk_time(write_config):
    from encmond.errors import ConfigError

    path = write_config(checks={"checksum": {"chunk_time": "-1s"}})
    with pytest.raises(ConfigError, match="chunk_time"):
        load(str(path))


def test_api_lists_differing_keys(pair, write_config, daemon, items):
    on_target(pair, f"DELETE FROM {items} WHERE id = 77")
    checks = {"checksum": {"interval": "2s"}, "row_count": {"interval": "2s"}}
    encmond = daemon(write_config(tables=[items], checks=checks))
    wait_for(lambda: encmond.result("checksum", items), 30)
    report = encmond.json("/api/validation")["targets"]["target"][items]
    assert report["checksum"]["state"] == "diverged"
    assert report["checksum"]["differences"] == [
        {"key": {"id": 77}, "kind": "missing_on_target"}
    ]
    assert report["checksum"]["last_clean_pass"] is None
    assert report["checksum"]["progress"]["chunks_done"] > 0
    firing = wait_for(
        lambda: [a for a in encmond.alerts("firing") if a["check"] == "checksum"], 30
    )
    assert firing[0]["severity"] == "CRITICAL"
    assert firing[0]["subject"] == items
    status, script = encmond.get("/static/tables.js")
    assert "Last clean pass" in script
    assert encmond.stop() == 0


def test_timeout_mid_pass_recovers(pair, write_config, daemon, items):
    """A run cut off by its timeout while waiting for a delayed target is a
    WARNING; the daemon goes on and matches once the target catches up."""
    target = pair.target
    target.execute_unlogged(
        "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 30", "START SLAVE"
    )
    try:
        pair.source.execute(f"UPDATE {items} SET name = 'moved' WHERE id = 1")
        checks = {
            "checksum": {
                "interval": "2s",
                "timeout": "3s",
                "wait_timeout": "60s",
                "max_lag": "1h",
            }
        }
        encmond = daemon(write_config(tables=[items], checks=checks))
        firing = wait_for(
            lambda: [a for a in encmond.alerts("firing") if a["check"] == "checksum"],
            60,
            message="the timed-out run raised no alert",
        )
        assert firing[0]["severity"] == "WARNING"
        assert "timed out after 3 s" in firing[0]["message"]
    finally:
        target.execute_unlogged(
            "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 0", "START SLAVE"
        )
        pair.wait_caught_up()
    matched = wait_for(
        lambda: (
            (encmond.result("checksum", items) or {}).get("details", {}).get("state")
            == "match"
        ),
        60,
        message="checksum did not match again after the target caught up",
    )
    assert matched
    assert encmond.stop() == 0
    assert "Traceback" not in encmond.log_text()
