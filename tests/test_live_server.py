"""The live channel on a real uvicorn server: slow clients, refused handshakes and restarts."""

import base64
import contextlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.sync.client import ClientConnection, connect

from app.live.frames import text_frame
from tests.factories import join, make_exercise

MESSAGES = 40
# Japanese text is three bytes a character in UTF-8: each message is about 6 KB on the wire.
BIG_TEXT = "至急" * 990


class LiveServer:
    """uvicorn serving the test app in a thread, on a listening socket with a tiny send buffer."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: the kernel then buffers little for a client that stops reading.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server(app: FastAPI) -> Iterator[LiveServer]:
    live = LiveServer(app)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def _ws(server: LiveServer, path: str, headers: dict[str, str], **kwargs: Any) -> ClientConnection:
    return connect(server.ws_url(path), additional_headers=headers, open_timeout=10, **kwargs)


class RawSocketClient:
    """A websocket client that completes the handshake and then reads only when told to."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.pending = b""
        while b"\r\n\r\n" not in self.pending:
            self.pending += self.sock.recv(1)
        assert self.pending.startswith(b"HTTP/1.1 101"), self.pending
        self.pending = b""

    def _read(self, count: int) -> bytes:
        while len(self.pending) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the TCP connection without a close frame")
            self.pending += chunk
        data, self.pending = self.pending[:count], self.pending[count:]
        return data

    def frames_until_close(self) -> tuple[int, int]:
        """Read everything the server sent: (data frames received, close code)."""
        self.sock.settimeout(30)
        received = 0
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                return received, struct.unpack("!H", payload[:2])[0]
            if opcode in (0x1, 0x2):
                received += 1

    def close(self) -> None:
        self.sock.close()


def test_a_frozen_client_is_closed_4408_and_the_others_keep_receiving(
    server: LiveServer, http: httpx.Client
) -> None:
    hub = server.app.state.hub
    hub.queue_size = 4
    exercise = make_exercise(http)  # type: ignore[arg-type]
    code = exercise.team(0)["join_code"]
    frozen_member = join(http, code, "Frozen")  # type: ignore[arg-type]
    teammates = [join(http, code, f"Awake {n}") for n in range(3)]  # type: ignore[arg-type]
    frozen = RawSocketClient(server.port, "/ws/participant", frozen_member["headers"])
    try:
        with contextlib.ExitStack() as stack:
            awake = [
                stack.enter_context(_ws(server, "/ws/participant", mate["headers"]))
                for mate in teammates
            ]
            console = stack.enter_context(
                _ws(server, f"/ws/exercises/{exercise.id}/facilitator", exercise.headers)
            )
            for ws in [*awake, console]:
                assert '"type":"hello"' in str(ws.recv(timeout=10))
            sent = []
            for n in range(MESSAGES):
                response = http.post(
                    f"/api/exercises/{exercise.id}/messages",
                    json={"text": f"{n} {BIG_TEXT}"},
                    headers=exercise.headers,
                )
                assert response.status_code == 201, response.text
                sent.append(response.json()["seq"])
            for ws in [*awake, console]:
                seqs = []
                while len(seqs) < MESSAGES:
                    message = json.loads(ws.recv(timeout=10))
                    if message["type"] == "message":
                        seqs.append(message["seq"])
                assert seqs == sent
        received, close_code = frozen.frames_until_close()
    finally:
        frozen.close()
    assert close_code == 4408
    assert received < MESSAGES + 1  # the hello plus every message would mean it was never cut


def test_unauthenticated_and_foreign_origin_handshakes(
    server: LiveServer, http: httpx.Client
) -> None:
    with _ws(server, "/ws/participant", {}) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    exercise = make_exercise(http)  # type: ignore[arg-type]
    member = join(http, exercise.team(0)["join_code"])  # type: ignore[arg-type]
    with pytest.raises(InvalidStatus) as refused:
        _ws(server, "/ws/participant", member["headers"], origin="https://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    with _ws(
        server,
        "/ws/participant",
        member["headers"],
        origin=server.base_url,  # type: ignore[arg-type]
    ) as ws:
        assert '"type":"hello"' in str(ws.recv(timeout=10))


def test_server_shutdown_closes_sockets_with_1012(app: FastAPI) -> None:
    live = LiveServer(app)
    live.start()
    try:
        with httpx.Client(base_url=live.base_url, timeout=10) as http:
            exercise = make_exercise(http)  # type: ignore[arg-type]
            member = join(http, exercise.team(0)["join_code"])  # type: ignore[arg-type]
        with _ws(live, "/ws/participant", member["headers"]) as ws:
            ws.recv(timeout=10)
            live.server.should_exit = True
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    finally:
        live.stop()


def test_events_reach_direct_and_ordinary_sockets_alike(
    server: LiveServer, http: httpx.Client
) -> None:
    """Sockets without compression get the shared frame written directly; others the usual way."""
    exercise = make_exercise(http)  # type: ignore[arg-type]
    code = exercise.team(0)["join_code"]
    plain = [join(http, code, f"Plain {n}") for n in range(2)]  # type: ignore[arg-type]
    deflated = join(http, code, "Deflated")  # type: ignore[arg-type]
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(_ws(server, "/ws/participant", member["headers"], compression=None))
            for member in plain
        ]
        sockets.append(stack.enter_context(_ws(server, "/ws/participant", deflated["headers"])))
        for ws in sockets:
            assert '"type":"hello"' in str(ws.recv(timeout=10))
        room = server.app.state.hub.rooms[exercise.id]
        subscribers = {sub.audience.name: sub for sub in room.everyone()}
        assert subscribers["Plain 0"].direct is not None
        assert subscribers["Plain 1"].direct is not None
        assert subscribers["Deflated"].direct is None  # compression: frames differ per socket
        for name in ("Plain 0", "Plain 1"):
            # Accepted: the server keeps neither the handshake request nor its response.
            protocol = subscribers[name].direct.protocol  # type: ignore[union-attr]
            assert protocol.request is None and protocol.response is None
        texts = [f"{n} 至急 <b>&</b>" for n in range(5)]
        for text in texts:
            posted = http.post(
                f"/api/exercises/{exercise.id}/messages",
                json={"text": text},
                headers=exercise.headers,
            )
            assert posted.status_code == 201, posted.text
        for ws in sockets:
            got = []
            while len(got) < len(texts):
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "message":
                    got.append(message["text"])
            assert got == texts
        # A message for one socket (an ack, an error) takes the same two ways.
        for ref, ws in enumerate(sockets):
            ws.send(json.dumps({"type": "edit", "client_ref": ref}))
            while (message := json.loads(ws.recv(timeout=10)))["type"] != "error":
                pass
            assert message["client_ref"] == ref


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 70_001])
def test_a_text_frame_is_what_the_websockets_library_makes(size: int) -> None:
    text = ("至" * size)[: size // 3] + "x" * (size - 3 * (size // 3))
    assert len(text.encode()) == size
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert text_frame(text) == expected
