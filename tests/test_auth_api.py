"""Login, logout, join and their rate limits over the public API."""

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import bearer, expire_login, join, login, make_exercise


def test_login_returns_token_and_httponly_cookie(client: TestClient) -> None:
    response = client.post(
        "/api/auth/login", json={"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "alice"
    assert body["token"].startswith("f_")
    cookie = response.headers["set-cookie"]
    assert "tabletop_session=" in cookie
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain http on a laptop
    # The cookie alone authenticates a facilitator.
    assert client.get("/api/exercises").status_code == 200


def test_wrong_password_is_401_with_sentence(client: TestClient) -> None:
    response = client.post("/api/auth/login", json={"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Wrong username or password.", "code": "bad_credentials"}
    unknown = client.post("/api/auth/login", json={"username": "mallory", "password": "x"})
    assert unknown.status_code == 401


def test_login_body_errors_are_422_sentences(client: TestClient) -> None:
    response = client.post("/api/auth/login", json={"username": "alice"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert "password" in body["detail"]


def test_logout_revokes_token(client: TestClient) -> None:
    headers = login(client)
    assert client.get("/api/exercises", headers=headers).status_code == 200
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    response = client.get("/api/exercises", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_requests_without_credentials_are_401(client: TestClient) -> None:
    for path in ("/api/exercises", "/api/scenarios"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json()["detail"]
    assert client.get("/api/exercises", headers=bearer("f_forged")).status_code == 401


def test_repeated_login_failures_are_rate_limited(client: TestClient) -> None:
    limit = client.app.state.settings.failed_login_limit  # type: ignore[attr-defined]
    for _ in range(limit):
        response = client.post("/api/auth/login", json={"username": "alice", "password": "bad"})
        assert response.status_code == 401
    blocked = client.post("/api/auth/login", json={"username": "alice", "password": "bad"})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    assert "try again" in blocked.json()["detail"]


def test_successful_logins_are_never_throttled(client: TestClient) -> None:
    limit = client.app.state.settings.failed_login_limit  # type: ignore[attr-defined]
    for _ in range(limit * 3):
        login(client, "bob")


def test_join_returns_contract_body_and_participant_cookie(client: TestClient) -> None:
    exercise = make_exercise(client)
    team = exercise.team(0)
    response = client.post("/api/join", json={"code": team["join_code"], "name": "Hanako"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "participant_id", "team", "exercise"}
    assert body["team"] == {"id": team["id"], "name": "Red"}
    assert body["exercise"] == {"id": exercise.id, "title": "Drill", "status": "running"}
    assert "tabletop_participant=" in response.headers["set-cookie"]
    # The participant cookie is distinct from the facilitator's and works on its own.
    assert client.get(f"/api/teams/{team['id']}/injects").status_code == 200
    assert client.get("/api/exercises").status_code == 403


def test_join_code_is_case_and_space_insensitive(client: TestClient) -> None:
    code = make_exercise(client).team(1)["join_code"]
    typed = f" {code[:4].lower()}-{code[4:]} "
    assert join(client, typed)["team"]["name"] == "Blue"


def test_join_errors(client: TestClient) -> None:
    exercise = make_exercise(client)
    code = exercise.team(0)["join_code"]
    unknown = client.post("/api/join", json={"code": "ZZZZZZZZ", "name": "Ken"})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_code"
    for name in ("", "   ", "x" * 81):
        response = client.post("/api/join", json={"code": code, "name": name})
        assert response.status_code == 422, name
        assert "name" in response.json()["detail"]
    client.post(f"/api/exercises/{exercise.id}/end", headers=exercise.headers)
    ended = client.post("/api/join", json={"code": code, "name": "Late"})
    assert ended.status_code == 409
    assert ended.json()["code"] == "exercise_ended"


def test_failed_joins_are_rate_limited_but_a_room_of_valid_joins_is_not(client: TestClient) -> None:
    exercise = make_exercise(client, teams=tuple(f"T{i}" for i in range(10)))
    # A whole meeting room behind one NAT address joins with valid codes.
    for i in range(300):
        join(client, exercise.team(i % 10)["join_code"], name=f"P{i}")
    limit = client.app.state.settings.failed_join_limit  # type: ignore[attr-defined]
    for _ in range(limit):
        assert client.post("/api/join", json={"code": "AAAAAAAA", "name": "x"}).status_code == 404
    blocked = client.post("/api/join", json={"code": "AAAAAAAA", "name": "x"})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"


def test_participant_cannot_use_facilitator_endpoints(client: TestClient) -> None:
    exercise = make_exercise(client)
    participant = join(client, exercise.team(0)["join_code"])
    response = client.get("/api/exercises", headers=participant["headers"])
    assert response.status_code == 403
    assert response.json()["code"] == "facilitator_only"
    assert client.get("/api/scenarios", headers=participant["headers"]).status_code == 403


def test_cookie_writes_from_a_foreign_origin_are_refused(client: TestClient) -> None:
    client.post("/api/auth/login", json={"username": "alice", "password": "correct horse battery"})
    body = {"title": "x", "teams": ["A"]}
    evil = client.post("/api/exercises", json=body, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert evil.json()["code"] == "bad_origin"
    same = client.post("/api/exercises", json=body, headers={"Origin": "http://testserver"})
    assert same.status_code == 201


def test_exercise_endpoints_answer_only_the_owner_with_a_live_credential(
    client: TestClient,
) -> None:
    """The owner's token and the exercise are found in one query; each refusal keeps its code."""
    exercise = make_exercise(client)
    path = f"/api/exercises/{exercise.id}/injects"
    body = {"title": "Ransom note", "body": "Pay within 48 hours."}
    assert client.post(path, json=body, headers=exercise.headers).status_code == 201

    def refused(response: Any) -> tuple[int, str]:
        return response.status_code, response.json()["code"]

    participant = join(client, exercise.team(0)["join_code"])
    assert refused(client.post(path, json=body)) == (401, "unauthenticated")
    assert refused(client.post(path, json=body, headers=bearer("f_forged"))) == (
        401,
        "unauthenticated",
    )
    assert refused(client.post(path, json=body, headers=participant["headers"])) == (
        403,
        "facilitator_only",
    )
    not_found = (404, "exercise_not_found")
    assert refused(client.post(path, json=body, headers=login(client, "bob"))) == not_found
    other = "/api/exercises/nosuchexercise1/injects"
    assert refused(client.post(other, json=body, headers=exercise.headers)) == not_found

    # A session cookie works from the app's own pages only.
    client.post("/api/auth/login", json={"username": "alice", "password": "correct horse battery"})
    evil = client.post(path, json=body, headers={"Origin": "https://evil.example"})
    assert refused(evil) == (403, "bad_origin")
    assert client.post(path, json=body, headers={"Origin": "http://testserver"}).status_code == 201
    client.cookies.clear()

    # An expired token and a logged-out one are refused like no token at all.
    expiring = login(client)
    expire_login(client, expiring)
    assert refused(client.post(path, json=body, headers=expiring)) == (401, "unauthenticated")
    assert client.post("/api/auth/logout", headers=exercise.headers).status_code == 204
    assert refused(client.post(path, json=body, headers=exercise.headers)) == (
        401,
        "unauthenticated",
    )
