"""The console's participant removal and the facilitator's own injects, in real browsers."""

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ConsoleWatch, Server
from tests.browser.test_live_exercise import join, new_page, sign_in_and_create

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def join_watching_sockets(
    chromium: Any, watch: ConsoleWatch, server: Server, code: str, name: str
) -> tuple[Any, list[Any]]:
    """A participant joins; every live socket their page opens is recorded."""
    page = new_page(chromium, watch, server, locale="ja-JP")
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws) if "/ws/participant" in ws.url else None)
    page.goto(f"/join?code={code}")
    page.get_by_label("お名前").fill(name)
    page.get_by_role("button", name="参加する").click()
    expect(page).to_have_url(re.compile(r"/team$"))
    expect(page.locator(".conn")).to_have_text("オンライン")
    return page, sockets


def watch_injects(console: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The injects the console page sends over its live socket, and its `POST .../injects`."""
    sent: list[dict[str, Any]] = []
    posted: list[str] = []

    def frames(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("type") == "inject":
                sent.append(message)

        ws.on("framesent", on_frame)

    console.on("websocket", frames)
    console.on(
        "request",
        lambda request: (
            posted.append(request.url)
            if request.method == "POST" and request.url.endswith("/injects")
            else None
        ),
    )
    return sent, posted


def team_code(console: Any, index: int) -> str:
    return str(console.locator(".team-codes > li").nth(index).locator(".code").inner_text())


def test_the_facilitator_removes_a_participant_who_is_told_so(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    console = new_page(chromium, console_watch, server)
    exercise_id = sign_in_and_create(console, teams="Red\nBlue")
    red = console.locator(".team-codes > li").first
    hanako, sockets = join_watching_sockets(
        chromium, console_watch, server, team_code(console, 0), "Hanako"
    )
    taro = join(chromium, console_watch, server, team_code(console, 0), "Taro")
    team_id = hanako.locator(".room").get_attribute("data-team-id")
    people = red.locator(".people-list li")
    expect(people.filter(has_text="Hanako")).to_contain_text("Online")
    expect(people.filter(has_text="Taro")).to_be_visible()

    # The first click only asks; "No" keeps her and gives the focus back.
    console.get_by_role("button", name="Remove Hanako").click()
    question = red.get_by_role("group", name="Remove Hanako?")
    expect(question).to_be_visible()
    expect(question.get_by_role("button", name="No")).to_be_focused()
    question.get_by_role("button", name="No").click()
    expect(question).to_be_hidden()
    expect(console.get_by_role("button", name="Remove Hanako")).to_be_focused()
    expect(hanako.locator(".conn")).to_have_text("オンライン")

    console.get_by_role("button", name="Remove Hanako").click()
    question.get_by_role("button", name="Yes, remove").click()
    expect(people.filter(has_text="Hanako")).to_have_count(0)
    expect(people.filter(has_text="Taro")).to_be_visible()
    expect(console.locator(".console-head .flash")).to_have_text("Hanako was removed.")

    # Her page says what happened, in her language, and stops offering the form.
    notice = hanako.get_by_role("alert").filter(has_text="この演習から削除されました")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("ファシリテーターがあなたをチームから削除しました")
    expect(notice.get_by_role("link", name="もう一度参加する")).to_have_attribute("href", "/join")
    expect(hanako.locator(".conn")).to_have_text("演習から削除されました")
    expect(hanako.locator(".room-body")).to_be_hidden()

    # The server closed her socket (4403) and the page does not try again.
    for _ in range(50):
        if sockets[0].is_closed():
            break
        hanako.wait_for_timeout(100)
    assert sockets[0].is_closed()
    hanako.wait_for_timeout(2000)
    assert len(sockets) == 1
    assert hanako.request.get(f"/api/teams/{team_id}/injects").status == 401
    expect(taro.locator(".conn")).to_have_text("オンライン")

    # The removal is stored: a reloaded console does not list her either.
    console.goto(f"/exercises/{exercise_id}")
    expect(console.locator(".conn")).to_have_text("Online")
    expect(people.filter(has_text="Taro")).to_be_visible()
    expect(people.filter(has_text="Hanako")).to_have_count(0)

    # Taro reads the room in English; his notice is in English.
    taro.goto("/team?lang=en")
    expect(taro.locator(".conn")).to_have_text("Online")
    console.get_by_role("button", name="Remove Taro").click()
    console.get_by_role("button", name="Yes, remove").click()
    expect(taro.get_by_role("alert")).to_contain_text("You were removed from this exercise")
    expect(taro.get_by_role("alert")).to_contain_text("The facilitator removed you from the team.")
    expect(taro.locator(".conn")).to_have_text("Removed from the exercise")
    expect(red.get_by_text("Nobody has joined yet.")).to_be_visible()

    assert console_watch.problems == []


def test_a_custom_inject_reaches_only_the_chosen_team(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    console = new_page(chromium, console_watch, server)
    sent, posted = watch_injects(console)
    sign_in_and_create(console, teams="Red\nBlue")
    hanako = join(chromium, console_watch, server, team_code(console, 0), "Hanako")
    jiro = join(chromium, console_watch, server, team_code(console, 1), "Jiro")
    blue_id = jiro.locator(".room").get_attribute("data-team-id")

    form = console.get_by_test_id("custom-inject")
    form.get_by_label("Title").fill("Ransom note <b>on</b> the print server")
    form.get_by_label("Situation").fill("Every printer prints a ransom note.\nCall the CISO?")
    form.get_by_label("Source").fill("Printer vendor")
    form.get_by_label("Received by").fill("IT desk")
    form.get_by_label("Time limit in minutes (optional)").fill("15")
    form.get_by_label("Red").check()
    expect(form.get_by_label("Chosen teams")).to_be_checked()
    form.get_by_role("button", name="Deliver this inject").click()
    expect(form.get_by_role("status")).to_have_text("Inject delivered.")
    expect(form.get_by_label("Title")).to_have_value("")
    expect(form.get_by_label("Situation")).to_have_value("")

    # Red gets it at once, as typed (markup shown as text), with its source, receiver and limit.
    expect(hanako.locator(".feed-item")).to_have_count(1)
    expect(hanako.locator("#inject-title")).to_have_text(
        "1. Ransom note <b>on</b> the print server"
    )
    expect(hanako.locator(".inject-body")).to_have_text(
        "Every printer prints a ransom note.\nCall the CISO?"
    )
    expect(hanako.locator(".inject .meta")).to_contain_text("Printer vendor")
    expect(hanako.locator(".inject .meta")).to_contain_text("IT desk")
    expect(hanako.locator("#inject-title + .timer")).to_contain_text("残り")
    expect(console.locator(".progress tbody tr").nth(1).locator("td").nth(1)).to_have_text("—")
    # It went over the console's live socket, not as an HTTP request.
    assert [m["title"] for m in sent] == ["Ransom note <b>on</b> the print server"]
    assert posted == []

    # A later message to every team reaches Blue; the inject before it did not.
    console.get_by_role("textbox", name="Message", exact=True).fill("Stay alert")
    console.get_by_role("button", name="Send message").click()
    expect(jiro.locator(".messages")).to_contain_text("Stay alert")
    expect(jiro.locator(".feed-item")).to_have_count(0)
    assert console.request.get(f"/api/teams/{blue_id}/injects").json() == []

    assert console_watch.problems == []


def test_a_refused_custom_inject_shows_why_and_keeps_the_text(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    console = new_page(chromium, console_watch, server)
    sign_in_and_create(console, teams="Red\nBlue")
    hanako = join(chromium, console_watch, server, team_code(console, 0), "Hanako")

    form = console.get_by_test_id("custom-inject")
    form.get_by_label("Title").fill("   ")
    form.get_by_label("Situation").fill("The web shop shows a defaced page.")
    form.get_by_label("Source").fill("A customer")
    form.get_by_role("button", name="Deliver this inject").click()
    error = form.get_by_test_id("custom-inject-error")
    expect(error).to_contain_text("your own inject needs a title")
    expect(form.get_by_label("Situation")).to_have_value("The web shop shows a defaced page.")
    expect(form.get_by_label("Source")).to_have_value("A customer")

    # A bad time limit is caught before sending, also without losing anything.
    form.get_by_label("Title").fill("Defaced web shop")
    form.get_by_label("Time limit in minutes (optional)").fill("0")
    form.get_by_role("button", name="Deliver this inject").click()
    expect(error).to_have_text(
        "Give the time limit as whole minutes from 1 to 600, or leave it empty."
    )
    expect(form.get_by_label("Title")).to_have_value("Defaced web shop")

    form.get_by_label("Time limit in minutes (optional)").fill("")
    form.get_by_role("button", name="Deliver this inject").click()
    expect(error).to_have_text("")
    expect(hanako.locator("#inject-title")).to_have_text("1. Defaced web shop")

    # The refusal came back over the live socket: no failed request, nothing for Chromium to log.
    assert console_watch.problems == []


def test_without_its_live_socket_the_console_delivers_over_http(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    console = new_page(chromium, console_watch, server)
    sign_in_and_create(console, teams="Red")
    hanako = join(chromium, console_watch, server, team_code(console, 0), "Hanako")
    # The console's socket now reaches a stand-in that never says hello: it stays "connecting".
    console.route_web_socket(re.compile(r"/facilitator$"), lambda ws: None)
    sent, posted = watch_injects(console)
    console.reload()
    expect(console.locator(".conn")).to_have_text("Connecting…")

    form = console.get_by_test_id("custom-inject")
    form.get_by_label("Title").fill("Defaced web shop")
    form.get_by_label("Situation").fill("The web shop shows a defaced page.")
    form.get_by_role("button", name="Deliver this inject").click()
    expect(form.get_by_role("status")).to_have_text("Inject delivered.")
    expect(hanako.locator("#inject-title")).to_have_text("1. Defaced web shop")
    assert sent == []
    assert len(posted) == 1
    assert console_watch.problems == []
