"""Who is asking: token extraction, the current facilitator or participant, and Origin checks."""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from app.auth import service
from app.auth.models import Facilitator
from app.config import Settings
from app.db import SessionDep
from app.errors import Forbidden, Unauthorized
from app.exercises.models import Participant

FACILITATOR_COOKIE = "tabletop_session"
PARTICIPANT_COOKIE = "tabletop_participant"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Credential:
    token: str
    from_cookie: bool


def bearer_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def credential(connection: HTTPConnection, *, cookie: str, prefix: str) -> Credential | None:
    """The bearer token if it is of the wanted kind, else the cookie."""
    token = bearer_token(connection)
    if token and token.startswith(prefix):
        return Credential(token=token, from_cookie=False)
    if value := connection.cookies.get(cookie):
        return Credential(token=value, from_cookie=True)
    return None


def own_origin(connection: HTTPConnection) -> str:
    scheme = "https" if connection.url.scheme in ("https", "wss") else "http"
    return f"{scheme}://{connection.headers.get('host', '')}"


def origin_allowed(connection: HTTPConnection, settings: Settings) -> bool:
    """An absent Origin (non-browser clients) or the server's own, the public URL or a configured one."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    allowed = {own_origin(connection), *settings.allowed_origins}
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    return origin in allowed


def check_cookie_origin(request: Request, found: Credential) -> None:
    # Cookies ride along on cross-site requests; a bearer token cannot, so only cookies need this.
    if (
        found.from_cookie
        and request.method in UNSAFE_METHODS
        and not origin_allowed(request, request.app.state.settings)
    ):
        raise Forbidden(
            "Cross-origin requests with a session cookie are refused.", code="bad_origin"
        )


def facilitator_credential(request: Request) -> Credential | None:
    return credential(request, cookie=FACILITATOR_COOKIE, prefix=service.FACILITATOR_TOKEN_PREFIX)


def facilitator_of(request: Request, session: Session) -> Facilitator | None:
    """The facilitator whose token or cookie came with the request (queries: call in a thread)."""
    found = facilitator_credential(request)
    facilitator = service.facilitator_for_token(session, token=found.token) if found else None
    if found is not None and facilitator is not None:
        check_cookie_origin(request, found)
    return facilitator


def participant_of(request: Request, session: Session) -> Participant | None:
    """The participant whose token or cookie came with the request (queries: call in a thread)."""
    found = credential(request, cookie=PARTICIPANT_COOKIE, prefix=service.PARTICIPANT_TOKEN_PREFIX)
    participant = service.participant_for_token(session, token=found.token) if found else None
    if found is not None and participant is not None:
        check_cookie_origin(request, found)
    return participant


def facilitator_required(request: Request, session: Session) -> Facilitator:
    """The requesting facilitator, or the refusal for anyone else (queries: call in a thread)."""
    facilitator = facilitator_of(request, session)
    if facilitator is not None:
        return facilitator
    if participant_of(request, session) is not None:
        raise Forbidden("Only a facilitator may do this.", code="facilitator_only")
    raise Unauthorized("Log in as a facilitator first.")


# The dependencies below are coroutines that go to a worker thread only for a query: FastAPI
# would run a plain function in a thread even to find that there is no token (a request pays
# each thread hop with several context switches).


def _has_credential(request: Request, *, cookie: str, prefix: str) -> bool:
    return credential(request, cookie=cookie, prefix=prefix) is not None


async def optional_facilitator(request: Request, session: SessionDep) -> Facilitator | None:
    if not _has_credential(
        request, cookie=FACILITATOR_COOKIE, prefix=service.FACILITATOR_TOKEN_PREFIX
    ):
        return None
    return await run_in_threadpool(facilitator_of, request, session)


async def optional_participant(request: Request, session: SessionDep) -> Participant | None:
    if not _has_credential(
        request, cookie=PARTICIPANT_COOKIE, prefix=service.PARTICIPANT_TOKEN_PREFIX
    ):
        return None
    return await run_in_threadpool(participant_of, request, session)


async def require_facilitator(request: Request, session: SessionDep) -> Facilitator:
    return await run_in_threadpool(facilitator_required, request, session)


@dataclass(frozen=True)
class Actor:
    """Whoever is asking for a team's data: the owning facilitator or one of its participants."""

    facilitator: Facilitator | None
    participant: Participant | None

    @property
    def rate_key(self) -> str:
        """Whose edit budget a write spends."""
        if self.participant is not None:
            return f"participant:{self.participant.id}"
        assert self.facilitator is not None
        return f"facilitator:{self.facilitator.id}"

    @property
    def display_name(self) -> str:
        if self.participant is not None:
            return self.participant.name
        assert self.facilitator is not None
        return self.facilitator.username


async def require_actor(
    facilitator: Annotated[Facilitator | None, Depends(optional_facilitator)],
    participant: Annotated[Participant | None, Depends(optional_participant)],
) -> Actor:
    if facilitator is None and participant is None:
        raise Unauthorized("Join a team or log in as a facilitator first.")
    return Actor(facilitator=facilitator, participant=participant)


CurrentFacilitator = Annotated[Facilitator, Depends(require_facilitator)]
CurrentActor = Annotated[Actor, Depends(require_actor)]
