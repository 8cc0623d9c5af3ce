"""Edits over the live channel: ack to the writer, `response` to teammates and facilitators."""

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.auth.ratelimit import MessageBudget
from tests.factories import join, make_exercise, push
from tests.test_live_ws import facilitator_ws, hello, next_message, participant_ws


def _room(client: TestClient):  # type: ignore[no-untyped-def]
    exercise = make_exercise(client)
    red = exercise.team(0)
    writer = join(client, red["join_code"], "Hanako")
    mate = join(client, red["join_code"], "Taro")
    inject = push(client, exercise)
    return exercise, red, writer, mate, inject


def _edit(inject: dict[str, Any], **body: Any) -> dict[str, Any]:
    return {"type": "edit", "inject_id": inject["id"], "field": "press", **body}


def test_edit_acks_the_writer_and_reaches_teammate_and_facilitator(client: TestClient) -> None:
    exercise, red, writer, mate, inject = _room(client)
    with (
        participant_ws(client, writer) as own,
        participant_ws(client, mate) as other,
        facilitator_ws(client, exercise) as console,
    ):
        for ws in (own, other, console):
            hello(ws)
        own.send_json(_edit(inject, value="広報部長", base_version=0, client_ref="k1"))
        replies = {m["type"]: m for m in (next_message(own), next_message(own))}
        assert replies["ack"]["client_ref"] == "k1"
        assert replies["ack"]["version"] == 1
        for ws in (other, console):
            response = next_message(ws)
            assert response["type"] == "response"
            assert response == replies["response"]
        assert response["team_id"] == red["id"]
        assert (response["field"], response["value"], response["version"]) == (
            "press",
            "広報部長",
            1,
        )
        assert response["updated_by"] == "Hanako"
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=mate["headers"]).json()
    assert [(c["field"], c["value"], c["version"]) for c in cells] == [("press", "広報部長", 1)]


def test_stale_edit_gets_conflict_with_the_current_value(client: TestClient) -> None:
    _exercise, _red, writer, mate, inject = _room(client)
    with participant_ws(client, writer) as own, participant_ws(client, mate) as other:
        hello(own)
        hello(other)
        own.send_json(_edit(inject, value="CEO", base_version=0, client_ref=1))
        while next_message(own)["type"] != "ack":
            pass
        other.send_json(_edit(inject, value="CIO", base_version=0, client_ref=2))
        seen = [next_message(other) for _ in range(2)]
        error = next(m for m in seen if m["type"] == "error")
        assert error["code"] == "conflict"
        assert error["client_ref"] == 2
        assert error["current"] == {"value": "CEO", "version": 1, "updated_by": "Hanako"}
        assert error["detail"]
        assert isinstance(error["seq"], int) and error["at"]
        # The socket stays usable: a write against the current version is accepted.
        other.send_json(_edit(inject, value="CEO と CIO", base_version=1, client_ref=3))
        while (message := next_message(other))["type"] != "ack":
            pass
        assert message == {**message, "client_ref": 3, "version": 2}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_message"),
        ('["edit"]', "bad_message"),
        ('{"type": "shout"}', "bad_message"),
        ('{"type": "edit", "inject_id": "x", "field": "press", "client_ref": "r"}', "invalid"),
        ('{"type": "resume", "after_seq": -1}', "invalid"),
        (
            '{"type": "edit", "inject_id": "x", "field": "press", "value": "\\ud800"}',
            "invalid_character",
        ),
    ],
)
def test_bad_messages_get_an_error_and_keep_the_socket(
    client: TestClient, raw: str, code: str
) -> None:
    _exercise, _red, writer, _mate, inject = _room(client)
    with participant_ws(client, writer) as ws:
        hello(ws)
        ws.send_text(raw)
        error = next_message(ws)
        assert error["type"] == "error"
        assert error["code"] == code
        assert error["detail"]
        ws.send_json(_edit(inject, value="ok", base_version=0, client_ref="after"))
        assert {next_message(ws)["type"], next_message(ws)["type"]} == {"ack", "response"}


@pytest.mark.parametrize("value", ["\ud800", "\uffff", "ok\U0010fffe"])
def test_an_edit_refused_for_its_characters_names_its_client_ref(
    client: TestClient, value: str
) -> None:
    # The browser settles a pending edit by its client_ref; without it the edit waits forever.
    _exercise, _red, writer, _mate, inject = _room(client)
    with participant_ws(client, writer) as ws:
        hello(ws)
        ws.send_text(json.dumps(_edit(inject, value=value, base_version=0, client_ref="bad")))
        error = next_message(ws)
        assert (error["type"], error["code"], error["client_ref"]) == (
            "error",
            "invalid_character",
            "bad",
        )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"field": "nonsense"}, "unknown_field"),
        ({"value": "x" * 5001}, "value_too_long"),
        ({"inject_id": "not-delivered"}, "inject_not_found"),
    ],
)
def test_refused_edits_say_why(client: TestClient, body: dict[str, Any], code: str) -> None:
    _exercise, _red, writer, _mate, inject = _room(client)
    with participant_ws(client, writer) as ws:
        hello(ws)
        ws.send_json({**_edit(inject, value="v", base_version=0, client_ref="z"), **body})
        error = next_message(ws)
        assert (error["type"], error["code"], error["client_ref"]) == ("error", code, "z")


