"""Database work of the live channel: who a socket is, the hello snapshot, replays and edits."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.auth import service as auth
from app.auth.models import Facilitator
from app.eventlog import service as events
from app.eventlog import wire
from app.eventlog.models import Event
from app.eventlog.wire import encode
from app.exercises import service as exercises
from app.exercises import stage
from app.exercises.models import Exercise, Participant, Team
from app.responses import service as responses
from app.responses.models import ResponseCell, Resubmission, Submission

REPLAY_PAGE = 500


@dataclass(frozen=True)
class ParticipantSeat:
    """A participant's socket: who, in which team of which exercise, and whether removed."""

    participant_id: str
    name: str
    team_id: str
    exercise_id: str
    removed: bool


@dataclass
class Snapshot:
    """Everything a late joiner needs at once, as of (at least) `last_seq`."""

    last_seq: int
    exercise: dict[str, Any]
    team: dict[str, Any] | None
    body: dict[str, Any]
    # team id → [(participant id, name)], for the presence lists.
    rosters: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @cached_property
    def encoded_body(self) -> str:
        """`body` as JSON, encoded once for every socket the snapshot serves."""
        return encode(self.body)


def participant_by_token(session: Session, *, token: str) -> Participant | None:
    """The participant of a token, removed ones included (they are refused, not unknown)."""
    if not token.startswith(auth.PARTICIPANT_TOKEN_PREFIX):
        return None
    return session.exec(
        select(Participant).where(Participant.token_hash == auth.hash_token(token))
    ).first()


def participant_seat(session: Session, *, token: str) -> ParticipantSeat | None:
    """The seat of a participant token, removed ones included, in one query: after a restart
    every participant's socket asks at once."""
    if not token.startswith(auth.PARTICIPANT_TOKEN_PREFIX):
        return None
    row = session.execute(
        sa_select(
            col(Participant.id),
            col(Participant.name),
            col(Participant.removed_at),
            col(Participant.team_id),
            col(Team.exercise_id),
        )
        .join(Team, col(Team.id) == col(Participant.team_id))
        .where(col(Participant.token_hash) == auth.hash_token(token))
    ).first()
    if row is None:
        return None
    participant_id, name, removed_at, team_id, exercise_id = row
    return ParticipantSeat(
        participant_id=participant_id,
        name=name,
        team_id=team_id,
        exercise_id=exercise_id,
        removed=removed_at is not None,
    )


def facilitator_by_token(session: Session, *, token: str) -> Facilitator | None:
    return auth.facilitator_for_token(session, token=token)


def owns_exercise(session: Session, *, facilitator: Facilitator, exercise_id: str) -> bool:
    exercise = session.get(Exercise, exercise_id)
    return exercise is not None and exercise.owner_id == facilitator.id


def exercise_state(exercise: Exercise) -> dict[str, Any]:
    """The exercise's status and clock, as a client needs them to show timers."""
    return {
        "id": exercise.id,
        "title": exercise.title,
        "locale": exercise.locale,
        "status": exercise.status.value,
        "started_at": _iso(exercise.started_at),
        "ended_at": _iso(exercise.ended_at),
        "paused_s": exercise.paused_s,
        "paused_since": _iso(exercise.paused_since),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def snapshot(session: Session, *, exercise_id: str, team_id: str | None) -> Snapshot:
    """The state of the exercise for one team (None: the facilitator's view of every team)."""
    # The seq is read first: the rows read after it are at least that new, and any later
    # event re-applies idempotently (cells carry versions, injects and submissions ids).
    last_seq = events.last_seq(session, exercise_id=exercise_id)
    exercise = session.get(Exercise, exercise_id)
    assert exercise is not None
    teams = exercises.teams_of(session, exercise_id=exercise_id)
    team_ids = [t.id for t in teams] if team_id is None else [team_id]
    injects = exercises.injects_of(session, exercise_id=exercise_id, team_id=team_id)
    cells = session.exec(
        select(ResponseCell)
        .where(col(ResponseCell.team_id).in_(team_ids))
        .order_by(col(ResponseCell.team_id), col(ResponseCell.inject_id), col(ResponseCell.field))
    ).all()
    submissions = session.exec(
        select(Submission)
        .where(col(Submission.team_id).in_(team_ids))
        .order_by(col(Submission.submitted_at))
    ).all()
    later: dict[tuple[str, str], list[Resubmission]] = {}
    for resubmission in session.exec(
        select(Resubmission)
        .where(col(Resubmission.team_id).in_(team_ids))
        .order_by(col(Resubmission.id))
    ):
        later.setdefault((resubmission.team_id, resubmission.inject_id), []).append(resubmission)
    participants = session.exec(
        select(Participant)
        .where(col(Participant.team_id).in_(team_ids))
        .where(col(Participant.removed_at).is_(None))
        .order_by(col(Participant.joined_at))
    ).all()
    messages = [
        wire.message(event)
        for event in session.exec(
            select(Event)
            .where(Event.exercise_id == exercise_id, Event.type == "message")
            .order_by(col(Event.seq))
        )
        if team_id is None or wire.visible_to_team(event, team_id)
    ]
    rosters: dict[str, list[tuple[str, str]]] = {tid: [] for tid in team_ids}
    for participant in participants:
        rosters[participant.team_id].append((participant.id, participant.name))
    body: dict[str, Any] = {
        "exercise": exercise_state(exercise),
        "injects": [inject.model_dump(mode="json") for inject in injects],
        "cells": [
            {
                "team_id": cell.team_id,
                "inject_id": cell.inject_id,
                "field": cell.field,
                "value": cell.value,
                "version": cell.version,
                "updated_by": cell.updated_by,
                "updated_at": cell.updated_at.isoformat(),
            }
            for cell in cells
        ],
        "submissions": [
            responses.submission_payload(sub, later.get((sub.team_id, sub.inject_id), []))
            for sub in submissions
        ],
        "messages": messages,
    }
    team: dict[str, Any] | None = None
    if team_id is None:
        body["teams"] = [{"id": t.id, "name": t.name, "join_code": t.join_code} for t in teams]
        body["stage"] = stage.current_stage(session, exercise=exercise).model_dump(mode="json")
    else:
        own = next(t for t in teams if t.id == team_id)
        team = {"id": own.id, "name": own.name}
    return Snapshot(
        last_seq=last_seq,
        exercise=exercise_state(exercise),
        team=team,
        body=body,
        rosters=rosters,
    )


def events_after(
    session: Session, *, exercise_id: str, after_seq: int, limit: int = REPLAY_PAGE
) -> list[Event]:
    """The exercise's stored events after `after_seq`, oldest first, at most `limit`."""
    return list(
        session.exec(
            select(Event)
            .where(Event.exercise_id == exercise_id, col(Event.seq) > after_seq)
            .order_by(col(Event.seq))
            .limit(limit)
        )
    )
