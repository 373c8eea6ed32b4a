"""Brokered reads and writes over real HTTP on loopback: the gateway decides and logs, then asks a
simulated partner source system, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from sqlalchemy import select

from gateway.api.app import create_app
from gateway.audit.chain import verify_chain
from gateway.clock import FixedClock
from gateway.connectors.client_auth import connector_key, public_jwks
from gateway.connectors.simulators import Received, SourceSystemSim, city_cvs, free_port
from gateway.container import build
from gateway.store.tables import audit_entries
from tests.conftest import IN_FORCE, LVV_CONFIG, Gateway, make_settings, synthetic_records
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

PROBLEM = "application/problem+json"
CALLER_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HELD = {"phase": "onderzoeksfase", "perspective": "undetermined", "plan_summary": "synthetic plan", "internal": "x"}


@dataclass
class Brokered:
    gw: Gateway
    cvs: SourceSystemSim


def fast_config(tmp_path: Path) -> Path:
    """Return a copy of the LVV configuration whose CVS connector gives up quickly (tests wait less)."""
    target = tmp_path / "config"
    shutil.copytree(LVV_CONFIG, target)
    sources = yaml.safe_load((target / "sources.yaml").read_text())
    for source in sources:
        if source["id"] == "cvs-amsterdam":
            source["endpoint"].update(timeout_seconds=0.5, retries=1, breaker_failures=3, breaker_reset_seconds=60)
    (target / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True))
    return target


@pytest.fixture
def brokered(database_url: str, tmp_path: Path, minter: TokenMinter) -> Iterator[Brokered]:
    key_dir = tmp_path / "keys"
    jwks = public_jwks(connector_key(key_dir))
    with city_cvs(jwks) as cvs:
        settings = make_settings(
            database_url,
            key_dir,
            minter,
            config_dir=fast_config(tmp_path),
            connector_urls={"cvs-amsterdam": cvs.url},
        )
        clock = FixedClock(IN_FORCE)
        container = build(settings, clock)
        with LiveServer(create_app(container=container)) as server, httpx.Client(base_url=server.url, timeout=30) as h:
            yield Brokered(Gateway(container, clock, minter, server.url, h), cvs)
        container.close()


def entry(gw: Gateway, seq: int) -> dict[str, object] | None:
    with gw.container.db.read.connect() as conn:
        row = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).first()
    return None if row is None else orjson.loads(row.entry)


def last_entries(gw: Gateway, n: int) -> list[dict[str, object]]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq.desc()).limit(n)).all()
    return [orjson.loads(r.entry) for r in reversed(rows)]


def register_at_source(b: Brokered) -> str:
    """Register a participant; its case plan goes to the city's CVS, which then holds more than is asked."""
    p = b.gw.register()
    ref = next(iter(b.cvs.state.records))
    b.cvs.state.put(ref, "case_plan", HELD, version=3)
    b.cvs.state.received.clear()
    return p


def read(b: Brokered, purpose: str, p: str, **headers: str) -> httpx.Response:
    return b.gw.http.get(f"/v1/participants/{p}", headers=b.gw.headers("amsterdam", "case_manager", purpose, **headers))


def test_a_registration_writes_the_brokered_category_at_the_source_and_nothing_of_it_centrally(
    brokered: Brokered,
) -> None:
    p = brokered.gw.register()
    [(ref, held)] = brokered.cvs.state.records.items()
    assert ref == p  # the city's own pseudonym: the CVS is the city's system
    assert held["case_plan"]["fields"]["plan_summary"] == "synthetic"
    [put] = brokered.cvs.state.received
    assert put.method == "PUT"
    assert put.headers["idempotency-key"]
    with brokered.gw.container.db.read.connect() as conn:
        from gateway.store.tables import records

        stored = {r.category for r in conn.execute(select(records.c.category)).all()}
    assert "case_plan" not in stored
    assert {"identity", "contact"} <= stored


