"""The defect classes a hostile client found, one test (or a few) named after each class."""

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import FACILITATOR_PASSWORD
from tests.factories import join, make_exercise, push
from tests.live_server import ServerProcess, running_server
from tests.test_live_ws import hello, next_message, participant_ws


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


# 10. 500s and a crashed socket from bad input.

DEEP = "[" * 5000 + "]" * 5000


def test_bad_input_gets_a_4xx_on_every_json_route_before_and_after_login(
    client: TestClient,
) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    member = join(client, red["join_code"])
    inject = push(client, exercise)
    answer = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
    raw_surrogate = b'{"username": "alice", "password": "\xed\xa0\x80"}'
    cases = [
        ("/api/auth/login", {}, raw_surrogate, 400, "invalid_encoding"),
        ("/api/auth/login", {}, DEEP.encode(), 422, "too_deep"),
        ("/api/join", {}, ('{"code": ' + DEEP + "}").encode(), 422, "too_deep"),
        ("/api/join", {}, b'{"code": "\xff\xfe", "name": "x"}', 400, "invalid_encoding"),
        (answer, member["headers"], b'{"value": "\xed\xbf\xbf", "base_version": 0}', 400, ""),
        (answer, member["headers"], b'{"value": "a\xef\xbf\xbe", "base_version": 0}', 422, ""),
        (answer, member["headers"], ('{"value": ' + DEEP + "}").encode(), 422, "too_deep"),
    ]
    for path, headers, body, status, code in cases:
        send = client.put if path == answer else client.post
        response = send(path, content=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == status, (path, body[:40], response.text)
        assert response.json()["detail"]
        if code:
            assert response.json()["code"] == code
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=member["headers"]).json()
    assert [c for c in cells if c["field"] == "overview" and c["value"]] == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (DEEP, "too_deep"),
        ('{"type": "edit", "value": ' + DEEP + "}", "too_deep"),
        ('{"type": "edit", "value": "\\uffff"}', "invalid_character"),
    ],
)
def test_bad_input_on_a_socket_gets_an_error_and_keeps_it(
    client: TestClient, raw: str, code: str
) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    member = join(client, red["join_code"])
    inject = push(client, exercise)
    with participant_ws(client, member) as ws:
        hello(ws)
        ws.send_text(raw)
        error = next_message(ws)
        assert (error["type"], error["code"]) == ("error", code)
        ws.send_json(
            {
                "type": "edit",
                "inject_id": inject["id"],
                "field": "overview",
                "value": "ok",
                "base_version": 0,
                "client_ref": "after",
            }
        )
        assert {next_message(ws)["type"], next_message(ws)["type"]} == {"ack", "response"}


# 11. Logout from another site.


def test_logout_from_another_site_is_refused(client: TestClient) -> None:
    assert client.post(
        "/api/auth/login", json={"username": "alice", "password": FACILITATOR_PASSWORD}
    ).is_success
    refused = client.post("/api/auth/logout", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "bad_origin"
    assert client.get("/api/exercises").status_code == 200  # still signed in
    assert (
        client.post("/api/auth/logout", headers={"Origin": "http://testserver"}).status_code == 204
    )
    assert client.get("/api/exercises").status_code == 401
