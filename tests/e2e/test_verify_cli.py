"""`gateway verify` as a jurist runs it (the command in-process): an issued report passes in every format, and one
changed character fails it (exit 1); untrusted or missing keys fail too."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from starlette.responses import Response

from gateway.evidence import documents
from gateway.evidence.envelope import sign_document
from gateway.evidence.keys import EvidenceSigner, jwks, load_evidence_signer
from gateway.retention.model import METHOD, DestructionBatch, EpochFact
from tests.conftest import LVV_CONFIG
from tests.support.cli import run_cli
from tests.support.server import LiveServer


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, cwd, env)


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A gateway's database and keys, and the files of a revocation report issued with the command line.

    The clock is the real one: the LVV covenants ended on 2024-12-31 23:59:59, so a report can be issued.
    """
    home = tmp_path_factory.mktemp("verify")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_CONFIG_DIR": str(LVV_CONFIG),
        "GATEWAY_DATABASE_URL": f"sqlite:///{home}/gateway.db",
        "GATEWAY_KEY_DIR": str(home / "keys"),
        "GATEWAY_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "0",
    }
    for step in (["keys", "init"], ["db", "upgrade"]):
        done = run(step, home, env)
        assert done.returncode == 0, done.stderr
    report = run(["evidence", "revocation-report", "lvv-utrecht", "--out", "out"], home, env)
    assert report.returncode == 0, report.stderr + report.stdout
    keys = run(["evidence", "keys", "--out", "evidence-keys.json"], home, env)
    assert keys.returncode == 0, keys.stderr
    return home, env


FILES = [
    "revocation-report-lvv-utrecht-v1.json",
    "revocation-report-lvv-utrecht-v1.html",
    "revocation-report-lvv-utrecht-v1.pdf",
]


def test_the_issued_report_verifies_in_json_html_and_pdf(issued: tuple[Path, dict[str, str]]) -> None:
    home, env = issued
    done = run(["verify", *(f"out/{f}" for f in FILES), "--keys", "evidence-keys.json"], home, env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split(": ", 1)[1].split(":")[0] for line in lines] == ["VALID JSON", "VALID HTML", "VALID PDF"]
    assert all("revocation report" in line for line in lines)


@pytest.mark.parametrize("name", FILES)
def test_one_changed_character_fails_verification(issued: tuple[Path, dict[str, str]], name: str) -> None:
    home, env = issued
    original = (home / "out" / name).read_bytes()
    if name.endswith(".pdf"):
        at = len(original) // 2  # somewhere in the middle of the PDF's objects
        tampered = original[:at] + bytes([original[at] ^ 0x01]) + original[at + 1 :]
    else:
        at = original.index(b"lvv-utrecht") + len("lvv-utrech")
        tampered = original[:at] + b"T" + original[at + 1 :]
    assert len(tampered) == len(original)
    assert sum(a != b for a, b in zip(original, tampered, strict=True)) == 1
    (home / f"tampered-{name}").write_bytes(tampered)
    done = run(["verify", f"tampered-{name}", "--keys", "evidence-keys.json"], home, env)
    assert done.returncode == 1, done.stdout
    assert "INVALID" in done.stderr


def test_a_report_checked_against_keys_that_did_not_sign_it_fails(issued: tuple[Path, dict[str, str]]) -> None:
    home, env = issued
    stranger = EvidenceSigner(Ed25519PrivateKey.generate())
    (home / "other-keys.json").write_text(json.dumps(jwks([stranger.public])))
    done = run(["verify", f"out/{FILES[0]}", "--keys", "other-keys.json"], home, env)
    assert done.returncode == 1
    assert "not among the trusted" in done.stderr


def test_keys_can_be_fetched_from_the_published_url(issued: tuple[Path, dict[str, str]]) -> None:
    home, env = issued
    published = (home / "evidence-keys.json").read_bytes()
    app = FastAPI()

    @app.get("/.well-known/evidence-keys.json")
    def keys() -> Response:
        return Response(published, media_type="application/json")

    with LiveServer(app) as server:
        done = run(["verify", f"out/{FILES[2]}", "--keys", f"{server.url}/.well-known/evidence-keys.json"], home, env)
    assert done.returncode == 0, done.stderr


