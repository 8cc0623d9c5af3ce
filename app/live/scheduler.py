"""Automatic follow-ups: deliver a scenario's follow-ups `after_s` of running time after it."""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from app.db import utcnow
from app.errors import DomainError
from app.eventlog import service as events
from app.exercises import service as exercises
from app.exercises.models import Exercise, ExerciseStatus, Inject, InjectTarget
from app.exercises.schemas import InjectCreate
from app.scenarios.loader import ScenarioLibrary

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0


def running_seconds(*, exercise: Exercise, inject: Inject, now: datetime) -> float:
    """Running time since the inject's delivery: the pauses since then left out."""
    paused = exercise.paused_s - inject.paused_s_at_delivery
    if exercise.paused_since is not None:
        paused += (now - exercise.paused_since).total_seconds()
    return max(0.0, (now - inject.delivered_at).total_seconds() - paused)


def due_followups(
    session: Session, *, library: ScenarioLibrary, now: datetime
) -> list[tuple[str, str, str, list[str]]]:
    """(exercise id, scenario id, follow-up id, team ids) of every follow-up whose time has come."""
    parents = session.exec(
        select(Inject, Exercise)
        .join(Exercise, col(Exercise.id) == col(Inject.exercise_id))
        .where(Exercise.status == ExerciseStatus.running, col(Inject.auto_followups).is_(True))
        # A withdrawn inject's follow-ups that have not gone out yet never do.
        .where(col(Inject.withdrawn_at).is_(None))
    ).all()
    if not parents:
        return []
    exercise_ids = {exercise.id for _inject, exercise in parents}
    delivered = {
        (exercise_id, scenario_id, followup_id)
        for exercise_id, scenario_id, followup_id in session.exec(
            select(Inject.exercise_id, Inject.scenario_id, Inject.followup_id)
            .where(col(Inject.exercise_id).in_(exercise_ids))
            .where(col(Inject.followup_id).is_not(None))
        )
    }
    due: list[tuple[str, str, str, list[str]]] = []
    for inject, exercise in parents:
        scenario = library.get(inject.scenario_id or "")
        if scenario is None:
            continue
        elapsed = running_seconds(exercise=exercise, inject=inject, now=now)
        for followup in scenario.followups:
            key = (exercise.id, scenario.id, followup.id)
            if followup.after_s <= elapsed and key not in delivered:
                targets = session.exec(
                    select(InjectTarget.team_id).where(InjectTarget.inject_id == inject.id)
                ).all()
                delivered.add(key)
                if targets:  # every team it went to has since been deleted: nobody to tell
                    due.append((*key, list(targets)))
    return due


def deliver_followup(
    session: Session,
    *,
    library: ScenarioLibrary,
    exercise_id: str,
    scenario_id: str,
    followup_id: str,
    team_ids: list[str],
) -> bool:
    """Deliver one follow-up unless it already was (by this process or another); True if sent."""
    # Check and insert under the exercise's lock, so two processes cannot both deliver it.
    events.serialize_exercise(session, exercise_id=exercise_id)
    exists = session.exec(
        select(Inject.id).where(
            Inject.exercise_id == exercise_id,
            Inject.scenario_id == scenario_id,
            Inject.followup_id == followup_id,
        )
    ).first()
    exercise = session.get(Exercise, exercise_id)
    if exists is not None or exercise is None or exercise.status != ExerciseStatus.running:
        session.rollback()
        return False
    exercises.deliver_inject(
        session,
        exercise_id=exercise_id,
        data=InjectCreate(scenario_id=scenario_id, followup_id=followup_id, team_ids=team_ids),
        library=library,
    )
    return True


class FollowupScheduler:
    """A background task that checks about every second; the clock is injectable for tests."""

    def __init__(
        self,
        *,
        library: ScenarioLibrary,
        session_factory: Callable[..., Session],
        interval_s: float = CHECK_INTERVAL_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.library = library
        self.session_factory = session_factory
        self.interval_s = interval_s
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def run_once(self) -> int:
        """Deliver every due follow-up now; returns how many were delivered."""
        # The once-a-second check only reads; only a delivery takes the write lock.
        with self.session_factory(read_only=True) as session:
            due = due_followups(session, library=self.library, now=self.clock())
        sent = 0
        for exercise_id, scenario_id, followup_id, team_ids in due:
            with self.session_factory() as session:
                try:
                    sent += deliver_followup(
                        session,
                        library=self.library,
                        exercise_id=exercise_id,
                        scenario_id=scenario_id,
                        followup_id=followup_id,
                        team_ids=team_ids,
                    )
                except DomainError as exc:
                    # A team removed or the exercise paused meanwhile: try again next round.
                    log.info("follow-up %s not delivered: %s", followup_id, exc.detail)
        return sent

    async def _loop(self) -> None:
        while True:
            try:
                await run_in_threadpool(self.run_once)
            except Exception:
                log.exception("the follow-up check failed; retrying")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
