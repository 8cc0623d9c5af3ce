"""A bell that comes out of order: the hub waits for the missing batch before reading the database.

With several server processes a batch often overtakes the one before it (the other process's,
through Redis, or this process's own commit). The events here are stored without ringing the
bell, then rung by hand, in the order a test chooses; the bell's copy of each event says so in
its text, so a socket shows where each event it received came from.
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.eventlog import service as events
from app.eventlog import wire
from app.eventlog.wire import Envelope
from app.live import hub as hub_module
from app.live.broker import Batch
from app.live.hub import Hub
from tests.factories import Exercise, join, make_exercise
from tests.test_live_ws import hello, next_message, participant_ws


def _store_quietly(client: TestClient, exercise: Exercise, texts: list[str]) -> list[Batch]:
    """Store one message event per text, committed without the bell; the batches it would ring."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    batches = []
    for text in texts:
        with Session(engine) as session:
            previous = events.last_seq(session, exercise_id=exercise.id)
            event = events.record(
                session, exercise_id=exercise.id, type="message", payload={"text": text}
            )
            session.commit()
        assert event.seq is not None
        # What the bell carries for it, marked: the database's copy lacks the mark.
        text = json.dumps({**wire.message(event), "via": "bell"})
        batches.append(
            Batch(exercise.id, prev_seq=previous, events=(Envelope(event.seq, None, text),))
        )
    return batches


def _ring(client: TestClient, batch: Batch) -> None:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    client.portal.call(hub._ingest, batch)  # type: ignore[union-attr]


def _messages(ws: Any, count: int) -> list[dict[str, Any]]:
    return [next_message(ws) for _ in range(count)]


@contextmanager
def _watching(client: TestClient) -> Iterator[tuple[Exercise, Any]]:
    """A new exercise and a participant's socket on it, past its hello."""
    exercise = make_exercise(client)
    member = join(client, exercise.team(0)["join_code"], "Hanako")
    with participant_ws(client, member) as ws:
        hello(ws)
        yield exercise, ws


def test_a_batch_that_overtook_its_predecessor_waits_for_it(client: TestClient) -> None:
    with _watching(client) as (exercise, ws):
        first, second, third = _store_quietly(client, exercise, ["one", "two", "three"])
        _ring(client, third)
        _ring(client, second)
        _ring(client, first)
        received = _messages(ws, 3)
    assert [m["text"] for m in received] == ["one", "two", "three"]
    # Each came from the bell: the hub waited instead of reading the database.
    assert [m.get("via") for m in received] == ["bell", "bell", "bell"]


def test_a_batch_that_never_comes_is_read_from_the_database_after_the_wait(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "GAP_WAIT_S", 0.3)
    with _watching(client) as (exercise, ws):
        lost, later = _store_quietly(client, exercise, ["lost", "later"])
        rung = time.monotonic()
        _ring(client, later)
        received = _messages(ws, 2)
        waited_s = time.monotonic() - rung
    assert [m["text"] for m in received] == ["lost", "later"]
    assert "via" not in received[0], "the lost event can only have come from the database"
    assert received[0]["seq"] == lost.events[0].seq
    assert waited_s >= 0.3, "the database was read before the missing batch had its chance"


def test_a_resync_reads_the_database_at_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broker that may have lost messages asks for a catch-up: no reason to wait for anything.
    monkeypatch.setattr(hub_module, "GAP_WAIT_S", 10.0)
    with _watching(client) as (exercise, ws):
        _store_quietly(client, exercise, ["missed", "also missed"])
        rung = time.monotonic()
        _ring(client, Batch.resync(exercise.id))
        received = _messages(ws, 2)
        waited_s = time.monotonic() - rung
    assert [m["text"] for m in received] == ["missed", "also missed"]
    assert all("via" not in m for m in received)
    assert waited_s < 10.0, "a resync waited as if for a missing batch"


def test_a_late_predecessor_after_the_catch_up_is_not_delivered_twice(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "GAP_WAIT_S", 0.05)
    with _watching(client) as (exercise, ws):
        late, later = _store_quietly(client, exercise, ["late", "later"])
        _ring(client, later)
        received = _messages(ws, 2)
        # It does come in the end (a slow broker): the room is past it already.
        _ring(client, late)
        (marker,) = _store_quietly(client, exercise, ["marker"])
        _ring(client, marker)
        received += _messages(ws, 1)
    assert [m["text"] for m in received] == ["late", "later", "marker"]
