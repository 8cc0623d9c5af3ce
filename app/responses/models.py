"""Response cells with versions, every accepted revision, and submissions."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.db import utc_column


class ResponseCell(SQLModel, table=True):
    """The current value of one field of one team's answer to one inject."""

    team_id: str = Field(foreign_key="team.id", primary_key=True, ondelete="CASCADE")
    inject_id: str = Field(foreign_key="inject.id", primary_key=True, ondelete="CASCADE")
    field: str = Field(primary_key=True, max_length=32)
    value: str
    version: int
    updated_by: str = Field(max_length=80)
    updated_at: datetime = utc_column(now=True)


class ResponseRevision(SQLModel, table=True):
    """Every accepted write, so the debrief can show how an answer evolved."""

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="team.id", index=True, ondelete="CASCADE")
    inject_id: str = Field(foreign_key="inject.id", index=True, ondelete="CASCADE")
    field: str = Field(max_length=32)
    version: int
    value: str
    author: str = Field(max_length=80)
    author_participant_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = utc_column(now=True)


class Submission(SQLModel, table=True):
    """A team's first declaration that its answer to an inject is ready: its time is the team's
    time to announcement, whatever happens after."""

    team_id: str = Field(foreign_key="team.id", primary_key=True, ondelete="CASCADE")
    inject_id: str = Field(foreign_key="inject.id", primary_key=True, ondelete="CASCADE")
    submitted_at: datetime = utc_column(now=True)
    elapsed_s: float
    submitted_by: str = Field(max_length=80)
    # Set while the answer is open again for edits (reopened and not yet submitted again).
    reopened_at: datetime | None = utc_column(nullable=True)


class Resubmission(SQLModel, table=True):
    """A later submit of an answer that was reopened; the first submission stays as it was."""

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="team.id", index=True, ondelete="CASCADE")
    inject_id: str = Field(foreign_key="inject.id", ondelete="CASCADE")
    submitted_at: datetime = utc_column(now=True)
    submitted_by: str = Field(max_length=80)
