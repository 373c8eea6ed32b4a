"""Once a covenant and its aftercare ended, the clients of parties nothing serves any more are disabled,
and logged; during the aftercare they stay enabled (their tokens carry oversight roles only)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from gateway.auth.model import Status
from gateway.lifecycle.events import Actor
from gateway.lifecycle.facts import covenant_end_facts
from gateway.store.tables import audit_entries
from tests.conftest import AMS, Gateway

NEW_YEAR = datetime(2025, 1, 1, 0, 0, tzinfo=AMS)
AFTERCARE_ENDED = datetime(2026, 7, 1, 0, 0, tzinfo=AMS)


def register_clients(gw: Gateway) -> None:
    jwks = json.loads(gw.minter.jwks_path.read_text())
    registry = gw.container.auth.registry
    for client_id, org, roles in [
        ("ams-cvs", "amsterdam", ("case_manager", "jurist")),
        ("ind-case", "ind", ("ind_officer",)),
        ("utr-cvs", "utrecht", ("case_manager",)),
        ("opvang-utr", "ngo-opvang-utrecht", ("counsellor",)),
        ("opvang-ams", "ngo-opvang-amsterdam", ("counsellor",)),
    ]:
        registry.register(client_id, org, roles, jwks={"keys": jwks["keys"][:1]})


def statuses(gw: Gateway) -> dict[str, tuple[Status, str | None]]:
    return {c.client_id: (c.status, c.status_reason) for c in gw.container.auth.registry.clients()}


def sweep(gw: Gateway) -> list[str]:
    assert gw.container.lifecycle is not None
    assert gw.container.lifecycle.covenant_end is not None
    return gw.container.lifecycle.covenant_end.sweep()


def test_before_the_end_no_client_is_disabled(gateway: Gateway) -> None:
    register_clients(gateway)
    assert sweep(gateway) == []
    assert all(status is Status.ACTIVE for status, _ in statuses(gateway).values())


def test_during_the_aftercare_the_sweep_leaves_every_client_enabled(gateway: Gateway) -> None:
    register_clients(gateway)
    gateway.clock.set(NEW_YEAR)
    assert sweep(gateway) == []
    gateway.clock.set(AFTERCARE_ENDED - timedelta(seconds=1))
    assert sweep(gateway) == []
    assert all(status is Status.ACTIVE for status, _ in statuses(gateway).values())


def test_after_the_aftercare_clients_of_parties_without_a_covenant_are_disabled_naming_the_covenant(
    gateway: Gateway,
) -> None:
    register_clients(gateway)
    gateway.clock.set(AFTERCARE_ENDED)
    assert sorted(sweep(gateway)) == ["ams-cvs", "ind-case", "opvang-ams"]
    after = statuses(gateway)
    assert after["utr-cvs"][0] is Status.ACTIVE  # Utrecht continues locally
    assert after["opvang-utr"][0] is Status.ACTIVE
    assert after["ams-cvs"] == (Status.DISABLED, "covenant end: lvv-amsterdam; no covenant in force")
    assert "lvv-rotterdam" in (after["ind-case"][1] or "")
    assert sweep(gateway) == []  # idempotent
    with gateway.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry)).scalars()
        disabled = [e for e in map(json.loads, rows) if e["event"] == "covenant.client_disabled"]
    assert sorted(e["disabled_client"] for e in disabled) == ["ams-cvs", "ind-case", "opvang-ams"]
    policy = gateway.container.lifecycle.holder.current  # type: ignore[union-attr]
    facts = covenant_end_facts(gateway.container.db, policy, "lvv-amsterdam", NEW_YEAR)
    assert facts.ended


def test_a_city_with_a_running_appeal_keeps_its_client_until_the_hold_is_lifted(gateway: Gateway) -> None:
    register_clients(gateway)
    p = gateway.register()
    ref = gateway.container.store.resolve("amsterdam", p)
    assert ref is not None
    assert gateway.container.lifecycle is not None
    service = gateway.container.lifecycle.service
    hold = service.set_hold(Actor.jurist("amsterdam", "jurist.1"), ref.id, "appeal", "AWB 25/1 (synthetic)")
    gateway.clock.set(AFTERCARE_ENDED)
    assert "ams-cvs" not in sweep(gateway)
    service.lift_hold(Actor.jurist("amsterdam", "jurist.1"), hold.id, "Judgment final")
    assert sweep(gateway) == ["ams-cvs"]
