"""`gateway dpia generate / check / diff` (the command in-process), on copies of the shipped configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LVV_CONFIG, ROOT
from tests.support.cli import run_cli

MEDICAL_OUTCOME = "{category: medical, fields: [bma_advice, medische_nood]}"


def gateway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return run_cli(args, cwd, env)


def bullet_lines(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("- ")]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of config/lvv (as <tmp>/config/lvv) with its documents generated in <tmp>/dpia/lvv."""
    shutil.copytree(LVV_CONFIG, tmp_path / "config" / "lvv")
    result = gateway("dpia", "generate", "--config", "config/lvv", "--out", "dpia", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_changing_one_sharing_rule_makes_dpia_check_fail_until_regenerated(workspace: Path) -> None:
    assert gateway("dpia", "check", "--config", "config/lvv", cwd=workspace).returncode == 0
    edit(workspace / "config/lvv/rules.yaml", MEDICAL_OUTCOME, '{category: medical, fields: "*"}')

    failed = gateway("dpia", "check", "--config", "config/lvv", cwd=workspace)
    assert failed.returncode == 1
    assert "STALE" in failed.stderr
    assert "processing activity 'Medisch advies' changed" in failed.stderr
    assert "dpia/lvv/dpia.md is stale" in failed.stderr
    assert "dpia/lvv/register.json is stale" in failed.stderr
    assert "is not in dpia/lvv/versions.json" in failed.stderr

    assert gateway("dpia", "generate", "--config", "config/lvv", cwd=workspace).returncode == 0
    passed = gateway("dpia", "check", "--config", "config/lvv", cwd=workspace)
    assert passed.returncode == 0, passed.stderr
    index = json.loads((workspace / "dpia/lvv/versions.json").read_text())
    assert len(index["policyVersions"]) == 2, "the earlier policy version stays mappable"


def test_dpia_diff_names_a_changed_sharing_rule_in_one_sentence(workspace: Path) -> None:
    shutil.copytree(workspace / "config/lvv", workspace / "new/lvv")
    edit(workspace / "new/lvv/rules.yaml", MEDICAL_OUTCOME, '{category: medical, fields: "*"}')
    result = gateway("dpia", "diff", "config/lvv", "new/lvv", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert bullet_lines(result.stdout) == [
        "Gemeente Amsterdam, Gemeente Rotterdam, Gemeente Utrecht, Gemeente Groningen and Gemeente Eindhoven may now "
        "also read condition_summary of medical data ('Medische gegevens', special (art. 9)) for purpose "
        "'Medisch advies' (medical_advice) under covenants lvv-amsterdam, lvv-rotterdam, lvv-utrecht, lvv-groningen, "
        "lvv-eindhoven."
    ]


def test_dpia_diff_explains_the_change_between_two_git_revisions(workspace: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "GIT_"))},
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "commit.gpgsign=false", *args],
            cwd=workspace,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    git("init", "-q")
    git("add", "config")
    git("commit", "-q", "-m", "shipped configuration")
    edit(
        workspace / "config/lvv/retention.yaml",
        "duration: P3M\n  action: destroy\n  legal_source: Convenant LVV; AVG art. 5 lid 1 sub e\n",
        "duration: P1M\n  action: destroy\n  legal_source: Convenant LVV; AVG art. 5 lid 1 sub e\n",
    )
    git("commit", "-q", "-am", "shorter retention of counselling notes")

    result = gateway("dpia", "diff", "HEAD~1", "HEAD", "--config", "config/lvv", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert bullet_lines(result.stdout) == [
        "Retention of Begeleidingsnotities (counselling_notes) shortened from P3M (3 months) to P1M (1 month)."
    ]
    unknown = gateway("dpia", "diff", "no-such-revision", "HEAD", "--config", "config/lvv", cwd=workspace)
    assert unknown.returncode == 2
    assert "no-such-revision" in unknown.stderr


def test_the_committed_documents_are_current_for_the_shipped_configuration() -> None:
    result = gateway("dpia", "check", "--config", "config/lvv", "--out", "dpia", cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_an_english_rendition_is_generated_on_request_and_kept_current_by_check(workspace: Path) -> None:
    result = gateway("dpia", "generate", "--config", "config/lvv", "--lang", "en", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert "wrote dpia/lvv/dpia.en.md" in result.stdout
    assert "## Introduction" in (workspace / "dpia/lvv/dpia.en.md").read_text(encoding="utf-8")
    assert "## Inleiding" in (workspace / "dpia/lvv/dpia.md").read_text(encoding="utf-8")
    assert gateway("dpia", "check", "--config", "config/lvv", cwd=workspace).returncode == 0

    edit(workspace / "config/lvv/rules.yaml", MEDICAL_OUTCOME, '{category: medical, fields: "*"}')
    assert gateway("dpia", "generate", "--config", "config/lvv", cwd=workspace).returncode == 0
    failed = gateway("dpia", "check", "--config", "config/lvv", cwd=workspace)
    assert failed.returncode == 1
    assert "dpia/lvv/dpia.en.md is stale" in failed.stderr
    assert "dpia/lvv/dpia.md is stale" not in failed.stderr
