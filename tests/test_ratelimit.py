"""Rate limits: generous to honest users, firm with floods and guessers."""

import pytest
from fastapi.testclient import TestClient

from app.auth.ratelimit import EditRateLimiter, FailureLimiter
from app.errors import TooManyRequests
from tests.factories import join, make_exercise, push


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_edits_per_second_sustained_are_never_refused() -> None:
    clock = FakeClock()
    limiter = EditRateLimiter(rate_per_s=20, burst=60, clock=clock)
    for _ in range(10 * 600):  # ten minutes of a very fast typist
        limiter.take("p1")
        clock.now += 0.1


def test_a_flood_is_refused_and_recovers() -> None:
    clock = FakeClock()
    limiter = EditRateLimiter(rate_per_s=20, burst=60, clock=clock)
    for _ in range(60):
        limiter.take("flooder")
    with pytest.raises(TooManyRequests, match="edits per second"):
        limiter.take("flooder")
    limiter.take("someone else")  # one flooder never costs another writer anything
    clock.now += 1.0
    for _ in range(20):
        limiter.take("flooder")


def test_failure_limiter_counts_only_failures_in_the_window() -> None:
    limiter = FailureLimiter(limit=3, window_s=60, what="join")
    for _ in range(3):
        limiter.check("ip:1")
        limiter.fail("ip:1")
    with pytest.raises(TooManyRequests, match="join"):
        limiter.check("ip:1")
    limiter.check("ip:2")


def test_flooding_writes_get_429_and_lose_nothing_accepted(client: TestClient) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    member = join(client, red["join_code"])
    inject = push(client, exercise)
    # A small budget, so the flood outruns the refill however slow the machine is.
    client.app.state.edit_limiter = EditRateLimiter(rate_per_s=2, burst=10)  # type: ignore[attr-defined]
    url = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
    version = 0
    statuses = []
    for i in range(60):
        response = client.put(
            url, json={"value": f"v{i}", "base_version": version}, headers=member["headers"]
        )
        statuses.append(response.status_code)
        if response.status_code == 200:
            version = response.json()["version"]
            last_accepted = f"v{i}"
        else:
            assert response.status_code == 429
            assert response.json()["code"] == "edit_rate_limited"
    assert 429 in statuses
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=member["headers"]).json()
    assert cells[0]["value"] == last_accepted
    assert cells[0]["version"] == version
