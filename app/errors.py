"""Domain exceptions and the handlers that turn them into `{"detail", "code"}` answers."""

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A request the rules refuse; carries the status, a sentence and a snake_case code."""

    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, **self.extra}


class Unauthorized(DomainError):
    status_code = 401
    default_code = "unauthenticated"


class Forbidden(DomainError):
    status_code = 403
    default_code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    default_code = "not_found"


class Conflict(DomainError):
    status_code = 409
    default_code = "conflict"


class InvalidState(DomainError):
    status_code = 409
    default_code = "invalid_state"


class Invalid(DomainError):
    status_code = 422
    default_code = "invalid"


class TooManyRequests(DomainError):
    status_code = 429
    default_code = "rate_limited"


class PayloadTooLarge(DomainError):
    status_code = 413
    default_code = "too_large"


class ErrorBody(BaseModel):
    """Every error answer: a sentence saying what to fix and a stable snake_case code."""

    model_config = ConfigDict(extra="allow")

    detail: str
    code: str


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }


_DESCRIPTIONS = {
    400: "The request could not be read (a malformed body, or a NUL character in the URL).",
    401: "Not authenticated, or the token has expired.",
    403: "Authenticated, but not allowed.",
    404: "No such resource, or not visible to the caller.",
    409: "The exercise's state forbids it, or the value changed since the caller saw it.",
    413: "The request body is too large.",
    422: "The request does not fit; the sentence names the field.",
    429: "Too many failed attempts, or too many edits per second, from this client.",
}
# Documented on every API router, so /openapi.json lists the answers clients really get.
API_ERRORS = _documented(400, 401, 403, 404, 409, 413, 422, 429)
PUBLIC_ERRORS = _documented(400, 401, 404, 409, 413, 422, 429)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def describe_validation_error(errors: list[Any]) -> str:
    """One sentence naming each offending field and what to fix."""
    parts = []
    for error in errors[:5]:
        location = [str(item) for item in error.get("loc", ()) if item not in ("body", "query")]
        where = ".".join(location) or "request body"
        parts.append(f"{where}: {error.get('msg', 'is invalid')}")
    return "Invalid request — " + "; ".join(parts) + "."


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = describe_validation_error(list(exc.errors()))
    return JSONResponse({"detail": detail, "code": "invalid"}, status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "The request could not be served."
    code = _HTTP_CODES.get(exc.status_code, "error")
    return JSONResponse(
        {"detail": detail, "code": code},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The database restarted under the request, or a write waited out the lock timeout: the
    # transaction did not commit, and sending the request again is the right thing to do.
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {
            "detail": "The database is not answering right now, so nothing was saved; "
            "try again in a moment.",
            "code": "database_unavailable",
        },
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log, never to the client.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {
            "detail": "Something went wrong on the server; nothing you sent was lost.",
            "code": "server_error",
        },
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error answers on the app."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
