"""REST endpoints of exercises, teams, injects and messages."""

from fastapi import APIRouter, status
from starlette.concurrency import run_in_threadpool

from app.auth.deps import CurrentFacilitator
from app.db import SessionDep
from app.errors import API_ERRORS
from app.exercises import service
from app.exercises.deps import CurrentTeam, Library, OwnedExercise
from app.exercises.schemas import (
    ExerciseCreate,
    ExerciseDetail,
    ExerciseRead,
    ExerciseUpdate,
    InjectCreate,
    InjectRead,
    MessageCreate,
    MessageRead,
    TeamCreate,
    TeamRead,
)

router = APIRouter(prefix="/api", tags=["exercises"], responses=API_ERRORS)


@router.post("/exercises", response_model=ExerciseRead, status_code=status.HTTP_201_CREATED)
def create_exercise(
    body: ExerciseCreate, session: SessionDep, facilitator: CurrentFacilitator, library: Library
) -> ExerciseRead:
    """Create an exercise in draft with its teams and their join codes."""
    exercise = service.create_exercise(session, owner=facilitator, data=body, library=library)
    return service.exercise_read(session, exercise)


@router.get("/exercises", response_model=list[ExerciseRead])
def list_exercises(session: SessionDep, facilitator: CurrentFacilitator) -> list[ExerciseRead]:
    """The caller's exercises, newest first."""
    return [
        service.exercise_read(session, ex) for ex in service.list_owned(session, owner=facilitator)
    ]


@router.get("/exercises/{exercise_id}", response_model=ExerciseDetail)
def get_exercise(exercise: OwnedExercise, session: SessionDep) -> ExerciseDetail:
    """An exercise with its teams, participants and injects."""
    return service.exercise_detail(session, exercise)


@router.patch("/exercises/{exercise_id}", response_model=ExerciseRead)
def update_exercise(
    body: ExerciseUpdate, exercise: OwnedExercise, session: SessionDep
) -> ExerciseRead:
    """Rename the exercise or change its language or time zone; only the fields given change."""
    service.update_exercise(session, exercise=exercise, data=body)
    return service.exercise_read(session, exercise)


def _transition(exercise: OwnedExercise, session: SessionDep, action: str) -> ExerciseDetail:
    service.transition(session, exercise=exercise, action=action)
    return service.exercise_detail(session, exercise)


@router.post("/exercises/{exercise_id}/start", response_model=ExerciseDetail)
def start(exercise: OwnedExercise, session: SessionDep) -> ExerciseDetail:
    """draft → running; 409 from any other status."""
    return _transition(exercise, session, "start")


@router.post("/exercises/{exercise_id}/pause", response_model=ExerciseDetail)
def pause(exercise: OwnedExercise, session: SessionDep) -> ExerciseDetail:
    """running → paused; elapsed times stop counting."""
    return _transition(exercise, session, "pause")


@router.post("/exercises/{exercise_id}/resume", response_model=ExerciseDetail)
def resume(exercise: OwnedExercise, session: SessionDep) -> ExerciseDetail:
    """paused → running."""
    return _transition(exercise, session, "resume")


@router.post("/exercises/{exercise_id}/end", response_model=ExerciseDetail)
def end(exercise: OwnedExercise, session: SessionDep) -> ExerciseDetail:
    """running → ended; joins and writes are refused afterwards."""
    return _transition(exercise, session, "end")


@router.post(
    "/exercises/{exercise_id}/teams", response_model=TeamRead, status_code=status.HTTP_201_CREATED
)
def add_team(body: TeamCreate, exercise: OwnedExercise, session: SessionDep) -> TeamRead:
    """Add a team; allowed until the exercise ends."""
    team = service.add_team(session, exercise=exercise, name=body.name)
    return TeamRead.model_validate(team, from_attributes=True)


@router.delete(
    "/exercises/{exercise_id}/participants/{participant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
)
def remove_participant(participant_id: str, exercise: OwnedExercise, session: SessionDep) -> None:
    """Remove a participant: their token stops working and their live connection is closed."""
    service.remove_participant(session, exercise=exercise, participant_id=participant_id)


@router.post(
    "/exercises/{exercise_id}/injects",
    response_model=InjectRead,
    status_code=status.HTTP_201_CREATED,
)
async def deliver_inject(
    body: InjectCreate, exercise: OwnedExercise, session: SessionDep, library: Library
) -> InjectRead:
    """Deliver a library scenario, one of its follow-ups, or the facilitator's own text."""
    # A coroutine with one explicit thread hop for the database: as a plain function FastAPI
    # would also validate the response in a thread, and every participant waits on this one.
    return await run_in_threadpool(
        service.deliver_inject, session, exercise_id=exercise.id, data=body, library=library
    )


@router.post(
    "/exercises/{exercise_id}/messages",
    response_model=MessageRead,
    status_code=status.HTTP_201_CREATED,
)
def send_message(
    body: MessageCreate,
    exercise: OwnedExercise,
    session: SessionDep,
    facilitator: CurrentFacilitator,
) -> MessageRead:
    """Send a note to every team or to chosen ones."""
    event = service.send_message(
        session,
        exercise=exercise,
        text=body.text,
        team_ids=body.team_ids,
        sender=facilitator.username,
    )
    assert event.seq is not None
    return MessageRead(seq=event.seq, text=body.text, team_ids=event.team_ids, at=event.at)


@router.get("/teams/{team_id}/injects", response_model=list[InjectRead], tags=["teams"])
def team_injects(access: CurrentTeam, session: SessionDep) -> list[InjectRead]:
    """The injects delivered to this team, in order."""
    return service.injects_of(session, exercise_id=access.exercise.id, team_id=access.team.id)
