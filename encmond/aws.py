"""Storage encryption of RDS instances, from the AWS API.

Amazon RDS encrypts an instance's storage volume, which SQL cannot see, and
reports it in ``rds:DescribeDBInstances`` as ``StorageEncrypted`` and
``KmsKeyId``. encmond sends that request only for a server with a
``db_instance_identifier`` while the configuration has an ``aws`` section.
boto3 comes with the optional ``aws`` extra (``pip install 'encmond[aws]'``)
and finds credentials in its usual places: the environment, the shared
files (``profile`` selects one), or the instance's IAM role.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from encmond.errors import EncmondError

log = logging.getLogger(__name__)

REQUEST = "rds:DescribeDBInstances"
MAX_ATTEMPTS = 2  # botocore's standard retry mode, first attempt included
_CLIENTS: dict[tuple, Any] = {}
_CLIENTS_LOCK = threading.Lock()


class AwsError(EncmondError):
    """A failed request for an instance's storage encryption."""


@dataclass
class StorageEncryption:
    """The storage facts ``rds:DescribeDBInstances`` reports for one instance."""

    identifier: str
    encrypted: bool
    kms_key_id: str | None
    arn: str | None
    status: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "db_instance_identifier": self.identifier,
            "storage_encrypted": self.encrypted,
            "kms_key_id": self.kms_key_id,
            "db_instance_arn": self.arn,
            "db_instance_status": self.status,
        }


def describe_storage(settings: dict[str, Any], identifier: str) -> StorageEncryption:
    """Return the storage encryption of RDS instance ``identifier``.

    ``settings`` is the parsed ``aws`` section. Raises AwsError naming what
    failed and how to fix it.
    """
    try:
        import boto3  # noqa: F401 - only to tell a missing boto3 apart
        import botocore.exceptions
    except ImportError:
        raise AwsError(
            "boto3 is not installed; install encmond with the aws extra: "
            "pip install 'encmond[aws]'"
        ) from None
    try:
        response = client(settings).describe_db_instances(
            DBInstanceIdentifier=identifier
        )
    except botocore.exceptions.NoCredentialsError:
        raise AwsError(
            "no AWS credentials found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, aws.profile, or give the host an IAM role "
            f"allowed {REQUEST}"
        ) from None
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsError(
            f"{REQUEST} for {identifier!r} failed: {error.get('Code')}: "
            f"{error.get('Message')}"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError(f"{REQUEST} for {identifier!r} failed: {exc}") from None
    instances = response.get("DBInstances") or []
    if not instances:
        raise AwsError(f"{REQUEST} returned no instance named {identifier!r}")
    instance = instances[0]
    return StorageEncryption(
        identifier=identifier,
        encrypted=bool(instance.get("StorageEncrypted")),
        kms_key_id=instance.get("KmsKeyId"),
        arn=instance.get("DBInstanceArn"),
        status=instance.get("DBInstanceStatus"),
    )


def client(settings: dict[str, Any]):
    """Return the RDS client for ``settings``, created once and then reused."""
    import boto3.session
    import botocore.config

    key = tuple(sorted(settings.items()))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            session = boto3.session.Session(
                profile_name=settings["profile"], region_name=settings["region"]
            )
            timeout = settings["timeout"]
            _CLIENTS[key] = session.client(
                "rds",
                endpoint_url=settings["endpoint_url"],
                config=botocore.config.Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                ),
            )
            log.debug(
                "AWS RDS client for region %s, endpoint %s",
                _CLIENTS[key].meta.region_name,
                _CLIENTS[key].meta.endpoint_url,
            )
        return _CLIENTS[key]
