"""ISO-8601 retention durations in words, and their order (for "shortened" / "lengthened")."""

from __future__ import annotations

import re

_PARTS = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")
_UNITS = (("year", 365.25), ("month", 30.44), ("week", 7.0), ("day", 1.0))


def _amounts(duration: str) -> tuple[int, int, int, int]:
    match = _PARTS.match(duration)
    if not match or duration == "P":
        raise ValueError(f"not an ISO-8601 date duration: {duration}")
    y, m, w, d = (int(g) if g else 0 for g in match.groups())
    return y, m, w, d


def in_words(duration: str | None) -> str:
    """Return e.g. '6 months' for P6M, 'at once' for P0D and 'permanently' for None (archive)."""
    if duration is None:
        return "permanently"
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, (unit, _) in zip(_amounts(duration), _UNITS, strict=True) if n]
    return " and ".join(parts) if parts else "at once"


def approx_days(duration: str | None) -> float:
    """Return the approximate length in days (archive: infinite), to compare two durations."""
    if duration is None:
        return float("inf")
    return sum(n * days for n, (_, days) in zip(_amounts(duration), _UNITS, strict=True))
