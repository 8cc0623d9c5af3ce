"""Request and response bodies of cells and submissions."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class CellWrite(BaseModel):
    value: str
    # Versions are 32-bit integers in the database; anything larger cannot be a real version.
    base_version: int = Field(ge=0, le=2**31 - 2)


class CellWritten(BaseModel):
    version: int
    value: str


class CellRead(BaseModel):
    inject_id: str
    field: str
    value: str
    version: int
    updated_by: str
    updated_at: datetime


class ResubmissionRead(BaseModel):
    submitted_at: datetime
    submitted_by: str


class SubmissionRead(BaseModel):
    """A team's first submission of an answer (its time to announcement) and any later ones."""

    inject_id: str
    submitted_at: datetime
    elapsed_s: float
    submitted_by: str
    # Set while the answer is open for edits again; None while it stands submitted.
    reopened_at: datetime | None = None
    resubmissions: list[ResubmissionRead] = Field(default_factory=list)


class SubmitResult(BaseModel):
    submitted_at: datetime
    elapsed_s: float


class RevisionRead(BaseModel):
    version: int
    value: str
    author: str
    created_at: datetime


def conflict_body(*, value: str, version: int, updated_by: str) -> dict[str, Any]:
    """The `current` part of a 409: what the writer must merge with."""
    return {"value": value, "version": version, "updated_by": updated_by}
