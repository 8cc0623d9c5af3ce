"""The JSON archive: export → import → export again loses nothing but ids and join codes."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.debrief_data import evaluate, play
from tests.factories import login


def archive_of(client: TestClient, exercise_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"/api/exercises/{exercise_id}/archive.json", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"].startswith("attachment;")
    body: dict[str, Any] = response.json()
    return body


def canonical(archive: dict[str, Any]) -> Any:
    """The archive with ids replaced by stable labels, join codes and seqs dropped."""
    labels: dict[str, str] = {archive["exercise"]["id"]: "exercise"}
    for kind in ("teams", "participants", "injects"):
        for index, row in enumerate(archive[kind]):
            labels[row["id"]] = f"{kind}:{index}"

    def relabel(value: Any) -> Any:
        if isinstance(value, str):
            return labels.get(value, value)
        if isinstance(value, list):
            return [relabel(item) for item in value]
        if isinstance(value, dict):
            return {
                key: relabel(item) for key, item in value.items() if key not in ("join_code", "seq")
            }
        return value

    body = {key: value for key, value in archive.items() if key != "exported_at"}
    for team in body["teams"]:
        assert team["join_code"]
    return relabel(body)


def test_round_trip_keeps_every_value_and_timestamp(client: TestClient) -> None:
    played = play(client)
    evaluate(client, played)
    first = archive_of(client, played.exercise.id, played.headers)
    assert first["format"] == "tabletop-exercise-archive" and first["version"] == 1
    assert len(first["teams"]) == 2 and len(first["participants"]) == 2
    assert len(first["injects"]) == 2 and len(first["cells"]) == 16 + 3 + 1
    assert len(first["revisions"]) == len(first["cells"]) + 2
    assert len(first["submissions"]) == 2 and first["events"]
    assert first["evaluation"]["improvement_plan"][0]["due_date"] == "2027-01-31"
    assert all("token_hash" not in p for p in first["participants"])

    imported = client.post("/api/exercises/import", json=first, headers=played.headers)
    assert imported.status_code == 201, imported.text
    created = imported.json()
    assert created["id"] != played.exercise.id
    assert created["status"] == "ended" and created["title"] == "Drill"
    old_codes = {team["join_code"] for team in first["teams"]}
    assert not old_codes & {team["join_code"] for team in created["teams"]}

    second = archive_of(client, created["id"], played.headers)
    assert canonical(second) == canonical(first)
    # Imported event payloads point at the new rows, not the originals.
    new_inject_ids = {inject["id"] for inject in second["injects"]}
    inject_events = [e for e in second["events"] if e["type"] == "inject"]
    assert {e["payload"]["inject"]["id"] for e in inject_events} == new_inject_ids
    seqs = [event["seq"] for event in second["events"]]
    assert seqs == sorted(seqs)


def test_imported_exercise_is_a_full_exercise_for_its_new_owner(client: TestClient) -> None:
    played = play(client)
    first = archive_of(client, played.exercise.id, played.headers)
    bob = login(client, "bob")
    created = client.post("/api/exercises/import", json=first, headers=bob).json()
    assert client.get(f"/api/exercises/{created['id']}", headers=played.headers).status_code == 404
    detail = client.get(f"/api/exercises/{created['id']}", headers=bob).json()
    assert [t["name"] for t in detail["teams"]] == ["Red", "Blue"]
    team_id = detail["teams"][0]["id"]
    cells = client.get(f"/api/teams/{team_id}/responses", headers=bob).json()
    assert len(cells) == 17
    workbook = client.get(f"/api/exercises/{created['id']}/export.xlsx", headers=bob)
    assert workbook.status_code == 200
    # The archive carries no participant tokens: the old participant's token opens nothing new.
    old_participant = played.participants[0]["headers"]
    assert client.get(f"/api/teams/{team_id}/responses", headers=old_participant).status_code in (
        403,
        404,
    )


def test_archive_of_a_draft_exercise_round_trips(client: TestClient) -> None:
    headers = login(client)
    created = client.post(
        "/api/exercises", json={"title": "Plan", "teams": ["A"], "locale": "en"}, headers=headers
    ).json()
    first = archive_of(client, created["id"], headers)
    copy = client.post("/api/exercises/import", json=first, headers=headers)
    assert copy.status_code == 201, copy.text
    assert canonical(archive_of(client, copy.json()["id"], headers)) == canonical(first)


def test_the_archive_keeps_the_time_zone_and_fills_it_in_for_older_archives(
    client: TestClient,
) -> None:
    headers = login(client)
    created = client.post(
        "/api/exercises",
        json={"title": "NY", "teams": ["A"], "locale": "en", "time_zone": "America/New_York"},
        headers=headers,
    ).json()
    archive = archive_of(client, created["id"], headers)
    assert archive["exercise"]["time_zone"] == "America/New_York"
    copy = client.post("/api/exercises/import", json=archive, headers=headers).json()
    assert copy["time_zone"] == "America/New_York"
    # An archive written before exercises had a zone: the locale's default.
    archive["exercise"].pop("time_zone")
    archive["exercise"]["locale"] = "ja"
    older = client.post("/api/exercises/import", json=archive, headers=headers).json()
    assert older["time_zone"] == "Asia/Tokyo"
    archive["exercise"]["time_zone"] = "Nowhere/Else"
    refused = client.post("/api/exercises/import", json=archive, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_time_zone"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda a: a.update(format="something-else"), "format"),
        (lambda a: a.update(version=2), "version"),
        (lambda a: a["teams"][0].update(colour="red"), "colour"),
        (lambda a: a["cells"][0].update(team_id="nope"), "cells[0]"),
        (lambda a: a["cells"][0].update(field="mood"), "cells[0].field"),
        (lambda a: a["participants"][0].update(team_id="nope"), "participants[0].team_id"),
        (lambda a: a["injects"][0].update(team_ids=["nope"]), "injects[0].team_ids"),
        (lambda a: a["teams"].append(dict(a["teams"][0])), "teams repeats an id"),
        (lambda a: a["exercise"].pop("title"), "title"),
    ],
)
def test_a_broken_archive_gets_422_naming_the_problem(
    client: TestClient, mutate: Any, fragment: str
) -> None:
    played = play(client)
    archive = archive_of(client, played.exercise.id, played.headers)
    before = len(client.get("/api/exercises", headers=played.headers).json())
    mutate(archive)
    response = client.post("/api/exercises/import", json=archive, headers=played.headers)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]
    assert response.json()["code"] in ("invalid", "invalid_archive")
    assert len(client.get("/api/exercises", headers=played.headers).json()) == before


def test_import_refuses_non_json_and_anonymous_callers(client: TestClient) -> None:
    headers = login(client)
    response = client.post(
        "/api/exercises/import",
        content=b"not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid"
    assert client.post("/api/exercises/import", json={}).status_code == 401


def test_only_the_owner_downloads_the_archive(client: TestClient) -> None:
    played = play(client, end=False)
    assert (
        client.get(
            f"/api/exercises/{played.exercise.id}/archive.json", headers=login(client, "bob")
        ).status_code
        == 404
    )
    participant = played.participants[0]["headers"]
    assert (
        client.get(
            f"/api/exercises/{played.exercise.id}/archive.json", headers=participant
        ).status_code
        == 403
    )
