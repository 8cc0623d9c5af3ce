"""The live protocol over real websockets (Starlette's TestClient runs the app and its hub)."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from app.live import service as live_service
from tests.factories import Exercise, join, make_exercise, push


def participant_ws(client: TestClient, member: dict[str, Any]) -> Any:
    return client.websocket_connect("/ws/participant", headers=member["headers"])


def facilitator_ws(client: TestClient, exercise: Exercise) -> Any:
    return client.websocket_connect(
        f"/ws/exercises/{exercise.id}/facilitator", headers=exercise.headers
    )


def hello(ws: WebSocketTestSession) -> dict[str, Any]:
    message = ws.receive_json()
    assert message["type"] == "hello", message
    return message


def next_message(ws: WebSocketTestSession, *, skip: tuple[str, ...] = ("presence",)) -> Any:
    """The next message whose type is not skipped (presence arrives on its own timer)."""
    while True:
        message = ws.receive_json()
        if message["type"] not in skip:
            return message


def broadcast(client: TestClient, exercise: Exercise, text: str, **body: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/exercises/{exercise.id}/messages",
        json={"text": text, **body},
        headers=exercise.headers,
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def edit_url(team: dict[str, Any], inject: dict[str, Any], field: str) -> str:
    return f"/api/teams/{team['id']}/responses/{inject['id']}/{field}"


def test_hello_carries_the_full_state_for_a_late_joiner(client: TestClient) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    early = join(client, red["join_code"], "Hanako")
    inject = push(client, exercise)
    client.put(
        edit_url(red, inject, "overview"),
        json={"value": "C2への通信", "base_version": 0},
        headers=early["headers"],
    )
    client.post(f"/api/teams/{red['id']}/injects/{inject['id']}/submit", headers=early["headers"])
    note = broadcast(client, exercise, "10分後に発表してください")
    late = join(client, red["join_code"], "Taro")
    with participant_ws(client, late) as ws:
        message = hello(ws)
    snapshot = message["snapshot"]
    assert message["seq"] == message["last_seq"] >= note["seq"]
    assert message["team"] == {"id": red["id"], "name": "Red"}
    assert message["exercise"]["status"] == "running"
    assert [i["id"] for i in snapshot["injects"]] == [inject["id"]]
    assert [(c["field"], c["value"], c["version"]) for c in snapshot["cells"]] == [
        ("overview", "C2への通信", 1)
    ]
    assert [s["inject_id"] for s in snapshot["submissions"]] == [inject["id"]]
    assert [m["text"] for m in snapshot["messages"]] == ["10分後に発表してください"]
    assert snapshot["exercise"]["started_at"] is not None
    assert snapshot["server_time"] == message["at"]
    (team_presence,) = snapshot["presence"]
    online = {p["name"]: p["online"] for p in team_presence["participants"]}
    assert online == {"Hanako": False, "Taro": True}


def test_facilitator_hello_covers_every_team(client: TestClient) -> None:
    exercise = make_exercise(client)
    push(client, exercise, team_ids=[exercise.team(0)["id"]])
    push(client, exercise, scenario_id="jnsa-2018-02", team_ids=[exercise.team(1)["id"]])
    with facilitator_ws(client, exercise) as ws:
        snapshot = hello(ws)["snapshot"]
    assert len(snapshot["injects"]) == 2
    assert {t["name"] for t in snapshot["teams"]} == {"Red", "Blue"}
    assert {p["team_id"] for p in snapshot["presence"]} == {t["id"] for t in exercise.teams}


def test_inject_reaches_every_team_and_the_facilitator(client: TestClient) -> None:
    exercise = make_exercise(client, teams=("Red", "Blue", "Green"))
    members = [join(client, team["join_code"], f"P{n}") for n, team in enumerate(exercise.teams)]
    with (
        facilitator_ws(client, exercise) as console,
        participant_ws(client, members[0]) as red,
        participant_ws(client, members[1]) as blue,
        participant_ws(client, members[2]) as green,
    ):
        sockets = [console, red, blue, green]
        for ws in sockets:
            hello(ws)
        inject = push(client, exercise)
        for ws in sockets:
            message = next_message(ws)
            assert message["type"] == "inject"
            assert message["inject"]["id"] == inject["id"]
            assert message["inject"]["title"] == inject["title"]
            assert isinstance(message["seq"], int) and message["at"]


def test_a_participant_sees_nothing_of_another_team(client: TestClient) -> None:
    exercise = make_exercise(client)
    red, blue = exercise.team(0), exercise.team(1)
    red_member = join(client, red["join_code"], "Hanako")
    blue_member = join(client, blue["join_code"], "Jiro")
    with (
        participant_ws(client, blue_member) as blue_ws,
        facilitator_ws(client, exercise) as console,
    ):
        hello(blue_ws)
        hello(console)
        with participant_ws(client, red_member) as red_ws:
            hello(red_ws)
            inject = push(client, exercise, team_ids=[red["id"]])
            red_ws.send_json(
                {
                    "type": "edit",
                    "inject_id": inject["id"],
                    "field": "cause",
                    "value": "フィッシング",
                    "base_version": 0,
                }
            )
            red_ws.send_json({"type": "focus", "inject_id": inject["id"], "field": "cause"})
            client.post(
                f"/api/teams/{red['id']}/injects/{inject['id']}/submit",
                headers=red_member["headers"],
            )
            broadcast(client, exercise, "Red only", team_ids=[red["id"]])
            client.post(
                f"/api/exercises/{exercise.id}/teams",
                json={"name": "Green"},
                headers=exercise.headers,
            )
            join(client, red["join_code"], "Saburo")
            # The console sees Red's presence with the focus: it has been announced by now.
            while True:
                message = console.receive_json()
                if message["type"] == "presence" and any(
                    p.get("field") == "cause" for p in message["participants"]
                ):
                    break
        # Red's disconnect is announced too; wait for it before the final marker.
        while True:
            message = console.receive_json()
            if message["type"] == "presence" and not any(
                p["online"] for p in message["participants"]
            ):
                break
        everyone = broadcast(client, exercise, "for everyone")
        # Events reach a socket in seq order, so anything of Red's would have come first.
        message = blue_ws.receive_json()
        assert message["type"] == "message", message
        assert message["seq"] == everyone["seq"]
        assert message["text"] == "for everyone"
        # A reconnecting Blue member replaying from the start gets no Red event either.
        # ("for everyone" already came live, so it is not repeated; the marker follows live.)
        blue_ws.send_json({"type": "resume", "after_seq": 0})
        marker = broadcast(client, exercise, "marker")
        replayed = []
        while not replayed or replayed[-1]["type"] != "message":
            replayed.append(next_message(blue_ws))
        assert red["id"] not in json.dumps(replayed)
        assert [m["type"] for m in replayed] == ["status", "participant", "message"]
        assert replayed[-1]["seq"] == marker["seq"]


def _collect(ws: WebSocketTestSession, count: int) -> list[dict[str, Any]]:
    return [next_message(ws) for _ in range(count)]


def test_resume_after_a_gap_returns_exactly_the_missed_events_then_live_ones(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small pages, so the replay crosses several database reads.
    monkeypatch.setattr(live_service, "REPLAY_PAGE", 2)
    exercise = make_exercise(client)
    red, blue = exercise.team(0), exercise.team(1)
    member = join(client, red["join_code"], "Hanako")
    other = join(client, blue["join_code"], "Jiro")
    with participant_ws(client, member) as ws:
        hello(ws)
        first = push(client, exercise)
        seen = next_message(ws)
        assert seen["inject"]["id"] == first["id"]
    # Offline for a while: some events are Red's, some Blue's, some for everyone.
    missed_inject = push(client, exercise, scenario_id="jnsa-2018-02")
    client.put(
        edit_url(blue, missed_inject, "overview"),
        json={"value": "blue text", "base_version": 0},
        headers=other["headers"],
    )
    client.put(
        edit_url(red, missed_inject, "overview"),
        json={"value": "red text", "base_version": 0},
        headers=member["headers"],
    )
    note = broadcast(client, exercise, "hurry")
    broadcast(client, exercise, "Blue only", team_ids=[blue["id"]])
    with participant_ws(client, member) as ws:
        greeting = hello(ws)
        assert greeting["last_seq"] > note["seq"]
        ws.send_json({"type": "resume", "after_seq": seen["seq"]})
        replay = _collect(ws, 3)
        assert [m["type"] for m in replay] == ["inject", "response", "message"]
        assert replay[0]["inject"]["id"] == missed_inject["id"]
        assert replay[1]["value"] == "red text"
        assert replay[2]["seq"] == note["seq"]
        assert [m["seq"] for m in replay] == sorted({m["seq"] for m in replay})
        live = broadcast(client, exercise, "live again")
        message = next_message(ws)
        assert message["seq"] == live["seq"], "a duplicate or a stray event came between"
        assert message["text"] == "live again"


def test_resume_skips_what_already_arrived_live(client: TestClient) -> None:
    exercise = make_exercise(client)
    member = join(client, exercise.team(0)["join_code"], "Hanako")
    with participant_ws(client, member) as ws:
        start = hello(ws)["last_seq"]
        first = broadcast(client, exercise, "one")
        assert next_message(ws)["seq"] == first["seq"]
        # Asking again for what came live returns nothing twice; the next live event follows.
        ws.send_json({"type": "resume", "after_seq": start})
        second = broadcast(client, exercise, "two")
        message = next_message(ws)
        assert (message["seq"], message["text"]) == (second["seq"], "two")


def test_resume_from_a_seq_never_sent_skips_nothing_live(client: TestClient) -> None:
    exercise = make_exercise(client)
    member = join(client, exercise.team(0)["join_code"], "Hanako")
    with participant_ws(client, member) as ws:
        hello(ws)
        ws.send_json({"type": "resume", "after_seq": 10**12})
        live = broadcast(client, exercise, "still here")
        message = next_message(ws)
        assert (message["seq"], message["text"]) == (live["seq"], "still here")


def test_fields_join_an_encoded_object_without_encoding_it_again() -> None:
    from app.live.protocol import with_fields

    shared = json.dumps({"injects": [{"title": "至急"}]}, ensure_ascii=False)
    joined = with_fields(shared, {"at": "now", "you": {"名": 1}}, raw={"snapshot": '{"a":[1]}'})
    assert json.loads(joined) == {
        "injects": [{"title": "至急"}],
        "at": "now",
        "you": {"名": 1},
        "snapshot": {"a": [1]},
    }
    assert json.loads(with_fields("{}", {"x": 1})) == {"x": 1}
    assert json.loads(with_fields("{}", {}, raw={"k": "2"})) == {"k": 2}
    assert with_fields(shared, {}) == shared
