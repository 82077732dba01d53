"""Per-key request rate limits on the inference server: a token bucket per API key.

A key may carry a rate (requests per second, with a burst of as many requests at once);
the inference server refuses a request over it with 429 and a ``Retry-After`` that says
when the next one will be let through, instead of letting one client's loop starve every
other deployment's clients of the same server.

Why a token bucket, kept in this process: it admits short bursts (a client that sends 20
requests at once after a pause is not punished) while holding the long-run rate, and each
check is two float operations on the event loop, with no lock (the loop is one thread) and no
trip to the database or the control plane: the auth issue's goal of serving at 0.95x the
throughput of auth off leaves no room for more. Each inference server process keeps its
own buckets, so with several servers behind a balancer a key's rate is per server; that is
said in the docs rather than hidden.

Buckets of keys not seen for a while are dropped (:data:`IDLE_S`), so the table stays as
small as the number of active keys.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiaas.errors import ResourceExhausted

__all__ = ["IDLE_S", "RateLimit", "RateLimiter"]

#: A bucket unused this long is full again anyway, and is forgotten.
IDLE_S = 300.0

#: Refills are sums of float products: a bucket exactly one token full may read 0.9999999.
_EPSILON = 1e-9


@dataclass(frozen=True)
class RateLimit:
    """A sustained rate and the burst admitted on top of it.

    Args:
        per_second: requests per second in the long run (> 0).
        burst: requests admitted at once after a pause (≥ 1); defaults to one second's worth.
    """

    per_second: float
    burst: int = 0

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)):
            raise ValueError(f"per_second must be a positive number; got {self.per_second!r}")
        if self.burst < 0:
            raise ValueError(f"burst must be >= 0; got {self.burst!r}")

    @property
    def capacity(self) -> float:
        return float(self.burst) if self.burst >= 1 else max(1.0, self.per_second)


class _Bucket:
    __slots__ = ("seen", "tokens")

    def __init__(self, tokens: float, seen: float) -> None:
        self.tokens = tokens
        self.seen = seen


class RateLimiter:
    """Token buckets, one per key id, all on one event loop.

    Args:
        clock: monotonic seconds (tests pass their own).

    Example:
        >>> limiter = RateLimiter(clock=lambda: 0.0)
        >>> limiter.admit("k1", RateLimit(per_second=1, burst=2))
        >>> limiter.admit("k1", RateLimit(per_second=1, burst=2))
        >>> try:
        ...     limiter.admit("k1", RateLimit(per_second=1, burst=2))
        ... except ResourceExhausted as exc:
        ...     print(exc.details["retry_after_s"])
        1.0
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._swept = clock()

    def admit(self, key_id: str, limit: RateLimit | None) -> None:
        """Take one request from ``key_id``'s bucket, or refuse it.

        Raises:
            ResourceExhausted: the bucket is empty; ``details`` name the limit and carry
                ``retry_after_s``, the time until one request's worth has refilled.
        """
        if limit is None:
            return
        now = self.clock()
        capacity = limit.capacity
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(capacity, now)
        else:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.seen) * limit.per_second)
            bucket.seen = now
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
        else:
            retry_after_s = (1.0 - bucket.tokens) / limit.per_second
            raise ResourceExhausted(
                f"API key {key_id!r} is over its rate limit of {limit.per_second:g} requests/s "
                f"(burst {capacity:g}); retry after {retry_after_s:.3f}s",
                details={
                    "field": "rate_limit",
                    "limit_per_s": limit.per_second,
                    "burst": capacity,
                    "retry_after_s": retry_after_s,
                },
            )
        if now - self._swept > IDLE_S:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key in [k for k, b in self._buckets.items() if now - b.seen > IDLE_S]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
