"""The monitor's configuration: the shipped one loads against the policy; indicators that count from a
field the policy does not have, or from a national identifier, are refused by `gateway config check`;
values fall into the right columns (a boolean never counts as the number 1)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.monitor.compute import ParticipantFacts, column_of, count_tables, period_of, periods_between
from gateway.monitor.config import Bucket, load_monitor
from gateway.policies.loader import ConfigError, load_config

CONFIG = Path(__file__).resolve().parents[2] / "config" / "lvv"


def test_the_shipped_monitor_counts_only_fields_of_the_policy() -> None:
    monitor = load_monitor(CONFIG, load_config(CONFIG))
    assert monitor is not None
    assert monitor.fields()["case_plan"] == ("perspective", "phase")
    assert monitor.version.startswith("sha256:")


@pytest.mark.parametrize(
    ("field", "message"),
    [("no_such_field", "is not a field of category 'case_plan'"), ("v_number", "national identifier")],
)
def test_config_check_refuses_an_indicator_on_an_unknown_field_or_a_national_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, message: str
) -> None:
    directory = tmp_path / "lvv"
    shutil.copytree(CONFIG, directory)
    text = (directory / "monitor.yaml").read_text()
    category = "identity" if field == "v_number" else "case_plan"
    text = text.replace("category: case_plan\n    field: phase", f"category: {category}\n    field: {field}", 1)
    (directory / "monitor.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_monitor(directory, load_config(directory))
    assert message in str(caught.value)
    assert main(["config", "check", "--config", str(directory)]) == 1
    assert message in capsys.readouterr().err


def test_a_boolean_never_counts_as_a_number_and_ranges_count_numbers() -> None:
    assert not Bucket(label="een", values=(1,)).holds(True)
    assert not Bucket(label="waar", values=(True,)).holds(1)
    assert Bucket(label="waar", values=(True,)).holds(True)
    two_or_more = Bucket(label="2+", min=2)
    assert two_or_more.holds(2)
    assert two_or_more.holds(7)
    assert not two_or_more.holds(1)
    assert not two_or_more.holds("3")


def test_periods_are_calendar_periods_and_every_participant_counts_once_per_indicator() -> None:
    assert period_of(date(2024, 11, 15), "quarter") == "2024-Q4"
    assert period_of(date(2024, 11, 15), "month") == "2024-11"
    assert periods_between("2024-Q3", "2025-Q2", "quarter") == ("2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2")
    monitor = load_monitor(CONFIG, load_config(CONFIG))
    assert monitor is not None
    facts = [
        ParticipantFacts("amsterdam", date(2024, 5, 1), {("case_plan", "phase"): "opvangfase"}),
        ParticipantFacts("amsterdam", date(2024, 11, 1), {("case_plan", "phase"): "iets anders"}),
        ParticipantFacts("rotterdam", date(2018, 1, 1), {}),  # before the start: counted in the first period
    ]
    phase = next(i for i in monitor.indicators if i.id == "fase")
    assert [column_of(phase, f.values) for f in facts] == ["Opvangfase", "Niet vastgelegd", "Niet vastgelegd"]
    tables = count_tables(monitor, facts, ["amsterdam", "rotterdam"])
    for table in tables:
        assert table.count("*", "*") == 3
        assert table.count("amsterdam", "*") == 2
    assert tables[0].cols[0] == "2019-Q2"


def test_intake_counts_a_refusal_by_its_reason_and_a_refusal_without_a_known_reason_as_other() -> None:
    monitor = load_monitor(CONFIG, load_config(CONFIG))
    assert monitor is not None
    intake = next(i for i in monitor.indicators if i.id == "intake_besluit")
    assert monitor.fields()["intake"] == ("admission_decision", "refusal_reason")
    assert intake.counted_from == "intake.admission_decision, intake.refusal_reason"

    def column(**fields: object) -> str:
        return column_of(intake, {("intake", name): value for name, value in fields.items()})

    assert column(admission_decision="toegelaten") == "Toegelaten"
    # A reason recorded with an admission does not make it a refusal.
    assert column(admission_decision="toegelaten", refusal_reason="dublinclaim") == "Toegelaten"
    assert column(admission_decision="afgewezen", refusal_reason="regiobinding") == "Afgewezen: regiobinding"
    assert column(admission_decision="afgewezen", refusal_reason="dublinclaim") == "Afgewezen: Dublinclaim"
    assert column(admission_decision="afgewezen", refusal_reason="overig") == "Afgewezen: andere reden"
    assert column(admission_decision="afgewezen") == "Afgewezen: andere reden"
    assert column(admission_decision="afgewezen", refusal_reason=None) == "Afgewezen: andere reden"
    assert column(refusal_reason="regiobinding") == "Niet vastgelegd"
    assert column() == "Niet vastgelegd"


@pytest.mark.parametrize(
    ("where_field", "message"),
    [
        ("no_such_field", "'no_such_field' is not a field of category 'intake'"),
        ("admission_decision", "names a second field, not the indicator's own"),
    ],
)
def test_config_check_refuses_a_column_condition_on_an_unknown_field_or_the_indicators_own(
    tmp_path: Path, where_field: str, message: str
) -> None:
    directory = tmp_path / "lvv"
    shutil.copytree(CONFIG, directory)
    text = (directory / "monitor.yaml").read_text()
    text = text.replace("where: {field: refusal_reason,", f"where: {{field: {where_field},", 1)
    (directory / "monitor.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_monitor(directory, load_config(directory))
    assert message in str(caught.value)


def test_a_column_condition_never_counts_from_a_national_identifier(tmp_path: Path) -> None:
    directory = tmp_path / "lvv"
    shutil.copytree(CONFIG, directory)
    text = (directory / "monitor.yaml").read_text()
    text = text.replace("category: case_plan\n    field: phase", "category: identity\n    field: nationality", 1)
    text = text.replace(
        "{label: Onderzoeksfase, values: [onderzoeksfase]}",
        "{label: Onderzoeksfase, values: [XXA], where: {field: v_number, values: [DEMO-V-00001]}}",
        1,
    )
    (directory / "monitor.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_monitor(directory, load_config(directory))
    assert "national identifier" in str(caught.value)
