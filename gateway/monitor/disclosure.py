"""Disclosure control for linked count tables: small-cell suppression, secondary suppression, rounding.

Pure functions, no I/O. A publication is a set of two-dimensional count tables whose rows are the same
regions and whose row totals (people per region) are the same numbers in every table, so they are one
linear system: every row of every table sums to its region's total, every column to its column total,
the region totals to the grand total. A reader who has every published number may solve that system.

The rules (the method and its limits are in docs/monitor.md):

1. **Primary suppression**: every cell, margin or inner, with 1 <= count < threshold is suppressed.
2. **Secondary suppression**: while some suppressed cell is still determined by the published numbers
   (exactly, by linear algebra over the whole publication: checked by elimination modulo a large prime),
   the cheapest published cell sharing a line with it (smallest count, zeros last) is suppressed too.
   This is deterministic: the same counts always give the same pattern, so asking again, or asking for
   one region's rows, shows nothing another answer hides.
3. **Rounding** (when configured): each published count is rounded to the nearest multiple of the base,
   margins rounded on their own (so rounded rows need not add up).

A suppressed cell is published as None; the reason is one sentence for every suppressed cell alike, so
it does not say whether the cell was small or protects a small one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

TOTAL = "*"
SUPPRESSED_REASON = "onderdrukt: klein aantal, of nodig om een klein aantal niet terug te laten rekenen"
_PRIME = (1 << 61) - 1  # rank modulo this Mersenne prime equals the rational rank for these small systems

_TRIES = 12  # candidates tried per exposed cell before taking the cheapest
Var = tuple[str, str, str]  # (table id or "" for a shared region margin, row, column)


@dataclass(frozen=True, slots=True)
class CountTable:
    """The true counts of one table: rows (regions) by columns, inner cells only; margins are derived."""

    id: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    counts: Mapping[tuple[str, str], int]

    def count(self, row: str, col: str) -> int:
        """Return a cell's count; TOTAL as row or column gives a margin."""
        rows = self.rows if row == TOTAL else (row,)
        cols = self.cols if col == TOTAL else (col,)
        return sum(self.counts.get((r, c), 0) for r in rows for c in cols)


@dataclass(frozen=True, slots=True)
class PublishedTable:
    """A table as published: every cell (margins included) a count, rounded where configured, or None."""

    id: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    cells: Mapping[tuple[str, str], int | None]

    def value(self, row: str, col: str) -> int | None:
        """Return the published value of a cell (None: suppressed)."""
        return self.cells[(row, col)]


@dataclass(frozen=True, slots=True)
class Rules:
    """The disclosure rule: suppress counts 1..threshold-1; round published counts to `rounding` (0: none)."""

    threshold: int = 5
    rounding: int = 0

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.rounding < 0:
            raise ValueError("threshold must be at least 1 and rounding at least 0")


@dataclass
class _System:
    """The publication's linear system: each constraint a {var: coefficient} that sums to zero."""

    values: dict[Var, int] = field(default_factory=dict)
    constraints: list[dict[Var, int]] = field(default_factory=list)
    by_var: dict[Var, list[int]] = field(default_factory=dict)

    def add(self, constraint: dict[Var, int]) -> None:
        index = len(self.constraints)
        self.constraints.append(constraint)
        for var in constraint:
            self.by_var.setdefault(var, []).append(index)


def _var(table: CountTable, row: str, col: str) -> Var:
    # Row totals are one variable shared by every table: they are the same number (people per region).
    return ("", row, TOTAL) if col == TOTAL else (table.id, row, col)


def _system(tables: Sequence[CountTable]) -> _System:
    if not tables:
        raise ValueError("nothing to publish")
    rows = tables[0].rows
    for table in tables:
        if table.rows != rows:
            raise ValueError(f"table {table.id} has other rows than {tables[0].id}")
        for row in (*rows, TOTAL):
            if table.count(row, TOTAL) != tables[0].count(row, TOTAL):
                raise ValueError(f"table {table.id} does not add up to the same total for {row}")
    if len({t.id for t in tables}) != len(tables) or any(not t.id for t in tables):
        raise ValueError("tables need distinct, non-empty ids")
    system = _System()
    for table in tables:
        for row in (*rows, TOTAL):
            for col in (*table.cols, TOTAL):
                system.values[_var(table, row, col)] = table.count(row, col)
        for row in (*rows, TOTAL):
            line = {_var(table, row, c): 1 for c in table.cols}
            line[_var(table, row, TOTAL)] = -1
            system.add(line)
        for col in (*table.cols, TOTAL):
            line = {_var(table, r, col): 1 for r in rows}
            line[_var(table, TOTAL, col)] = -1
            system.add(line)
    return system


