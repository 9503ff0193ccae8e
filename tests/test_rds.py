"""RDS mode against the real pair, made to look like Amazon RDS for MariaDB.

The ``rds`` fixture gives both servers what RDS has and a plain MariaDB has
not. The procedure ``mysql.rds_replica_status`` runs with its definer's
rights, so a user without SLAVE MONITOR reads the replica status through it.
``mysql.rds_show_configuration`` and ``mysql.rds_set_configuration`` read
and write a ``mysql.rds_configuration`` table. The target gets RDS's
replication filters for its own tables, and the monitoring user gets only
what RDS's master user can grant. Everything is created with
``sql_log_bin=0`` and removed afterwards.

NOTE: on RDS, ``mysql.rds_replica_status`` returns MySQL 8 style names
(``Source_Host``, ``Replica_IO_Running``) next to ``Seconds_Behind_Master``.
A MariaDB procedure can only pass on ``SHOW SLAVE STATUS`` as it is, so the
emulated procedure returns MariaDB's names; test_replica_status.py covers
RDS's names with a recorded row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
import yaml

from daemon_process import wait_for
from encmond.model import Status
from helpers import find, results_of

USER = "rdsmon"
PROCEDURES = ("rds_replica_status", "rds_show_configuration")
RDS_IGNORE_TABLE = "mysql.rds_sysinfo,mysql.rds_history,mysql.rds_replication_status"
RDS_WILD_IGNORE = "mysql.rds\\\\_%"  # SQL text of the pattern mysql.rds\_%


@dataclass
class Rds:
    """The emulated RDS on the pair: its monitoring user and its password."""

    pair: object
    user: str
    password: str

    def config(self, write_config, **overrides):
        """Write a config whose servers use the RDS monitoring user."""
        path = write_config(**overrides)
        config = yaml.safe_load(path.read_text())
        for server in ("source", "target"):
            config[server].update(user=self.user, password=self.password)
        path.write_text(yaml.safe_dump(config))
        return path

    def set_retention(self, hours: int | None) -> None:
        value = "NULL" if hours is None else f"'{hours}'"
        self.pair.source.execute_unlogged(
            f"CALL mysql.rds_set_configuration('binlog retention hours', {value})"
        )

    def set_filters(self, ignore_table: str, wild_ignore: str) -> None:
        """Set the target's table filters, which need a stopped replica."""
        target = self.pair.target
        target.execute_unlogged(
            "STOP SLAVE",
            f"SET GLOBAL replicate_ignore_table = '{ignore_table}'",
            f"SET GLOBAL replicate_wild_ignore_table = '{wild_ignore}'",
            "START SLAVE",
        )
        wait_for(
            lambda: (target.slave_status() or {}).get("Slave_IO_Running") == "Yes",
            30,
            message=f"replication did not restart: {target.slave_status()}",
        )


def install_procedures(server) -> None:
    server.execute_unlogged(
        "CREATE TABLE mysql.rds_configuration (name VARCHAR(100) PRIMARY KEY, "
        "value VARCHAR(100), description VARCHAR(300))",
        "INSERT INTO mysql.rds_configuration VALUES ('binlog retention hours', "
        "NULL, 'binlog retention hours specifies the duration in hours before "
        "binary logs are automatically deleted.')",
        "CREATE DEFINER = 'root'@'localhost' PROCEDURE mysql.rds_replica_status() "
        "SQL SECURITY DEFINER SHOW SLAVE STATUS",
        "CREATE DEFINER = 'root'@'localhost' PROCEDURE "
        "mysql.rds_show_configuration() SQL SECURITY DEFINER "
        "SELECT name, value, description FROM mysql.rds_configuration",
        "CREATE DEFINER = 'root'@'localhost' PROCEDURE "
        "mysql.rds_set_configuration(IN in_name VARCHAR(100), "
        "IN in_value VARCHAR(100)) SQL SECURITY DEFINER "
        "UPDATE mysql.rds_configuration SET value = in_value WHERE name = in_name",
    )


