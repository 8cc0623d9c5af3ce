"""REST endpoints of a team's answers and submissions."""

from fastapi import APIRouter, Request

from app.db import SessionDep
from app.errors import API_ERRORS
from app.exercises.deps import CurrentTeam
from app.responses import service
from app.responses.models import Submission
from app.responses.schemas import (
    CellRead,
    CellWrite,
    CellWritten,
    ResubmissionRead,
    RevisionRead,
    SubmissionRead,
    SubmitResult,
)

router = APIRouter(prefix="/api/teams/{team_id}", tags=["teams"], responses=API_ERRORS)


@router.get("/responses", response_model=list[CellRead])
def list_responses(access: CurrentTeam, session: SessionDep) -> list[CellRead]:
    """Every answer cell of the team with its version."""
    return [
        CellRead.model_validate(cell, from_attributes=True)
        for cell in service.cells_of(session, team_id=access.team.id)
    ]


@router.put("/responses/{inject_id}/{field}", response_model=CellWritten)
def write_response(
    inject_id: str,
    field: str,
    body: CellWrite,
    access: CurrentTeam,
    session: SessionDep,
    request: Request,
) -> CellWritten:
    """Write one field if `base_version` is the current version; a stale one gets 409 and the value."""
    request.app.state.edit_limiter.take(access.actor.rate_key)
    cell = service.write_cell(
        session,
        exercise=access.exercise,
        team=access.team,
        inject_id=inject_id,
        field=field,
        value=body.value,
        base_version=body.base_version,
        author=access.actor.display_name,
        participant_id=access.actor.participant.id if access.actor.participant else None,
    )
    return CellWritten(version=cell.version, value=cell.value)


@router.get("/responses/{inject_id}/{field}/revisions", response_model=list[RevisionRead])
def list_revisions(
    inject_id: str, field: str, access: CurrentTeam, session: SessionDep
) -> list[RevisionRead]:
    """How one answer evolved: every accepted write in order."""
    return [
        RevisionRead.model_validate(rev, from_attributes=True)
        for rev in service.revisions_of(
            session, team_id=access.team.id, inject_id=inject_id, field=field
        )
    ]


@router.get("/submissions", response_model=list[SubmissionRead])
def list_submissions(access: CurrentTeam, session: SessionDep) -> list[SubmissionRead]:
    """The team's submissions with the time each took."""
    later: dict[str, list[ResubmissionRead]] = {}
    for resubmission in service.resubmissions_of(session, team_id=access.team.id):
        later.setdefault(resubmission.inject_id, []).append(
            ResubmissionRead.model_validate(resubmission, from_attributes=True)
        )
    return [
        _submission_read(sub, later.get(sub.inject_id, []))
        for sub in service.submissions_of(session, team_id=access.team.id)
    ]


def _submission_read(submission: Submission, later: list[ResubmissionRead]) -> SubmissionRead:
    return SubmissionRead(
        inject_id=submission.inject_id,
        submitted_at=submission.submitted_at,
        elapsed_s=submission.elapsed_s,
        submitted_by=submission.submitted_by,
        reopened_at=submission.reopened_at,
        resubmissions=later,
    )


@router.post("/injects/{inject_id}/submit", response_model=SubmitResult)
def submit(inject_id: str, access: CurrentTeam, session: SessionDep) -> SubmitResult:
    """Declare the team's answer to an inject ready; the server measures the time it took."""
    submission = service.submit(
        session,
        exercise=access.exercise,
        team=access.team,
        inject_id=inject_id,
        author=access.actor.display_name,
    )
    return SubmitResult(submitted_at=submission.submitted_at, elapsed_s=submission.elapsed_s)


@router.post("/injects/{inject_id}/reopen", response_model=SubmissionRead)
def reopen(inject_id: str, access: CurrentTeam, session: SessionDep) -> SubmissionRead:
    """Open a submitted answer for edits again (a team member or the facilitator); submitting
    it again is recorded too, the first submission staying the team's time to announcement."""
    submission = service.reopen(
        session,
        exercise=access.exercise,
        team=access.team,
        inject_id=inject_id,
        author=access.actor.display_name,
    )
    later = service.resubmissions_of(session, team_id=access.team.id, inject_id=inject_id)
    return _submission_read(
        submission, [ResubmissionRead.model_validate(r, from_attributes=True) for r in later]
    )
