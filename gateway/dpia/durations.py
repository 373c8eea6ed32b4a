"""ISO-8601 retention durations in words, and their order (for "shortened" / "lengthened")."""

from __future__ import annotations

import re

from gateway.dpia.lang import N_, _, tr

_PARTS = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")
_UNITS = (("year", 365.25), ("month", 30.44), ("week", 7.0), ("day", 1.0))
_PLURAL = {"year": N_("years"), "month": N_("months"), "week": N_("weeks"), "day": N_("days")}


def _amounts(duration: str) -> tuple[int, int, int, int]:
    match = _PARTS.match(duration)
    if not match or duration == "P":
        raise ValueError(f"not an ISO-8601 date duration: {duration}")
    y, m, w, d = (int(g) if g else 0 for g in match.groups())
    return y, m, w, d


def in_words(duration: str | None) -> str:
    """Return e.g. '6 months' for P6M, 'at once' for P0D and 'permanently' for None (archive)."""
    if duration is None:
        return _("permanently")
    parts = [
        f"{n} {tr(unit) if n == 1 else tr(_PLURAL[unit])}"
        for n, (unit, _days) in zip(_amounts(duration), _UNITS, strict=True)
        if n
    ]
    if not parts:
        return _("at once")
    return parts[0] if len(parts) == 1 else _("{some} and {last}", some=", ".join(parts[:-1]), last=parts[-1])


def approx_days(duration: str | None) -> float:
    """Return the approximate length in days (archive: infinite), to compare two durations."""
    if duration is None:
        return float("inf")
    return sum(n * days for n, (_unit, days) in zip(_amounts(duration), _UNITS, strict=True))
