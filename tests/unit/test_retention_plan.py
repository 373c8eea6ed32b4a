"""What a retention run destroys and keeps: a pure function of policy, live keys, holds and the moment."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from gateway.lifecycle.model import CovenantRevocation, HoldReason, LegalHold, LifecycleFacts
from gateway.policies.compiled import CompiledPolicy, compile_policy
from gateway.policies.loader import load_config
from gateway.retention.model import KeepReason, LiveKey, RetentionPlan
from gateway.retention.plan import plan, region_ends

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "lvv"
AMS = ZoneInfo("Europe/Amsterdam")
POLICY = compile_policy(load_config(CONFIG_DIR))
END = datetime(2025, 1, 1, 0, 0, tzinfo=AMS)


def key(pid: str, category: str, region: str = "amsterdam", written: datetime | None = None) -> LiveKey:
    return LiveKey(pid, region, category, written)


def hold(pid: str, set_at: datetime, lifted_at: datetime | None = None) -> LegalHold:
    return LegalHold(
        id=f"h-{pid}",
        participant_id=pid,
        region="amsterdam",
        reason=HoldReason.APPEAL,
        case_reference="AWB 25/0001 (synthetic)",
        organisation="amsterdam",
        set_by="jurist.1",
        set_at=set_at,
        set_audit_seq=1,
        lifted_at=lifted_at,
        lifted_by="jurist.1" if lifted_at else None,
    )


def due_of(result: RetentionPlan) -> set[tuple[str, str]]:
    return {(d.participant_id, d.category) for d in result.due}


def kept(result: RetentionPlan, reason: KeepReason) -> dict[str, int]:
    return {k.category: k.keys for k in result.kept_groups if k.reason is reason}


def test_the_covenant_end_trigger_is_the_latest_end_of_the_covenants_covering_the_region() -> None:
    ends = region_ends(POLICY)
    assert ends["amsterdam"] == END
    assert ends["utrecht"] == datetime(2026, 1, 1, 0, 0, tzinfo=AMS)  # the local successor keeps the data


def test_a_category_is_due_exactly_when_its_period_after_the_covenant_end_has_passed() -> None:
    keys = [key("p1", "screening"), key("p1", "identity"), key("p1", "contact")]
    at_end = plan(POLICY, keys, {}, END - timedelta(seconds=1))
    assert due_of(at_end) == set()
    assert due_of(plan(POLICY, keys, {}, END)) == {("p1", "screening")}  # P0D: at the end itself
    three_months = datetime(2025, 4, 1, tzinfo=AMS)
    assert due_of(plan(POLICY, keys, {}, three_months - timedelta(seconds=1))) == {("p1", "screening")}
    assert due_of(plan(POLICY, keys, {}, three_months)) == {("p1", "screening"), ("p1", "contact")}
    six_months = plan(POLICY, keys, {}, datetime(2025, 7, 1, tzinfo=AMS))  # P6M in local calendar time (CEST)
    assert due_of(six_months) == {("p1", "screening"), ("p1", "contact"), ("p1", "identity")}
    identity = next(d for d in six_months.due if d.category == "identity")
    assert identity.due_at == datetime(2025, 7, 1, 0, 0, tzinfo=AMS)
    assert identity.rule_id == "identity-after-covenant"
    assert identity.trigger == "covenant_end"


def test_a_region_with_a_successor_covenant_keeps_its_data_until_the_successor_ends() -> None:
    keys = [key("u1", "screening", "utrecht")]
    assert due_of(plan(POLICY, keys, {}, datetime(2025, 6, 1, tzinfo=AMS))) == set()
    assert due_of(plan(POLICY, keys, {}, datetime(2026, 1, 1, tzinfo=AMS))) == {("u1", "screening")}


def test_a_participant_under_an_active_hold_is_kept_whatever_is_due() -> None:
    keys = [key("p1", "screening"), key("p2", "screening")]
    result = plan(POLICY, keys, {"p1": [hold("p1", END - timedelta(days=30))]}, datetime(2030, 1, 1, tzinfo=AMS))
    assert due_of(result) == {("p2", "screening")}
    assert kept(result, KeepReason.ON_HOLD) == {"screening": 1}


def test_lifting_a_hold_restarts_the_retention_clock_at_the_lift() -> None:
    lifted = datetime(2025, 9, 15, 14, 30, tzinfo=AMS)
    holds = {"p1": [hold("p1", END - timedelta(days=30), lifted)]}
    keys = [key("p1", "screening"), key("p1", "identity")]
    assert due_of(plan(POLICY, keys, holds, lifted - timedelta(seconds=1))) == set()
    at_lift = plan(POLICY, keys, holds, lifted)
    assert due_of(at_lift) == {("p1", "screening")}
    (item,) = at_lift.due
    assert item.restarted_by_hold
    assert item.trigger_at == lifted
    six_months = datetime(2026, 3, 15, 14, 30, tzinfo=AMS)
    assert ("p1", "identity") not in due_of(plan(POLICY, keys, holds, six_months - timedelta(seconds=1)))
    assert ("p1", "identity") in due_of(plan(POLICY, keys, holds, six_months))


def test_a_hold_lifted_before_the_covenant_end_does_not_postpone_anything() -> None:
    holds = {"p1": [hold("p1", END - timedelta(days=60), END - timedelta(days=30))]}
    result = plan(POLICY, [key("p1", "screening")], holds, END)
    assert due_of(result) == {("p1", "screening")}
    assert not result.due[0].restarted_by_hold


def test_a_revocation_brings_the_covenant_end_trigger_forward() -> None:
    at = datetime(2024, 12, 1, 12, 0, tzinfo=AMS)
    revocation = CovenantRevocation("lvv-amsterdam", at, "test", "REF", "amsterdam", "j", at - timedelta(days=2), 1)
    policy = POLICY.with_lifecycle(LifecycleFacts(1, MappingProxyType({"lvv-amsterdam": revocation})))
    assert due_of(plan(policy, [key("p1", "screening")], {}, at)) == {("p1", "screening")}
    assert due_of(plan(POLICY, [key("p1", "screening")], {}, at)) == set()


def _variant(tmp_path: Path, rule_id: str, **changes: Any) -> CompiledPolicy:
    copy = tmp_path / "lvv"
    shutil.copytree(CONFIG_DIR, copy)
    path = copy / "retention.yaml"
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    for entry in entries:
        if entry["id"] == rule_id:
            entry.update(changes)
            for name in [k for k, v in changes.items() if v is None]:
                del entry[name]
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return compile_policy(load_config(copy))


def test_an_archive_rule_keeps_permanently(tmp_path: Path) -> None:
    policy = _variant(tmp_path, "screening-at-covenant-end", action="archive", duration=None)
    result = plan(policy, [key("p1", "screening")], {}, datetime(2099, 1, 1, tzinfo=AMS))
    assert due_of(result) == set()
    assert kept(result, KeepReason.ARCHIVE) == {"screening": 1}


def test_a_trigger_the_gateway_has_no_fact_for_keeps_and_says_so(tmp_path: Path) -> None:
    policy = _variant(tmp_path, "screening-at-covenant-end", trigger="case_closed")
    result = plan(policy, [key("p1", "screening")], {}, datetime(2099, 1, 1, tzinfo=AMS))
    assert due_of(result) == set()
    assert kept(result, KeepReason.TRIGGER_UNKNOWN) == {"screening": 1}


def test_the_recorded_trigger_counts_from_the_last_write(tmp_path: Path) -> None:
    policy = _variant(tmp_path, "screening-at-covenant-end", trigger="recorded", duration="P1Y")
    written = datetime(2024, 3, 10, 9, 0, tzinfo=AMS)
    keys = [key("p1", "screening", written=written)]
    assert due_of(plan(policy, keys, {}, datetime(2025, 3, 10, 8, 59, tzinfo=AMS))) == set()
    assert due_of(plan(policy, keys, {}, datetime(2025, 3, 10, 9, 0, tzinfo=AMS))) == {("p1", "screening")}


def test_a_category_without_a_retention_rule_is_kept_and_listed() -> None:
    result = plan(POLICY, [key("p1", "unlisted_category")], {}, datetime(2099, 1, 1, tzinfo=AMS))
    assert kept(result, KeepReason.NO_RULE) == {"unlisted_category": 1}


def test_the_dry_run_groups_say_rule_legal_source_counts_and_due_dates() -> None:
    keys = [key(f"p{i}", "screening") for i in range(3)] + [key("p0", "contact")]
    result = plan(POLICY, keys, {}, datetime(2025, 4, 1, tzinfo=AMS))
    groups = {g.category: g for g in result.due_groups}
    assert groups["screening"].keys == 3
    assert groups["screening"].participants == 3
    assert groups["screening"].rule_id == "screening-at-covenant-end"
    assert "UAVG art. 33" in groups["screening"].legal_source
    assert groups["screening"].suggestion
    assert groups["contact"].earliest_due == datetime(2025, 4, 1, tzinfo=AMS)
    assert result.participants_due == 3
    not_due = {k.category: k for k in result.kept_groups if k.reason is KeepReason.NOT_DUE}
    assert not_due == {}
