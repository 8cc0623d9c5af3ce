"""Server-rendered sign-in and join pages; the forms post to the JSON API from the browser."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import i18n
from app.auth.deps import optional_facilitator, optional_participant
from app.auth.models import Facilitator
from app.db import SessionDep
from app.exercises.models import Participant, Team

router = APIRouter(include_in_schema=False)

MaybeFacilitator = Annotated[Facilitator | None, Depends(optional_facilitator)]
MaybeParticipant = Annotated[Participant | None, Depends(optional_participant)]


def safe_next(value: str | None) -> str:
    """A same-site path to go to after signing in; anything else falls back to the list."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/exercises"


@router.get("/")
def index(facilitator: MaybeFacilitator, participant: MaybeParticipant) -> RedirectResponse:
    """Facilitators land on their exercises, participants in their team room, others on join."""
    if facilitator is not None:
        return RedirectResponse("/exercises", status_code=303)
    if participant is not None:
        return RedirectResponse("/team", status_code=303)
    return RedirectResponse("/join", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    """The facilitator sign-in form."""
    locale = i18n.negotiate(request)
    return i18n.render(request, "facilitator/login.html", {"next": safe_next(next)}, locale=locale)


@router.get("/join", response_class=HTMLResponse)
def join_page(
    request: Request, session: SessionDep, participant: MaybeParticipant, code: str = ""
) -> Response:
    """Code and name; the code comes prefilled from the QR link."""
    team = session.get(Team, participant.team_id) if participant is not None else None
    locale = i18n.negotiate(request)
    context = {"code": code[:32], "current_team": team.name if team else None}
    return i18n.render(request, "team/join.html", context, locale=locale)
