"""Every table, imported in one place for metadata (Alembic, create_all)."""

from app.auth.models import Facilitator, LoginToken
from app.debrief.models import Evaluation, ImprovementAction, InjectRating
from app.eventlog.models import Event
from app.exercises.models import Exercise, Inject, InjectTarget, Participant, Team
from app.responses.models import ResponseCell, ResponseRevision, Resubmission, Submission
from app.scenarios.models import ImportedScenarioSet

__all__ = [
    "Evaluation",
    "Event",
    "Exercise",
    "Facilitator",
    "ImportedScenarioSet",
    "ImprovementAction",
    "Inject",
    "InjectRating",
    "InjectTarget",
    "LoginToken",
    "Participant",
    "ResponseCell",
    "ResponseRevision",
    "Resubmission",
    "Submission",
    "Team",
]
