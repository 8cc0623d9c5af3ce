"""The debrief view and the facilitator's evaluation over the API."""

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.debrief_data import FORMULA, evaluate, play
from tests.factories import login


def test_debrief_puts_answers_timings_and_guidance_side_by_side(client: TestClient) -> None:
    played = play(client)
    response = client.get(f"/api/exercises/{played.exercise.id}/debrief", headers=played.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["exercise"]["title"] == "Drill" and body["exercise"]["status"] == "ended"
    assert body["exercise"]["facilitator"] == "alice"
    assert [f["key"] for f in body["fields"]][:2] == ["overview", "affected_customers"]
    assert body["fields"][0]["label"] == "事故の概要"
    assert [(t["name"], t["members"]) for t in body["teams"]] == [
        ("Red", ["Member 0"]),
        ("Blue", ["Member 1"]),
    ]
    first, second = body["injects"]
    red, blue = played.team_id(0), played.team_id(1)
    assert first["team_ids"] == [red, blue] and second["team_ids"] == [red]
    assert first["answers"][red]["overview"]["value"] == FORMULA
    assert first["answers"][red]["overview"]["version"] == 3
    assert first["answers"][blue]["press"]["value"] == "広報部"
    assert set(first["submissions"]) == {red, blue}
    assert first["submissions"][red]["submitted_by"] == "Member 0"
    assert second["submissions"] == {}
    # The JNSA scenario's model answers, in the exercise's language.
    assert set(first["guidance"]) >= {"overview", "press", "legal"}
    assert "JPCERT/CC" in first["guidance"]["overview"]
    assert body["evaluation"]["ratings"] == [] and body["evaluation"]["updated_at"] is None


def test_english_debrief_uses_english_labels_and_guidance(client: TestClient) -> None:
    played = play(client, locale="en")
    body = client.get(f"/api/exercises/{played.exercise.id}/debrief", headers=played.headers).json()
    assert body["fields"][0]["label"] == "Incident overview"
    assert body["injects"][0]["guidance"]["overview"].startswith("State as facts")


def test_facilitator_sees_how_an_answer_evolved(client: TestClient) -> None:
    played = play(client)
    url = f"/api/teams/{played.team_id(0)}/responses/{played.injects[0]['id']}/overview/revisions"
    revisions = client.get(url, headers=played.headers).json()
    assert [r["version"] for r in revisions] == [1, 2, 3]
    assert revisions[1]["value"] == "draft overview" and revisions[2]["value"] == FORMULA


def test_evaluation_is_stored_and_editable_after_the_end(client: TestClient) -> None:
    played = play(client)
    saved = evaluate(client, played)
    assert [r["rating"] for r in saved["ratings"]] == ["met", "not_met"]
    assert saved["strengths"] == ["PR was named at once"]
    assert saved["improvement_plan"][0] == {
        "issue": "No legal contact",
        "action": "Name a legal on-call",
        "owner": "CISO",
        "due_date": "2027-01-31",
        "status": "open",
    }
    assert saved["updated_at"] is not None
    url = f"/api/exercises/{played.exercise.id}/evaluation"
    again = client.get(url, headers=played.headers).json()
    assert again == saved
    # A second write replaces the first: one rating cleared, the plan shortened.
    change = {
        "ratings": [
            {
                "team_id": played.team_id(0),
                "inject_id": played.injects[1]["id"],
                "rating": "partly",
                "comment": "",
            }
        ],
        "strengths": [],
        "areas_for_improvement": ["  Escalation path unclear  "],
        "improvement_plan": [{"issue": "Escalation", "status": "done"}],
    }
    response = client.put(url, json=change, headers=played.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["inject_id"], r["rating"]) for r in body["ratings"]] == [
        (played.injects[1]["id"], "partly")
    ]
    assert body["areas_for_improvement"] == ["Escalation path unclear"]
    assert body["improvement_plan"] == [
        {"issue": "Escalation", "action": "", "owner": "", "due_date": None, "status": "done"}
    ]
    debrief = client.get(
        f"/api/exercises/{played.exercise.id}/debrief", headers=played.headers
    ).json()
    assert debrief["evaluation"] == body


@pytest.mark.parametrize(
    ("change", "code", "fragment"),
    [
        (
            {"ratings": [{"team_id": "nope", "inject_id": "nope", "rating": "met"}]},
            "unknown_rating_target",
            "ratings[0]",
        ),
        (
            {"ratings": [{"team_id": "BLUE", "inject_id": "SECOND", "rating": "met"}]},
            "unknown_rating_target",
            "not delivered",
        ),
        (
            {"ratings": [{"team_id": "RED", "inject_id": "FIRST", "rating": "met"}] * 2},
            "duplicate_rating",
            "ratings[1]",
        ),
        (
            {"ratings": [{"team_id": "RED", "inject_id": "FIRST", "rating": "great"}]},
            "invalid",
            "rating",
        ),
        ({"improvement_plan": [{"issue": "x", "status": "someday"}]}, "invalid", "status"),
        ({"improvement_plan": [{"issue": "  "}]}, "invalid", "issue"),
        ({"improvement_plan": [{"issue": "x", "due_date": "next week"}]}, "invalid", "due_date"),
        ({"strengths": ["x" * 2001]}, "invalid", "strengths"),
    ],
)
def test_bad_evaluations_are_refused_with_a_sentence(
    client: TestClient, change: dict[str, Any], code: str, fragment: str
) -> None:
    # The parameters are shared by the SQLite and PostgreSQL runs: work on a copy.
    change = copy.deepcopy(change)
    played = play(client)
    names = {
        "RED": played.team_id(0),
        "BLUE": played.team_id(1),
        "FIRST": played.injects[0]["id"],
        "SECOND": played.injects[1]["id"],
    }
    for rating in change.get("ratings", []):
        rating["team_id"] = names.get(rating["team_id"], rating["team_id"])
        rating["inject_id"] = names.get(rating["inject_id"], rating["inject_id"])
    url = f"/api/exercises/{played.exercise.id}/evaluation"
    response = client.put(url, json=change, headers=played.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code and fragment in response.json()["detail"]
    assert client.get(url, headers=played.headers).json()["ratings"] == []


def test_only_the_owner_sees_or_edits_the_debrief(client: TestClient) -> None:
    played = play(client, end=False)
    base = f"/api/exercises/{played.exercise.id}"
    bob = login(client, "bob")
    participant = played.participants[0]["headers"]
    for method, path in (("GET", "/debrief"), ("GET", "/evaluation"), ("PUT", "/evaluation")):
        kwargs: dict[str, Any] = {"json": {}} if method == "PUT" else {}
        assert client.request(method, base + path, headers=bob, **kwargs).status_code == 404
        assert client.request(method, base + path, headers=participant, **kwargs).status_code == 403
        assert client.request(method, base + path, **kwargs).status_code == 401