def remove_procedures(server) -> None:
    server.execute_unlogged(
        "DROP PROCEDURE IF EXISTS mysql.rds_replica_status",
        "DROP PROCEDURE IF EXISTS mysql.rds_show_configuration",
        "DROP PROCEDURE IF EXISTS mysql.rds_set_configuration",
        "DROP TABLE IF EXISTS mysql.rds_configuration",
    )


def create_user(server, user: str, password: str, procedures=PROCEDURES) -> None:
    """Create a user with what RDS's master user can grant: no SLAVE MONITOR."""
    server.execute_unlogged(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT, PROCESS, REPLICATION CLIENT ON *.* TO '{user}'@'%'",
        *(
            f"GRANT EXECUTE ON PROCEDURE mysql.{name} TO '{user}'@'%'"
            for name in procedures
        ),
    )


@pytest.fixture
def rds(pair):
    """Make the session pair look like RDS for one test, and restore it after."""
    password = secrets.token_hex(8)
    try:
        for server in (pair.source, pair.target):
            install_procedures(server)
            create_user(server, USER, password)
        emulated = Rds(pair, USER, password)
        emulated.set_filters(RDS_IGNORE_TABLE, RDS_WILD_IGNORE)
        yield emulated
    finally:
        Rds(pair, USER, password).set_filters("", "")
        for server in (pair.source, pair.target):
            remove_procedures(server)
            server.execute_unlogged(f"DROP USER IF EXISTS '{USER}'@'%'")


@pytest.fixture
def orders(pair, schema):
    pair.source.execute(
        f"CREATE TABLE {schema}.orders (id INT PRIMARY KEY, note VARCHAR(20))"
    )
    pair.source.execute(
        f"INSERT INTO {schema}.orders SELECT seq, 'x' FROM {schema}.seq_1_to_100"
    )
    pair.wait_caught_up()
    return f"{schema}.orders"


def test_every_check_reports(rds, write_config, orders):
    attestation = "StorageEncrypted=true, checked in the console"
    path = rds.config(
        write_config,
        tables=[orders],
        checks={"encryption": {"attestations": {"target": attestation}}},
    )
    results = results_of(path)
    for result in results:
        assert "denied" not in result.message, str(result) + " " + result.message
        assert "GRANT" not in result.message, str(result) + " " + result.message
        assert result.status is not Status.UNKNOWN, str(result) + " " + result.message

    replication = find(results, "replica_lag", "replication")
    assert replication.status is Status.OK
    assert replication.metrics["lag_seconds"] == 0
    assert replication.metrics["io_running"] == 1
    assert replication.details["statement"] == "CALL mysql.rds_replica_status"

    filters = find(results, "replication_filters", "filters")
    assert filters.status is Status.OK
    assert filters.details["skipped_tables"] == {}
    assert sorted(filters.details["rds_filters"]) == [
        "Replicate_Ignore_Table mysql.rds_history",
        "Replicate_Ignore_Table mysql.rds_replication_status",
        "Replicate_Ignore_Table mysql.rds_sysinfo",
        "Replicate_Wild_Ignore_Table mysql.rds\\_%",
    ]
    assert "RDS's own filters" in filters.message

    at_rest = find(results, "encryption", "at_rest", "target")
    assert at_rest.status is Status.OK
    assert at_rest.details["platform"] == "rds"
    assert at_rest.details["evidence"] == "operator attestation"
    in_flight = find(results, "encryption", "in_flight", "target")
    assert in_flight.details["channel"] is not None

    catch_up = find(results, "replica_lag", "catch_up")
    assert catch_up.status is Status.WARNING
    assert "binlog retention hours=NULL" in catch_up.message
    assert "mysql.rds_set_configuration('binlog retention hours'" in catch_up.message
    assert catch_up.details["retention_known"] is True

    assert find(results, "checksum", orders).status is Status.OK
    assert find(results, "cutover", "verdict").status is Status.OK


