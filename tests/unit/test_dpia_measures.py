"""Every technical measure the DPIA lists points to a test that exists (collected from the sources with ast)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from gateway.dpia.measures import INHERENT_RISKS, MEASURES
from gateway.dpia.risks import findings
from gateway.policies.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_DPIA = ROOT / "dpia" / "lvv" / "dpia.md"
TEST_REF = re.compile(r"tests/[\w/]+\.py::\w+(?:::\w+)?")


def collected_test_ids() -> set[str]:
    """Return 'tests/<file>.py::<test>' (and '::<Class>::<test>') for every test function in the tests directory."""
    ids: set[str] = set()
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                ids.add(f"{relative}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                ids.update(
                    f"{relative}::{node.name}::{item.name}"
                    for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test")
                )
    return ids


def test_every_measure_points_to_tests_that_exist() -> None:
    existing = collected_test_ids()
    missing = [f"{m.id}: {test}" for m in MEASURES for test in m.tests if test not in existing]
    assert not missing, "measures name tests that do not exist:\n" + "\n".join(missing)
    assert all(m.tests for m in MEASURES)


def test_every_test_named_in_the_committed_dpia_exists() -> None:
    named = set(TEST_REF.findall(COMMITTED_DPIA.read_text(encoding="utf-8")))
    assert named, "the committed DPIA names no tests"
    assert named <= collected_test_ids(), (
        f"the DPIA names tests that do not exist: {sorted(named - collected_test_ids())}"
    )
    assert {t for m in MEASURES for t in m.tests} <= named


def test_every_risk_is_countered_by_measures_that_exist() -> None:
    ids = {m.id for m in MEASURES}
    for risk in INHERENT_RISKS:
        assert risk.measures, risk.id
        assert set(risk.measures) <= ids, risk.id
    for finding in findings(load_config(ROOT / "config" / "lvv")):
        assert set(finding.measures) <= ids, finding.id
