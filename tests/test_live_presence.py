"""Presence: who is online in a team and which field they are in."""

import asyncio
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from app.live.broker import PresenceNote
from app.live.presence import PresenceBoard
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


class _Processes:
    """Two presence boards as two server processes would hold them, their notes carried by hand."""

    def __init__(self, refresh_s: float = 10.0) -> None:
        self.announced: dict[str, list[dict[str, Any]]] = {"one": [], "two": []}
        self.notes: list[tuple[str, PresenceNote]] = []
        self.boards = {
            name: PresenceBoard(
                announce=lambda _e, _t, body, name=name: self.announced[name].append(body),
                publish=lambda note, name=name: self.notes.append((name, note)),
                interval_s=0.0,
                refresh_s=refresh_s,
            )
            for name in ("one", "two")
        }

    async def settle(self) -> None:
        """Let batched announcements go out and carry every published note to the other board."""
        for _ in range(5):
            await asyncio.sleep(0.01)
            notes, self.notes = self.notes, []
            for sender, note in notes:
                for name, board in self.boards.items():
                    if name != sender:
                        board.merge_note(note)

    def seen_by(self, name: str, team_id: str) -> dict[str, dict[str, Any]]:
        view = self.boards[name].view(team_id)
        return {p["name"]: p for p in view["participants"]}


@pytest.mark.anyio
async def test_notes_carry_presence_between_processes() -> None:
    procs = _Processes()
    one, two = procs.boards["one"], procs.boards["two"]
    one.connect(exercise_id="ex", team_id="red", participant_id="p1", name="Hanako")
    two.connect(exercise_id="ex", team_id="red", participant_id="p2", name="Taro")
    await procs.settle()
    # Each process knows a teammate it never had a socket for, online, by name.
    assert procs.seen_by("one", "red")["Taro"]["online"] is True
    assert procs.seen_by("two", "red")["Hanako"]["online"] is True
    two.focus(team_id="red", participant_id="p2", inject_id="i1", field="cause")
    await procs.settle()
    assert procs.seen_by("one", "red")["Taro"] == {
        "id": "p2",
        "name": "Taro",
        "online": True,
        "field": "cause",
        "inject_id": "i1",
    }
    # The announcement to process one's sockets carried it too.
    assert any(
        {"id": "p2", "name": "Taro", "online": True, "field": "cause", "inject_id": "i1"}
        in body["participants"]
        for body in procs.announced["one"]
    )
    # The last socket on process two leaves, and the exercise with it: one hears of it at once.
    two.disconnect(team_id="red", participant_id="p2")
    two.forget_exercise("ex")
    await procs.settle()
    assert procs.seen_by("one", "red")["Taro"] == {"id": "p2", "name": "Taro", "online": False}
    one.close()
    two.close()


@pytest.mark.anyio
async def test_a_process_that_starts_following_asks_and_is_told() -> None:
    procs = _Processes()
    one, two = procs.boards["one"], procs.boards["two"]
    one.connect(exercise_id="ex", team_id="red", participant_id="p1", name="Hanako")
    await asyncio.sleep(0.02)
    procs.notes.clear()  # process two was not listening yet: the note never reached it
    assert procs.seen_by("two", "red") == {}
    two.ask("ex")
    await procs.settle()
    assert procs.seen_by("two", "red")["Hanako"]["online"] is True
    one.close()
    two.close()


@pytest.mark.anyio
async def test_a_silent_process_s_participants_go_offline_when_its_notes_expire() -> None:
    procs = _Processes(refresh_s=0.05)
    one, two = procs.boards["one"], procs.boards["two"]
    one.start()
    two.start()
    one.connect(exercise_id="ex", team_id="red", participant_id="p1", name="Hanako")
    two.connect(exercise_id="ex", team_id="red", participant_id="p2", name="Taro")
    await procs.settle()
    # Refreshed notes keep Taro online well past one note's lifetime (3 refreshes).
    for _ in range(6):
        await procs.settle()
        await asyncio.sleep(0.05)
    assert procs.seen_by("one", "red")["Taro"]["online"] is True
    two.close()  # process two dies: no more notes, no goodbye, and what it sent last is lost
    procs.boards.pop("two")
    procs.notes.clear()
    await asyncio.sleep(0.3)
    assert procs.seen_by("one", "red")["Taro"]["online"] is False
    assert procs.seen_by("one", "red")["Hanako"]["online"] is True
    one.close()


def test_a_note_survives_the_wire() -> None:
    note = PresenceNote(
        origin="o", exercise_id="ex", team_id="red", online={"p": ("花子", "i", None)}, ttl_s=30
    )
    assert PresenceNote.from_raw(json.loads(note.to_json())) == note
