"""Login, logout and joining a team."""

import logging

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.auth import service
from app.auth.deps import (
    FACILITATOR_COOKIE,
    PARTICIPANT_COOKIE,
    check_cookie_origin,
    facilitator_credential,
)
from app.auth.ratelimit import FailureLimiter, JoinGuard
from app.auth.schemas import ExerciseRef, JoinRead, JoinRequest, LoginRead, LoginRequest, TeamRef
from app.config import Settings
from app.db import SessionDep
from app.errors import PUBLIC_ERRORS, NotFound, Unauthorized

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["auth"], responses=PUBLIC_ERRORS)


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _set_cookie(
    response: Response, settings: Settings, *, name: str, token: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


@router.post("/auth/login", response_model=LoginRead)
def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep
) -> LoginRead:
    """Exchange a facilitator's username and password for a token and a session cookie."""
    settings: Settings = request.app.state.settings
    limiter: FailureLimiter = request.app.state.login_limiter
    keys = (f"ip:{client_key(request)}", f"user:{body.username.casefold()}")
    for key in keys:
        limiter.check(key)
    try:
        token = service.login(
            session,
            username=body.username,
            password=body.password,
            ttl_hours=settings.login_token_ttl_hours,
        )
    except Unauthorized:
        for key in keys:
            limiter.fail(key)
        raise
    # A fresh token per login: a cookie planted before login is never promoted to a session.
    _set_cookie(
        response,
        settings,
        name=FACILITATOR_COOKIE,
        token=token,
        max_age=settings.login_token_ttl_hours * 3600,
    )
    return LoginRead(token=token, username=body.username)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, session: SessionDep) -> Response:
    """End the facilitator session of this token or cookie, live sockets included."""
    found = facilitator_credential(request)
    token = found.token if found else None
    if found is not None:
        # A cookie logout is a cookie write like any other: a foreign site may not cause it.
        check_cookie_origin(request, found)
    if token:
        await run_in_threadpool(service.logout, session, token=token)
        # This process's sockets of that login close now, other processes' within 15 s (their
        # own periodic check, which also catches this one should it fail: the logout stands).
        try:
            await request.app.state.hub.revalidate()
        except Exception:
            log.exception("closing the sockets of a logged-out login failed")
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(FACILITATOR_COOKIE, path="/")
    return response


@router.post("/join", response_model=JoinRead, status_code=status.HTTP_201_CREATED)
def join(body: JoinRequest, request: Request, response: Response, session: SessionDep) -> JoinRead:
    """Join a team with its code and a display name; no account needed."""
    settings: Settings = request.app.state.settings
    guard: JoinGuard = request.app.state.join_limiter
    key = f"ip:{client_key(request)}"
    guard.check(key)
    try:
        joined = service.join(session, code=body.code, name=body.name)
    except NotFound:
        guard.fail(key)
        raise
    _set_cookie(
        response, settings, name=PARTICIPANT_COOKIE, token=joined.token, max_age=14 * 24 * 3600
    )
    return JoinRead(
        token=joined.token,
        participant_id=joined.participant.id,
        team=TeamRef(id=joined.team.id, name=joined.team.name),
        exercise=ExerciseRef(
            id=joined.exercise.id, title=joined.exercise.title, status=joined.exercise.status.value
        ),
    )
