"""Counting failed attempts per client, so guessing is slow while honest users are never throttled."""

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from app.errors import TooManyRequests


class FailureLimiter:
    """Refuses a key once it has failed `limit` times within `window_s` seconds; successes are free."""

    def __init__(self, *, limit: int, window_s: float, what: str) -> None:
        self.limit = limit
        self.window_s = window_s
        self.what = what
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Raise 429 if `key` is locked out."""
        with self._lock:
            failures = self._prune(key, time.monotonic())
            if len(failures) < self.limit:
                return
            retry_after = int(failures[0] + self.window_s - time.monotonic()) + 1
        raise TooManyRequests(
            f"Too many failed {self.what} attempts from this client; try again in {retry_after} s.",
            retry_after_s=retry_after,
        )

    def fail(self, key: str) -> None:
        """Count one failed attempt for `key`."""
        with self._lock:
            now = time.monotonic()
            self._prune(key, now).append(now)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()

    def _prune(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
            failures = self._failures[key]
        return failures


class EditRateLimiter:
    """A token bucket per writer: bursts and the fastest typist pass, a flood is refused."""

    def __init__(
        self, *, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token for `key`, or raise 429 when its bucket is empty."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise TooManyRequests(
                    f"More than {self.rate_per_s:g} edits per second; slow down a little.",
                    code="edit_rate_limited",
                )
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:
                self._forget_full_buckets(now)

    def _forget_full_buckets(self, now: float) -> None:
        # A bucket that has refilled completely carries no information; drop it to bound memory.
        horizon = self.burst / self.rate_per_s
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < horizon}
