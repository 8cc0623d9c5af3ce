"""A Room puts one exercise's batches in order and offers each event to the right sockets.

Driven here without any socket or database: members record what they are offered and sent,
and the room's catch-up reads from a list of "stored" envelopes.
"""

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest

from app.live import protocol
from app.live import room as room_module
from app.live.broker import Batch, Envelope
from app.live.room import Room
from app.live.subscriber import Audience, Close, Subscriber

EXERCISE = "ex-1"


class Member:
    """Stands in for a Subscriber: records what the room hands it."""

    def __init__(self, name: str, *, team_id: str | None = None, participant_id: str = "") -> None:
        self.audience = Audience(
            exercise_id=EXERCISE,
            name=name,
            rate_key=name,
            team_id=team_id,
            participant_id=participant_id or None,
        )
        self.offered: list[tuple[int, bytes | None]] = []
        self.sent: list[Any] = []
        self.log: list[str] | None = None  # shared by members to record the order of offers

    def offer(self, envelope: Envelope, frame: bytes | None = None) -> None:
        self.offered.append((envelope.seq, frame))
        if self.log is not None:
            self.log.append(self.audience.name)

    def send(self, item: Any, frame: bytes | None = None) -> None:
        self.sent.append(item)

    @property
    def seqs(self) -> list[int]:
        return [seq for seq, _ in self.offered]


def envelope(
    seq: int, *, team_ids: tuple[str, ...] | None = None, type: str = "message"
) -> Envelope:
    return Envelope(seq, team_ids, json.dumps({"type": type, "seq": seq}), type)


def batch(prev_seq: int | None, *seqs: int) -> Batch:
    return Batch(EXERCISE, prev_seq=prev_seq, events=tuple(envelope(seq) for seq in seqs))


class Harness:
    """A room with a "database" of stored envelopes and a record of its reads."""

    def __init__(self, stored: list[Envelope] | None = None) -> None:
        self.stored = stored or []
        self.reads: list[int] = []
        self.removed: list[tuple[str, str]] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.room = Room(
            EXERCISE,
            read_after=self.read_after,
            spawn=self.spawn,
            on_participant_removed=lambda team, participant: self.removed.append(
                (team, participant)
            ),
        )

    async def read_after(self, exercise_id: str, after_seq: int) -> list[Envelope]:
        assert exercise_id == EXERCISE
        self.reads.append(after_seq)
        return [e for e in self.stored if e.seq > after_seq]

    def spawn(self, coro: Any) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    def join(self, *members: Member) -> None:
        for member in members:
            self.room.add(cast(Subscriber, member))

    async def settle(self) -> None:
        """Let spawned catch-ups finish."""
        while pending := [task for task in self.tasks if not task.done()]:
            await asyncio.wait(pending)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_batches_in_order_are_delivered_once_each_and_move_the_cursor() -> None:
    async def scenario() -> None:
        h = Harness()
        member = Member("Hanako", team_id="t1")
        h.join(member)
        h.room.start(3)
        h.room.ingest(batch(3, 4, 5))
        h.room.ingest(batch(5, 6))
        h.room.ingest(batch(3, 4, 5))  # a duplicate (a network broker's echo)
        assert member.seqs == [4, 5, 6]
        assert h.room.cursor == 6
        assert h.reads == [] and h.room.gap_timer is None

    run(scenario)


def test_batches_that_came_while_the_room_was_entered_wait_for_its_cursor() -> None:
    async def scenario() -> None:
        h = Harness()
        member = Member("Hanako", team_id="t1")
        h.join(member)
        h.room.ingest(batch(1, 2))  # already in the newest seq read for the room
        h.room.ingest(batch(2, 3))
        assert member.seqs == []
        h.room.start(2)
        assert member.seqs == [3]

    run(scenario)


def test_a_batch_that_overtook_its_predecessor_waits_for_it_without_reading() -> None:
    async def scenario() -> None:
        h = Harness()
        member = Member("Hanako", team_id="t1")
        h.join(member)
        h.room.start(0)
        h.room.ingest(batch(2, 3))
        h.room.ingest(batch(1, 2))
        assert member.seqs == []
        assert h.room.gap_timer is not None
        h.room.ingest(batch(0, 1))
        assert member.seqs == [1, 2, 3]
        assert h.room.gap_timer is None
        await asyncio.sleep(room_module.GAP_WAIT_S * 2)
        assert h.reads == []

    run(scenario)


