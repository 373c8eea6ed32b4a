"""Anomalies a privacy officer should look at, computed from the audit log alone (pure functions).

Four kinds, each with a threshold from the settings (suggestions; tune them per deployment):
- `denial_burst`: one client got at least `burst_count` denials within `burst_window_seconds`;
- `outside_region`: requests for participants outside the regions the client may see, or for
  pseudonyms the client does not know (all answered 404, so the caller learns nothing; probing looks
  like this);
- `after_covenant_end`: requests refused because no covenant of the organisation was in force;
- `volume`: a client's requests on one day reached at least `volume_min_requests` and more than
  `volume_factor` times its usual daily volume (the mean over the `baseline_days` days before).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.i18n import N_

HIDDEN_REASONS = {
    "participant_outside_covenant_region": N_("participant outside the covenant's regions"),
    "participant_outside_recipient_region": N_("participant outside the organisation's regions"),
    "unknown_participant": N_("pseudonym unknown to the organisation"),
}
AFTER_END_REASON = "no_covenant_in_force"
MAX_SAMPLES = 20


@dataclass(frozen=True, slots=True)
class Thresholds:
    burst_count: int = 5
    burst_window_seconds: int = 300
    volume_factor: float = 5.0
    volume_min_requests: int = 50
    baseline_days: int = 28
    timezone: str = "Europe/Amsterdam"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding: what, which client of which organisation, how many, when, and sample entries."""

    kind: str
    title: str
    client_id: str | None
    organisation: str | None
    count: int
    first: datetime
    last: datetime
    seqs: tuple[int, ...]
    detail: str
    acting_users: tuple[str, ...] = ()  # who acted in the sample entries, as the log names them
    facts: dict[str, Any] = field(default_factory=dict)  # the detail's numbers, for pages to word it

    def as_dict(self) -> dict[str, Any]:
        """Return the anomaly as JSON-ready data."""
        return {
            "kind": self.kind,
            "title": self.title,
            "client_id": self.client_id,
            "organisation": self.organisation,
            "count": self.count,
            "first": self.first.isoformat().replace("+00:00", "Z"),
            "last": self.last.isoformat().replace("+00:00", "Z"),
            "sample_seqs": list(self.seqs),
            "detail": self.detail,
            "acting_users": list(self.acting_users),
        }


@dataclass(slots=True)
class _Group:
    organisation: str | None
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    seqs: list[int] | None = None
    reasons: dict[str, int] | None = None

    def add(self, seq: int, moment: datetime, reason: str | None = None) -> None:
        self.count += 1
        self.first = moment if self.first is None or moment < self.first else self.first
        self.last = moment if self.last is None or moment > self.last else self.last
        if self.seqs is None:
            self.seqs = []
        if len(self.seqs) < MAX_SAMPLES:
            self.seqs.append(seq)
        if reason is not None:
            if self.reasons is None:
                self.reasons = {}
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


def _bursts(
    denials: list[tuple[datetime, int]], count: int, window: timedelta
) -> list[tuple[int, int]]:  # (first index, last index) of each maximal burst
    denials.sort()
    out: list[tuple[int, int]] = []
    j = 0
    for i in range(len(denials)):
        j = max(j, i)
        while j + 1 < len(denials) and denials[j + 1][0] - denials[i][0] <= window:
            j += 1
        if j - i + 1 >= count:
            if out and i <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], j))
            else:
                out.append((i, j))
    return out


