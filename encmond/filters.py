"""Replication filters on a target, and which configured tables they skip.

A filter makes the target skip part of what the source writes, so a table it
skips can never match. The rules are evaluated as MariaDB and MySQL do for
row-based events: the database rules first (``Replicate_Do_DB``,
``Replicate_Ignore_DB``), then the table rules in the order do, ignore, wild
do, wild ignore, where a table that no do rule lists is skipped once any do
rule exists. Wild rules are LIKE patterns (``%``, ``_``, ``\\`` escapes)
matched against ``schema.table``, case-sensitively.

RDS adds ignore rules for its own tables (``mysql.rds_sysinfo``,
``mysql.rds_history``, ``mysql.rds_replication_status``, or a pattern such as
``mysql.rds\\_%``); on RDS those are expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from encmond.config import Table

# Normalised status field -> the column name shown in messages.
TABLE_RULES = {
    "replicate_do_db": "Replicate_Do_DB",
    "replicate_ignore_db": "Replicate_Ignore_DB",
    "replicate_do_table": "Replicate_Do_Table",
    "replicate_ignore_table": "Replicate_Ignore_Table",
    "replicate_wild_do_table": "Replicate_Wild_Do_Table",
    "replicate_wild_ignore_table": "Replicate_Wild_Ignore_Table",
    "replicate_rewrite_db": "Replicate_Rewrite_DB",
}
DOMAIN_RULES = {
    "replicate_do_domain_ids": "Replicate_Do_Domain_Ids",
    "replicate_ignore_domain_ids": "Replicate_Ignore_Domain_Ids",
}
RDS_IGNORE_RULES = ("replicate_ignore_table", "replicate_wild_ignore_table")
RDS_TABLE_PREFIXES = ("mysql.rds_", "mysql.rds\\_")
# MariaDB shows a rewrite as "from->to", MySQL as "(from,to)".
_REWRITE = re.compile(r"\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)|([^,]+?)->([^,]+)")


@dataclass(frozen=True)
class Rule:
    """One replication filter rule: its status field and its entry."""

    field: str
    entry: str

    def __str__(self) -> str:
        return f"{TABLE_RULES.get(self.field) or DOMAIN_RULES[self.field]} {self.entry}"


@dataclass
class FilterReport:
    """The filter rules of one target, sorted by what they mean for encmond.

    ``skipped`` maps each configured table that replication skips to the
    reason. Each rule is in one of ``domains`` (GTID domain rules, which can
    skip changes to any table), ``rds`` (RDS's rules for its own tables) and
    ``other``.
    """

    rules: list[Rule] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    domains: list[Rule] = field(default_factory=list)
    rds: list[Rule] = field(default_factory=list)
    other: list[Rule] = field(default_factory=list)


def read_rules(status: dict[str, Any]) -> list[Rule]:
    """Return every filter rule in a normalised replica status row."""
    rules = []
    for name in (*TABLE_RULES, *DOMAIN_RULES):
        text = str(status.get(name) or "")
        if name == "replicate_rewrite_db":
            entries = [m.group(0).strip() for m in _REWRITE.finditer(text)]
        else:
            entries = [entry.strip() for entry in text.split(",")]
        rules += [Rule(name, entry) for entry in entries if entry]
    return rules


def is_rds_rule(rule: Rule) -> bool:
    """Return whether ``rule`` is an ignore rule for RDS's own mysql.rds_* tables."""
    return rule.field in RDS_IGNORE_RULES and rule.entry.startswith(RDS_TABLE_PREFIXES)


def analyse(status: dict[str, Any], tables: list[Table], rds: bool) -> FilterReport:
    """Sort the target's filter rules and find the configured tables they skip."""
    rules = read_rules(status)
    report = FilterReport(rules)
    for table in tables:
        reason = skip_reason(table, rules)
        if reason:
            report.skipped[str(table)] = reason
    for rule in rules:
        if rule.field in DOMAIN_RULES:
            report.domains.append(rule)
        elif rds and is_rds_rule(rule):
            report.rds.append(rule)
        else:
            report.other.append(rule)
    return report


def skip_reason(table: Table, rules: list[Rule]) -> str | None:
    """Return why replication skips ``table``, or None when it applies it."""
    by_field: dict[str, list[str]] = {}
    for rule in rules:
        by_field.setdefault(rule.field, []).append(rule.entry)
    return database_reason(table, by_field) or table_reason(table, by_field)


def database_reason(table: Table, rules: dict[str, list[str]]) -> str | None:
    schema = table.schema
    do_db = rules.get("replicate_do_db", [])
    if do_db and schema not in do_db:
        return f"Replicate_Do_DB {','.join(do_db)} does not list {schema}"
    if schema in rules.get("replicate_ignore_db", []):
        return f"Replicate_Ignore_DB {schema}"
    for entry in rules.get("replicate_rewrite_db", []):
        match = _REWRITE.fullmatch(entry)
        source = (match.group(1) or match.group(3)).strip() if match else ""
        if source == schema:
            return f"Replicate_Rewrite_DB {entry} writes it to another database"
    return None


def table_reason(table: Table, rules: dict[str, list[str]]) -> str | None:
    name = f"{table.schema}.{table.name}"
    do_table = rules.get("replicate_do_table", [])
    wild_do = rules.get("replicate_wild_do_table", [])
    if name in do_table:
        return None
    if name in rules.get("replicate_ignore_table", []):
        return f"Replicate_Ignore_Table {name}"
    if any(like(pattern, name) for pattern in wild_do):
        return None
    for pattern in rules.get("replicate_wild_ignore_table", []):
        if like(pattern, name):
            return f"Replicate_Wild_Ignore_Table {pattern}"
    if do_table or wild_do:
        listed = ",".join(do_table + wild_do)
        return (
            f"no Replicate_Do_Table or Replicate_Wild_Do_Table rule ({listed}) lists it"
        )
    return None


def like(pattern: str, text: str) -> bool:
    """Match ``text`` against a LIKE pattern with ``\\`` as the escape character."""
    parts = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.fullmatch("".join(parts), text, re.DOTALL) is not None
