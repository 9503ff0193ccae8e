"""The ``encryption`` check: encryption at rest and in flight, on every server.

A target must be encrypted; the source is reported the same way, but being
unencrypted is what a migration starts from, so it never alerts.

SQL cannot show encryption at rest on RDS, which encrypts the storage
volume. There the verdict comes from the AWS API for a server with a
``db_instance_identifier`` while the ``aws`` section is set, else from the
operator's attestation. ``details["evidence"]`` names the source used.
"""

from __future__ import annotations

from dataclasses import dataclass

from encmond import Check, Result, Status, hookimpl
from encmond.aws import REQUEST, AwsError, StorageEncryption, describe_storage
from encmond.encryption import (
    ATTESTED,
    ENCRYPTED,
    IN_PROGRESS,
    NOT_VISIBLE,
    UNENCRYPTED,
    AtRest,
    channel_tls,
    read_at_rest,
    session_cipher,
)
from encmond.platform import detect_platform
from encmond.replication import replica_status
from encmond.settings import Setting, boolean, describe, string

# Sources of the at-rest verdict, as details["evidence"] names them.
SQL = "SQL"
AWS_API = f"AWS API ({REQUEST})"
ATTESTATION = "operator attestation"
NONE = "none"

TARGET_STATUS = {
    ENCRYPTED: Status.OK,
    ATTESTED: Status.OK,
    IN_PROGRESS: Status.WARNING,
    NOT_VISIBLE: Status.WARNING,
    UNENCRYPTED: Status.CRITICAL,
}


def attestations(value) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            f"expected a mapping of server names to statements, got {describe(value)}"
        )
    return {string(name): string(text) for name, text in value.items()}


class Encryption(Check):
    """Reports each server's encryption at rest and the TLS of its connections."""

    name = "encryption"
    scope = "server"
    interval = 300.0
    options = {
        "attestations": Setting(
            attestations,
            {},
            "per server name, the operator's statement that its storage is "
            "encrypted, used only where neither SQL nor the AWS API shows it",
        ),
        "require_tls": Setting(
            boolean,
            False,
            "make a replication channel or encmond connection without TLS CRITICAL",
        ),
    }

    def run(self, ctx):
        db = ctx.server
        facts = read_at_rest(db, detect_platform(db))
        yield self.at_rest(ctx, facts)
        yield self.in_flight(ctx)

    def at_rest(self, ctx, facts: AtRest) -> Result:
        verdict, reasons = facts.verdict()
        evidence = Evidence(SQL)
        if verdict == NOT_VISIBLE:
            verdict, evidence = self.outside_sql(ctx)
        message = describe_at_rest(verdict, reasons, facts, evidence, ctx.name)
        status = TARGET_STATUS[verdict]
        if ctx.server.config.role != "target":
            status = Status.OK
            message += " (the source: reported, not alerted on)"
        return Result(
            "at_rest",
            status,
            message,
            metrics={
                "tablespaces": len(facts.tablespaces or []) or None,
                "encrypted_tablespaces": facts.encrypted_count,
                "encrypted_share": facts.share,
                "rotating_tablespaces": facts.rotating_count,
                "encrypted": int(verdict in (ENCRYPTED, ATTESTED)),
            },
            details=at_rest_details(verdict, reasons, facts, evidence),
        )

    def outside_sql(self, ctx) -> tuple[str, Evidence]:
        """Judge storage SQL cannot see: from the AWS API, else an attestation."""
        evidence = Evidence(NONE)
        identifier = ctx.server.config.db_instance_identifier
        if identifier and ctx.config.aws is not None:
            try:
                storage = describe_storage(ctx.config.aws, identifier)
            except AwsError as exc:
                evidence.aws_error = str(exc)
                ctx.log.warning(
                    "%s: storage encryption from the AWS API failed: %s; the "
                    "attestation, if configured, is used instead",
                    ctx.name,
                    exc,
                )
            else:
                verdict = ENCRYPTED if storage.encrypted else UNENCRYPTED
                return verdict, Evidence(AWS_API, aws=storage)
        elif identifier:
            evidence.aws_error = (
                "db_instance_identifier is set but the configuration has no aws "
                "section, so encmond does not call the AWS API"
            )
        attestation = self.settings["attestations"].get(ctx.name)
        if attestation:
            evidence.source = ATTESTATION
            evidence.attestation = attestation
            return ATTESTED, evidence
        return NOT_VISIBLE, evidence

    def in_flight(self, ctx) -> Result:
        db = ctx.server
        cipher = session_cipher(db)
        details = {"encmond_cipher": cipher, "channel": None}
        problems = [] if cipher else ["encmond's connection is not encrypted"]
        parts = [f"encmond's connection: {cipher or 'no TLS'}"]
        if db.config.role == "target":
            status = replica_status(db, db.config.replication_connection)
            if status is not None:
                channel = channel_tls(status)
                details["channel"] = channel
                parts.insert(0, describe_channel(channel))
                problems += channel_problems(channel)
        status = Status.OK
        if problems and self.settings["require_tls"]:
            status = Status.CRITICAL
        return Result(
            "in_flight",
            status,
            "; ".join(parts),
            metrics={
                "encmond_tls": int(cipher is not None),
                "channel_tls": (
                    int(details["channel"]["ssl_allowed"])
                    if details["channel"]
                    else None
                ),
            },
            details=details | {"problems": problems},
        )


