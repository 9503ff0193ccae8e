"""Storage encryption from the AWS API, against moto's RDS API on loopback.

moto runs as a server on 127.0.0.1 with fake credentials, and every config
here sets ``aws.endpoint_url`` to it. The environment points the AWS shared
files at nothing and turns off the instance metadata service, so no request
can reach AWS.
"""

from __future__ import annotations

import sys

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from encmond.config import load_config
from encmond.errors import ConfigError
from encmond.model import Status
from helpers import find, results_of

REGION = "eu-west-1"
ENCRYPTED = "db-new"
PLAIN = "db-old"
AWS_API = "AWS API (rds:DescribeDBInstances)"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-creds"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def moto():
    """moto's AWS API on a free loopback port, with two RDS instances.

    Yields (endpoint URL, KMS key ARN of the encrypted instance).
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        key = create_instances(url)
        yield url, key
    finally:
        server.stop()


def create_instances(url: str) -> str:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    kms = session.client("kms", region_name=REGION, endpoint_url=url)
    rds = session.client("rds", region_name=REGION, endpoint_url=url)
    key = kms.create_key(Description="encmond test")["KeyMetadata"]["Arn"]
    for identifier, encrypted in ((ENCRYPTED, True), (PLAIN, False)):
        extra = {"StorageEncrypted": True, "KmsKeyId": key} if encrypted else {}
        rds.create_db_instance(
            DBInstanceIdentifier=identifier,
            DBInstanceClass="db.t3.micro",
            Engine="mariadb",
            EngineVersion="10.11.9",
            MasterUsername="admin",
            MasterUserPassword="not-a-secret",
            AllocatedStorage=20,
            **extra,
        )
    return key


def aws_config(write_config, url, identifiers, aws=True, attestation=None):
    """Write a config with both servers on RDS and their instance identifiers."""
    path = write_config()
    config = yaml.safe_load(path.read_text())
    for server, identifier in identifiers.items():
        config[server]["platform"] = "rds"
        config[server]["db_instance_identifier"] = identifier
    if aws:
        config["aws"] = {"region": REGION, "endpoint_url": url, "timeout": "5s"}
    if attestation:
        config["checks"] = {"encryption": {"attestations": {"target": attestation}}}
    path.write_text(yaml.safe_dump(config))
    return path


def at_rest(path, server="target"):
    return find(results_of(path, ["encryption"]), "encryption", "at_rest", server)


def test_verdicts_from_api(moto, write_config):
    url, key = moto
    path = aws_config(write_config, url, {"source": PLAIN, "target": ENCRYPTED})
    results = results_of(path, ["encryption"])
    target = find(results, "encryption", "at_rest", "target")
    source = find(results, "encryption", "at_rest", "source")

    assert target.status is Status.OK
    assert target.details["verdict"] == "encrypted"
    assert target.details["evidence"] == AWS_API
    assert target.details["aws"]["storage_encrypted"] is True
    assert target.details["aws"]["kms_key_id"] == key
    assert target.details["aws"]["db_instance_identifier"] == ENCRYPTED
    assert target.metrics["encrypted"] == 1
    assert target.message == (
        f"encrypted at rest: the {AWS_API} reports StorageEncrypted true for "
        f"RDS instance {ENCRYPTED}, KMS key {key}"
    )

    assert source.status is Status.OK
    assert source.details["verdict"] == "unencrypted"
    assert source.details["evidence"] == AWS_API
    assert source.details["aws"]["kms_key_id"] is None
    assert source.message.startswith(
        f"not encrypted at rest: the {AWS_API} reports StorageEncrypted false"
    )


def test_unencrypted_target_critical(moto, write_config):
    url, _ = moto
    result = at_rest(aws_config(write_config, url, {"target": PLAIN}))
    assert result.status is Status.CRITICAL
    assert result.details["verdict"] == "unencrypted"
    assert result.metrics["encrypted"] == 0


def test_unknown_instance_uses_attestation(moto, write_config):
    url, _ = moto
    statement = "StorageEncrypted=true in the console, 2026-05-01"
    path = aws_config(write_config, url, {"target": "db-gone"}, attestation=statement)
    result = at_rest(path)
    assert result.status is Status.OK
    assert result.details["verdict"] == "attested"
    assert result.details["evidence"] == "operator attestation"
    assert "DBInstanceNotFound" in result.details["aws_error"]
    assert "the AWS API was not used: rds:DescribeDBInstances for 'db-gone'" in (
        result.message
    )
    assert result.message.endswith(f"the operator attests: {statement}")


def test_unknown_profile_not_visible(moto, write_config):
    url, _ = moto
    path = aws_config(write_config, url, {"target": ENCRYPTED})
    config = yaml.safe_load(path.read_text())
    config["aws"]["profile"] = "no-such-profile"
    path.write_text(yaml.safe_dump(config))
    result = at_rest(path)
    assert result.status is Status.WARNING
    assert result.details["verdict"] == "not_visible"
    assert result.details["evidence"] == "none"
    assert "no-such-profile" in result.details["aws_error"]


def test_no_aws_section_no_call(write_config):
    path = aws_config(write_config, None, {"target": ENCRYPTED}, aws=False)
    result = at_rest(path)
    assert result.status is Status.WARNING
    assert result.details["verdict"] == "not_visible"
    assert result.details["aws"] is None
    assert "has no aws section, so encmond does not call the AWS API" in (
        result.message
    )


def test_without_boto3_uses_attestation(moto, write_config, monkeypatch):
    url, _ = moto
    monkeypatch.setitem(sys.modules, "boto3", None)
    path = aws_config(write_config, url, {"target": ENCRYPTED}, attestation="seen")
    result = at_rest(path)
    assert result.details["verdict"] == "attested"
    assert "pip install 'encmond[aws]'" in result.details["aws_error"]


def test_section_defaults(write_config):
    assert load_config(str(write_config())).aws is None
    config = load_config(str(write_config(aws={"region": REGION})))
    assert config.aws == {
        "region": REGION,
        "endpoint_url": None,
        "profile": None,
        "timeout": 10.0,
    }


def test_invalid_endpoint_rejected(write_config):
    with pytest.raises(ConfigError) as caught:
        load_config(str(write_config(aws={"endpoint_url": "rds.internal"})))
    assert caught.value.key == "aws.endpoint_url"
    assert "expected an http:// or https:// URL" in str(caught.value)
