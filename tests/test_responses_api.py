"""Versioned answers, conflicts, submissions and team isolation over the public API."""

from datetime import datetime

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.eventlog.models import Event
from app.responses.models import ResponseRevision
from tests.factories import join, make_exercise, push


def _setup(client: TestClient):  # type: ignore[no-untyped-def]
    exercise = make_exercise(client)
    red = exercise.team(0)
    member = join(client, red["join_code"], "Hanako")
    inject = push(client, exercise)
    return exercise, red, member, inject


def test_write_read_and_version(client: TestClient) -> None:
    _exercise, red, member, inject = _setup(client)
    url = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
    first = client.put(
        url, json={"value": "標的型攻撃", "base_version": 0}, headers=member["headers"]
    )
    assert first.status_code == 200
    assert first.json() == {"version": 1, "value": "標的型攻撃"}
    second = client.put(
        url, json={"value": "標的型攻撃の疑い", "base_version": 1}, headers=member["headers"]
    )
    assert second.json() == {"version": 2, "value": "標的型攻撃の疑い"}
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=member["headers"]).json()
    assert len(cells) == 1
    cell = cells[0]
    assert cell["inject_id"] == inject["id"]
    assert cell["field"] == "overview"
    assert cell["value"] == "標的型攻撃の疑い"
    assert cell["version"] == 2
    assert cell["updated_by"] == "Hanako"
    assert datetime.fromisoformat(cell["updated_at"]).utcoffset() is not None


def test_stale_base_version_is_409_with_current_value(client: TestClient) -> None:
    _exercise, red, member, inject = _setup(client)
    mate = join(client, red["join_code"], "Taro")
    url = f"/api/teams/{red['id']}/responses/{inject['id']}/cause"
    client.put(url, json={"value": "phishing", "base_version": 0}, headers=member["headers"])
    stale = client.put(url, json={"value": "VPN", "base_version": 0}, headers=mate["headers"])
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "conflict"
    assert body["current"] == {"value": "phishing", "version": 1, "updated_by": "Hanako"}
    assert body["detail"]
    future = client.put(url, json={"value": "VPN", "base_version": 5}, headers=mate["headers"])
    assert future.status_code == 409
    # Nothing was overwritten.
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=mate["headers"]).json()
    assert cells[0]["value"] == "phishing"


def test_every_accepted_write_is_a_revision_and_an_event(client: TestClient) -> None:
    exercise, red, member, inject = _setup(client)
    url = f"/api/teams/{red['id']}/responses/{inject['id']}/press"
    for version, value in enumerate(["広報", "広報部長", "広報部長と法務"], start=1):
        client.put(
            url, json={"value": value, "base_version": version - 1}, headers=member["headers"]
        )
    client.put(url, json={"value": "lost", "base_version": 0}, headers=member["headers"])
    history = client.get(f"{url}/revisions", headers=exercise.headers).json()
    assert [(r["version"], r["value"]) for r in history] == [
        (1, "広報"),
        (2, "広報部長"),
        (3, "広報部長と法務"),
    ]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        revisions = session.exec(select(ResponseRevision)).all()
        events = session.exec(select(Event).where(Event.type == "response")).all()
    assert len(revisions) == 3
    assert [e.payload["value"] for e in events] == ["広報", "広報部長", "広報部長と法務"]
    assert all(e.team_ids == [red["id"]] for e in events)


def test_write_errors(client: TestClient) -> None:
    exercise, red, member, inject = _setup(client)
    base = f"/api/teams/{red['id']}/responses/{inject['id']}"
    h = member["headers"]
    unknown = client.put(f"{base}/salary", json={"value": "x", "base_version": 0}, headers=h)
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_field"
    assert "overview" in unknown.json()["detail"]
    long = client.put(f"{base}/overview", json={"value": "あ" * 5001, "base_version": 0}, headers=h)
    assert long.status_code == 422
    assert "5000" in long.json()["detail"]
    exactly = client.put(
        f"{base}/overview", json={"value": "あ" * 5000, "base_version": 0}, headers=h
    )
    assert exactly.status_code == 200
    choice = client.put(f"{base}/disclose", json={"value": "maybe", "base_version": 0}, headers=h)
    assert choice.status_code == 422
    assert (
        client.put(
            f"{base}/disclose", json={"value": "yes", "base_version": 0}, headers=h
        ).status_code
        == 200
    )
    negative = client.put(f"{base}/cause", json={"value": "x", "base_version": -1}, headers=h)
    assert negative.status_code == 422
    missing = client.put(f"{base}/cause", json={"value": "x"}, headers=h)
    assert missing.status_code == 422
    not_delivered = client.put(
        f"/api/teams/{red['id']}/responses/nope/overview",
        json={"value": "x", "base_version": 0},
        headers=h,
    )
    assert not_delivered.status_code == 404
    blue_only = push(client, exercise, team_ids=[exercise.team(1)["id"]])
    other = client.put(
        f"/api/teams/{red['id']}/responses/{blue_only['id']}/overview",
        json={"value": "x", "base_version": 0},
        headers=h,
    )
    assert other.status_code == 404


def test_writes_only_while_running(client: TestClient) -> None:
    exercise, red, member, inject = _setup(client)
    url = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
    client.put(url, json={"value": "before", "base_version": 0}, headers=member["headers"])
    client.post(f"/api/exercises/{exercise.id}/pause", headers=exercise.headers)
    paused = client.put(url, json={"value": "during", "base_version": 1}, headers=member["headers"])
    assert paused.status_code == 409
    assert paused.json()["code"] == "not_running"
    client.post(f"/api/exercises/{exercise.id}/resume", headers=exercise.headers)
    client.post(f"/api/exercises/{exercise.id}/end", headers=exercise.headers)
    ended = client.put(url, json={"value": "after", "base_version": 1}, headers=member["headers"])
    assert ended.status_code == 409
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=exercise.headers).json()
    assert cells[0]["value"] == "before"