@dataclass
class Evidence:
    """The source of the at-rest verdict, and what that source reported."""

    source: str
    attestation: str | None = None
    aws: StorageEncryption | None = None
    aws_error: str | None = None


def describe_at_rest(verdict, reasons, facts: AtRest, evidence: Evidence, name) -> str:
    if evidence.source == AWS_API:
        return describe_aws(evidence.aws)
    if verdict == ENCRYPTED:
        return (
            f"encrypted at rest: {facts.encrypted_count} of "
            f"{len(facts.tablespaces)} InnoDB tablespaces, redo log, binlog, "
            "temporary files and Aria tables, keys from "
            f"{', '.join(facts.key_plugins)}"
            + (
                f"; key rotation in progress on {facts.rotating_count}"
                if facts.rotating_count
                else ""
            )
        )
    if verdict in (ATTESTED, NOT_VISIBLE):
        message = f"not visible from SQL ({reasons[0]})"
        if evidence.aws_error:
            message += f"; the AWS API was not used: {evidence.aws_error}"
        if verdict == ATTESTED:
            return f"{message}; the operator attests: {evidence.attestation}"
        return (
            f"{message}; no attestation is configured under "
            f"checks.encryption.attestations.{name}"
        )
    share = f"{facts.encrypted_count} of {len(facts.tablespaces)} tablespaces"
    if verdict == IN_PROGRESS:
        return f"encryption in progress: {share} encrypted; {'; '.join(reasons)}"
    return f"not encrypted at rest: {share} encrypted; {'; '.join(reasons)}"


def describe_aws(storage: StorageEncryption) -> str:
    instance = f"RDS instance {storage.identifier}"
    if not storage.encrypted:
        return (
            f"not encrypted at rest: the AWS API ({REQUEST}) reports "
            f"StorageEncrypted false for {instance}"
        )
    return (
        f"encrypted at rest: the AWS API ({REQUEST}) reports StorageEncrypted "
        f"true for {instance}, KMS key {storage.kms_key_id or 'not reported'}"
    )


def at_rest_details(verdict, reasons, facts: AtRest, evidence: Evidence) -> dict:
    unencrypted = [s for s in facts.tablespaces or [] if not s.encrypted]
    return {
        "verdict": verdict,
        "reasons": reasons,
        "evidence": evidence.source,
        "attestation": evidence.attestation,
        "aws": evidence.aws.to_dict() if evidence.aws else None,
        "aws_error": evidence.aws_error,
        "platform": facts.platform,
        "variables": facts.variables,
        "key_plugins": facts.key_plugins,
        "unencrypted_tablespaces": [
            {"name": s.name, "encrypted_no": s.opted_out, "pending": s.pending}
            for s in unencrypted[:100]
        ],
    }


def describe_channel(channel: dict) -> str:
    if not channel["ssl_allowed"]:
        return "replication channel: no TLS (Master_SSL_Allowed No)"
    verified = "verified" if channel["verify_server_cert"] else "not verified"
    return f"replication channel: TLS {channel['cipher'] or ''}, certificate {verified}"


def channel_problems(channel: dict) -> list[str]:
    if not channel["ssl_allowed"]:
        return ["the replication channel is not encrypted"]
    if not channel["verify_server_cert"]:
        return ["the replication channel does not verify the source's certificate"]
    return []


@hookimpl
def register_checks():
    return [Encryption]