def test_a_gap_never_filled_is_read_from_the_database_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(room_module, "GAP_WAIT_S", 0.01)

    async def scenario() -> None:
        h = Harness(stored=[envelope(1), envelope(2), envelope(3)])
        member = Member("Hanako", team_id="t1")
        h.join(member)
        h.room.start(0)
        h.room.ingest(batch(2, 3))
        await asyncio.sleep(0.05)
        await h.settle()
        assert h.reads == [0]
        assert member.seqs == [1, 2, 3]
        # The lost batch turns up late: nothing is delivered twice.
        h.room.ingest(batch(0, 1))
        h.room.ingest(batch(1, 2))
        assert member.seqs == [1, 2, 3]
        assert not h.room.backlog and h.room.gap_timer is None

    run(scenario)


def test_a_resync_reads_the_database_at_once_and_later_batches_wait_for_it() -> None:
    async def scenario() -> None:
        h = Harness(stored=[envelope(1), envelope(2)])
        member = Member("Hanako", team_id="t1")
        h.join(member)
        h.room.start(0)
        h.room.ingest(Batch.resync(EXERCISE))
        assert h.room.catching_up
        h.room.ingest(batch(2, 3))  # arrives during the catch-up: waits in the backlog
        await h.settle()
        assert h.reads == [0]
        assert member.seqs == [1, 2, 3]
        assert not h.room.catching_up

    run(scenario)


def test_a_room_closed_during_a_catch_up_does_not_read_when_its_wait_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(room_module, "GAP_WAIT_S", 0.01)

    async def scenario() -> None:
        h = Harness(stored=[envelope(1)])
        h.join(Member("Hanako", team_id="t1"))
        h.room.start(0)
        h.room.ingest(Batch.resync(EXERCISE))
        h.room.ingest(batch(5, 6))  # follows a gap even after the catch-up
        h.room.close()  # the last socket left while the database was read
        await h.settle()
        await asyncio.sleep(0.05)
        assert h.reads == [0]

    run(scenario)


def test_an_event_reaches_its_teams_participants_first_then_the_facilitators() -> None:
    async def scenario() -> None:
        h = Harness()
        order: list[str] = []
        facilitator = Member("Facilitator")
        red = [Member("Red 1", team_id="red"), Member("Red 2", team_id="red")]
        blue = Member("Blue 1", team_id="blue")
        for member in (facilitator, *red, blue):
            member.log = order
        h.join(facilitator, *red, blue)
        h.room.start(0)
        h.room.ingest(
            Batch(EXERCISE, prev_seq=0, events=(envelope(1, team_ids=("red",)), envelope(2)))
        )
        # Event 1 (red only): both of red, then the facilitator; event 2: every team, then them.
        assert set(order[:2]) == {"Red 1", "Red 2"} and order[2] == "Facilitator"
        assert set(order[3:6]) == {"Red 1", "Red 2", "Blue 1"} and order[6:] == ["Facilitator"]
        assert blue.seqs == [2]
        assert red[0].seqs == red[1].seqs == facilitator.seqs == [1, 2]
        # Several recipients share one frame, made once.
        frames = {
            frame for member in (facilitator, *red) for seq, frame in member.offered if seq == 1
        }
        assert len(frames) == 1 and None not in frames

    run(scenario)


def test_a_lone_recipient_gets_no_prebuilt_frame() -> None:
    async def scenario() -> None:
        h = Harness()
        member = Member("Hanako", team_id="t1")
        h.join(member)
        h.room.start(0)
        h.room.ingest(batch(0, 1))
        assert member.offered == [(1, None)]

    run(scenario)


def test_a_removed_participants_sockets_are_closed_after_the_event() -> None:
    async def scenario() -> None:
        h = Harness()
        gone = [Member("Taro", team_id="t1", participant_id="p1") for _ in range(2)]
        stays = Member("Hanako", team_id="t1", participant_id="p2")
        h.join(*gone, stays)
        h.room.start(0)
        removal = Envelope(
            1,
            None,
            json.dumps({"type": "participant_removed", "team_id": "t1", "participant_id": "p1"}),
            "participant_removed",
        )
        h.room.ingest(Batch(EXERCISE, prev_seq=0, events=(removal,)))
        for member in gone:
            assert member.seqs == [1]  # the event itself first
            assert member.sent == [Close(protocol.CLOSE_FORBIDDEN)]
        assert stays.seqs == [1] and stays.sent == []
        assert h.removed == [("t1", "p1")]

    run(scenario)


def test_members_leave_and_an_empty_room_is_false() -> None:
    h = Harness()
    facilitator, member = Member("Facilitator"), Member("Hanako", team_id="t1")
    h.join(facilitator, member)
    assert h.room and len(h.room.everyone()) == 2
    h.room.discard(cast(Subscriber, member))
    assert h.room.teams == {}
    h.room.discard(cast(Subscriber, facilitator))
    assert not h.room
