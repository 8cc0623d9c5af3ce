"""The hub: fans stored events out to sockets, each with a bounded queue for what must wait.

Events reach the hub from `on_events`, which the database session calls after each commit
(in whatever thread committed); the hub hands them to the event loop and publishes them
through the broker. Per exercise with local sockets, a `Room` keeps the last seq it
delivered: a batch whose predecessor it has not seen waits for it a moment (`GAP_WAIT_S`: with
several processes, a batch often overtakes the one before it), then makes the hub read the
missing events from the database, so a lost or reordered doorbell never loses or reorders an event.
Each event is encoded once; every eligible socket gets the same text, written to it on the spot
when nothing is waiting before it, else queued for a writer task that lives only while the queue
has items. A socket whose queue is full is closed with 4408 (its client reconnects and resumes)
and delays no one.
"""

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.auth import service as auth
from app.auth.ratelimit import EditRateLimiter, MessageBudget
from app.db import reading, utcnow
from app.errors import DomainError, Unauthorized
from app.eventlog import service as events
from app.eventlog import wire
from app.eventlog.models import Event
from app.eventlog.wire import Envelope
from app.exercises import service as exercises
from app.live import protocol
from app.live import service as live
from app.live.batcher import EditBatcher
from app.live.broker import Batch, Broker, MemoryBroker, batches_of
from app.live.frames import DirectWriter, text_frame
from app.live.presence import PresenceBoard
from app.responses import service as responses
from app.responses.service import CellEdit

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_QUEUE_SIZE = 512
# While a snapshot or replay is read, live events wait in a side buffer this many times the queue.
BUFFER_FACTOR = 8
CLOSE_TIMEOUT_S = 5.0
DB_THREADS = 8
SOCKET_MESSAGES_PER_S = 50.0
SOCKET_MESSAGE_BURST = 100
# Throttled messages in a row (10 s at the budget's pace) after which a socket is closed.
FLOOD_MESSAGES = 500
# How often facilitator sockets' logins are checked again: a logout in another server process
# (or an expiry) closes them within this time; a logout in this process closes them at once.
REVALIDATE_S = 15.0
# How long batches wait for a missing predecessor before the database is read for it.
GAP_WAIT_S = 0.05
SEND_ERRORS = (WebSocketDisconnect, RuntimeError, OSError)


@dataclass(frozen=True)
class Audience:
    """Who a socket belongs to: a participant of one team, or the exercise's facilitator."""

    exercise_id: str
    name: str
    # Whose edit budget this socket's edits spend (the same as over REST).
    rate_key: str
    team_id: str | None = None
    participant_id: str | None = None
    # A facilitator's login token, checked again with each inject sent over the socket.
    credential: str | None = None


@dataclass(frozen=True)
class _Replay:
    after_seq: int


@dataclass(frozen=True)
class _Close:
    code: int


@dataclass(frozen=True)
class _Unfinished:
    """A send started directly (see Subscriber.send) that had to wait: the writer finishes it."""

    coroutine: Coroutine[Any, Any, None]
    awaiting: Any


_Outgoing = str | _Replay | _Close | _Unfinished


async def _finish(coroutine: Coroutine[Any, Any, None], awaiting: Any) -> None:
    """Run a started coroutine to its end, stepping it as an asyncio Task would."""
    try:
        while True:
            if awaiting is None:
                await asyncio.sleep(0)  # a bare yield: it only gave the loop a turn
            else:
                # Wait for it to finish without taking its result: the coroutine does that.
                await asyncio.wait([awaiting])
            try:
                awaiting = coroutine.send(None)
            except StopIteration:
                return
    except BaseException:
        coroutine.close()
        raise


