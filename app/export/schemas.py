"""The JSON archive of a whole exercise: every row it owns, ids included, token hashes excluded."""

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ARCHIVE_FORMAT = "tabletop-exercise-archive"
ARCHIVE_VERSION = 1


class _Row(BaseModel):
    # A typo in a hand-edited archive must be an error, not a silently dropped value.
    model_config = ConfigDict(extra="forbid")


class ArchiveExercise(_Row):
    id: str
    title: str = Field(min_length=1, max_length=200)
    locale: Literal["ja", "en"]
    # Archives written before exercises had a zone lack it: the locale's default then.
    time_zone: str | None = Field(default=None, max_length=64)
    status: Literal["draft", "running", "paused", "ended"]
    scenario_ids: list[str]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    paused_s: float
    paused_since: datetime | None
    # Archives written before the projector's stage existed have none.
    stage: dict[str, Any] | None = None


class ArchiveTeam(_Row):
    id: str
    name: str = Field(min_length=1, max_length=80)
    join_code: str
    position: int
    created_at: datetime


class ArchiveParticipant(_Row):
    id: str
    team_id: str
    name: str = Field(max_length=80)
    joined_at: datetime
    removed_at: datetime | None


class ArchiveInject(_Row):
    id: str
    position: int
    scenario_id: str | None = Field(max_length=64)
    followup_id: str | None = Field(max_length=80)
    title: str
    body: str
    source: str
    receiving: str
    texts: dict[str, Any]
    delivered_at: datetime
    paused_s_at_delivery: float
    time_limit_s: int | None
    auto_followups: bool
    for_all_teams: bool = False
    withdrawn_at: datetime | None = None
    team_ids: list[str]


class ArchiveCell(_Row):
    team_id: str
    inject_id: str
    field: str = Field(max_length=32)
    value: str
    version: int
    updated_by: str = Field(max_length=80)
    updated_at: datetime


class ArchiveRevision(_Row):
    team_id: str
    inject_id: str
    field: str = Field(max_length=32)
    version: int
    value: str
    author: str = Field(max_length=80)
    author_participant_id: str | None
    created_at: datetime


class ArchiveSubmission(_Row):
    team_id: str
    inject_id: str
    submitted_at: datetime
    elapsed_s: float
    submitted_by: str = Field(max_length=80)
    reopened_at: datetime | None = None


class ArchiveResubmission(_Row):
    team_id: str
    inject_id: str
    submitted_at: datetime
    submitted_by: str = Field(max_length=80)


class ArchiveEvent(_Row):
    seq: int
    type: str = Field(max_length=32)
    team_ids: list[str] | None
    payload: dict[str, Any]
    at: datetime


class ArchiveRating(_Row):
    team_id: str
    inject_id: str
    rating: Literal["met", "partly", "not_met"] | None
    comment: str
    updated_at: datetime


class ArchivePlanItem(_Row):
    position: int
    issue: str
    action: str
    owner: str = Field(max_length=200)
    due_date: date | None
    status: Literal["open", "in_progress", "to_verify", "done"]


class ArchiveEvaluation(_Row):
    strengths: list[str]
    areas_for_improvement: list[str]
    updated_at: datetime | None
    ratings: list[ArchiveRating]
    improvement_plan: list[ArchivePlanItem]


class Archive(_Row):
    """Everything needed to recreate an exercise on another server."""

    format: Literal["tabletop-exercise-archive"]
    version: Literal[1]
    exported_at: datetime
    exercise: ArchiveExercise
    teams: list[ArchiveTeam]
    participants: list[ArchiveParticipant]
    injects: list[ArchiveInject]
    cells: list[ArchiveCell]
    revisions: list[ArchiveRevision]
    submissions: list[ArchiveSubmission]
    resubmissions: list[ArchiveResubmission] = Field(default_factory=list)
    events: list[ArchiveEvent]
    evaluation: ArchiveEvaluation
