"""The dashboard in a headless Chromium, against a daemon watching the real pair."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser import PHONE, screenshot
from daemon_process import wait_for
from encmond.config import Table, quote_identifier

pytestmark = pytest.mark.slow

# The page's reconnect backoff grows to 30 s, so each wait allows for more.
expect.set_options(timeout=45_000)

FAST_CHECKS = {
    "connection": {"interval": "1s"},
    "replica_lag": {"interval": "1s"},
    "checksum": {"interval": "2s"},
    "row_count": {"interval": "2s"},
}
HOSTILE_NAMES = [
    "<script>window.injected=1</script>",
    "<img src=x onerror=window.injected=2>",
]


@pytest.fixture
def hostile_tables(pair, schema):
    """Tables whose names are markup, as {schema, table} config entries."""
    for name in HOSTILE_NAMES:
        pair.source.execute(
            f"CREATE TABLE {schema}.{quote_identifier(name)} (id INT PRIMARY KEY)"
        )
    pair.wait_caught_up()
    return [{"schema": schema, "table": name} for name in HOSTILE_NAMES]


def open_dashboard(browser, encmond):
    page = browser.new_page()
    page.goto(encmond.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    return page


def server_card(page, name: str):
    return page.locator("#servers .card", has_text=f"{name} (")


def test_dashboard_shows_pair(write_config, daemon, browser, hostile_tables):
    encmond = daemon(write_config(tables=hostile_tables, checks=FAST_CHECKS))
    page = open_dashboard(browser, encmond)
    for name in ("source", "target"):
        expect(server_card(page, name)).to_have_attribute("data-status", "OK")
        expect(server_card(page, name)).to_contain_text("up ·")
    expect(page.locator("#replication .lag")).to_have_text("0 s")
    rows = page.locator("#tables tbody tr")
    expect(rows).to_have_count(len(HOSTILE_NAMES))
    for table in hostile_tables:
        name = str(Table(table["schema"], table["table"]))
        row = rows.filter(has=page.get_by_role("cell", name=name, exact=True))
        expect(row.locator(".status").first).to_have_text("OK")
    assert page.locator("#tables script, #tables img").count() == 0
    assert page.evaluate("window.injected") is None
    screenshot(page, "dashboard-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "dashboard-phone")


def test_dashboard_target_down(pair, write_config, daemon, browser):
    encmond = daemon(write_config(checks=FAST_CHECKS))
    page = open_dashboard(browser, encmond)
    expect(server_card(page, "target")).to_have_attribute("data-status", "OK")
    page.evaluate("window.notReloaded = true")
    pair.target.kill()
    try:
        card = server_card(page, "target")
        expect(card).to_have_attribute("data-status", "CRITICAL")
        expect(card).to_contain_text("down ·")
        alert = page.locator("#alerts tbody tr", has_text="connection").filter(
            has_text="target"
        )
        expect(alert.first).to_contain_text("firing")
        expect(alert.first).to_contain_text("CRITICAL")
        assert page.evaluate("window.notReloaded") is True
    finally:
        pair.target.start()
    wait_for(lambda: encmond.get("/api/health")[0] == 200, 60)
    pair.wait_caught_up()


def test_dashboard_reconnects(write_config, daemon, browser):
    encmond = daemon(write_config(checks=FAST_CHECKS))
    page = open_dashboard(browser, encmond)
    page.evaluate("window.notReloaded = true")
    assert encmond.stop() == 0
    expect(page.locator("#live")).to_have_text("reconnecting")
    encmond.start()
    expect(page.locator("#live")).to_have_text("live")
    expect(server_card(page, "target")).to_have_attribute("data-status", "OK")
    assert page.evaluate("window.notReloaded") is True


def test_dashboard_asks_token_once(write_config, daemon, browser, tmp_path):
    token = "dashboard/token+1="
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    encmond = daemon(
        write_config(web={"auth_token_file": str(token_file)}, checks=FAST_CHECKS)
    )
    prompts = []

    def answer(dialog):
        prompts.append(dialog.message)
        dialog.accept(token)

    page = browser.new_page()
    page.on("dialog", answer)
    page.goto(encmond.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    expect(server_card(page, "target")).to_have_attribute("data-status", "OK")
    page.reload()
    expect(page.locator("#live")).to_have_text("live")
    expect(server_card(page, "target")).to_have_attribute("data-status", "OK")
    assert len(prompts) == 1
    assert "auth_token_file" in prompts[0]
    assert page.evaluate("sessionStorage.getItem('encmond.token')") == token
