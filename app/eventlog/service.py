"""Store an event with the change it describes, and ring the bell only after the commit."""

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func
from sqlalchemy import event as sa_event
from sqlalchemy import select as sa_select
from sqlmodel import Session

from app.db import driver_connection, insert_many, on_postgres, utcnow
from app.eventlog.models import Event

EventListener = Callable[[list[Event]], None]
_PENDING = "tabletop.pending_events"
_LISTENER = "tabletop.event_listener"
_LOCKED = "tabletop.locked_exercises"
_PREVIOUS = "tabletop.previous_seq"
_EVENTS = Event.__table__  # type: ignore[attr-defined]
_INSERT_EVENTS = _EVENTS.insert()
# One event's insert, returning its seq: for a caller that sends it in psycopg's pipeline on the
# driver's own connection (db.driver_params), then passes the seq to `stored`.
INSERT_RETURNING_SEQ = _EVENTS.insert().returning(_EVENTS.c.seq)


class Committed(list[Event]):
    """One commit's events, with each exercise's seq just before them, so a gap can be detected."""

    def __init__(self, events: Iterable[Event], previous_seq: dict[str, int]) -> None:
        super().__init__(events)
        # seq is global, so an exercise's seqs are not contiguous: name the predecessor instead.
        self.previous_seq = previous_seq


def record(
    session: Session,
    *,
    exercise_id: str,
    type: str,
    payload: dict[str, Any],
    team_ids: list[str] | None = None,
) -> Event:
    """Append an event to the exercise's log in the caller's transaction; `seq` is set on return."""
    new = NewEvent(exercise_id=exercise_id, type=type, payload=payload, team_ids=team_ids)
    (event,) = record_many(session, [new], at=utcnow())
    return event


@dataclass(frozen=True)
class NewEvent:
    """An event to append with record_many."""

    exercise_id: str
    type: str
    payload: dict[str, Any]
    team_ids: list[str] | None = None


def record_many(session: Session, new: Sequence[NewEvent], *, at: datetime) -> list[Event]:
    """Append many events in one statement, in order, in the caller's transaction.

    Core inserts, not the ORM's unit of work (half the time, and an inject's delivery and every
    batch of edits wait on it); nobody changes an event after it is stored.

    The caller holds the write lock of every exercise named (serialize_exercise): the bell
    then carries each exercise's seq from before the batch, as with record.
    """
    hold(session, exercise_ids=[item.exercise_id for item in new])
    rows = [row_of(item, at=at) for item in new]
    if on_postgres(session):
        # One statement that also returns the seqs in the rows' order: each round trip is made
        # while holding the exercises' locks, which the other server processes wait for.
        seqs = list(
            session.execute(
                _EVENTS.insert().returning(_EVENTS.c.seq, sort_by_parameter_order=True), rows
            ).scalars()
        )
    else:
        # The seq is the rowid: under the write lock (held since `hold`), the rows' own.
        seqs = insert_many(session, _INSERT_EVENTS, rows)
    return stored(session, rows, seqs)


def hold(session: Session, *, exercise_ids: Iterable[str]) -> None:
    """Take the exercises' write locks and note their newest seqs (each exercise's seq from
    before this transaction, which the bell carries), unless this transaction already has."""
    previous: dict[str, int] = session.info.setdefault(_PREVIOUS, {})
    for exercise_id in dict.fromkeys(exercise_ids):
        _serialize_exercise(session, exercise_id)
        if exercise_id not in previous:
            previous[exercise_id] = last_seq(session, exercise_id=exercise_id)


def row_of(item: NewEvent, *, at: datetime) -> dict[str, Any]:
    """An event's row as it is inserted."""
    return {
        "exercise_id": item.exercise_id,
        "type": item.type,
        "payload": item.payload,
        "team_ids": item.team_ids,
        "at": at,
    }


