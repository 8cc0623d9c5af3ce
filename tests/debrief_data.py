"""A played exercise reached through the public API, shared by the debrief, export and import tests."""

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from app.responses.fields import FIELDS
from tests.factories import Exercise, join, make_exercise, push

# Participants' text that must survive the workbook untouched (or, for control characters, cleaned).
FORMULA = '=HYPERLINK("http://evil.example","click")'
PLUS = "+81 3 1234 5678"
MINUS = "-1 day: logs rotated"
AT = "@channel please confirm"
EMOJI = "影響は限定的 🔒🙂"
RTL = "مرحبا بالعالم — עברית"
CONTROL = "before\x01\x07\x0b\x1bafter"
LONG = ("長文の回答。" * 834)[:5000]


@dataclass
class Played:
    exercise: Exercise
    injects: list[dict[str, Any]]
    participants: list[dict[str, Any]]
    answers: dict[tuple[int, int, str], str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return self.exercise.headers

    def team_id(self, index: int) -> str:
        return str(self.exercise.team(index)["id"])


def write(
    client: TestClient, headers: dict[str, str], team_id: str, inject_id: str, key: str, value: str
) -> int:
    """Write a cell over whatever is there, returning the new version."""
    base = 0
    for cell in client.get(f"/api/teams/{team_id}/responses", headers=headers).json():
        if cell["inject_id"] == inject_id and cell["field"] == key:
            base = cell["version"]
    response = client.put(
        f"/api/teams/{team_id}/responses/{inject_id}/{key}",
        json={"value": value, "base_version": base},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


def play(
    client: TestClient,
    *,
    teams: tuple[str, ...] = ("Red", "Blue"),
    locale: str = "ja",
    end: bool = True,
) -> Played:
    """Two injects (the second to the first team only), answers with awkward text, submissions."""
    exercise = make_exercise(client, teams=teams, locale=locale)
    participants = [
        join(client, team["join_code"], name=f"Member {i}") for i, team in enumerate(exercise.teams)
    ]
    first = push(client, exercise, scenario_id="jnsa-2018-01")
    second = push(client, exercise, scenario_id="jnsa-2018-03", team_ids=[exercise.team(0)["id"]])
    played = Played(exercise=exercise, injects=[first, second], participants=participants)
    tricky = [FORMULA, PLUS, MINUS, AT, EMOJI, RTL, CONTROL, LONG]
    team0 = participants[0]["headers"]
    for index, f in enumerate(FIELDS):
        value = (
            "yes"
            if f.key == "disclose"
            else tricky[index % len(tricky)]
            if index < len(tricky)
            else f"{f.key} answer"
        )
        write(client, team0, played.team_id(0), first["id"], f.key, value)
        played.answers[(0, 0, f.key)] = value
    # A revision history: the overview was written twice.
    write(client, team0, played.team_id(0), first["id"], "overview", "draft overview")
    final = write(client, team0, played.team_id(0), first["id"], "overview", FORMULA)
    assert final == 3
    played.answers[(0, 0, "overview")] = FORMULA
    for key, value in (("overview", "Blue overview"), ("press", "広報部"), ("legal", "法務部")):
        write(client, participants[1]["headers"], played.team_id(1), first["id"], key, value)
        played.answers[(1, 0, key)] = value
    write(client, team0, played.team_id(0), second["id"], "press", "広報部長")
    played.answers[(0, 1, "press")] = "広報部長"
    for p, team_index in ((participants[0], 0), (participants[1], 1)):
        response = client.post(
            f"/api/teams/{played.team_id(team_index)}/injects/{first['id']}/submit",
            headers=p["headers"],
        )
        assert response.status_code == 200, response.text
    message = client.post(
        f"/api/exercises/{exercise.id}/messages",
        json={"text": "5 minutes left"},
        headers=exercise.headers,
    )
    assert message.status_code == 201, message.text
    if end:
        assert (
            client.post(f"/api/exercises/{exercise.id}/end", headers=exercise.headers).status_code
            == 200
        )
    return played


def evaluate(client: TestClient, played: Played) -> dict[str, Any]:
    """Store an evaluation with ratings, findings and an improvement plan."""
    body = {
        "ratings": [
            {
                "team_id": played.team_id(0),
                "inject_id": played.injects[0]["id"],
                "rating": "met",
                "comment": "Clear and quick",
            },
            {
                "team_id": played.team_id(1),
                "inject_id": played.injects[0]["id"],
                "rating": "not_met",
                "comment": FORMULA,
            },
        ],
        "strengths": ["PR was named at once"],
        "areas_for_improvement": ["Legal review started late", "=SUM(A1:A2)"],
        "improvement_plan": [
            {
                "issue": "No legal contact",
                "action": "Name a legal on-call",
                "owner": "CISO",
                "due_date": "2027-01-31",
                "status": "open",
            },
            {
                "issue": "Slow PR",
                "action": "Template statements",
                "owner": "広報",
                "due_date": None,
                "status": "in_progress",
            },
        ],
    }
    response = client.put(
        f"/api/exercises/{played.exercise.id}/evaluation", json=body, headers=played.headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
