"""Versioned cell writes (never a silent overwrite), revision history and submissions."""

from typing import Any, NoReturn

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.db import utcnow
from app.errors import Conflict, Invalid
from app.exercises import service as exercises
from app.exercises.models import Exercise, Inject, Team
from app.live import events
from app.responses.fields import DISCLOSE_CHOICES, FIELD_KEYS, MAX_VALUE_LENGTH
from app.responses.models import ResponseCell, ResponseRevision, Submission
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
    inject = exercises.get_delivered_inject(session, team=team, inject_id=inject_id)
    exercises.require_running(exercise, doing="answers can be edited")
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
    body = (
        conflict_body(value=current.value, version=current.version, updated_by=current.updated_by)
        if current is not None
        else conflict_body(value="", version=0, updated_by="")
    )
    raise Conflict(
        "Someone else changed this answer since you last saw it; merge with the current value.",
        code="conflict",
        current=body,
    )


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
    """Mark the team's answer as ready; a repeated submit returns the first (retries are safe)."""
    inject = exercises.get_delivered_inject(session, team=team, inject_id=inject_id)
    existing = session.get(Submission, (team.id, inject.id))
    if existing is not None:
        return existing
    exercises.require_running(exercise, doing="answers can be submitted")
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
    events.record(
        session,
        exercise_id=exercise.id,
        type="submission",
        payload={
            "team_id": team.id,
            "inject_id": inject.id,
            "submitted_at": submission.submitted_at.isoformat(),
            "elapsed_s": submission.elapsed_s,
            "submitted_by": author,
        },
        team_ids=[team.id],
    )
    session.commit()
    return submission


def submissions_of(session: Session, *, team_id: str) -> list[Submission]:
    return list(
        session.exec(
            select(Submission)
            .where(Submission.team_id == team_id)
            .order_by(col(Submission.submitted_at))
        )
    )
