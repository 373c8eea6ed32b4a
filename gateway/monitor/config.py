"""The monitor's configuration (`monitor.yaml` next to the policy): indicators and the disclosure rule.

Each indicator names the category and field it counts from, how values fall into the columns of its
breakdown (phase, route, reason, ...), its definition in plain Dutch words, and the column for
participants without a recorded value (so every indicator adds up to the participants per region).
A column may also require a value of a second field of the same category (`where`: a refusal, and its
reason); the first column that holds a participant counts them, so still one column per participant.
The disclosure rule (threshold, rounding) holds for every table; periods are the calendar lattice of
one grain (month, quarter or year), never a free date range.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import orjson
import yaml
from pydantic import Field, ValidationError, model_validator

from gateway.policies.loader import ConfigError, ConfigProblem
from gateway.policies.model import FieldName, Identifier, PolicyConfig, Strict

MONITOR_FILE = "monitor.yaml"
Scalar = str | int | bool


def _among(value: object, values: tuple[Scalar, ...]) -> bool:
    """Return whether `value` is one of `values`, a boolean only as a boolean, a number only as a number."""
    # True == 1 in Python: a boolean matches only a boolean, a number only a number.
    if isinstance(value, bool):
        return any(isinstance(v, bool) and v is value for v in values)
    return any(not isinstance(v, bool) and type(v) is type(value) and v == value for v in values)


class Condition(Strict):
    """A second field of the indicator's category that a column also requires (e.g. the reason of a refusal)."""

    field: FieldName
    values: tuple[Scalar, ...] = Field(min_length=1)

    def holds(self, value: object) -> bool:
        """Return whether a recorded value of the second field meets the condition (absent never does)."""
        return _among(value, self.values)


class Bucket(Strict):
    """One column of a breakdown: the values (or range) of the field that count in it."""

    label: str = Field(min_length=1, max_length=60)
    values: tuple[Scalar, ...] = ()
    min: int | None = Field(default=None, description="Counts numbers >= min (with `max`: a range)")
    max: int | None = None
    where: Condition | None = Field(default=None, description="A second field of the category the column requires")

    @model_validator(mode="after")
    def _something(self) -> Bucket:
        if not self.values and self.min is None and self.max is None:
            raise ValueError("a bucket needs values, or a min and/or max")
        return self

    def holds(self, value: object) -> bool:
        """Return whether a recorded value counts in this column (the `where` condition aside)."""
        if _among(value, self.values):
            return True
        if isinstance(value, bool):
            return False
        if isinstance(value, int) and (self.min is not None or self.max is not None):
            return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)
        return False


class Indicator(Strict):
    id: Identifier
    name: str = Field(min_length=3)
    definition: str = Field(min_length=20, description="What is counted, in plain Dutch")
    category: Identifier
    field: FieldName
    breakdown: Literal["phase", "route", "reason", "status", "outcome"]
    buckets: tuple[Bucket, ...] = Field(min_length=1)
    unrecorded: str = Field(default="Niet vastgelegd", min_length=1, max_length=60)

    @model_validator(mode="after")
    def _distinct(self) -> Indicator:
        labels = [b.label for b in self.buckets] + [self.unrecorded]
        if len(labels) != len(set(labels)):
            raise ValueError("column labels must be distinct (unrecorded included)")
        if any(b.where is not None and b.where.field == self.field for b in self.buckets):
            raise ValueError("a column's `where` names a second field, not the indicator's own")
        return self

    def counted_fields(self) -> tuple[str, ...]:
        """Return the fields of the category this indicator reads: its own, then any a column's `where` names."""
        return tuple(dict.fromkeys([self.field, *(b.where.field for b in self.buckets if b.where is not None)]))

    @property
    def counted_from(self) -> str:
        """Return the fields counted from, as shown next to the definition: `category.field`, comma-separated."""
        return ", ".join(f"{self.category}.{f}" for f in self.counted_fields())


class Disclosure(Strict):
    threshold: Annotated[int, Field(ge=2, le=100)] = 5
    rounding: Annotated[int, Field(ge=0, le=100)] = 0
    explanation: str = Field(min_length=20)


class Periods(Strict):
    grain: Literal["month", "quarter", "year"] = "quarter"
    counted_by: Literal["registration"] = "registration"
    start: date


class MonitorConfig(Strict):
    title: str
    intake_series_name: str = "Nieuwe deelnemers per periode"
    intake_series_definition: str = Field(min_length=20)
    disclosure: Disclosure
    periods: Periods
    indicators: tuple[Indicator, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> MonitorConfig:
        ids = [i.id for i in self.indicators]
        if len(ids) != len(set(ids)):
            raise ValueError("an indicator id is listed twice")
        return self

    @property
    def version(self) -> str:
        """Return the hash of this monitor configuration (every computation records it)."""
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(canonical).hexdigest()

    def fields(self) -> dict[str, tuple[str, ...]]:
        """Return, per category, the fields the indicators count from (the only ones the monitor reads)."""
        out: dict[str, set[str]] = {}
        for ind in self.indicators:
            out.setdefault(ind.category, set()).update(ind.counted_fields())
        return {c: tuple(sorted(f)) for c, f in sorted(out.items())}


def check_against(monitor: MonitorConfig, policy: PolicyConfig) -> list[ConfigProblem]:
    """Return every indicator that counts from a category or field the policy does not have."""
    categories = {c.id: c for c in policy.categories}
    problems: list[ConfigProblem] = []
    for ind in monitor.indicators:
        label = f"indicator '{ind.id}'"
        category = categories.get(ind.category)
        if category is None:
            problems.append(ConfigProblem(MONITOR_FILE, label, f"category '{ind.category}' is not in categories.yaml"))
            continue
        for name in ind.counted_fields():
            if all(f.name != name for f in category.fields):
                problems.append(
                    ConfigProblem(MONITOR_FILE, label, f"field '{name}' is not a field of category '{ind.category}'")
                )
            elif category.field_sensitivity(name).value == "national_id":
                problems.append(ConfigProblem(MONITOR_FILE, label, "a national identifier is never counted"))
    return problems


def load_monitor(directory: Path, policy: PolicyConfig | None = None) -> MonitorConfig | None:
    """Return the monitor configuration of a config directory (None without monitor.yaml); ConfigError if invalid."""
    path = Path(directory) / MONITOR_FILE
    if not path.exists():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        monitor = MonitorConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(Path(directory), [ConfigProblem(MONITOR_FILE, "", f"not valid YAML: {exc}")]) from None
    except ValidationError as exc:
        problems = [ConfigProblem(MONITOR_FILE, ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(Path(directory), problems) from None
    if policy is not None:
        problems = check_against(monitor, policy)
        if problems:
            raise ConfigError(Path(directory), problems)
    return monitor
