"""The server-rendered pages: they render, carry the CSP, have no inline script and label every control."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import join, login, make_exercise
from tests.pages_html import page_facts

HTML = {"Accept": "text/html"}


def facilitator_session(client: TestClient) -> Any:
    """An exercise owned by alice, with alice's session cookie left in the client."""
    exercise = make_exercise(client)
    response = client.post(
        "/api/auth/login", json={"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 200
    return exercise


def participant_session(client: TestClient, code: str) -> None:
    client.cookies.clear()
    response = client.post("/api/join", json={"code": code, "name": "Hanako"})
    assert response.status_code == 201


def facilitator_pages(exercise_id: str) -> list[str]:
    return [
        "/exercises",
        "/exercises/new",
        f"/exercises/{exercise_id}",
        f"/projector/{exercise_id}",
    ]


def assert_page_is_clean(html: str, path: str) -> None:
    facts = page_facts(html)
    assert facts.scripts, f"{path} loads no script"
    for script in facts.scripts:
        assert script.get("src", "").startswith("/static/"), f"{path}: script without a local src"
    assert not facts.inline_script_text, f"{path}: inline script {facts.inline_script_text}"
    assert not facts.event_attributes, f"{path}: inline handlers {facts.event_attributes}"
    assert not facts.style_attributes, f"{path}: inline styles on {facts.style_attributes}"
    assert facts.style_elements == 0, f"{path}: a <style> element"
    duplicated = {i for i in facts.ids if facts.ids.count(i) > 1}
    assert not duplicated, f"{path}: duplicate ids {duplicated}"
    for control in facts.controls:
        assert control.get("id"), f"{path}: a {control['tag']} without an id"
        assert control["id"] in facts.label_targets, f"{path}: no <label for={control['id']}>"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_facilitator_pages_render_clean_under_the_csp(client: TestClient, lang: str) -> None:
    exercise = facilitator_session(client)
    for path in facilitator_pages(exercise.id):
        response = client.get(path, params={"lang": lang}, headers=HTML)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert f'<html lang="{lang}">' in response.text
        assert_page_is_clean(response.text, path)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_public_and_participant_pages_render_clean(client: TestClient, lang: str) -> None:
    exercise = make_exercise(client)
    for path in ("/login", "/join?code=ABCD2345"):
        response = client.get(path, params={"lang": lang}, headers=HTML)
        assert response.status_code == 200, path
        assert "content-security-policy" in response.headers
        assert_page_is_clean(response.text, path)
    participant_session(client, exercise.team(0)["join_code"])
    response = client.get("/team", params={"lang": lang}, headers=HTML)
    assert response.status_code == 200
    assert_page_is_clean(response.text, "/team")


def test_team_room_labels_the_matrix_fields_in_the_pages_language(client: TestClient) -> None:
    exercise = make_exercise(client, locale="ja")
    participant_session(client, exercise.team(0)["join_code"])
    ja = client.get("/team", headers=HTML).text
    for label in (
        "事故の概要",
        "影響を受ける顧客数と特徴",
        "責任者（CEO, CIO, CTO, CSO, CISO等）",
        "報道対応",
    ):
        assert label in ja
    assert "経営会議" in ja and "担当営業" in ja  # the stakeholder suggestions
    en = client.get("/team?lang=en", headers=HTML).text
    for label in ("Incident overview", "Press / media response", "Legal review"):
        assert label in en
    facts = page_facts(en)
    named = {c.get("name") for c in facts.controls}
    assert {"overview", "accountable", "disclose", "estimated_time", "notes"} <= named


def test_join_page_prefills_the_code_from_the_qr_link(client: TestClient) -> None:
    response = client.get("/join?code=HJK23456", headers=HTML)
    assert 'value="HJK23456"' in response.text


def test_facilitator_pages_send_a_stranger_to_the_sign_in_page(client: TestClient) -> None:
    exercise = make_exercise(client)
    client.cookies.clear()
    for path in facilitator_pages(exercise.id):
        response = client.get(path, headers=HTML, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"


def test_team_room_without_a_participant_goes_to_join(client: TestClient) -> None:
    response = client.get("/team", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/join"


def test_start_page_routes_by_who_is_asking(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/join"
    facilitator_session(client)
    assert client.get("/", follow_redirects=False).headers["location"] == "/exercises"


def test_login_page_refuses_to_redirect_off_site(client: TestClient) -> None:
    html = client.get("/login?next=//evil.example/x", headers=HTML).text
    assert 'data-next="/exercises"' in html
    html = client.get("/login?next=/exercises/abc", headers=HTML).text
    assert 'data-next="/exercises/abc"' in html


def test_another_facilitators_console_is_an_html_404(client: TestClient) -> None:
    exercise = make_exercise(client)
    response = client.post(
        "/api/auth/login", json={"username": "bob", "password": "correct horse battery"}
    )
    assert response.status_code == 200
    page = client.get(f"/exercises/{exercise.id}", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in page.headers
    api = client.get(f"/api/exercises/{exercise.id}", headers=HTML)
    assert api.status_code == 404
    assert api.json()["code"] == "exercise_not_found"


def test_qr_code_is_an_svg_of_the_join_link(client: TestClient) -> None:
    exercise = facilitator_session(client)
    team = exercise.team(0)
    response = client.get(f"/exercises/{exercise.id}/teams/{team['id']}/qr.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert 'xmlns="http://www.w3.org/2000/svg"' in response.text
    console = client.get(f"/exercises/{exercise.id}", headers=HTML).text
    assert f"http://testserver/join?code={team['join_code']}" in console
    missing = client.get(f"/exercises/{exercise.id}/teams/nope/qr.svg", headers=HTML)
    assert missing.status_code == 404


def test_console_lists_the_chosen_scenarios_only(client: TestClient) -> None:
    headers = login(client)
    response = client.post(
        "/api/exercises",
        json={"title": "Two", "teams": ["A"], "locale": "en", "scenario_ids": ["jnsa-2018-03"]},
        headers=headers,
    )
    exercise_id = response.json()["id"]
    client.post("/api/auth/login", json={"username": "alice", "password": "correct horse battery"})
    html = client.get(f"/exercises/{exercise_id}", headers=HTML).text
    assert 'data-scenario="jnsa-2018-03"' in html
    assert 'data-scenario="jnsa-2018-01"' not in html


def test_static_assets_are_served(client: TestClient) -> None:
    for path in (
        "/static/js/common.js",
        "/static/js/live.js",
        "/static/js/team.js",
        "/static/js/console.js",
        "/static/js/projector.js",
        "/static/css/app.css",
        "/static/vendor/alpinejs-csp-3.17.4.min.js",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "content-security-policy" in response.headers


def test_participant_of_an_ended_exercise_still_sees_the_room(client: TestClient) -> None:
    exercise = make_exercise(client)
    participant = join(client, exercise.team(0)["join_code"])
    client.post(f"/api/exercises/{exercise.id}/end", headers=exercise.headers)
    client.cookies.set("tabletop_participant", participant["token"])
    response = client.get("/team", headers=HTML)
    assert response.status_code == 200
    assert 'data-status="ended"' in response.text
