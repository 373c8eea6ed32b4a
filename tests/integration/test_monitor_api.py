"""The steering monitor over real HTTP: the demo's synthetic participants give the expected figures,
the steering role sees only protected counts of its own region, every other role gets 403, and every
computation is an audit entry.

Expected figures are computed here from what the demo seeded, read back through the exchange API by each
city's case manager (an independent path; the intake decision under the intake purpose), not by the
monitor's own code.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from gateway.demo.seed import CITIES, seed
from tests.conftest import Gateway

AMS = ZoneInfo("Europe/Amsterdam")
THRESHOLD = 5
PHASES = {"onderzoeksfase": "Onderzoeksfase", "opvangfase": "Opvangfase"}
ROUTES = {
    "legal_stay": "Legaal verblijf",
    "return": "Terugkeer",
    "onward_migration": "Doormigratie",
    "undetermined": "Nog niet bepaald",
}
REFUSALS = {"regiobinding": "Afgewezen: regiobinding", "dublinclaim": "Afgewezen: Dublinclaim"}


def _seed_two_quarters(gateway: Gateway) -> None:
    gateway.clock.set(datetime(2024, 5, 20, 10, 0, tzinfo=AMS))
    asyncio.run(seed(gateway.container, per_city=7, rng_seed=7))
    gateway.clock.set(datetime(2024, 11, 15, 10, 0, tzinfo=AMS))
    asyncio.run(seed(gateway.container, per_city=5, rng_seed=11))


def _truth(gateway: Gateway) -> list[dict[str, Any]]:
    """Return every participant as the cities' case managers read them: region, registration day, records."""
    people = []
    for city in CITIES:
        headers = gateway.headers(city, "case_manager", "lso_case_discussion")
        listed = gateway.http.get("/v1/participants", params={"limit": 200}, headers=headers)
        assert listed.status_code == 200, listed.text
        for item in listed.json()["items"]:
            read = gateway.http.get(
                f"/v1/participants/{item['participant']}",
                params={"categories": "case_plan,screening,immigration_procedure,outflow"},
                headers=headers,
            )
            assert read.status_code == 200, read.text
            records = {k: v["fields"] for k, v in read.json()["records"].items()}
            intake = gateway.http.get(
                f"/v1/participants/{item['participant']}",
                params={"categories": "intake"},
                headers=gateway.headers(city, "case_manager", "intake"),
            )
            assert intake.status_code == 200, intake.text
            records.update({k: v["fields"] for k, v in intake.json()["records"].items()})
            people.append({"region": city, "day": item["registered_at"], "records": records})
    return people


def _cells(table: dict[str, Any]) -> dict[tuple[str, str], int | None]:
    return {(c["row"], c["column"]): c["value"] for c in table["cells"]}


