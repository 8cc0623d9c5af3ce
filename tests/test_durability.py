"""Nothing acknowledged is lost: SIGKILL mid-typing, and an online backup while writes go on."""

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from app.db import backup_database
from tests.live_server import ADMIN_PASSWORD, running_server

WRITERS = 4


def _wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the writers stopped making progress"
        time.sleep(0.01)


def _prepare_exercise(base_url: str) -> dict[str, Any]:
    with httpx.Client(base_url=base_url) as http:
        login = http.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        exercise = http.post(
            "/api/exercises", json={"title": "Crash drill", "teams": ["Red"]}, headers=headers
        ).json()
        http.post(f"/api/exercises/{exercise['id']}/start", headers=headers)
        inject = http.post(
            f"/api/exercises/{exercise['id']}/injects",
            json={"scenario_id": "jnsa-2018-03"},
            headers=headers,
        ).json()
        team = exercise["teams"][0]
        joined = http.post("/api/join", json={"code": team["join_code"], "name": "Typist"}).json()
    return {
        "team_id": team["id"],
        "inject_id": inject["id"],
        "facilitator": headers,
        "participant": {"Authorization": f"Bearer {joined['token']}"},
    }


def _type(
    base_url: str,
    setup: dict[str, Any],
    field: str,
    acked: list[tuple[int, str]],
    stop: threading.Event,
) -> None:
    """Keep writing one field as a participant would, recording every acknowledged version."""
    url = f"/api/teams/{setup['team_id']}/responses/{setup['inject_id']}/{field}"
    version = 0
    with httpx.Client(base_url=base_url, timeout=5) as http:
        while not stop.is_set():
            value = f"{field} draft {version + 1} " + "あ" * (version % 50)
            try:
                response = http.put(
                    url,
                    json={"value": value, "base_version": version},
                    headers=setup["participant"],
                )
            except httpx.HTTPError:
                return  # the server is gone; what was acknowledged so far is what must survive
            if response.status_code == 429:
                stop.wait(0.05)
                continue
            if response.status_code != 200:
                return
            version = response.json()["version"]
            acked.append((version, value))


def test_every_acknowledged_edit_survives_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    log = tmp_path / "server.log"
    fields = ["overview", "cause", "press", "legal"][:WRITERS]
    acked: dict[str, list[tuple[int, str]]] = {field: [] for field in fields}
    with running_server(database_url=url, log=log) as server:
        setup = _prepare_exercise(server.base_url)
        stop = threading.Event()
        threads = [
            threading.Thread(target=_type, args=(server.base_url, setup, f, acked[f], stop))
            for f in fields
        ]
        for thread in threads:
            thread.start()
        _wait_for(lambda: sum(len(a) for a in acked.values()) >= 200)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        port = server.port
    with (
        running_server(database_url=url, log=log, port=port) as restarted,
        httpx.Client(base_url=restarted.base_url) as http,
    ):
        cells = http.get(
            f"/api/teams/{setup['team_id']}/responses", headers=setup["participant"]
        ).json()
        by_field = {cell["field"]: cell for cell in cells}
        for field in fields:
            assert acked[field], field
            last_version = acked[field][-1][0]
            # A write may have committed without its answer reaching the client: never less.
            assert by_field[field]["version"] >= last_version
            history = http.get(
                f"/api/teams/{setup['team_id']}/responses/{setup['inject_id']}/{field}/revisions",
                headers=setup["facilitator"],
            ).json()
            stored = {(rev["version"], rev["value"]) for rev in history}
            assert set(acked[field]) <= stored
            assert [rev["version"] for rev in history] == list(range(1, len(history) + 1))


def test_backup_while_running_is_consistent_and_restores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    backup = tmp_path / "backup.db"
    log = tmp_path / "server.log"
    acked: list[tuple[int, str]] = []
    with running_server(database_url=url, log=log) as server:
        setup = _prepare_exercise(server.base_url)
        stop = threading.Event()
        writer = threading.Thread(
            target=_type, args=(server.base_url, setup, "overview", acked, stop)
        )
        writer.start()
        _wait_for(lambda: len(acked) >= 30)
        before_backup = list(acked)
        backup_database(url, backup)
        _wait_for(lambda: len(acked) >= len(before_backup) + 10)
        stop.set()
        writer.join(timeout=10)
    with sqlite3.connect(backup) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Restoring is pointing the server at the copy.
    with (
        running_server(database_url=f"sqlite:///{backup}", log=log) as restored,
        httpx.Client(base_url=restored.base_url) as http,
    ):
        history = http.get(
            f"/api/teams/{setup['team_id']}/responses/{setup['inject_id']}/overview/revisions",
            headers=setup["facilitator"],
        ).json()
    stored = {(rev["version"], rev["value"]) for rev in history}
    assert set(before_backup) <= stored
    assert len(history) < len(acked)  # the copy is a snapshot, not the live file
