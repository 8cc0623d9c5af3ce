"""Request and response bodies of the evaluation and the debrief view."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

Rating = Literal["met", "partly", "not_met"]
PlanStatus = Literal["open", "in_progress", "to_verify", "done"]
RATINGS: tuple[str, ...] = ("met", "partly", "not_met")
# to_verify: carried over from an earlier run of the workshop, to check that it was done.
PLAN_STATUSES: tuple[str, ...] = ("open", "in_progress", "to_verify", "done")

Finding = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]


class RatingWrite(BaseModel):
    team_id: str = Field(max_length=32)
    inject_id: str = Field(max_length=32)
    rating: Rating | None = None
    comment: LongText = ""


class RatingRead(RatingWrite):
    updated_at: datetime | None = None


class PlanItem(BaseModel):
    issue: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    action: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""
    owner: ShortText = ""
    due_date: date | None = None
    status: PlanStatus = "open"


class EvaluationWrite(BaseModel):
    """The whole evaluation; a write replaces what was stored."""

    ratings: list[RatingWrite] = Field(default_factory=list, max_length=20_000)
    strengths: list[Finding] = Field(default_factory=list, max_length=200)
    areas_for_improvement: list[Finding] = Field(default_factory=list, max_length=200)
    improvement_plan: list[PlanItem] = Field(default_factory=list, max_length=500)


class EvaluationRead(BaseModel):
    ratings: list[RatingRead]
    strengths: list[str]
    areas_for_improvement: list[str]
    improvement_plan: list[PlanItem]
    updated_at: datetime | None


class FieldInfo(BaseModel):
    key: str
    group: str
    label: str


class AnswerRead(BaseModel):
    value: str
    version: int
    updated_by: str
    updated_at: datetime


class SubmissionInfo(BaseModel):
    submitted_at: datetime
    elapsed_s: float
    submitted_by: str


class DebriefInject(BaseModel):
    id: str
    position: int
    scenario_id: str | None
    followup_id: str | None
    title: str
    body: str
    source: str
    receiving: str
    delivered_at: datetime
    time_limit_s: int | None
    team_ids: list[str]
    guidance: dict[str, str]
    answers: dict[str, dict[str, AnswerRead]]
    submissions: dict[str, SubmissionInfo]


class DebriefTeam(BaseModel):
    id: str
    name: str
    members: list[str]


class DebriefRead(BaseModel):
    """Everything the debrief page shows, in the exercise's language."""

    exercise: dict[str, Any]
    fields: list[FieldInfo]
    teams: list[DebriefTeam]
    injects: list[DebriefInject]
    evaluation: EvaluationRead
