"""Per-client token buckets, timed by the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.ratelimit import RateLimited, RateLimiter
from gateway.clock import FixedClock

NOW = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)


def test_a_client_gets_a_burst_of_ten_seconds_worth_then_a_retry_after() -> None:
    limiter = RateLimiter(FixedClock(NOW))
    for _ in range(10):
        limiter.take("a", 60)
    with pytest.raises(RateLimited) as limited:
        limiter.take("a", 60)
    assert limited.value.retry_after == 1


def test_the_bucket_refills_at_the_per_minute_rate() -> None:
    clock = FixedClock(NOW)
    limiter = RateLimiter(clock)
    limiter.take("a", 6)
    with pytest.raises(RateLimited) as limited:
        limiter.take("a", 6)
    assert limited.value.retry_after == 10
    clock.advance(timedelta(seconds=9))
    with pytest.raises(RateLimited):
        limiter.take("a", 6)
    clock.advance(timedelta(seconds=1))
    limiter.take("a", 6)


def test_clients_have_their_own_buckets() -> None:
    limiter = RateLimiter(FixedClock(NOW))
    limiter.take("a", 6)
    limiter.take("b", 6)
    with pytest.raises(RateLimited):
        limiter.take("a", 6)


def test_the_number_of_buckets_is_bounded() -> None:
    limiter = RateLimiter(FixedClock(NOW), max_keys=3)
    for key in "abcd":
        limiter.take(key, 6)
    limiter.take("a", 6)  # the oldest bucket was dropped, so "a" starts full again


@given(per_minute=st.integers(min_value=1, max_value=100_000), requests=st.integers(min_value=1, max_value=500))
def test_no_more_than_the_burst_passes_at_one_instant(per_minute: int, requests: int) -> None:
    limiter = RateLimiter(FixedClock(NOW))
    passed, waits = 0, []
    for _ in range(requests):
        try:
            limiter.take("a", per_minute)
            passed += 1
        except RateLimited as exc:
            waits.append(exc.retry_after)
    assert passed == min(requests, max(1, -(-per_minute // 6)))
    assert all(wait >= 1 for wait in waits)
