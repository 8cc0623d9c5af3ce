"""Facilitator accounts and their login tokens."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.db import utc_column


class Facilitator(SQLModel, table=True):
    """A person who runs exercises; sees only the exercises they own."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=255)
    created_at: datetime = utc_column(now=True)


class LoginToken(SQLModel, table=True):
    """A facilitator's session; only the token's hash is stored, so a database leak opens nothing."""

    token_hash: str = Field(primary_key=True, max_length=64)
    facilitator_id: int = Field(foreign_key="facilitator.id", index=True, ondelete="CASCADE")
    created_at: datetime = utc_column(now=True)
    expires_at: datetime = utc_column()
