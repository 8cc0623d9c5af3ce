"""Store an event with the change it describes, and ring the bell only after the commit."""

import zlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlmodel import Session

from app.live.models import Event

EventListener = Callable[[list[Event]], None]
_PENDING = "tabletop.pending_events"
_LISTENER = "tabletop.event_listener"
_LOCKED = "tabletop.locked_exercises"


def record(
    session: Session,
    *,
    exercise_id: str,
    type: str,
    payload: dict[str, Any],
    team_ids: list[str] | None = None,
) -> Event:
    """Append an event to the exercise's log in the caller's transaction; `seq` is set on return."""
    _serialize_exercise(session, exercise_id)
    event = Event(exercise_id=exercise_id, type=type, payload=payload, team_ids=team_ids)
    session.add(event)
    session.flush()
    session.info.setdefault(_PENDING, []).append(event)
    return event


def _serialize_exercise(session: Session, exercise_id: str) -> None:
    # Clients resume "after seq N", so an exercise's events must commit in seq order.
    # SQLite already has one writer at a time; on PostgreSQL a transaction-scoped advisory
    # lock per exercise gives the same guarantee without serialising other exercises.
    locked: set[str] = session.info.setdefault(_LOCKED, set())
    if exercise_id in locked or session.get_bind().dialect.name != "postgresql":
        return
    key = zlib.crc32(exercise_id.encode()) - 2**31
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    locked.add(exercise_id)


def listen(session: Session, listener: EventListener | None) -> None:
    """Call `listener` with the session's new events after each successful commit."""
    session.info[_LISTENER] = listener


def message(event: Event) -> dict[str, Any]:
    """The wire form of an event: `{"type", "seq", "at", ...payload}`."""
    return {"type": event.type, "seq": event.seq, "at": event.at.isoformat(), **event.payload}


def visible_to_team(event: Event, team_id: str) -> bool:
    """Whether a participant of `team_id` may see the event."""
    return event.team_ids is None or team_id in event.team_ids


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(_LOCKED, None)
    events = session.info.pop(_PENDING, None)
    listener = session.info.get(_LISTENER)
    if events and listener is not None:
        listener(events)


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_LOCKED, None)
    session.info.pop(_PENDING, None)
