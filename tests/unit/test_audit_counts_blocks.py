"""The time blocks of the officer's counts: a run of days is covered exactly, by few aligned blocks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import counts


def days_of(block: counts.Block) -> range:
    level, b = block
    size = counts.FANOUT**level
    return range(b * size, (b + 1) * size)


@given(first=st.integers(0, 40_000), length=st.integers(0, 40_000))
def test_a_run_of_days_is_covered_exactly_by_few_aligned_blocks(first: int, length: int) -> None:
    blocks = counts.decompose(first, first + length)
    covered = [day for block in blocks for day in days_of(block)]
    assert sorted(covered) == list(range(first, first + length))  # every day once, none outside
    top = counts.LEVELS - 1
    assert sum(1 for level, _ in blocks if level < top) <= 2 * (counts.FANOUT - 1) * top


@given(level=st.integers(1, counts.LEVELS - 1), block=st.integers(0, 10_000))
def test_a_blocks_parts_are_its_days(level: int, block: int) -> None:
    parts = counts.parts((level, block))
    assert [day for part in parts for day in days_of(part)] == list(days_of((level, block)))


def test_region_terms_match_only_whole_terms() -> None:
    stored = counts.regions_text(["a|m", "x_y", "amsterdam"])
    assert counts.region_needle("amsterdam") in stored
    assert counts.region_needle("a") not in stored
    assert counts.region_needle("m") not in stored
    assert counts.region_needle("x") not in stored
    assert counts.regions_text([]) == ""
