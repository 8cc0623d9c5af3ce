"""The per-socket protocol: a socket's hello, then its requests read and answered in turn.

`serve` runs one accepted socket for its whole life: it enters the exercise's room (so live
events reach its buffer from then on), sends the `hello` with a snapshot (shared by the team's
sockets), then reads the client's messages at most `Hub.messages_per_s` each: edits (handed to
the hub's batcher, answered by `ack` or `error` as REST would), injects from the facilitator
(the login checked again with each), `resume` (a replay queued behind what waits) and focus
(presence). Sending is the subscriber's business (app/live/subscriber.py).
"""

import asyncio
from typing import Any

from starlette.websockets import WebSocket

from app.auth.ratelimit import EditRateLimiter, MessageBudget
from app.db import utcnow
from app.errors import DomainError, Unauthorized
from app.exercises import service as exercises
from app.live import protocol
from app.live.hub import Hub
from app.live.subscriber import Audience, Close, Replay, Subscriber
from app.responses.service import CellEdit


async def serve(
    hub: Hub,
    websocket: WebSocket,
    audience: Audience,
    *,
    edit_limiter: EditRateLimiter | None = None,
) -> None:
    """Run an accepted socket until it disconnects: hello, then live events and requests."""
    sub = Subscriber(hub, websocket, audience, edit_limiter)
    try:
        await hub.enter(sub)
        if audience.team_id is not None and audience.participant_id is not None:
            hub.presence.connect(
                exercise_id=audience.exercise_id,
                team_id=audience.team_id,
                participant_id=audience.participant_id,
                name=audience.name,
            )
        await _hello(hub, sub)
        await _read_requests(hub, sub)
    finally:
        sub.closed = True
        # Before leaving: the last socket's leaving forgets the exercise's presence here, and
        # the other processes must first hear that this participant went.
        if audience.team_id is not None and audience.participant_id is not None:
            hub.presence.disconnect(
                team_id=audience.team_id, participant_id=audience.participant_id
            )
        hub.leave(sub)
        if sub.writer is not None and not sub.writer.done():
            sub.writer.cancel()


async def _hello(hub: Hub, sub: Subscriber) -> None:
    audience = sub.audience
    snap = await hub.snapshot(audience.exercise_id, audience.team_id)
    for team_id, roster in snap.rosters.items():
        hub.presence.merge_roster(exercise_id=audience.exercise_id, team_id=team_id, roster=roster)
    at = utcnow().isoformat()
    # The snapshot's bulk is encoded once for the team's sockets; each adds its own parts.
    body = protocol.with_fields(
        snap.encoded_body,
        {
            "server_time": at,
            "presence": [hub.presence.view(team_id) for team_id in snap.rosters],
        },
    )
    fields: dict[str, Any] = {"exercise": snap.exercise}
    if snap.team is not None:
        fields["team"] = snap.team
        fields["you"] = {"id": audience.participant_id, "name": audience.name}
    hello = protocol.server_message(
        "hello", seq=snap.last_seq, at=at, last_seq=snap.last_seq, **fields
    )
    sub.send(protocol.with_fields(hello, {}, raw={"snapshot": body}))
    sub.started = True
    sub.delivered_from = snap.last_seq
    sub.release(upto=snap.last_seq)


