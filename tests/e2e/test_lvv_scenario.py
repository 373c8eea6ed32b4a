"""The LVV end, as one scenario on the injected clock (SQLite and PostgreSQL).

From 2024-12-31 23:59:59 through 2025-01-01 and on through the retention periods: the five city
covenants end and their mandates are withdrawn; the local Utrecht covenant goes on for its own parties
only; the rijkspartners are refused from the first second; a participant with an appeal keeps their
data, for the appeal only; an objection decided later restarts that participant's retention clock;
everything else is destroyed on schedule by retention runs at the due dates. The last test issues the
signed revocation reports and destruction records and checks each with `gateway verify` (and a
tampered one failing it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.lifecycle.events import Actor
from gateway.lifecycle.facts import covenant_end_facts, destruction_facts
from gateway.lifecycle.model import LegalHold
from gateway.retention.model import KeepReason
from gateway.store.tables import data_keys
from tests.conftest import AMS, Gateway, synthetic_records

CITIES = ("amsterdam", "rotterdam", "utrecht", "groningen", "eindhoven")
LAST_SECOND = datetime(2024, 12, 31, 23, 59, 59, tzinfo=AMS)
NEW_YEAR = datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS)
AUTHORITY = "Vernietigingsbesluit LVV-gateway 2025 (synthetic example)"
ARCHIVIST = Actor("amsterdam", "archivist.1", "jurist")


def jurist(city: str) -> Actor:
    return Actor.jurist(city, f"jurist.{city}")


@dataclass
class World:
    gw: Gateway
    people: dict[str, str]  # name -> the city's pseudonym
    city_of: dict[str, str]
    holds: dict[str, LegalHold] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)

    def pid(self, name: str) -> str:
        ref = self.gw.container.store.resolve(self.city_of[name], self.people[name])
        assert ref is not None
        return ref.id

    def as_(self, org: str, name: str) -> str:
        return self.gw.pseudonym_for(org, self.people[name], self.city_of[name])

    def read(self, org: str, role: str, purpose: str, name: str) -> httpx.Response:
        pseudonym = self.people[name] if org == self.city_of[name] else self.as_(org, name)
        return self.gw.http.get(f"/v1/participants/{pseudonym}", headers=self.gw.headers(org, role, purpose))

    def status(self, org: str, role: str, purpose: str, name: str) -> tuple[int, str | None]:
        response = self.read(org, role, purpose, name)
        return response.status_code, (response.json().get("code") if response.status_code != 200 else None)

    def live(self, name: str) -> set[str]:
        with self.gw.container.db.read.connect() as conn:
            rows = conn.execute(
                select(data_keys.c.category).where(
                    data_keys.c.participant_id == self.pid(name), data_keys.c.wrapped_key.is_not(None)
                )
            )
            return set(rows.scalars())

    def at(self, moment: datetime) -> None:
        self.gw.clock.set(moment)

    def retention_run(self) -> None:
        assert self.gw.container.lifecycle is not None
        outcome = self.gw.container.lifecycle.retention.run(ARCHIVIST, AUTHORITY)
        assert outcome.status == "completed"
        self.runs.append(outcome.run_id)


def write(
    gw: Gateway, org: str, role: str, purpose: str, pseudonym: str, category: str, fields: dict[str, Any]
) -> None:
    response = gw.http.put(
        f"/v1/participants/{pseudonym}/records/{category}",
        json={"fields": fields},
        headers=gw.headers(org, role, purpose),
    )
    assert response.status_code == 200, response.text


def build_world(gw: Gateway) -> World:
    """Synthetic participants in every city, in force in November 2024; holds and mandate withdrawals."""
    people: dict[str, str] = {}
    city_of: dict[str, str] = {}
    for n, (name, city) in enumerate(
        [
            ("ams-appeal", "amsterdam"),
            ("ams-plain", "amsterdam"),
            ("rot-objection", "rotterdam"),
            ("utr-local", "utrecht"),
            ("gro-plain", "groningen"),
            ("ein-plain", "eindhoven"),
        ],
        start=1,
    ):
        people[name] = gw.register(city, synthetic_records(n))
        city_of[name] = city
    world = World(gw, people, city_of)
    # AVIM's screening (criminal data, destroyed at the end itself) and DT&V's return track.
    write(gw, "avim", "screening_officer", "police_screening", world.as_("avim", "ams-plain"), "screening",
          {"no_show_count": 1, "last_screening_date": "2024-10-01"})  # fmt: skip
    write(gw, "dtv", "return_officer", "return_support", world.as_("dtv", "ams-plain"), "return_track",
          {"return_willingness": "exploring"})  # fmt: skip
    assert gw.container.lifecycle is not None
    service = gw.container.lifecycle.service
    world.holds["ams-appeal"] = service.set_hold(
        jurist("amsterdam"), world.pid("ams-appeal"), "appeal", "AWB 24/9001 (synthetic)"
    )
    world.holds["rot-objection"] = service.set_hold(
        jurist("rotterdam"), world.pid("rot-objection"), "objection", "BZW 24/0301 (synthetic)"
    )
    # The mandates are withdrawn as of the covenants' end, recorded well before it.
    world.at(datetime(2024, 12, 20, 10, 0, tzinfo=AMS))
    for city in ("amsterdam", "rotterdam", "utrecht"):
        service.withdraw_mandate(
            jurist(city), f"mandaat-lvv-{city}", NEW_YEAR, "LVV covenant ends", f"Intrekkingsbesluit {city} 2024"
        )
    return world


@pytest.fixture
def world(gateway: Gateway) -> World:
    return build_world(gateway)


def walk_through_the_end(world: World) -> None:
    """The last second of 2024 and the first second of 2025."""
    world.at(LAST_SECOND)
    assert world.status("ind", "ind_officer", "identity_nationality", "ams-plain") == (200, None)
    assert world.status("dtv", "return_officer", "return_support", "ams-plain") == (200, None)
    assert world.status("avim", "screening_officer", "police_screening", "ams-plain") == (200, None)
    assert world.status("ngo-opvang-amsterdam", "counsellor", "shelter_counselling", "ams-plain") == (200, None)
    assert world.status("amsterdam", "case_manager", "lso_case_discussion", "ams-plain") == (200, None)
    assert world.status("utrecht", "case_manager", "lso_case_discussion", "utr-local") == (200, None)

    world.at(NEW_YEAR)
    for org, role, purpose in [
        ("ind", "ind_officer", "identity_nationality"),
        ("dtv", "return_officer", "return_support"),
        ("avim", "screening_officer", "police_screening"),
    ]:
        for name in ("ams-plain", "utr-local", "gro-plain"):
            assert world.status(org, role, purpose, name) == (403, "no_covenant_in_force"), (org, name)
    for name, city in [("ams-plain", "amsterdam"), ("gro-plain", "groningen"), ("ein-plain", "eindhoven")]:
        assert world.status(city, "case_manager", "lso_case_discussion", name) == (403, "no_covenant_in_force")
    assert world.status("ngo-opvang-amsterdam", "counsellor", "shelter_counselling", "ams-plain")[0] == 403

    # Utrecht continues locally, for its own parties only, without police data.
    local = world.read("utrecht", "case_manager", "lso_case_discussion", "utr-local")
    assert local.status_code == 200
    assert local.json()["audit"]["rule_ids"] == ["local-lso-city-read"]
    assert "screening" not in local.json()["records"]
    assert world.status("ngo-opvang-utrecht", "counsellor", "shelter_counselling", "utr-local") == (200, None)
    assert world.status("ngo-terugkeer", "return_counsellor", "return_support", "utr-local")[0] == 403

    # The appeal goes on: read for the legal procedure only.
    appeal = world.read("amsterdam", "jurist", "legal_procedure", "ams-appeal")
    assert appeal.status_code == 200
    assert appeal.json()["audit"]["rule_ids"] == ["legal-procedure-city-read"]
    assert world.status("amsterdam", "jurist", "legal_procedure", "ams-plain") == (403, "no_covenant_in_force")
    assert world.status("amsterdam", "case_manager", "lso_case_discussion", "ams-appeal")[0] == 403


def walk_through_retention(world: World) -> None:
    """Retention runs at the due dates of the LVV retention rules."""
    base = {"identity", "contact", "case_plan"}
    world.retention_run()  # 2025-01-01 00:00: screening and medical data go at the end itself (P0D)
    assert world.live("ams-plain") == base | {"return_track"}
    assert world.live("ams-appeal") == base

    world.at(datetime(2025, 4, 1, 0, 0, tzinfo=AMS))  # three months: contact, return track
    world.retention_run()
    assert world.live("ams-plain") == {"identity", "case_plan"}
    assert world.live("gro-plain") == {"identity", "case_plan"}
    assert world.live("rot-objection") == base  # on hold

    # The objection is decided: the hold is lifted and the clock restarts at that moment.
    lifted_at = datetime(2025, 5, 15, 11, 0, tzinfo=AMS)
    world.at(lifted_at)
    assert world.gw.container.lifecycle is not None
    world.gw.container.lifecycle.service.lift_hold(
        jurist("rotterdam"), world.holds["rot-objection"].id, "Objection decided; decision final"
    )

    world.at(datetime(2025, 7, 1, 0, 0, tzinfo=AMS))  # six months: identity, case plan
    world.retention_run()
    for name in ("ams-plain", "gro-plain", "ein-plain"):
        assert world.live(name) == set(), name
    assert world.live("rot-objection") == base  # its clock restarted on 15 May
    assert world.live("ams-appeal") == base  # the appeal runs
    assert world.live("utr-local") == base  # the local covenant runs

    world.at(lifted_at + timedelta(days=92))  # 15 August: three months after the objection was decided
    world.retention_run()
    assert world.live("rot-objection") == {"identity", "case_plan"}
    world.at(datetime(2025, 11, 15, 11, 0, tzinfo=AMS))
    world.retention_run()
    assert world.live("rot-objection") == set()

    # Still under appeal after all periods passed: kept, and read for the appeal only.
    assert world.live("ams-appeal") == base
    assert world.status("amsterdam", "jurist", "legal_procedure", "ams-appeal") == (200, None)

    world.at(datetime(2026, 1, 1, 0, 0, tzinfo=AMS))  # the local covenant ends too
    assert world.status("utrecht", "case_manager", "lso_case_discussion", "utr-local") == (403, "no_covenant_in_force")
    world.at(datetime(2026, 7, 1, 0, 0, tzinfo=AMS))
    world.retention_run()
    assert world.live("utr-local") == set()
    assert world.live("ams-appeal") == base


def test_the_lvv_covenants_end_and_everything_not_under_appeal_is_destroyed_on_schedule(world: World) -> None:
    walk_through_the_end(world)
    walk_through_retention(world)

    gw = world.gw
    policy = gw.container.lifecycle.holder.current  # type: ignore[union-attr]
    facts = covenant_end_facts(gw.container.db, policy, "lvv-amsterdam", gw.clock.now())
    assert facts.ended
    assert facts.effective_end == NEW_YEAR
    assert facts.attempts_served_under_this_covenant == 0
    assert facts.attempts_denied >= 3
    assert facts.attempts_for_legal_hold_procedure == 2  # the appeal read at the end and in November
    assert all(a.outcome != "served_under_this_covenant" for a in facts.attempts_after_end)
    assert [h.hold.case_reference for h in facts.holds_kept] == ["AWB 24/9001 (synthetic)"]
    assert facts.holds_kept[0].categories_kept == ("case_plan", "contact", "identity")
    (mandate,) = facts.mandates
    assert mandate.withdrawal is not None
    assert mandate.effective_end == NEW_YEAR
    assert "legal-procedure-city-read" in facts.rules_after_end_under_hold

    first = destruction_facts(gw.container.db, policy, world.runs[0])
    assert {c.category for c in first.categories} == {"screening"}
    assert first.as_of == NEW_YEAR
    kept = {(k.category, k.reason) for k in first.kept}
    assert ("identity", KeepReason.ON_HOLD) in kept
    assert ("identity", KeepReason.NOT_DUE) in kept
    total = sum(destruction_facts(gw.container.db, policy, run).keys_destroyed for run in world.runs)
    assert total == 5 * 3 + 2  # five participants' base categories, plus screening and return track


def test_every_report_and_destruction_record_of_the_scenario_verifies_and_a_tampered_one_does_not(
    world: World, tmp_path: Path
) -> None:
    """Part B (signed evidence and `gateway verify`) is exercised on the scenario's own facts."""
    from gateway.cli import main
    from gateway.evidence.keys import jwks, published_keys
    from gateway.evidence.parts import evidence_parts

    walk_through_the_end(world)
    walk_through_retention(world)
    gw = world.gw
    service = evidence_parts(gw.container).service
    assert service.signer is not None, "the key dir holds no evidence signing key"
    documents = [service.issue_revocation_report(f"lvv-{city}", requested_by="jurist.scenario") for city in CITIES]
    documents += [service.issue_destruction_record(run, requested_by="jurist.scenario") for run in world.runs]
    keys = tmp_path / "evidence-keys.json"
    keys.write_text(json.dumps(jwks(published_keys(gw.container.settings.key_dir))))
    files = []
    for doc in documents:
        path = tmp_path / f"{doc.type}-{doc.subject}.json"
        path.write_bytes(doc.signed_json)
        files.append(path)
    assert main(["verify", *map(str, files), "--keys", str(keys)]) == 0

    report = json.loads(files[0].read_bytes())
    assert "lvv-amsterdam" in json.dumps(report)
    tampered = tmp_path / "tampered.json"
    data = files[0].read_bytes()
    at = data.index(b"lvv-amsterdam")
    tampered.write_bytes(data[:at] + b"lvv-amsterdan" + data[at + len(b"lvv-amsterdam") :])
    assert main(["verify", str(tampered), "--keys", str(keys)]) == 1