def stored(session: Session, rows: Sequence[dict[str, Any]], seqs: Sequence[int]) -> list[Event]:
    """The events of `rows` as inserted in this transaction with these seqs (in the rows' order),
    rung on the bell once the transaction commits."""
    # model_construct: the values are already valid, and validating them again cost 6x.
    events = [Event.model_construct(seq=seq, **row) for seq, row in zip(seqs, rows, strict=True)]
    session.info.setdefault(_PENDING, []).extend(events)
    return events


def note_last_seq(session: Session, *, exercise_id: str, seq: int) -> None:
    """The exercise's newest seq as the caller read it under the exercise's write lock (in this
    transaction), so that recording its events need not read it again."""
    session.info.setdefault(_PREVIOUS, {}).setdefault(exercise_id, seq)


def last_seq(session: Session, *, exercise_id: str) -> int:
    """The exercise's newest stored seq (0 before its first event)."""
    # Core through the connection: every write of the exercise reads this first.
    found = session.connection().execute(newest_seq(exercise_id)).scalar()
    return int(found or 0)


def newest_seq(exercise_id: str | ColumnElement[str]) -> Select[int | None]:
    """The query for the exercise's newest seq (NULL before its first event), to run or nest
    (`exercise_id`: a value, a parameter, or the column of an enclosing query)."""
    return sa_select(func.max(_EVENTS.c.seq)).where(_EVENTS.c.exercise_id == exercise_id)


def serialize_exercise(session: Session, *, exercise_id: str) -> None:
    """Hold the exercise's write lock until the transaction ends (a check-then-insert needs it)."""
    _serialize_exercise(session, exercise_id)


def _serialize_exercise(session: Session, exercise_id: str) -> None:
    # Clients resume "after seq N", so an exercise's events must commit in seq order.
    # SQLite already has one writer at a time; on PostgreSQL a transaction-scoped advisory
    # lock per exercise gives the same guarantee without serialising other exercises.
    locked: set[str] = session.info.setdefault(_LOCKED, set())
    if exercise_id in locked or not on_postgres(session):
        return
    session.connection().exec_driver_sql(_LOCK_SQL, {"key": _lock_key(exercise_id)})
    locked.add(exercise_id)


# The exercise's write lock on PostgreSQL.
_LOCK_SQL = "SELECT pg_advisory_xact_lock(%(key)s)"


def read_locked(
    session: Session, *, exercise_ids: Sequence[str], sql: str, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """On PostgreSQL: take the exercises' write locks and run a query (the driver's text and
    parameters) holding them, in one round trip with the transaction's BEGIN (psycopg's
    pipeline on the session's own connection); the query's rows as the driver returns them.

    The server runs the query once it holds the locks, so it reads what the previous holder
    committed. Every round trip made while holding the locks is one that another server
    process's write of the exercise waits for, and after each a worker thread on a busy server
    waits its turn at the GIL; SQLAlchemy would make one per statement.
    """
    connection = driver_connection(session)
    cursor = connection.cursor()
    with connection.pipeline():
        send_locks(session, cursor, exercise_ids=exercise_ids)
        cursor.execute(sql, params)
    return cursor.fetchall()


def send_locks(session: Session, cursor: Any, *, exercise_ids: Sequence[str]) -> None:
    """Send the exercises' write locks on a cursor of the session's own connection (in a
    pipeline, with what is to run holding them), and note them taken for this transaction."""
    for exercise_id in exercise_ids:
        cursor.execute(_LOCK_SQL, {"key": _lock_key(exercise_id)})
    session.info.setdefault(_LOCKED, set()).update(exercise_ids)


def _lock_key(exercise_id: str) -> int:
    return zlib.crc32(exercise_id.encode()) - 2**31


def listen(session: Session, listener: EventListener | None) -> None:
    """Call `listener` with the session's new events after each successful commit."""
    session.info[_LISTENER] = listener


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(_LOCKED, None)
    previous = session.info.pop(_PREVIOUS, {})
    events = session.info.pop(_PENDING, None)
    listener = session.info.get(_LISTENER)
    if events and listener is not None:
        listener(Committed(events, previous))


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_LOCKED, None)
    session.info.pop(_PREVIOUS, None)
    session.info.pop(_PENDING, None)
