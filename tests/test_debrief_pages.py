"""The debrief and scenario-import pages: rendered for the owner only, and strict-CSP clean."""

from fastapi.testclient import TestClient

from tests.debrief_data import play
from tests.factories import login
from tests.pages_html import page_facts


def assert_csp_clean(html: str) -> None:
    facts = page_facts(html)
    assert facts.inline_script_text == [] and facts.event_attributes == []
    assert facts.style_attributes == [] and facts.style_elements == 0
    assert all(script.get("src", "").startswith("/static/") for script in facts.scripts)
    labelled = set(facts.label_targets)
    for control in facts.controls:
        assert (
            control.get("id") in labelled or control.get("aria-label") or control.get(":aria-label")
        ), control


def test_debrief_page_renders_for_the_owner(client: TestClient) -> None:
    played = play(client)
    response = client.get(
        f"/exercises/{played.exercise.id}/debrief?lang=en", headers=played.headers
    )
    assert response.status_code == 200
    html = response.text
    assert f'data-exercise-id="{played.exercise.id}"' in html
    assert "/static/js/debrief.js" in html and "/static/css/debrief.css" in html
    assert f"/api/exercises/{played.exercise.id}/export.xlsx" in html
    assert "Facilitator&#39;s evaluation" in html or "Facilitator's evaluation" in html
    assert_csp_clean(html)
    japanese = client.get(
        f"/exercises/{played.exercise.id}/debrief?lang=ja", headers=played.headers
    )
    assert "ファシリテーターによる評価" in japanese.text


def test_debrief_page_is_for_the_owner_only(client: TestClient) -> None:
    played = play(client)
    anonymous = client.get(f"/exercises/{played.exercise.id}/debrief", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    other = client.get(f"/exercises/{played.exercise.id}/debrief", headers=login(client, "bob"))
    assert other.status_code == 404


def test_import_page_renders(client: TestClient) -> None:
    response = client.get("/scenarios/import?lang=en", headers=login(client))
    assert response.status_code == 200
    assert 'id="import-form"' in response.text and 'type="file"' in response.text
    assert_csp_clean(response.text)
    assert client.get("/scenarios/import", follow_redirects=False).status_code == 303


def test_static_files_of_the_pages_are_served(client: TestClient) -> None:
    for path in ("/static/js/debrief.js", "/static/css/debrief.css"):
        assert client.get(path).status_code == 200, path
