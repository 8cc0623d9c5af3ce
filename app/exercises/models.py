"""Exercise, Team, Participant, Inject: the rows an exercise is made of."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Enum
from sqlmodel import Field, SQLModel

from app.db import new_id, utc_column


class ExerciseStatus(StrEnum):
    draft = "draft"
    running = "running"
    paused = "paused"
    ended = "ended"


class Exercise(SQLModel, table=True):
    """One live workshop run by one facilitator."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    owner_id: int = Field(foreign_key="facilitator.id", index=True)
    title: str = Field(max_length=200)
    locale: str = Field(max_length=8)
    # IANA name; every time a person reads (pages, workbook, documents) is shown in it.
    time_zone: str = Field(default="UTC", max_length=64)
    # Stored as text rather than a native enum, so a new status needs no type migration.
    status: ExerciseStatus = Field(
        default=ExerciseStatus.draft,
        sa_column=Column(Enum(ExerciseStatus, native_enum=False, length=16), nullable=False),
    )
    scenario_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column(now=True)
    started_at: datetime | None = utc_column(nullable=True)
    ended_at: datetime | None = utc_column(nullable=True)
    # Pauses are excluded from elapsed times: the running total plus the current pause's start.
    paused_s: float = 0.0
    paused_since: datetime | None = utc_column(nullable=True)
    # What the facilitator last put on the projector (`{"show", "inject_id"?, "text"?, "at"}`);
    # None: the lobby. An inject for every team delivered later goes on stage by itself.
    stage: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Team(SQLModel, table=True):
    """A table of participants drafting one set of answers together."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    exercise_id: str = Field(foreign_key="exercise.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=80)
    join_code: str = Field(max_length=16, unique=True)
    position: int = 0
    created_at: datetime = utc_column(now=True)


class Participant(SQLModel, table=True):
    """Someone who joined a team with its code; no account, only a token whose hash is kept."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    team_id: str = Field(foreign_key="team.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=80)
    token_hash: str = Field(max_length=64, unique=True)
    joined_at: datetime = utc_column(now=True)
    removed_at: datetime | None = utc_column(nullable=True)


class Inject(SQLModel, table=True):
    """An incident delivered to teams; the scenario text is copied so later edits change no history."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    exercise_id: str = Field(foreign_key="exercise.id", index=True, ondelete="CASCADE")
    position: int
    scenario_id: str | None = Field(default=None, max_length=64)
    followup_id: str | None = Field(default=None, max_length=80)
    title: str
    body: str
    source: str = ""
    receiving: str = ""
    # Both languages of a library scenario, so a page can show the reader's language.
    texts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    delivered_at: datetime = utc_column(now=True)
    # The exercise's paused total at delivery, so elapsed time can leave out later pauses.
    paused_s_at_delivery: float = 0.0
    time_limit_s: int | None = None
    # Deliver the scenario's follow-ups by themselves, `after_s` of running time after this inject.
    auto_followups: bool = False
    # Delivered to every team of the exercise: such an inject goes on the projector by itself.
    for_all_teams: bool = False
    # Taken back by the facilitator: its answers stay readable, nothing more is written to it.
    withdrawn_at: datetime | None = utc_column(nullable=True)


class InjectTarget(SQLModel, table=True):
    """Which teams an inject was delivered to."""

    inject_id: str = Field(foreign_key="inject.id", primary_key=True, ondelete="CASCADE")
    team_id: str = Field(foreign_key="team.id", primary_key=True, index=True, ondelete="CASCADE")