@pytest.mark.parametrize(
    ("hours", "status", "text"),
    [
        (48, Status.OK, "binlog retention hours=48"),
        (2, Status.WARNING, "shorter than retention_margin (24 h)"),
        (None, Status.WARNING, "binlog retention hours=NULL"),
    ],
)
def test_retention_against_margin(rds, write_config, hours, status, text):
    rds.set_retention(hours)
    path = rds.config(write_config)
    result = find(results_of(path, ["replica_lag"]), "replica_lag", "catch_up")
    assert result.status is status, result.message
    assert text in result.message
    expected = 0.0 if hours is None else hours * 3600.0
    assert result.metrics["binlog_retention_seconds"] == expected


def test_margin_off_accepts_unset(rds, write_config):
    path = rds.config(write_config, checks={"replica_lag": {"retention_margin": 0}})
    result = find(results_of(path, ["replica_lag"]), "replica_lag", "catch_up")
    assert result.status is Status.OK, result.message
    assert "binlog retention hours=NULL" in result.message


def test_filter_on_table_reported(rds, write_config, orders):
    rds.set_filters(f"{RDS_IGNORE_TABLE},{orders}", RDS_WILD_IGNORE)
    path = rds.config(write_config, tables=[orders])
    results = results_of(path, ["replication_filters"])
    result = find(results, "replication_filters", "filters")
    assert result.status is Status.CRITICAL
    assert result.details["skipped_tables"] == {
        orders: f"Replicate_Ignore_Table {orders}"
    }
    assert f"{orders} (Replicate_Ignore_Table {orders})" in result.message
    assert len(result.details["rds_filters"]) == 4


def test_wild_filter_on_table_reported(rds, write_config, orders):
    schema = orders.split(".")[0]
    rds.set_filters(RDS_IGNORE_TABLE, f"{RDS_WILD_IGNORE},{schema}.ord%")
    path = rds.config(write_config, tables=[orders])
    result = find(
        results_of(path, ["replication_filters"]), "replication_filters", "filters"
    )
    assert result.status is Status.CRITICAL
    assert result.details["skipped_tables"] == {
        orders: f"Replicate_Wild_Ignore_Table {schema}.ord%"
    }


def test_procedure_not_granted(rds, pair, write_config):
    user, password = f"{USER}2", secrets.token_hex(8)
    for server in (pair.source, pair.target):
        create_user(server, user, password, procedures=())
    try:
        path = Rds(pair, user, password).config(write_config)
        result = find(results_of(path, ["replica_lag"]), "replica_lag", "target")
    finally:
        for server in (pair.source, pair.target):
            server.execute_unlogged(f"DROP USER '{user}'@'%'")
    assert result.status is Status.UNKNOWN
    assert "mysql.rds_replica_status" in result.message
    grant = f"GRANT EXECUTE ON PROCEDURE `mysql`.`rds_replica_status` TO '{user}'@'%'"
    assert grant in result.message
    assert "SLAVE MONITOR" not in result.message


def test_retention_unreadable_named(rds, pair, write_config):
    user, password = f"{USER}3", secrets.token_hex(8)
    for server in (pair.source, pair.target):
        create_user(server, user, password, procedures=("rds_replica_status",))
    try:
        path = Rds(pair, user, password).config(write_config)
        result = find(results_of(path, ["replica_lag"]), "replica_lag", "catch_up")
    finally:
        for server in (pair.source, pair.target):
            server.execute_unlogged(f"DROP USER '{user}'@'%'")
    assert result.status is Status.WARNING
    assert result.details["retention_known"] is False
    assert result.metrics["binlog_retention_seconds"] is None
    assert "binlog retention is unknown: mysql.rds_show_configuration failed" in (
        result.message
    )
    grant = (
        f"GRANT EXECUTE ON PROCEDURE `mysql`.`rds_show_configuration` TO '{user}'@'%'"
    )
    assert grant in result.message