def test_facilitator_can_write_as_themselves(client: TestClient) -> None:
    exercise, red, _member, inject = _setup(client)
    url = f"/api/teams/{red['id']}/responses/{inject['id']}/legal"
    assert (
        client.put(
            url, json={"value": "法務部", "base_version": 0}, headers=exercise.headers
        ).status_code
        == 200
    )
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=exercise.headers).json()
    assert cells[0]["updated_by"] == "alice"


def test_submit_measures_time_on_server_and_is_idempotent(client: TestClient) -> None:
    _exercise, red, member, inject = _setup(client)
    url = f"/api/teams/{red['id']}/injects/{inject['id']}/submit"
    response = client.post(url, headers=member["headers"])
    assert response.status_code == 200
    body = response.json()
    assert body["elapsed_s"] >= 0
    submitted_at = datetime.fromisoformat(body["submitted_at"])
    assert submitted_at >= datetime.fromisoformat(inject["delivered_at"])
    again = client.post(url, headers=member["headers"]).json()
    assert again == body
    subs = client.get(f"/api/teams/{red['id']}/submissions", headers=member["headers"]).json()
    assert len(subs) == 1
    assert subs[0]["inject_id"] == inject["id"]
    assert subs[0]["submitted_by"] == "Hanako"
    assert subs[0]["elapsed_s"] == body["elapsed_s"]
    assert (
        client.post(
            f"/api/teams/{red['id']}/injects/nope/submit", headers=member["headers"]
        ).status_code
        == 404
    )


def test_submit_refused_unless_running(client: TestClient) -> None:
    exercise, red, member, inject = _setup(client)
    client.post(f"/api/exercises/{exercise.id}/pause", headers=exercise.headers)
    response = client.post(
        f"/api/teams/{red['id']}/injects/{inject['id']}/submit", headers=member["headers"]
    )
    assert response.status_code == 409


def test_another_teams_participant_gets_403_everywhere(client: TestClient) -> None:
    exercise, red, member, inject = _setup(client)
    blue_member = join(client, exercise.team(1)["join_code"], "Spy")
    h = blue_member["headers"]
    rid = red["id"]
    requests = [
        ("get", f"/api/teams/{rid}/injects", None),
        ("get", f"/api/teams/{rid}/responses", None),
        ("get", f"/api/teams/{rid}/submissions", None),
        (
            "put",
            f"/api/teams/{rid}/responses/{inject['id']}/overview",
            {"value": "x", "base_version": 0},
        ),
        ("get", f"/api/teams/{rid}/responses/{inject['id']}/overview/revisions", None),
        ("post", f"/api/teams/{rid}/injects/{inject['id']}/submit", None),
    ]
    for method, path, body in requests:
        response = client.request(method, path, json=body, headers=h)
        assert response.status_code == 403, path
        assert response.json()["code"] == "other_team"
    # The refused write changed nothing for the real team.
    assert client.get(f"/api/teams/{rid}/responses", headers=member["headers"]).json() == []


def test_unauthenticated_team_requests_are_401(client: TestClient) -> None:
    _exercise, red, _member, _inject = _setup(client)
    assert client.get(f"/api/teams/{red['id']}/responses").status_code == 401
    assert client.get("/api/teams/nope/responses").status_code == 401


def test_nul_characters_are_refused_everywhere_with_422(client: TestClient) -> None:
    exercise, red, member, inject = _setup(client)
    url = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
    response = client.put(
        url, json={"value": "a\x00b", "base_version": 0}, headers=member["headers"]
    )
    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]
    for path, body in [
        ("/api/join", {"code": red["join_code"], "name": "a\x00"}),
        (f"/api/exercises/{exercise.id}/teams", {"name": "x\x00"}),
        (f"/api/exercises/{exercise.id}/messages", {"text": "\x00"}),
        (f"/api/exercises/{exercise.id}/injects", {"scenario_id": "jnsa\x00"}),
    ]:
        refused = client.post(path, json=body, headers=exercise.headers)
        assert refused.status_code == 422, path
        assert "NUL" in refused.json()["detail"]
    in_url = client.get(f"/api/teams/{red['id']}%00/responses", headers=member["headers"])
    assert in_url.status_code == 400
    assert in_url.json()["code"] == "invalid_character"


def test_lone_surrogate_escapes_are_refused_and_pairs_are_kept(client: TestClient) -> None:
    _exercise, red, member, inject = _setup(client)
    url = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
    headers = {**member["headers"], "content-type": "application/json"}
    kept = client.put(
        url, content=b'{"value": "ok \\ud83d\\ude00", "base_version": 0}', headers=headers
    )
    assert kept.status_code == 200
    assert kept.json() == {"version": 1, "value": "ok \U0001f600"}
    for body in (
        b'{"value": "a\\ud800b", "base_version": 1}',
        b'{"value": "\\uDFFF", "base_version": 1}',
    ):
        refused = client.put(url, content=body, headers=headers)
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_character"
        assert "surrogate" in refused.json()["detail"]
    joined = client.post(
        "/api/join",
        # No content type: FastAPI still reads the body as JSON.
        content=b'{"code": "' + red["join_code"].encode() + b'", "name": "x\\udc00"}',
    )
    assert joined.status_code == 422
    # The stored answer is untouched.
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=member["headers"]).json()
    assert [cell["value"] for cell in cells] == ["ok \U0001f600"]