def detect(
    rows: Iterable[tuple[int, datetime, dict[str, Any]]],
    since: datetime,
    until: datetime,
    thresholds: Thresholds,
) -> list[Anomaly]:
    """Return the anomalies among entries recorded in [since, until); earlier rows only set the baseline."""
    zone = ZoneInfo(thresholds.timezone)
    denials: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    hidden: dict[str, _Group] = {}
    ended: dict[str, _Group] = {}
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    day_seqs: dict[tuple[str, date], list[int]] = defaultdict(list)
    orgs: dict[str, str | None] = {}
    users: dict[int, str] = {}
    for seq, moment, entry in rows:
        if since <= moment < until and entry.get("acting_user"):
            users[seq] = str(entry["acting_user"])
        client = str(entry.get("client_id") or "(unknown client)")
        orgs.setdefault(client, entry.get("organisation"))
        event = str(entry.get("event", ""))
        if event.startswith("exchange.") and moment < until:
            key = (client, moment.astimezone(zone).date())
            per_day[key] += 1
            if moment >= since and len(day_seqs[key]) < MAX_SAMPLES:
                day_seqs[key].append(seq)
        if moment < since or moment >= until or entry.get("decision") != "deny":
            continue
        denials[client].append((moment, seq))
        reason = str(entry.get("reason") or "")
        if reason in HIDDEN_REASONS:
            hidden.setdefault(client, _Group(entry.get("organisation"))).add(seq, moment, reason)
        elif reason == AFTER_END_REASON:
            ended.setdefault(client, _Group(entry.get("organisation"))).add(seq, moment)

    found: list[Anomaly] = []
    window = timedelta(seconds=thresholds.burst_window_seconds)
    for client, items in denials.items():
        for first, last in _bursts(items, thresholds.burst_count, window):
            burst = items[first : last + 1]
            found.append(
                Anomaly(
                    "denial_burst",
                    N_("Burst of denials"),
                    client,
                    orgs.get(client),
                    len(burst),
                    burst[0][0],
                    burst[-1][0],
                    tuple(s for _, s in burst[:MAX_SAMPLES]),
                    f"{len(burst)} denials within {(burst[-1][0] - burst[0][0]).total_seconds():.0f} s "
                    f"(threshold: {thresholds.burst_count} within {thresholds.burst_window_seconds} s).",
                    facts={"seconds": round((burst[-1][0] - burst[0][0]).total_seconds())},
                )
            )
    for client, group in hidden.items():
        parts = ", ".join(f"{n} x {HIDDEN_REASONS[r]}" for r, n in sorted((group.reasons or {}).items()))
        anomaly = _grouped(
            "outside_region", N_("Access outside the client's regions (answered 404)"), client, group, parts
        )
        found.append(replace(anomaly, facts={"reasons": dict(sorted((group.reasons or {}).items()))}))
    for client, group in ended.items():
        text = f"{group.count} requests refused because no covenant of the organisation was in force."
        found.append(_grouped("after_covenant_end", N_("Attempts after the covenant ended"), client, group, text))
    found.extend(_volume(per_day, day_seqs, orgs, since, until, thresholds, zone))
    found.sort(key=lambda a: (a.last, a.kind), reverse=True)
    return [replace(a, acting_users=tuple(sorted({users[s] for s in a.seqs if s in users}))) for a in found]


def _grouped(kind: str, title: str, client: str, group: _Group, detail: str) -> Anomaly:
    assert group.first is not None
    assert group.last is not None
    return Anomaly(
        kind, title, client, group.organisation, group.count, group.first, group.last, tuple(group.seqs or ()), detail
    )


def _volume(
    per_day: dict[tuple[str, date], int],
    day_seqs: dict[tuple[str, date], list[int]],
    orgs: dict[str, str | None],
    since: datetime,
    until: datetime,
    t: Thresholds,
    zone: ZoneInfo,
) -> list[Anomaly]:
    found: list[Anomaly] = []
    first_day = since.astimezone(zone).date()
    for (client, day), count in per_day.items():
        if day < first_day or count < t.volume_min_requests:
            continue
        baseline = sum(per_day.get((client, day - timedelta(days=d)), 0) for d in range(1, t.baseline_days + 1))
        usual = baseline / t.baseline_days
        if count <= t.volume_factor * usual:
            continue
        start = datetime.combine(day, datetime.min.time(), zone)
        usual_text = f"a usual {usual:.1f} per day" if usual else "no requests at all"
        found.append(
            Anomaly(
                "volume",
                N_("Volume far above the client's usual"),
                client,
                orgs.get(client),
                count,
                max(start, since),
                min(start + timedelta(days=1), until),
                tuple(day_seqs.get((client, day), ())),
                f"{count} requests on {day.isoformat()} against {usual_text} in the {t.baseline_days} days before "
                f"(threshold: more than {t.volume_factor:g} times usual and at least {t.volume_min_requests}).",
                facts={"day": day, "usual": round(usual, 1)},
            )
        )
    return found
