"""Short ways to reach a state through the public API, as a real client would."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

from app.auth.models import LoginToken
from app.auth.service import hash_token
from app.db import utcnow
from tests.conftest import FACILITATOR_PASSWORD


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expire_login(client: TestClient, headers: dict[str, str]) -> None:
    """The login behind these bearer headers expires, unknown to the server's process (as an
    expiry or a logout through another server process would be). No API ages a login, so this
    one writes the database."""
    token = headers["Authorization"].removeprefix("Bearer ")
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.execute(
            update(LoginToken)
            .where(col(LoginToken.token_hash) == hash_token(token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()


def login(client: TestClient, username: str = "alice") -> dict[str, str]:
    """Log in and return bearer headers; the cookie jar is cleared so identities never mix."""
    response = client.post(
        "/api/auth/login", json={"username": username, "password": FACILITATOR_PASSWORD}
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return bearer(response.json()["token"])


@dataclass
class Exercise:
    id: str
    headers: dict[str, str]
    teams: list[dict[str, Any]]

    def team(self, index: int) -> dict[str, Any]:
        return self.teams[index]


def make_exercise(
    client: TestClient,
    *,
    teams: tuple[str, ...] = ("Red", "Blue"),
    start: bool = True,
    headers: dict[str, str] | None = None,
    locale: str = "ja",
) -> Exercise:
    headers = headers or login(client)
    response = client.post(
        "/api/exercises",
        json={"title": "Drill", "teams": list(teams), "locale": locale},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    if start:
        assert client.post(f"/api/exercises/{body['id']}/start", headers=headers).status_code == 200
    return Exercise(id=body["id"], headers=headers, teams=body["teams"])


def join(client: TestClient, code: str, name: str = "Hanako") -> dict[str, Any]:
    response = client.post("/api/join", json={"code": code, "name": name})
    assert response.status_code == 201, response.text
    client.cookies.clear()
    body: dict[str, Any] = response.json()
    body["headers"] = bearer(body["token"])
    return body


def push(client: TestClient, exercise: Exercise, **body: Any) -> dict[str, Any]:
    body.setdefault("scenario_id", "jnsa-2018-01")
    response = client.post(
        f"/api/exercises/{exercise.id}/injects", json=body, headers=exercise.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
