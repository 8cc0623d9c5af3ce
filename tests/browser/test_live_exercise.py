"""A whole exercise in real browsers: create, push, type together, lose the network, reload, submit."""

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_PASSWORD, ConsoleWatch, Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
LAPTOP = {"width": 1366, "height": 768}


def new_page(chromium: Any, watch: ConsoleWatch, server: Server, **options: Any) -> Any:
    context = chromium.new_context(base_url=server.base_url, viewport=LAPTOP, **options)
    context.set_default_timeout(15_000)
    return watch.watch(context.new_page())


def sign_in_and_create(page: Any, *, teams: str) -> str:
    """The facilitator signs in (in English), creates a Japanese exercise and starts it."""
    page.goto("/login?lang=en")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/exercises$"))
    page.get_by_role("link", name="New exercise").first.click()
    page.get_by_label("Title").fill("Friday drill")
    page.get_by_label("Teams (one name per line)").fill(teams)
    page.get_by_label("Language of the exercise").select_option("ja")
    page.get_by_role("button", name="Create exercise").click()
    expect(page).to_have_url(re.compile(r"/exercises/[\w-]+$"))
    expect(page.locator(".conn")).to_have_text("Online")
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".console-head .badge")).to_have_text("Running")
    return str(page.url.rsplit("/", 1)[1])


def join(chromium: Any, watch: ConsoleWatch, server: Server, code: str, name: str) -> Any:
    page = new_page(chromium, watch, server, locale="ja-JP")
    page.goto(f"/join?code={code}")
    expect(page.get_by_label("参加コード")).to_have_value(code)
    page.get_by_label("お名前").fill(name)
    page.get_by_role("button", name="参加する").click()
    expect(page).to_have_url(re.compile(r"/team$"))
    expect(page.locator(".conn")).to_have_text("オンライン")
    return page


def test_a_team_works_together_through_a_network_cut(
    chromium: Any, server: Server, console_watch: ConsoleWatch, screenshots: Path
) -> None:
    console = new_page(chromium, console_watch, server)
    exercise_id = sign_in_and_create(console, teams="Red\nBlue")
    red_code = console.locator(".team-codes li").first.locator(".code").inner_text()
    qr = console.get_by_role("img", name="QR code to join Red")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")

    hanako = join(chromium, console_watch, server, red_code, "Hanako")
    taro = join(chromium, console_watch, server, red_code, "Taro")
    expect(console.get_by_text("No inject delivered yet")).to_be_visible()

    # One click delivers the first JNSA incident to every team.
    console.locator("[data-scenario='jnsa-2018-01']").filter(has_text="Push to all teams").click()
    expect(console.locator(".online-cell").first).to_have_text("Hanako, Taro")
    for page in (hanako, taro):
        expect(page.locator(".feed-item")).to_have_count(1)
        expect(page.locator("#inject-title")).to_contain_text("標的型攻撃で機密情報が漏れた")
        expect(page.get_by_test_id("announcer")).to_contain_text("新しいインジェクト")

    # Hanako types; Taro sees the text and who is typing.
    overview = hanako.get_by_label("事故の概要")
    overview.click()
    overview.press_sequentially("外部からの通報で判明", delay=20)
    expect(taro.get_by_label("事故の概要")).to_have_value("外部からの通報で判明")
    expect(taro.locator(".editing").filter(has_text="Hanako")).to_be_visible()

    # Hanako's network drops while she types; the text is kept and sent when it returns.
    hanako.context.set_offline(True)
    expect(hanako.locator(".conn")).to_contain_text("オフライン")
    press = hanako.get_by_label("報道対応")
    press.click()
    press.press_sequentially("広報部長", delay=20)
    hanako.wait_for_timeout(600)
    expect(hanako.locator(".save-state").filter(has_text="未送信")).to_have_count(1)
    stored = hanako.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('tabletop.edit.'))"
    )
    assert len(stored) == 1 and stored[0].endswith("/press")
    expect(taro.get_by_label("報道対応")).to_have_value("")
    hanako.context.set_offline(False)
    expect(hanako.locator(".conn")).to_have_text("オンライン", timeout=20_000)
    expect(taro.get_by_label("報道対応")).to_have_value("広報部長")
    hanako.wait_for_function(
        "() => Object.keys(localStorage).filter(k => k.startsWith('tabletop.edit.')).length === 0"
    )

    team_id = hanako.locator(".room").get_attribute("data-team-id")
    cells = console.request.get(f"/api/teams/{team_id}/responses").json()
    values = {(cell["field"], cell["value"], cell["version"]) for cell in cells}
    assert ("press", "広報部長", 1) in values
    assert any(
        field == "overview" and value == "外部からの通報で判明" for field, value, _ in values
    )

    # A reload shows everything that was saved, nothing twice.
    hanako.reload()
    expect(hanako.get_by_label("事故の概要")).to_have_value("外部からの通報で判明")
    expect(hanako.get_by_label("報道対応")).to_have_value("広報部長")
    hanako.get_by_label("未定").check()
    hanako.get_by_label("所要時間（見込み）").fill("3時間")
    expect(taro.get_by_label("未定")).to_be_checked()
    expect(taro.get_by_label("所要時間（見込み）")).to_have_value("3時間")

    console.goto(f"/exercises/{exercise_id}")
    expect(console.locator(".progress tbody tr").first).to_contain_text("Hanako")
    expect(console.locator(".progress tbody tr").first).to_contain_text("2 of 13 filled")

    # The team submits; the console shows the time it took.
    taro.get_by_role("button", name="回答を提出").click()
    expect(taro.locator(".submitted")).to_contain_text("提出済み")
    expect(hanako.locator(".submitted")).to_contain_text("提出済み")
    expect(console.locator(".progress tbody tr").first.locator(".cell-done")).to_contain_text(
        "Submitted after"
    )

    console.locator("#view-team").select_option(label="Red")
    console.screenshot(path=str(screenshots / "console.png"), full_page=False)
    taro.evaluate("window.scrollTo(0, 0)")
    taro.screenshot(path=str(screenshots / "team-room.png"), full_page=False)
    projector = console.context.new_page()
    console_watch.watch(projector)
    projector.set_viewport_size({"width": 1366, "height": 768})
    projector.goto(f"/projector/{exercise_id}")
    expect(projector.locator("#stage-title")).to_contain_text("targeted attack")
    expect(projector.locator(".tile-status").first).to_contain_text("Submitted after")
    projector.screenshot(path=str(screenshots / "projector.png"))

    assert console_watch.problems == []