def test_a_registration_whose_source_fails_registers_no_one_and_stores_nothing(brokered: Brokered) -> None:
    from gateway.store.tables import participants, pseudonyms, records

    def counts() -> tuple[int, int, int]:
        with brokered.gw.container.db.read.connect() as conn:
            return tuple(  # type: ignore[return-value]
                len(conn.execute(select(t)).all()) for t in (participants, pseudonyms, records)
            )

    before = counts()
    brokered.cvs.state.mode = "error"
    body = {"region": "amsterdam", "records": synthetic_records()}
    headers = brokered.gw.headers("amsterdam", "intake_officer", "intake")
    response = brokered.gw.http.post("/v1/participants", json=body, headers=headers)
    assert response.status_code == 502, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "source_error"
    assert "participant" not in response.json()
    assert counts() == before  # no participant, no pseudonym, no hosted record: no half registration
    permit, failed = last_entries(brokered.gw, 2)
    assert (permit["event"], permit["decision"]) == ("exchange.register", "permit")
    assert failed["event"] == "exchange.register.source_failed"
    assert failed["released"] is False
    # The source is back: the same registration is done whole, with its brokered category at the source.
    brokered.cvs.state.mode = "ok"
    again = brokered.gw.http.post("/v1/participants", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert counts()[0] == before[0] + 1
    assert again.json()["participant"] in brokered.cvs.state.records
    assert verify_chain(brokered.gw.container.db).ok


def test_a_brokered_read_returns_only_the_permitted_fields_though_the_source_returns_more(brokered: Brokered) -> None:
    p = register_at_source(brokered)
    response = read(brokered, "shelter_counselling", p)
    assert response.status_code == 200, response.text
    case_plan = response.json()["records"]["case_plan"]
    assert case_plan["fields"] == {"phase": "onderzoeksfase"}
    assert case_plan["version"] == 3
    assert case_plan["source"] == "amsterdam"
    assert "synthetic plan" not in response.text
    assert "internal" not in response.text
    [call] = brokered.cvs.state.received
    assert call.query["fields"] == "case_plan.phase,case_plan.next_lso_date"  # what the rule permits, no more
    assert call.query["categories"] == "case_plan"


def test_the_source_receives_purpose_trace_and_the_audit_entry_that_permitted_the_call(brokered: Brokered) -> None:
    p = register_at_source(brokered)
    response = read(brokered, "lso_case_discussion", p, traceparent=CALLER_TRACE)
    assert response.status_code == 200, response.text
    [call] = brokered.cvs.state.received
    assert call.headers["processing-purpose"] == "lso_case_discussion"
    assert call.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert not call.headers["traceparent"].endswith("-00f067aa0ba902b7-01")  # the gateway's own span
    assert call.headers["ldv-foreign-entity"] == "urn:nl:oin:00000099000000000001"
    assert call.headers["ldv-processing-activity-id"]
    origin, seq = call.headers["ldv-audit-entry"].rsplit("#", 1)
    assert origin == brokered.gw.container.settings.audit_origin
    assert int(seq) == response.json()["audit"]["seq"]
    logged = entry(brokered.gw, int(seq))
    assert logged is not None
    assert logged["decision"] == "permit"
    assert logged["brokered_from"] == {"case_plan": "cvs-amsterdam"}
    assert logged["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert call.headers["authorization"].startswith("Bearer ")  # private_key_jwt token from the CVS


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("slow", 504, "source_timeout"),
        ("garbage", 502, "source_bad_answer"),
        ("wrong_shape", 502, "source_bad_answer"),
        ("error", 502, "source_error"),
    ],
)
def test_a_misbehaving_source_gives_a_gateway_error_releases_nothing_and_is_logged_first(
    brokered: Brokered, mode: str, status: int, code: str
) -> None:
    p = register_at_source(brokered)
    seen_before_call: list[dict[str, object] | None] = []

    def check(received: Received) -> None:
        seen_before_call.append(entry(brokered.gw, int(received.headers["ldv-audit-entry"].rsplit("#", 1)[1])))

    brokered.cvs.state.on_request = check
    brokered.cvs.state.mode, brokered.cvs.state.delay_seconds = mode, 3.0
    response = read(brokered, "lso_case_discussion", p)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == code
    assert problem["source"] == "cvs-amsterdam"
    assert "onderzoeksfase" not in response.text
    assert "Synthetisch" not in response.text  # not even the hosted categories of the same request
    assert seen_before_call
    assert all(e is not None and e["decision"] == "permit" for e in seen_before_call)
    permit, failed = last_entries(brokered.gw, 2)
    assert failed["event"] == "exchange.read.source_failed"
    assert failed["released"] is False
    assert failed["decision"] == "deny"
    assert failed["reason"] == code
    permit_seq = int(brokered.cvs.state.received[0].headers["ldv-audit-entry"].rsplit("#", 1)[1])
    assert failed["decision_seq"] == permit_seq
    assert permit["decision"] == "permit"
    assert problem["audit_seq"] == permit_seq + 1
    assert verify_chain(brokered.gw.container.db).ok