async def _read_requests(hub: Hub, sub: Subscriber) -> None:
    refusing = False
    budget = MessageBudget(rate_per_s=hub.messages_per_s, burst=hub.message_burst)
    throttled = 0  # consecutive messages that had to wait for the budget
    while True:
        message = await sub.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if refusing or sub.closed:
            continue
        # A socket sending faster than any person could is read at the budget's pace: the
        # rest waits in its TCP buffers and slows the sender down, not the server. One that
        # keeps it up is a script: it is closed rather than read for minutes to come.
        wait_s = budget.take()
        throttled = throttled + 1 if wait_s > 0 else 0
        if throttled > hub.flood_messages:
            hub.error(
                sub,
                code="too_many_messages",
                detail="This connection sent far more messages than a person types; "
                "it is closed. Reload the page to reconnect.",
            )
            sub.send(Close(protocol.CLOSE_FLOOD))
            refusing = True
            continue
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        text = message.get("text")
        if text is None:
            try:
                text = (message.get("bytes") or b"").decode()
            except UnicodeDecodeError:
                hub.error(sub, code="bad_message", detail="Send JSON text in UTF-8.")
                continue
        if len(text) * 4 > protocol.MAX_MESSAGE_BYTES and (
            len(text.encode()) > protocol.MAX_MESSAGE_BYTES
        ):
            hub.error(
                sub,
                code="too_large",
                detail=f"A message may have at most {protocol.MAX_MESSAGE_BYTES} bytes.",
            )
            sub.send(Close(protocol.CLOSE_TOO_BIG))
            refusing = True
            continue
        try:
            request = protocol.parse(text)
        except protocol.BadMessage as exc:
            hub.error(sub, code=exc.code, detail=exc.detail, client_ref=exc.client_ref)
            continue
        if isinstance(request, protocol.Edit):
            await _edit(hub, sub, request)
        elif isinstance(request, protocol.DeliverInject):
            await _inject(hub, sub, request)
        elif isinstance(request, protocol.Resume):
            if sub.buffer is None:
                sub.buffer = []
            sub.send(Replay(request.after_seq))
        else:
            _focus(hub, sub, request)


def _refuse(hub: Hub, sub: Subscriber, exc: DomainError, *, client_ref: Any) -> None:
    """The `error` answering a request the rules refused, as REST would word it."""
    hub.error(sub, code=exc.code, detail=exc.detail, client_ref=client_ref, **exc.extra)


def _ack(hub: Hub, sub: Subscriber, *, client_ref: Any, **fields: Any) -> None:
    """The `ack` of a request carried out (an edit stored, an inject delivered)."""
    sub.send(
        protocol.server_message(
            "ack",
            seq=hub.latest_seq(sub.audience.exercise_id),
            client_ref=client_ref,
            **fields,
        )
    )


async def _edit(hub: Hub, sub: Subscriber, request: protocol.Edit) -> None:
    audience = sub.audience
    team_id = audience.team_id or request.team_id
    if team_id is None:
        hub.error(
            sub,
            code="team_required",
            detail="A facilitator's edit must name the team_id it is for.",
            client_ref=request.client_ref,
        )
        return
    try:
        if sub.edit_limiter is not None:
            sub.edit_limiter.take(audience.rate_key)
        version = await hub.edits.submit(
            CellEdit(
                exercise_id=audience.exercise_id,
                team_id=team_id,
                inject_id=request.inject_id,
                field=request.field,
                value=request.value,
                base_version=request.base_version,
                author=audience.name,
                participant_id=audience.participant_id,
            )
        )
    except DomainError as exc:
        _refuse(hub, sub, exc, client_ref=request.client_ref)
        return
    _ack(hub, sub, client_ref=request.client_ref, version=version)


async def _inject(hub: Hub, sub: Subscriber, request: protocol.DeliverInject) -> None:
    """Deliver the facilitator's inject; `ack` with it, or an `error` as the REST call would."""
    audience = sub.audience
    if audience.credential is None:
        hub.error(
            sub,
            code="facilitator_only",
            detail="Only a facilitator may deliver injects.",
            client_ref=request.client_ref,
        )
        return
    try:
        inject = await hub.write(
            exercises.deliver_inject,
            exercise_id=audience.exercise_id,
            data=request,
            library=sub.websocket.app.state.scenarios,
            # Checked again with each inject: logging out revokes the open socket too.
            owner_token=audience.credential,
        )
    except DomainError as exc:
        _refuse(hub, sub, exc, client_ref=request.client_ref)
        if isinstance(exc, Unauthorized):
            sub.send(Close(protocol.CLOSE_UNAUTHENTICATED))
        return
    _ack(hub, sub, client_ref=request.client_ref, inject=inject.model_dump(mode="json"))


def _focus(hub: Hub, sub: Subscriber, request: protocol.Focus) -> None:
    audience = sub.audience
    if audience.team_id is None or audience.participant_id is None:
        return  # facilitators watch; they are not part of any team's presence
    hub.presence.focus(
        team_id=audience.team_id,
        participant_id=audience.participant_id,
        inject_id=request.inject_id if request.field else None,
        field=request.field,
    )
