"""Every table, imported in one place for metadata (Alembic, create_all)."""

from app.auth.models import Facilitator, LoginToken
from app.exercises.models import Exercise, Inject, InjectTarget, Participant, Team
from app.live.models import Event
from app.responses.models import ResponseCell, ResponseRevision, Submission

__all__ = [
    "Event",
    "Exercise",
    "Facilitator",
    "Inject",
    "InjectTarget",
    "LoginToken",
    "Participant",
    "ResponseCell",
    "ResponseRevision",
    "Submission",
    "Team",
]
