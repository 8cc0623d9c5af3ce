"""The websocket endpoints: check Origin and credentials, then hand the socket to the hub."""

from fastapi import APIRouter, WebSocket
from sqlmodel import Session

from app.auth import service as auth
from app.auth.deps import FACILITATOR_COOKIE, PARTICIPANT_COOKIE, credential, origin_allowed
from app.live import connection, protocol
from app.live import service as live
from app.live.hub import Hub
from app.live.subscriber import Audience

router = APIRouter(tags=["live"])


def _participant_audience(session: Session, *, token: str | None) -> Audience | int:
    """The participant's audience, or the close code that refuses the socket."""
    seat = live.participant_seat(session, token=token) if token else None
    if seat is None:
        return protocol.CLOSE_UNAUTHENTICATED
    if seat.removed:
        return protocol.CLOSE_FORBIDDEN
    return Audience(
        exercise_id=seat.exercise_id,
        name=seat.name,
        rate_key=f"participant:{seat.participant_id}",
        team_id=seat.team_id,
        participant_id=seat.participant_id,
    )


def _facilitator_audience(
    session: Session, *, exercise_id: str, token: str | None, participant_token: str | None
) -> Audience | int:
    facilitator = live.facilitator_by_token(session, token=token) if token else None
    if facilitator is None:
        # A participant is known but not allowed here; anyone else is not known at all.
        known = participant_token and live.participant_by_token(session, token=participant_token)
        return protocol.CLOSE_FORBIDDEN if known else protocol.CLOSE_UNAUTHENTICATED
    if not live.owns_exercise(session, facilitator=facilitator, exercise_id=exercise_id):
        return protocol.CLOSE_FORBIDDEN
    return Audience(
        exercise_id=exercise_id,
        name=facilitator.username,
        rate_key=f"facilitator:{facilitator.id}",
        credential=token,
    )


async def _refuse_foreign_origin(websocket: WebSocket) -> bool:
    # Cookies ride along on a cross-site handshake, so a foreign page must not get a socket.
    if origin_allowed(websocket, websocket.app.state.settings):
        return False
    await websocket.close(code=protocol.CLOSE_FORBIDDEN)
    return True


async def _run(websocket: WebSocket, found: Audience | int) -> None:
    await websocket.accept()
    if isinstance(found, int):
        await websocket.close(code=found)
        return
    hub: Hub = websocket.app.state.hub
    await connection.serve(
        hub, websocket, found, edit_limiter=getattr(websocket.app.state, "edit_limiter", None)
    )


@router.websocket("/ws/participant")
async def participant_socket(websocket: WebSocket) -> None:
    """A participant's live channel: their team's events and the exercise-wide ones."""
    if await _refuse_foreign_origin(websocket):
        return
    hub: Hub = websocket.app.state.hub
    found = credential(websocket, cookie=PARTICIPANT_COOKIE, prefix=auth.PARTICIPANT_TOKEN_PREFIX)
    audience = await hub.read(_participant_audience, token=found.token if found else None)
    await _run(websocket, audience)


@router.websocket("/ws/exercises/{exercise_id}/facilitator")
async def facilitator_socket(websocket: WebSocket, exercise_id: str) -> None:
    """The owning facilitator's live channel: every event of the exercise."""
    if await _refuse_foreign_origin(websocket):
        return
    hub: Hub = websocket.app.state.hub
    found = credential(websocket, cookie=FACILITATOR_COOKIE, prefix=auth.FACILITATOR_TOKEN_PREFIX)
    other = credential(websocket, cookie=PARTICIPANT_COOKIE, prefix=auth.PARTICIPANT_TOKEN_PREFIX)
    audience = await hub.read(
        _facilitator_audience,
        exercise_id=exercise_id,
        token=found.token if found else None,
        participant_token=other.token if other else None,
    )
    await _run(websocket, audience)
