"""The live protocol's messages: what a client may send, and the server's own (non-event) messages."""

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from app.db import utcnow
from app.errors import describe_validation_error
from app.eventlog.wire import encode
from app.exercises.schemas import InjectCreate
from app.web import jsonbody

# A cell holds at most 5000 characters; a message four times that size is no honest edit.
MAX_MESSAGE_BYTES = 64 * 1024
CLIENT_TYPES = ("edit", "resume", "focus", "inject")

# Close codes of the contract (1009 and 1012 are the standard ones).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_FLOOD = 1008  # policy violation: far more messages than a person sends, for seconds
CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012

Ref = Annotated[str, Field(max_length=100)] | int | None


class _ClientMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Edit(_ClientMessage):
    """Write one cell, naming the version the writer last saw."""

    type: Literal["edit"]
    inject_id: Annotated[str, Field(min_length=1, max_length=32)]
    field: Annotated[str, Field(min_length=1, max_length=32)]
    value: str
    base_version: Annotated[int, Field(ge=0)]
    client_ref: Ref = None
    # Participants write to their own team; a facilitator names the team.
    team_id: Annotated[str, Field(max_length=32)] | None = None


class Resume(_ClientMessage):
    """Send every event after `after_seq` this client may see, then continue live."""

    type: Literal["resume"]
    after_seq: Annotated[int, Field(ge=0)]


class Focus(_ClientMessage):
    """The participant is now in this field (both None: in none)."""

    type: Literal["focus"]
    inject_id: Annotated[str, Field(max_length=32)] | None = None
    field: Annotated[str, Field(max_length=32)] | None = None


class DeliverInject(InjectCreate):
    """The facilitator's inject, the body of `POST /api/exercises/{id}/injects`, sent over their
    socket: every participant waits on this click, and the socket is already open."""

    type: Literal["inject"]
    client_ref: Ref = None


Request = Edit | Resume | Focus | DeliverInject
ClientMessage = Annotated[Request, Field(discriminator="type")]
_client_message: TypeAdapter[Request] = TypeAdapter(ClientMessage)


class BadMessage(Exception):
    """A client message the server cannot act on; answered with an `error`, never a dropped socket."""

    def __init__(self, detail: str, *, code: str = "bad_message", client_ref: Any = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.client_ref = client_ref


def parse(text: str) -> Request:
    """The typed client message, or BadMessage saying what is wrong with it."""
    try:
        raw = jsonbody.load(text)
    except jsonbody.BadJson as exc:
        if exc.code == "invalid_json":
            raise BadMessage("The message is not valid JSON.") from None
        raise BadMessage(exc.detail, code=exc.code) from None
    if not isinstance(raw, dict) or raw.get("type") not in CLIENT_TYPES:
        raise BadMessage(
            "Unknown message type; send a JSON object whose type is one of: "
            + ", ".join(CLIENT_TYPES)
            + "."
        )
    client_ref = raw.get("client_ref")
    # The error names the request's client_ref, so the browser settles that edit, not waits.
    ref = client_ref if isinstance(client_ref, str | int) else None
    try:
        jsonbody.check(raw)
        return _client_message.validate_python(raw)
    except jsonbody.BadJson as exc:
        raise BadMessage(exc.detail, code=exc.code, client_ref=ref) from None
    except ValidationError as exc:
        detail = describe_validation_error(list(exc.errors()))
        raise BadMessage(detail, code="invalid", client_ref=ref) from None


def server_message(type: str, *, seq: int, at: str | None = None, **fields: Any) -> str:
    """A server message that is not a stored event, encoded; `seq` is the exercise's latest."""
    return encode({"type": type, "seq": seq, "at": at or utcnow().isoformat(), **fields})


def with_fields(encoded: str, fields: dict[str, Any], raw: dict[str, str] | None = None) -> str:
    """An encoded JSON object with more fields: `fields` to encode, `raw` already encoded."""
    parts = [
        encode(fields)[1:-1],
        *(f"{json.dumps(key, ensure_ascii=False)}:{value}" for key, value in (raw or {}).items()),
    ]
    extra = ",".join(part for part in parts if part)
    if not extra:
        return encoded
    return f"{encoded[:-1]}{',' if encoded != '{}' else ''}{extra}}}"


def error(*, seq: int, code: str, detail: str, client_ref: Any = None, **extra: Any) -> str:
    body: dict[str, Any] = {"code": code, "detail": detail, **extra}
    if client_ref is not None:
        body["client_ref"] = client_ref
    return server_message("error", seq=seq, **body)
