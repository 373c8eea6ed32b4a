"""A risk the configuration reveals: what it is, where it shows, how likely and severe, what mitigates it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.dpia.lang import N_, tr
from gateway.policies.model import PolicyConfig

_SCALE = ("low", "medium", "high")
_WORD = {"low": N_("low"), "medium": N_("medium"), "high": N_("high")}


def level_word(value: str) -> str:
    """Return a likelihood, impact or level (low / medium / high) in the documents' language."""
    return tr(_WORD.get(value, value))


def level(likelihood: str, impact: str) -> str:
    """Return the risk level of a likelihood and an impact (low / medium / high each)."""
    score = (_SCALE.index(likelihood) + 1) * (_SCALE.index(impact) + 1)
    return "high" if score >= 6 else "medium" if score >= 3 else "low"


def severity(value: str) -> int:
    """Return 0 for high, 1 for medium, 2 for low (to sort most severe first)."""
    return 2 - _SCALE.index(value)


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    occurrences: tuple[str, ...]
    likelihood: str
    impact: str
    motivation: str
    measures: tuple[str, ...]
    advice: str

    @property
    def level(self) -> str:
        return level(self.likelihood, self.impact)


Check = Callable[[PolicyConfig], Finding | None]


def finding(
    occurrences: list[str],
    *,
    id: str,
    title: str,
    likelihood: str,
    impact: str,
    motivation: str,
    measures: tuple[str, ...],
    advice: str,
) -> Finding | None:
    """Return the finding when it occurs anywhere (occurrences deduplicated, in order), else None."""
    if not occurrences:
        return None
    return Finding(id, title, tuple(dict.fromkeys(occurrences)), likelihood, impact, motivation, measures, advice)
