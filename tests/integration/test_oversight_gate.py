"""Every former hand-written role check is now the gate's: the permit or denial follows oversight.yaml,
names its activity, and is a committed audit entry (SQLite and PostgreSQL).

Each test runs the same request twice against one database: first with the shipped configuration
(permitted), then with a copy of it in which oversight.yaml no longer names that role (denied).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from sqlalchemy import select

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import Container, build
from gateway.lifecycle.events import Actor
from gateway.lifecycle.rehearsal import copy_database
from gateway.lifecycle.service import LifecycleRefused
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from gateway.store.tables import audit_entries
from tests.conftest import AMS, IN_FORCE, LVV_CONFIG, Gateway, make_settings, synthetic_records
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

AFTER_END = datetime(2025, 1, 2, 10, 0, tzinfo=AMS)


@dataclass
class Running:
    """A gateway on loopback over the test's database, with one configuration directory."""

    container: Container
    minter: TokenMinter
    http: httpx.Client

    def headers(self, org: str, role: str, purpose: str | None = None) -> dict[str, str]:
        self.minter.now = self.container.auth.token_clock.timestamp()  # real time in a rehearsal
        headers = {
            "Authorization": f"Bearer {self.minter.token(org)}",
            "Acting-User": "tester.synthetic",
            "Acting-Role": role,
        }
        if purpose is not None:
            headers["Processing-Purpose"] = purpose
        return headers

    def register(self, city: str = "amsterdam") -> str:
        body = {"region": city, "records": synthetic_records()}
        answer = self.http.post("/v1/participants", json=body, headers=self.headers(city, "intake_officer", "intake"))
        assert answer.status_code == 201, answer.text
        return str(answer.json()["participant"])


