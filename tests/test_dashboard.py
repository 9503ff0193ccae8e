"""The dashboard in a headless Chromium, against a daemon watching the real pair."""

from __future__ import annotations

import pytest
import yaml
from playwright.sync_api import expect

from browser import PHONE, screenshot
from daemon_process import DaemonProcess, wait_for
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


def target_section(page, name: str):
    return page.locator(f'section.target[data-target="{name}"]')


def test_dashboard_shows_pair(write_config, daemon, browser, hostile_tables):
    encmond = daemon(write_config(tables=hostile_tables, checks=FAST_CHECKS))
    page = open_dashboard(browser, encmond)
    for name in ("source", "target"):
        expect(server_card(page, name)).to_have_attribute("data-status", "OK")
        expect(server_card(page, name)).to_contain_text("up ·")
    section = target_section(page, "target")
    expect(section.locator(".lag")).to_have_text("0 s")
    rows = section.locator("table.validation tbody tr")
    expect(rows).to_have_count(len(HOSTILE_NAMES))
    for table in hostile_tables:
        name = str(Table(table["schema"], table["table"]))
        row = rows.filter(has=page.get_by_role("cell", name=name, exact=True))
        expect(row.locator("td.table-name")).to_have_text(name)
        expect(row.locator(".badge").first).to_have_text("matching")
    assert page.locator("main script, main img").count() == 0
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
        lag = target_section(page, "target").locator(".lag")
        expect(lag).to_have_text("unknown")
        expect(lag).to_have_attribute("data-status", "UNKNOWN")
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
    # The API is polled every 5 s while the WebSocket is down.
    stale = page.locator("#stale")
    expect(stale).to_be_visible(timeout=15_000)
    expect(stale).to_contain_text("encmond is not answering since")
    expect(page.locator("#banner")).not_to_contain_text("null")
    screenshot(page, "dashboard-stale")
    encmond.start()
    expect(page.locator("#live")).to_have_text("live")
    expect(stale).to_be_hidden(timeout=15_000)
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


# The trio's targets in a configured order that is not alphabetical.
TRIO_TARGETS = ("target", "replica")
DIVERGED = "dash.orders"
DIFFERING_KEYS = ("id=17 changed", "id=42 missing on target")
TRIO_CHECKS = {
    **FAST_CHECKS,
    "encryption": {"interval": "2s"},
    "errant_writes": {"interval": "2s"},
    "cutover": {"interval": "2s"},
}
OPERATOR = "Dana <b>DBA</b>"


@pytest.fixture(scope="module")
def watched_trio(trio, tmp_path_factory):
    """``encmond run`` on the trio with two tables, ``dash.orders`` changed on
    ``target`` behind replication's back, once its checksum alert fires."""
    source = trio.source
    source.execute("CREATE DATABASE dash")
    source.execute("CREATE TABLE dash.orders (id INT PRIMARY KEY, amount INT)")
    source.execute("INSERT INTO dash.orders SELECT seq, seq FROM dash.seq_1_to_500")
    source.execute("CREATE TABLE dash.customers (id INT PRIMARY KEY, name TEXT)")
    source.execute(
        "INSERT INTO dash.customers SELECT seq, CONCAT('customer ', seq) "
        "FROM dash.seq_1_to_50"
    )
    trio.wait_caught_up()

    trio.targets["target"].execute_unlogged(
        "UPDATE dash.orders SET amount = 0 WHERE id = 17",
        "DELETE FROM dash.orders WHERE id = 42",
    )

    directory = tmp_path_factory.mktemp("dashboard")
    config = trio.encmond_config(
        storage={"path": str(directory / "encmond.db")},
        plugins={"dirs": []},
        tables=[DIVERGED, "dash.customers"],
        checks=TRIO_CHECKS,
    )
    config["targets"] = {name: config["targets"][name] for name in TRIO_TARGETS}
    for section in (config["source"], *config["targets"].values()):
        section.update(retry_delay="500ms", connect_timeout="2s")
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    process = DaemonProcess(path, directory)
    process.start()
    try:
        wait_for(
            lambda: firing_alert(process, "checksum", "target", DIVERGED),
            90,
            message=f"no checksum alert firing for {DIVERGED} on target",
        )
        yield process
    finally:
        process.stop()
        source.execute("DROP DATABASE IF EXISTS dash")
        trio.wait_caught_up()


def firing_alert(encmond, check: str, server: str, subject: str) -> dict | None:
    for alert in encmond.alerts("firing"):
        if (alert["check"], alert["server"], alert["subject"]) == (
            check,
            server,
            subject,
        ):
            return alert
    return None


