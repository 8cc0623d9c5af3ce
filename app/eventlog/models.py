"""The exercise event log: the database is the truth, the broker only rings the bell."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from app.db import utc_column


class Event(SQLModel, table=True):
    """One change participants or facilitators must see; `seq` orders an exercise's events."""

    # An exercise's newest seq and its events after a seq are read on every write and replay:
    # indexed together, neither walks the events other exercises added since (PostgreSQL did).
    __table_args__ = (Index("ix_event_exercise_id_seq", "exercise_id", "seq"),)

    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    exercise_id: str = Field(foreign_key="exercise.id", ondelete="CASCADE")
    type: str = Field(max_length=32)
    # None: every team sees it; a list: only those teams (facilitators see everything).
    team_ids: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = utc_column(now=True)
