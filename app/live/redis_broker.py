"""The Redis broker: stored events ring the bell in every server process through Redis pub/sub.

One channel per exercise (`tabletop:exercise:<id>`): Redis then sends each process only the
exercises it has sockets for, so a process with one busy exercise never decodes another's
traffic; subscribing costs one SUBSCRIBE when an exercise's first local socket arrives.

Publishing never blocks the caller: a batch goes into a bounded queue that one sender task
drains in order, pipelining what has piled up, and to this process's own hub right after the
sender has written it to Redis (its Redis echo is a duplicate the hub drops). A batch that
cannot be sent (queue full, Redis away) is not retried; its exercise is remembered and, once
Redis answers again, a `Batch.resync` goes out for it so the other processes read the database
instead.

One listener task owns the subscription. When Redis goes away it reconnects with capped
exponential backoff, subscribes again to every followed exercise and hands the hub a
`Batch.resync` for each, because pub/sub is at-most-once and messages published meanwhile
are gone. Redis-py's own silent reconnects are turned off for the same reason.

Presence notes (see `app.live.presence`) travel on the same exercise channels and the same
outbox; they are not stored, and a lost one is made good by the sender's next refresh.
"""

import asyncio
import contextlib
import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.live.broker import Batch, BatchHandler, PresenceHandler, PresenceNote

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "tabletop:exercise:"
# Always subscribed, so the listener's connection exists (and its loss is seen) with no exercise.
CONTROL_CHANNEL = "tabletop:control"
QUEUE_SIZE = 10_000
PIPELINE_MAX = 200
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0
POLL_S = 1.0
CONFIRM_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
BROKEN = (RedisError, OSError, TimeoutError)


def channel_of(exercise_id: str) -> str:
    return CHANNEL_PREFIX + exercise_id


