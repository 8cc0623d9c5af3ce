"""Exports of an exercise: the debrief workbook, and the JSON archive with its import."""

import re
import secrets
from datetime import UTC
from typing import Any
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.auth import service as auth
from app.auth.models import Facilitator
from app.db import new_id, utcnow
from app.debrief import service as debrief
from app.debrief.models import Evaluation, ImprovementAction, InjectRating
from app.errors import Invalid
from app.eventlog.models import Event
from app.exercises import zones
from app.exercises.models import (
    Exercise,
    ExerciseStatus,
    Inject,
    InjectTarget,
    Participant,
    Team,
)
from app.export.schemas import (
    ARCHIVE_FORMAT,
    ARCHIVE_VERSION,
    Archive,
    ArchiveCell,
    ArchiveEvaluation,
    ArchiveEvent,
    ArchiveExercise,
    ArchiveInject,
    ArchiveParticipant,
    ArchivePlanItem,
    ArchiveRating,
    ArchiveResubmission,
    ArchiveRevision,
    ArchiveSubmission,
    ArchiveTeam,
)
from app.responses import service as responses
from app.responses.fields import FIELD_KEYS
from app.responses.models import ResponseCell, ResponseRevision, Resubmission, Submission

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_JOIN_CODE_ATTEMPTS = 10


def workbook(session: Session, *, exercise: Exercise) -> bytes:
    """The debrief workbook of the exercise."""
    # Imported here: openpyxl is a tenth of the server's start-up, and most runs export once.
    from app.export.workbook import build_workbook

    return build_workbook(debrief.load_results(session, exercise=exercise))


def download_name(exercise: Exercise, *, extension: str) -> str:
    """A Content-Disposition value: an ASCII fallback name and the title in UTF-8."""
    stamp = (exercise.started_at or exercise.created_at).astimezone(UTC).strftime("%Y%m%d")
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "-", exercise.title).strip("-") or "exercise"
    fallback = f"tabletop-{ascii_name[:60]}-{stamp}.{extension}"
    full = f"{exercise.title[:100]}-{stamp}.{extension}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(full, safe='')}"


def archive(session: Session, *, exercise: Exercise) -> Archive:
    """Every row of the exercise, ready to move to another server (participants' tokens stay here)."""
    results = debrief.load_results(session, exercise=exercise, revisions=True)
    evaluation = results.evaluation
    return Archive(
        format=ARCHIVE_FORMAT,
        version=ARCHIVE_VERSION,
        exported_at=utcnow(),
        exercise=ArchiveExercise(
            **exercise.model_dump(exclude={"owner_id", "status"}), status=exercise.status.value
        ),
        teams=[ArchiveTeam(**team.model_dump(exclude={"exercise_id"})) for team in results.teams],
        participants=[
            ArchiveParticipant(**participant.model_dump(exclude={"token_hash"}))
            for members in results.participants.values()
            for participant in members
        ],
        injects=[
            ArchiveInject(
                **inject.model_dump(exclude={"exercise_id"}),
                team_ids=results.targets.get(inject.id, []),
            )
            for inject in results.injects
        ],
        cells=[
            ArchiveCell(**cell._asdict())
            for by_field in results.cells.values()
            for cell in by_field.values()
        ],
        revisions=[ArchiveRevision(**rev.model_dump(exclude={"id"})) for rev in results.revisions],
        submissions=[ArchiveSubmission(**sub.model_dump()) for sub in results.submissions.values()],
        resubmissions=[
            ArchiveResubmission(**later.model_dump(exclude={"id"}))
            for team in results.teams
            for later in responses.resubmissions_of(session, team_id=team.id)
        ],
        events=[ArchiveEvent(**event._asdict()) for event in results.events],
        evaluation=ArchiveEvaluation(
            strengths=list(evaluation.strengths) if evaluation else [],
            areas_for_improvement=list(evaluation.areas_for_improvement) if evaluation else [],
            updated_at=evaluation.updated_at if evaluation else None,
            ratings=[ArchiveRating(**rating.model_dump()) for rating in results.ratings.values()],
            improvement_plan=[
                ArchivePlanItem(**item.model_dump(exclude={"id", "exercise_id"}))
                for item in results.plan
            ],
        ),
    )


def _check_references(data: Archive) -> None:
    """Every row must point at a team, inject or participant of the same archive."""
    teams = {team.id for team in data.teams}
    injects = {inject.id for inject in data.injects}
    participants = {participant.id for participant in data.participants}
    targets = {(team_id, inject.id) for inject in data.injects for team_id in inject.team_ids}

    def fail(where: str, message: str) -> None:
        raise Invalid(f"The archive is inconsistent: {where} {message}.", code="invalid_archive")

    for name, ids in (("teams", teams), ("injects", injects), ("participants", participants)):
        count = len(getattr(data, name))
        if len(ids) != count:
            fail(name, "repeats an id")
    for index, participant in enumerate(data.participants):
        if participant.team_id not in teams:
            fail(f"participants[{index}].team_id", "names no team of the archive")
    for index, inject in enumerate(data.injects):
        unknown = set(inject.team_ids) - teams
        if unknown:
            fail(f"injects[{index}].team_ids", "names teams that are not in the archive")
    rows: list[tuple[str, list[Any]]] = [
        ("cells", data.cells),
        ("revisions", data.revisions),
        ("submissions", data.submissions),
        ("resubmissions", data.resubmissions),
        ("evaluation.ratings", data.evaluation.ratings),
    ]
    for name, items in rows:
        for index, item in enumerate(items):
            if (item.team_id, item.inject_id) not in targets:
                fail(f"{name}[{index}]", "refers to an inject that was not delivered to that team")
            if name in ("cells", "revisions") and item.field not in FIELD_KEYS:
                fail(f"{name}[{index}].field", f"is {item.field!r}, which is not a response field")
    for index, revision in enumerate(data.revisions):
        author = revision.author_participant_id
        if author is not None and author not in participants:
            fail(f"revisions[{index}].author_participant_id", "names no participant of the archive")


