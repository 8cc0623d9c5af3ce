"""Writing an event's websocket frame straight to each socket's transport, encoded once.

A server's text frame is the same bytes for every client (servers do not mask, and this app
turns per-message compression off), so fanning an inject out to 500 sockets needs one frame,
not 500 trips through Starlette's and uvicorn's send coroutines. This works with uvicorn's
sans-I/O websocket protocol, which `tabletop serve` uses; with any other server (the test
client, another ASGI server) `DirectWriter.of` finds nothing and sends take the ordinary way.
"""

import struct
from collections.abc import Awaitable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.protocol import State

# Where the outermost middleware leaves the server's own `send` in a websocket's scope.
SERVER_SEND = "tabletop.server_send"


class KeepServerSend:
    """Outermost middleware: remembers the server's `send` of each websocket (see DirectWriter)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # The app's own coroutine, not one of ours around it, which would live as long as the socket.
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        return self.app(scope, receive, send)


def text_frame(text: str) -> bytes:
    """The bytes of an unmasked, uncompressed, final text frame (RFC 6455, section 5.2)."""
    data = text.encode()
    size = len(data)
    # FIN + text opcode, then the payload length in 7 bits, or 126 + 16 bits, or 127 + 64 bits.
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + data
    return struct.pack("!BBQ", 0x81, 127, size) + data


class DirectWriter:
    """Writes whole frames to one uvicorn websocket's transport while it is open and writable."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    @classmethod
    def of(cls, scope: Scope) -> "DirectWriter | None":
        protocol = getattr(scope.get(SERVER_SEND), "__self__", None)
        if type(protocol).__name__ != "WebSocketsSansIOProtocol":
            return None
        connection = getattr(protocol, "conn", None)
        if connection is None or getattr(connection, "extensions", None):
            return None  # compression was negotiated: frames differ per socket
        needed = ("transport", "writable", "close_sent", "handshake_complete")
        if not all(hasattr(protocol, name) for name in needed):
            return None
        return cls(protocol)

    def forget_handshake(self) -> None:
        """Let go of the server's copy of the handshake request and response once accepted.

        uvicorn needs them only to answer the handshake, yet keeps them as long as the socket
        lives: a few KiB per participant (more with a browser's cookies and headers).
        """
        protocol = self.protocol
        if protocol.handshake_complete:
            for name in ("request", "response"):
                if hasattr(protocol, name):
                    setattr(protocol, name, None)

    def write(self, frame: bytes) -> bool:
        """Write the frame now if the socket takes it without waiting; False: send it normally."""
        protocol = self.protocol
        if (
            not protocol.handshake_complete
            or protocol.close_sent
            or not protocol.writable.is_set()
            or protocol.transport.is_closing()
            or protocol.conn.state is not State.OPEN
            or protocol.conn.expect_continuation_frame
        ):
            return False
        protocol.transport.write(frame)
        return True
