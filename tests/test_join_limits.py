"""Guessing join codes: a lock-out per address, a server-wide budget, and rooms that still join."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.ratelimit import FailureLimiter, JoinGuard
from app.config import Settings
from app.errors import TooManyRequests
from tests.factories import join, make_exercise

WRONG = {"code": "AAAAAAAA", "name": "Guesser"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _guard(clock: FakeClock, *, per_client: int = 3, overall: int = 10) -> JoinGuard:
    return JoinGuard(
        per_client=FailureLimiter(
            limit=per_client, window_s=60, lockout_s=300, what="join", clock=clock
        ),
        overall=FailureLimiter(limit=overall, window_s=60, what="join", clock=clock),
    )


def _refusal(guard: JoinGuard, client: str) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as refused:
        guard.check(client)
    return refused.value


def test_a_locked_client_stays_locked_after_the_window_until_the_lockout_ends() -> None:
    clock = FakeClock()
    guard = _guard(clock)
    for _ in range(3):
        guard.check("ip:a")
        guard.fail("ip:a")
    assert _refusal(guard, "ip:a").extra["retry_after_s"] == 301
    clock.now += 61  # the failures have left the window, the lock has not ended
    assert _refusal(guard, "ip:a").extra["retry_after_s"] == 240
    guard.check("ip:b")  # another address is not concerned
    # Retrying while locked neither counts nor extends the lock.
    for _ in range(50):
        clock.now += 4
        with pytest.raises(TooManyRequests):
            guard.check("ip:a")
    clock.now = 1000.0 + 300
    guard.check("ip:a")
    # After the lock the address starts afresh: the full budget, then a new lock.
    for _ in range(2):
        guard.fail("ip:a")
        guard.check("ip:a")
    guard.fail("ip:a")
    assert _refusal(guard, "ip:a").extra["retry_after_s"] == 301


def test_without_lockout_a_limiter_keeps_its_sliding_window() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(limit=2, window_s=60, what="login", clock=clock)
    limiter.fail("ip:a")
    clock.now += 30
    limiter.fail("ip:a")
    with pytest.raises(TooManyRequests):
        limiter.check("ip:a")
    clock.now += 30  # the first failure leaves the window: one more attempt is allowed
    limiter.check("ip:a")


def test_the_overall_budget_refuses_recent_failers_and_lets_fresh_clients_join() -> None:
    clock = FakeClock()
    guard = _guard(clock)
    # Ten addresses guess once each: every one stays far below its own limit.
    for i in range(10):
        guard.check(f"ip:10.0.0.{i}")
        guard.fail(f"ip:10.0.0.{i}")
        clock.now += 1
    refusal = _refusal(guard, "ip:10.0.0.3")
    assert "wrong join codes" in refusal.detail
    # Either its own failure or the oldest in the budget (from 10 s ago) ages out in 51 s.
    assert refusal.extra["retry_after_s"] == 51
    for i in range(300):  # a meeting room and newcomers, none of whom has failed
        guard.check(f"ip:192.0.2.{i}")
    # A new address gets its one guess, then waits like the others.
    guard.fail("ip:198.51.100.1")
    _refusal(guard, "ip:198.51.100.1")
    clock.now += 61
    guard.check("ip:10.0.0.3")
    guard.check("ip:198.51.100.1")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The suite's settings (tests/conftest.py), with a server-wide budget small enough to spend.
    return settings.model_copy(update={"failed_join_global_limit": 12})


def _from(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000))


def test_guessing_from_many_addresses_is_refused_while_a_room_behind_one_address_joins(
    client: TestClient, app: FastAPI
) -> None:
    exercise = make_exercise(client, teams=tuple(f"T{i}" for i in range(10)))
    guessers = [_from(app, f"203.0.113.{i}") for i in range(12)]
    for guesser in guessers:
        assert guesser.post("/api/join", json=WRONG).status_code == 404
    again = guessers[0].post("/api/join", json=WRONG)
    assert again.status_code == 429
    assert again.json()["code"] == "rate_limited"
    assert "wrong join codes" in again.json()["detail"]
    assert again.json()["retry_after_s"] > 0
    # Even with the right code: the address failed recently while the budget is spent.
    valid = {"code": exercise.team(0)["join_code"], "name": "Late guesser"}
    assert guessers[0].post("/api/join", json=valid).status_code == 429
    # A whole room behind one NAT address, none of whom mistyped, joins with valid codes.
    for i in range(300):
        join(client, exercise.team(i % 10)["join_code"], name=f"P{i}")


def test_an_address_that_hit_its_limit_is_locked_over_the_api(
    client: TestClient, app: FastAPI
) -> None:
    clock = FakeClock()
    settings = app.state.settings
    # The app's own limiter classes on a clock the test advances, with a lock-out (900 s)
    # longer than the window (600 s), so "past the window but still locked" can be seen.
    app.state.join_limiter = JoinGuard(
        per_client=FailureLimiter(
            limit=settings.failed_join_limit,
            window_s=settings.failure_window_s,
            lockout_s=900,
            what="join",
            clock=clock,
        ),
        overall=FailureLimiter(
            limit=settings.failed_join_global_limit,
            window_s=settings.failure_window_s,
            what="join",
            clock=clock,
        ),
    )
    right = {"code": make_exercise(client).team(0)["join_code"], "name": "Hanako"}
    guesser = _from(app, "198.51.100.9")
    for _ in range(settings.failed_join_limit):
        assert guesser.post("/api/join", json=WRONG).status_code == 404
    locked = guesser.post("/api/join", json=right)
    assert locked.status_code == 429
    assert locked.json()["code"] == "rate_limited"
    assert locked.json()["retry_after_s"] == 901
    assert "try again in 901 s" in locked.json()["detail"]
    assert _from(app, "198.51.100.10").post("/api/join", json=right).status_code == 201
    clock.now += settings.failure_window_s + 1
    still = guesser.post("/api/join", json=right)
    assert still.status_code == 429
    assert still.json()["retry_after_s"] == 900 - settings.failure_window_s
    clock.now += 900 - settings.failure_window_s
    assert guesser.post("/api/join", json=right).status_code == 201
