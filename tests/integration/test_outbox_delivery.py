"""Covenant-end notices reach each recipient's webhook on loopback, signed with the published key;
failures are retried with exponential backoff, given up after the last attempt, and acknowledgements
made through the API appear in the signed revocation report."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import select
from starlette.responses import Response

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import Container, build
from gateway.evidence.envelope import verify_bytes
from gateway.evidence.keys import EvidenceKey, parse_keys, published_keys
from gateway.evidence.parts import EvidenceParts
from gateway.outbox.delivery import DeliveryWorker
from gateway.outbox.signing import SignatureInvalid, verify_request
from gateway.store.tables import audit_entries, outbox_attempts
from tests.conftest import AMS, LVV_CONFIG, make_settings
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

AFTER_END = datetime(2025, 1, 1, 0, 0, 5, tzinfo=AMS)
PARTIES = (
    "amsterdam",
    "ind",
    "dtv",
    "avim",
    "ngo-rechtshulp",
    "ngo-terugkeer",
    "ngo-medisch",
    "ngo-opvang-amsterdam",
)


@dataclass
class Received:
    organisation: str
    idempotency_key: str
    notice: dict[str, Any]
    body: bytes
    attempt: str


@dataclass
class RecipientSimulator:
    """The recipients' side: one webhook per organisation that checks every signature with the gateway's
    published keys and the gateway's clock, and can be told to fail."""

    clock: FixedClock
    keys: list[EvidenceKey] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # organisation -> answers 503 this many times first
    broken: set[str] = field(default_factory=set)  # organisation -> always 500
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/notify/{org}")
        async def notify(org: str, request: Request) -> Response:
            body = await request.body()
            try:
                verified = verify_request(
                    "POST", str(request.url), request.headers.items(), body, self.keys, self.clock.timestamp()
                )
            except SignatureInvalid as exc:
                self.rejected.append(str(exc))
                return Response(status_code=401)
            notice = orjson.loads(body)
            assert notice["notice_id"] == verified.idempotency_key
            if org in self.broken:
                return Response(status_code=500)
            if self.failures.get(org, 0) > 0:
                self.failures[org] -= 1
                return Response(status_code=503)
            self.received.append(
                Received(org, verified.idempotency_key, notice, body, request.headers.get("notice-attempt", ""))
            )
            return Response(status_code=202)

        return app

    def to(self, org: str) -> list[Received]:
        return [r for r in self.received if r.organisation == org]


def config_with_endpoints(target: Path, urls: dict[str, str]) -> Path:
    """Return a copy of the LVV configuration in which `urls` are the organisations' notify_url."""
    shutil.copytree(LVV_CONFIG, target)
    path = target / "organisations.yaml"
    text = path.read_text()
    for org, url in urls.items():
        text, count = re.subn(
            rf"(^- id: {re.escape(org)}\n(?:  .*\n)*?  roles: .*\n)", rf'\g<1>  notify_url: "{url}"\n', text, flags=re.M
        )
        assert count == 1, org
    path.write_text(text)
    return target


@dataclass
class Setup:
    container: Container
    parts: EvidenceParts
    clock: FixedClock
    sim: RecipientSimulator
    url: str
    http: httpx.Client
    minter: TokenMinter

    def headers(self, org: str, role: str, user: str = "jurist.synthetic") -> dict[str, str]:
        self.minter.now = self.clock.timestamp()
        return {"Authorization": f"Bearer {self.minter.token(org)}", "Acting-User": user, "Acting-Role": role}

    def deliver(self) -> Any:
        return asyncio.run(self.parts.worker.deliver_due())


def start(
    database_url: str,
    tmp_path: Path,
    minter: TokenMinter,
    without_endpoint: tuple[str, ...] = ("avim",),
    **overrides: Any,
) -> Iterator[Setup]:
    clock = FixedClock(AFTER_END)
    sim = RecipientSimulator(clock)
    with LiveServer(sim.app()) as webhooks:
        urls = {org: f"{webhooks.url}/notify/{org}" for org in PARTIES if org not in without_endpoint}
        config = config_with_endpoints(tmp_path / "config", urls)
        options: dict[str, Any] = {
            "outbox_poll_seconds": 0,
            "covenant_end_notices": False,
            "outbox_max_attempts": 3,
            "outbox_backoff_base_seconds": 60,
            "audit_checkpoint_interval_seconds": 0,
            "config_dir": config,
        }
        options.update(overrides)
        settings = make_settings(database_url, tmp_path / "keys", minter, **options)
        # The recipients hold the gateway's published keys before the first notice can arrive ...
        sim.keys = published_keys(settings.key_dir)
        container = build(settings, clock)
        app = create_app(container=container)
        try:
            with LiveServer(app) as gateway, httpx.Client(base_url=gateway.url, timeout=60) as http:
                # ... and they are the keys the gateway publishes over HTTP.
                served = parse_keys(http.get("/.well-known/evidence-keys.json").content)
                assert [k.kid for k in served] == [k.kid for k in sim.keys]
                assert container.evidence is not None
                yield Setup(container, container.evidence, clock, sim, gateway.url, http, minter)
        finally:
            container.close()


