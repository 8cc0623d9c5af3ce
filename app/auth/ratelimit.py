"""Counting failed attempts per client, so guessing is slow while honest users are never throttled."""

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from app.errors import TooManyRequests


class FailureLimiter:
    """Refuses a key once it has failed `limit` times within `window_s` seconds; successes are free.

    Without `lockout_s` the refusal lasts until the oldest failure leaves the window. With it, the
    key is locked for `lockout_s` from the failure that reached the limit: attempts while locked
    are refused without being counted, so they never extend the lock, and when it ends the key
    starts afresh. A room behind one NAT address is therefore never locked for longer than
    `lockout_s` after its last counted failure, however often it retries meanwhile.
    """

    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        what: str,
        lockout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.what = what
        self.lockout_s = lockout_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Raise 429 if `key` is locked out."""
        with self._lock:
            wait_s = self._refused_for(key, self._clock())
        if wait_s is None:
            return
        retry_after = int(wait_s) + 1
        raise TooManyRequests(
            f"Too many failed {self.what} attempts from this client; try again in {retry_after} s.",
            retry_after_s=retry_after,
        )

    def fail(self, key: str) -> None:
        """Count one failed attempt for `key`."""
        with self._lock:
            now = self._clock()
            failures = self._recent(key, now)
            failures.append(now)
            self._failures[key] = failures
            if self.lockout_s is not None and len(failures) >= self.limit:
                # The lock replaces the count: when it ends, the key starts with a clean slate.
                self._locked_until[key] = now + self.lockout_s
                del self._failures[key]
            if len(self._failures) + len(self._locked_until) > 100_000:
                self._forget_expired(now)

    def refused_for(self, key: str) -> float | None:
        """Seconds `key` stays refused, or None if it may try now."""
        with self._lock:
            return self._refused_for(key, self._clock())

    def failed_recently(self, key: str) -> float | None:
        """Seconds until `key`'s failures (or its lock) are forgotten, or None if it has none."""
        with self._lock:
            now = self._clock()
            if (until := self._locked_until.get(key, 0.0)) > now:
                return until - now
            failures = self._recent(key, now)
            return failures[-1] + self.window_s - now if failures else None

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._locked_until.clear()

    def _refused_for(self, key: str, now: float) -> float | None:
        """Seconds `key` stays refused, or None if it may try now."""
        if (until := self._locked_until.get(key)) is not None:
            if now < until:
                return until - now
            del self._locked_until[key]
        failures = self._recent(key, now)
        if len(failures) < self.limit:
            return None
        return failures[0] + self.window_s - now

    def _recent(self, key: str, now: float) -> deque[float]:
        """The failures of `key` still inside the window (a keyless deque when there are none)."""
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _forget_expired(self, now: float) -> None:
        # Keys that never come back would otherwise pile up; a forgotten key has nothing to forget.
        self._locked_until = {k: v for k, v in self._locked_until.items() if v > now}
        self._failures = {
            k: v for k, v in self._failures.items() if v and v[-1] > now - self.window_s
        }


CODE_NAMESPACE = "join-codes"


class JoinGuard:
    """Failed join codes: a lock-out per client, and a server-wide budget against many addresses.

    A guesser spread over many addresses stays under every per-client limit, so failures are
    also counted for the whole code namespace (a wrong code names no team to count against).
    Once that budget is spent, any client that failed recently is refused until its failures
    are forgotten, while clients without a recent failure (a meeting room joining with the
    codes on the projector) join as usual: each guessing address gets one guess per window.
    """

    def __init__(self, *, per_client: FailureLimiter, overall: FailureLimiter) -> None:
        self.per_client = per_client
        self.overall = overall

    def check(self, client: str) -> None:
        """Raise 429 if this client may not try a code now."""
        self.per_client.check(client)
        own_wait = self.per_client.failed_recently(client)
        overall_wait = self.overall.refused_for(CODE_NAMESPACE)
        if own_wait is None or overall_wait is None:
            return
        # Whichever comes first lets this client in again: its own failures are forgotten, or
        # the oldest failure in the server-wide budget leaves the window.
        retry_after = int(min(own_wait, overall_wait)) + 1
        raise TooManyRequests(
            "Many wrong join codes are being tried on this server and this client tried one "
            f"recently; check the code on the projector and try again in {retry_after} s.",
            retry_after_s=retry_after,
        )

    def fail(self, client: str) -> None:
        """Count one wrong code from this client."""
        self.per_client.fail(client)
        self.overall.fail(CODE_NAMESPACE)

    def reset(self) -> None:
        self.per_client.reset()
        self.overall.reset()


@dataclass(kw_only=True, eq=False)
class _TokenBucket:
    """The shape every token bucket here shares: a rate, a burst and a clock."""

    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic

    def _refill(self, tokens: float, elapsed_s: float) -> float:
        """A bucket's content after `elapsed_s`: refilled at the rate, never above the burst."""
        return min(float(self.burst), tokens + elapsed_s * self.rate_per_s)


@dataclass(kw_only=True, eq=False)
class EditRateLimiter(_TokenBucket):
    """A token bucket per writer: bursts and the fastest typist pass, a flood is refused."""

    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def take(self, key: str) -> None:
        """Spend one token for `key`, or raise 429 when its bucket is empty."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = self._refill(tokens, now - last)
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


@dataclass(kw_only=True, eq=False)
class MessageBudget(_TokenBucket):
    """A token bucket for one socket's incoming messages: how long to wait before the next."""

    _tokens: float = field(init=False)
    _last: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._last = self.clock()

    def take(self) -> float:
        """Spend one token; the seconds to wait first if there was none (0.0 if there was)."""
        now = self.clock()
        self._tokens = self._refill(self._tokens, now - self._last)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s
