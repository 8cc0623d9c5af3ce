"""Versioned cell writes (never a silent overwrite), revision history and submissions."""

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import (
    ARRAY,
    CompoundSelect,
    Integer,
    String,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    union_all,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.db import (
    driver_connection,
    insert_many,
    json_text,
    on_postgres,
    one_round_trip,
    utcnow,
)
from app.errors import Conflict, DomainError, Forbidden, Invalid, InvalidState, NotFound
from app.eventlog import service as events
from app.exercises import service as exercises
from app.exercises.models import Exercise, ExerciseStatus, Inject, InjectTarget, Participant, Team
from app.responses.fields import DISCLOSE_CHOICES, FIELD_KEYS, MAX_VALUE_LENGTH
from app.responses.models import ResponseCell, ResponseRevision, Resubmission, Submission
from app.responses.schemas import conflict_body


def validate_value(*, field: str, value: str) -> None:
    """Refuse unknown fields, over-long values and undefined disclosure choices."""
    if field not in FIELD_KEYS:
        raise Invalid(
            f"Unknown field {field!r}; use one of: {', '.join(sorted(FIELD_KEYS))}.",
            code="unknown_field",
        )
    if len(value) > MAX_VALUE_LENGTH:
        raise Invalid(
            f"The value has {len(value)} characters; the limit is {MAX_VALUE_LENGTH}.",
            code="value_too_long",
        )
    if "\x00" in value:
        raise Invalid(
            "The value contains the NUL character (U+0000); remove it and save again.",
            code="invalid_character",
        )
    if field == "disclose" and value not in (*DISCLOSE_CHOICES, ""):
        raise Invalid("disclose must be one of: yes, no, undecided.", code="invalid_choice")


def answer_lock(*, withdrawn: bool, submitted: bool) -> InvalidState | None:
    """Why a team's answer to an inject takes no edit now (None: it does). A withdrawn inject's
    answers stay as they were; a submitted answer stays as submitted until it is reopened."""
    if withdrawn:
        return InvalidState(
            "The facilitator withdrew this inject; its answers are kept as they are and can no "
            "longer be edited.",
            code="inject_withdrawn",
        )
    if submitted:
        return InvalidState(
            "Your team submitted this answer; reopen it to edit it again.", code="submitted"
        )
    return None


def is_submitted(submission: Submission | None) -> bool:
    """Whether a team's answer stands submitted: it was, and has not been reopened since."""
    return submission is not None and submission.reopened_at is None


def write_cell(
    session: Session,
    *,
    exercise: Exercise,
    team: Team,
    inject_id: str,
    field: str,
    value: str,
    base_version: int,
    author: str,
    participant_id: str | None,
) -> ResponseCell:
    """Store a value if the writer saw the current version; otherwise 409 with what is there now."""
    validate_value(field=field, value=value)
    # The exercise's lock before the cell's row: batched writes (write_cells) take them in that
    # order too, so the two never wait for each other in a cycle on PostgreSQL.
    events.serialize_exercise(session, exercise_id=exercise.id)
    inject = exercises.get_delivered_inject(session, team=team, inject_id=inject_id)
    exercises.require_running(exercise, doing="answers can be edited")
    lock = answer_lock(
        withdrawn=inject.withdrawn_at is not None,
        submitted=is_submitted(session.get(Submission, (team.id, inject.id))),
    )
    if lock is not None:
        raise lock
    now = utcnow()
    version = base_version + 1
    key: dict[str, Any] = {"team_id": team.id, "inject_id": inject.id, "field": field}
    # Compare-and-set in the database, so two writers on PostgreSQL cannot both win.
    if base_version == 0:
        try:
            with session.begin_nested():
                session.add(
                    ResponseCell(**key, value=value, version=1, updated_by=author, updated_at=now)
                )
        except IntegrityError:
            _raise_conflict(session, key=key)
    else:
        result = session.execute(
            update(ResponseCell)
            .where(
                col(ResponseCell.team_id) == team.id,
                col(ResponseCell.inject_id) == inject.id,
                col(ResponseCell.field) == field,
                col(ResponseCell.version) == base_version,
            )
            .values(value=value, version=version, updated_by=author, updated_at=now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            _raise_conflict(session, key=key)
    session.add(
        ResponseRevision(
            **key,
            version=version,
            value=value,
            author=author,
            author_participant_id=participant_id,
            created_at=now,
        )
    )
    events.record(
        session,
        exercise_id=exercise.id,
        type="response",
        payload={**key, "value": value, "version": version, "updated_by": author},
        team_ids=[team.id],
    )
    session.commit()
    return ResponseCell(**key, value=value, version=version, updated_by=author, updated_at=now)


def _raise_conflict(session: Session, *, key: dict[str, Any]) -> NoReturn:
    session.rollback()
    current = session.get(ResponseCell, (key["team_id"], key["inject_id"], key["field"]))
    if current is None:
        raise _conflict(value="", version=0, updated_by="")
    raise _conflict(value=current.value, version=current.version, updated_by=current.updated_by)


def _conflict(*, value: str, version: int, updated_by: str) -> Conflict:
    return Conflict(
        "Someone else changed this answer since you last saw it; merge with the current value.",
        code="conflict",
        current=conflict_body(value=value, version=version, updated_by=updated_by),
    )


@dataclass(frozen=True)
class CellEdit:
    """One cell write of a batch (see write_cells)."""

    exercise_id: str
    team_id: str
    inject_id: str
    field: str
    value: str
    base_version: int
    author: str
    participant_id: str | None


@dataclass
class _Current:
    version: int
    value: str
    updated_by: str


def write_cells(session: Session, *, edits: Sequence[CellEdit]) -> list[int | DomainError]:
    """Apply many edits in one transaction, each judged exactly as write_cell would judge it.

    The result lists, per edit, its new version or the error it gets. This is the group commit
    of the live channel: a few queries and one commit (one fsync) for all the edits that arrived
    while the previous batch was being written, instead of about ten queries and a commit each.
    The checks run in memory under the exercises' write locks, in arrival order, so two edits
    of one cell in the same batch behave as if they had come one after the other.

    On PostgreSQL a batch is first written as sent, in one round trip (see _write_as_sent);
    only if that is held back is it judged edit by edit.
    """
    batch = _Batch.of(edits)
    if not batch.pending:
        return batch.outcomes
    postgres = on_postgres(session)
    if postgres and _write_as_sent(session, batch):
        return batch.outcomes
    if postgres:
        rows = events.read_locked(
            session,
            exercise_ids=batch.exercise_ids,
            sql=_batch_context_postgres(),
            params=batch.params,
        )
        context = _context_of(rows)
    else:
        for exercise_id in batch.exercise_ids:
            events.serialize_exercise(session, exercise_id=exercise_id)
        # One row, the context's rows as JSON: each row fetched is a GIL hand-off (insert_many).
        found = session.connection().execute(_BATCH_CONTEXT_SQLITE, batch.params).scalar_one()
        context = _context_of(json.loads(found))
    for exercise_id, seq in context.seen.items():  # read holding the lock: no need to again
        events.note_last_seq(session, exercise_id=exercise_id, seq=seq)
    write = batch.judge(context)
    if write is None:
        session.rollback()
    elif postgres:
        if not _store_postgres(session, write, locked=True):
            raise RuntimeError("a batch judged under its exercises' locks was held back")
    else:
        _store_cells(session, current=write.cells, now=write.now)
        insert_many(session, _INSERT_REVISIONS, write.revision_rows())
        events.record_many(session, write.new_events, at=write.now)
        session.commit()
    return batch.outcomes


def _write_as_sent(session: Session, batch: "_Batch") -> bool:
    """Write the batch as its writers sent it, in one round trip, if every edit is accepted as
    sent (PostgreSQL); False, having written nothing, if any is not.

    Nearly every live edit is accepted as sent: its writer saw the cell's current version, the
    exercise runs, the inject was delivered. So instead of reading the batch's context under
    the exercises' locks and then writing what was judged (two round trips, with the locks held
    from the first to the commit, also while the thread waits for the GIL to judge in between),
    the locks, the exercises' newest seqs, the write and the commit go in one pipeline; the
    write's guard holds it back unless every edit is accepted. The locks are then held for the
    server's work alone, which is what another server process's batch of the exercise waits for.
    """
    write = batch.as_sent()
    if write is None or not _store_postgres(session, write, locked=False):
        return False
    for index, (_, version) in zip(batch.pending, write.accepted, strict=True):
        batch.outcomes[index] = version
    return True


def _store_postgres(session: Session, write: "_Write", *, locked: bool) -> bool:
    """Store a batch's write (_WRITE_BATCH_POSTGRES) and commit, in one round trip; False, and
    nothing stored, if its guard held it back. Unless the transaction holds the exercises'
    locks already (`locked`), take them first; the write returns their newest seqs for the bell.
    """
    # Built before the locks are taken: the server waits for the write while holding them.
    params = write.params()
    # One round trip: after each, on a busy server, the thread waits a millisecond or more for
    # its turn at the GIL, and the exercises' locks are held meanwhile.
    if locked:
        connection = driver_connection(session)
        written = connection.cursor()
        with connection.pipeline():
            written.execute(_WRITE_BATCH_POSTGRES, params)
            connection.commit()
    else:
        with one_round_trip(session) as connection:
            written = connection.cursor()
            events.send_locks(session, written, exercise_ids=write.exercise_ids)
            written.execute(_WRITE_BATCH_POSTGRES, params)
    rows = sorted(written.fetchall())
    if not rows:  # the guard held the write back; the commit committed nothing
        session.rollback()
        return False
    if not locked:
        for _, exercise_id, newest in rows:
            events.note_last_seq(session, exercise_id=exercise_id, seq=newest or 0)
    seqs = [seq for seq, _, _ in rows]
    events.stored(session, write.rows, seqs)
    # The pipeline has committed already; this rings the bell.
    session.commit()
    return True


@dataclass
class _Batch:
    """A batch's edits; those that pass validation (`pending`) are judged against its context."""

    edits: Sequence[CellEdit]
    pending: list[int]
    outcomes: list[int | DomainError]

    @classmethod
    def of(cls, edits: Sequence[CellEdit]) -> "_Batch":
        outcomes: list[int | DomainError] = [0] * len(edits)
        pending: list[int] = []
        for index, edit in enumerate(edits):
            try:
                validate_value(field=edit.field, value=edit.value)
            except DomainError as exc:
                outcomes[index] = exc
            else:
                pending.append(index)
        return cls(edits=edits, pending=pending, outcomes=outcomes)

    @property
    def exercise_ids(self) -> list[str]:
        # Sorted: the locks are always taken in the same order, so batches never wait in a cycle.
        return sorted({self.edits[i].exercise_id for i in self.pending})

    @property
    def params(self) -> dict[str, list[str]]:
        """The batch context query's parameters."""
        edits = [self.edits[i] for i in self.pending]
        return {
            "exercise_ids": self.exercise_ids,
            "team_ids": sorted({e.team_id for e in edits}),
            "inject_ids": sorted({e.inject_id for e in edits}),
            "writers": sorted({e.participant_id for e in edits if e.participant_id}),
        }

    def as_sent(self) -> "_Write | None":
        """The write if every pending edit is accepted as sent: each continues the version of
        the edit before it of the same cell (None if one does not; the first of each cell is
        checked against the database by the write's guard)."""
        accepted: list[tuple[CellEdit, int]] = []
        cells: dict[tuple[str, str, str], _Current] = {}
        before: dict[tuple[str, str, str], int] = {}
        for index in self.pending:
            edit = self.edits[index]
            key = (edit.team_id, edit.inject_id, edit.field)
            cell = cells.get(key)
            if cell is None:
                before[key] = edit.base_version
            elif cell.version != edit.base_version:
                return None
            version = edit.base_version + 1
            cells[key] = _Current(version, edit.value, edit.author)
            accepted.append((edit, version))
        return _Write(accepted=accepted, cells=cells, before=before, now=utcnow())

    def judge(self, context: "_Context") -> "_Write | None":
        """Each edit's outcome, in arrival order; what to write (None: nothing)."""
        running, team_exercise = context.status, context.team_exercise
        removed, delivered, current = context.removed, context.delivered, context.current
        withdrawn, submitted = context.withdrawn, context.submitted
        accepted: list[tuple[CellEdit, int]] = []
        changed: dict[tuple[str, str, str], _Current] = {}
        before: dict[tuple[str, str, str], int] = {}
        for index in self.pending:
            edit = self.edits[index]
            key = (edit.team_id, edit.inject_id, edit.field)
            status = running.get(edit.exercise_id)
            if status is None or team_exercise.get(edit.team_id) != edit.exercise_id:
                self.outcomes[index] = NotFound(
                    "No such team in this exercise.", code="team_not_found"
                )
            elif edit.participant_id in removed:
                self.outcomes[index] = Forbidden(
                    "You were removed from this team.", code="participant_removed"
                )
            elif (edit.team_id, edit.inject_id) not in delivered:
                self.outcomes[index] = NotFound(
                    "No such inject was delivered to this team.", code="inject_not_found"
                )
            elif status != ExerciseStatus.running:
                self.outcomes[index] = InvalidState(
                    f"The exercise is {status.value}; answers can be edited only while it is "
                    "running.",
                    code="not_running",
                )
            elif lock := answer_lock(
                withdrawn=edit.inject_id in withdrawn,
                submitted=(edit.team_id, edit.inject_id) in submitted,
            ):
                self.outcomes[index] = lock
            else:
                cell = current.get(key)
                if (cell.version if cell else 0) != edit.base_version:
                    self.outcomes[index] = (
                        _conflict(
                            value=cell.value, version=cell.version, updated_by=cell.updated_by
                        )
                        if cell
                        else _conflict(value="", version=0, updated_by="")
                    )
                    continue
                version = edit.base_version + 1
                if cell is None:
                    cell = current[key] = _Current(version, edit.value, edit.author)
                else:
                    cell.version, cell.value, cell.updated_by = version, edit.value, edit.author
                changed[key] = cell
                before.setdefault(key, edit.base_version)
                accepted.append((edit, version))
                self.outcomes[index] = version
        if not accepted:
            return None
        return _Write(accepted=accepted, cells=changed, before=before, now=utcnow())


@dataclass
class _Write:
    """What a judged batch writes: its accepted edits, and each changed cell's final state."""

    accepted: list[tuple[CellEdit, int]]
    cells: dict[tuple[str, str, str], _Current]
    before: dict[tuple[str, str, str], int]  # each changed cell's version before the batch
    now: datetime
    new_events: list[events.NewEvent] = field(init=False)
    rows: list[dict[str, Any]] = field(init=False)  # the events' rows

    def __post_init__(self) -> None:
        self.new_events = [
            events.NewEvent(
                exercise_id=edit.exercise_id,
                type="response",
                payload={
                    "team_id": edit.team_id,
                    "inject_id": edit.inject_id,
                    "field": edit.field,
                    "value": edit.value,
                    "version": version,
                    "updated_by": edit.author,
                },
                team_ids=[edit.team_id],
            )
            for edit, version in self.accepted
        ]
        self.rows = [events.row_of(item, at=self.now) for item in self.new_events]

    @property
    def exercise_ids(self) -> list[str]:
        # Sorted, as _Batch.exercise_ids.
        return sorted({edit.exercise_id for edit, _ in self.accepted})

    def revision_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "team_id": edit.team_id,
                "inject_id": edit.inject_id,
                "field": edit.field,
                "version": version,
                "value": edit.value,
                "author": edit.author,
                "author_participant_id": edit.participant_id,
                "created_at": self.now,
            }
            for edit, version in self.accepted
        ]

    def params(self) -> dict[str, Any]:
        """_WRITE_BATCH_POSTGRES's parameters: each distinct (exercise, team, inject, writer) of
        the accepted edits, to check; each changed cell with its version before the batch; the
        revisions and events. The rows go as JSON: the driver quotes each item of an array
        parameter one by one in Python (a millisecond per batch); one JSON text is encoded in C."""
        checks = dict.fromkeys(
            (e.exercise_id, e.team_id, e.inject_id, e.participant_id) for e, _ in self.accepted
        )
        return {
            "at": self.now,
            "checks": json_text(list(checks)),
            "cells": json_text(
                [
                    [*key, c.value, c.version, c.updated_by, self.before[key]]
                    for key, c in self.cells.items()
                ]
            ),
            "revisions": json_text(
                [[row[k] for k in _REVISION_COLUMNS] for row in self.revision_rows()]
            ),
            "events": json_text(
                [[r["exercise_id"], r["type"], r["team_ids"], r["payload"]] for r in self.rows]
            ),
        }


@dataclass
class _Context:
    """What a batch of edits is judged against, read under the exercises' write locks."""

    status: dict[str, ExerciseStatus] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # each exercise's newest seq
    team_exercise: dict[str, str] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    delivered: set[tuple[str, str]] = field(default_factory=set)
    withdrawn: set[str] = field(default_factory=set)  # inject ids
    submitted: set[tuple[str, str]] = field(default_factory=set)  # (team, inject), not reopened
    current: dict[tuple[str, str, str], _Current] = field(default_factory=dict)


def _batch_context_query(*, arrays: bool) -> CompoundSelect:
    """The union of every kind of row a batch is judged against, with list parameters.

    Built once: building it for each batch took longer than the database took to run it,
    and a batch runs it holding the exercises' write locks. With `arrays` (PostgreSQL) each
    list is one array parameter (`= ANY(…)`), so the query's text is the same for every batch
    and the server plans it once; `IN (…)` has a placeholder per item, a new text per size.
    """
    exercise, team, participant = _EXERCISES, _TEAMS, _PARTICIPANTS
    target, cell, inject, submission = _INJECT_TARGETS, _CELLS, _INJECTS, _SUBMISSIONS
    text_null, int_null = cast(null(), String), cast(null(), Integer)

    def member(column: Any, name: str) -> Any:
        if arrays:
            return column == any_(bindparam(name, type_=ARRAY(String)))
        return column.in_(bindparam(name, expanding=True))

    def branch(
        name: str,
        a: Any,
        b: Any = text_null,
        c: Any = text_null,
        version: Any = int_null,
        value: Any = text_null,
        updated_by: Any = text_null,
    ) -> Any:
        """One kind of row; every kind has the same columns (typed NULLs where it has none)."""
        return sa_select(
            literal_column(f"'{name}'", String).label("kind"),
            a.label("a"),
            b.label("b"),
            c.label("c"),
            version.label("version"),
            value.label("value"),
            updated_by.label("updated_by"),
        )

    # The newest seq too, which recording the batch's events would otherwise read: per exercise
    # row, so the database reads one index entry (max over a GROUP BY read all of the exercise's
    # events, and a busy exercise adds a thousand a second).
    newest = events.newest_seq(exercise.c.id).correlate(exercise).scalar_subquery()
    return union_all(
        branch("status", exercise.c.id, cast(exercise.c.status, String), version=newest).where(
            member(exercise.c.id, "exercise_ids")
        ),
        branch("team", team.c.id, team.c.exercise_id).where(member(team.c.id, "team_ids")),
        branch("removed", participant.c.id).where(
            member(participant.c.id, "writers"), participant.c.removed_at.is_not(None)
        ),
        branch("delivered", target.c.team_id, target.c.inject_id).where(
            member(target.c.team_id, "team_ids"), member(target.c.inject_id, "inject_ids")
        ),
        branch("withdrawn", inject.c.id).where(
            member(inject.c.id, "inject_ids"), inject.c.withdrawn_at.is_not(None)
        ),
        branch("submitted", submission.c.team_id, submission.c.inject_id).where(
            member(submission.c.team_id, "team_ids"),
            member(submission.c.inject_id, "inject_ids"),
            submission.c.reopened_at.is_(None),
        ),
        branch(
            "cell",
            *(cell.c.team_id, cell.c.inject_id, cell.c.field),
            *(cell.c.version, cell.c.value, cell.c.updated_by),
        ).where(member(cell.c.team_id, "team_ids"), member(cell.c.inject_id, "inject_ids")),
    )


@functools.cache
def _batch_context_postgres() -> str:
    """The context query's text for the driver's own connection, in its parameter style. Built
    on first use: only PostgreSQL deployments load the dialect (0.1 s more at every start)."""
    from sqlalchemy.dialects.postgresql import psycopg

    return str(_batch_context_query(arrays=True).compile(dialect=psycopg.dialect()))


def _context_of(rows: Iterable[Sequence[Any]]) -> _Context:
    context = _Context()
    for kind, a, b, c, version, value, updated_by in rows:
        if kind == "status":
            context.status[a] = ExerciseStatus[b]
            context.seen[a] = version or 0
        elif kind == "team":
            context.team_exercise[a] = b
        elif kind == "removed":
            context.removed.add(a)
        elif kind == "delivered":
            context.delivered.add((a, b))
        elif kind == "withdrawn":
            context.withdrawn.add(a)
        elif kind == "submitted":
            context.submitted.add((a, b))
        else:
            context.current[(a, b, c)] = _Current(version, value, updated_by)
    return context


def _store_cells(
    session: Session, *, current: dict[tuple[str, str, str], _Current], now: datetime
) -> None:
    """Each changed cell's final value of the batch (SQLite): one row per cell, not per edit,
    inserted or, for a cell already stored, updated in place."""
    rows = [
        {
            "team_id": team_id,
            "inject_id": inject_id,
            "field": field,
            "value": cell.value,
            "version": cell.version,
            "updated_by": cell.updated_by,
            "updated_at": now,
        }
        for (team_id, inject_id, field), cell in current.items()
    ]
    insert_many(session, _INSERT_CELLS, rows, on_conflict=_UPSERT_CELL)


_CELLS = ResponseCell.__table__  # type: ignore[attr-defined]
_EXERCISES = Exercise.__table__  # type: ignore[attr-defined]
_TEAMS = Team.__table__  # type: ignore[attr-defined]
_PARTICIPANTS = Participant.__table__  # type: ignore[attr-defined]
_INJECT_TARGETS = InjectTarget.__table__  # type: ignore[attr-defined]
_INJECTS = Inject.__table__  # type: ignore[attr-defined]
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_UPSERT_CELL = (
    "ON CONFLICT (team_id, inject_id, field) DO UPDATE SET value = excluded.value, "
    "version = excluded.version, updated_by = excluded.updated_by, "
    "updated_at = excluded.updated_at"
)
_CONTEXT_ROWS = _batch_context_query(arrays=False).subquery()
_BATCH_CONTEXT_SQLITE = sa_select(
    func.json_group_array(func.json_array(*_CONTEXT_ROWS.c))
).select_from(_CONTEXT_ROWS)
_REVISIONS = ResponseRevision.__table__  # type: ignore[attr-defined]
_INSERT_CELLS = _CELLS.insert()
_INSERT_REVISIONS = _REVISIONS.insert()
_REVISION_COLUMNS = (
    "team_id",
    "inject_id",
    "field",
    "version",
    "value",
    "author",
    "author_participant_id",
)
# A batch's write: each changed cell's final value, then every accepted edit's revision and
# event, the events in the batch's order. Held back (nothing written, no seq returned) unless
# everything the batch's judgement checks holds as read once the exercises' locks are held:
# each edit's exercise running, its team in that exercise, its inject delivered to that team,
# its writer not removed, the inject not withdrawn, the team's answer to it not standing
# submitted; each changed cell still at the version before the batch (0: no row
# yet). Deliveries are never taken back. A batch judged under the locks always passes; one
# written as sent (_write_as_sent) is judged here. Each event comes back with its seq and its
# exercise's newest seq from before the batch, for the bell: the statement's subqueries do not
# see its own rows (one statement fewer to send while holding the locks).
_WRITE_BATCH_POSTGRES = """
    WITH judged AS (
        SELECT NOT EXISTS (
            SELECT 1 FROM json_array_elements(CAST(%(checks)s AS json)) AS x
            LEFT JOIN exercise ON exercise.id = x->>0
            LEFT JOIN team ON team.id = x->>1
            LEFT JOIN injecttarget AS target
                ON target.team_id = x->>1 AND target.inject_id = x->>2
            LEFT JOIN participant ON participant.id = x->>3
            LEFT JOIN inject ON inject.id = x->>2
            LEFT JOIN submission
                ON submission.team_id = x->>1 AND submission.inject_id = x->>2
            WHERE exercise.status IS DISTINCT FROM 'running'
                OR team.exercise_id IS DISTINCT FROM x->>0
                OR target.team_id IS NULL
                OR participant.removed_at IS NOT NULL
                OR inject.withdrawn_at IS NOT NULL
                OR (submission.team_id IS NOT NULL AND submission.reopened_at IS NULL)
        ) AND NOT EXISTS (
            SELECT 1 FROM json_array_elements(CAST(%(cells)s AS json)) AS c
            LEFT JOIN responsecell AS stored
                ON stored.team_id = c->>0 AND stored.inject_id = c->>1 AND stored.field = c->>2
            WHERE COALESCE(stored.version, 0) <> CAST(c->>6 AS integer)
        ) AS holds
    ), cell AS (
        INSERT INTO responsecell (team_id, inject_id, field, value, version, updated_by, updated_at)
        SELECT c->>0, c->>1, c->>2, c->>3, CAST(c->>4 AS integer), c->>5, %(at)s
        FROM json_array_elements(CAST(%(cells)s AS json)) AS c
        WHERE (SELECT holds FROM judged)
        ON CONFLICT (team_id, inject_id, field) DO UPDATE SET
            value = excluded.value, version = excluded.version,
            updated_by = excluded.updated_by, updated_at = excluded.updated_at
    ), revision AS (
        INSERT INTO responserevision
            (team_id, inject_id, field, version, value, author, author_participant_id, created_at)
        SELECT r->>0, r->>1, r->>2, CAST(r->>3 AS integer), r->>4, r->>5, r->>6, %(at)s
        FROM json_array_elements(CAST(%(revisions)s AS json)) AS r
        WHERE (SELECT holds FROM judged)
    )
    INSERT INTO event (exercise_id, type, team_ids, payload, at)
    SELECT e->>0, e->>1,
        CASE WHEN json_typeof(e->2) = 'null' THEN NULL ELSE e->2 END, e->3, %(at)s
    FROM json_array_elements(CAST(%(events)s AS json)) WITH ORDINALITY AS items(e, position)
    WHERE (SELECT holds FROM judged)
    ORDER BY items.position
    RETURNING seq, exercise_id,
        (SELECT max(seq) FROM event AS newest WHERE newest.exercise_id = event.exercise_id)
"""


def cells_of(session: Session, *, team_id: str) -> list[ResponseCell]:
    return list(
        session.exec(
            select(ResponseCell)
            .where(ResponseCell.team_id == team_id)
            .order_by(col(ResponseCell.inject_id), col(ResponseCell.field))
        )
    )


def revisions_of(
    session: Session, *, team_id: str, inject_id: str, field: str
) -> list[ResponseRevision]:
    return list(
        session.exec(
            select(ResponseRevision)
            .where(
                ResponseRevision.team_id == team_id,
                ResponseRevision.inject_id == inject_id,
                ResponseRevision.field == field,
            )
            .order_by(col(ResponseRevision.version))
        )
    )


def elapsed_seconds(*, exercise: Exercise, inject: Inject) -> float:
    """Time since delivery on the server's clock, leaving out the pauses since then."""
    paused = exercise.paused_s - inject.paused_s_at_delivery
    if exercise.paused_since is not None:
        paused += (utcnow() - exercise.paused_since).total_seconds()
    return max(0.0, (utcnow() - inject.delivered_at).total_seconds() - paused)


def submit(
    session: Session, *, exercise: Exercise, team: Team, inject_id: str, author: str
) -> Submission:
    """Mark the team's answer as ready; a repeated submit returns the first (retries are safe).

    A submit after a reopen is kept as a resubmission; the first submission stays the team's
    time to announcement."""
    inject = exercises.get_delivered_inject(session, team=team, inject_id=inject_id)
    withdrawn = answer_lock(withdrawn=inject.withdrawn_at is not None, submitted=False)
    if withdrawn is not None:
        raise withdrawn
    existing = session.get(Submission, (team.id, inject.id))
    if is_submitted(existing):
        assert existing is not None
        return existing
    exercises.require_running(exercise, doing="answers can be submitted")
    if existing is not None:
        return _resubmit(session, exercise=exercise, submission=existing, author=author)
    submission = Submission(
        team_id=team.id,
        inject_id=inject.id,
        submitted_at=utcnow(),
        elapsed_s=round(elapsed_seconds(exercise=exercise, inject=inject), 3),
        submitted_by=author,
    )
    try:
        with session.begin_nested():
            session.add(submission)
    except IntegrityError:
        # A teammate's submit won the race; theirs is the team's submission.
        session.rollback()
        winner = session.get(Submission, (team.id, inject.id))
        assert winner is not None
        return winner
    _record_submission(session, exercise_id=exercise.id, submission=submission, resubmissions=[])
    session.commit()
    return submission


def _resubmit(
    session: Session, *, exercise: Exercise, submission: Submission, author: str
) -> Submission:
    events.serialize_exercise(session, exercise_id=exercise.id)
    session.refresh(submission)  # read again holding the lock: a teammate may have just submitted
    if is_submitted(submission):
        return submission
    submission.reopened_at = None
    session.add(submission)
    session.add(
        Resubmission(
            team_id=submission.team_id,
            inject_id=submission.inject_id,
            submitted_at=utcnow(),
            submitted_by=author,
        )
    )
    session.flush()
    resubmissions = resubmissions_of(
        session, team_id=submission.team_id, inject_id=submission.inject_id
    )
    _record_submission(
        session, exercise_id=exercise.id, submission=submission, resubmissions=resubmissions
    )
    session.commit()
    return submission


def _record_submission(
    session: Session,
    *,
    exercise_id: str,
    submission: Submission,
    resubmissions: list[Resubmission],
) -> None:
    events.record(
        session,
        exercise_id=exercise_id,
        type="submission",
        payload=submission_payload(submission, resubmissions),
        team_ids=[submission.team_id],
    )


def submission_payload(
    submission: Submission, resubmissions: Sequence[Resubmission]
) -> dict[str, Any]:
    """A submission as the live channel and the API show it, its later submits included."""
    return {
        "team_id": submission.team_id,
        "inject_id": submission.inject_id,
        "submitted_at": submission.submitted_at.isoformat(),
        "elapsed_s": submission.elapsed_s,
        "submitted_by": submission.submitted_by,
        "reopened_at": submission.reopened_at.isoformat() if submission.reopened_at else None,
        "resubmissions": [
            {"submitted_at": r.submitted_at.isoformat(), "submitted_by": r.submitted_by}
            for r in resubmissions
        ],
    }


def reopen(
    session: Session, *, exercise: Exercise, team: Team, inject_id: str, author: str
) -> Submission:
    """Open a submitted answer for edits again; the submission itself is kept."""
    events.serialize_exercise(session, exercise_id=exercise.id)
    inject = exercises.get_delivered_inject(session, team=team, inject_id=inject_id)
    withdrawn = answer_lock(withdrawn=inject.withdrawn_at is not None, submitted=False)
    if withdrawn is not None:
        raise withdrawn
    if exercise.status == ExerciseStatus.ended:
        raise InvalidState(
            "The exercise has ended; its answers stay as they were.", code="exercise_ended"
        )
    submission = session.get(Submission, (team.id, inject.id))
    if submission is None:
        raise InvalidState(
            "This answer has not been submitted; there is nothing to reopen.",
            code="not_submitted",
        )
    if submission.reopened_at is not None:  # reopened already: retries are safe
        return submission
    submission.reopened_at = utcnow()
    session.add(submission)
    events.record(
        session,
        exercise_id=exercise.id,
        type="submission_reopened",
        payload={
            "team_id": team.id,
            "inject_id": inject.id,
            "reopened_at": submission.reopened_at.isoformat(),
            "reopened_by": author,
        },
        team_ids=[team.id],
    )
    session.commit()
    return submission


def resubmissions_of(
    session: Session, *, team_id: str, inject_id: str | None = None
) -> list[Resubmission]:
    query = select(Resubmission).where(Resubmission.team_id == team_id)
    if inject_id is not None:
        query = query.where(Resubmission.inject_id == inject_id)
    return list(session.exec(query.order_by(col(Resubmission.id))))


def submissions_of(session: Session, *, team_id: str) -> list[Submission]:
    return list(
        session.exec(
            select(Submission)
            .where(Submission.team_id == team_id)
            .order_by(col(Submission.submitted_at))
        )
    )
