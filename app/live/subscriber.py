"""One socket's side of the hub: its queue, its writer task, and how far its stream has got.

A live event reaches a `Subscriber` through `offer`, already encoded (and, when it goes to
several sockets, already framed). It is written to the socket on the spot when nothing is
waiting before it, else queued for a writer task that lives only while the queue has items.
While the socket's hello snapshot or a replay is read, live events wait in a side buffer. A
socket whose queue (or buffer) is full is closed with 4408 (its client reconnects and resumes)
and delays no one.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.auth.ratelimit import EditRateLimiter
from app.eventlog import wire
from app.eventlog.models import Event
from app.eventlog.wire import Envelope
from app.live import protocol
from app.live import service as live
from app.live.frames import DirectWriter, text_frame

T = TypeVar("T")

# While a snapshot or replay is read, live events wait in a side buffer this many times the queue.
BUFFER_FACTOR = 8
CLOSE_TIMEOUT_S = 5.0
SEND_ERRORS = (WebSocketDisconnect, RuntimeError, OSError)


class Host(Protocol):
    """What a subscriber needs of the hub that holds it."""

    queue_size: int

    def leave(self, sub: "Subscriber") -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    async def read(self, function: Callable[..., T], **kwargs: Any) -> T: ...


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
class Replay:
    """Replay the stored events after `after_seq` this socket has not had (a `resume`)."""

    after_seq: int


@dataclass(frozen=True)
class Close:
    """Close the socket with `code` once what is queued before it has been sent."""

    code: int


@dataclass(frozen=True)
class _Unfinished:
    """A send started directly (see Subscriber.send) that had to wait: the writer finishes it."""

    coroutine: Coroutine[Any, Any, None]
    awaiting: Any


_Outgoing = str | Replay | Close | _Unfinished


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
        hub: Host,
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
                elif isinstance(item, Replay):
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