def _expected_phase(people: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for p in people:
        phase = p["records"].get("case_plan", {}).get("phase")
        counts[(p["region"], PHASES.get(phase, "Niet vastgelegd"))] += 1
    return counts


def _expected_no_shows(people: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for p in people:
        n = p["records"].get("screening", {}).get("no_show_count")
        label = (
            "Niet vastgelegd"
            if n is None
            else {0: "Geen no-show", 1: "Eén no-show"}.get(n, "Twee of meer (waarschuwingsbrief)")
        )
        counts[(p["region"], label)] += 1
    return counts


def _expected_intake(people: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for p in people:
        intake = p["records"].get("intake", {})
        decision = intake.get("admission_decision")
        if decision == "toegelaten":
            label = "Toegelaten"
        elif decision == "afgewezen":
            label = REFUSALS.get(intake.get("refusal_reason"), "Afgewezen: andere reden")
        else:
            label = "Niet vastgelegd"
        counts[(p["region"], label)] += 1
    return counts


def _check_against_truth(table: dict[str, Any], truth: Counter[tuple[str, str]], regions: list[str]) -> int:
    """Every published cell equals the true count; every true count 1..4 is suppressed. Return suppressed cells."""
    cells = _cells(table)
    columns = table["columns"]
    suppressed = 0
    for region in regions:
        for column in columns:
            true = truth[(region, column)]
            shown = cells[(region, column)]
            if shown is None:
                suppressed += 1
            else:
                assert shown == true, (region, column)
            if 0 < true < THRESHOLD:
                assert shown is None, f"a count of {true} was published for {region}/{column}"
        total = sum(truth[(region, c)] for c in columns)
        assert cells[(region, "*")] in (None, total)
    return suppressed


@pytest.fixture
def seeded(gateway: Gateway) -> tuple[Gateway, list[dict[str, Any]]]:
    _seed_two_quarters(gateway)
    return gateway, _truth(gateway)


def test_a_city_steering_group_sees_the_true_counts_of_its_own_region_with_small_cells_suppressed(
    seeded: tuple[Gateway, list[dict[str, Any]]],
) -> None:
    gateway, people = seeded
    assert len(people) == 60  # everyone registered, admitted or refused at intake
    response = gateway.http.get("/v1/monitor", headers=gateway.headers("amsterdam", "steering", None))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == {"regions": ["amsterdam"], "programme_totals": False}
    indicators = {i["id"]: i for i in body["indicators"]}
    phase = indicators["fase"]["table"]
    assert phase["rows"] == ["amsterdam"]
    assert all(c["row"] == "amsterdam" for c in phase["cells"])  # no other region, no programme totals
    hidden = _check_against_truth(phase, _expected_phase(people), ["amsterdam"])
    assert hidden < len(phase["columns"]), "nothing of Amsterdam's 12 participants was published"
    _check_against_truth(indicators["avim_screening"]["table"], _expected_no_shows(people), ["amsterdam"])
    # Amsterdam registered 7 in 2024 Q2 and 5 in Q4: published; Q3 had none.
    series = _cells(body["series"]["table"])
    assert series[("amsterdam", "2024-Q2")] == 7
    assert series[("amsterdam", "2024-Q3")] == 0
    assert series[("amsterdam", "2024-Q4")] == 5
    assert series[("amsterdam", "*")] == 12
    assert response.headers["Audit-Seq"] == str(body["audit"]["seq"])


def test_intake_by_decision_and_reason_equals_the_decisions_the_seed_recorded_in_every_region(
    seeded: tuple[Gateway, list[dict[str, Any]]],
) -> None:
    gateway, people = seeded
    truth = _expected_intake(people)
    decided = sum(n for (_, column), n in truth.items() if column != "Niet vastgelegd")
    assert decided == len(people), "the seed records an intake decision for everyone it registers"
    assert sum(n for (_, column), n in truth.items() if column.startswith("Afgewezen")) > 0
    for city in CITIES:
        body = gateway.http.get("/v1/monitor", headers=gateway.headers(city, "steering", None)).json()
        indicator = {i["id"]: i for i in body["indicators"]}["intake_besluit"]
        assert indicator["name"] == "Intake naar besluit en reden"
        assert indicator["table"]["columns"] == [
            "Toegelaten",
            "Afgewezen: regiobinding",
            "Afgewezen: Dublinclaim",
            "Afgewezen: andere reden",
            "Niet vastgelegd",
        ]
        _check_against_truth(indicator["table"], truth, [city])
        # Every city admitted at least five of its twelve: that count is published, and true.
        assert _cells(indicator["table"])[(city, "Toegelaten")] == truth[(city, "Toegelaten")] >= THRESHOLD


def test_refusals_registered_through_the_api_are_counted_by_their_reason(
    seeded: tuple[Gateway, list[dict[str, Any]]],
) -> None:
    gateway, _ = seeded
    # Five more synthetic people refused in Utrecht for each reason; those without a reason count as "other".
    for n, reason in enumerate(["regiobinding", "dublinclaim", None] * 5):
        identity = {"family_name": f"Synthetisch-R{n:02d}", "given_names": "Demo", "nationality": "XXA"}
        intake = {"admission_decision": "afgewezen", "intake_date": "2024-11-15"}
        gateway.register(
            "utrecht", {"identity": identity, "intake": intake | ({"refusal_reason": reason} if reason else {})}
        )
    people = _truth(gateway)
    truth = _expected_intake(people)
    body = gateway.http.get("/v1/monitor", headers=gateway.headers("utrecht", "steering", None)).json()
    indicators = {i["id"]: i for i in body["indicators"]}
    table = indicators["intake_besluit"]["table"]
    _check_against_truth(table, truth, ["utrecht"])
    # No count in the row is below the threshold: the whole row is published, and true.
    for column in table["columns"]:
        assert _cells(table)[("utrecht", column)] == truth[("utrecht", column)], column
    assert truth[("utrecht", "Afgewezen: andere reden")] >= THRESHOLD
    # Refused people have no case: in the phase indicator they count as not recorded.
    _check_against_truth(indicators["fase"]["table"], _expected_phase(people), ["utrecht"])


def test_no_answer_carries_a_pseudonym_a_name_or_a_record(seeded: tuple[Gateway, list[dict[str, Any]]]) -> None:
    gateway, _ = seeded
    text = gateway.http.get("/v1/monitor", headers=gateway.headers("rotterdam", "steering", None)).text
    csv_text = gateway.http.get("/v1/monitor/tables/fase", headers=gateway.headers("rotterdam", "steering", None)).text
    for blob in (text, csv_text):
        assert not re.search(r"\bp[a-z2-7]{26}\b", blob), "a pseudonym left the gateway"
        assert "Synthetisch" not in blob
        assert "DEMO-V-" not in blob
        assert "plan_summary" not in blob
        assert "Demo-opvang" not in blob


def test_the_csv_download_is_the_suppressed_table(seeded: tuple[Gateway, list[dict[str, Any]]]) -> None:
    gateway, people = seeded
    headers = gateway.headers("utrecht", "steering", None)
    response = gateway.http.get("/v1/monitor/tables/avim_screening", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][0] == "Regio"
    assert rows[0][-1] == "Totaal"
    assert [r[0] for r in rows[1:]] == ["Utrecht"]
    truth = _expected_no_shows(people)
    for column, cell in zip(rows[0][1:-1], rows[1][1:-1], strict=True):
        true = truth[("utrecht", column)]
        assert cell == ("x" if 0 < true < THRESHOLD else cell)
        if cell != "x":
            assert int(cell) == true


@pytest.mark.parametrize(
    ("org", "role"),
    [
        ("amsterdam", "case_manager"),
        ("amsterdam", "privacy_officer"),
        ("amsterdam", "jurist"),
        ("ind", "ind_officer"),
        ("ngo-opvang-amsterdam", "counsellor"),
    ],
)
def test_every_other_role_is_refused_with_403_and_the_refusal_is_logged(gateway: Gateway, org: str, role: str) -> None:
    for path in ("/v1/monitor", "/v1/monitor/tables/fase"):
        response = gateway.http.get(path, headers=gateway.headers(org, role, None))
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] in {"no_oversight_activity", "role_not_allowed"}
        entry = _entry(gateway, problem["audit_seq"])
        assert entry["decision"] == "deny"
        assert entry["event"] == "monitor.view"


def _entry(gateway: Gateway, seq: int) -> dict[str, Any]:
    from sqlalchemy import select

    from gateway.store.tables import audit_entries

    with gateway.container.db.read.connect() as conn:
        raw = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one()
    entry: dict[str, Any] = orjson.loads(raw)
    return entry


def test_every_computation_is_an_audit_entry_of_the_statistics_activity_without_figures(
    seeded: tuple[Gateway, list[dict[str, Any]]],
) -> None:
    gateway, _ = seeded
    body = gateway.http.get("/v1/monitor", headers=gateway.headers("groningen", "steering", None)).json()
    entry = _entry(gateway, body["audit"]["seq"])
    assert entry["event"] == "monitor.view"
    assert entry["decision"] == "permit"
    assert entry["rule_ids"] == ["steering_monitor"]
    assert entry["processing_activity_id"] == "urn:nl:lvv-gateway:activity:steering_monitor"
    assert entry["regions"] == ["groningen"]
    assert entry["participant"] is None
    assert "cells" not in orjson.dumps(entry).decode()


def test_a_free_period_is_refused_and_a_calendar_period_only_selects_published_columns(
    seeded: tuple[Gateway, list[dict[str, Any]]],
) -> None:
    gateway, _ = seeded
    headers = gateway.headers("amsterdam", "steering", None)
    for period in ("2024-11-01..2024-12-30", "2024-Q5", "2024-13", "2024-11-02", "24"):
        response = gateway.http.get("/v1/monitor", params={"period": period}, headers=headers)
        assert response.status_code == 422, period
        assert response.json()["errors"][0]["location"] == "query.period"
    whole = gateway.http.get("/v1/monitor", headers=headers).json()
    published = _cells(whole["series"]["table"])
    for period, columns in (("2024", ["2024-Q2", "2024-Q3", "2024-Q4"]), ("2024-Q4", ["2024-Q4"]),
                            ("2024-11", ["2024-Q4"]), ("2023", [])):  # fmt: skip
        body = gateway.http.get("/v1/monitor", params={"period": period}, headers=headers).json()
        assert body["series"]["table"]["columns"] == columns, period
        # A cut, never a new count: every value is the one the whole table publishes.
        for key, value in _cells(body["series"]["table"]).items():
            assert published[key] == value


def test_an_unknown_table_is_a_problem_404(gateway: Gateway) -> None:
    response = gateway.http.get("/v1/monitor/tables/nope", headers=gateway.headers("amsterdam", "steering", None))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