def test_dashboard_target_sections(watched_trio, browser):
    page = open_dashboard(browser, watched_trio)
    sections = page.locator("section.target")
    expect(sections).to_have_count(len(TRIO_TARGETS))
    shown = [sections.nth(i).get_attribute("data-target") for i in range(2)]
    assert shown == list(TRIO_TARGETS)
    servers = page.locator("#servers .card")
    expect(servers).to_have_count(3)
    order = [servers.nth(i).get_attribute("data-server") for i in range(3)]
    assert order == ["source", *TRIO_TARGETS]
    for name in TRIO_TARGETS:
        section = target_section(page, name)
        expect(section.locator(".lag")).to_have_attribute("data-status", "OK")
        expect(section.locator(".signal")).to_have_count(3)
        expect(section.locator("table.validation tbody tr")).to_have_count(2)
    expect(server_card(page, "replica")).to_contain_text("not encrypted")


def test_dashboard_differing_keys(watched_trio, browser):
    page = open_dashboard(browser, watched_trio)
    rows = 'table.validation tr[data-table="dash.orders"]'
    row = target_section(page, "target").locator(rows)
    expect(row.locator("td[data-state]").first).to_have_text("diverged")
    keys = row.locator("ul.keys")
    expect(keys).to_be_hidden()
    row.locator("details summary").click()
    for key in DIFFERING_KEYS:
        expect(keys).to_contain_text(key)
    clean = target_section(page, "replica").locator(rows)
    expect(clean.locator("td[data-state]").first).to_have_text("matching")


def test_dashboard_cutover_no_go(watched_trio, browser):
    page = open_dashboard(browser, watched_trio)
    card = target_section(page, "target").locator(".card.cutover")
    expect(card).to_have_attribute("data-verdict", "NO-GO")
    blocker = card.locator("ol.blockers li", has_text=f"{DIVERGED} validated")
    expect(blocker).to_contain_text("Clears when: repair the differing rows")
    expect(page.locator("#banner .cutover-summary")).to_contain_text("Cutover NO-GO")


def test_dashboard_lag_chart(watched_trio, browser):
    page = browser.new_page()
    history = []
    page.on(
        "request", lambda r: history.append(r.url) if "/api/history" in r.url else 0
    )
    page.goto(watched_trio.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    for name in TRIO_TARGETS:
        expect(target_section(page, name).locator(".plot canvas").first).to_be_visible()
    plot = target_section(page, "target").locator(".plot")
    drawn = int(plot.get_attribute("data-samples"))
    fetched = len(history)
    expect(plot).not_to_have_attribute("data-samples", str(drawn))
    assert int(plot.get_attribute("data-samples")) > drawn
    assert len(history) == fetched
    hour = target_section(page, "target").get_by_role("button", name="1 h")
    hour.click()
    expect(hour).to_have_attribute("aria-pressed", "true")
    expect(plot.locator("canvas").first).to_be_visible()


def test_dashboard_ack_records_who(watched_trio, browser):
    alert = firing_alert(watched_trio, "checksum", "target", DIVERGED)
    page = open_dashboard(browser, watched_trio)
    page.fill("#operator", OPERATOR)
    page.fill("#action-comment", "repairing ids 17 and 42")
    row = page.locator(f'#alerts tbody tr[data-alert="{alert["id"]}"]')
    row.get_by_role("button", name="Ack", exact=True).click()
    expect(row).to_contain_text(f"acknowledged by {OPERATOR}")
    stored = watched_trio.json(f"/api/alerts/{alert['id']}")
    assert stored["acknowledged"] is True
    assert stored["acked_by"] == OPERATOR
    assert stored["ack_comment"] == "repairing ids 17 and 42"
    expect(page.locator("#banner")).to_contain_text("acknowledged")
    assert page.locator("#alerts b").count() == 0
    screenshot(page, "dashboard-overview")


def test_dashboard_phone_width(watched_trio, browser):
    page = browser.new_page()
    page.set_viewport_size(PHONE)
    page.emulate_media(color_scheme="dark")
    page.goto(watched_trio.url + "/")
    expect(page.locator("#live")).to_have_text("live")
    section = target_section(page, "target")
    expect(section.locator("table.validation tbody tr")).to_have_count(2)
    expect(section.locator(".plot canvas").first).to_be_visible()
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth]"
    )
    assert max(widths) <= PHONE["width"]
    screenshot(page, "dashboard-phone-dark")
