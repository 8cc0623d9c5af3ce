"""The broker seam: how stored events ring the bell in every server process.

The database is the truth; a broker only says "these events were stored". The hub
publishes each commit's events as one `Batch` per exercise and subscribes to the
exercises that have sockets in this process. A backend implements `Broker`:

- `start(on_batch)`: begin delivering; `on_batch` is called on the event loop, in the
  order batches arrive, for every subscribed exercise (including this process's own).
- `publish(batch)`: hand a batch on; never blocks (a network backend queues it and
  sends it from its own task, in order). A network backend may also hand the batch to
  `on_batch` itself, so local sockets skip the round trip; its echo is then a duplicate.
- `subscribe(exercise_id)` / `unsubscribe(exercise_id)`: idempotent, called by the hub
  when the first socket of an exercise arrives and the last one leaves.
- `stop()`: release connections and tasks.

Delivery may be at-most-once, duplicated or reordered: each batch names the exercise's
seq just before its events (`prev_seq`), so the hub drops what it already has and,
when a predecessor is missing, catches up from the database (`Event` rows with
`seq > last`). A backend that may have lost messages (a dropped connection, a broker
restart) calls `on_batch(Batch.resync(exercise_id))` for each subscribed exercise once
it is back; the hub then catches up from the database. `Batch.to_json()` /
`Batch.from_json()` give the wire form for a network backend; events carry their
message already encoded, so no process encodes an event more than once.

Presence (who is online, who is focused on which field) is not stored: each process
publishes `PresenceNote`s about its own sockets with `publish_presence`, and a backend hands
the other processes' notes of subscribed exercises to `on_presence` (see `app.live.presence`;
notes are refreshed on a timer, so a lost one only delays the list).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.eventlog import service as events
from app.eventlog.models import Event
from app.eventlog.wire import Envelope


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive stored events of one exercise; `prev_seq` None means "catch up"."""

    exercise_id: str
    prev_seq: int | None
    events: tuple[Envelope, ...]

    @classmethod
    def resync(cls, exercise_id: str) -> "Batch":
        """A note that messages may have been lost: the hub reads the database."""
        return cls(exercise_id=exercise_id, prev_seq=None, events=())

    def to_json(self) -> str:
        return json.dumps(
            {
                "exercise_id": self.exercise_id,
                "prev_seq": self.prev_seq,
                "events": [[e.seq, e.team_ids, e.text, e.type] for e in self.events],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, data: str | bytes) -> "Batch":
        return cls.from_raw(json.loads(data))

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> "Batch":
        return cls(
            exercise_id=raw["exercise_id"],
            prev_seq=raw["prev_seq"],
            events=tuple(
                Envelope(
                    seq=seq,
                    team_ids=None if teams is None else tuple(teams),
                    text=text,
                    type=type,
                )
                for seq, teams, text, type in raw["events"]
            ),
        )


@dataclass(frozen=True, slots=True)
class PresenceNote:
    """One process's own part of a team's presence; `team_id` None asks for the others' notes."""

    origin: str
    exercise_id: str
    team_id: str | None
    # Participant id -> (name, inject id, field) of those with a socket on that process.
    online: dict[str, tuple[str, str | None, str | None]]
    # How long the note holds without a newer one from the same process.
    ttl_s: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "presence": {
                    "origin": self.origin,
                    "exercise_id": self.exercise_id,
                    "team_id": self.team_id,
                    "online": {pid: list(state) for pid, state in self.online.items()},
                    "ttl_s": self.ttl_s,
                }
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> "PresenceNote":
        note = raw["presence"]
        return cls(
            origin=str(note["origin"]),
            exercise_id=str(note["exercise_id"]),
            team_id=note["team_id"],
            online={
                pid: (name, inject, field) for pid, (name, inject, field) in note["online"].items()
            },
            ttl_s=float(note["ttl_s"]),
        )


def batches_of(committed: list[Event]) -> list[Batch]:
    """Group one commit's events by exercise, in seq order, with each exercise's predecessor."""
    previous = committed.previous_seq if isinstance(committed, events.Committed) else {}
    grouped: dict[str, list[Envelope]] = {}
    for event in sorted(committed, key=lambda e: e.seq or 0):
        grouped.setdefault(event.exercise_id, []).append(Envelope.of(event))
    return [
        Batch(exercise_id=exercise_id, prev_seq=previous.get(exercise_id), events=tuple(found))
        for exercise_id, found in grouped.items()
    ]


BatchHandler = Callable[[Batch], None]
PresenceHandler = Callable[[PresenceNote], None]


class Broker(Protocol):
    """Carries batches between server processes; see the module docstring for the rules."""

    async def start(
        self, on_batch: BatchHandler, on_presence: PresenceHandler | None = None
    ) -> None: ...

    async def stop(self) -> None: ...

    def publish(self, batch: Batch) -> None: ...

    def publish_presence(self, note: PresenceNote) -> None: ...

    async def subscribe(self, exercise_id: str) -> None: ...

    async def unsubscribe(self, exercise_id: str) -> None: ...


class MemoryBroker:
    """One process: a published batch goes straight to the hub, if it follows that exercise."""

    def __init__(self) -> None:
        self._on_batch: BatchHandler | None = None
        self._subscribed: set[str] = set()

    async def start(
        self, on_batch: BatchHandler, on_presence: PresenceHandler | None = None
    ) -> None:
        self._on_batch = on_batch

    async def stop(self) -> None:
        self._on_batch = None
        self._subscribed.clear()

    def publish(self, batch: Batch) -> None:
        if self._on_batch is not None and batch.exercise_id in self._subscribed:
            self._on_batch(batch)

    def publish_presence(self, note: PresenceNote) -> None:
        """One process: there is nobody else to tell."""

    async def subscribe(self, exercise_id: str) -> None:
        self._subscribed.add(exercise_id)

    async def unsubscribe(self, exercise_id: str) -> None:
        self._subscribed.discard(exercise_id)


def make_broker(url: str | None) -> Broker:
    """The broker for TABLETOP_BROKER_URL: unset means in-process."""
    if url is None or url.startswith("memory:"):
        return MemoryBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Imported here: a single-process server never loads the Redis client.
        from app.live.redis_broker import RedisBroker

        return RedisBroker(url)
    raise ValueError(
        f"TABLETOP_BROKER_URL={url!r} names a broker this version does not support; "
        "leave it unset for a single process, or use redis://host:port/db for several."
    )
