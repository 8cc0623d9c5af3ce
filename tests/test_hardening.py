"""The defect classes a hostile client found, one test (or a few) named after each class."""

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.live_server import ServerProcess, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server (uvicorn, SQLite) for the tests that need real sockets."""
    folder = tmp_path_factory.mktemp("hardening")
    with running_server(
        database_url=f"sqlite:///{folder / 'tabletop.db'}", log=folder / "server.log"
    ) as process:
        yield process


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


# 1. Body limits skipped by chunked uploads, without logging in.


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("path", "content_type", "total"),
    [
        ("/api/auth/login", "application/json", 3_000_000),
        ("/api/join", "application/json", 3_000_000),
        ("/api/scenarios/import", "multipart/form-data; boundary=x", 8_000_000),
        ("/api/exercises/import", "application/json", 70_000_000),
    ],
)
def test_body_limits_hold_for_chunked_bodies_before_authentication(
    client: TestClient, path: str, content_type: str, total: int
) -> None:
    # No Content-Length: httpx sends a generator as Transfer-Encoding: chunked.
    response = client.post(path, content=_chunks(total), headers={"Content-Type": content_type})
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "too_large"


def test_body_limits_answer_a_chunked_body_while_it_is_still_streaming(
    server: ServerProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b" " * 65536
        # 2 MB sent of a body announced as endless: the answer comes without the rest.
        for _ in range(32):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"too_large" in answer
    assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
