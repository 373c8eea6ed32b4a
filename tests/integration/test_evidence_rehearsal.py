"""In a rehearsal (a marked copy of the database, a simulated clock) notices are queued but never sent,
every document says it is a rehearsal, and downloads still verify byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.api.app import create_app
from gateway.container import Container, build
from gateway.evidence.envelope import verify_bytes
from gateway.evidence.keys import parse_keys
from gateway.lifecycle.events import Actor
from gateway.lifecycle.rehearsal import copy_database
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from tests.conftest import AMS, make_settings
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

START = datetime(2025, 1, 1, 0, 0, 5, tzinfo=AMS)


@pytest.fixture
def rehearsal(tmp_path: Path, minter: TokenMinter) -> Iterator[tuple[Container, httpx.Client]]:
    source, copy = f"sqlite:///{tmp_path}/live.db", f"sqlite:///{tmp_path}/rehearsal.db"
    db = connect(source)
    upgrade(db)
    db.dispose()
    copy_database(source, copy, START, running=False)
    settings = make_settings(
        copy, tmp_path / "keys", minter, rehearsal=True, outbox_poll_seconds=0, covenant_end_notices=False,
        audit_checkpoint_interval_seconds=0, lifecycle_poll_seconds=0,
    )  # fmt: skip
    container = build(settings)
    try:
        with (
            LiveServer(create_app(container=container)) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            yield container, http
    finally:
        container.close()


def headers(minter: TokenMinter, container: Container, org: str, role: str) -> dict[str, str]:
    minter.now = container.auth.token_clock.timestamp()  # tokens run on real time, also in a rehearsal
    return {"Authorization": f"Bearer {minter.token(org)}", "Acting-User": "jurist.synthetic", "Acting-Role": role}


def test_a_rehearsal_queues_notices_but_sends_none_and_its_report_says_so(
    rehearsal: tuple[Container, httpx.Client], minter: TokenMinter
) -> None:
    container, http = rehearsal
    assert container.evidence is not None
    ids = container.evidence.notify_covenant_end("lvv-amsterdam")
    assert asyncio.run(container.evidence.worker.deliver_due()).attempted == 0
    with container.db.read.connect() as conn:
        notices = container.evidence.outbox.notices(conn)
    assert {n.id for n in notices} == set(ids)
    assert all(n.status.value == "pending" and n.attempts == 0 for n in notices)
    assert all(orjson.loads(n.body)["payload"]["rehearsal"] is True for n in notices)

    jurist = headers(minter, container, "amsterdam", "jurist")
    issued = http.post("/v1/evidence/covenants/lvv-amsterdam/revocation-report", headers=jurist)
    assert issued.status_code == 201, issued.text
    assert issued.headers["gateway-rehearsal"].startswith("REHEARSAL")
    keys = parse_keys(http.get("/.well-known/evidence-keys.json").content)
    for fmt in ("json", "html", "pdf"):
        download = http.get(f"/v1/evidence/documents/{issued.json()['id']}.{fmt}", headers=jurist)
        verified = verify_bytes(download.content, keys)
        assert verified.kind == fmt
    document = orjson.loads(http.get(f"/v1/evidence/documents/{issued.json()['id']}.json", headers=jurist).content)
    assert document["document"]["rehearsal"] is True


def test_a_rehearsal_retention_run_never_destroys_a_key_epoch_the_real_database_shares(
    rehearsal: tuple[Container, httpx.Client],
) -> None:
    container, _ = rehearsal
    epochs = container.store.keys.epochs
    epochs.key("due-2024-11", create=True)  # a closed month's epoch key in the shared key store
    assert container.lifecycle is not None
    outcome = container.lifecycle.retention.run(Actor.scheduler(), "Rehearsal (synthetic)")
    assert outcome.epochs_destroyed == ()
    assert epochs.exists("due-2024-11")
