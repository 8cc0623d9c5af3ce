"""Injects sent over the facilitator's socket: the same checks and answers as the REST call."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.factories import Exercise, expire_login, join, login, make_exercise
from tests.test_live_ws import broadcast, facilitator_ws, hello, next_message, participant_ws


def injects_of(client: TestClient, exercise: Exercise) -> list[dict[str, Any]]:
    response = client.get(f"/api/exercises/{exercise.id}", headers=exercise.headers)
    assert response.status_code == 200, response.text
    injects: list[dict[str, Any]] = response.json()["injects"]
    return injects


def test_an_inject_over_the_socket_reaches_its_teams_and_is_acknowledged(
    client: TestClient,
) -> None:
    exercise = make_exercise(client)
    red, blue = exercise.team(0), exercise.team(1)
    red_member = join(client, red["join_code"], "Hanako")
    blue_member = join(client, blue["join_code"], "Taro")
    with (
        facilitator_ws(client, exercise) as console,
        participant_ws(client, red_member) as red_ws,
        participant_ws(client, blue_member) as blue_ws,
    ):
        for ws in (console, red_ws, blue_ws):
            hello(ws)
        console.send_json(
            {
                "type": "inject",
                "client_ref": "c1",
                "title": "不審な通信",
                "body": "C2サーバへの通信が検知された。",
                "team_ids": [red["id"]],
                "time_limit_s": 600,
            }
        )
        event = next_message(console)
        ack = next_message(console)
        received = next_message(red_ws)
        note = broadcast(client, exercise, "next")
        # Blue's next message is the broadcast: the inject was Red's only.
        assert next_message(blue_ws)["seq"] == note["seq"]
    assert event["type"] == "inject" and received["type"] == "inject"
    assert ack["type"] == "ack" and ack["client_ref"] == "c1"
    inject = ack["inject"]
    assert event["inject"] == received["inject"] == inject
    assert (inject["title"], inject["team_ids"], inject["time_limit_s"]) == (
        "不審な通信",
        [red["id"]],
        600,
    )
    assert inject["position"] == 1
    (stored,) = injects_of(client, exercise)
    assert stored["id"] == inject["id"] and stored["team_ids"] == [red["id"]]


def test_a_library_scenario_over_the_socket_matches_the_rest_call(client: TestClient) -> None:
    exercise = make_exercise(client)
    with facilitator_ws(client, exercise) as console:
        hello(console)
        console.send_json({"type": "inject", "client_ref": 7, "scenario_id": "jnsa-2018-02"})
        next_message(console)
        ack = next_message(console)
    response = client.post(
        f"/api/exercises/{exercise.id}/injects",
        json={"scenario_id": "jnsa-2018-02"},
        headers=exercise.headers,
    )
    assert response.status_code == 201, response.text
    by_rest = response.json()
    by_socket = ack["inject"]
    assert ack["client_ref"] == 7
    assert (by_socket["position"], by_rest["position"]) == (1, 2)
    for key in ("scenario_id", "title", "body", "source", "receiving", "texts", "team_ids"):
        assert by_socket[key] == by_rest[key], key


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"title": "no body"}, "invalid"),
        ({"scenario_id": "jnsa-2018-01", "title": "both"}, "invalid"),
        ({"scenario_id": "no-such-scenario"}, None),
        ({"scenario_id": "jnsa-2018-01", "team_ids": ["nosuchteam"]}, None),
        ({"scenario_id": "jnsa-2018-01", "time_limit_s": 0}, "invalid"),
    ],
)
def test_a_refused_inject_over_the_socket_says_what_the_rest_call_says(
    client: TestClient, body: dict[str, Any], code: str | None
) -> None:
    exercise = make_exercise(client)
    rest = client.post(f"/api/exercises/{exercise.id}/injects", json=body, headers=exercise.headers)
    assert rest.status_code in (404, 422), rest.text
    with facilitator_ws(client, exercise) as console:
        hello(console)
        console.send_json({"type": "inject", "client_ref": "r", **body})
        error = next_message(console)
    assert error["type"] == "error" and error["client_ref"] == "r"
    assert error["code"] == (code or rest.json()["code"])
    assert error["detail"]
    assert injects_of(client, exercise) == []


def test_an_inject_into_a_paused_exercise_is_refused_with_its_reason(client: TestClient) -> None:
    exercise = make_exercise(client)
    with facilitator_ws(client, exercise) as console:
        hello(console)
        paused = client.post(f"/api/exercises/{exercise.id}/pause", headers=exercise.headers)
        assert paused.status_code == 200
        assert next_message(console)["type"] == "status"
        console.send_json({"type": "inject", "scenario_id": "jnsa-2018-01"})
        error = next_message(console)
    rest = client.post(
        f"/api/exercises/{exercise.id}/injects",
        json={"scenario_id": "jnsa-2018-01"},
        headers=exercise.headers,
    )
    assert rest.status_code == 409
    assert (error["type"], error["code"]) == ("error", rest.json()["code"])
    assert injects_of(client, exercise) == []


def test_an_inject_after_the_login_ended_is_refused_and_the_socket_closed(
    client: TestClient,
) -> None:
    exercise = make_exercise(client)
    with facilitator_ws(client, exercise) as console:
        hello(console)
        expire_login(client, exercise.headers)
        console.send_json({"type": "inject", "client_ref": "late", "scenario_id": "jnsa-2018-01"})
        error = next_message(console)
        with pytest.raises(WebSocketDisconnect) as closed:
            next_message(console)
    assert (error["type"], error["code"], error["client_ref"]) == (
        "error",
        "unauthenticated",
        "late",
    )
    assert closed.value.code == 4401
    # A new login of the same facilitator finds nothing delivered.
    listed = client.get(f"/api/exercises/{exercise.id}", headers=login(client))
    assert listed.status_code == 200, listed.text
    assert listed.json()["injects"] == []


def test_logging_out_closes_the_facilitators_open_sockets_at_once(client: TestClient) -> None:
    exercise = make_exercise(client)
    again = login(client)  # a second login of the same facilitator, in another browser
    with facilitator_ws(client, exercise) as console:
        hello(console)
        assert client.post("/api/auth/logout", headers=exercise.headers).status_code == 204
        # The next event is not for the logged-out socket: it was closed before.
        sent = client.post(
            f"/api/exercises/{exercise.id}/messages", json={"text": "after"}, headers=again
        )
        assert sent.status_code == 201, sent.text
        first = next_message(console)
        with pytest.raises(WebSocketDisconnect) as closed:
            next_message(console)
    assert (first["type"], first["code"]) == ("error", "unauthenticated")
    assert closed.value.code == 4401


def test_sockets_whose_login_ended_elsewhere_are_closed_when_checked(client: TestClient) -> None:
    exercise = make_exercise(client)
    again = login(client)  # a second login of the same facilitator, in another browser
    hub = client.app.state.hub  # type: ignore[attr-defined]
    url = f"/ws/exercises/{exercise.id}/facilitator"
    with (
        facilitator_ws(client, exercise) as ended,
        client.websocket_connect(url, headers=again) as still,
    ):
        hello(ended)
        hello(still)
        expire_login(client, exercise.headers)
        assert client.portal.call(hub.revalidate) == 1  # type: ignore[union-attr]
        assert next_message(ended)["code"] == "unauthenticated"
        with pytest.raises(WebSocketDisconnect) as closed:
            next_message(ended)
        # The other login's socket stays and goes on receiving.
        sent = client.post(
            f"/api/exercises/{exercise.id}/messages", json={"text": "still here"}, headers=again
        )
        assert sent.status_code == 201, sent.text
        assert next_message(still)["seq"] == sent.json()["seq"]
    assert closed.value.code == 4401


def test_a_participant_cannot_deliver_an_inject(client: TestClient) -> None:
    exercise = make_exercise(client)
    member = join(client, exercise.team(0)["join_code"], "Hanako")
    with participant_ws(client, member) as ws:
        hello(ws)
        ws.send_json({"type": "inject", "client_ref": 1, "scenario_id": "jnsa-2018-01"})
        error = next_message(ws)
    assert (error["type"], error["code"], error["client_ref"]) == ("error", "facilitator_only", 1)
    assert injects_of(client, exercise) == []
