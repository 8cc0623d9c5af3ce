"""Scenario sets imported from a workbook, kept in the database so every server process sees them."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.db import utc_column


class ImportedScenarioSet(SQLModel, table=True):
    """A scenario set made from an uploaded handout workbook; `content` is the set as a scenario file."""

    set_id: str = Field(primary_key=True, max_length=64)
    owner_id: int = Field(foreign_key="facilitator.id", index=True, ondelete="CASCADE")
    filename: str = Field(default="", max_length=255)
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column(now=True)
