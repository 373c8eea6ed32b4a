"""Synthetic demo participants, registered through the same audited path as any partner's intake.

Everything here is invented: names are 'Synthetisch-NNN', V-numbers 'DEMO-V-NNNNN'. Never real data.
Every registration records the intake decision: most are admitted; a few are refused (for lack of
regional ties, a Dublin claim or another reason) and then get no case and no partner records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway.container import Container
from gateway.exchange.context import Principal, RequestContext, TraceContext

CITIES = ("amsterdam", "rotterdam", "utrecht", "groningen", "eindhoven")
NATIONALITIES = ("XXA", "XXB", "XXC", "XXX")  # ISO 3166 user-assigned / unknown codes, never real countries
LANGUAGES = ("en", "fr", "ar", "ti", "fa")
REFUSED_SHARE = 0.2  # of the registrations after the first of each city (that one is always admitted)
REFUSAL_REASONS = ("regiobinding", "dublinclaim", "overig")
REFUSAL_WEIGHTS = (3, 2, 1)  # mostly for lack of regional ties, then a Dublin claim (DOMAIN.md)


@dataclass(frozen=True)
class Seeded:
    participants: int
    example: dict[str, str]  # organisation -> pseudonym of one Amsterdam participant


def _ctx(org: str, role: str, purpose: str) -> RequestContext:
    principal = Principal(organisation=org, client_id=f"demo-seed-{org}", token_id="demo-seed", expires_at=0)
    return RequestContext(principal, "demo-seed", role, purpose, TraceContext.from_header(None))


def _person(rng: random.Random, n: int) -> dict[str, dict[str, Any]]:
    birth = date(1970, 1, 1) + timedelta(days=rng.randrange(0, 12000))
    return {
        "identity": {
            "v_number": f"DEMO-V-{n:05d}",
            "family_name": f"Synthetisch-{n:03d}",
            "given_names": "Demo",
            "birth_date": birth.isoformat(),
            "nationality": rng.choice(NATIONALITIES),
            "language": rng.choice(LANGUAGES),
        },
        "contact": {"shelter_location": f"Demo-opvang {rng.randint(1, 9)}", "phone": "+31 6 00000000"},
        "case_plan": {
            "phase": rng.choice(["onderzoeksfase", "opvangfase"]),
            "perspective": rng.choice(["legal_stay", "return", "onward_migration", "undetermined"]),
            "plan_summary": "Synthetic plan for the demo.",
            "next_lso_date": (date(2024, 12, 1) + timedelta(days=rng.randrange(0, 60))).isoformat(),
        },
    }


def _intake(decisions: random.Random, first: bool, day: date) -> dict[str, Any]:
    """Return the intake decision of one registration: admitted, or refused with a reason."""
    if first or decisions.random() >= REFUSED_SHARE:
        return {"admission_decision": "toegelaten", "intake_date": day.isoformat()}
    reason = decisions.choices(REFUSAL_REASONS, REFUSAL_WEIGHTS)[0]
    return {"admission_decision": "afgewezen", "refusal_reason": reason, "intake_date": day.isoformat()}


async def seed(container: Container, per_city: int = 4, rng_seed: int = 2024) -> Seeded:
    """Register `per_city` synthetic people per city with their intake decision; partner records for the admitted."""
    rng = random.Random(rng_seed)
    # A generator of its own: the decisions do not depend on how many values the records drew.
    decisions = random.Random(f"intake-{rng_seed}")
    service = container.exchange
    example: dict[str, str] = {}
    n = 0
    for city in CITIES:
        for i in range(per_city):
            n += 1
            records = _person(rng, n)
            records["intake"] = _intake(decisions, i == 0, container.clock.now().date())
            if records["intake"]["admission_decision"] == "afgewezen":
                # Refused: only who reported and the decision (an objection would need them); no case.
                refused = {"identity": records["identity"], "intake": records["intake"]}
                await service.register(_ctx(city, "intake_officer", "intake"), city, refused)
                continue
            written = await service.register(_ctx(city, "intake_officer", "intake"), city, records)
            if city == "amsterdam" and not example:
                participant_id = container.store.resolve(city, written.pseudonym)
                assert participant_id is not None
                example = {
                    org: container.store.pseudonym(org, participant_id.id) for org in container.policy.organisations
                }
            pid = written.pseudonym
            ind_pid = _translate(container, city, pid, "ind")
            await service.write(
                _ctx("ind", "ind_officer", "identity_nationality"),
                ind_pid,
                "immigration_procedure",
                {"procedure_type": "asylum", "procedure_status": rng.choice(["rejected", "pending"])},
            )
            await service.write(
                _ctx("ind", "ind_officer", "identity_nationality"),
                ind_pid,
                "identity_doubt",
                {"identity_in_doubt": rng.random() < 0.3, "nationality_in_doubt": rng.random() < 0.3},
            )
            await service.write(
                _ctx("avim", "screening_officer", "police_screening"),
                _translate(container, city, pid, "avim"),
                "screening",
                {"no_show_count": rng.randint(0, 2), "signals": "none"},
            )
            await service.write(
                _ctx("dtv", "return_officer", "return_support"),
                _translate(container, city, pid, "dtv"),
                "return_track",
                {"return_willingness": rng.choice(["unknown", "considering", "willing"])},
            )
    return Seeded(n, example)


def _translate(container: Container, org: str, pseudonym: str, to_org: str) -> str:
    ref = container.store.resolve(org, pseudonym)
    assert ref is not None
    return container.store.pseudonym(to_org, ref.id)
