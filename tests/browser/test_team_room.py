"""The team room under stress: conflicting edits, facilitator messages, a server restart, keyboard and phone."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ConsoleWatch, Server
from tests.browser.test_live_exercise import join, new_page, sign_in_and_create

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def running_team(chromium: Any, watch: ConsoleWatch, server: Server) -> tuple[Any, Any, Any]:
    """A started exercise with one delivered inject and two members of team Red in the room."""
    console = new_page(chromium, watch, server)
    sign_in_and_create(console, teams="Red\nBlue")
    code = console.locator(".team-codes li").first.locator(".code").inner_text()
    first = join(chromium, watch, server, code, "Hanako")
    second = join(chromium, watch, server, code, "Taro")
    console.locator("[data-scenario='jnsa-2018-05']").filter(has_text="Push to all teams").click()
    for page in (first, second):
        expect(page.locator("#inject-title")).to_contain_text("クレジットカード")
    return console, first, second


def wait_until_saved(page: Any) -> None:
    """Every edit of the page is acknowledged: none is left in its outbox."""
    page.wait_for_function(
        "() => Object.keys(localStorage).filter(k => k.startsWith('tabletop.edit.')).length === 0"
    )


def test_simultaneous_edits_show_both_versions_and_let_the_writer_choose(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    _, hanako, taro = running_team(chromium, console_watch, server)

    # Taro writes while cut off; Hanako writes the same field meanwhile.
    taro.context.set_offline(True)
    expect(taro.locator(".conn")).to_contain_text("オフライン")
    taro.get_by_label("法的な検討").fill("顧問弁護士に相談")
    hanako.get_by_label("法的な検討").fill("法務部門")
    wait_until_saved(hanako)
    taro.context.set_offline(False)

    conflict = taro.locator(".conflict:visible")
    expect(conflict).to_be_visible(timeout=20_000)
    expect(conflict).to_contain_text("他の人が同時にこの回答を変更しました")
    expect(conflict).to_contain_text("相手の内容（Hanako）")
    expect(conflict).to_contain_text("法務部門")
    expect(conflict).to_contain_text("顧問弁護士に相談")
    # Nothing was overwritten silently: Hanako still has her text.
    expect(hanako.get_by_label("法的な検討")).to_have_value("法務部門")

    conflict.get_by_role("button", name="自分の内容を残す").click()
    expect(conflict).to_have_count(0)
    expect(hanako.get_by_label("法的な検討")).to_have_value("顧問弁護士に相談")

    # The other way round: Hanako, offline, loses the race and takes Taro's version.
    hanako.context.set_offline(True)
    expect(hanako.locator(".conn")).to_contain_text("オフライン")
    hanako.get_by_label("その他").fill("情報システム部門")
    taro.get_by_label("その他").fill("CSIRT")
    wait_until_saved(taro)
    hanako.context.set_offline(False)
    theirs = hanako.locator(".conflict:visible")
    expect(theirs).to_be_visible(timeout=20_000)
    expect(theirs).to_contain_text("CSIRT")
    theirs.get_by_role("button", name="相手の内容を採用").click()
    expect(hanako.get_by_label("その他")).to_have_value("CSIRT")
    expect(theirs).to_have_count(0)
    assert hanako.evaluate("Object.keys(localStorage).length") == 0
    assert console_watch.problems == []


def test_messages_pause_and_a_server_restart(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    console, hanako, taro = running_team(chromium, console_watch, server)

    console.get_by_label("Message", exact=True).fill("あと5分です")
    console.get_by_label("Send to").select_option(label="Red")
    console.get_by_role("button", name="Send message").click()
    for page in (hanako, taro):
        expect(page.locator(".messages")).to_contain_text("あと5分です")
        expect(page.get_by_test_id("announcer")).to_contain_text("あと5分です")

    # While paused, answers are refused and kept; after resuming they are sent.
    console.get_by_role("button", name="Pause").click()
    expect(hanako.locator(".room-head .badge")).to_have_text("一時停止中")
    hanako.get_by_label("再発防止策").fill("多要素認証の導入")
    expect(hanako.locator(".save-state").filter(has_text="再開後に送信")).to_have_count(1)
    console.get_by_role("button", name="Resume").click()
    expect(taro.get_by_label("再発防止策")).to_have_value("多要素認証の導入")

    # The server restarts while Taro types: nothing is lost, nothing doubled.
    server.stop()
    expect(taro.locator(".conn")).not_to_have_text("オンライン")
    taro.get_by_label("顧客対応").fill("ユーザサポート")
    server.start()
    expect(taro.locator(".conn")).to_have_text("オンライン", timeout=30_000)
    expect(hanako.get_by_label("顧客対応")).to_have_value("ユーザサポート", timeout=20_000)
    expect(hanako.locator(".messages li")).to_have_count(1)
    taro.reload()
    expect(taro.get_by_label("顧客対応")).to_have_value("ユーザサポート")
    expect(taro.get_by_label("再発防止策")).to_have_value("多要素認証の導入")
    expect(taro.locator(".messages li")).to_have_count(1)
    assert console_watch.problems == []


def test_keyboard_only_and_a_phone_screen(
    chromium: Any, server: Server, console_watch: ConsoleWatch, screenshots: Path
) -> None:
    console, hanako, _ = running_team(chromium, console_watch, server)
    code = console.locator(".team-codes li").first.locator(".code").inner_text()

    phone = new_page(chromium, console_watch, server, locale="ja-JP")
    phone.set_viewport_size({"width": 390, "height": 844})
    # The phone's clock is two hours fast: timers still count from the server's clock.
    phone.clock.install(time=datetime.now(UTC) + timedelta(hours=2))
    phone.goto(f"/join?code={code}")
    # Keyboard only: Tab to the name field, type, Enter submits the form.
    for _ in range(20):
        if phone.evaluate("document.activeElement.id") == "join-name":
            break
        phone.keyboard.press("Tab")
    phone.keyboard.type("Jiro")
    phone.keyboard.press("Enter")
    expect(phone).to_have_url(re.compile(r"/team$"))
    expect(phone.locator(".conn")).to_have_text("オンライン")
    for _ in range(60):
        if phone.evaluate("document.activeElement.id") == "f-overview":
            break
        phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "f-overview"
    expect(phone.locator(".feed-timer")).to_have_text(re.compile(r"^経過 [0-4]:\d\d$"))
    phone.keyboard.type("カード情報の不正利用")
    expect(hanako.get_by_label("事故の概要")).to_have_value("カード情報の不正利用")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot(path=str(screenshots / "team-room-phone.png"))
    assert console_watch.problems == []


def test_chosen_teams_follow_ups_and_the_live_answer_view(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    console, hanako, _ = running_team(chromium, console_watch, server)

    # Only Blue gets incident 2; a later message to everyone proves nothing else reached Red.
    library = console.get_by_role("region", name="Scenario library")
    library.get_by_label("Blue", exact=True).check()
    console.locator("[data-scenario='jnsa-2018-02']").filter(
        has_text="Push to chosen teams"
    ).click()
    expect(console.locator(".progress thead th")).to_have_count(4)
    expect(console.locator(".progress tbody tr").first.locator("td").nth(2)).to_have_text("—")
    library.get_by_label("Blue", exact=True).uncheck()
    console.get_by_label("Message", exact=True).fill("続報に注意")
    console.get_by_role("button", name="Send message").click()
    expect(hanako.locator(".messages")).to_contain_text("続報に注意")
    expect(hanako.locator(".feed-item")).to_have_count(1)

    # A follow-up of incident 5, pushed by hand, goes to the teams that had incident 5.
    follow_up = console.locator("[data-scenario='jnsa-2018-05'][data-followup]").first
    follow_up.click()
    expect(hanako.locator(".feed-item")).to_have_count(2)
    expect(hanako.locator(".feed-item.unseen")).to_have_count(1)
    expect(hanako.get_by_test_id("announcer")).to_contain_text("新しいインジェクト")

    # The facilitator reads Red's answer live as it is typed.
    hanako.get_by_label("事故の原因・要因").fill("決済ページの改ざん")
    console.get_by_label("Team", exact=True).select_option(label="Red")
    console.get_by_label("Inject", exact=True).select_option(index=0)
    expect(console.locator(".matrix-view")).to_contain_text("決済ページの改ざん")

    # Ending takes a second click; the teams see it at once and can no longer submit.
    console.get_by_role("button", name="End", exact=True).click()
    console.get_by_role("button", name="Click again to end the exercise").click()
    expect(console.locator(".console-head .badge")).to_have_text("Ended")
    expect(hanako.locator(".room-head .badge")).to_have_text("終了")
    expect(hanako.get_by_role("button", name="回答を提出")).to_be_disabled()
    assert console_watch.problems == []


def test_a_team_past_its_time_limit_shows_as_overdue(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    console = new_page(chromium, console_watch, server)
    console.clock.install()
    sign_in_and_create(console, teams="Red")
    library = console.get_by_role("region", name="Scenario library")
    library.get_by_label("Time limit in minutes (optional)").fill("1")
    console.locator("[data-scenario='jnsa-2018-03']").filter(has_text="Push to all teams").click()
    red = console.locator(".progress tbody tr").first.locator("td").nth(1)
    expect(red).to_have_class(re.compile("cell-open"))
    console.clock.fast_forward("02:00")
    expect(red).to_have_class(re.compile("cell-overdue"))
    expect(red).to_contain_text("Overdue 2:0")
    assert console_watch.problems == []
