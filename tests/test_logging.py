"""Logs: JSON lines with the request facts, and never a token or a password in them."""

import io
import json
import logging
import secrets
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from app import cli
from app.config import get_settings
from app.logs import REDACTED, JsonLines, RedactSecrets, redact
from tests.live_server import ADMIN_PASSWORD, running_server

FACILITATOR_TOKEN = "f_" + secrets.token_urlsafe(32)
PARTICIPANT_TOKEN = "p_" + secrets.token_urlsafe(32)


def _capturing_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonLines())
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, buffer


def test_redact_replaces_tokens_and_passwords_and_keeps_the_rest() -> None:
    cases = {
        f"Authorization: Bearer {FACILITATOR_TOKEN}": f"Authorization: Bearer {REDACTED}",
        f"cookie tabletop_participant={PARTICIPANT_TOKEN}; x=1": (
            f"cookie tabletop_participant={REDACTED}; x=1"
        ),
        "POST body password=hunter2-secret&username=alice": (
            f"POST body password={REDACTED}&username=alice"
        ),
        '{"username": "alice", "password": "correct horse battery"}': (
            f'{{"username": "alice", "password": {REDACTED}}}'
        ),
        "TABLETOP_ADMIN_PASSWORD=from-the-env-123": f"TABLETOP_ADMIN_PASSWORD={REDACTED}",
        "postgresql+psycopg://tabletop:db-secret@db:5432/tabletop": (
            f"postgresql+psycopg://tabletop:{REDACTED}@db:5432/tabletop"
        ),
        "redis://:broker-secret@redis:6379/0": f"redis://:{REDACTED}@redis:6379/0",
    }
    for raw, expected in cases.items():
        assert redact(raw) == expected, raw
    for ordinary in (
        "Loaded 10 scenarios from scenarios/",
        "GET /api/exercises/abc_def/teams 200 3.1 ms",
        "follow-up f_up-3 not delivered: the exercise ended",
        "Too many failed login attempts from this client; try again in 12 s.",
        "redis://redis:6379/0",
    ):
        assert redact(ordinary) == ordinary


def test_the_filter_redacts_messages_arguments_fields_and_tracebacks() -> None:
    logger, buffer = _capturing_logger("tests.redaction")
    logger.info("joined with %s", PARTICIPANT_TOKEN)
    logger.warning("login as alice with password=%s failed", "hunter2-secret")
    logger.info("request", extra={"method": "GET", "path": f"/x/{FACILITATOR_TOKEN}"})
    try:
        raise ValueError(f"could not use token {FACILITATOR_TOKEN}")
    except ValueError:
        logger.exception("failed with password: hunter2-secret")
    output = buffer.getvalue()
    for secret in (PARTICIPANT_TOKEN, FACILITATOR_TOKEN, "hunter2-secret"):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["message"] for line in lines] == [
        f"joined with {REDACTED}",
        f"login as alice with password={REDACTED} failed",
        "request",
        f"failed with password: {REDACTED}",
    ]
    assert lines[2]["path"] == f"/x/{REDACTED}"
    assert "ValueError: could not use token [redacted]" in lines[3]["exception"]
    assert lines[3]["level"] == "ERROR"
    assert lines[3]["logger"] == "tests.redaction"


def test_a_served_session_logs_json_lines_without_any_secret(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    wrong_password = "not-the-admin-password-42"
    with (
        running_server(
            database_url=f"sqlite:///{tmp_path / 'logs.db'}",
            log=log,
            extra_env={"TABLETOP_LOG_FORMAT": "json"},
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        failed = http.post(
            "/api/auth/login", json={"username": "admin", "password": wrong_password}
        )
        assert failed.status_code == 401
        login = http.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        facilitator_token = login.json()["token"]
        headers = {"Authorization": f"Bearer {facilitator_token}"}
        exercise = http.post(
            "/api/exercises", json={"title": "Logged drill", "teams": ["Red"]}, headers=headers
        ).json()
        assert http.post(f"/api/exercises/{exercise['id']}/start", headers=headers).is_success
        joined = http.post(
            "/api/join", json={"code": exercise["teams"][0]["join_code"], "name": "Hanako"}
        )
        assert joined.status_code == 201
        participant_token = joined.json()["token"]
        # Secrets where a careless client puts them: a query string and a path.
        http.get(f"/api/exercises?token={facilitator_token}&password={ADMIN_PASSWORD}")
        assert http.get(f"/api/{participant_token}").status_code == 404
        ws_url = server.base_url.replace("http://", "ws://") + "/ws/participant"
        with connect(
            ws_url,
            additional_headers={"Authorization": f"Bearer {participant_token}"},
            open_timeout=10,
        ) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        http.post("/api/auth/logout", headers=headers)
    text = log.read_text()
    for secret in (ADMIN_PASSWORD, wrong_password, facilitator_token, participant_token):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    access = [line for line in lines if line["logger"] == "tabletop.access"]
    for line in access:
        assert {"method", "path", "status", "duration_ms", "client"} <= line.keys(), line
        assert "?" not in line["path"] and "?" not in line["message"]
        assert line["client"] == "127.0.0.1"
    seen = {(line["method"], line["path"], line["status"]) for line in access}
    assert {
        ("POST", "/api/auth/login", 401),
        ("POST", "/api/auth/login", 200),
        ("POST", "/api/join", 201),
        ("GET", "/api/exercises", 200),
        ("GET", f"/api/{REDACTED}", 404),
        ("WS", "/ws/participant", 101),
        ("POST", "/api/auth/logout", 204),
    } <= seen
    assert any(line["message"].startswith("Serving on http://") for line in lines)


def test_with_json_logs_the_first_start_password_never_reaches_standard_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TABLETOP_DATABASE_URL", f"sqlite:///{tmp_path / 'first.db'}")
    monkeypatch.delenv("TABLETOP_ADMIN_PASSWORD", raising=False)
    get_settings.cache_clear()
    try:
        cli._prepare(json_logs=True)
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "created facilitator 'admin' with password" in captured.err
