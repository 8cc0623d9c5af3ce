"""The workbook built in the worker process is the same workbook, over the real API."""

import io
import os
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session

from app.auth.models import Facilitator
from app.config import Settings
from app.export.worker import WORKER_NICENESS, ExportWorker
from app.main import create_app
from app.scenarios.loader import ScenarioLibrary
from tests.factories import join, make_exercise, push


def test_the_worker_process_builds_the_workbook(
    settings: Settings, scenario_library: ScenarioLibrary, password_hash: str
) -> None:
    app = create_app(
        settings.model_copy(update={"export_worker": True}), scenarios=scenario_library
    )
    with Session(app.state.engine) as session:
        session.add(Facilitator(username="alice", password_hash=password_hash))
        session.commit()
    with TestClient(app) as client:
        exercise = make_exercise(client)
        red = exercise.team(0)
        member = join(client, red["join_code"], "Hanako")
        inject = push(client, exercise)
        url = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
        client.put(
            url, json={"value": "=1+1 顧客情報", "base_version": 0}, headers=member["headers"]
        )
        exports: ExportWorker = app.state.exports
        assert exports.separate_process
        response = client.get(f"/api/exercises/{exercise.id}/export.xlsx", headers=exercise.headers)
        assert response.status_code == 200
        pool = exports._pool
        assert pool is not None
        worker_pids = {process.pid for process in pool._processes.values()}
        assert worker_pids and os.getpid() not in worker_pids
        # It runs below the server's priority, so live delivery gets the CPU first.
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        for pid in worker_pids:
            assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + WORKER_NICENESS)
        book = load_workbook(io.BytesIO(response.content))
        team_sheet = book[red["name"]]
        assert team_sheet.cell(row=3, column=5).value == "=1+1 顧客情報"
        # The worker reads the database itself: a later answer is in the next export.
        client.put(url, json={"value": "second", "base_version": 1}, headers=member["headers"])
        again = client.get(f"/api/exercises/{exercise.id}/export.xlsx", headers=exercise.headers)
        assert load_workbook(io.BytesIO(again.content))[red["name"]]["E3"].value == "second"
    # Stopping the app stops the worker and waits for it: no process outlives the server.
    assert exports._pool is None
    for pid in worker_pids:
        assert not _alive(pid)
    app.state.engine.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone but for its exit status.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


WORKER_OWNER = """
import os, sys
from app.db import migrate
from app.export.worker import ExportWorker
url = sys.argv[1]
migrate(url)
worker = ExportWorker(database_url=url, separate_process=True)
try:
    worker.workbook(exercise_id="no-such-exercise")
except Exception:
    pass
print(next(iter(worker._pool._processes)), flush=True)
os._exit(0)  # as kill -9 would: no shutdown of the pool
"""


def test_the_worker_leaves_when_the_server_dies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'owner.db'}"
    done = subprocess.run(
        [sys.executable, "-c", WORKER_OWNER, url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)
