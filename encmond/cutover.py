"""The cutover verdict: GO only when every condition holds, with its evidence.

The verdict is built from other checks' latest results, the lag samples and
the firing alerts, read through a ``State``. Every condition becomes a fact
with what was observed, when, and from which result. A failed condition is a
blocker that also names what clears it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from encmond.config import Config
from encmond.lag import format_duration
from encmond.model import Result, Severity, Status
from encmond.state import State

LAG_KEY = ("replica_lag", "replication")
GOOD_ENCRYPTION = ("encrypted", "attested")
MIN_GAP = 15.0  # seconds; shorter gaps between lag samples never count as holes
NOTE_NO_CLEAN_PASS = (
    "NOTE: the checksum results carry no last_clean_pass, so a matching "
    "result's own time counts as its clean pass"
)


@dataclass
class Fact:
    """One condition of the verdict: held or not, what was seen, and when."""

    condition: str
    ok: bool
    observed: str
    time: float | None = None
    evidence: str | None = None
    clears: str = ""


@dataclass
class Verdict:
    target: str
    time: float
    facts: list[Fact]
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def go(self) -> bool:
        return all(fact.ok for fact in self.facts)

    @property
    def blockers(self) -> list[Fact]:
        return [fact for fact in self.facts if not fact.ok]

    def summary(self) -> str:
        if self.go:
            return f"GO: all {len(self.facts)} conditions hold"
        blockers = self.blockers
        listed = "; ".join(f"{b.condition}: {b.observed}" for b in blockers[:3])
        more = f" (and {len(blockers) - 3} more)" if len(blockers) > 3 else ""
        return (
            f"NO-GO, {len(blockers)} blocker{'s' * (len(blockers) > 1)}: {listed}{more}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "verdict": "GO" if self.go else "NO-GO",
            "go": self.go,
            "time": self.time,
            "summary": self.summary(),
            "blockers": [
                {
                    "condition": b.condition,
                    "problem": b.observed,
                    "clears": b.clears,
                    "time": b.time,
                    "evidence": b.evidence,
                }
                for b in self.blockers
            ],
            "facts": [asdict(fact) for fact in self.facts],
            "notes": self.notes,
            "settings": self.settings,
        }


def evaluate(
    state: State, config: Config, target: str, settings: dict, now: float | None = None
) -> Verdict:
    """Build the verdict for ``target`` from the contents of ``state`` at ``now``."""
    judge = Judge(state, config, target, settings, now or time.time())
    facts = [
        judge.replication(),
        judge.lag(),
        *judge.validation(),
        judge.encryption(),
        judge.errant_writes(),
        *judge.schemas(),
        judge.alerts(),
    ]
    return Verdict(
        target,
        judge.now,
        facts,
        judge.notes,
        {key: settings[key] for key in ("max_lag", "lag_window", "validation_max_age")},
    )


class Judge:
    """Turns one snapshot of the state into the verdict's facts."""

    def __init__(self, state, config, target, settings, now) -> None:
        self.state = state
        self.config = config
        self.target = target
        self.settings = settings
        self.now = now
        self.notes: list[str] = []
        self.results = {(r.check, r.server, r.subject): r for r in state.latest()}

    def result(self, check: str, subject: str) -> Result | None:
        return self.results.get((check, self.target, subject))

    def missing(self, condition: str, check: str, subject: str) -> Fact:
        enabled = self.config.checks.get(check, {}).get("enabled", False)
        why = "has not run yet" if enabled else "is disabled"
        return Fact(
            condition,
            False,
            f"no {check} result for {subject} on {self.target}: the check {why}",
            clears=f"enable checks.{check} and let it run",
        )

    def stale(self, condition: str, result: Result) -> Fact | None:
        """Return a failed fact when ``result`` is too old to count."""
        check = self.config.checks.get(result.check, {})
        limit = 3 * check.get("interval", 60.0) + check.get("timeout", 60.0)
        age = self.now - result.time
        if age <= limit:
            return None
        return Fact(
            condition,
            False,
            f"the latest {result.check} result is {format_duration(age)} old",
            result.time,
            evidence_of(result),
            clears=f"let the {result.check} check run again (encmond run does)",
        )

    def fact(self, condition, result, ok, clears) -> Fact:
        return Fact(
            condition,
            ok,
            result.message,
            result.time,
            evidence_of(result),
            "" if ok else clears,
        )

    # The conditions

    def replication(self) -> Fact:
        condition = "replication running"
        result = self.result(*LAG_KEY)
        if result is None:
            return self.missing(condition, *LAG_KEY)
        metrics = result.metrics
        ok = (
            metrics.get("io_running") == 1
            and metrics.get("sql_running") == 1
            and metrics.get("lag_known") == 1
        )
        return self.stale(condition, result) or self.fact(
            condition,
            result,
            ok,
            "start replication on the target (START SLAVE) and fix the error it "
            "reports",
        )

    def lag(self) -> Fact:
        bound = self.settings["max_lag"]
        window = self.settings["lag_window"]
        condition = f"lag within {format_duration(bound)} for {format_duration(window)}"
        clears = (
            f"lag stays at or below {format_duration(bound)} for "
            f"{format_duration(window)} while encmond run records it"
        )
        start = self.now - window
        samples = self.state.samples(
            (LAG_KEY[0], self.target, LAG_KEY[1]), "lag_seconds", start, self.now
        )
        interval = self.config.checks.get(LAG_KEY[0], {}).get("interval", 5.0)
        gap = min(max(3 * interval, MIN_GAP), window / 2)
        problem = lag_problem(samples, start, self.now, gap, bound)
        evidence = f"{LAG_KEY[0]}/{self.target}/{LAG_KEY[1]} lag_seconds"
        last = samples[-1][0] if samples else None
        if problem:
            return Fact(condition, False, problem, last, evidence, clears)
        peak = max(value for _, value in samples)
        observed = (
            f"lag stayed at or below {format_duration(bound)} over "
            f"{len(samples)} samples since {iso(samples[0][0])}, peak "
            f"{format_duration(peak)}"
        )
        return Fact(condition, True, observed, last, evidence)

    def validation(self) -> list[Fact]:
        if not self.config.tables:
            return [
                Fact(
                    "tables validated",
                    False,
                    "no tables are configured, so nothing was validated",
                    clears="list the tables to compare under tables:",
                )
            ]
        return [self.validated(str(table)) for table in self.config.tables]

    def validated(self, table: str) -> Fact:
        condition = f"{table} validated"
        result = self.result("checksum", table)
        if result is None:
            return self.missing(condition, "checksum", table)
        state = result.details.get("state")
        max_age = self.settings["validation_max_age"]
        clean = result.details.get("last_clean_pass")
        if "last_clean_pass" not in result.details and state == "match":
            # NOTE: checksum results without last_clean_pass predate that field;
            # a matching result's own time is the best clean pass they show.
            clean = result.time
            if NOTE_NO_CLEAN_PASS not in self.notes:
                self.notes.append(NOTE_NO_CLEAN_PASS)
        if state == "diverged":
            return self.fact(
                condition,
                result,
                False,
                "repair the differing rows on the target, then wait for a clean pass",
            )
        if clean is None:
            return self.fact(
                condition, result, False, "wait for a validation pass that matches"
            )
        age = self.now - clean
        fact = self.fact(condition, result, age <= max_age, "")
        fact.observed = f"last clean pass {format_duration(age)} ago ({iso(clean)})"
        if not fact.ok:
            fact.observed += f", older than {format_duration(max_age)}"
            fact.clears = "wait for the next validation pass to match"
        return fact

    def encryption(self) -> Fact:
        condition = "target encrypted at rest"
        result = self.result("encryption", "at_rest")
        if result is None:
            return self.missing(condition, "encryption", "at_rest")
        verdict = result.details.get("verdict")
        clears = {
            "in_progress": "wait until the encryption threads have encrypted "
            "every tablespace",
            "not_visible": "set db_instance_identifier and the aws section so "
            "that encmond reads StorageEncrypted from the AWS API, or record the "
            f"operator's attestation under checks.encryption.attestations."
            f"{self.target}",
        }.get(
            verdict,
            "encrypt what the message lists (variables ON, ALTER TABLE ... "
            "ENCRYPTED=YES) and restart the target if a variable needs it",
        )
        return self.stale(condition, result) or self.fact(
            condition, result, verdict in GOOD_ENCRYPTION, clears
        )

    def errant_writes(self) -> Fact:
        condition = "no errant writes on the target"
        result = self.result("errant_writes", "gtid")
        if result is None:
            return self.missing(condition, "errant_writes", "gtid")
        return self.stale(condition, result) or self.fact(
            condition,
            result,
            result.status is Status.OK,
            "review the listed transactions: if the target is right, list them "
            "under checks.errant_writes.accepted, else rebuild the target",
        )

    def schemas(self) -> list[Fact]:
        facts = []
        for table in map(str, self.config.tables):
            condition = f"{table} has the same definition"
            result = self.result("schema", table)
            if result is None:
                facts.append(self.missing(condition, "schema", table))
                continue
            ok = result.details.get("state") == "match"
            facts.append(
                self.stale(condition, result)
                or self.fact(
                    condition,
                    result,
                    ok,
                    "make the definitions the same on both servers",
                )
            )
        return facts

    def alerts(self) -> Fact:
        condition = "no CRITICAL alert firing"
        servers = {self.target, "source"}
        firing = [
            f"{a.check} on {a.server}: {a.subject}: {a.message}"
            for a in self.state.firing_alerts()
            if a.severity is Severity.CRITICAL
            and a.server in servers
            and a.check != "cutover"
        ]
        keys = {(a.check, a.server, a.subject) for a in self.state.firing_alerts()}
        firing += [
            f"{r.check} on {r.server}: {r.subject}: {r.message}"
            for key, r in self.state.fresh.items()
            if r.status is Status.CRITICAL and r.server in servers and key not in keys
        ]
        if firing:
            return Fact(
                condition,
                False,
                f"{len(firing)} CRITICAL: " + "; ".join(firing[:5]),
                self.now,
                "alerts",
                "resolve what the alerts report",
            )
        return Fact(condition, True, "none", self.now, "alerts")


def lag_problem(samples, start: float, now: float, gap: float, bound: float) -> str:
    """Describe why the lag samples fail the bound over the window, or ''."""
    if not samples:
        return (
            "no lag samples in the window (encmond cutover reads them from "
            "the daemon's storage)"
        )
    if samples[0][0] - start > gap:
        return f"lag has been watched for only {format_duration(now - samples[0][0])}"
    for (before, _), (after, _) in zip(samples, samples[1:], strict=False):
        if after - before > gap:
            return (
                f"lag was unknown for {format_duration(after - before)} from "
                f"{iso(before)}"
            )
    if now - samples[-1][0] > gap:
        return f"no lag sample since {iso(samples[-1][0])}"
    for moment, value in samples:
        if value > bound:
            return f"lag was {format_duration(value)} at {iso(moment)}"
    return ""


def evidence_of(result: Result) -> str:
    return f"{result.check}/{result.server}/{result.subject}"


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
