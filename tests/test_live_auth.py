"""Who may open a live socket: credentials, ownership and the handshake's Origin."""

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.factories import join, login, make_exercise
from tests.test_live_ws import hello


def _closed_with(client: TestClient, url: str, headers: dict[str, str]) -> int:
    with (
        client.websocket_connect(url, headers=headers) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    return closed.value.code


def test_unauthenticated_sockets_are_closed_4401(client: TestClient) -> None:
    exercise = make_exercise(client)
    for url in ("/ws/participant", f"/ws/exercises/{exercise.id}/facilitator"):
        assert _closed_with(client, url, {}) == 4401
        assert _closed_with(client, url, {"Authorization": "Bearer p_forged"}) == 4401
    assert _closed_with(client, "/ws/participant", {"Authorization": "Bearer f_forged"}) == 4401


def test_another_facilitator_or_a_participant_is_refused_4403(client: TestClient) -> None:
    exercise = make_exercise(client)
    member = join(client, exercise.team(0)["join_code"])
    url = f"/ws/exercises/{exercise.id}/facilitator"
    assert _closed_with(client, url, login(client, "bob")) == 4403
    assert _closed_with(client, url, member["headers"]) == 4403
    assert _closed_with(client, "/ws/exercises/nope/facilitator", exercise.headers) == 4403
    # A facilitator token is no participant's.
    assert _closed_with(client, "/ws/participant", exercise.headers) == 4401


def test_a_removed_participant_is_refused_4403(client: TestClient) -> None:
    from sqlmodel import Session

    from app.db import utcnow
    from app.exercises.models import Participant

    exercise = make_exercise(client)
    member = join(client, exercise.team(0)["join_code"])
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        participant = session.get(Participant, member["participant_id"])
        assert participant is not None
        participant.removed_at = utcnow()
        session.add(participant)
        session.commit()
    assert _closed_with(client, "/ws/participant", member["headers"]) == 4403


def test_cookies_authenticate_sockets(client: TestClient) -> None:
    exercise = make_exercise(client)
    code = exercise.team(0)["join_code"]
    assert client.post("/api/join", json={"code": code, "name": "Cookie"}).status_code == 201
    with client.websocket_connect("/ws/participant") as ws:
        assert hello(ws)["you"]["name"] == "Cookie"
    client.cookies.clear()
    response = client.post(
        "/api/auth/login", json={"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 200
    with client.websocket_connect(f"/ws/exercises/{exercise.id}/facilitator") as ws:
        assert hello(ws)["exercise"]["id"] == exercise.id


def test_a_foreign_origin_is_refused_at_the_handshake(client: TestClient) -> None:
    exercise = make_exercise(client)
    member = join(client, exercise.team(0)["join_code"])
    foreign = {**member["headers"], "Origin": "https://evil.example"}
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws/participant", headers=foreign),
    ):
        pass
    assert refused.value.code == 4403
    own = {**member["headers"], "Origin": "http://testserver"}
    with client.websocket_connect("/ws/participant", headers=own) as ws:
        assert hello(ws)["type"] == "hello"
    console = {**exercise.headers, "Origin": "http://attacker.test"}
    url = f"/ws/exercises/{exercise.id}/facilitator"
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(url, headers=console):
        pass
