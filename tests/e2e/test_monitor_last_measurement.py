"""The last results measurement in the LVV scenario: a city's steering group takes it in the last days of
2024, before the covenants end and the retention runs destroy the data; it names the policy version and
the signed audit checkpoint it was computed at, verifies offline with `gateway verify` (JSON, HTML, PDF),
and a tampered copy fails. Without one, the retention run warns and the jurists' page says so.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select

from gateway.monitor.due import missing_measurements
from gateway.store.tables import audit_checkpoints, audit_entries
from tests.conftest import AMS, Gateway
from tests.e2e.test_lvv_scenario import (
    NEW_YEAR,
    World,
    build_world,
    walk_through_retention,
    walk_through_the_end,
)

LAST_DAYS = datetime(2024, 12, 30, 16, 0, tzinfo=AMS)
LVV = {f"lvv-{c}" for c in ("amsterdam", "rotterdam", "utrecht", "groningen", "eindhoven")}


@pytest.fixture
def world(gateway: Gateway) -> World:
    return build_world(gateway)


def _take_measurement(world: World) -> dict[str, Any]:
    gw = world.gw
    world.at(LAST_DAYS)
    response = gw.http.post("/v1/monitor/last-measurement", headers=gw.headers("amsterdam", "steering", None))
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def _files(world: World, issued: dict[str, Any], tmp_path: Path) -> list[Path]:
    from gateway.evidence.repository import get

    with world.gw.container.db.read.connect() as conn:
        stored = get(conn, issued["id"])
    out = []
    for ext, data in (("json", stored.signed_json), ("html", stored.html), ("pdf", stored.pdf)):
        path = tmp_path / f"{issued['file_stem']}.{ext}"
        path.write_bytes(data)
        out.append(path)
    return out


def test_the_last_results_measurement_is_taken_before_destruction_and_verifies_offline(
    world: World, tmp_path: Path
) -> None:
    from gateway.cli import main
    from gateway.evidence.keys import jwks, published_keys

    issued = _take_measurement(world)
    gw = world.gw
    files = _files(world, issued, tmp_path)
    document = json.loads(files[0].read_bytes())["document"]
    assert document["type"] == "last_results_measurement"
    assert document["issuer"]["policy_version"] == gw.container.policy.version
    assert document["computation"]["taken_before_destruction"] is True
    assert document["regions"] == ["amsterdam", "rotterdam", "utrecht", "groningen", "eindhoven"]
    # The computation is an audit entry of the statistics activity, under a signed checkpoint named in the document.
    seq = document["computation"]["audit_seq"]
    with gw.container.db.read.connect() as conn:
        entry = json.loads(conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one())
        checkpoint = document["computation"]["checkpoint"]
        assert checkpoint is not None
        assert checkpoint["tree_size"] >= seq
        note = conn.execute(
            select(audit_checkpoints.c.note).where(audit_checkpoints.c.tree_size == checkpoint["tree_size"])
        ).scalar_one()
    assert entry["event"] == "monitor.measure"
    assert entry["rule_ids"] == ["steering_monitor"]
    assert note == checkpoint["signed_note"]
    # Six synthetic participants, one per city and two in Amsterdam: every region's count is below 5.
    series = {(c["row"], c["column"]): c["value"] for c in document["series"]["table"]["cells"]}
    assert series[("*", "*")] == 6
    assert all(series[(city, "*")] is None for city in document["regions"])

    # Then the end and the retention runs: no warning for the LVV covenants, their measurement was taken in
    # time; Utrecht's local successor covenant, whose end came a year later without one, is warned about.
    walk_through_the_end(world)
    with structlog.testing.capture_logs() as logs:
        walk_through_retention(world)
    warned = {c for e in logs if e["event"] == "retention.last_measurement_missing" for c in e["covenants"]}
    assert not warned & LVV
    assert warned <= {"lokaal-utrecht-2025"}

    keys = tmp_path / "evidence-keys.json"
    keys.write_text(json.dumps(jwks(published_keys(gw.container.settings.key_dir))))
    assert main(["verify", *map(str, files), "--keys", str(keys)]) == 0
    for path in files:
        data = path.read_bytes()
        at = data.index(b"amsterdam") if path.suffix != ".pdf" else len(data) // 2
        tampered = tmp_path / f"tampered{path.suffix}"
        tampered.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
        assert main(["verify", str(tampered), "--keys", str(keys)]) == 1, path.suffix


def test_without_a_last_measurement_the_retention_run_warns_for_every_covenant_due(world: World) -> None:
    gw = world.gw
    world.at(LAST_DAYS)
    # Within the last quarter before the end the jurists are warned ahead (screening is due at the end itself).
    ahead = missing_measurements(gw.container.db, gw.container.policy, LAST_DAYS, horizon=NEW_YEAR - LAST_DAYS)
    assert {m.covenant_id for m in ahead} == LVV
    walk_through_the_end(world)
    with structlog.testing.capture_logs() as logs:
        world.retention_run()  # 2025-01-01: only Amsterdam has data due (its AVIM screening, P0D)
    warned = [e for e in logs if e["event"] == "retention.last_measurement_missing"]
    assert [e["covenants"] for e in warned] == [["lvv-amsterdam"]]
    assert warned[0]["log_level"] == "warning"
    with structlog.testing.capture_logs() as logs:
        walk_through_retention(world)  # and on: every region's data falls due
    warned = [e for e in logs if e["event"] == "retention.last_measurement_missing"]
    assert {c for e in warned for c in e["covenants"]} >= LVV