@pytest.fixture
def setup(database_url: str, tmp_path: Path, minter: TokenMinter) -> Iterator[Setup]:
    yield from start(database_url, tmp_path, minter)


def attempts_of(s: Setup, notice_id: str) -> list[Any]:
    with s.container.db.read.connect() as conn:
        return conn.execute(
            select(outbox_attempts).where(outbox_attempts.c.notice_id == notice_id).order_by(outbox_attempts.c.attempt)
        ).all()


def audit_events(s: Setup, event: str) -> list[dict[str, Any]]:
    with s.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars()
        return [e for e in (orjson.loads(r) for r in rows) if e["event"] == event]


def test_every_recipient_receives_one_signed_notice_that_verifies_with_the_published_key(setup: Setup) -> None:
    s = setup
    ids = s.parts.notify_covenant_end("lvv-amsterdam")
    assert len(ids) == len(PARTIES)
    report = s.deliver()
    delivered = {r.organisation for r in s.sim.received}
    assert delivered == set(PARTIES) - {"avim"}
    assert s.sim.rejected == []
    notice = s.sim.to("ngo-opvang-amsterdam")[0].notice
    assert notice["recipient"] == "ngo-opvang-amsterdam"
    assert notice["payload"]["request"] == "delete_copies"
    assert notice["payload"]["covenant"]["id"] == "lvv-amsterdam"
    assert notice["payload"]["covenant"]["ended_at"] == "2025-01-01T00:00:00+01:00"
    assert len(report.delivered) == len(PARTIES) - 1
    # Without a notify_url the notice is given up at once, for a person to deliver otherwise.
    assert len(report.dead) == 1
    with s.container.db.read.connect() as conn:
        avim = s.parts.outbox.notices(conn, recipient_org="avim")[0]
    assert avim.status.value == "dead"
    assert avim.last_error is not None
    assert "notify_url" in avim.last_error


def test_notifying_twice_queues_nothing_new(setup: Setup) -> None:
    first = setup.parts.notify_covenant_end("lvv-amsterdam")
    assert setup.parts.notify_covenant_end("lvv-amsterdam") == first


def test_a_failing_recipient_is_retried_with_exponential_backoff_until_it_answers(setup: Setup) -> None:
    s = setup
    s.sim.failures["ind"] = 2
    s.parts.notify_covenant_end("lvv-amsterdam")
    s.deliver()
    with s.container.db.read.connect() as conn:
        ind = s.parts.outbox.notices(conn, recipient_org="ind")[0]
    assert ind.status.value == "pending"
    first_wait = ind.next_attempt_at - s.clock.now()
    assert timedelta(seconds=60) <= first_wait <= timedelta(seconds=66)

    assert s.deliver().attempted == 0  # nothing is due before the backoff has passed

    s.clock.advance(first_wait)
    s.deliver()
    with s.container.db.read.connect() as conn:
        ind = s.parts.outbox.notices(conn, recipient_org="ind")[0]
    second_wait = ind.next_attempt_at - s.clock.now()
    assert timedelta(seconds=120) <= second_wait <= timedelta(seconds=132)

    s.clock.advance(second_wait)
    s.deliver()
    received = s.sim.to("ind")
    assert len(received) == 1
    assert received[0].attempt == "3"
    assert [a.outcome for a in attempts_of(s, ind.id)] == ["retry", "retry", "delivered"]
    assert [a.status_code for a in attempts_of(s, ind.id)] == [503, 503, 202]