@contextmanager
def running(
    url: str, key_dir: Path, minter: TokenMinter, config_dir: Path, at: datetime | None, **overrides: Any
) -> Iterator[Running]:
    """Run a gateway over `url` with `config_dir`; a fixed clock at `at` (None: the rehearsal's own clock)."""
    settings = make_settings(
        url, key_dir, minter, config_dir=config_dir, outbox_poll_seconds=0, covenant_end_notices=False,
        audit_checkpoint_interval_seconds=0, lifecycle_poll_seconds=0, **overrides,
    )  # fmt: skip
    container = build(settings, FixedClock(at) if at is not None else None)
    try:
        with (
            LiveServer(create_app(container=container)) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            yield Running(container, minter, http)
    finally:
        container.close()


def restricted(tmp_path: Path, activity_id: str, **recipient: list[str]) -> Path:
    """Return a copy of the LVV configuration in which one activity's recipient is replaced."""
    target = tmp_path / f"lvv-without-{activity_id}"
    target.mkdir()
    for source in LVV_CONFIG.iterdir():
        (target / source.name).write_bytes(source.read_bytes())
    path = target / "oversight.yaml"
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    next(e for e in entries if e["id"] == activity_id)["recipient"] = recipient
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def stored(url: str) -> list[dict[str, Any]]:
    """Return every committed audit entry, read back from the audit_entries table, in log order."""
    db = connect(url)
    try:
        with db.read.connect() as conn:
            rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars().all()
    finally:
        db.dispose()
    return [orjson.loads(r) for r in rows]


def entries_of(url: str, event: str, organisation: str) -> list[dict[str, Any]]:
    return [e for e in stored(url) if e["event"] == event and e["organisation"] == organisation]


def assert_gate_permit(entry: dict[str, Any], activity_id: str, action: str) -> None:
    """Fail unless the entry is the gate's permit for `activity_id`."""
    assert entry["decision"] == "permit"
    assert entry["action"] == action
    assert entry["rule_ids"] == [activity_id]
    assert entry["legal_bases"]
    assert entry["processing_activity_id"] == f"urn:nl:lvv-gateway:activity:{activity_id}"
    assert entry["purpose"] == activity_id


def assert_gate_denial(entry: dict[str, Any], activity_id: str, action: str, reason: str) -> None:
    """Fail unless the entry is the gate's denial, naming the activity it looked for."""
    assert (entry["decision"], entry["reason"], entry["action"]) == ("deny", reason, action)
    assert entry["rule_ids"] == []
    assert entry["processing_activity_id"] == f"urn:nl:lvv-gateway:activity:{activity_id}"


@dataclass
class Twice:
    """Open the same database first with the shipped configuration, then with a restricted one."""

    url: str
    tmp_path: Path
    minter: TokenMinter

    def run(self, config_dir: Path, at: datetime = IN_FORCE) -> Any:
        return running(self.url, self.tmp_path / "keys", self.minter, config_dir, at)

    def shipped(self, at: datetime = IN_FORCE) -> Any:
        return self.run(LVV_CONFIG, at)

    def without(self, activity_id: str, at: datetime = IN_FORCE, **recipient: list[str]) -> Any:
        return self.run(restricted(self.tmp_path, activity_id, **recipient), at)


@pytest.fixture
def twice(database_url: str, tmp_path: Path, minter: TokenMinter) -> Twice:
    return Twice(database_url, tmp_path, minter)


# -- 1. the officer service (/v1/officer/*, /officer pages) ------------------------------------------


def test_the_officer_api_follows_oversight_yaml_and_logs_both_outcomes(twice: Twice) -> None:
    with twice.shipped() as gw:
        answer = gw.http.get("/v1/officer/entries", headers=gw.headers("amsterdam", "privacy_officer"))
        assert answer.status_code == 200, answer.text
    with twice.without("audit_review", kinds=["gemeente", "rijkspartner", "ngo"], roles=["jurist"]) as gw:
        answer = gw.http.get("/v1/officer/entries", headers=gw.headers("amsterdam", "privacy_officer"))
        assert answer.status_code == 403
        assert answer.json()["code"] == "no_oversight_activity"
        denied_seq = answer.json()["audit_seq"]
    permit, deny = entries_of(twice.url, "audit.query", "amsterdam")
    assert_gate_permit(permit, "audit_review", "audit.review")
    assert_gate_denial(deny, "audit_review", "audit.review", "no_oversight_activity")
    assert deny["seq"] == denied_seq
    assert deny["role"] == "privacy_officer"


# -- 2. own audit entries (/v1/audit/entries) ----------------------------------------------------------


def test_own_audit_entries_follow_oversight_yaml_and_log_both_outcomes(twice: Twice) -> None:
    with twice.shipped() as gw:
        answer = gw.http.get("/v1/audit/entries", headers=gw.headers("ind", "privacy_officer"))
        assert answer.status_code == 200, answer.text
        permit_seq = answer.json()["audit"]["seq"]
    with twice.without("audit_review", kinds=["gemeente"], roles=["privacy_officer"]) as gw:
        answer = gw.http.get("/v1/audit/entries", headers=gw.headers("ind", "privacy_officer"))
        assert answer.status_code == 403
        assert answer.json()["code"] == "no_oversight_activity"
    permit, deny = entries_of(twice.url, "audit.read", "ind")
    assert permit["seq"] == permit_seq
    assert_gate_permit(permit, "audit_review", "audit.review")
    assert_gate_denial(deny, "audit_review", "audit.review", "no_oversight_activity")


# -- 3. the evidence viewer (/v1/evidence/..., /jurist pages) ------------------------------------------


def test_the_evidence_viewer_follows_oversight_yaml_and_logs_both_outcomes(twice: Twice) -> None:
    # After the end: a revocation report is issued only for a covenant that has ended.
    with twice.shipped(AFTER_END) as gw:
        issued = gw.http.post(
            "/v1/evidence/covenants/lvv-amsterdam/revocation-report", headers=gw.headers("amsterdam", "jurist")
        )
        assert issued.status_code == 201, issued.text
        document = f"/v1/evidence/documents/{issued.json()['id']}.json"
        assert gw.http.get(document, headers=gw.headers("amsterdam", "jurist")).status_code == 200
    with twice.without(
        "evidence_review", AFTER_END, kinds=["gemeente", "rijkspartner", "ngo"], roles=["privacy_officer"]
    ) as gw:
        answer = gw.http.get(document, headers=gw.headers("amsterdam", "jurist"))
        assert answer.status_code == 403
        assert answer.json()["code"] == "no_oversight_activity"
    permit, deny = entries_of(twice.url, "evidence.download", "amsterdam")
    assert_gate_permit(permit, "evidence_review", "evidence.view")
    assert permit["document_id"] == issued.json()["id"]
    assert_gate_denial(deny, "evidence_review", "evidence.view", "no_oversight_activity")
    (issue,) = entries_of(twice.url, "evidence.request", "amsterdam")
    assert_gate_permit(issue, "evidence_review", "evidence.issue")


def test_listing_evidence_documents_records_the_permit(twice: Twice) -> None:
    with twice.shipped() as gw:
        answer = gw.http.get("/v1/evidence/documents", headers=gw.headers("amsterdam", "jurist"))
        assert answer.status_code == 200, answer.text
    (permit,) = entries_of(twice.url, "evidence.view", "amsterdam")
    assert_gate_permit(permit, "evidence_review", "evidence.view")


# -- 4. the notices guard (/v1/notices) -----------------------------------------------------------------


def test_the_notices_guard_follows_oversight_yaml_and_logs_both_outcomes(twice: Twice) -> None:
    with twice.shipped() as gw:
        answer = gw.http.get("/v1/notices", headers=gw.headers("ngo-medisch", "privacy_officer"))
        assert answer.status_code == 200, answer.text
    with twice.without("notice_acknowledgement", kinds=["gemeente", "rijkspartner"], roles=["privacy_officer"]) as gw:
        answer = gw.http.get("/v1/notices", headers=gw.headers("ngo-medisch", "privacy_officer"))
        assert answer.status_code == 403
        assert answer.json()["code"] == "no_oversight_activity"
    permit, deny = entries_of(twice.url, "notice.read", "ngo-medisch")
    assert_gate_permit(permit, "notice_acknowledgement", "notice.acknowledge")
    assert_gate_denial(deny, "notice_acknowledgement", "notice.acknowledge", "no_oversight_activity")


# -- 5. the lifecycle jurist check (CLI holds and revocations) -------------------------------------------


def test_the_lifecycle_jurist_check_follows_oversight_yaml_and_logs_both_outcomes(twice: Twice) -> None:
    jurist = Actor.jurist("amsterdam", "jurist.synthetic")

    def set_hold(gw: Running, pseudonym: str) -> Callable[[], object]:
        assert gw.container.lifecycle is not None
        ref = gw.container.store.resolve("amsterdam", pseudonym)
        assert ref is not None
        service, participant = gw.container.lifecycle.service, ref.id
        return lambda: service.set_hold(jurist, participant, "appeal", "AWB 25/0001 (synthetic)")

    with twice.shipped() as gw:
        pseudonym = gw.register()
        held = set_hold(gw, pseudonym)()
    with twice.without("legal_hold_administration", kinds=["gemeente"], roles=["privacy_officer"]) as gw:
        with pytest.raises(LifecycleRefused) as refused:
            set_hold(gw, pseudonym)()
        assert refused.value.code == "no_oversight_activity"
    permit, deny = entries_of(twice.url, "legal_hold.set", "amsterdam")
    assert permit["seq"] == held.set_audit_seq  # type: ignore[attr-defined]
    for entry in (permit, deny):
        # The lifecycle entries keep `rule_ids` for the sharing rules a withdrawal removes; the gate's
        # activity is under `oversight_rule_ids`.
        assert entry["action"] == "lifecycle.hold"
        assert entry["processing_activity_id"] == "urn:nl:lvv-gateway:activity:legal_hold_administration"
        assert entry["purpose"] == "legal_hold_administration"
    assert permit["decision"] == "permit"
    assert permit["oversight_rule_ids"] == ["legal_hold_administration"]
    assert permit["legal_bases"]
    assert (deny["decision"], deny["reason"], deny["oversight_rule_ids"]) == ("deny", "no_oversight_activity", [])


# -- 6. the rehearsal clock (POST /v1/rehearsal/clock) ---------------------------------------------------

REHEARSAL_START = datetime(2025, 1, 1, 0, 0, 5, tzinfo=AMS)


def test_the_rehearsal_clock_follows_oversight_yaml_and_logs_both_outcomes(tmp_path: Path, minter: TokenMinter) -> None:
    # SQLite only: a rehearsal is a marked copy of a database, made here file to file.
    source, copy = f"sqlite:///{tmp_path}/live.db", f"sqlite:///{tmp_path}/rehearsal.db"
    db = connect(source)
    upgrade(db)
    db.dispose()
    copy_database(source, copy, REHEARSAL_START, running=False)
    keys = tmp_path / "keys"
    step = {"to": (REHEARSAL_START + timedelta(hours=1)).isoformat()}

    with running(copy, keys, minter, LVV_CONFIG, None, rehearsal=True) as gw:
        answer = gw.http.post("/v1/rehearsal/clock", json=step, headers=gw.headers("amsterdam", "jurist"))
        assert answer.status_code == 200, answer.text
    config = restricted(tmp_path, "rehearsal_control", kinds=["gemeente"], roles=["privacy_officer"])
    with running(copy, keys, minter, config, None, rehearsal=True) as gw:
        answer = gw.http.post("/v1/rehearsal/clock", json=step, headers=gw.headers("amsterdam", "jurist"))
        assert answer.status_code == 403
        assert answer.json()["code"] == "no_oversight_activity"
    permit, deny = entries_of(copy, "rehearsal.clock_step", "amsterdam")
    assert_gate_permit(permit, "rehearsal_control", "rehearsal.clock")
    assert permit["clock_to"] == step["to"]
    assert_gate_denial(deny, "rehearsal_control", "rehearsal.clock", "no_oversight_activity")


# -- after the end: oversight goes on, the exchange does not ---------------------------------------------


def test_after_the_lvv_end_amsterdams_privacy_officer_still_reads_its_own_entries(gateway: Gateway) -> None:
    gateway.clock.set(AFTER_END)
    answer = gateway.http.get("/v1/audit/entries", headers=gateway.headers("amsterdam", "privacy_officer", None))
    assert answer.status_code == 200, answer.text
    (entry,) = [e for e in stored(gateway.container.settings.database_url) if e["event"] == "audit.read"]
    assert_gate_permit(entry, "audit_review", "audit.review")
    assert entry["covenants"] == ["lvv-amsterdam"]


def test_after_the_lvv_end_a_case_manager_cannot_read_a_participant(gateway: Gateway) -> None:
    pseudonym = gateway.register("amsterdam")
    gateway.clock.set(AFTER_END)
    answer = gateway.http.get(
        f"/v1/participants/{pseudonym}", headers=gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "no_covenant_in_force"
    assert "Synthetisch" not in answer.text
    reads = [e for e in stored(gateway.container.settings.database_url) if e["event"].startswith("exchange.read")]
    assert [(e["decision"], e["reason"]) for e in reads] == [("deny", "no_covenant_in_force")]
