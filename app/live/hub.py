"""The hub: every live socket of this process, by exercise, and the doorbell that feeds them.

Events reach the hub from `on_events`, which the database session calls after each commit
(in whatever thread committed); the hub hands them to the event loop and publishes them
through the broker, which hands every batch of a subscribed exercise back to `_ingest`. Per
exercise with local sockets a `Room` (app/live/room.py) puts the batches in order, catching up
from the database when one never comes, and offers each event to its `Subscriber`s
(app/live/subscriber.py). The hub also shares hello snapshots between a team's sockets, runs
the sockets' database work on a few threads, and closes facilitator sockets whose login ended.
What a socket says and is answered is app/live/connection.py.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.auth import service as auth
from app.db import reading
from app.errors import DomainError
from app.eventlog import service as events
from app.eventlog.models import Event
from app.eventlog.wire import Envelope
from app.live import protocol
from app.live import service as live
from app.live.batcher import EditBatcher
from app.live.broker import Batch, Broker, MemoryBroker, batches_of
from app.live.frames import text_frame
from app.live.presence import PresenceBoard
from app.live.room import Room
from app.live.subscriber import CLOSE_TIMEOUT_S, Close, Subscriber
from app.responses import service as responses
from app.responses.service import CellEdit

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_QUEUE_SIZE = 512
DB_THREADS = 8
SOCKET_MESSAGES_PER_S = 50.0
SOCKET_MESSAGE_BURST = 100
# Throttled messages in a row (10 s at the budget's pace) after which a socket is closed.
FLOOD_MESSAGES = 500
# How often facilitator sockets' logins are checked again: a logout in another server process
# (or an expiry) closes them within this time; a logout in this process closes them at once.
REVALIDATE_S = 15.0


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
        if room is not None:
            room.ingest(batch)

    async def _read_after(self, exercise_id: str, after_seq: int) -> list[Envelope]:
        """A room's catch-up: the stored events after `after_seq`, a page at a time."""
        return await self.read(_envelopes_after, exercise_id=exercise_id, after_seq=after_seq)

    def _participant_removed(self, team_id: str, participant_id: str) -> None:
        self.presence.remove(team_id=team_id, participant_id=participant_id)

    # -- rooms -----------------------------------------------------------------------------

    async def enter(self, sub: Subscriber) -> Room:
        """Put a socket in its exercise's room, made (and subscribed to) by its first socket."""
        exercise_id = sub.audience.exercise_id
        room = self.rooms.get(exercise_id)
        if room is not None:
            room.add(sub)
            return room
        room = self.rooms[exercise_id] = Room(
            exercise_id,
            read_after=self._read_after,
            spawn=self.spawn,
            on_participant_removed=self._participant_removed,
        )
        room.add(sub)
        await self.broker.subscribe(exercise_id)
        self.presence.ask(exercise_id)
        # Batches that arrive meanwhile wait in the backlog and are sorted out against this.
        room.start(await self.read(_last_seq, exercise_id=exercise_id))
        return room

    def leave(self, sub: Subscriber) -> None:
        exercise_id = sub.audience.exercise_id
        room = self.rooms.get(exercise_id)
        if room is None:
            return
        room.discard(sub)
        if room:
            return
        room.close()
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

    def error(self, sub: Subscriber, **fields: Any) -> None:
        """Send the socket an `error`, stamped with its room's newest seq."""
        sub.send(protocol.error(seq=self.latest_seq(sub.audience.exercise_id), **fields))

    async def snapshot(self, exercise_id: str, team_id: str | None) -> live.Snapshot:
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
            self.error(sub, code="unauthenticated", detail="Your session has ended; log in again.")
            sub.send(Close(protocol.CLOSE_UNAUTHENTICATED))
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


def _last_seq(session: Session, *, exercise_id: str) -> int:
    return events.last_seq(session, exercise_id=exercise_id)


def _envelopes_after(session: Session, *, exercise_id: str, after_seq: int) -> list[Envelope]:
    # Encoded in the worker thread, once, like the events that come through the broker.
    return [
        Envelope.of(event)
        for event in live.events_after(session, exercise_id=exercise_id, after_seq=after_seq)
    ]
