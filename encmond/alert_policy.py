"""Alert timing and severity per check and per table.

``checks.<name>`` takes ``for``, ``keep_firing_for`` and ``max_severity``.
``checks.<name>.tables`` maps a configured table to overrides of those, and
of the check's own options such as ``wait_timeout``, for that table alone.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from encmond.model import Severity
from encmond.settings import Located, Section, Setting, describe, duration, severity

ALERT_SETTINGS = {
    "for": Setting(duration, 0.0, "how long a condition holds before its alert fires"),
    "keep_firing_for": Setting(
        duration,
        0.0,
        "how long a condition stays clear before its alert resolves; a "
        "shorter clear neither resolves a firing alert nor resets a pending one",
    ),
    "max_severity": Setting(
        severity, "CRITICAL", "highest severity of this check's alerts"
    ),
}
# Keys that apply to a whole check, never to one table.
CHECK_ONLY = ("enabled", "interval", "timeout", "tables")


@dataclass(frozen=True)
class Policy:
    """When an alert fires and resolves, and how severe it may get."""

    pending_for: float = 0.0
    keep_firing_for: float = 0.0
    max_severity: Severity = Severity.CRITICAL

    def cap(self, severity: Severity) -> Severity:
        """Return ``severity``, lowered to ``max_severity`` when above it."""
        if severity.rank > self.max_severity.rank:
            return self.max_severity
        return severity


def policy_of(settings: dict[str, Any]) -> Policy:
    return Policy(
        pending_for=settings.get("for", 0.0),
        keep_firing_for=settings.get("keep_firing_for", 0.0),
        max_severity=Severity(settings.get("max_severity", "CRITICAL")),
    )


class Policies:
    """The Policy of each (check, subject), from the parsed ``checks`` section."""

    def __init__(self, checks: dict[str, dict[str, Any]]) -> None:
        self.checks = {name: policy_of(settings) for name, settings in checks.items()}
        self.tables = {
            (name, table): policy_of({**settings, **overrides})
            for name, settings in checks.items()
            for table, overrides in (settings.get("tables") or {}).items()
        }

    def lookup(self, check: str, subject: str) -> Policy:
        found = self.tables.get((check, subject))
        if found is None:
            found = self.checks.get(check, Policy())
        return found


def parse_table_overrides(
    raw: Any, section: Section, tables: set[str], located: Located, path: tuple
) -> dict[str, dict[str, Any]]:
    """Validate ``checks.<name>.tables``: configured tables to partial settings."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise located.error(
            path,
            f"expected a mapping of schema.table names to settings, got "
            f"{describe(raw)}",
        )
    per_table = Section(
        {key: s for key, s in section.settings.items() if key not in CHECK_ONLY}
    )
    overrides = {}
    for table, value in raw.items():
        if table not in tables:
            raise located.error(path + (table,), unknown_table(table, tables))
        parsed = per_table.parse(value, located, path + (table,))
        overrides[table] = {key: parsed[key] for key in value or {}}
    return overrides


def unknown_table(table: Any, tables: set[str]) -> str:
    message = f"table {describe(table)} is not listed under 'tables'"
    nearest = difflib.get_close_matches(str(table), sorted(tables), n=1)
    if nearest:
        return f"{message}; did you mean '{nearest[0]}'?"
    return f"{message}; add it there first"