def _remap(value: Any, ids: dict[str, str]) -> Any:
    """The value with every old id replaced by its new one (event payloads embed ids anywhere)."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_remap(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _remap(item, ids) for key, item in value.items()}
    return value


def import_archive(session: Session, *, owner: Facilitator, data: Archive) -> Exercise:
    """A new exercise owned by `owner` with every value and timestamp of the archive.

    Rows get new ids and teams new join codes, so the archive can be imported next to the
    original; participants keep their names but cannot sign in again (their tokens stay behind).
    """
    assert owner.id is not None
    _check_references(data)
    source = data.exercise
    exercise = Exercise(
        owner_id=owner.id,
        title=source.title,
        locale=source.locale,
        time_zone=zones.checked_time_zone(
            source.time_zone or zones.default_time_zone(source.locale)
        ),
        status=ExerciseStatus(source.status),
        scenario_ids=list(source.scenario_ids),
        created_at=source.created_at,
        started_at=source.started_at,
        ended_at=source.ended_at,
        paused_s=source.paused_s,
        paused_since=source.paused_since,
    )
    session.add(exercise)
    session.flush()
    ids: dict[str, str] = {source.id: exercise.id}
    for team in data.teams:
        ids[team.id] = new_id()
    for participant in data.participants:
        ids[participant.id] = new_id()
    for inject in data.injects:
        ids[inject.id] = new_id()
    # The stage names an inject of the archive.
    exercise.stage = _remap(source.stage, ids)
    session.add(exercise)
    for team in data.teams:
        _insert_team(session, exercise_id=exercise.id, team=team, new_team_id=ids[team.id])
    session.add_all(
        Participant(
            id=ids[p.id],
            team_id=ids[p.team_id],
            name=p.name,
            # A random value that is the hash of no token: nobody can sign in as an imported participant.
            token_hash=secrets.token_hex(32),
            joined_at=p.joined_at,
            removed_at=p.removed_at,
        )
        for p in data.participants
    )
    session.flush()
    for inject in data.injects:
        session.add(
            Inject(
                **inject.model_dump(exclude={"id", "team_ids", "texts"}),
                id=ids[inject.id],
                exercise_id=exercise.id,
                texts=_remap(inject.texts, ids),
            )
        )
    session.flush()
    session.add_all(
        InjectTarget(inject_id=ids[inject.id], team_id=ids[team_id])
        for inject in data.injects
        for team_id in inject.team_ids
    )
    session.add_all(
        ResponseCell(
            **cell.model_dump(exclude={"team_id", "inject_id"}),
            team_id=ids[cell.team_id],
            inject_id=ids[cell.inject_id],
        )
        for cell in data.cells
    )
    session.add_all(
        ResponseRevision(
            **rev.model_dump(exclude={"team_id", "inject_id", "author_participant_id"}),
            team_id=ids[rev.team_id],
            inject_id=ids[rev.inject_id],
            author_participant_id=ids.get(rev.author_participant_id or ""),
        )
        for rev in data.revisions
    )
    session.add_all(
        Submission(
            **sub.model_dump(exclude={"team_id", "inject_id"}),
            team_id=ids[sub.team_id],
            inject_id=ids[sub.inject_id],
        )
        for sub in data.submissions
    )
    session.add_all(
        Resubmission(
            **later.model_dump(exclude={"team_id", "inject_id"}),
            team_id=ids[later.team_id],
            inject_id=ids[later.inject_id],
        )
        for later in data.resubmissions
    )
    # Events keep their order and time; the new exercise numbers them afresh.
    for event in sorted(data.events, key=lambda e: e.seq):
        session.add(
            Event(
                exercise_id=exercise.id,
                type=event.type,
                team_ids=_remap(event.team_ids, ids),
                payload=_remap(event.payload, ids),
                at=event.at,
            )
        )
    evaluation = data.evaluation
    if evaluation.updated_at is not None:
        session.add(
            Evaluation(
                exercise_id=exercise.id,
                strengths=list(evaluation.strengths),
                areas_for_improvement=list(evaluation.areas_for_improvement),
                updated_at=evaluation.updated_at,
            )
        )
    session.add_all(
        InjectRating(
            **rating.model_dump(exclude={"team_id", "inject_id"}),
            team_id=ids[rating.team_id],
            inject_id=ids[rating.inject_id],
        )
        for rating in evaluation.ratings
    )
    session.add_all(
        ImprovementAction(exercise_id=exercise.id, **item.model_dump())
        for item in evaluation.improvement_plan
    )
    session.commit()
    return exercise


def _insert_team(
    session: Session, *, exercise_id: str, team: ArchiveTeam, new_team_id: str
) -> None:
    # The original's join codes may still be live on this server; every team gets a fresh one.
    for _ in range(_JOIN_CODE_ATTEMPTS):
        row = Team(
            id=new_team_id,
            exercise_id=exercise_id,
            name=team.name,
            join_code=auth.new_join_code(),
            position=team.position,
            created_at=team.created_at,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue
        return
    raise RuntimeError("could not find a free join code")
