"""The facilitator's evaluation: ratings per team and inject, findings, improvement plan."""

from datetime import date, datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.db import utc_column


class InjectRating(SQLModel, table=True):
    """How well one team's answer to one inject met expectations, with the facilitator's comment."""

    team_id: str = Field(foreign_key="team.id", primary_key=True, ondelete="CASCADE")
    inject_id: str = Field(foreign_key="inject.id", primary_key=True, ondelete="CASCADE")
    # Text rather than a native enum, like the exercise status: new ratings need no type migration.
    rating: str | None = Field(default=None, max_length=16)
    comment: str = ""
    updated_at: datetime = utc_column(now=True)


class Evaluation(SQLModel, table=True):
    """The after-action findings of an exercise (HSEEP style): strengths and areas to improve."""

    exercise_id: str = Field(foreign_key="exercise.id", primary_key=True, ondelete="CASCADE")
    strengths: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    areas_for_improvement: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    updated_at: datetime = utc_column(now=True)


class ImprovementAction(SQLModel, table=True):
    """One row of the improvement plan: what to fix, how, by whom and by when."""

    id: int | None = Field(default=None, primary_key=True)
    exercise_id: str = Field(foreign_key="exercise.id", index=True, ondelete="CASCADE")
    position: int
    issue: str
    action: str = ""
    owner: str = Field(default="", max_length=200)
    due_date: date | None = None
    status: str = Field(default="open", max_length=16)
