"""Recipients read and acknowledge their own notices through the API; nobody else can, and every
acknowledgement and refusal is in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import Container, build
from gateway.store.tables import audit_entries
from tests.conftest import AMS, make_settings
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

AFTER_END = datetime(2025, 1, 1, 0, 0, 5, tzinfo=AMS)


class Api:
    def __init__(self, container: Container, clock: FixedClock, minter: TokenMinter, http: httpx.Client) -> None:
        self.container = container
        self.clock = clock
        self.minter = minter
        self.http = http
        assert container.evidence is not None
        self.parts = container.evidence

    def headers(self, org: str, role: str) -> dict[str, str]:
        self.minter.now = self.clock.timestamp()
        return {
            "Authorization": f"Bearer {self.minter.token(org)}",
            "Acting-User": "user.synthetic",
            "Acting-Role": role,
        }

    def notice_of(self, org: str) -> str:
        with self.container.db.read.connect() as conn:
            return self.parts.outbox.notices(conn, recipient_org=org, reference="covenant:lvv-amsterdam")[0].id

    def entry(self, seq: int) -> dict[str, object]:
        with self.container.db.read.connect() as conn:
            text = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one()
        result: dict[str, object] = orjson.loads(text)
        return result


@pytest.fixture
def api(database_url: str, tmp_path: Path, minter: TokenMinter) -> Iterator[Api]:
    clock = FixedClock(AFTER_END)
    settings = make_settings(
        database_url, tmp_path / "keys", minter, outbox_poll_seconds=0, covenant_end_notices=False,
        audit_checkpoint_interval_seconds=0,
    )  # fmt: skip
    container = build(settings, clock)
    try:
        with (
            LiveServer(create_app(container=container)) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            a = Api(container, clock, minter, http)
            a.parts.notify_covenant_end("lvv-amsterdam")
            yield a
    finally:
        container.close()


def test_a_recipient_lists_only_its_own_notices_with_the_request_to_delete(api: Api) -> None:
    answer = api.http.get("/v1/notices", headers=api.headers("ngo-medisch", "privacy_officer"))
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [i["notice"]["recipient"] for i in items] == ["ngo-medisch"]
    assert items[0]["notice"]["payload"]["request"] == "delete_copies"
    assert items[0]["acknowledged"] is False


def test_a_recipient_acknowledges_its_notice_and_the_acknowledgement_is_logged(api: Api) -> None:
    notice = api.notice_of("ngo-medisch")
    answer = api.http.post(
        f"/v1/notices/{notice}/ack",
        json={"outcome": "kept_own_basis"},
        headers=api.headers("ngo-medisch", "privacy_officer"),
    )
    assert answer.status_code == 201, answer.text
    ack = answer.json()
    entry = api.entry(ack["audit_seq"])
    assert entry["event"] == "notice.acknowledge"
    assert entry["decision"] == "permit"
    assert entry["organisation"] == "ngo-medisch"
    assert entry["notice_id"] == notice
    assert entry["outcome"] == "kept_own_basis"
    listed = api.http.get("/v1/notices?unacknowledged=true", headers=api.headers("ngo-medisch", "privacy_officer"))
    assert listed.json()["items"] == []


def test_acknowledging_again_adds_a_later_statement_and_keeps_the_first(api: Api) -> None:
    notice = api.notice_of("ind")
    headers = api.headers("ind", "privacy_officer")
    assert api.http.post(f"/v1/notices/{notice}/ack", headers=headers).status_code == 201
    assert api.http.post(f"/v1/notices/{notice}/ack", json={"outcome": "deleted"}, headers=headers).status_code == 201
    view = api.http.get(f"/v1/notices/{notice}", headers=headers).json()
    assert [a["outcome"] for a in view["acknowledgements"]] == ["received", "deleted"]


def test_another_organisation_cannot_see_or_acknowledge_a_notice_and_the_attempt_is_logged(api: Api) -> None:
    notice = api.notice_of("amsterdam")
    headers = api.headers("rotterdam", "privacy_officer")
    answer = api.http.post(f"/v1/notices/{notice}/ack", headers=headers)
    assert answer.status_code == 404
    entry = api.entry(answer.json()["audit_seq"])
    assert (entry["event"], entry["decision"], entry["reason"]) == ("notice.acknowledge", "deny", "unknown_notice")
    assert entry["organisation"] == "rotterdam"
    assert api.http.get(f"/v1/notices/{notice}", headers=headers).status_code == 404


def test_acting_in_a_role_the_organisation_does_not_hold_is_refused(api: Api) -> None:
    notice = api.notice_of("ngo-medisch")
    answer = api.http.post(f"/v1/notices/{notice}/ack", headers=api.headers("ngo-medisch", "jurist"))
    assert answer.status_code == 403
    assert api.entry(answer.json()["audit_seq"])["reason"] == "role_not_allowed"


def test_an_unknown_outcome_or_a_missing_token_is_refused(api: Api) -> None:
    notice = api.notice_of("ind")
    bad = api.http.post(
        f"/v1/notices/{notice}/ack", json={"outcome": "ignored"}, headers=api.headers("ind", "privacy_officer")
    )
    assert bad.status_code == 422
    assert api.http.post(f"/v1/notices/{notice}/ack").status_code == 401