def test_edit_while_paused_is_refused(client: TestClient) -> None:
    exercise, _red, writer, _mate, inject = _room(client)
    client.post(f"/api/exercises/{exercise.id}/pause", headers=exercise.headers)
    with participant_ws(client, writer) as ws:
        hello(ws)
        ws.send_json(_edit(inject, value="v", base_version=0))
        error = next_message(ws, skip=("presence", "status"))
        assert (error["type"], error["code"]) == ("error", "not_running")


def test_facilitator_edits_name_the_team(client: TestClient) -> None:
    exercise, red, writer, _mate, inject = _room(client)
    with facilitator_ws(client, exercise) as console, participant_ws(client, writer) as ws:
        hello(console)
        hello(ws)
        console.send_json(_edit(inject, value="v", base_version=0, client_ref="a"))
        assert next_message(console)["code"] == "team_required"
        console.send_json(_edit(inject, value="法務", base_version=0, team_id=red["id"]))
        response = next_message(ws)
        assert (response["type"], response["value"], response["updated_by"]) == (
            "response",
            "法務",
            "alice",
        )


def test_an_oversized_message_gets_an_error_then_close_1009(client: TestClient) -> None:
    _exercise, _red, writer, _mate, inject = _room(client)
    with participant_ws(client, writer) as ws:
        hello(ws)
        ws.send_json(_edit(inject, value="あ" * 30_000, base_version=0))
        error = next_message(ws)
        assert (error["type"], error["code"]) == ("error", "too_large")
        with pytest.raises(WebSocketDisconnect) as closed:
            next_message(ws)
        assert closed.value.code == 1009


def test_message_budget_waits_once_the_burst_is_spent() -> None:
    now = [0.0]
    budget = MessageBudget(rate_per_s=10, burst=3, clock=lambda: now[0])
    assert [budget.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take() == pytest.approx(0.1)  # one token short at 10/s
    now[0] += 0.1
    assert budget.take() == pytest.approx(0.1)  # the waited-for token was spent; again short
    now[0] += 10  # a quiet while refills only up to the burst
    assert [budget.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take() > 0


def test_a_flooding_socket_is_read_at_the_budget_pace_and_loses_nothing(
    client: TestClient,
) -> None:
    _exercise, _red, writer, _mate, _inject = _room(client)
    hub = client.app.state.hub  # type: ignore[attr-defined]
    hub.messages_per_s, hub.message_burst = 20.0, 5
    with participant_ws(client, writer) as ws:
        hello(ws)
        started = time.monotonic()
        for n in range(25):
            ws.send_text(f'{{"type": "shout", "n": {n}}}')
        errors = [next_message(ws) for _ in range(25)]
        elapsed = time.monotonic() - started
    assert [e["code"] for e in errors] == ["bad_message"] * 25  # every message answered
    # 5 at once, then 20 at 20/s: at least a second, however fast the machine.
    assert elapsed >= 0.9


def test_a_socket_that_keeps_flooding_is_closed_1008(client: TestClient) -> None:
    _exercise, _red, writer, _mate, _inject = _room(client)
    hub = client.app.state.hub  # type: ignore[attr-defined]
    # A message counts as throttled when the budget is still spent once the previous one has
    # been answered: at 20/s the server has 50 ms per message for that, which a busy machine
    # running the tests with coverage still has (at 200/s it once did not, and nothing closed).
    hub.messages_per_s, hub.message_burst, hub.flood_messages = 20.0, 2, 10
    sent = 40
    with participant_ws(client, writer) as ws:
        hello(ws)
        for n in range(sent):
            ws.send_text(f'{{"type": "shout", "n": {n}}}')
        codes = []
        with pytest.raises(WebSocketDisconnect) as closed:
            # Every message is answered until the close: no more answers than messages sent.
            for _ in range(sent):
                codes.append(next_message(ws)["code"])
            pytest.fail(f"the socket was not closed; it answered {codes}")
    assert closed.value.code == 1008
    assert codes[-1] == "too_many_messages"
    assert codes[:-1] == ["bad_message"] * (len(codes) - 1)