class Subscriber:
    """One socket: its queue, its writer task, and how far its event stream has got."""

    # One per connected participant: slots keep each a few hundred bytes smaller.
    __slots__ = (
        "audience",
        "buffer",
        "closed",
        "delivered_from",
        "direct",
        "edit_limiter",
        "hub",
        "pending",
        "sent_seq",
        "started",
        "websocket",
        "writer",
    )

    def __init__(
        self,
        hub: "Hub",
        websocket: WebSocket,
        audience: Audience,
        edit_limiter: EditRateLimiter | None = None,
    ) -> None:
        self.hub = hub
        self.websocket = websocket
        self.audience = audience
        self.edit_limiter = edit_limiter
        # What waits to be sent, in order; made only when something has to wait (most sockets
        # never need it, and 500 of them add up).
        self.pending: deque[_Outgoing] | None = None
        # Highest event seq handed to the writer; (delivered_from, sent_seq] reached the client.
        self.sent_seq = 0
        self.delivered_from = 0
        # Live events held while the hello snapshot or a replay is read from the database.
        self.buffer: list[Envelope] | None = []
        self.started = False
        self.closed = False
        # Runs only while the queue has items; with none, a message goes out directly.
        self.writer: asyncio.Task[None] | None = None
        self.direct = DirectWriter.of(websocket.scope)
        if self.direct is not None:
            self.direct.forget_handshake()

    def offer(self, envelope: Envelope, frame: bytes | None = None) -> None:
        """Send or queue a live event unless this socket already has it (`frame`: its bytes)."""
        if self.closed or envelope.seq <= self.sent_seq:
            return
        if self.buffer is not None:
            if len(self.buffer) >= self.hub.queue_size * BUFFER_FACTOR:
                self.kill(protocol.CLOSE_TOO_SLOW)
                return
            self.buffer.append(envelope)
            return
        self.sent_seq = envelope.seq
        self.send(envelope.text, frame)

    def send(self, item: _Outgoing, frame: bytes | None = None) -> None:
        """Send a text now, or queue it (or a command) behind what waits; `frame`: the text's
        frame, when it was made once for many sockets."""
        if self.closed:
            return
        if isinstance(item, str) and self.writer is None and not self.pending:
            self._send_now(item, frame)
            return
        self._enqueue(item)

    def _enqueue(self, item: _Outgoing) -> None:
        if self.pending is None:
            self.pending = deque()
        if len(self.pending) >= self.hub.queue_size:
            self.kill(protocol.CLOSE_TOO_SLOW)
            return
        self.pending.append(item)
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self.write())

    def _send_now(self, text: str, frame: bytes | None = None) -> None:
        """Send on the spot when nothing is waiting: no task switch per recipient.

        With uvicorn's protocol the frame goes straight to the transport (an edit's `ack` is one
        such message per edit; the ASGI send chain cost more than the rest of its delivery).
        Otherwise: a websocket send only waits when the transport is paused (the client reads
        slowly); until then it runs straight through, so stepping its coroutine once usually
        finishes it. When it does wait, the writer task finishes it before anything queued
        after it.
        """
        if self.direct is not None and self.direct.write(frame or text_frame(text)):
            return
        coroutine = self.websocket.send_text(text)
        try:
            awaiting = coroutine.send(None)
        except StopIteration:
            return
        except SEND_ERRORS:
            self.closed = True  # the client went away; the reader sees the disconnect
            return
        if awaiting is not None:
            # What a Task does with a future its coroutine yields: take the "blocking" mark off,
            # or awaiting the same future again later would fail.
            awaiting._asyncio_future_blocking = False
        self._enqueue(_Unfinished(coroutine, awaiting))

    def release(self, *, upto: int) -> None:
        """End buffering: everything up to `upto` is on its way; queue the rest of the buffer."""
        buffered, self.buffer = self.buffer or [], None
        self.sent_seq = max(self.sent_seq, upto)
        for envelope in buffered:
            self.offer(envelope)

    def kill(self, code: int) -> None:
        """Close now, without waiting for the queue: for a client too slow to keep up, or shutdown."""
        if self.closed:
            return
        self.closed = True
        self.hub.leave(self)
        if self.writer is not None:
            self.writer.cancel()
        self.hub.spawn(self._close(code))

    async def _close(self, code: int) -> None:
        # A frozen client never drains its socket; do not wait for it forever.
        with contextlib.suppress(*SEND_ERRORS, TimeoutError):
            await asyncio.wait_for(self.websocket.close(code), CLOSE_TIMEOUT_S)

    async def write(self) -> None:
        """Sends the queued items in order (a replay inline, with back-pressure), then ends."""
        try:
            while self.pending:
                item = self.pending.popleft()
                if isinstance(item, str):
                    await self.websocket.send_text(item)
                elif isinstance(item, _Unfinished):
                    await _finish(item.coroutine, item.awaiting)
                elif isinstance(item, _Replay):
                    await self._replay(item.after_seq)
                else:
                    self.closed = True
                    self.hub.leave(self)
                    await self._close(item.code)
                    return
        except SEND_ERRORS:
            # The client went away; the reader sees the disconnect and cleans up.
            self.closed = True
        finally:
            self.writer = None
            if not self.pending:
                self.pending = None

    async def _replay(self, after_seq: int) -> None:
        if after_seq >= self.delivered_from:
            # Everything after it reached this socket live (or waits in its queue): no query.
            # A reconnect storm sends one resume per client; most end here.
            self.release(upto=self.sent_seq)
            return
        cursor = after_seq
        # Only seqs read from the database count: a client claiming a future seq skips nothing live.
        seen = self.sent_seq
        already = range(self.delivered_from + 1, self.sent_seq + 1)
        while True:
            page = await self.hub.read(
                live.events_after,
                exercise_id=self.audience.exercise_id,
                after_seq=cursor,
                limit=live.REPLAY_PAGE,
            )
            for event in page:
                assert event.seq is not None
                cursor = event.seq
                seen = max(seen, cursor)
                if event.seq in already or not self.may_see(event):
                    continue
                await self.websocket.send_text(Envelope.of(event).text)
            if len(page) < live.REPLAY_PAGE:
                break
        self.delivered_from = min(self.delivered_from, after_seq)
        self.release(upto=seen)

    def may_see(self, event: Event) -> bool:
        team_id = self.audience.team_id
        return team_id is None or wire.visible_to_team(event, team_id)


