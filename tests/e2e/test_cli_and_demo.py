"""The newcomer's path: demo init and config check (the command in-process), serve as a real process, the
printed examples."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LVV_CONFIG
from tests.support.cli import GATEWAY, run_cli
from tests.support.server import free_port

pytestmark = pytest.mark.slow  # `gateway serve` processes


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, cwd, env)  # in this process; `gateway serve` below is a real process


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], str, str]]:
    home = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "GATEWAY_CONFIG_DIR": str(LVV_CONFIG)}
    env = {k: v for k, v in env.items() if not k.startswith("GATEWAY_") or k == "GATEWAY_CONFIG_DIR"}
    init = run(["demo", "init", "--per-city", "2"], home, env)
    assert init.returncode == 0, init.stderr
    port = free_port()
    log = (home / "serve.out").open("w")
    server = subprocess.Popen([GATEWAY, "serve", "--port", str(port)], cwd=home, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (home / "serve.out").read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield home, env, base, (home / "serve.out").read_text()
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def example_requests(printed: str) -> list[tuple[str, str, dict[str, str]]]:
    """Parse the printed curl examples into (org of the token, url, headers)."""
    out: list[tuple[str, str, dict[str, str]]] = []
    org = ""
    for block in printed.replace("\\\n", " ").splitlines():
        token = re.search(r"demo token --org (\S+?)\)", block)
        if token:
            org = token.group(1)
        call = re.search(r"curl -s (\S+) (.*?)\|", block)
        if call:
            headers = dict(re.findall(r'-H "([^:]+): ([^"]*)"', call.group(2)))
            out.append((org, call.group(1), headers))
    return out


def test_demo_init_seeds_synthetic_participants_and_is_idempotent(demo: tuple[Path, dict[str, str], str, str]) -> None:
    home, env, _, _ = demo
    seeded = json.loads((home / "var" / "demo.json").read_text())
    assert seeded["participants"] == 10
    again = run(["demo", "init"], home, env)
    assert again.returncode == 0
    assert "already present" in again.stdout


def test_the_printed_examples_show_a_permitted_a_cut_down_and_a_denied_read(
    demo: tuple[Path, dict[str, str], str, str],
) -> None:
    home, env, _, printed = demo
    calls = example_requests(printed)
    assert len(calls) == 5, printed
    results = []
    for org, url, headers in calls:
        token = run(["demo", "token", "--org", org], home, env)
        assert token.returncode == 0, token.stderr
        headers = {k: v.replace("$TOKEN", token.stdout.strip()) for k, v in headers.items()}
        results.append(httpx.get(url, headers=headers, timeout=60))
    full, cut, denied, hidden, brokered = results
    assert full.status_code == 200
    assert cut.status_code == 200
    assert set(cut.json()["records"]["case_plan"]["fields"]) < set(full.json()["records"]["case_plan"]["fields"])
    assert "screening" in full.json()["records"]
    assert "screening" not in cut.json()["records"]
    assert denied.status_code == 403
    assert denied.json()["code"] == "no_rule_for_purpose"
    assert hidden.status_code == 404
    assert brokered.status_code == 200
    assert set(brokered.json()["records"]["case_plan"]["fields"]) == {"phase", "next_lso_date"}
    assert brokered.json()["records"]["case_plan"]["written_at"] != full.json()["records"]["identity"]["written_at"]
    # the case plan came from the CVS simulator: the demo's database holds none for Amsterdam
    assert (home / "var" / "demo-cvs.json").exists()


def test_an_operator_imports_an_ngo_csv_with_progress_and_a_report(demo: tuple[Path, dict[str, str], str, str]) -> None:
    home, env, _, _ = demo
    ngo = json.loads((home / "var" / "demo.json").read_text())["example"]["ngo-opvang-amsterdam"]
    delivery = home / "notes.csv"
    delivery.write_text(f"participant,notes,last_contact_date\n{ngo},synthetic note,2024-11-14\nnobody,x,\n")
    refused = run(
        ["import", "csv", str(delivery), "--category", "counselling_notes", "--source", "ngo-opvang-amsterdam"],
        home,
        env,
    )
    assert refused.returncode == 1, refused.stderr
    assert "nothing imported" in refused.stdout
    assert "3,,bad_participant" in (home / "notes.csv.rejected.csv").read_text()
    args = ["import", "csv", str(delivery), "--category", "counselling_notes", "--source", "ngo-opvang-amsterdam"]
    imported = run([*args, "--partial", "--progress"], home, env)
    assert imported.returncode == 0, imported.stderr
    assert "imported: 1 of 2 rows imported, 1 rejected" in imported.stdout
    assert "100.0%" in imported.stderr
    again = run([*args, "--partial"], home, env)
    assert again.returncode == 0
    assert "already_imported: 1 of 2 rows imported" in again.stdout
    assert "3,,bad_participant" in (home / "notes.csv.rejected.csv").read_text()  # the report is kept


def test_the_audit_chain_of_the_demo_verifies(demo: tuple[Path, dict[str, str], str, str]) -> None:
    home, env, _, _ = demo
    result = run(["audit", "verify-chain"], home, env)
    assert result.returncode == 0, result.stderr
    assert "audit chain intact" in result.stdout


def test_demo_tokens_are_refused_outside_demo_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = run(["demo", "token", "--org", "amsterdam"], tmp_path, env)
    assert result.returncode == 2
    assert "refused" in result.stderr


def test_config_check_accepts_the_shipped_configuration(tmp_path: Path) -> None:
    result = run(["config", "check", "--config", str(LVV_CONFIG)], tmp_path, dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "policy version sha256:" in result.stdout


def test_config_check_lists_every_error_at_once_and_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(LVV_CONFIG, broken)
    rules = (broken / "rules.yaml").read_text()
    (broken / "rules.yaml").write_text(rules.replace("purpose: intake", "purpose: intaek", 1))
    covenants = (broken / "covenants.yaml").read_text()
    (broken / "covenants.yaml").write_text(
        covenants.replace("timezone: Europe/Amsterdam", "timezone: Europe/Atlantis", 1)
    )
    result = run(["config", "check", "--config", str(broken)], tmp_path, dict(os.environ))
    assert result.returncode == 1
    assert "rules.yaml: rule '" in result.stderr
    assert "'intaek' is not in purposes.yaml" in result.stderr
    assert "covenants.yaml: covenant '" in result.stderr
    assert "Europe/Atlantis" in result.stderr


def test_the_server_refuses_to_start_on_an_invalid_configuration(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(LVV_CONFIG, broken)
    (broken / "purposes.yaml").write_text("- id: intake\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_CONFIG_DIR"] = str(broken)
    run(["keys", "init"], tmp_path, env)
    result = subprocess.run(
        [GATEWAY, "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "purposes.yaml" in result.stderr
