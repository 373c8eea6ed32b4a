"""Anomalies detected from a crafted sequence of real requests (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.app import create_app
from gateway.audit.anomalies import Thresholds, detect
from gateway.clock import FixedClock
from gateway.container import build
from tests.conftest import AMS, Gateway, make_settings
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

NGO_CLIENT = "client-ngo-opvang-amsterdam"


@pytest.fixture
def tuned(database_url: str, tmp_path: Path, minter: TokenMinter) -> Iterator[Gateway]:
    """A gateway whose volume thresholds fit a short synthetic history."""
    clock = FixedClock(datetime(2024, 11, 7, 10, 0, tzinfo=AMS))
    settings = make_settings(
        database_url,
        tmp_path / "keys",
        minter,
        anomaly_volume_min_requests=5,
        anomaly_volume_factor=3,
        anomaly_volume_baseline_days=7,
        officer_status_cache_seconds=0,
    )
    container = build(settings, clock)
    with LiveServer(create_app(container=container)) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield Gateway(container, clock, minter, server.url, http)
    container.close()


def ngo_read(gw: Gateway, pseudonym: str, purpose: str = "shelter_counselling") -> int:
    headers = gw.headers("ngo-opvang-amsterdam", "counsellor", purpose)
    return gw.http.get(f"/v1/participants/{pseudonym}", headers=headers).status_code


@pytest.fixture
def crafted(tuned: Gateway) -> Gateway:
    gw = tuned
    city = gw.register("amsterdam")
    ngo = gw.pseudonym_for("ngo-opvang-amsterdam", city)
    for day in range(8, 15):  # one read a day: the NGO's usual volume
        gw.clock.set(datetime(2024, 11, day, 10, 0, tzinfo=AMS))
        assert ngo_read(gw, ngo) == 200
    gw.clock.set(datetime(2024, 11, 15, 9, 0, tzinfo=AMS))
    for _ in range(10):  # ten times its usual
        gw.clock.advance(timedelta(minutes=5))
        assert ngo_read(gw, ngo) == 200
    gw.clock.set(datetime(2024, 11, 15, 14, 0, tzinfo=AMS))
    for _ in range(6):  # six denials in one minute: a burst
        gw.clock.advance(timedelta(seconds=10))
        assert ngo_read(gw, ngo, "police_screening") == 403
    rotterdam = gw.pseudonym_for("rotterdam", city)
    for pseudonym in (rotterdam, rotterdam, "p" + "b" * 26):  # outside its region twice, then probing
        gw.clock.advance(timedelta(minutes=30))
        headers = gw.headers("rotterdam", "case_manager", "lso_case_discussion")
        assert gw.http.get(f"/v1/participants/{pseudonym}", headers=headers).status_code == 404
    gw.clock.set(datetime(2025, 1, 2, 9, 0, tzinfo=AMS))  # the LVV covenants ended on 2024-12-31
    ind = gw.pseudonym_for("ind", city)
    response = gw.http.get(f"/v1/participants/{ind}", headers=gw.headers("ind", "ind_officer", "lso_case_discussion"))
    assert response.status_code == 403
    return gw


def anomalies(gw: Gateway, org: str = "amsterdam") -> dict[str, list[dict[str, Any]]]:
    response = gw.http.get(
        "/v1/officer/anomalies",
        params={"since": "2024-11-15T00:00:00+01:00", "until": "2025-01-03T00:00:00+01:00"},
        headers=gw.headers(org, "privacy_officer", None, user="fg.officer"),
    )
    assert response.status_code == 200, response.text
    found: dict[str, list[dict[str, Any]]] = {}
    for item in response.json()["items"]:
        found.setdefault(item["kind"], []).append(item)
    return found


def test_a_burst_of_denials_is_found(crafted: Gateway) -> None:
    bursts = anomalies(crafted)["denial_burst"]
    assert [(b["client_id"], b["count"]) for b in bursts] == [(NGO_CLIENT, 6)]
    assert len(bursts[0]["sample_seqs"]) == 6


def test_access_outside_the_region_is_found_by_the_city_whose_participant_was_asked_for(crafted: Gateway) -> None:
    outside = anomalies(crafted)["outside_region"]
    assert [(o["client_id"], o["organisation"], o["count"]) for o in outside] == [("client-rotterdam", "rotterdam", 2)]
    assert outside[0]["detail"] == "2 x participant outside the covenant's regions"


def test_probing_unknown_pseudonyms_is_found_by_the_callers_own_officer(crafted: Gateway) -> None:
    outside = anomalies(crafted, "rotterdam")["outside_region"]
    assert [(o["client_id"], o["count"]) for o in outside] == [("client-rotterdam", 3)]
    assert "1 x pseudonym unknown to the organisation" in outside[0]["detail"]


def test_attempts_after_the_covenant_ended_are_found(crafted: Gateway) -> None:
    ended = anomalies(crafted)["after_covenant_end"]
    assert [(e["client_id"], e["count"]) for e in ended] == [("client-ind", 1)]
    assert ended[0]["first"].startswith("2025-01-02T08:00:00")


def test_a_clients_volume_far_above_its_usual_is_found_and_usual_days_are_not(crafted: Gateway) -> None:
    volume = anomalies(crafted)["volume"]
    assert [(v["client_id"], v["count"]) for v in volume] == [(NGO_CLIENT, 16)]
    assert "a usual 1.0 per day" in volume[0]["detail"]


def test_nothing_is_flagged_for_ordinary_traffic(tuned: Gateway) -> None:
    city = tuned.register("amsterdam")
    ngo = tuned.pseudonym_for("ngo-opvang-amsterdam", city)
    tuned.clock.set(datetime(2024, 11, 15, 10, 0, tzinfo=AMS))
    assert ngo_read(tuned, ngo) == 200
    assert anomalies(tuned) == {}


def test_an_ngo_officer_sees_only_anomalies_of_its_own_organisation(crafted: Gateway) -> None:
    found = anomalies(crafted, "ngo-opvang-amsterdam")
    assert {(kind, i["client_id"]) for kind, items in found.items() for i in items} == {
        ("denial_burst", NGO_CLIENT),
        ("volume", NGO_CLIENT),
    }


def _row(seq: int, at: datetime, decision: str = "deny", reason: str = "no_rule_for_purpose") -> Any:
    entry = {"event": "exchange.read", "client_id": "c", "organisation": "o", "decision": decision, "reason": reason}
    return (seq, at, entry)


def test_denials_spread_wider_than_the_window_are_no_burst() -> None:
    start = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
    rows = [_row(i, start + timedelta(seconds=61 * i)) for i in range(10)]
    found = detect(rows, start, start + timedelta(days=1), Thresholds(burst_count=5, burst_window_seconds=240))
    assert [a.kind for a in found] == []
    found = detect(rows, start, start + timedelta(days=1), Thresholds(burst_count=5, burst_window_seconds=250))
    assert [(a.kind, a.count) for a in found] == [("denial_burst", 10)]


def test_two_separate_bursts_are_reported_separately() -> None:
    start = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
    rows = [_row(i, start + timedelta(seconds=i)) for i in range(5)]
    rows += [_row(10 + i, start + timedelta(hours=1, seconds=i)) for i in range(5)]
    found = detect(rows, start, start + timedelta(days=1), Thresholds(burst_count=5))
    assert [(a.kind, a.count) for a in found] == [("denial_burst", 5), ("denial_burst", 5)]