def test_a_recipient_that_never_answers_is_dead_lettered_after_the_last_attempt(setup: Setup) -> None:
    s = setup
    s.sim.broken.add("dtv")
    s.parts.notify_covenant_end("lvv-amsterdam")
    for _ in range(3):
        s.deliver()
        s.clock.advance(timedelta(hours=1))
    with s.container.db.read.connect() as conn:
        dtv = s.parts.outbox.notices(conn, recipient_org="dtv")[0]
    assert dtv.status.value == "dead"
    assert dtv.attempts == 3
    assert [a.outcome for a in attempts_of(s, dtv.id)] == ["retry", "retry", "dead"]
    assert s.deliver().attempted == 0  # a dead letter is not retried on its own
    dead = {e["notice_id"]: e for e in audit_events(s, "notice.dead_lettered")}
    assert dead[dtv.id]["organisation"] == "dtv"
    assert dead[dtv.id]["attempts"] == 3

    with s.container.db.write.begin() as conn:
        assert s.parts.outbox.requeue(conn, dtv.id, s.clock.now())
    s.sim.broken.clear()
    s.deliver()
    assert len(s.sim.to("dtv")) == 1


def test_every_retry_sends_the_same_body_and_idempotency_key(setup: Setup) -> None:
    s = setup
    s.sim.failures["amsterdam"] = 1
    s.parts.notify_covenant_end("lvv-amsterdam")
    s.deliver()
    s.clock.advance(timedelta(minutes=5))
    s.deliver()
    with s.container.db.read.connect() as conn:
        notice = s.parts.outbox.notices(conn, recipient_org="amsterdam")[0]
    (received,) = s.sim.to("amsterdam")
    assert received.idempotency_key == notice.id
    assert received.body == notice.body


def test_two_workers_never_send_one_notice_twice(setup: Setup) -> None:
    s = setup
    s.parts.notify_covenant_end("lvv-amsterdam")
    w = s.parts.worker
    other = DeliveryWorker(
        s.container.db, s.parts.outbox, w._endpoints, s.parts.signer, s.clock, w.retry, audit=s.container.audit
    )
    other.worker_id = "outbox:other-process"

    async def both() -> None:
        await asyncio.gather(w.deliver_due(), other.deliver_due())

    asyncio.run(both())
    keys = [r.idempotency_key for r in s.sim.received]
    assert len(keys) == len(set(keys)) == len(PARTIES) - 1


def test_acknowledgements_through_the_api_appear_in_the_signed_revocation_report(setup: Setup) -> None:
    s = setup
    s.parts.notify_covenant_end("lvv-amsterdam")
    s.deliver()
    notices = {r.organisation: r.idempotency_key for r in s.sim.received}
    answer = s.http.post(
        f"/v1/notices/{notices['amsterdam']}/ack",
        json={"outcome": "deleted", "reference": "AMS-2025-001"},
        headers=s.headers("amsterdam", "jurist"),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["outcome"] == "deleted"
    answer = s.http.post(f"/v1/notices/{notices['ind']}/ack", headers=s.headers("ind", "privacy_officer"))
    assert answer.status_code == 201, answer.text

    doc = s.parts.service.issue_revocation_report("lvv-amsterdam")
    report = orjson.loads(doc.signed_json)["document"]
    by_org = {r["organisation"]: r for r in report["recipients_notified"]}
    assert by_org["amsterdam"]["acknowledgements"][0]["outcome"] == "deleted"
    assert by_org["amsterdam"]["acknowledgements"][0]["reference"] == "AMS-2025-001"
    assert by_org["ind"]["acknowledgements"][0]["outcome"] == "received"
    assert report["acknowledgements"]["acknowledged"] == ["amsterdam", "ind"]
    assert set(report["acknowledgements"]["missing"]) == set(PARTIES) - {"amsterdam", "ind"}
    assert by_org["avim"]["status"] == "dead"
    acked = {e["notice_id"]: e for e in audit_events(s, "notice.acknowledge")}
    assert acked[notices["amsterdam"]]["organisation"] == "amsterdam"
    assert by_org["amsterdam"]["acknowledgements"][0]["audit_seq"] == acked[notices["amsterdam"]]["seq"]
    keys = parse_keys(s.http.get("/.well-known/evidence-keys.json").content)
    assert verify_bytes(doc.signed_json, keys).document_id == report["id"]


def test_the_server_queues_and_delivers_the_notices_of_an_ended_covenant_by_itself(
    database_url: str, tmp_path: Path, minter: TokenMinter
) -> None:
    for s in start(
        database_url, tmp_path, minter, without_endpoint=(), outbox_poll_seconds=0.05, covenant_end_notices=True
    ):
        deadline = time.monotonic() + 20
        expected = set(PARTIES)  # nobody called notify_covenant_end: the delivery task's sweep queued them
        while time.monotonic() < deadline:
            got = {r.organisation for r in s.sim.received if r.notice["payload"]["covenant"]["id"] == "lvv-amsterdam"}
            if got >= expected:
                break
            time.sleep(0.05)
        assert got >= expected
        assert s.sim.rejected == []
