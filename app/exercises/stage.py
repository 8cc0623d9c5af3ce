"""The projector's stage: what the wall in front of every team shows, chosen by the facilitator.

An inject delivered to every team goes on stage by itself; a team-targeted one only when the
facilitator puts it there, so one team's inject never takes over the wall in front of the others.
"""

from datetime import datetime

from sqlmodel import Session, col, select

from app.db import utcnow
from app.errors import InvalidState
from app.eventlog import service as events
from app.exercises import service as exercises
from app.exercises.models import Exercise, Inject
from app.exercises.schemas import StageRead, StageSet


def current_stage(session: Session, *, exercise: Exercise) -> StageRead:
    """What the projector shows now: the facilitator's choice, unless an inject for every team
    was delivered since (that one then); an inject withdrawn on stage gives way to the status
    board."""
    chosen = StageRead.model_validate(exercise.stage) if exercise.stage else StageRead(show="lobby")
    newest = session.exec(
        select(Inject)
        .where(Inject.exercise_id == exercise.id, col(Inject.for_all_teams).is_(True))
        .order_by(col(Inject.position).desc())
        .limit(1)
    ).first()
    if newest is not None and _later(newest.delivered_at, than=chosen.at):
        chosen = StageRead(show="inject", inject_id=newest.id, at=newest.delivered_at)
    if chosen.show == "inject":
        inject = session.get(Inject, chosen.inject_id) if chosen.inject_id else None
        if inject is None or inject.withdrawn_at is not None:
            return StageRead(show="status", at=inject.withdrawn_at if inject else chosen.at)
    return chosen


def _later(moment: datetime, *, than: datetime | None) -> bool:
    return than is None or moment > than


def set_stage(session: Session, *, exercise: Exercise, data: StageSet) -> StageRead:
    """Put the lobby, an inject of the exercise, a message or the status board on the projector."""
    if data.inject_id is not None:
        inject = exercises.inject_of(session, exercise=exercise, inject_id=data.inject_id)
        if inject.withdrawn_at is not None:
            raise InvalidState(
                "This inject was withdrawn; it cannot go on the projector.",
                code="inject_withdrawn",
            )
    stage = StageRead(show=data.show, inject_id=data.inject_id, text=data.text, at=utcnow())
    exercise.stage = stage.model_dump(mode="json")
    session.add(exercise)
    # Only facilitators' sockets (the console and the projector) hear of it: an empty audience.
    events.record(
        session,
        exercise_id=exercise.id,
        type="stage",
        payload={"stage": stage.model_dump(mode="json")},
        team_ids=[],
    )
    session.commit()
    return stage
