"""`gateway audit witness` against a live gateway on loopback: it keeps checkpoints that extend the last
one it kept, and refuses (non-zero exit, evidence kept) a log that was rewritten or shows two histories."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.audit.checkpoint import parse
from gateway.cli import main
from tests.conftest import Gateway
from tests.support.audit_log import append_entries, rewrite_history


def seal(gw: Gateway) -> int:
    assert gw.container.sealer is not None
    gw.container.sealer.seal()
    return parse(gw.http.get("/v1/audit/checkpoint").text).checkpoint.size


def run_witness(gw: Gateway, state: Path) -> int:
    return main(["audit", "witness", "--url", gw.url, "--state", str(state)])


def rewrite(gw: Gateway, seq: int) -> None:
    settings = gw.container.settings
    rewrite_history(gw.container.db, settings.key_dir, seq, "acting_user", "someone.else", settings.audit_origin)


def test_the_witness_keeps_the_first_checkpoint_and_pins_the_gateways_keys(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.register()
    size = seal(gateway)
    assert run_witness(gateway, tmp_path) == 0
    assert "pinned" in capsys.readouterr().out
    kept = parse((tmp_path / "checkpoint.txt").read_text())
    assert kept.checkpoint.size == size
    assert (tmp_path / "checkpoints" / f"{size:012d}.txt").exists()
    assert (tmp_path / "keys.txt").read_text().startswith(gateway.container.settings.audit_origin + "+")


def test_the_witness_keeps_a_later_checkpoint_that_extends_the_one_it_kept(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.register()
    first = seal(gateway)
    assert run_witness(gateway, tmp_path) == 0
    gateway.register()
    gateway.register()
    second = seal(gateway)
    assert run_witness(gateway, tmp_path) == 0
    assert f"extends the one kept at size {first}" in capsys.readouterr().out
    assert parse((tmp_path / "checkpoint.txt").read_text()).checkpoint.size == second
    assert run_witness(gateway, tmp_path) == 0  # nothing new: the same checkpoint again is fine


def test_the_witness_refuses_a_log_rewritten_and_re_signed_with_the_gateways_key(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        gateway.register()
    kept = seal(gateway)
    assert run_witness(gateway, tmp_path) == 0
    rewrite(gateway, 2)
    append_entries(gateway.container.db, 100, 4)
    assert seal(gateway) > kept
    assert run_witness(gateway, tmp_path) == 1
    assert "does not extend the one kept" in capsys.readouterr().err
    assert parse((tmp_path / "checkpoint.txt").read_text()).checkpoint.size == kept
    assert len(list((tmp_path / "rejected").glob("*.txt"))) == 1


def test_the_witness_refuses_a_second_tree_of_the_size_it_kept(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.register()
    seal(gateway)
    assert run_witness(gateway, tmp_path) == 0
    rewrite(gateway, 1)
    assert run_witness(gateway, tmp_path) == 1
    assert "split view" in capsys.readouterr().err


def test_the_witness_refuses_a_checkpoint_signed_by_a_key_it_does_not_trust(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.audit.checkpoint import VerifierKey, raw_public_key

    gateway.register()
    seal(gateway)
    stranger = VerifierKey(
        gateway.container.settings.audit_origin, raw_public_key(Ed25519PrivateKey.generate().public_key())
    )
    keys = tmp_path / "trusted.txt"
    keys.write_text(stranger.encode() + "\n")
    state = tmp_path / "state"
    code = main(["audit", "witness", "--url", gateway.url, "--state", str(state), "--keys", str(keys)])
    assert code == 1
    assert "does not verify" in capsys.readouterr().err
    assert not (state / "checkpoint.txt").exists()


def test_the_witness_fails_when_the_gateway_cannot_be_reached(tmp_path: Path) -> None:
    from tests.support.server import free_port

    assert main(["audit", "witness", "--url", f"http://127.0.0.1:{free_port()}", "--state", str(tmp_path)]) == 1
