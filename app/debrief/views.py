"""REST endpoints of the debrief: the side-by-side view and the facilitator's evaluation."""

from fastapi import APIRouter

from app.db import SessionDep
from app.debrief import service
from app.debrief.schemas import DebriefRead, EvaluationRead, EvaluationWrite
from app.errors import API_ERRORS
from app.exercises.deps import Library, OwnedExercise

router = APIRouter(prefix="/api/exercises/{exercise_id}", tags=["debrief"], responses=API_ERRORS)


@router.get("/debrief", response_model=DebriefRead)
def get_debrief(exercise: OwnedExercise, session: SessionDep, library: Library) -> DebriefRead:
    """Every inject with each team's answers side by side, timings, guidance and the evaluation."""
    return service.debrief_read(session, exercise=exercise, library=library)


@router.get("/evaluation", response_model=EvaluationRead)
def get_evaluation(exercise: OwnedExercise, session: SessionDep) -> EvaluationRead:
    """The facilitator's ratings, findings and improvement plan."""
    return service.evaluation_read(service.load_results(session, exercise=exercise, events=False))


@router.put("/evaluation", response_model=EvaluationRead)
def put_evaluation(
    body: EvaluationWrite, exercise: OwnedExercise, session: SessionDep
) -> EvaluationRead:
    """Replace the evaluation; editable in every status, also after the exercise ended."""
    service.save_evaluation(session, exercise=exercise, data=body)
    return service.evaluation_read(service.load_results(session, exercise=exercise, events=False))
