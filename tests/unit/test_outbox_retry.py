"""Outbox retries back off exponentially, capped, with a spread that is the same every time it is computed;
covenant-end notices go to every party that could receive data under the covenant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.evidence.notices import covenant_recipients
from gateway.outbox.model import RetryPolicy
from gateway.policies.loader import load_config
from tests.conftest import LVV_CONFIG


def test_each_failed_attempt_doubles_the_wait_until_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=30, factor=2, max_delay_seconds=300, spread=0)
    waits = [policy.delay(n).total_seconds() for n in range(1, 7)]
    assert waits == [30, 60, 120, 240, 300, 300]


def test_no_attempt_is_left_after_the_last_one() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3)] == [False, False, True]


@given(st.text(min_size=1, max_size=40), st.integers(1, 30))
def test_the_spread_never_shortens_a_wait_and_stays_within_its_fraction(notice_id: str, attempt: int) -> None:
    plain = RetryPolicy(spread=0).delay(attempt, notice_id)
    spread = RetryPolicy(spread=0.1).delay(attempt, notice_id)
    assert plain <= spread <= plain * 1.1 + timedelta(microseconds=1)
    assert spread == RetryPolicy(spread=0.1).delay(attempt, notice_id)


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"factor": 0.5}, {"spread": 1.0}])
def test_a_nonsensical_retry_policy_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid"):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_every_party_of_an_lvv_city_covenant_that_reads_under_it_is_a_recipient() -> None:
    config = load_config(LVV_CONFIG)
    recipients = {r.organisation: r.categories for r in covenant_recipients(config, "lvv-amsterdam")}
    parties = {p.organisation for c in config.covenants if c.id == "lvv-amsterdam" for p in c.parties}
    assert set(recipients) == parties
    assert "identity" in recipients["ind"]
    assert "rotterdam" not in recipients


def test_an_unknown_covenant_has_no_recipients_to_guess() -> None:
    with pytest.raises(KeyError):
        covenant_recipients(load_config(LVV_CONFIG), "no-such-covenant")
