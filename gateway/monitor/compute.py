"""Indicator tables from participant facts (pure): counts per region and breakdown column, and new
participants per region and period; then the publication with disclosure control applied.

The whole programme is always computed and protected at once, whoever asks; a viewer then gets the
rows of their regions cut from that one publication, so no two answers differ in what they hide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from gateway.monitor.config import Indicator, MonitorConfig
from gateway.monitor.disclosure import TOTAL, CountTable, PublishedTable, Rules, cut, publish

SERIES_ID = "instroom"


@dataclass(frozen=True, slots=True)
class ParticipantFacts:
    """What the monitor knows of one participant: region, registration day, the counted field values."""

    region: str
    registered_on: date
    values: Mapping[tuple[str, str], object]  # (category, field) -> value; absent: not recorded


def period_of(day: date, grain: str) -> str:
    """Return the lattice period holding `day`: 2024, 2024-Q4 or 2024-11."""
    if grain == "year":
        return f"{day.year}"
    if grain == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


def _next(period: str, grain: str) -> str:
    if grain == "year":
        return str(int(period) + 1)
    year, part = period.split("-")
    last = 4 if grain == "quarter" else 12
    number = int(part.removeprefix("Q"))
    year_n, number = (int(year) + 1, 1) if number == last else (int(year), number + 1)
    return f"{year_n}-Q{number}" if grain == "quarter" else f"{year_n}-{number:02d}"


def periods_between(first: str, last: str, grain: str) -> tuple[str, ...]:
    """Return the lattice periods from `first` to `last`, both included."""
    out = [first]
    while out[-1] < last:
        out.append(_next(out[-1], grain))
    return tuple(out)


def period_label(period: str) -> str:
    """Return a period in Dutch: 2024 K4, 2024-11 or 2024."""
    return period.replace("-Q", " K")


def column_of(indicator: Indicator, values: Mapping[tuple[str, str], object]) -> str:
    """Return the column a participant counts in for one indicator."""
    key = (indicator.category, indicator.field)
    if key not in values or values[key] is None:
        return indicator.unrecorded
    value = values[key]
    for bucket in indicator.buckets:
        if bucket.holds(value) and (
            bucket.where is None or bucket.where.holds(values.get((indicator.category, bucket.where.field)))
        ):
            return bucket.label
    return indicator.unrecorded


def count_tables(monitor: MonitorConfig, facts: Sequence[ParticipantFacts], regions: Iterable[str]) -> list[CountTable]:
    """Return the true count tables: new participants per period, then one table per indicator."""
    rows = tuple(dict.fromkeys([*regions, *sorted({f.region for f in facts})]))
    grain = monitor.periods.grain
    start = period_of(monitor.periods.start, grain)
    periods_of = [max(start, period_of(f.registered_on, grain)) for f in facts]
    # Only the span that holds registrations (never a free range): first to last period with any.
    span = periods_between(min(periods_of), max(periods_of), grain) if periods_of else (start,)
    series = Counter((f.region, p) for f, p in zip(facts, periods_of, strict=True))
    tables = [CountTable(SERIES_ID, rows, span, dict(series))]
    for ind in monitor.indicators:
        columns = (*(b.label for b in ind.buckets), ind.unrecorded)
        counts = Counter((f.region, column_of(ind, f.values)) for f in facts)
        tables.append(CountTable(ind.id, rows, columns, dict(counts)))
    return tables


@dataclass(frozen=True, slots=True)
class Publication:
    """The protected tables of one computation, with what they were computed under."""

    monitor_version: str
    rules: Rules
    series: PublishedTable
    indicators: tuple[tuple[Indicator, PublishedTable], ...]
    with_totals: bool = True

    @property
    def regions(self) -> tuple[str, ...]:
        return self.series.rows

    def suppressed_cells(self) -> int:
        """Return how many cells of the publication are suppressed."""
        tables = [self.series, *(t for _, t in self.indicators)]
        return sum(1 for t in tables for v in t.cells.values() if v is None)

    def visible(self, regions: Iterable[str], with_totals: bool) -> Publication:
        """Return the publication cut to `regions` (and the programme totals row when `with_totals`)."""
        keep = tuple(regions)
        return Publication(
            self.monitor_version,
            self.rules,
            cut(self.series, keep, with_totals),
            tuple((ind, cut(table, keep, with_totals)) for ind, table in self.indicators),
            with_totals,
        )


def compute(monitor: MonitorConfig, facts: Sequence[ParticipantFacts], regions: Iterable[str]) -> Publication:
    """Return the whole programme's publication: every table protected together."""
    rules = Rules(monitor.disclosure.threshold, monitor.disclosure.rounding)
    tables = count_tables(monitor, facts, regions)
    published = publish(tables, rules)
    by_id = {t.id: t for t in published}
    return Publication(
        monitor.version,
        rules,
        by_id[SERIES_ID],
        tuple((ind, by_id[ind.id]) for ind in monitor.indicators),
    )


def table_json(table: PublishedTable) -> dict[str, object]:
    """Return a published table as JSON: rows, columns, cells (null: suppressed), totals under "*"."""
    return {
        "rows": list(table.rows),
        "columns": list(table.cols),
        "total_key": TOTAL,
        "cells": [
            {"row": r, "column": c, "value": v, **({"suppressed": True} if v is None else {})}
            for (r, c), v in table.cells.items()
        ],
    }
