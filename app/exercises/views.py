"""REST endpoints of exercises, teams, injects and messages."""

from fastapi import APIRouter, status
from starlette.concurrency import run_in_threadpool

from app.auth.deps import CurrentFacilitator
from app.db import SessionDep
from app.debrief import service as debrief
from app.errors import API_ERRORS
from app.exercises import service, stage
from app.exercises.deps import CurrentTeam, Library, OwnedExercise
from app.exercises.schemas import (
    ExerciseCopy,
    ExerciseCreate,
    ExerciseDetail,
    ExerciseRead,
    ExerciseUpdate,
    InjectCreate,
    InjectRead,
    MessageCreate,
    MessageRead,
    StageRead,
    StageSet,
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


@router.delete("/exercises/{exercise_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_exercise(exercise: OwnedExercise, session: SessionDep) -> None:
    """Delete a draft or ended exercise and everything of it; running or paused → 409."""
    service.delete_exercise(session, exercise=exercise)


@router.post(
    "/exercises/{exercise_id}/copy",
    response_model=ExerciseRead,
    status_code=status.HTTP_201_CREATED,
)
def copy_exercise(body: ExerciseCopy, exercise: OwnedExercise, session: SessionDep) -> ExerciseRead:
    """Run the same workshop again: a new draft with the same teams (new join codes) and
    settings, no participants, injects or answers; open improvement actions carried over."""
    copy = debrief.copy_exercise(session, exercise=exercise, title=body.title)
    return service.exercise_read(session, copy)


@router.get("/exercises/{exercise_id}/stage", response_model=StageRead)
def get_stage(exercise: OwnedExercise, session: SessionDep) -> StageRead:
    """What the projector shows now."""
    return stage.current_stage(session, exercise=exercise)


@router.put("/exercises/{exercise_id}/stage", response_model=StageRead)
def put_stage(body: StageSet, exercise: OwnedExercise, session: SessionDep) -> StageRead:
    """Put the lobby, an inject, a message or the status board on the projector."""
    return stage.set_stage(session, exercise=exercise, data=body)


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


@router.post("/exercises/{exercise_id}/injects/{inject_id}/withdraw", response_model=InjectRead)
def withdraw_inject(inject_id: str, exercise: OwnedExercise, session: SessionDep) -> InjectRead:
    """Take back a mistaken inject: teams see it withdrawn, its answers stay readable and take
    no more edits, its pending follow-ups are not delivered; withdrawing again → 409."""
    return service.withdraw_inject(session, exercise=exercise, inject_id=inject_id)


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
