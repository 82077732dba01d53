"""Per-key token buckets: bursts admitted, the long-run rate held, Retry-After exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiaas.errors import ResourceExhausted
from aiaas.serving.rate_limits import IDLE_S, RateLimit, RateLimiter
from tests._clock import Clock


def test_a_burst_is_admitted_then_the_next_request_is_refused_naming_the_limit() -> None:
    clock = Clock(100.0)
    limiter = RateLimiter(clock=clock)
    limit = RateLimit(per_second=2, burst=5)
    for _ in range(5):
        limiter.admit("key-a", limit)
    with pytest.raises(ResourceExhausted) as refused:
        limiter.admit("key-a", limit)
    details = refused.value.details
    assert details["field"] == "rate_limit"
    assert details["limit_per_s"] == 2
    assert details["burst"] == 5
    assert details["retry_after_s"] == pytest.approx(0.5)
    assert "2 requests/s" in refused.value.message


def test_the_bucket_refills_at_the_rate_and_no_faster() -> None:
    # Times and rates are binary fractions, so the refills add up exactly.
    clock = Clock(100.0)
    limiter = RateLimiter(clock=clock)
    limit = RateLimit(per_second=8, burst=1)
    limiter.admit("k", limit)
    clock.now += 0.0625  # half a token
    with pytest.raises(ResourceExhausted) as refused:
        limiter.admit("k", limit)
    assert refused.value.details["retry_after_s"] == pytest.approx(0.0625)
    clock.now += 0.0625
    limiter.admit("k", limit)
    # Over 12.5 simulated seconds, one request every 62.5 ms: exactly half are admitted.
    admitted = 0
    for _ in range(200):
        clock.now += 0.0625
        try:
            limiter.admit("k", limit)
            admitted += 1
        except ResourceExhausted:
            pass
    assert admitted == 100


def test_keys_have_their_own_buckets_and_no_limit_means_unlimited() -> None:
    clock = Clock(100.0)
    limiter = RateLimiter(clock=clock)
    limit = RateLimit(per_second=1, burst=1)
    limiter.admit("a", limit)
    limiter.admit("b", limit)  # a's empty bucket does not hold b back
    with pytest.raises(ResourceExhausted):
        limiter.admit("a", limit)
    for _ in range(1000):
        limiter.admit("c", None)


def test_idle_buckets_are_forgotten() -> None:
    clock = Clock(100.0)
    limiter = RateLimiter(clock=clock)
    for key in ("a", "b", "c"):
        limiter.admit(key, RateLimit(per_second=1))
    clock.now += IDLE_S + 1
    limiter.admit("d", RateLimit(per_second=1))
    assert len(limiter) == 1


@pytest.mark.parametrize(
    ("per_second", "burst"), [(0, 1), (-1, 1), (float("nan"), 1), (float("inf"), 1), (1, -1)]
)
def test_invalid_limits_are_refused(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"per_second|burst"):
        RateLimit(per_second=per_second, burst=burst)


def test_retry_after_is_the_refusal_s_wait_rounded_up_and_at_least_one_second() -> None:
    from aiaas.serving.auth import retry_after

    limiter = RateLimiter(clock=lambda: 0.0)
    limit = RateLimit(per_second=0.25, burst=1)
    limiter.admit("k", limit)
    with pytest.raises(ResourceExhausted) as refused:
        limiter.admit("k", limit)
    assert retry_after(refused.value) == "4"  # 1 token at 0.25/s
    assert retry_after(ResourceExhausted("x", details={"retry_after_s": 0.01})) == "1"
    assert retry_after(ResourceExhausted("x", details={"retry_after_s": 2.2})) == "3"
    assert retry_after(ResourceExhausted("queue full")) == "1"  # no wait known: one second


def test_a_key_s_own_rate_overrides_the_server_default(tmp_path: Path) -> None:
    from aiaas.config import Settings
    from aiaas.entities.security import Principal, Role
    from aiaas.serving.auth import InferenceAuth
    from aiaas.store import Database

    settings = Settings(home=tmp_path, key_rate_limit=10, key_rate_burst=20)
    auth = InferenceAuth(settings, Database(settings.resolved_database_url()))
    plain = Principal("a", "a", None, Role.developer)
    assert auth.limit_of(plain) == RateLimit(10, 20)
    assert auth.limit_of(Principal("b", "b", None, Role.developer, rate_limit=5)) == RateLimit(5, 20)
    own = Principal("c", "c", None, Role.developer, rate_limit=5, rate_burst=5)
    assert auth.limit_of(own) == RateLimit(5, 5)
    assert auth.limit_of(Principal("d", "d", None, Role.developer, rate_limit=0)) is None  # unlimited
    unlimited = InferenceAuth(Settings(home=tmp_path), Database(settings.resolved_database_url()))
    assert unlimited.limit_of(plain) is None  # AIAAS_KEY_RATE_LIMIT=0: no limit by default
