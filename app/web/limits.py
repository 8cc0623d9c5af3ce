"""Request bodies: the size limit enforced while the body streams in, and JSON decoded once.

A limit that reads only `Content-Length` lets a chunked body through whole (an 800 MB login body
took the server to 1.7 GB). This middleware counts the bytes as they arrive, for every route and
every encoding (chunked, multipart), before any route, dependency or authentication runs, and
answers 413 the moment the limit is passed. JSON bodies are small: they are read here in full
(within the limit) and decoded by `jsonbody`, so a body no route can use is refused with a 4xx
before FastAPI's own decoder could fail on it with a 500.
"""

from collections.abc import Awaitable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web import jsonbody


class BodyLimits:
    """Refuses a body over its route's limit while it streams, bad JSON, and NUL bytes in the URL."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Upload endpoints take files bigger than any JSON body; they name their own ceiling.
        self.larger = larger or {}

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            # Handed on as the inner app's own coroutine: a websocket's chain of coroutines
            # lives as long as the socket, and a frame of ours would, once per participant.
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.larger.get(scope["path"], self.max_bytes)
        refusal = _url_refusal(scope) or _declared_refusal(scope, limit)
        # An upload's body (in `larger`) is decoded by its own route, off the event loop.
        if refusal is None and scope["path"] not in self.larger and _is_json(scope):
            body, over = await _read_within(receive, limit)
            if over:
                refusal = _too_large(limit)
            elif body:
                try:
                    jsonbody.decode(body)
                except jsonbody.BadJson as exc:
                    refusal = exc.status, exc.detail, exc.code
            receive = _replay({"type": "http.request", "body": body, "more_body": False}, receive)
        if refusal is not None:
            await _answer(refusal, scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        await _streamed(self.app, scope, receive, send, limit=limit)


async def _streamed(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, limit: int
) -> None:
    """Run the app with a `receive` that stops the body at `limit` and answers 413 itself."""
    state = {"read": 0, "refused": False, "started": False}

    async def limited_receive() -> Message:
        if state["refused"]:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            state["read"] += len(message.get("body", b""))
            if state["read"] > limit:
                state["refused"] = True
                if not state["started"]:
                    await _answer(_too_large(limit), scope, receive, send)
                # The app sees a client that went away and stops reading; its answer is dropped.
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message: Message) -> None:
        if state["refused"]:
            return
        if message["type"] == "http.response.start":
            state["started"] = True
        await send(message)

    await app(scope, limited_receive, guarded_send)


async def _read_within(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The body, read until it ends or passes `limit` (then True: the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(message: Message, receive: Receive) -> Receive:
    pending = [message]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _too_large(limit: int) -> tuple[int, str, str]:
    return 413, f"The request body is over {limit} bytes; send less.", "too_large"


def _declared_refusal(scope: Scope, limit: int) -> tuple[int, str, str] | None:
    length = dict(scope["headers"]).get(b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return _too_large(limit)
    return None


def _url_refusal(scope: Scope) -> tuple[int, str, str] | None:
    target = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
    if b"%00" in target or "\x00" in scope["path"]:
        return 400, "The URL contains a NUL character; remove it.", "invalid_character"
    return None


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI will read the body as JSON (it does so without a content type, too)."""
    if scope["method"] in ("GET", "HEAD", "OPTIONS"):
        return False
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    return not content_type or content_type.split(b";")[0].strip().lower().endswith(b"json")


async def _answer(
    refusal: tuple[int, str, str], scope: Scope, receive: Receive, send: Send
) -> None:
    status, detail, code = refusal
    response = JSONResponse({"detail": detail, "code": code}, status_code=status)
    await response(scope, receive, send)
