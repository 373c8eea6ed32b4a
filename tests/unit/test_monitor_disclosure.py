"""Disclosure control as properties: for any counts, no published table lets a suppressed cell be derived
from the published numbers (margins and the other tables of the publication), no count 1..threshold-1 is
published, and differencing attacks across overlapping questions find nothing.

The attacker here is independent of the code under test: exact rational linear algebra (fractions) over
every published number, plus brute force over small tables (every non-negative integer completion that
agrees with what was published).
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.monitor.disclosure import TOTAL, CountTable, PublishedTable, Rules, cut, publish

REGIONS = ("ams", "rot", "utr")


@st.composite
def publications(draw: st.DrawFn, max_rows: int = 3, max_cols: int = 3, tables: int = 2) -> list[CountTable]:
    """Linked tables: the same regions, each table splitting every region's people over its own columns."""
    rows = REGIONS[: draw(st.integers(2, max_rows))]
    people = {r: draw(st.integers(0, 14)) for r in rows}
    out = []
    for t in range(draw(st.integers(1, tables))):
        cols = tuple(f"c{t}{i}" for i in range(draw(st.integers(2, max_cols))))
        counts = {}
        for r in rows:
            left = people[r]
            for c in cols[:-1]:
                n = draw(st.integers(0, left))
                counts[(r, c)] = n
                left -= n
            counts[(r, cols[-1])] = left
        out.append(CountTable(f"t{t}", rows, cols, counts))
    return out


def _unknowns_and_equations(
    tables: list[CountTable], published: list[PublishedTable]
) -> tuple[list[tuple[str, str, str]], list[tuple[dict[tuple[str, str, str], int], int]]]:
    """Return the suppressed cells as unknowns and every additive relation the reader knows, with constants."""

    def key(t: CountTable, r: str, c: str) -> tuple[str, str, str]:
        return ("", r, TOTAL) if c == TOTAL else (t.id, r, c)

    known: dict[tuple[str, str, str], int] = {}
    unknown: set[tuple[str, str, str]] = set()
    for t, p in zip(tables, published, strict=True):
        for (r, c), v in p.cells.items():
            (unknown.add(key(t, r, c)) if v is None else known.__setitem__(key(t, r, c), v))
    unknown -= set(known)
    equations = []
    for t in tables:
        lines = [[(r, c) for c in (*t.cols,)] + [(r, TOTAL)] for r in (*t.rows, TOTAL)]
        lines += [[(r, c) for r in t.rows] + [(TOTAL, c)] for c in (*t.cols, TOTAL)]
        for line in lines:
            coeffs: dict[tuple[str, str, str], int] = {}
            constant = 0
            for i, (r, c) in enumerate(line):
                sign = -1 if i == len(line) - 1 else 1
                k = key(t, r, c)
                if k in unknown:
                    coeffs[k] = coeffs.get(k, 0) + sign
                else:
                    constant -= sign * known[k]
            if coeffs:
                equations.append((coeffs, constant))
    return sorted(unknown), equations


def _derivable(unknowns: list[tuple[str, str, str]], equations: list[tuple[dict, int]]) -> set[tuple[str, str, str]]:
    """Return the unknowns fixed by the equations (exact Gauss-Jordan over the rationals)."""
    index = {u: i for i, u in enumerate(unknowns)}
    rows = [[Fraction(0)] * len(unknowns) for _ in equations]
    for row, (coeffs, _) in zip(rows, equations, strict=True):
        for u, c in coeffs.items():
            row[index[u]] = Fraction(c)
    pivots: list[int] = []
    r = 0
    for col in range(len(unknowns)):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][col]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                factor = rows[i][col]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(col)
        r += 1
    fixed = set()
    for i, col in enumerate(pivots):
        if all(rows[i][j] == 0 for j in range(len(unknowns)) if j != col):
            fixed.add(unknowns[col])
    return fixed


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(publications(), st.integers(2, 6))
def test_no_suppressed_cell_can_be_derived_from_the_published_numbers(tables: list[CountTable], threshold: int) -> None:
    published = publish(tables, Rules(threshold))
    unknowns, equations = _unknowns_and_equations(tables, published)
    assert not _derivable(unknowns, equations) & set(unknowns)


@settings(max_examples=250, deadline=None)
@given(publications(), st.integers(2, 6))
def test_no_count_below_the_threshold_is_ever_published_and_the_rest_is_true(
    tables: list[CountTable], threshold: int
) -> None:
    for table, pub in zip(tables, publish(tables, Rules(threshold)), strict=True):
        for (r, c), v in pub.cells.items():
            true = table.count(r, c)
            if 0 < true < threshold:
                assert v is None
            if v is not None:
                assert v == true


