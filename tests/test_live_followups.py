"""Automatic follow-ups: delivered after `after_s` of running time, pause-aware, never twice."""

from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.exercises.models import Exercise, Inject
from app.live.scheduler import FollowupScheduler
from tests.factories import join, make_exercise, push
from tests.test_live_ws import hello, next_message, participant_ws

SCENARIO = "jnsa-2018-01"  # follow-ups after 900 s and 1800 s


class Clock:
    """A settable clock for the scheduler."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _parent(app: FastAPI, inject_id: str) -> Inject:
    with Session(app.state.engine) as session:
        inject = session.get(Inject, inject_id)
        assert inject is not None
        return inject


def _followups(app: FastAPI, exercise_id: str) -> list[tuple[str | None, list[str]]]:
    from app.exercises.models import InjectTarget

    with Session(app.state.engine) as session:
        rows = session.exec(
            select(Inject)
            .where(Inject.exercise_id == exercise_id, col(Inject.followup_id).is_not(None))
            .order_by(col(Inject.position))
        ).all()
        return [
            (
                row.followup_id,
                sorted(
                    session.exec(
                        select(InjectTarget.team_id).where(InjectTarget.inject_id == row.id)
                    ).all()
                ),
            )
            for row in rows
        ]


def _pause_for(app: FastAPI, exercise_id: str, seconds: float) -> None:
    # Stands for a pause of that length (pause + resume through the API take no real time here).
    with Session(app.state.engine) as session:
        exercise = session.get(Exercise, exercise_id)
        assert exercise is not None
        exercise.paused_s += seconds
        session.add(exercise)
        session.commit()


def _scheduler(app: FastAPI, clock: Clock) -> FollowupScheduler:
    # A scheduler of its own: the app's background one keeps the real clock, so nothing is due there.
    return FollowupScheduler(
        library=app.state.scenarios, session_factory=app.state.hub.session, clock=clock
    )


def test_followups_arrive_after_running_time_leaving_pauses_out(
    client: TestClient, app: FastAPI
) -> None:
    exercise = make_exercise(client, teams=("Red", "Blue", "Green"))
    chosen = [exercise.team(0)["id"], exercise.team(1)["id"]]
    parent = push(client, exercise, scenario_id=SCENARIO, auto_followups=True, team_ids=chosen)
    delivered_at = _parent(app, parent["id"]).delivered_at
    clock = Clock(delivered_at + timedelta(seconds=899))
    scheduler = _scheduler(app, clock)
    assert scheduler.run_once() == 0
    # Ten minutes of pause: 901 s on the wall clock is only 301 s of running time.
    _pause_for(app, exercise.id, 600)
    clock.now = delivered_at + timedelta(seconds=901)
    assert scheduler.run_once() == 0
    clock.now = delivered_at + timedelta(seconds=1501)
    assert scheduler.run_once() == 1
    assert _followups(app, exercise.id) == [("jnsa-2018-01-f1", sorted(chosen))]
    # Never twice, whatever the clock says, and the second follows at its own time.
    assert scheduler.run_once() == 0
    clock.now = delivered_at + timedelta(seconds=2401)
    assert scheduler.run_once() == 1
    assert scheduler.run_once() == 0
    assert [f for f, _teams in _followups(app, exercise.id)] == [
        "jnsa-2018-01-f1",
        "jnsa-2018-01-f2",
    ]


def test_no_followup_while_paused_or_for_a_plain_inject(client: TestClient, app: FastAPI) -> None:
    exercise = make_exercise(client)
    auto = push(client, exercise, scenario_id=SCENARIO, auto_followups=True)
    push(client, exercise, scenario_id="jnsa-2018-02")
    clock = Clock(_parent(app, auto["id"]).delivered_at + timedelta(hours=3))
    scheduler = _scheduler(app, clock)
    client.post(f"/api/exercises/{exercise.id}/pause", headers=exercise.headers)
    assert scheduler.run_once() == 0
    client.post(f"/api/exercises/{exercise.id}/resume", headers=exercise.headers)
    assert scheduler.run_once() == 2
    assert {f for f, _teams in _followups(app, exercise.id)} == {
        "jnsa-2018-01-f1",
        "jnsa-2018-01-f2",
    }


def test_a_followup_delivered_by_hand_is_not_sent_again(client: TestClient, app: FastAPI) -> None:
    exercise = make_exercise(client)
    auto = push(client, exercise, scenario_id=SCENARIO, auto_followups=True)
    push(client, exercise, scenario_id=SCENARIO, followup_id="jnsa-2018-01-f1")
    clock = Clock(_parent(app, auto["id"]).delivered_at + timedelta(seconds=1000))
    assert _scheduler(app, clock).run_once() == 0


def test_the_background_task_pushes_the_followup_to_sockets(app: FastAPI) -> None:
    scheduler: FollowupScheduler = app.state.followups
    scheduler.interval_s = 0.05
    with TestClient(app) as client:
        exercise = make_exercise(client)
        member = join(client, exercise.team(0)["join_code"])
        with participant_ws(client, member) as ws:
            hello(ws)
            parent = push(client, exercise, scenario_id=SCENARIO, auto_followups=True)
            assert next_message(ws)["inject"]["id"] == parent["id"]
            start = _parent(app, parent["id"]).delivered_at
            scheduler.clock = lambda: start + timedelta(seconds=900)
            message: dict[str, Any] = next_message(ws)
            assert message["type"] == "inject"
            assert message["inject"]["followup_id"] == "jnsa-2018-01-f1"
            assert sorted(message["inject"]["team_ids"]) == sorted(t["id"] for t in exercise.teams)
