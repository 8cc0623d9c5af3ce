"""The exercise event log: the database is the truth, the broker only rings the bell."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer
from sqlmodel import Field, SQLModel

from app.db import utc_column


class Event(SQLModel, table=True):
    """One change participants or facilitators must see; `seq` orders an exercise's events."""

    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    exercise_id: str = Field(foreign_key="exercise.id", index=True, ondelete="CASCADE")
    type: str = Field(max_length=32)
    # None: every team sees it; a list: only those teams (facilitators see everything).
    team_ids: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = utc_column(now=True)
