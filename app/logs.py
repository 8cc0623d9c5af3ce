"""Logs: text or JSON lines, an access log of our own, and secrets redacted on every handler."""

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REDACTED = "[redacted]"
ACCESS_LOGGER = "tabletop.access"
# The only request facts an access line carries: no query string, header, cookie or body.
HTTP_FIELDS = ("method", "path", "status", "duration_ms", "client")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Facilitator and participant tokens: `f_` or `p_` and 43 URL-safe characters (256 bits).
    (re.compile(r"[fp]_[A-Za-z0-9_-]{40,}"), REDACTED),
    (re.compile(r"(?i)(\bbearer\s+)[^\s\"',;]+"), rf"\g<1>{REDACTED}"),
    # password=…, "password": "…", admin_password: …, PASSWORD=… (a quoted value in full).
    (
        re.compile(r"(?i)(password\w*[\"']?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;}]+)"),
        rf"\g<1>{REDACTED}",
    ),
    # The password part of a database or broker URL (scheme://user:password@host).
    (re.compile(r"(://[^:/@\s]*:)[^@/\s]+@"), rf"\g<1>{REDACTED}@"),
)


def redact(text: str) -> str:
    """`text` with anything that looks like a token or a password replaced by [redacted]."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """The last line of defence: no record leaves a handler with a token or a password in it.

    Nothing is meant to log one; this catches the mistake that would (an exception message
    quoting a URL, a library logging its connection string).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the formatter reports it as logging always does
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name in HTTP_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, redact(value))
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the request facts if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in HTTP_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(
    log_format: Literal["text", "json"], *, stream: TextIO | str = "ext://sys.stdout"
) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server: one redacting handler for every logger."""
    formatter: dict[str, Any] = (
        {"()": "app.logs.JsonLines"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "app.logs.RedactSecrets"}},
        "formatters": {"tabletop": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": stream,
                "formatter": "tabletop",
                "filters": ["redact"],
            }
        },
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {
            # uvicorn's own lines go through the same handler; its access log is replaced by
            # AccessLog, which never sees the query string.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # Alembic lists its plugins at every start; the migrations it runs stay in the log.
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
    }


class AccessLog:
    """One line per HTTP request and per websocket: method, path, status, duration and client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_and_note(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status is None:
                status = 403  # closed before the handshake completed: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            status = status or 500
            raise
        finally:
            # A websocket the app neither accepted nor closed is refused with 403 by the server.
            fallback = 403 if scope["type"] == "websocket" else 500
            self._write(scope, status or fallback, time.perf_counter() - started)

    def _write(self, scope: Scope, status: int, elapsed_s: float) -> None:
        method = scope["method"] if scope["type"] == "http" else "WS"
        path = scope["path"]
        client = scope.get("client")
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(elapsed_s * 1000, 1),
            "client": client[0] if client else None,
        }
        self.log.info(
            "%s %s %s %s %.1f ms",
            fields["client"] or "-",
            method,
            path,
            status,
            fields["duration_ms"],
            extra=fields,
        )
