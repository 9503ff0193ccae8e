"""Replication filter rules: which configured tables they skip, and whose they are."""

from __future__ import annotations

import pytest

from encmond.config import Table
from encmond.filters import analyse, like, read_rules

ORDERS = Table("shop", "orders")
LOG = Table("shop", "log_2026")


def status(**rules) -> dict:
    """Return a normalised status with the given filter fields, others empty."""
    return {f"replicate_{name}": value for name, value in rules.items()}


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("shop.%", "shop.orders", True),
        ("shop.ord_rs", "shop.orders", True),
        ("shop.ord\\_rs", "shop.orders", False),
        ("mysql.rds\\_%", "mysql.rds_history", True),
        ("mysql.rds\\_%", "mysql.rdsxhistory", False),
        ("shop.orders", "shop.orders_old", False),
        ("%.orders", "shop.orders", True),
        ("Shop.%", "shop.orders", False),
    ],
)
def test_like_patterns(pattern, text, matches):
    assert like(pattern, text) is matches


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ({}, None),
        ({"ignore_table": "shop.orders"}, "Replicate_Ignore_Table shop.orders"),
        ({"wild_ignore_table": "shop.ord%"}, "Replicate_Wild_Ignore_Table shop.ord%"),
        ({"ignore_db": "scratch,shop"}, "Replicate_Ignore_DB shop"),
        ({"do_db": "other"}, "Replicate_Do_DB other does not list shop"),
        ({"do_db": "other,shop"}, None),
        ({"do_table": "shop.orders"}, None),
        (
            {"do_table": "shop.customers"},
            "no Replicate_Do_Table or Replicate_Wild_Do_Table rule "
            "(shop.customers) lists it",
        ),
        ({"wild_do_table": "shop.%"}, None),
        ({"do_table": "shop.orders", "ignore_table": "shop.orders"}, None),
        (
            {"rewrite_db": "shop->shop_copy"},
            "Replicate_Rewrite_DB shop->shop_copy writes it to another database",
        ),
        (
            {"rewrite_db": "(other,x),(shop,shop_copy)"},
            "Replicate_Rewrite_DB (shop,shop_copy) writes it to another database",
        ),
    ],
)
def test_skip_reasons(rules, reason):
    report = analyse(status(**rules), [ORDERS], rds=False)
    assert report.skipped.get(str(ORDERS)) == reason


def test_rds_rules_expected():
    rules = status(
        ignore_table="mysql.rds_sysinfo,mysql.rds_history",
        wild_ignore_table="mysql.rds\\_%,shop.log\\_%",
    )
    report = analyse(rules, [ORDERS, LOG], rds=True)
    assert [str(rule) for rule in report.rds] == [
        "Replicate_Ignore_Table mysql.rds_sysinfo",
        "Replicate_Ignore_Table mysql.rds_history",
        "Replicate_Wild_Ignore_Table mysql.rds\\_%",
    ]
    assert [str(rule) for rule in report.other] == [
        "Replicate_Wild_Ignore_Table shop.log\\_%"
    ]
    assert report.skipped == {
        "shop.log_2026": "Replicate_Wild_Ignore_Table shop.log\\_%"
    }


def test_rds_rules_off_rds():
    report = analyse(status(ignore_table="mysql.rds_sysinfo"), [ORDERS], rds=False)
    assert report.rds == []
    assert [str(rule) for rule in report.other] == [
        "Replicate_Ignore_Table mysql.rds_sysinfo"
    ]


def test_domain_rules_apart():
    report = analyse(status(ignore_domain_ids="1,2"), [ORDERS], rds=True)
    assert [str(rule) for rule in report.domains] == [
        "Replicate_Ignore_Domain_Ids 1",
        "Replicate_Ignore_Domain_Ids 2",
    ]
    assert report.skipped == {}


def test_empty_fields_no_rules():
    assert read_rules(status(do_db="", ignore_table=None, rewrite_db="")) == []
