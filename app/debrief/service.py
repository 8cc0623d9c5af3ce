"""Everything recorded in an exercise, read in one go, and the facilitator's evaluation."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.auth.models import Facilitator
from app.db import utcnow
from app.debrief.models import Evaluation, ImprovementAction, InjectRating
from app.debrief.schemas import (
    AnswerRead,
    DebriefInject,
    DebriefRead,
    DebriefTeam,
    EvaluationRead,
    EvaluationWrite,
    FieldInfo,
    PlanItem,
    RatingRead,
    SubmissionInfo,
)
from app.errors import Invalid
from app.eventlog.models import Event
from app.exercises import service as exercises
from app.exercises.models import Exercise, Inject, InjectTarget, Participant, Team
from app.responses.fields import FIELDS
from app.responses.models import ResponseCell, ResponseRevision, Submission
from app.scenarios.loader import ScenarioLibrary


class CellRow(NamedTuple):
    """A ResponseCell as a plain row: a 50-team export reads 8,000 of them, ORM objects cost 3x."""

    team_id: str
    inject_id: str
    field: str
    value: str
    version: int
    updated_by: str
    updated_at: datetime


class EventRow(NamedTuple):
    """An Event of the log as a plain row (the export's timeline reads every one)."""

    seq: int
    type: str
    team_ids: list[str] | None
    payload: dict[str, Any]
    at: datetime


def _rows(model: Any, row_type: Any) -> Any:
    """A select of the model's columns in the order of the row type's fields."""
    return select(*(getattr(model, name) for name in row_type._fields))


@dataclass
class Results:
    """An exercise and all it recorded, keyed for quick lookups while writing a report."""

    exercise: Exercise
    facilitator: str
    teams: list[Team]
    participants: dict[str, list[Participant]]
    injects: list[Inject]
    targets: dict[str, list[str]]
    cells: dict[tuple[str, str], dict[str, CellRow]]
    submissions: dict[tuple[str, str], Submission]
    ratings: dict[tuple[str, str], InjectRating]
    evaluation: Evaluation | None
    plan: list[ImprovementAction]
    events: list[EventRow] = field(default_factory=list)
    revisions: list[ResponseRevision] = field(default_factory=list)

    def injects_of(self, team_id: str) -> list[Inject]:
        """The injects delivered to a team, in delivery order."""
        return [inject for inject in self.injects if team_id in self.targets.get(inject.id, [])]

    def answer(self, team_id: str, inject_id: str, key: str) -> str:
        cell = self.cells.get((team_id, inject_id), {}).get(key)
        return cell.value if cell is not None else ""


def load_results(
    session: Session, *, exercise: Exercise, events: bool = True, revisions: bool = False
) -> Results:
    """Read the exercise's teams, injects, answers, timings, evaluation (and log) in a few queries."""
    owner = session.get(Facilitator, exercise.owner_id)
    teams = exercises.teams_of(session, exercise_id=exercise.id)
    team_ids = [team.id for team in teams]
    participants: dict[str, list[Participant]] = {}
    for participant in session.exec(
        select(Participant)
        .where(col(Participant.team_id).in_(team_ids))
        .order_by(col(Participant.joined_at), col(Participant.id))
    ):
        participants.setdefault(participant.team_id, []).append(participant)
    injects = list(
        session.exec(
            select(Inject).where(Inject.exercise_id == exercise.id).order_by(col(Inject.position))
        )
    )
    inject_ids = select(Inject.id).where(Inject.exercise_id == exercise.id)
    order = {team_id: index for index, team_id in enumerate(team_ids)}
    targets: dict[str, list[str]] = {}
    for target in session.exec(
        select(InjectTarget).where(col(InjectTarget.inject_id).in_(inject_ids))
    ):
        targets.setdefault(target.inject_id, []).append(target.team_id)
    for members in targets.values():
        members.sort(key=lambda team_id: order.get(team_id, len(order)))
    cells: dict[tuple[str, str], dict[str, CellRow]] = {}
    for row in session.exec(
        _rows(ResponseCell, CellRow).where(col(ResponseCell.inject_id).in_(inject_ids))
    ):
        cell = CellRow._make(row)
        cells.setdefault((cell.team_id, cell.inject_id), {})[cell.field] = cell
    submissions = {
        (sub.team_id, sub.inject_id): sub
        for sub in session.exec(select(Submission).where(col(Submission.inject_id).in_(inject_ids)))
    }
    ratings = {
        (rating.team_id, rating.inject_id): rating
        for rating in session.exec(
            select(InjectRating).where(col(InjectRating.inject_id).in_(inject_ids))
        )
    }
    results = Results(
        exercise=exercise,
        facilitator=owner.username if owner is not None else "",
        teams=teams,
        participants=participants,
        injects=injects,
        targets=targets,
        cells=cells,
        submissions=submissions,
        ratings=ratings,
        evaluation=session.get(Evaluation, exercise.id),
        plan=_plan_of(session, exercise_id=exercise.id),
    )
    if events:
        results.events = [
            EventRow._make(row)
            for row in session.exec(
                _rows(Event, EventRow)
                .where(Event.exercise_id == exercise.id)
                .order_by(col(Event.seq))
            )
        ]
    if revisions:
        results.revisions = list(
            session.exec(
                select(ResponseRevision)
                .where(col(ResponseRevision.inject_id).in_(inject_ids))
                .order_by(col(ResponseRevision.created_at), col(ResponseRevision.id))
            )
        )
    return results


def _plan_of(session: Session, *, exercise_id: str) -> list[ImprovementAction]:
    return list(
        session.exec(
            select(ImprovementAction)
            .where(ImprovementAction.exercise_id == exercise_id)
            .order_by(col(ImprovementAction.position))
        )
    )


def evaluation_read(results: Results) -> EvaluationRead:
    """The evaluation as the API returns it."""
    stored = results.evaluation
    updated = [stored.updated_at] if stored is not None else []
    updated += [rating.updated_at for rating in results.ratings.values()]
    return EvaluationRead(
        ratings=[
            RatingRead(
                team_id=rating.team_id,
                inject_id=rating.inject_id,
                rating=rating.rating,
                comment=rating.comment,
                updated_at=rating.updated_at,
            )
            for rating in _ordered_ratings(results)
        ],
        strengths=list(stored.strengths) if stored is not None else [],
        areas_for_improvement=list(stored.areas_for_improvement) if stored is not None else [],
        improvement_plan=[
            PlanItem(
                issue=item.issue,
                action=item.action,
                owner=item.owner,
                due_date=item.due_date,
                status=item.status,
            )
            for item in results.plan
        ],
        updated_at=max(updated) if updated else None,
    )


def _ordered_ratings(results: Results) -> list[InjectRating]:
    ordered = []
    for team in results.teams:
        for inject in results.injects_of(team.id):
            rating = results.ratings.get((team.id, inject.id))
            if rating is not None:
                ordered.append(rating)
    return ordered


def save_evaluation(session: Session, *, exercise: Exercise, data: EvaluationWrite) -> None:
    """Replace the exercise's evaluation; allowed in every status, including after the end."""
    inject_ids = select(Inject.id).where(Inject.exercise_id == exercise.id)
    delivered = {
        (target.team_id, target.inject_id)
        for target in session.exec(
            select(InjectTarget).where(col(InjectTarget.inject_id).in_(inject_ids))
        )
    }
    seen: set[tuple[str, str]] = set()
    for index, rating in enumerate(data.ratings):
        key = (rating.team_id, rating.inject_id)
        if key not in delivered:
            raise Invalid(
                f"ratings[{index}] names team {rating.team_id!r} and inject {rating.inject_id!r}, "
                "but that inject was not delivered to that team in this exercise.",
                code="unknown_rating_target",
            )
        if key in seen:
            raise Invalid(
                f"ratings[{index}] rates the same team and inject as an earlier entry.",
                code="duplicate_rating",
            )
        seen.add(key)
    now = utcnow()
    existing = {
        (rating.team_id, rating.inject_id): rating
        for rating in session.exec(
            select(InjectRating).where(col(InjectRating.inject_id).in_(inject_ids))
        )
    }
    for rating in data.ratings:
        key = (rating.team_id, rating.inject_id)
        row = existing.pop(key, None)
        if rating.rating is None and not rating.comment:
            if row is not None:
                session.delete(row)
            continue
        if row is None:
            row = InjectRating(team_id=rating.team_id, inject_id=rating.inject_id)
        # Only a real change moves the timestamp, so "last edited" means something.
        if row.rating != rating.rating or row.comment != rating.comment or row.updated_at is None:
            row.rating, row.comment, row.updated_at = rating.rating, rating.comment, now
        session.add(row)
    for row in existing.values():
        session.delete(row)
    evaluation = session.get(Evaluation, exercise.id) or Evaluation(exercise_id=exercise.id)
    evaluation.strengths = list(data.strengths)
    evaluation.areas_for_improvement = list(data.areas_for_improvement)
    evaluation.updated_at = now
    session.add(evaluation)
    session.execute(
        delete(ImprovementAction).where(col(ImprovementAction.exercise_id) == exercise.id)
    )
    session.add_all(
        ImprovementAction(exercise_id=exercise.id, position=position, **item.model_dump())
        for position, item in enumerate(data.improvement_plan)
    )
    session.commit()


def guidance_for(inject: Inject, *, library: ScenarioLibrary, locale: str) -> dict[str, str]:
    """The scenario's model answers per field, when the inject came from a scenario that has them."""
    if inject.scenario_id is None:
        return {}
    scenario = library.get(inject.scenario_id)
    if scenario is None:
        return {}
    return {key: text.get(locale) for key, text in scenario.guidance.items()}


def debrief_read(session: Session, *, exercise: Exercise, library: ScenarioLibrary) -> DebriefRead:
    """The debrief page's data: every inject with each team's answers, timing and the guidance."""
    results = load_results(session, exercise=exercise, events=False)
    locale = exercise.locale
    injects = []
    for inject in results.injects:
        team_ids = results.targets.get(inject.id, [])
        answers: dict[str, dict[str, AnswerRead]] = {}
        submissions: dict[str, SubmissionInfo] = {}
        for team_id in team_ids:
            cells = results.cells.get((team_id, inject.id), {})
            answers[team_id] = {
                key: AnswerRead.model_validate(cell, from_attributes=True)
                for key, cell in cells.items()
            }
            sub = results.submissions.get((team_id, inject.id))
            if sub is not None:
                submissions[team_id] = SubmissionInfo.model_validate(sub, from_attributes=True)
        injects.append(
            DebriefInject(
                **inject.model_dump(
                    include={
                        "id",
                        "position",
                        "scenario_id",
                        "followup_id",
                        "title",
                        "body",
                        "source",
                        "receiving",
                        "delivered_at",
                        "time_limit_s",
                    }
                ),
                team_ids=team_ids,
                guidance=guidance_for(inject, library=library, locale=locale),
                answers=answers,
                submissions=submissions,
            )
        )
    summary: dict[str, Any] = {
        "id": exercise.id,
        "title": exercise.title,
        "locale": locale,
        "status": exercise.status.value,
        "facilitator": results.facilitator,
        "created_at": exercise.created_at,
        "started_at": exercise.started_at,
        "ended_at": exercise.ended_at,
    }
    return DebriefRead(
        exercise=summary,
        fields=[FieldInfo(key=f.key, group=f.group, label=f.label(locale)) for f in FIELDS],
        teams=[
            DebriefTeam(
                id=team.id,
                name=team.name,
                members=[p.name for p in results.participants.get(team.id, [])],
            )
            for team in results.teams
        ],
        injects=injects,
        evaluation=evaluation_read(results),
    )


# Improvement actions still to do when a workshop is run again: the new run checks whether
# they were carried out.
_CARRIED_OVER = ("open", "in_progress")


def copy_exercise(session: Session, *, exercise: Exercise, title: str | None) -> Exercise:
    """A new draft of the same workshop (exercises.add_copy), with the improvement actions
    that were not done carried over as `to_verify`."""
    copy = exercises.add_copy(session, exercise=exercise, title=title)
    for position, action in enumerate(
        item for item in _plan_of(session, exercise_id=exercise.id) if item.status in _CARRIED_OVER
    ):
        session.add(
            ImprovementAction(
                exercise_id=copy.id,
                position=position,
                issue=action.issue,
                action=action.action,
                owner=action.owner,
                due_date=action.due_date,
                status="to_verify",
            )
        )
    session.commit()
    return copy
