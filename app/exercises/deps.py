"""Load-or-404 dependencies: the facilitator's own exercise, a team the caller may access."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from app.auth.deps import (
    Actor,
    CurrentActor,
    check_cookie_origin,
    facilitator_credential,
    facilitator_required,
)
from app.db import SessionDep
from app.errors import Forbidden, NotFound
from app.exercises import service
from app.exercises.models import Exercise, Team
from app.scenarios.loader import ScenarioLibrary


async def owned_exercise(exercise_id: str, request: Request, session: SessionDep) -> Exercise:
    """The requesting facilitator's exercise: who asks and what, in one query in one thread trip."""

    def load() -> Exercise:
        found = facilitator_credential(request)
        if found is not None:
            exercise = service.owned_via_token(session, token=found.token, exercise_id=exercise_id)
            if exercise is not None:
                check_cookie_origin(request, found)
                return exercise
        # Refused: find out why (401, 403 or 404) with the queries only a refusal pays.
        owner = facilitator_required(request, session)
        return service.get_owned(session, exercise_id=exercise_id, owner=owner)

    return await run_in_threadpool(load)


@dataclass(frozen=True)
class TeamAccess:
    """A team, its exercise, and who is asking."""

    team: Team
    exercise: Exercise
    actor: Actor


def team_access(team_id: str, session: SessionDep, actor: CurrentActor) -> TeamAccess:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound("No such team.", code="team_not_found")
    exercise = session.get(Exercise, team.exercise_id)
    assert exercise is not None
    if actor.participant is not None and actor.participant.team_id == team.id:
        return TeamAccess(team=team, exercise=exercise, actor=actor)
    if actor.facilitator is not None and actor.facilitator.id == exercise.owner_id:
        return TeamAccess(team=team, exercise=exercise, actor=actor)
    if actor.participant is not None:
        raise Forbidden("You can only see your own team.", code="other_team")
    raise NotFound("No such team.", code="team_not_found")


async def scenario_library(request: Request) -> ScenarioLibrary:
    # A coroutine: as a plain function FastAPI would send this attribute read to a worker thread.
    library: ScenarioLibrary = request.app.state.scenarios
    return library


OwnedExercise = Annotated[Exercise, Depends(owned_exercise)]
CurrentTeam = Annotated[TeamAccess, Depends(team_access)]
Library = Annotated[ScenarioLibrary, Depends(scenario_library)]