def test_a_source_that_is_down_gives_502_and_the_log_says_nothing_left(
    database_url: str, tmp_path: Path, minter: TokenMinter
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = make_settings(
        database_url,
        tmp_path / "keys",
        minter,
        config_dir=fast_config(tmp_path),
        connector_urls={"cvs-amsterdam": dead},
    )
    container = build(settings, FixedClock(IN_FORCE))
    try:
        with LiveServer(create_app(container=container)) as server, httpx.Client(base_url=server.url, timeout=30) as h:
            gw = Gateway(container, FixedClock(IN_FORCE), minter, server.url, h)
            body = {"region": "amsterdam", "records": {"identity": {"family_name": "Synthetisch-009"}}}
            created = h.post("/v1/participants", json=body, headers=gw.headers("amsterdam", "intake_officer", "intake"))
            assert created.status_code == 201, created.text
            p = created.json()["participant"]
            response = h.get(
                f"/v1/participants/{p}", headers=gw.headers("amsterdam", "case_manager", "lso_case_discussion")
            )
            assert response.status_code == 502
            assert response.json()["code"] == "source_unreachable"
            assert "Synthetisch" not in response.text
            permit, failed = last_entries(gw, 2)
            assert permit["decision"] == "permit"
            assert failed["released"] is False
            assert failed["source"] == "cvs-amsterdam"
    finally:
        container.close()


def test_the_circuit_breaker_stops_calling_a_source_that_keeps_failing(brokered: Brokered) -> None:
    p = register_at_source(brokered)
    brokered.cvs.state.mode = "error"
    codes = [read(brokered, "lso_case_discussion", p).json()["code"] for _ in range(4)]
    assert codes[:3] == ["source_error"] * 3
    assert codes[3] == "source_circuit_open"
    assert len(brokered.cvs.state.received) == 3  # a 500 is not retried (only 502/503/504 are); then none


def test_a_brokered_write_is_applied_once_per_idempotency_key(brokered: Brokered) -> None:
    p = register_at_source(brokered)
    headers = brokered.gw.headers("amsterdam", "case_manager", "intake", **{"Idempotency-Key": "case-plan-0001"})
    body = {"fields": {"phase": "terugkeerfase"}}
    first = brokered.gw.http.put(f"/v1/participants/{p}/records/case_plan", json=body, headers=headers)
    again = brokered.gw.http.put(f"/v1/participants/{p}/records/case_plan", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["versions"] == again.json()["versions"] == {"case_plan": 4}
    assert [r.body for r in brokered.cvs.state.received] == [body, body]
    assert (
        brokered.cvs.state.received[0].headers["idempotency-key"]
        == brokered.cvs.state.received[1].headers["idempotency-key"]
    )
    ref = next(iter(brokered.cvs.state.records))
    assert brokered.cvs.state.records[ref]["case_plan"]["version"] == 4


def test_a_revoked_covenant_stops_brokered_access_at_its_second_and_pauses_its_connectors(brokered: Brokered) -> None:
    from datetime import datetime, timedelta

    from gateway.evidence import documents
    from gateway.lifecycle.events import Actor
    from tests.conftest import AMS

    p = register_at_source(brokered)
    gw = brokered.gw
    assert gw.container.lifecycle is not None
    assert gw.container.evidence is not None
    effective = datetime(2024, 12, 1, 12, 0, 0, tzinfo=AMS)
    gw.container.lifecycle.service.revoke_covenant(
        Actor.jurist("amsterdam", "jurist.1"), "lvv-amsterdam", effective, "Early end agreed", "B&W 2024/90"
    )
    gw.clock.set(effective - timedelta(seconds=1))
    assert read(brokered, "lso_case_discussion", p).status_code == 200
    assert len(brokered.cvs.state.received) == 1
    gw.clock.set(effective)
    refused = read(brokered, "lso_case_discussion", p)
    assert refused.status_code == 403
    assert refused.json()["code"] == "no_covenant_in_force"
    assert len(brokered.cvs.state.received) == 1  # the source was not called at or after the end
    sources = gw.container.exchange.sources
    assert sources is not None
    states = {s.source: s for s in sources.states(gw.clock.now())}
    assert states["cvs-amsterdam"].paused
    assert states["cvs-amsterdam"].paused_since == effective
    assert not states["dtv-zaaksysteem"].paused  # it serves the other cities' covenants still
    facts, extras = gw.container.evidence.service.covenant_facts("lvv-amsterdam")
    report = documents.revocation_report(facts, extras, "doc-1", gw.clock.now(), 1, "test", "Europe/Amsterdam")
    listed = {c["source"]: c for c in report["connectors"]}
    assert set(listed) == {"cvs-amsterdam", "dtv-zaaksysteem", "ngo-opvang-amsterdam-csv"}
    assert listed["cvs-amsterdam"]["paused"] is True
    assert listed["cvs-amsterdam"]["paused_since"] == "2024-12-01T11:00:00Z"
    assert listed["dtv-zaaksysteem"]["still_serving"] == [
        "lvv-rotterdam",
        "lvv-utrecht",
        "lvv-groningen",
        "lvv-eindhoven",
    ]


def test_a_read_that_reaches_no_brokered_category_neither_calls_nor_names_the_source(brokered: Brokered) -> None:
    p = register_at_source(brokered)
    response = brokered.gw.http.get(
        f"/v1/participants/{p}",
        headers=brokered.gw.headers("amsterdam", "case_manager", "lso_case_discussion"),
        params={"categories": "identity"},
    )
    assert response.status_code == 200, response.text
    assert set(response.json()["records"]) == {"identity"}
    assert brokered.cvs.state.received == []
    assert "brokered_from" not in last_entries(brokered.gw, 1)[0]


def test_a_read_is_retried_with_backoff_when_the_source_is_briefly_unavailable(brokered: Brokered) -> None:
    p = register_at_source(brokered)
    brokered.cvs.state.unavailable_next = 1
    response = read(brokered, "lso_case_discussion", p)
    assert response.status_code == 200, response.text
    assert response.json()["records"]["case_plan"]["fields"]["phase"] == "onderzoeksfase"
    first, second = brokered.cvs.state.received
    assert first.headers["ldv-audit-entry"] == second.headers["ldv-audit-entry"]  # one decision, two attempts
    assert last_entries(brokered.gw, 1)[0]["event"] == "exchange.read"  # no failure was logged


def test_a_withdrawn_mandate_stops_the_brokered_read_at_its_second(brokered: Brokered) -> None:
    from datetime import datetime, timedelta

    from gateway.lifecycle.events import Actor
    from tests.conftest import AMS

    p = register_at_source(brokered)
    gw = brokered.gw
    assert gw.container.lifecycle is not None
    ngo = gw.pseudonym_for("ngo-opvang-amsterdam", p)
    effective = datetime(2024, 12, 1, 12, 0, 0, tzinfo=AMS)
    gw.container.lifecycle.service.withdraw_mandate(
        Actor.jurist("amsterdam", "jurist.1"), "mandaat-lvv-amsterdam", effective, "Withdrawn", "B&W 2024/91"
    )

    def ngo_read() -> httpx.Response:
        headers = gw.headers("ngo-opvang-amsterdam", "counsellor", "shelter_counselling")
        return gw.http.get(f"/v1/participants/{ngo}", headers=headers)

    gw.clock.set(effective - timedelta(seconds=1))
    before = ngo_read()
    assert before.status_code == 200, before.text
    assert before.json()["records"]["case_plan"]["fields"] == {"phase": "onderzoeksfase"}
    assert len(brokered.cvs.state.received) == 1
    gw.clock.set(effective)
    assert ngo_read().status_code == 403
    assert len(brokered.cvs.state.received) == 1  # no call to the source at or after the withdrawal
