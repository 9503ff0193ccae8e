"""The encryption check against the real pair: an encrypted target, a plain source."""

from __future__ import annotations

import yaml

from encmond.encryption import REQUIRED
from encmond.model import Status
from helpers import find, results_of


def encryption(config_path):
    return results_of(config_path, ["encryption"])


def test_target_encrypted_source_not(write_config):
    results = encryption(write_config())
    target = find(results, "encryption", "at_rest", "target")
    source = find(results, "encryption", "at_rest", "source")

    assert target.status is Status.OK
    assert target.details["verdict"] == "encrypted"
    assert target.details["evidence"] == "SQL"
    assert target.details["key_plugins"] == ["file_key_management"]
    assert target.metrics["encrypted_share"] == 1.0
    assert target.metrics["encrypted_tablespaces"] == target.metrics["tablespaces"]
    for name in REQUIRED:
        assert target.details["variables"][name] == "ON", name
    assert target.message.startswith("encrypted at rest: ")

    assert source.status is Status.OK
    assert source.details["verdict"] == "unencrypted"
    assert source.metrics["encrypted_tablespaces"] == 0
    assert source.metrics["encrypted"] == 0
    assert source.message.startswith("not encrypted at rest: 0 of ")
    assert source.message.endswith("(the source: reported, not alerted on)")


def test_encrypted_no_table_reported(pair, write_config, schema):
    pair.target.execute_unlogged(
        f"CREATE TABLE {schema}.`plain-data` (id INT PRIMARY KEY) ENCRYPTED=NO"
    )
    try:
        result = find(encryption(write_config()), "encryption", "at_rest", "target")
    finally:
        pair.target.execute_unlogged(f"DROP TABLE {schema}.`plain-data`")

    assert result.status is Status.CRITICAL
    assert result.details["verdict"] == "unencrypted"
    assert result.metrics["encrypted_share"] < 1.0
    # InnoDB names the file plain@002ddata; the message names the table.
    assert f"{schema}/plain-data" in result.message
    listed = result.details["unencrypted_tablespaces"]
    assert listed == [
        {"name": f"{schema}/plain-data", "encrypted_no": True, "pending": False}
    ]


def rds_config(write_config, attestation=None):
    path = write_config()
    config = yaml.safe_load(path.read_text())
    for server in ("source", "target"):
        config[server]["platform"] = "rds"
    if attestation:
        config["checks"] = {"encryption": {"attestations": {"target": attestation}}}
    path.write_text(yaml.safe_dump(config))
    return path


def test_rds_not_visible(write_config):
    result = find(
        encryption(rds_config(write_config)), "encryption", "at_rest", "target"
    )
    assert result.status is Status.WARNING
    assert result.details["verdict"] == "not_visible"
    assert result.message.startswith("not visible from SQL (RDS encrypts")
    assert "checks.encryption.attestations.target" in result.message


def test_rds_attestation_recorded(write_config):
    statement = "StorageEncrypted=true, KMS key alias/db, checked 2026-05-01"
    result = find(
        encryption(rds_config(write_config, statement)),
        "encryption",
        "at_rest",
        "target",
    )
    assert result.status is Status.OK
    assert result.details["verdict"] == "attested"
    assert result.details["evidence"] == "operator attestation"
    assert result.details["attestation"] == statement
    assert result.message.endswith(f"the operator attests: {statement}")


def test_channel_without_tls(write_config):
    path = write_config(checks={"encryption": {"require_tls": True}})
    results = encryption(path)
    target = find(results, "encryption", "in_flight", "target")
    assert target.status is Status.CRITICAL
    assert target.details["channel"]["ssl_allowed"] is False
    assert "replication channel: no TLS" in target.message
    assert "the replication channel is not encrypted" in target.details["problems"]
    assert find(results, "encryption", "in_flight", "source").details["channel"] is None


def test_channel_reported_not_required(write_config):
    result = find(encryption(write_config()), "encryption", "in_flight", "target")
    assert result.status is Status.OK
    assert result.metrics["channel_tls"] == 0
