"""The evidence commands (in-process) against a served gateway process: checkpoint, export, verify (and
tampering), status, key rotation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import LVV_CONFIG
from tests.support.cli import GATEWAY, run_cli
from tests.support.server import free_port

pytestmark = pytest.mark.slow  # a `gateway serve` process


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, cwd, env)  # in this process; `gateway serve` below is a real process


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A demo installation (keys, SQLite, synthetic participants) with its first checkpoint signed."""
    home = tmp_path_factory.mktemp("audit-demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_CONFIG_DIR"] = str(LVV_CONFIG)
    init = run(["demo", "init", "--per-city", "2"], home, env)
    assert init.returncode == 0, init.stderr
    signed = run(["audit", "checkpoint"], home, env)
    assert signed.returncode == 0, signed.stderr
    return home, env


def test_keys_init_also_creates_the_checkpoint_key(demo: tuple[Path, dict[str, str]]) -> None:
    home, _ = demo
    assert (home / "var" / "keys" / "checkpoint.ed25519").exists()
    published = json.loads((home / "var" / "keys" / "checkpoint-keys.json").read_text())
    assert [k["status"] for k in published["keys"]] == ["current"]


def test_checkpoint_prints_the_signed_checkpoint_over_the_seeded_entries(demo: tuple[Path, dict[str, str]]) -> None:
    home, env = demo
    again = run(["audit", "checkpoint"], home, env)
    assert again.returncode == 0
    lines = again.stdout.splitlines()
    assert lines[0] == "lvv-exchange-gateway.example/audit"
    assert int(lines[1]) > 0
    assert lines[3].startswith("time ")
    assert lines[5].startswith("\u2014 lvv-exchange-gateway.example/audit ")
    assert "no new entries" in again.stderr


def test_an_export_verifies_offline_and_an_edited_copy_fails_naming_the_entry(
    demo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, env = demo
    exported = run(["audit", "export", "--out", str(tmp_path / "export"), "--segment-entries", "4"], home, env)
    assert exported.returncode == 0, exported.stderr
    keys = tmp_path / "keys.txt"
    keys.write_text(run(["audit", "keys"], home, env).stdout)
    ok = run(["audit", "verify", str(tmp_path / "export"), "--keys", str(keys)], tmp_path, env)
    assert ok.returncode == 0, ok.stderr
    assert "log verified" in ok.stdout
    tampered = Path(shutil.copytree(tmp_path / "export", tmp_path / "tampered"))
    segment = tampered / "segments" / "000000000005-000000000008.jsonl"
    lines = segment.read_text().splitlines()
    lines[1] = lines[1].replace('"intake"', '"police_screening"')
    segment.write_text("\n".join(lines) + "\n")
    bad = run(["audit", "verify", str(tampered), "--keys", str(keys)], tmp_path, env)
    assert bad.returncode == 1
    assert "FAILED at entry 6" in bad.stderr


def test_the_status_command_reports_a_verified_log(demo: tuple[Path, dict[str, str]]) -> None:
    home, env = demo
    status = run(["audit", "status"], home, env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "verified: yes" in status.stdout
    as_json = run(["audit", "status", "--json"], home, env)
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["verified"] is True
    assert document["problem"] is None
    assert document["entries"] == int(status.stdout.split("entries: ")[1].split()[0]) > 0
    assert document["checkpoint"]["size"] <= document["entries"]


def test_after_a_key_rotation_old_and_new_checkpoints_verify_with_the_published_keys(
    demo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, env = demo
    rotated = run(["audit", "rotate-key"], home, env)
    assert rotated.returncode == 0, rotated.stderr
    port = free_port()
    log = (tmp_path / "serve.out").open("w")
    server = subprocess.Popen([GATEWAY, "serve", "--port", str(port)], cwd=home, env=env, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "serve.out").read_text()
            assert time.monotonic() < deadline, "server did not start: " + (tmp_path / "serve.out").read_text()
            time.sleep(0.2)
        token = run(["demo", "token", "--org", "amsterdam"], home, env).stdout.strip()
        headers = {"Authorization": f"Bearer {token}", "Acting-User": "demo.user", "Acting-Role": "case_manager"}
        assert httpx.get(f"{base}/v1/participants", headers=headers, timeout=60).status_code == 400  # no purpose
        published = httpx.get(f"{base}/v1/audit/keys", timeout=60).json()
        assert [k["status"] for k in published["keys"]] == ["retired", "current"]
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    signed = run(["audit", "checkpoint"], home, env)
    assert signed.returncode == 0, signed.stderr
    exported = run(["audit", "export", "--out", str(tmp_path / "export")], home, env)
    assert exported.returncode == 0, exported.stderr
    keys = tmp_path / "keys.txt"
    keys.write_text(run(["audit", "keys"], home, env).stdout)
    assert len(keys.read_text().splitlines()) == 2
    ok = run(["audit", "verify", str(tmp_path / "export"), "--keys", str(keys)], tmp_path, env)
    assert ok.returncode == 0, ok.stderr
    only_new = tmp_path / "new-key-only.txt"
    only_new.write_text(keys.read_text().splitlines()[1] + "\n")
    refused = run(["audit", "verify", str(tmp_path / "export"), "--keys", str(only_new)], tmp_path, env)
    assert refused.returncode == 1


def test_a_subject_reindex_is_logged_as_an_operator_access_before_it_opens_records(
    demo: tuple[Path, dict[str, str]],
) -> None:
    import re
    import sqlite3

    home, env = demo
    done = run(["subjects", "reindex"], home, env)
    assert done.returncode == 0, done.stderr
    seq = int(re.search(r"audit entry (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    with sqlite3.connect(home / "var" / "gateway.db") as conn:
        (text,) = conn.execute("SELECT entry FROM audit_entries WHERE seq = ?", (seq,)).fetchone()
    entry = json.loads(text)
    assert entry["event"] == "audit.subject_reindex"
    assert entry["organisation"] == "gateway-operator"
    assert entry["decision"] == "permit"