class RedisBroker:
    """Carries batches between server processes through Redis; see the module docstring."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: Redis | None = None
        self._listener: Redis | None = None
        self._on_batch: BatchHandler | None = None
        self._on_presence: PresenceHandler | None = None
        self._subscribed: set[str] = set()
        self._outbox: asyncio.Queue[Batch | PresenceNote] = asyncio.Queue(maxsize=QUEUE_SIZE)
        # Exercises whose batches may not have reached the other processes.
        self._unsent: set[str] = set()
        self._pubsub: PubSub | None = None
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # How many times the listener has connected: 1, plus one per reconnect.
        self.connections = 0

    async def start(
        self, on_batch: BatchHandler, on_presence: PresenceHandler | None = None
    ) -> None:
        self._on_batch = on_batch
        self._on_presence = on_presence
        # A pooled connection is stale after a Redis restart: a publish may retry once on a fresh
        # one (a duplicate is harmless). The subscription must never reconnect behind our back.
        self._redis = self._client(retries=1)
        self._listener = self._client(retries=0)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send()), loop.create_task(self._listen())]

    def _client(self, *, retries: int) -> Redis:
        return Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), retries),
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *BROKEN):
                await task
        self._tasks = []
        await self._drop_pubsub()
        for client in (self._redis, self._listener):
            if client is not None:
                with contextlib.suppress(*BROKEN):
                    await client.aclose()
        self._redis = self._listener = None
        self._on_batch = self._on_presence = None
        self._subscribed.clear()

    # -- publishing --------------------------------------------------------------------------

    def publish(self, batch: Batch) -> None:
        try:
            self._outbox.put_nowait(batch)
        except asyncio.QueueFull:
            self._unsent.add(batch.exercise_id)
        if self._on_batch is not None and batch.exercise_id in self._subscribed:
            # Next, not now: the sender task, woken by the batch just queued, runs first and
            # writes it to Redis, so the other processes deliver it while this one writes its
            # own sockets' frames (an inject to 250 of them: a few milliseconds) instead of after.
            asyncio.get_running_loop().call_soon(self._deliver_here, batch)

    def _deliver_here(self, batch: Batch) -> None:
        if self._on_batch is not None:  # not stopped meanwhile
            self._on_batch(batch)

    def publish_presence(self, note: PresenceNote) -> None:
        # Dropped when the outbox is full: the note is sent again at the next refresh.
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(note)

    async def _send(self) -> None:
        """The only sender: drains the outbox in order; after a failure, resyncs what was lost."""
        delay = BACKOFF_MIN_S
        while True:
            batches: list[Batch | PresenceNote] = []
            if self._unsent:
                # Retry the resyncs after the backoff even if nothing new is published.
                with contextlib.suppress(TimeoutError):
                    batches.append(await asyncio.wait_for(self._outbox.get(), delay))
            else:
                batches.append(await self._outbox.get())
            while len(batches) < PIPELINE_MAX and not self._outbox.empty():
                batches.append(self._outbox.get_nowait())
            try:
                await self._publish_all(batches)
                delay = BACKOFF_MIN_S
            except BROKEN as exc:
                log.warning("Redis publish failed (%s); peers will resync from the database", exc)
                self._unsent.update(b.exercise_id for b in batches if isinstance(b, Batch))
                while not self._outbox.empty():
                    lost = self._outbox.get_nowait()
                    if isinstance(lost, Batch):
                        self._unsent.add(lost.exercise_id)
                delay = min(delay * 2, BACKOFF_MAX_S)

    async def _publish_all(self, batches: list[Batch | PresenceNote]) -> None:
        assert self._redis is not None
        resyncs = [Batch.resync(exercise_id) for exercise_id in sorted(self._unsent)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for batch in [*resyncs, *batches]:
                pipe.publish(channel_of(batch.exercise_id), batch.to_json())
            await pipe.execute()
        self._unsent.difference_update(b.exercise_id for b in resyncs)

    # -- subscribing -------------------------------------------------------------------------

    async def subscribe(self, exercise_id: str) -> None:
        if exercise_id in self._subscribed:
            return
        self._subscribed.add(exercise_id)
        pubsub = self._pubsub
        if pubsub is None:
            return  # the listener subscribes (and resyncs) it once Redis answers
        channel = channel_of(exercise_id)
        # The hub reads the exercise's last seq after this returns: the subscription must be live
        # by then, or an event committed in between would reach no socket until the next one.
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(channel, []).append(confirmed)
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed, CONFIRM_TIMEOUT_S)
        except BROKEN:
            pass  # the listener reconnects, subscribes again and resyncs
        finally:
            waiting = self._confirmations.get(channel, [])
            if confirmed in waiting:
                waiting.remove(confirmed)
            if not waiting:
                self._confirmations.pop(channel, None)

    async def unsubscribe(self, exercise_id: str) -> None:
        if exercise_id not in self._subscribed:
            return
        self._subscribed.discard(exercise_id)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(*BROKEN):
                await pubsub.unsubscribe(channel_of(exercise_id))

    async def _listen(self) -> None:
        """Hold the subscription; after any loss, reconnect with backoff and resync."""
        delay = BACKOFF_MIN_S
        while True:
            try:
                await self._connect()
                delay = BACKOFF_MIN_S
                await self._receive()
            except BROKEN as exc:
                log.warning("Redis subscription lost (%s); reconnecting in %.2f s", exc, delay)
            await self._drop_pubsub()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _connect(self) -> None:
        assert self._listener is not None
        pubsub = self._listener.pubsub(ignore_subscribe_messages=False)
        try:
            followed = set(self._subscribed)
            await pubsub.subscribe(CONTROL_CHANNEL, *(channel_of(e) for e in sorted(followed)))
            # Wait for every confirmation: only then are later messages sure to reach us.
            pending = 1 + len(followed)
            while pending:
                message = await pubsub.get_message(timeout=CONNECT_TIMEOUT_S)
                if message is None:
                    raise TimeoutError("Redis did not confirm the subscriptions")
                if message["type"] == "subscribe":
                    pending -= 1
        except BaseException:
            with contextlib.suppress(*BROKEN):
                await pubsub.aclose()
            raise
        self._pubsub = pubsub
        self.connections += 1
        if self.connections > 1:
            log.info("Redis subscription back; catching up %d exercises", len(followed))
        # Whatever was published while nobody listened is gone: the hub reads the database.
        # Exercises followed since `followed` was taken subscribe on the live connection below.
        for exercise_id in self._subscribed - followed:
            await pubsub.subscribe(channel_of(exercise_id))
        on_batch = self._on_batch
        if on_batch is not None:
            for exercise_id in sorted(self._subscribed):
                on_batch(Batch.resync(exercise_id))

    async def _receive(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while True:
            message = await pubsub.get_message(timeout=POLL_S)
            if message is None:
                continue
            kind = message["type"]
            channel = _text(message["channel"])
            if kind == "subscribe":
                for waiter in self._confirmations.pop(channel, []):
                    if not waiter.done():
                        waiter.set_result(None)
                continue
            if kind != "message" or not channel.startswith(CHANNEL_PREFIX):
                continue
            self._deliver(message["data"])

    def _deliver(self, data: Any) -> None:
        try:
            raw = json.loads(data)
            message = PresenceNote.from_raw(raw) if "presence" in raw else Batch.from_raw(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed message on the Redis broker")
            return
        if message.exercise_id not in self._subscribed:
            return
        if isinstance(message, PresenceNote):
            if self._on_presence is not None:
                self._on_presence(message)
        elif self._on_batch is not None:
            self._on_batch(message)

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*BROKEN):
                await pubsub.aclose()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