class Room:
    """The sockets of one exercise in this process and the last seq delivered to them."""

    def __init__(self, exercise_id: str) -> None:
        self.exercise_id = exercise_id
        self.cursor: int | None = None
        self.facilitators: set[Subscriber] = set()
        self.teams: dict[str, set[Subscriber]] = {}
        # Batches not delivered yet: those arriving during a catch-up, and those after a gap.
        self.backlog: deque[Batch] = deque()
        self.catching_up = False
        # Set while the backlog waits for a missing batch; when it fires, the database is read.
        self.gap_timer: asyncio.TimerHandle | None = None

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

    def stop_waiting(self) -> None:
        if self.gap_timer is not None:
            self.gap_timer.cancel()
            self.gap_timer = None

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


class Hub:
    """Every live socket of this process; started and stopped with the app."""

    def __init__(
        self, *, engine: Engine, broker: Broker | None = None, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        self.engine = engine
        self.broker: Broker = broker or MemoryBroker()
        self.queue_size = queue_size
        self.rooms: dict[str, Room] = {}
        self.presence = PresenceBoard(
            announce=self._announce_presence, publish=self.broker.publish_presence
        )
        self.edits = EditBatcher(self._write_edits)
        self._db_threads: CapacityLimiter | None = None
        # Messages read per socket: far above a person typing (edits are limited to 20/s
        # anyway), far below a script flooding the server.
        self.messages_per_s = SOCKET_MESSAGES_PER_S
        self.message_burst = SOCKET_MESSAGE_BURST
        self.flood_messages = FLOOD_MESSAGES
        # The latest hello snapshot read per (exercise, team or None for facilitators).
        self._snapshots: dict[tuple[str, str | None], asyncio.Task[live.Snapshot]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._revalidator: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # A few threads for the sockets' database work: more only fight over the GIL (and each
        # holds a pooled connection with its page cache), as 500 sockets coming back at once did.
        self._db_threads = CapacityLimiter(DB_THREADS)
        self.edits.start()
        self.presence.start()
        self._revalidator = self._loop.create_task(self._revalidate_forever())
        await self.broker.start(self._ingest, self.presence.merge_note)

    async def stop(self) -> None:
        """Close every socket with 1012 (server restart): clients reconnect and resume."""
        for room in list(self.rooms.values()):
            for sub in room.everyone():
                sub.kill(protocol.CLOSE_RESTART)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=CLOSE_TIMEOUT_S)
        self.presence.close()
        if self._revalidator is not None:
            self._revalidator.cancel()
            self._revalidator = None
        await self.edits.stop()
        await self.broker.stop()
        self._loop = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the doorbell ----------------------------------------------------------------------

    def on_events(self, committed: list[Event]) -> None:
        """Called after a commit, in the committing thread: encode there, deliver on the loop."""
        loop = self._loop
        if loop is None:
            return
        batches = batches_of(committed)
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(self._publish, batches)

    def _publish(self, batches: list[Batch]) -> None:
        for batch in batches:
            self.broker.publish(batch)

    def _ingest(self, batch: Batch) -> None:
        room = self.rooms.get(batch.exercise_id)
        if room is None:
            return
        room.backlog.append(batch)
        self._drain(room)

    def _drain(self, room: Room) -> None:
        if room.cursor is None:
            return  # the room is being entered: its batches wait until its cursor is read
        progressed = False
        while not room.catching_up and (batch := room.take_next(room.cursor)) is not None:
            if batch.prev_seq is None:
                self._start_catch_up(room)
                return
            fresh = [e for e in batch.events if e.seq > room.cursor]
            for envelope in fresh:
                self._deliver(room, envelope)
            if fresh:
                room.cursor = fresh[-1].seq
                progressed = True
        # (A catch-up stopped the wait when it started.)
        if progressed or not room.backlog:
            room.stop_waiting()
        if room.backlog and not room.catching_up and room.gap_timer is None:
            # Every batch left follows a gap. The missing one is nearly always on its way: this
            # process's own commit, or another process's through the broker, overtaken by a
            # later one (on a busy machine, often). Reading the database for it at once would
            # cost a query and hold up the room for longer than the wait usually lasts.
            room.gap_timer = asyncio.get_running_loop().call_later(
                GAP_WAIT_S, self._gap_expired, room
            )

    def _gap_expired(self, room: Room) -> None:
        room.gap_timer = None
        if self.rooms.get(room.exercise_id) is room and room.backlog and not room.catching_up:
            self._start_catch_up(room)

    def _start_catch_up(self, room: Room) -> None:
        room.stop_waiting()
        room.catching_up = True
        self.spawn(self._catch_up(room))

    async def _catch_up(self, room: Room) -> None:
        """Deliver from the database whatever the broker did not bring, in order."""
        try:
            while room.cursor is not None:
                page = await self.read(
                    _envelopes_after, exercise_id=room.exercise_id, after_seq=room.cursor
                )
                for envelope in page:
                    self._deliver(room, envelope)
                    room.cursor = envelope.seq
                if len(page) < live.REPLAY_PAGE:
                    break
        except Exception:
            log.exception("catching up exercise %s from the database failed", room.exercise_id)
        finally:
            room.catching_up = False
        self._drain(room)

    def _deliver(self, room: Room, envelope: Envelope) -> None:
        # A copy: a subscriber too slow for this event leaves the room while we go round it.
        audience = list(room.audience_of(envelope))
        frame = text_frame(envelope.text) if len(audience) > 1 else None
        for sub in audience:
            sub.offer(envelope, frame)
        if envelope.type == "participant_removed":
            self._remove_participant(room, json.loads(envelope.text))

    def _remove_participant(self, room: Room, event: dict[str, Any]) -> None:
        """Close a removed participant's sockets (after the event itself) and drop them from presence."""
        team_id, participant_id = event["team_id"], event["participant_id"]
        for sub in list(room.teams.get(team_id, ())):
            if sub.audience.participant_id == participant_id:
                sub.send(_Close(protocol.CLOSE_FORBIDDEN))
        self.presence.remove(team_id=team_id, participant_id=participant_id)

    # -- rooms -----------------------------------------------------------------------------

    async def _enter(self, sub: Subscriber) -> Room:
        exercise_id = sub.audience.exercise_id
        room = self.rooms.get(exercise_id)
        if room is not None:
            room.add(sub)
            return room
        room = self.rooms[exercise_id] = Room(exercise_id)
        room.add(sub)
        await self.broker.subscribe(exercise_id)
        self.presence.ask(exercise_id)
        # Batches that arrive meanwhile wait in the backlog and are sorted out against this.
        room.cursor = await self.read(_last_seq, exercise_id=exercise_id)
        self._drain(room)
        return room

    def leave(self, sub: Subscriber) -> None:
        exercise_id = sub.audience.exercise_id
        room = self.rooms.get(exercise_id)
        if room is None:
            return
        room.discard(sub)
        if room:
            return
        room.stop_waiting()
        del self.rooms[exercise_id]
        for key in [key for key in self._snapshots if key[0] == exercise_id]:
            del self._snapshots[key]
        self.presence.forget_exercise(exercise_id)
        self.spawn(self._unsubscribe(exercise_id))

    async def _unsubscribe(self, exercise_id: str) -> None:
        if exercise_id not in self.rooms:
            await self.broker.unsubscribe(exercise_id)

    def latest_seq(self, exercise_id: str) -> int:
        room = self.rooms.get(exercise_id)
        return (room.cursor or 0) if room else 0

    # -- database work, off the event loop ---------------------------------------------------

    def session(self, *, read_only: bool = False) -> Session:
        """A session whose commits ring this hub's bell."""
        session = Session(
            reading(self.engine) if read_only else self.engine, expire_on_commit=False
        )
        events.listen(session, self.on_events)
        return session

    async def read(self, function: Callable[..., T], **kwargs: Any) -> T:
        """Run a read-only service function with a fresh session in a worker thread."""
        return await to_thread.run_sync(self._run, function, True, kwargs, limiter=self._db_threads)

    async def write(self, function: Callable[..., T], **kwargs: Any) -> T:
        """Run a service function that writes, with a fresh session in a worker thread."""
        return await to_thread.run_sync(
            self._run, function, False, kwargs, limiter=self._db_threads
        )

    async def _write_edits(self, edits: list[CellEdit]) -> list[int | DomainError]:
        return await self.write(responses.write_cells, edits=edits)

    def _run(self, function: Callable[..., T], read_only: bool, kwargs: dict[str, Any]) -> T:
        with self.session(read_only=read_only) as session:
            return function(session, **kwargs)

    # -- facilitators' logins ----------------------------------------------------------------

    async def revalidate(self) -> int:
        """Close the facilitator sockets whose login has ended (logged out, expired) with 4401.

        A facilitator socket is authenticated once, at its handshake; without this it would go on
        receiving every team's answers after its facilitator logged out. Returns how many closed.
        """
        held = [
            (sub, sub.audience.credential)
            for room in self.rooms.values()
            for sub in room.facilitators
            if sub.audience.credential is not None and not sub.closed
        ]
        if not held:
            return 0
        live_now = await self.read(auth.live_tokens, tokens=list({token for _, token in held}))
        ended = [sub for sub, token in held if token not in live_now]
        for sub in ended:
            self._error(sub, code="unauthenticated", detail="Your session has ended; log in again.")
            sub.send(_Close(protocol.CLOSE_UNAUTHENTICATED))
        return len(ended)

    async def _revalidate_forever(self) -> None:
        while True:
            await asyncio.sleep(REVALIDATE_S)
            try:
                await self.revalidate()
            except Exception:
                log.exception("checking the facilitators' logins failed")

    # -- presence --------------------------------------------------------------------------

    def _announce_presence(self, exercise_id: str, team_id: str, body: dict[str, Any]) -> None:
        room = self.rooms.get(exercise_id)
        if room is None:
            return
        text = protocol.server_message("presence", seq=room.cursor or 0, **body)
        frame = text_frame(text)
        for sub in [*room.facilitators, *room.teams.get(team_id, ())]:
            if sub.started:
                sub.send(text, frame)

    # -- one socket ------------------------------------------------------------------------

    async def serve(
        self,
        websocket: WebSocket,
        audience: Audience,
        *,
        edit_limiter: EditRateLimiter | None = None,
    ) -> None:
        """Run an accepted socket until it disconnects: hello, then live events and requests."""
        sub = Subscriber(self, websocket, audience, edit_limiter)
        try:
            await self._enter(sub)
            if audience.team_id is not None and audience.participant_id is not None:
                self.presence.connect(
                    exercise_id=audience.exercise_id,
                    team_id=audience.team_id,
                    participant_id=audience.participant_id,
                    name=audience.name,
                )
            await self._hello(sub)
            await self._read_requests(sub)
        finally:
            sub.closed = True
            # Before leaving: the last socket's leaving forgets the exercise's presence here, and
            # the other processes must first hear that this participant went.
            if audience.team_id is not None and audience.participant_id is not None:
                self.presence.disconnect(
                    team_id=audience.team_id, participant_id=audience.participant_id
                )
            self.leave(sub)
            if sub.writer is not None and not sub.writer.done():
                sub.writer.cancel()

    async def _hello(self, sub: Subscriber) -> None:
        audience = sub.audience
        snap = await self._snapshot(audience.exercise_id, audience.team_id)
        for team_id, roster in snap.rosters.items():
            self.presence.merge_roster(
                exercise_id=audience.exercise_id, team_id=team_id, roster=roster
            )
        at = utcnow().isoformat()
        # The snapshot's bulk is encoded once for the team's sockets; each adds its own parts.
        body = protocol.with_fields(
            snap.encoded_body,
            {
                "server_time": at,
                "presence": [self.presence.view(team_id) for team_id in snap.rosters],
            },
        )
        fields: dict[str, Any] = {"exercise": snap.exercise}
        if snap.team is not None:
            fields["team"] = snap.team
            fields["you"] = {"id": audience.participant_id, "name": audience.name}
        hello = protocol.server_message(
            "hello", seq=snap.last_seq, at=at, last_seq=snap.last_seq, **fields
        )
        sub.send(protocol.with_fields(hello, {}, raw={"snapshot": body}))
        sub.started = True
        sub.delivered_from = snap.last_seq
        sub.release(upto=snap.last_seq)

    async def _snapshot(self, exercise_id: str, team_id: str | None) -> live.Snapshot:
        """A snapshot as new as the room's cursor now, shared by the team's sockets.

        After a restart every socket of a team comes back within a second or so; one snapshot
        read serves them all. A snapshot fits a socket when its last_seq is at least the room's
        cursor when the socket asks: every event up to the cursor is in the snapshot, and every
        later one reaches the socket's buffer (it joined the room before asking).
        """
        room = self.rooms.get(exercise_id)
        needed = room.cursor if room is not None and room.cursor is not None else None
        key = (exercise_id, team_id)
        shared = self._snapshots.get(key)
        if shared is not None and needed is not None:
            with contextlib.suppress(Exception):
                # shield: one socket leaving must not cancel the read the others wait for.
                snap = await asyncio.shield(shared)
                if snap.last_seq >= needed:
                    return snap
        task = asyncio.get_running_loop().create_task(
            self.read(live.snapshot, exercise_id=exercise_id, team_id=team_id)
        )
        self._snapshots[key] = task
        return await asyncio.shield(task)

    async def _read_requests(self, sub: Subscriber) -> None:
        refusing = False
        budget = MessageBudget(rate_per_s=self.messages_per_s, burst=self.message_burst)
        throttled = 0  # consecutive messages that had to wait for the budget
        while True:
            message = await sub.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if refusing or sub.closed:
                continue
            # A socket sending faster than any person could is read at the budget's pace: the
            # rest waits in its TCP buffers and slows the sender down, not the server. One that
            # keeps it up is a script: it is closed rather than read for minutes to come.
            wait_s = budget.take()
            throttled = throttled + 1 if wait_s > 0 else 0
            if throttled > self.flood_messages:
                self._error(
                    sub,
                    code="too_many_messages",
                    detail="This connection sent far more messages than a person types; "
                    "it is closed. Reload the page to reconnect.",
                )
                sub.send(_Close(protocol.CLOSE_FLOOD))
                refusing = True
                continue
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            text = message.get("text")
            if text is None:
                try:
                    text = (message.get("bytes") or b"").decode()
                except UnicodeDecodeError:
                    self._error(sub, code="bad_message", detail="Send JSON text in UTF-8.")
                    continue
            if len(text) * 4 > protocol.MAX_MESSAGE_BYTES and (
                len(text.encode()) > protocol.MAX_MESSAGE_BYTES
            ):
                self._error(
                    sub,
                    code="too_large",
                    detail=f"A message may have at most {protocol.MAX_MESSAGE_BYTES} bytes.",
                )
                sub.send(_Close(protocol.CLOSE_TOO_BIG))
                refusing = True
                continue
            try:
                request = protocol.parse(text)
            except protocol.BadMessage as exc:
                self._error(sub, code=exc.code, detail=exc.detail, client_ref=exc.client_ref)
                continue
            if isinstance(request, protocol.Edit):
                await self._edit(sub, request)
            elif isinstance(request, protocol.DeliverInject):
                await self._inject(sub, request)
            elif isinstance(request, protocol.Resume):
                if sub.buffer is None:
                    sub.buffer = []
                sub.send(_Replay(request.after_seq))
            else:
                self._focus(sub, request)

    def _error(self, sub: Subscriber, **fields: Any) -> None:
        sub.send(protocol.error(seq=self.latest_seq(sub.audience.exercise_id), **fields))

    def _refuse(self, sub: Subscriber, exc: DomainError, *, client_ref: Any) -> None:
        """The `error` answering a request the rules refused, as REST would word it."""
        self._error(sub, code=exc.code, detail=exc.detail, client_ref=client_ref, **exc.extra)

    def _ack(self, sub: Subscriber, *, client_ref: Any, **fields: Any) -> None:
        """The `ack` of a request carried out (an edit stored, an inject delivered)."""
        sub.send(
            protocol.server_message(
                "ack",
                seq=self.latest_seq(sub.audience.exercise_id),
                client_ref=client_ref,
                **fields,
            )
        )

    async def _edit(self, sub: Subscriber, request: protocol.Edit) -> None:
        audience = sub.audience
        team_id = audience.team_id or request.team_id
        if team_id is None:
            self._error(
                sub,
                code="team_required",
                detail="A facilitator's edit must name the team_id it is for.",
                client_ref=request.client_ref,
            )
            return
        try:
            if sub.edit_limiter is not None:
                sub.edit_limiter.take(audience.rate_key)
            version = await self.edits.submit(
                CellEdit(
                    exercise_id=audience.exercise_id,
                    team_id=team_id,
                    inject_id=request.inject_id,
                    field=request.field,
                    value=request.value,
                    base_version=request.base_version,
                    author=audience.name,
                    participant_id=audience.participant_id,
                )
            )
        except DomainError as exc:
            self._refuse(sub, exc, client_ref=request.client_ref)
            return
        self._ack(sub, client_ref=request.client_ref, version=version)

    async def _inject(self, sub: Subscriber, request: protocol.DeliverInject) -> None:
        """Deliver the facilitator's inject; `ack` with it, or an `error` as the REST call would."""
        audience = sub.audience
        if audience.credential is None:
            self._error(
                sub,
                code="facilitator_only",
                detail="Only a facilitator may deliver injects.",
                client_ref=request.client_ref,
            )
            return
        try:
            inject = await self.write(
                exercises.deliver_inject,
                exercise_id=audience.exercise_id,
                data=request,
                library=sub.websocket.app.state.scenarios,
                # Checked again with each inject: logging out revokes the open socket too.
                owner_token=audience.credential,
            )
        except DomainError as exc:
            self._refuse(sub, exc, client_ref=request.client_ref)
            if isinstance(exc, Unauthorized):
                sub.send(_Close(protocol.CLOSE_UNAUTHENTICATED))
            return
        self._ack(sub, client_ref=request.client_ref, inject=inject.model_dump(mode="json"))

    def _focus(self, sub: Subscriber, request: protocol.Focus) -> None:
        audience = sub.audience
        if audience.team_id is None or audience.participant_id is None:
            return  # facilitators watch; they are not part of any team's presence
        self.presence.focus(
            team_id=audience.team_id,
            participant_id=audience.participant_id,
            inject_id=request.inject_id if request.field else None,
            field=request.field,
        )


def _last_seq(session: Session, *, exercise_id: str) -> int:
    return events.last_seq(session, exercise_id=exercise_id)


def _envelopes_after(session: Session, *, exercise_id: str, after_seq: int) -> list[Envelope]:
    # Encoded in the worker thread, once, like the events that come through the broker.
    return [
        Envelope.of(event)
        for event in live.events_after(session, exercise_id=exercise_id, after_seq=after_seq)
    ]
