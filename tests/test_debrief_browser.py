"""The debrief page in Debian's Chromium under the strict CSP: answers, timing, history, evaluation."""

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import conftest as browser
from tests.browser.conftest import ADMIN_PASSWORD, ConsoleWatch, Server

# The browser suite's fixtures, shared by name with this module.
chromium = browser.chromium
server = browser.server
console_watch = browser.console_watch

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def played_over_http(base_url: str) -> tuple[str, dict[str, str]]:
    """An ended exercise with two teams' answers and submissions, reached through the API."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        token = http.post(
            "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["token"]
        admin = {"Authorization": f"Bearer {token}"}
        exercise = http.post(
            "/api/exercises",
            json={"title": "Debrief drill", "teams": ["Red", "Blue"], "locale": "en"},
            headers=admin,
        ).json()
        http.post(f"/api/exercises/{exercise['id']}/start", headers=admin)
        inject = http.post(
            f"/api/exercises/{exercise['id']}/injects",
            json={"scenario_id": "jnsa-2018-02"},
            headers=admin,
        ).json()
        names = {}
        for team, text in zip(
            exercise["teams"], ("=Red drafted this", "Blue statement"), strict=True
        ):
            member = http.post(
                "/api/join", json={"code": team["join_code"], "name": f"{team['name']} lead"}
            ).json()
            headers = {"Authorization": f"Bearer {member['token']}"}
            url = f"/api/teams/{team['id']}/responses/{inject['id']}/overview"
            first = http.put(url, json={"value": "first draft", "base_version": 0}, headers=headers)
            assert first.status_code == 200, first.text
            assert (
                http.put(url, json={"value": text, "base_version": 1}, headers=headers).status_code
                == 200
            )
            assert (
                http.post(
                    f"/api/teams/{team['id']}/injects/{inject['id']}/submit", headers=headers
                ).status_code
                == 200
            )
            names[team["name"]] = team["id"]
        http.post(f"/api/exercises/{exercise['id']}/end", headers=admin)
    return exercise["id"], admin


def test_facilitator_reviews_and_evaluates_in_the_browser(
    chromium: Any, server: Server, console_watch: ConsoleWatch
) -> None:
    exercise_id, admin = played_over_http(server.base_url)
    context = chromium.new_context(
        base_url=server.base_url, viewport={"width": 1366, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = console_watch.watch(context.new_page())
    page.goto("/login?lang=en")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/exercises$"))

    page.goto(f"/exercises/{exercise_id}/debrief?lang=en")
    table = page.locator(".side-by-side").first
    expect(table.locator("thead th")).to_contain_text(
        ["Field", "Red", "Blue", "Model-answer guidance"]
    )
    overview = table.locator("tbody tr").first
    expect(overview.locator("td").nth(0)).to_contain_text("=Red drafted this")
    expect(overview.locator("td").nth(1)).to_contain_text("Blue statement")
    expect(overview.locator("td.guidance")).not_to_be_empty()
    # Each team's timing is drawn as a bar with a width set through the CSSOM (allowed by the CSP).
    bars = page.locator(".timing-bars .bar")
    expect(bars).to_have_count(2)
    assert all(bar.evaluate("el => el.getBoundingClientRect().width") > 0 for bar in bars.all())

    overview.locator("td").nth(0).get_by_role("button").click()
    history = page.locator(".history")
    expect(history).to_be_visible()
    expect(history.locator(".revisions li")).to_have_count(2)
    expect(history.locator(".revisions li").first).to_contain_text("first draft")

    page.get_by_label(re.compile(r"^Rating: Red")).select_option("met")
    page.get_by_label(re.compile(r"^Comment: Blue")).fill("Late on legal")
    page.get_by_label("Strengths (one per line)").fill("Quick PR decision")
    page.get_by_label("Areas for improvement (one per line)").fill(
        "Legal not involved\nNo customer FAQ"
    )
    page.get_by_role("button", name="Add a row").click()
    page.get_by_label("Issue", exact=True).fill("No legal on-call")
    page.get_by_label("Owner").fill("CISO")
    page.get_by_label("Due date").fill("2027-03-31")
    page.get_by_role("button", name="Save the evaluation").click()
    expect(page.locator("#evaluation-form .flash")).to_have_text("Saved")

    stored = httpx.get(
        f"{server.base_url}/api/exercises/{exercise_id}/evaluation", headers=admin
    ).json()
    assert [(r["rating"], r["comment"]) for r in stored["ratings"]] == [
        ("met", ""),
        (None, "Late on legal"),
    ]
    assert stored["strengths"] == ["Quick PR decision"]
    assert stored["areas_for_improvement"] == ["Legal not involved", "No customer FAQ"]
    assert stored["improvement_plan"] == [
        {
            "issue": "No legal on-call",
            "action": "",
            "owner": "CISO",
            "due_date": "2027-03-31",
            "status": "open",
        }
    ]
    page.reload()
    expect(page.get_by_label("Strengths (one per line)")).to_have_value("Quick PR decision")
    expect(page.get_by_label(re.compile(r"^Rating: Red"))).to_have_value("met")
    assert console_watch.problems == []
    context.close()