@settings(max_examples=60, deadline=None)
@given(publications(max_rows=2, max_cols=2, tables=1), st.integers(3, 5))
def test_brute_force_finds_at_least_two_completions_for_every_suppressed_cell(
    tables: list[CountTable], threshold: int
) -> None:
    """Every non-negative integer table agreeing with the publication: each hidden cell takes two values."""
    table, pub = tables[0], publish(tables, Rules(threshold))[0]
    hidden = [(r, c) for (r, c), v in pub.cells.items() if v is None]
    if not hidden:
        return
    inner = [(r, c) for r in table.rows for c in table.cols]
    seen: dict[tuple[str, str], set[int]] = {h: set() for h in hidden}
    grand = table.count(TOTAL, TOTAL)
    for values in itertools.product(range(grand + 1), repeat=len(inner)):
        candidate = CountTable("t0", table.rows, table.cols, dict(zip(inner, values, strict=True)))
        if all(v is None or candidate.count(r, c) == v for (r, c), v in pub.cells.items()):
            for h in hidden:
                seen[h].add(candidate.count(*h))
    assert all(len(values) >= 2 for values in seen.values()), seen


def test_rounding_publishes_multiples_of_the_base_after_suppression() -> None:
    counts = {
        ("ams", "a"): 12,
        ("ams", "b"): 8,
        ("ams", "c"): 22,
        ("rot", "a"): 3,
        ("rot", "b"): 9,
        ("rot", "c"): 31,
        ("utr", "a"): 17,
        ("utr", "b"): 6,
        ("utr", "c"): 13,
    }
    table = CountTable("t", REGIONS, ("a", "b", "c"), counts)
    pub = publish([table], Rules(5, rounding=5))[0]
    assert pub.value("rot", "a") is None
    published = {k: v for k, v in pub.cells.items() if v is not None}
    assert published, "nothing published"
    for (r, c), v in published.items():
        true = table.count(r, c)
        assert v % 5 == 0, (r, c, true, v)
        assert abs(v - true) <= 2, (r, c, true, v)
    assert any(v != table.count(r, c) for (r, c), v in published.items())


# -- differencing: questions that share all but one person -----------------------------------------


def test_a_region_cut_from_the_programme_hides_exactly_what_the_programme_hides() -> None:
    """A city's answer is cut from the one protected publication: subtracting it from the programme's
    answer, or from another city's, reveals nothing the programme table does not already show."""
    table = CountTable(
        "t",
        REGIONS,
        ("a", "b", "c"),
        {
            ("ams", "a"): 2,
            ("ams", "b"): 9,
            ("ams", "c"): 7,
            ("rot", "a"): 8,
            ("rot", "b"): 9,
            ("rot", "c"): 12,
            ("utr", "a"): 6,
            ("utr", "b"): 3,
            ("utr", "c"): 11,
        },
    )
    whole = publish([table], Rules(5))[0]
    for region in REGIONS:
        part = cut(whole, (region,), with_totals=False)
        for (r, c), v in part.cells.items():
            assert whole.cells[(r, c)] == v
        assert all(r == region for r, _ in part.cells)


@given(publications(tables=1), st.sampled_from(REGIONS))
@settings(max_examples=150, deadline=None)
def test_adding_one_person_to_a_small_cell_does_not_reveal_the_cell(tables: list[CountTable], region: str) -> None:
    """Two publications that differ by one person: a cell below the threshold stays hidden in both."""
    table = tables[0]
    if region not in table.rows:
        return
    col = table.cols[0]
    plus = CountTable(
        table.id, table.rows, table.cols, {**table.counts, (region, col): table.counts[(region, col)] + 1}
    )
    before, after = publish([table], Rules(5))[0], publish([plus], Rules(5))[0]
    for pub, src in ((before, table), (plus and after, plus)):
        for (r, c), v in pub.cells.items():
            if 0 < src.count(r, c) < 5:
                assert v is None


@pytest.mark.parametrize("threshold", [2, 5, 10])
def test_the_same_counts_always_give_the_same_suppression(threshold: int) -> None:
    table = CountTable(
        "t",
        ("ams", "rot"),
        ("a", "b", "c"),
        {("ams", "a"): 1, ("ams", "b"): 20, ("ams", "c"): 4, ("rot", "a"): 9, ("rot", "b"): 2, ("rot", "c"): 30},
    )
    assert publish([table], Rules(threshold)) == publish([table], Rules(threshold))
