"""Server-rendered facilitator console, team room and projector pages, and join QR codes."""

import io
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import i18n
from app.auth.deps import optional_facilitator, optional_participant
from app.auth.models import Facilitator
from app.config import Settings
from app.db import SessionDep
from app.errors import NotFound
from app.exercises import service
from app.exercises.deps import Library
from app.exercises.models import Exercise, Participant, Team
from app.responses.fields import ANNOUNCEMENT_FIELDS, FIELDS, ROLE_FIELDS
from app.scenarios.loader import ScenarioLibrary
from app.scenarios.schema import Scenario

router = APIRouter(include_in_schema=False)

MaybeFacilitator = Annotated[Facilitator | None, Depends(optional_facilitator)]
MaybeParticipant = Annotated[Participant | None, Depends(optional_participant)]

# The handbook's internal stakeholders plus the departments the scenarios name.
STAKEHOLDERS = (
    "経営会議",
    "CEO/CFO/COO",
    "CIO/CRO",
    "総務・人事部門",
    "法務部門",
    "監査部門",
    "CSIRT",
    "広報",
    "ユーザサポート",
    "担当営業",
)
STATUS_LABELS = {
    "draft": i18n.N_("Not started"),
    "running": i18n.N_("Running"),
    "paused": i18n.N_("Paused"),
    "ended": i18n.N_("Ended"),
}
DISCLOSE_LABELS = {
    "yes": i18n.N_("Disclose"),
    "no": i18n.N_("Do not disclose"),
    "undecided": i18n.N_("Undecided"),
}


class LoginRequired(Exception):
    """A facilitator page was asked for without a facilitator session."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def login_redirect(_request: Request, exc: Exception) -> RedirectResponse:
    """Send the browser to the sign-in page and back here afterwards."""
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/login?next={quote(exc.path)}", status_code=303)


async def require_page_facilitator(request: Request, facilitator: MaybeFacilitator) -> Facilitator:
    if facilitator is None:
        raise LoginRequired(request.url.path)
    return facilitator


PageFacilitator = Annotated[Facilitator, Depends(require_page_facilitator)]


def join_base(request: Request) -> str:
    """Where participants reach the join page: the public URL if configured, else this server."""
    settings: Settings = request.app.state.settings
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + "/join"


def join_url(request: Request, team: Team) -> str:
    return f"{join_base(request)}?{urlencode({'code': team.join_code})}"


def _status_labels(locale: str) -> dict[str, str]:
    return {key: i18n.gettext(locale, label) for key, label in STATUS_LABELS.items()}


def _library_for(exercise: Exercise, library: ScenarioLibrary) -> list[Scenario]:
    if exercise.scenario_ids:
        found = [library.get(sid) for sid in exercise.scenario_ids]
        return [scenario for scenario in found if scenario is not None]
    return [scenario for _, scenario in library.all()]


def _fields_json(locale: str) -> list[dict[str, str]]:
    """The response fields for the page's scripts (partials/exercise_fields.html)."""
    return [{"key": f.key, "group": f.group, "label": f.label(locale)} for f in FIELDS]


def _teams_json(teams: list[Team]) -> list[dict[str, Any]]:
    return [{"id": team.id, "name": team.name} for team in teams]


@router.get("/exercises", response_class=HTMLResponse)
def exercise_list(request: Request, session: SessionDep, facilitator: PageFacilitator) -> Response:
    """The facilitator's exercises, newest first."""
    locale = i18n.negotiate(request)
    exercises = [
        service.exercise_read(session, exercise)
        for exercise in service.list_owned(session, owner=facilitator)
    ]
    context = {"exercises": exercises, "status_labels": _status_labels(locale)}
    return i18n.render(request, "facilitator/list.html", context, locale=locale)