def determined(constraints: Iterable[Mapping[Var, int]], unknown: set[Var]) -> set[Var]:
    """Return the unknowns whose value follows from the constraints once every other variable is known.

    Gaussian elimination modulo a large prime over the unknowns' coefficients: an unknown is determined
    exactly when it is a pivot whose reduced row has no free unknown left in it.
    """
    rows: list[dict[Var, int]] = []
    for constraint in constraints:
        row = {v: c % _PRIME for v, c in constraint.items() if v in unknown and c % _PRIME}
        if row:
            rows.append(row)
    pivots: dict[Var, dict[Var, int]] = {}
    for row in rows:
        for var, row_pivot in list(pivots.items()):
            factor = row.get(var)
            if factor:
                for v, c in row_pivot.items():
                    row[v] = (row.get(v, 0) - factor * c) % _PRIME
                    if not row[v]:
                        del row[v]
        if not row:
            continue
        var = min(row)
        inverse = pow(row[var], _PRIME - 2, _PRIME)
        row = {v: c * inverse % _PRIME for v, c in row.items()}
        for other in pivots.values():  # keep every pivot row reduced by the new pivot
            factor = other.get(var)
            if factor:
                for v, c in row.items():
                    other[v] = (other.get(v, 0) - factor * c) % _PRIME
                    if not other[v]:
                        del other[v]
        pivots[var] = row
    return {var for var, row in pivots.items() if set(row) == {var}}


def _suppress(system: _System, rules: Rules) -> set[Var]:
    suppressed = {v for v, n in system.values.items() if 0 < n < rules.threshold}
    while True:
        exposed = determined(system.constraints, suppressed)
        if not exposed:
            return suppressed
        var = min(exposed)
        lines = [system.constraints[i] for i in system.by_var[var]]
        partners = sorted(
            {p for line in lines for p in line if p not in suppressed} or set(system.values) - suppressed,
            key=lambda p: _cost(system, p),
        )
        if not partners:
            return suppressed
        # The cheapest number whose hiding leaves this one undetermined; else the cheapest pair (a cycle
        # through a second line); else the cheapest number, and look again.
        suppressed |= _cover(system, suppressed, var, partners)


def _cost(system: _System, var: Var) -> tuple[bool, int, Var]:
    return (system.values[var] == 0, system.values[var], var)


def _cover(system: _System, suppressed: set[Var], var: Var, partners: list[Var]) -> set[Var]:
    """Return the cheapest one or two more numbers to hide so that `var` is no longer determined."""
    for p in partners[:_TRIES]:
        if var not in determined(system.constraints, suppressed | {p}):
            return {p}
    pairs = []
    for p in partners[:_TRIES]:
        second = {q for i in system.by_var[p] for q in system.constraints[i] if q not in suppressed and q != p}
        for q in sorted(second, key=lambda q: _cost(system, q))[:_TRIES]:
            pairs.append((_cost(system, p)[:2] + _cost(system, q)[:2], p, q))
    for _, p, q in sorted(pairs, key=lambda x: (x[0][0] or x[0][2], x[0][1] + x[0][3], x[1], x[2])):
        if var not in determined(system.constraints, suppressed | {p, q}):
            return {p, q}
    return {partners[0]}


def _round(value: int, base: int) -> int:
    return value if base <= 1 else base * ((2 * value + base) // (2 * base))


def publish(tables: Sequence[CountTable], rules: Rules) -> list[PublishedTable]:
    """Return the tables as they may be published: suppressed where needed, rounded where configured."""
    system = _system(tables)
    suppressed = _suppress(system, rules)
    out: list[PublishedTable] = []
    for table in tables:
        cells: dict[tuple[str, str], int | None] = {}
        for row in (*table.rows, TOTAL):
            for col in (*table.cols, TOTAL):
                var = _var(table, row, col)
                cells[(row, col)] = None if var in suppressed else _round(system.values[var], rules.rounding)
        out.append(PublishedTable(table.id, table.rows, table.cols, cells))
    return out


def cut(table: PublishedTable, rows: Sequence[str], with_totals: bool) -> PublishedTable:
    """Return the published table cut to `rows` (and the totals row when `with_totals`); nothing recomputed."""
    keep = [r for r in table.rows if r in rows]
    cells = {(r, c): v for (r, c), v in table.cells.items() if r in keep or (with_totals and r == TOTAL)}
    return PublishedTable(table.id, tuple(keep), table.cols, cells)


def cut_columns(table: PublishedTable, cols: Sequence[str]) -> PublishedTable:
    """Return the published table cut to `cols` (none when a period has no column); nothing recomputed."""
    keep = [c for c in table.cols if c in cols]
    cells = {(r, c): v for (r, c), v in table.cells.items() if c in keep}
    return PublishedTable(table.id, table.rows, tuple(keep), cells)
