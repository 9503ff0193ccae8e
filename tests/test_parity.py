"""Errant writes and schema parity: pure cases, then the real servers."""

from __future__ import annotations

import yaml

from encmond.model import Status
from encmond.parity import (
    accepted_by,
    errant_gtids,
    parse_gtid_state,
    schema_differences,
)
from helpers import cutover_cli, find, results_of
from pair import start_pair


def test_gtid_state_keeps_max():
    assert parse_gtid_state("0-1-5,1-2-3", "0-1-4\n,0-2-9") == {
        (0, 1): 5,
        (1, 2): 3,
        (0, 2): 9,
    }


def test_errant_reasons():
    source = parse_gtid_state("0-1-10")
    target = parse_gtid_state("0-1-10,0-2-3,7-1-1,0-5-2")
    found = errant_gtids(target, source)
    assert set(found) == {"0-2-3", "7-1-1", "0-5-2"}
    assert found["7-1-1"] == "domain 7 was never written on the source"
    assert (
        found["0-2-3"] == "the source has no transaction from server_id 2 in domain 0"
    )


def test_errant_ahead_of_source():
    found = errant_gtids(parse_gtid_state("0-1-12"), parse_gtid_state("0-1-10"))
    assert found == {"0-1-12": "the source is at 0-1-10"}


def test_accepted_covers_lower():
    assert accepted_by("0-2-3", ["0-2-5"])
    assert not accepted_by("0-2-6", ["0-2-5"])
    assert not accepted_by("0-2-3", ["1-2-5"])


def test_schema_differences_plain():
    base = {
        "table": {"engine": "InnoDB", "table collation": "utf8mb4_general_ci"},
        "columns": {"id": {"type": "int(11)"}, "amount": {"type": "decimal(10,2)"}},
        "keys": {"PRIMARY": "unique btree index (id)"},
    }
    changed = {
        "table": dict(base["table"]),
        "columns": {"id": {"type": "int(11)"}, "amount": {"type": "decimal(12,2)"}},
        "keys": {},
    }
    assert schema_differences(base, changed) == [
        "column amount: type decimal(10,2) on the source, decimal(12,2) on the target",
        "key PRIMARY: only on the source",
    ]


def test_errant_write_blocks_cutover(tmp_path):
    with start_pair(tmp_path / "pair") as own:
        own.source.execute("CREATE DATABASE shop")
        own.source.execute("CREATE TABLE shop.items (id INT PRIMARY KEY)")
        own.wait_caught_up()
        own.target.execute("INSERT INTO shop.items VALUES (1)")
        local = own.target.execute("SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
        config = own.encmond_config(
            tables=["shop.items"],
            storage={"path": str(tmp_path / "encmond.db")},
            plugins={"dirs": []},
        )
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        errant = find(results_of(path, ["errant_writes"]), "errant_writes", "gtid")
        status, report = cutover_cli(path)
        config["checks"] = {"errant_writes": {"accepted": [local]}}
        path.write_text(yaml.safe_dump(config))
        accepted = find(results_of(path, ["errant_writes"]), "errant_writes", "gtid")

    reason = "the source has no transaction from server_id 2 in domain 0"
    assert local.startswith("0-2-")
    assert errant.status is Status.CRITICAL
    assert errant.details["errant"] == {local: reason}
    assert f"errant writes on the target: {local} ({reason})" in errant.message
    assert status == 1
    blockers = report["targets"]["target"]["blockers"]
    assert "no errant writes on the target" in [b["condition"] for b in blockers]
    assert accepted.status is Status.OK
    assert accepted.details["accepted"] == {local: reason}


def test_read_only_off_warns(pair, write_config):
    pair.target.execute("SET GLOBAL read_only = OFF")
    try:
        off = find(
            results_of(write_config(), ["errant_writes"]), "errant_writes", "read_only"
        )
    finally:
        pair.target.execute("SET GLOBAL read_only = ON")
    on = find(
        results_of(write_config(), ["errant_writes"]), "errant_writes", "read_only"
    )
    assert off.status is Status.WARNING
    assert off.message.startswith("read_only is OFF on the target")
    assert on.status is Status.OK


def test_column_type_blocks_cutover(pair, write_config, schema):
    table = f"{schema}.orders"
    pair.source.execute(
        f"CREATE TABLE {table} (id INT PRIMARY KEY, amount DECIMAL(10, 2), "
        "note VARCHAR(20) CHARACTER SET latin1, KEY note (note))"
    )
    pair.wait_caught_up()
    path = write_config(tables=[table])
    same = find(results_of(path, ["schema"]), "schema", table)
    pair.target.execute_unlogged(f"ALTER TABLE {table} MODIFY amount DECIMAL(12, 2)")
    different = find(results_of(path, ["schema"]), "schema", table)
    status, report = cutover_cli(path)

    assert same.status is Status.OK
    assert same.message == "same definition: 3 columns, 2 keys"
    assert different.status is Status.CRITICAL
    assert different.details["state"] == "diverged"
    assert different.details["differences"] == [
        "column amount: type decimal(10,2) on the source, decimal(12,2) on the target"
    ]
    assert status == 1
    blockers = {b["condition"]: b for b in report["targets"]["target"]["blockers"]}
    blocker = blockers[f"{table} has the same definition"]
    assert "decimal(12,2) on the target" in blocker["problem"]
    assert blocker["clears"] == "make the definitions the same on both servers"


def test_schema_missing_table(write_config, schema):
    path = write_config(tables=[f"{schema}.absent"])
    result = find(results_of(path, ["schema"]), "schema", f"{schema}.absent")
    assert result.status is Status.CRITICAL
    assert result.message == "table missing on the source and target"


def test_schema_new_table_behind(pair, write_config, schema):
    """A table created on the source while the target's SQL thread is stopped
    is behind, not missing, and has the same definition once applied."""
    table = f"{schema}.fresh"
    path = write_config(tables=[table], checks={"schema": {"wait_timeout": "1s"}})
    pair.target.execute_unlogged("STOP SLAVE SQL_THREAD")
    try:
        pair.source.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
        behind = find(results_of(path, ["schema"]), "schema", table)
    finally:
        pair.target.execute_unlogged("START SLAVE SQL_THREAD")
        pair.wait_caught_up()
    caught_up = find(results_of(path, ["schema"]), "schema", table)
    assert behind.status is Status.UNKNOWN, behind.message
    assert behind.details["state"] == "behind"
    assert behind.details["missing_on"] == ["target"]
    assert behind.message.startswith("table not on the target yet")
    assert caught_up.status is Status.OK, caught_up.message
