"""Exercises, the state machine, teams, injects and messages over the public API."""

import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from app.auth.service import JOIN_CODE_ALPHABET
from tests.factories import join, login, make_exercise, push


def test_create_exercise_contract(client: TestClient) -> None:
    headers = login(client)
    response = client.post(
        "/api/exercises",
        json={
            "title": "Q3 drill",
            "teams": ["Team A", "Team B"],
            "locale": "en",
            "scenario_ids": ["jnsa-2018-01", "jnsa-2018-05"],
        },
        headers=headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "Q3 drill"
    assert body["status"] == "draft"
    assert body["locale"] == "en"
    assert body["scenario_ids"] == ["jnsa-2018-01", "jnsa-2018-05"]
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    assert [t["name"] for t in body["teams"]] == ["Team A", "Team B"]
    codes = [t["join_code"] for t in body["teams"]]
    assert len(set(codes)) == 2
    for code in codes:
        assert len(code) >= 6
        assert set(code) <= set(JOIN_CODE_ALPHABET)
        assert not re.search("[01ILO]", code)


def test_create_exercise_validation(client: TestClient) -> None:
    headers = login(client)
    cases = [
        ({"teams": ["A"]}, "title"),
        ({"title": "", "teams": ["A"]}, "title"),
        ({"title": "x", "teams": ["A"], "locale": "fr"}, "locale"),
        ({"title": "x", "teams": ["A", "a"]}, "unique"),
        ({"title": "x", "teams": ["y" * 81]}, "teams"),
    ]
    for body, word in cases:
        response = client.post("/api/exercises", json=body, headers=headers)
        assert response.status_code == 422, body
        assert word in response.json()["detail"], response.json()
    unknown = client.post(
        "/api/exercises", json={"title": "x", "scenario_ids": ["nope"]}, headers=headers
    )
    assert unknown.status_code == 422
    assert "nope" in unknown.json()["detail"]
    assert client.post("/api/exercises", content=b"{not json", headers=headers).status_code == 422


def test_facilitators_see_only_their_own_exercises(client: TestClient) -> None:
    exercise = make_exercise(client)
    bob = login(client, "bob")
    assert client.get("/api/exercises", headers=bob).json() == []
    for method, path in [
        ("get", f"/api/exercises/{exercise.id}"),
        ("post", f"/api/exercises/{exercise.id}/pause"),
        ("post", f"/api/exercises/{exercise.id}/teams"),
        ("get", f"/api/teams/{exercise.team(0)['id']}/responses"),
    ]:
        response = client.request(method, path, json={"name": "x"}, headers=bob)
        assert response.status_code == 404, path
    listed = client.get("/api/exercises", headers=exercise.headers).json()
    assert [e["id"] for e in listed] == [exercise.id]


def test_state_machine(client: TestClient) -> None:
    exercise = make_exercise(client, start=False)
    url = f"/api/exercises/{exercise.id}"
    h = exercise.headers
    for action in ("pause", "resume", "end"):
        response = client.post(f"{url}/{action}", headers=h)
        assert response.status_code == 409, action
        assert response.json()["code"] == "invalid_transition"
        assert "draft" in response.json()["detail"]
    started = client.post(f"{url}/start", headers=h).json()
    assert started["status"] == "running"
    assert started["started_at"] is not None
    assert client.post(f"{url}/start", headers=h).status_code == 409
    assert client.post(f"{url}/resume", headers=h).status_code == 409
    assert client.post(f"{url}/pause", headers=h).json()["status"] == "paused"
    assert client.post(f"{url}/pause", headers=h).status_code == 409
    assert client.post(f"{url}/end", headers=h).status_code == 409
    assert client.post(f"{url}/resume", headers=h).json()["status"] == "running"
    ended = client.post(f"{url}/end", headers=h).json()
    assert ended["status"] == "ended"
    assert ended["ended_at"] is not None
    for action in ("start", "pause", "resume", "end"):
        assert client.post(f"{url}/{action}", headers=h).status_code == 409


def test_detail_lists_teams_participants_and_injects(client: TestClient) -> None:
    exercise = make_exercise(client)
    participant = join(client, exercise.team(0)["join_code"], "Hanako")
    inject = push(client, exercise)
    detail = client.get(f"/api/exercises/{exercise.id}", headers=exercise.headers).json()
    assert detail["status"] == "running"
    red = detail["teams"][0]
    assert red["participants"][0]["id"] == participant["participant_id"]
    assert red["participants"][0]["name"] == "Hanako"
    assert detail["teams"][1]["participants"] == []
    assert [i["id"] for i in detail["injects"]] == [inject["id"]]


def test_add_team_until_ended(client: TestClient) -> None:
    exercise = make_exercise(client)
    url = f"/api/exercises/{exercise.id}/teams"
    response = client.post(url, json={"name": "Green"}, headers=exercise.headers)
    assert response.status_code == 201
    assert set(response.json()) == {"id", "name", "join_code"}
    assert client.post(url, json={"name": "green"}, headers=exercise.headers).status_code == 409
    assert client.post(url, json={"name": ""}, headers=exercise.headers).status_code == 422
    join(client, response.json()["join_code"])
    client.post(f"/api/exercises/{exercise.id}/end", headers=exercise.headers)
    late = client.post(url, json={"name": "Late"}, headers=exercise.headers)
    assert late.status_code == 409


def test_deliver_scenario_inject_copies_text_in_exercise_locale(client: TestClient) -> None:
    exercise = make_exercise(client)
    inject = push(client, exercise, scenario_id="jnsa-2018-02", time_limit_s=900)
    assert set(inject) >= {
        "id",
        "exercise_id",
        "scenario_id",
        "title",
        "body",
        "source",
        "receiving",
        "team_ids",
        "delivered_at",
        "time_limit_s",
    }
    assert inject["exercise_id"] == exercise.id
    assert (
        inject["title"]
        == "ハッカーの侵入を受けて、すべてのメールがインターネットに公開されたと連絡が入った"
    )
    assert inject["source"] == "メディア"
    assert inject["body"]
    assert inject["texts"]["en"]["title"].startswith("We are told")
    assert inject["team_ids"] == [t["id"] for t in exercise.teams]
    assert inject["time_limit_s"] == 900
    assert datetime.fromisoformat(inject["delivered_at"]).utcoffset() is not None


def test_deliver_followup_custom_and_targeted_injects(client: TestClient) -> None:
    exercise = make_exercise(client, locale="en")
    scenarios = client.get("/api/scenarios", headers=exercise.headers).json()
    followup = scenarios[0]["followups"][0]
    inject = push(client, exercise, scenario_id="jnsa-2018-01", followup_id=followup["id"])
    assert inject["followup_id"] == followup["id"]
    assert inject["title"] == followup["title"]["en"]
    blue = exercise.team(1)["id"]
    custom = push(
        client, exercise, scenario_id=None, title="Ransom note", body="Pay 10 BTC", team_ids=[blue]
    )
    assert custom["scenario_id"] is None
    assert custom["team_ids"] == [blue]
    red_member = join(client, exercise.team(0)["join_code"])
    red_injects = client.get(
        f"/api/teams/{exercise.team(0)['id']}/injects", headers=red_member["headers"]
    ).json()
    assert [i["id"] for i in red_injects] == [inject["id"]]
    assert red_injects[0]["team_ids"] == [exercise.team(0)["id"]]


def test_inject_errors(client: TestClient) -> None:
    exercise = make_exercise(client, start=False)
    url = f"/api/exercises/{exercise.id}/injects"
    h = exercise.headers
    draft = client.post(url, json={"scenario_id": "jnsa-2018-01"}, headers=h)
    assert draft.status_code == 409
    assert draft.json()["code"] == "not_running"
    client.post(f"/api/exercises/{exercise.id}/start", headers=h)
    unknown = client.post(url, json={"scenario_id": "jnsa-2018-99"}, headers=h)
    assert unknown.status_code == 404
    assert "jnsa-2018-99" in unknown.json()["detail"]
    bad_followup = client.post(
        url, json={"scenario_id": "jnsa-2018-01", "followup_id": "x"}, headers=h
    )
    assert bad_followup.status_code == 404
    for body in (
        {},
        {"title": "only title"},
        {"scenario_id": "jnsa-2018-01", "title": "t", "body": "b"},
        {"scenario_id": "jnsa-2018-01", "team_ids": []},
        {"scenario_id": "jnsa-2018-01", "time_limit_s": 0},
    ):
        response = client.post(url, json=body, headers=h)
        assert response.status_code == 422, body
    foreign = client.post(
        url, json={"scenario_id": "jnsa-2018-01", "team_ids": ["nope"]}, headers=h
    )
    assert foreign.status_code == 422
    assert "nope" in foreign.json()["detail"]
    client.post(f"/api/exercises/{exercise.id}/pause", headers=h)
    assert client.post(url, json={"scenario_id": "jnsa-2018-01"}, headers=h).status_code == 409


def test_messages(client: TestClient) -> None:
    exercise = make_exercise(client)
    url = f"/api/exercises/{exercise.id}/messages"
    response = client.post(url, json={"text": "10 minutes left"}, headers=exercise.headers)
    assert response.status_code == 201
    body = response.json()
    assert body["text"] == "10 minutes left"
    assert body["team_ids"] is None
    assert body["seq"] > 0
    targeted = client.post(
        url,
        json={"text": "Blue only", "team_ids": [exercise.team(1)["id"]]},
        headers=exercise.headers,
    )
    assert targeted.json()["team_ids"] == [exercise.team(1)["id"]]
    assert targeted.json()["seq"] > body["seq"]
    assert client.post(url, json={"text": ""}, headers=exercise.headers).status_code == 422
    assert client.post(url, json={"text": "x" * 2001}, headers=exercise.headers).status_code == 422


def test_facilitator_removes_a_participant(client: TestClient) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    member = join(client, red["join_code"], "Leaver")
    stays = join(client, red["join_code"], "Stayer")
    url = f"/api/exercises/{exercise.id}/participants/{member['participant_id']}"
    assert (
        client.get(f"/api/teams/{red['id']}/injects", headers=member["headers"]).status_code == 200
    )
    bob = login(client, "bob")
    assert client.delete(url, headers=bob).status_code == 404
    assert client.delete(url, headers=stays["headers"]).status_code == 403
    assert client.delete(url, headers=exercise.headers).status_code == 204
    assert client.delete(url, headers=exercise.headers).status_code == 204  # already gone: fine
    assert (
        client.get(f"/api/teams/{red['id']}/injects", headers=member["headers"]).status_code == 401
    )
    assert (
        client.get(f"/api/teams/{red['id']}/injects", headers=stays["headers"]).status_code == 200
    )
    detail = client.get(f"/api/exercises/{exercise.id}", headers=exercise.headers).json()
    assert [p["name"] for p in detail["teams"][0]["participants"]] == ["Stayer"]
    missing = client.delete(
        f"/api/exercises/{exercise.id}/participants/nope", headers=exercise.headers
    )
    assert missing.status_code == 404


def test_every_request_gives_its_database_connection_back(client: TestClient) -> None:
    """Sessions close on the event loop after a commit and in a thread otherwise: none leaks."""
    pool = client.app.state.engine.pool  # type: ignore[attr-defined]
    exercise = make_exercise(client)
    participant = join(client, exercise.teams[0]["join_code"])
    push(client, exercise)
    team = exercise.teams[0]["id"]
    done = [
        client.get(f"/api/exercises/{exercise.id}", headers=exercise.headers),  # a read
        client.get(f"/api/teams/{team}/injects", headers=participant["headers"]),
        client.post(f"/api/exercises/{exercise.id}/injects", json={}, headers=exercise.headers),
        client.post(  # refused inside the service, after its queries: rolled back
            f"/api/exercises/{exercise.id}/injects",
            json={"scenario_id": "no-such-scenario"},
            headers=exercise.headers,
        ),
        client.get("/api/exercises/nope", headers=exercise.headers),
        client.get("/api/exercises", headers={"Authorization": "Bearer f_forged"}),
    ]
    assert [r.status_code for r in done] == [200, 200, 422, 404, 404, 401]
    assert pool.checkedout() == 0


def test_a_database_that_does_not_answer_gets_503_and_a_sentence(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from app.exercises import service

    exercise = make_exercise(client)

    def gone(*_args: object, **_kwargs: object) -> None:
        raise OperationalError(
            "INSERT INTO inject …", {}, Exception("server closed the connection")
        )

    monkeypatch.setattr(service, "deliver_inject", gone)
    response = client.post(
        f"/api/exercises/{exercise.id}/injects",
        json={"scenario_id": "jnsa-2018-01"},
        headers=exercise.headers,
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert body["code"] == "database_unavailable"
    assert "try again" in body["detail"]
    assert "INSERT" not in body["detail"]  # no SQL or driver text reaches the client
