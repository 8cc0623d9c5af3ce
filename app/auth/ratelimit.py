"""Counting failed attempts per client, so guessing is slow while honest users are never throttled."""

import threading
import time
from collections import defaultdict, deque

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
