"""Presence: who is online in a team and which field they are in."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.factories import join, make_exercise, push
from tests.test_live_ws import facilitator_ws, hello, participant_ws


def _presence_until(ws: WebSocketTestSession, wanted: Any) -> dict[str, Any]:
    """Presence messages until one satisfies `wanted` (updates are batched, so some may merge)."""
    while True:
        message = ws.receive_json()
        if message["type"] == "presence" and wanted(message):
            return message


def _member(message: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in message["participants"] if p["name"] == name)


def test_focus_and_disconnect_reach_teammates_and_the_facilitator(client: TestClient) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    hanako = join(client, red["join_code"], "Hanako")
    taro = join(client, red["join_code"], "Taro")
    inject = push(client, exercise)
    with participant_ws(client, taro) as mate, facilitator_ws(client, exercise) as console:
        hello(mate)
        hello(console)
        with participant_ws(client, hanako) as ws:
            hello(ws)
            for watcher in (mate, console):
                online = _presence_until(watcher, lambda m: _member(m, "Hanako")["online"])
                assert online["team_id"] == red["id"]
                assert _member(online, "Taro")["online"] is True
            ws.send_json({"type": "focus", "inject_id": inject["id"], "field": "legal"})
            for watcher in (mate, console):
                focused = _presence_until(watcher, lambda m: "field" in _member(m, "Hanako"))
                assert _member(focused, "Hanako") == {
                    "id": hanako["participant_id"],
                    "name": "Hanako",
                    "online": True,
                    "field": "legal",
                    "inject_id": inject["id"],
                }
                assert isinstance(focused["seq"], int) and focused["at"]
        for watcher in (mate, console):
            gone = _presence_until(watcher, lambda m: not _member(m, "Hanako")["online"])
            assert "field" not in _member(gone, "Hanako")
            assert _member(gone, "Taro")["online"] is True


def test_a_second_socket_of_the_same_participant_keeps_them_online(client: TestClient) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    hanako = join(client, red["join_code"], "Hanako")
    with facilitator_ws(client, exercise) as console:
        assert not _member(hello(console)["snapshot"]["presence"][0], "Hanako")["online"]
        with participant_ws(client, hanako) as first:
            hello(first)
            _presence_until(console, lambda m: _member(m, "Hanako")["online"])
            with participant_ws(client, hanako) as second:
                hello(second)
            # Closing one of two tabs changes nothing; the focus from the first shows online.
            first.send_json({"type": "focus", "inject_id": "i", "field": "press"})
            shown = _presence_until(console, lambda m: "field" in _member(m, "Hanako"))
            assert _member(shown, "Hanako")["online"] is True


def test_a_removed_participant_is_told_closed_4403_and_leaves_the_list(
    client: TestClient,
) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    hanako = join(client, red["join_code"], "Hanako")
    taro = join(client, red["join_code"], "Taro")
    with participant_ws(client, taro) as mate:
        hello(mate)
        with participant_ws(client, hanako) as ws:
            hello(ws)
            _presence_until(mate, lambda m: _member(m, "Hanako")["online"])
            removed = client.delete(
                f"/api/exercises/{exercise.id}/participants/{hanako['participant_id']}",
                headers=exercise.headers,
            )
            assert removed.status_code == 204
            while (message := ws.receive_json())["type"] != "participant_removed":
                pass
            assert message["participant_id"] == hanako["participant_id"]
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    ws.receive_json()
            assert closed.value.code == 4403
        gone = _presence_until(
            mate, lambda m: all(p["name"] != "Hanako" for p in m["participants"])
        )
        assert [p["name"] for p in gone["participants"]] == ["Taro"]