def test_without_any_trusted_keys_nothing_is_called_valid(issued: tuple[Path, dict[str, str]]) -> None:
    home, env = issued
    done = run(["verify", f"out/{FILES[0]}", "--keys", "no-such-file.json"], home, env)
    assert done.returncode == 2
    assert "cannot check" in done.stderr


# -- a destruction record's statement about backups must follow from its signed facts ------------------


def destruction_record(epoch_state: str) -> dict[str, Any]:
    """Return a synthetic destruction record whose destroyed keys were all in epoch due-2025-07."""
    batch = DestructionBatch(
        run_id="00000000-0000-4000-8000-00000000d001",
        status="completed",
        as_of=datetime(2025, 7, 15, tzinfo=UTC),
        started_at=datetime(2025, 7, 15, tzinfo=UTC),
        finished_at=datetime(2025, 7, 15, 0, 0, 5, tzinfo=UTC),
        authority="Besluit vernietiging (synthetic)",
        acting_user="archivist.1",
        organisation="amsterdam",
        method=METHOD,
        categories=(),
        grounds=(),
        participants=2,
        keys_destroyed=6,
        records_deleted=6,
        period_from=None,
        period_until=None,
        kept=(),
        audit_seq_first=None,
        audit_seq_last=None,
        policy_version="sha256:synthetic",
        epochs=(
            EpochFact(
                "due-2025-07",
                6,
                epoch_state,
                datetime(2025, 8, 1, 0, 0, 9, tzinfo=UTC) if epoch_state == "destroyed" else None,
                None if epoch_state == "destroyed" else datetime(2025, 7, 31, 22, 0, tzinfo=UTC),
            ),
        ),
    )
    return documents.destruction_record(
        batch, None, "00000000-0000-4000-8000-00000000d002", datetime(2025, 7, 15, 1, tzinfo=UTC), 1,
        "jurist.synthetic", "lvv", False,
    )  # fmt: skip


def test_verify_refuses_a_validly_signed_destruction_record_whose_statement_overstates(
    issued: tuple[Path, dict[str, str]],
) -> None:
    home, env = issued
    signer = load_evidence_signer(home / "keys")
    assert signer is not None
    honest = destruction_record("live")
    (home / "honest.json").write_bytes(sign_document(honest, signer).file_bytes)
    done = run(["verify", "honest.json", "--keys", "evidence-keys.json"], home, env)
    assert done.returncode == 0, done.stderr
    assert "stays readable with the key store" in honest["backups"]["statements"][1]

    # The sentence a destroyed epoch would earn, put into a record whose epoch is not destroyed: signed all the same.
    overstated = copy.deepcopy(honest)
    overstated["backups"]["statements"][1] = destruction_record("destroyed")["backups"]["statements"][1]
    assert "unreadable in database backups" in overstated["backups"]["statements"][1]
    (home / "overstated.json").write_bytes(sign_document(overstated, signer).file_bytes)
    done = run(["verify", "overstated.json", "--keys", "evidence-keys.json"], home, env)
    assert done.returncode == 1, done.stdout
    assert "overstates" in done.stderr
    assert "due-2025-07" in done.stderr


def test_verify_refuses_a_destruction_record_of_the_old_format_that_claimed_every_backup_unreadable(
    issued: tuple[Path, dict[str, str]],
) -> None:
    home, env = issued
    signer = load_evidence_signer(home / "keys")
    assert signer is not None
    old = destruction_record("live")
    del old["backups"]
    old["format_version"] = 1
    old["method_explained"] = "... unrecoverable, from the database and from any backup, even with the KEK."
    (home / "old.json").write_bytes(sign_document(old, signer).file_bytes)
    done = run(["verify", "old.json", "--keys", "evidence-keys.json"], home, env)
    assert done.returncode == 1, done.stdout
    assert "no key-epoch facts" in done.stderr
