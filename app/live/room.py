"""One exercise's sockets in this process, and the order their events are delivered in.

Batches of stored events reach a `Room` from the broker (`ingest`), in whatever order they
arrive: with several processes a batch often overtakes the one before it, and a bell may be
lost. The room keeps the last seq it delivered (`cursor`): a batch whose predecessor it has not
seen waits for it a moment (`GAP_WAIT_S`), then the room reads the missing events from the
database (`read_after`), so a lost or reordered doorbell never loses or reorders an event. Each
event is encoded once; every eligible socket gets the same text (and, when there are several,
the same frame).

The room knows nothing of sockets beyond `Subscriber.offer` and `send`, nor of the database
beyond the function it is given: tests drive it with stand-ins for both.
"""

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from app.eventlog.wire import Envelope
from app.live import protocol
from app.live.broker import Batch
from app.live.frames import text_frame
from app.live.service import REPLAY_PAGE
from app.live.subscriber import Close, Subscriber

log = logging.getLogger(__name__)

# How long batches wait for a missing predecessor before the database is read for it.
GAP_WAIT_S = 0.05


class Room:
    """The sockets of one exercise in this process and the last seq delivered to them."""

    def __init__(
        self,
        exercise_id: str,
        *,
        read_after: Callable[[str, int], Awaitable[list[Envelope]]],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        on_participant_removed: Callable[[str, str], None],
    ) -> None:
        self.exercise_id = exercise_id
        # The last seq delivered; None while the room is entered and its newest seq is read.
        self.cursor: int | None = None
        self.facilitators: set[Subscriber] = set()
        self.teams: dict[str, set[Subscriber]] = {}
        # Batches not delivered yet: those arriving during a catch-up, and those after a gap.
        self.backlog: deque[Batch] = deque()
        self.catching_up = False
        # Set while the backlog waits for a missing batch; when it fires, the database is read.
        self.gap_timer: asyncio.TimerHandle | None = None
        # Set when the hub lets go of the room (its last socket left).
        self.closed = False
        # Reads a page of the exercise's stored events after a seq, encoded.
        self._read_after = read_after
        self._spawn = spawn
        # Told (team_id, participant_id) of a removed participant, after their sockets are closed.
        self._on_participant_removed = on_participant_removed

    # -- members ---------------------------------------------------------------------------

    def add(self, sub: Subscriber) -> None:
        team_id = sub.audience.team_id
        if team_id is None:
            self.facilitators.add(sub)
        else:
            self.teams.setdefault(team_id, set()).add(sub)

    def discard(self, sub: Subscriber) -> None:
        team_id = sub.audience.team_id
        if team_id is None:
            self.facilitators.discard(sub)
            return
        members = self.teams.get(team_id)
        if members is not None:
            members.discard(sub)
            if not members:
                del self.teams[team_id]

    def __bool__(self) -> bool:
        return bool(self.facilitators or self.teams)

    def audience_of(self, envelope: Envelope) -> Iterable[Subscriber]:
        # Participants first: they are the ones waiting, and the facilitator whose click it was
        # would otherwise be woken (and take CPU) while the teams' frames are still being written.
        if envelope.team_ids is None:
            for members in self.teams.values():
                yield from members
        else:
            for team_id in envelope.team_ids:
                yield from self.teams.get(team_id, ())
        yield from self.facilitators

    def everyone(self) -> list[Subscriber]:
        return [*self.facilitators, *(s for members in self.teams.values() for s in members)]

    def close(self) -> None:
        """The hub let go of the room: no gap wait fires for it any more."""
        self.closed = True
        self.stop_waiting()

    # -- sequencing ------------------------------------------------------------------------

    def ingest(self, batch: Batch) -> None:
        """A batch from the broker, in whatever order it came."""
        self.backlog.append(batch)
        self.drain()

    def start(self, cursor: int) -> None:
        """The room's newest seq was read: deliver what waited in the backlog meanwhile."""
        self.cursor = cursor
        self.drain()

    def take_next(self, cursor: int) -> Batch | None:
        """Remove and return the first batch that does not follow a gap after `cursor`.

        A batch follows a gap when its first event is new and its predecessor is too. A resync
        (no predecessor) is taken as it comes; the caller catches up for it.
        """
        for batch in self.backlog:
            first = batch.events[0].seq if batch.events else 0
            if not (first > cursor and (batch.prev_seq or 0) > cursor):
                self.backlog.remove(batch)
                return batch
        return None

    def drain(self) -> None:
        """Deliver the backlog's batches that follow on from the cursor, in order."""
        if self.cursor is None:
            return  # the room is being entered: its batches wait until its cursor is read
        progressed = False
        while not self.catching_up and (batch := self.take_next(self.cursor)) is not None:
            if batch.prev_seq is None:
                self._start_catch_up()
                return
            fresh = [e for e in batch.events if e.seq > self.cursor]
            for envelope in fresh:
                self.deliver(envelope)
            if fresh:
                self.cursor = fresh[-1].seq
                progressed = True
        # (A catch-up stopped the wait when it started.)
        if progressed or not self.backlog:
            self.stop_waiting()
        if self.backlog and not self.catching_up and self.gap_timer is None:
            # Every batch left follows a gap. The missing one is nearly always on its way: this
            # process's own commit, or another process's through the broker, overtaken by a
            # later one (on a busy machine, often). Reading the database for it at once would
            # cost a query and hold up the room for longer than the wait usually lasts.
            self.gap_timer = asyncio.get_running_loop().call_later(GAP_WAIT_S, self._gap_expired)

    def stop_waiting(self) -> None:
        if self.gap_timer is not None:
            self.gap_timer.cancel()
            self.gap_timer = None

    def _gap_expired(self) -> None:
        self.gap_timer = None
        if not self.closed and self.backlog and not self.catching_up:
            self._start_catch_up()

    def _start_catch_up(self) -> None:
        self.stop_waiting()
        self.catching_up = True
        self._spawn(self._catch_up())

    async def _catch_up(self) -> None:
        """Deliver from the database whatever the broker did not bring, in order."""
        try:
            while self.cursor is not None:
                page = await self._read_after(self.exercise_id, self.cursor)
                for envelope in page:
                    self.deliver(envelope)
                    self.cursor = envelope.seq
                if len(page) < REPLAY_PAGE:
                    break
        except Exception:
            log.exception("catching up exercise %s from the database failed", self.exercise_id)
        finally:
            self.catching_up = False
        self.drain()

    # -- delivery --------------------------------------------------------------------------

    def deliver(self, envelope: Envelope) -> None:
        # A copy: a subscriber too slow for this event leaves the room while we go round it.
        audience = list(self.audience_of(envelope))
        frame = text_frame(envelope.text) if len(audience) > 1 else None
        for sub in audience:
            sub.offer(envelope, frame)
        if envelope.type == "participant_removed":
            self._remove_participant(json.loads(envelope.text))

    def _remove_participant(self, event: dict[str, Any]) -> None:
        """Close a removed participant's sockets (after the event itself); tell the hub."""
        team_id, participant_id = event["team_id"], event["participant_id"]
        for sub in list(self.teams.get(team_id, ())):
            if sub.audience.participant_id == participant_id:
                sub.send(Close(protocol.CLOSE_FORBIDDEN))
        self._on_participant_removed(team_id, participant_id)