@router.get("/exercises/new", response_class=HTMLResponse)
def new_exercise(request: Request, library: Library, _facilitator: PageFacilitator) -> Response:
    """The form to create an exercise: title, teams, language and scenarios."""
    locale = i18n.negotiate(request)
    teams = "\n".join(
        i18n.gettext(locale, "Team %(letter)s") % {"letter": letter} for letter in "ABCD"
    )
    context = {"scenarios": library.all(), "default_teams": teams}
    return i18n.render(request, "facilitator/new.html", context, locale=locale)


@router.get("/exercises/{exercise_id}", response_class=HTMLResponse)
def console(
    exercise_id: str,
    request: Request,
    session: SessionDep,
    library: Library,
    facilitator: PageFacilitator,
) -> Response:
    """The live console: teams and codes, progress, the scenario library, messages."""
    exercise = service.get_owned(session, exercise_id=exercise_id, owner=facilitator)
    locale = i18n.negotiate(request, default=exercise.locale)
    teams = service.teams_of(session, exercise_id=exercise.id)
    context = {
        "exercise": exercise,
        "teams": teams,
        "teams_json": _teams_json(teams),
        "join_urls": {team.id: join_url(request, team) for team in teams},
        "library": _library_for(exercise, library),
        "fields": FIELDS,
        "exercise_fields": _fields_json(locale),
        "status_labels": _status_labels(locale),
    }
    return i18n.render(request, "facilitator/console.html", context, locale=locale)


@router.get("/exercises/{exercise_id}/teams/{team_id}/qr.svg")
def team_qr(
    exercise_id: str,
    team_id: str,
    request: Request,
    session: SessionDep,
    facilitator: PageFacilitator,
) -> Response:
    """A QR code of the team's join link, for the console and the projector."""
    exercise = service.get_owned(session, exercise_id=exercise_id, owner=facilitator)
    team = session.get(Team, team_id)
    if team is None or team.exercise_id != exercise.id:
        raise NotFound("No such team.", code="team_not_found")
    # A standalone SVG file (with its XML namespace), which an <img> can show.
    buffer = io.BytesIO()
    segno.make(join_url(request, team), error="m").save(buffer, kind="svg", scale=4, border=2)
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=300"},
    )


@router.get("/projector/{exercise_id}", response_class=HTMLResponse)
def projector(
    exercise_id: str, request: Request, session: SessionDep, facilitator: PageFacilitator
) -> Response:
    """The wall view: current inject in large type, its timer, join codes and each team's status."""
    exercise = service.get_owned(session, exercise_id=exercise_id, owner=facilitator)
    locale = i18n.negotiate(request, default=exercise.locale)
    teams = service.teams_of(session, exercise_id=exercise.id)
    context = {
        "exercise": exercise,
        "teams": teams,
        "teams_json": _teams_json(teams),
        "join_base": join_base(request),
        "exercise_fields": _fields_json(locale),
    }
    return i18n.render(request, "projector.html", context, locale=locale)


@router.get("/team", response_class=HTMLResponse)
def team_room(request: Request, session: SessionDep, participant: MaybeParticipant) -> Response:
    """The team room: the inject feed and the shared answer form."""
    if participant is None:
        return RedirectResponse("/join", status_code=303)
    team = session.get(Team, participant.team_id)
    assert team is not None
    exercise = session.get(Exercise, team.exercise_id)
    assert exercise is not None
    locale = i18n.negotiate(request, default=exercise.locale)
    by_key = {field.key: field for field in FIELDS}
    context = {
        "exercise": exercise,
        "team": team,
        "participant": participant,
        "announcement_fields": ANNOUNCEMENT_FIELDS,
        "role_fields": ROLE_FIELDS,
        "disclose_field": by_key["disclose"],
        "other_fields": (by_key["estimated_time"], by_key["notes"]),
        "disclose_choices": [
            (value, i18n.gettext(locale, label)) for value, label in DISCLOSE_LABELS.items()
        ],
        "suggestions": STAKEHOLDERS,
        "exercise_fields": _fields_json(locale),
    }
    return i18n.render(request, "team/room.html", context, locale=locale)
