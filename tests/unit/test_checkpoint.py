"""Signed checkpoints: the C2SP text format, Ed25519 signed notes, and a signer that never forks the log."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    VerifierKey,
    key_id,
    parse,
    raw_public_key,
    sign,
)
from gateway.audit.merkle import EMPTY_ROOT, TreeBuilder, consistency_proof, leaf_hash
from gateway.audit.sealer import CheckpointSigner, InconsistentCheckpoint
from gateway.audit.signing_keys import (
    init_checkpoint_key,
    load_checkpoint_key,
    published_keys,
    rotate_checkpoint_key,
)
from gateway.clock import FixedClock

ORIGIN = "gateway.test/audit"
AT = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(f'{{"seq":{i}}}'.encode()) for i in range(1, n + 1)]


def tree_root(hashes: list[bytes]) -> bytes:
    builder = TreeBuilder()
    builder.extend(hashes)
    return builder.root()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def verifier(key: Ed25519PrivateKey) -> VerifierKey:
    return VerifierKey(ORIGIN, raw_public_key(key.public_key()))


def test_a_checkpoint_is_origin_size_base64_root_and_time_then_a_signature_line(key: Ed25519PrivateKey) -> None:
    root = tree_root(leaves(5))
    signed = sign(Checkpoint(ORIGIN, 5, root, AT), key)
    lines = signed.text.split("\n")
    assert lines[:4] == [ORIGIN, "5", base64.b64encode(root).decode(), "time 2024-11-15T09:00:00Z"]
    assert lines[4] == ""
    assert lines[5].startswith(f"\u2014 {ORIGIN} ")
    raw = base64.b64decode(lines[5].split(" ")[2])
    assert raw[:4] == key_id(ORIGIN, raw_public_key(key.public_key()))
    assert len(raw) == 4 + 64
    assert lines[6:] == [""]


def test_the_key_id_is_the_signed_note_hash_of_name_type_and_key(key: Ed25519PrivateKey) -> None:
    public = raw_public_key(key.public_key())
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert key_id(ORIGIN, public) == expected
    encoded = verifier(key).encode()
    assert encoded.startswith(f"{ORIGIN}+{expected.hex()}+")
    assert VerifierKey.decode(encoded) == verifier(key)


def test_a_signed_checkpoint_parses_back_to_the_same_text_and_verifies(key: Ed25519PrivateKey) -> None:
    signed = sign(Checkpoint(ORIGIN, 7, tree_root(leaves(7)), AT), key)
    again = parse(signed.text)
    assert again == signed
    assert again.text == signed.text
    assert again.verify([verifier(key)]) == verifier(key)


def test_the_empty_tree_can_be_checkpointed(key: Ed25519PrivateKey) -> None:
    signed = sign(Checkpoint(ORIGIN, 0, EMPTY_ROOT, AT), key)
    assert parse(signed.text).checkpoint.size == 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n5\n", "\n6\n"),
        ("time 2024-11-15T09:00:00Z", "time 2024-11-15T09:00:01Z"),
        (ORIGIN + "\n", "gateway.test/other\n"),
    ],
)
def test_changing_any_signed_line_makes_the_signature_fail(key: Ed25519PrivateKey, old: str, new: str) -> None:
    signed = sign(Checkpoint(ORIGIN, 5, tree_root(leaves(5)), AT), key)
    forged = parse(signed.text.replace(old, new, 1))
    with pytest.raises(CheckpointError):
        forged.verify([verifier(key), VerifierKey("gateway.test/other", verifier(key).public_key)])


def test_a_changed_root_makes_the_signature_fail(key: Ed25519PrivateKey) -> None:
    signed = sign(Checkpoint(ORIGIN, 5, tree_root(leaves(5)), AT), key)
    forged = SignedCheckpoint(Checkpoint(ORIGIN, 5, tree_root([*leaves(4), bytes(32)]), AT), signed.signatures)
    with pytest.raises(CheckpointError, match="does not verify"):
        forged.verify([verifier(key)])


def test_a_checkpoint_signed_only_by_an_unknown_key_is_rejected(key: Ed25519PrivateKey) -> None:
    signed = sign(Checkpoint(ORIGIN, 3, tree_root(leaves(3)), AT), Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match="no signature by a known key"):
        signed.verify([verifier(key)])


def test_signatures_by_unknown_keys_are_ignored_when_a_known_key_signed(key: Ed25519PrivateKey) -> None:
    cp = Checkpoint(ORIGIN, 3, tree_root(leaves(3)), AT)
    witness = sign(cp, Ed25519PrivateKey.generate(), "witness.test/w1")
    both = SignedCheckpoint(cp, (*sign(cp, key).signatures, *witness.signatures))
    assert parse(both.text).verify([verifier(key)]) == verifier(key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\ntime 2024-11-15T09:00:00Z\n",  # no signatures
        "o\n01\n" + base64.b64encode(bytes(32)).decode() + "\ntime 2024-11-15T09:00:00Z\n\n\u2014 o AAAAAAA=\n",
        "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\ntime 2024-11-15T09:00:00Z\n\n\u2014 o AAAAAAA=\n",
        "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n\u2014 o AAAAAAA=\n",  # no time line
        "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\ntime 2024-11-15T09:00:00Z\n\n- o AAAAAAA=\n",
        "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\ntime 2024-11-15T09:00:00Z\n\n\u2014 o AAAAAAA=",
        "o\x07\n1\n" + base64.b64encode(bytes(32)).decode() + "\ntime 2024-11-15T09:00:00Z\n\n\u2014 o AAAAAAA=\n",
    ],
)
def test_malformed_checkpoints_are_refused_by_the_parser(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse(text)


def test_a_verifier_key_with_a_wrong_key_id_is_refused(key: Ed25519PrivateKey) -> None:
    name, _, b64 = verifier(key).encode().split("+", 2)
    with pytest.raises(CheckpointError, match="wrong key ID"):
        VerifierKey.decode(f"{name}+00000000+{b64}")


# --- the signer -------------------------------------------------------------------------------------


def signer(key: Ed25519PrivateKey, memory: Path | None = None) -> CheckpointSigner:
    return CheckpointSigner(key, ORIGIN, FixedClock(AT), memory)


def test_the_signer_signs_a_tree_that_extends_the_last_checkpoint(key: Ed25519PrivateKey) -> None:
    hashes = leaves(20)
    s = signer(key)
    first = s.sign(7, tree_root(hashes[:7]), None, [])
    second = s.sign(20, tree_root(hashes), first.checkpoint, consistency_proof(hashes, 7, 20))
    assert second.checkpoint.size == 20
    second.verify([s.verifier])


def test_the_signer_refuses_a_tree_that_rewrites_the_last_checkpoint(key: Ed25519PrivateKey) -> None:
    hashes = leaves(20)
    s = signer(key)
    first = s.sign(7, tree_root(hashes[:7]), None, [])
    rewritten = [*hashes[:3], leaf_hash(b"rewritten"), *hashes[4:]]
    with pytest.raises(InconsistentCheckpoint, match="does not extend"):
        s.sign(20, tree_root(rewritten), first.checkpoint, consistency_proof(rewritten, 7, 20))


def test_the_signer_refuses_a_smaller_tree_or_another_root_of_the_same_size(key: Ed25519PrivateKey) -> None:
    hashes = leaves(10)
    s = signer(key)
    first = s.sign(10, tree_root(hashes), None, [])
    with pytest.raises(InconsistentCheckpoint):
        s.sign(9, tree_root(hashes[:9]), first.checkpoint, [])
    with pytest.raises(InconsistentCheckpoint):
        s.sign(10, tree_root([*leaves(9), bytes(32)]), first.checkpoint, [])


def test_a_checkpoint_never_claims_to_be_older_than_the_one_it_extends(key: Ed25519PrivateKey) -> None:
    hashes = leaves(4)
    clock = FixedClock(AT)
    s = CheckpointSigner(key, ORIGIN, clock)
    first = s.sign(2, tree_root(hashes[:2]), None, [])
    clock.set(AT - timedelta(hours=1))
    second = s.sign(4, tree_root(hashes), first.checkpoint, consistency_proof(hashes, 2, 4))
    assert second.checkpoint.time == first.checkpoint.time


def test_the_signer_remembers_what_it_signed_and_refuses_a_log_rolled_back_behind_it(
    key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    hashes = leaves(12)
    memory = tmp_path / "checkpoint.last"
    s = signer(key, memory)
    first = s.sign(5, tree_root(hashes[:5]), None, [])
    s.remember(first)
    second = s.sign(12, tree_root(hashes), first.checkpoint, consistency_proof(hashes, 5, 12))
    s.remember(second)
    restarted = signer(key, memory)
    # The database was restored to the state of the first checkpoint: the signer knows it signed more.
    with pytest.raises(InconsistentCheckpoint, match="no longer holds"):
        restarted.sign(8, tree_root(hashes[:8]), first.checkpoint, consistency_proof(hashes, 5, 8))
    with pytest.raises(InconsistentCheckpoint, match="no longer holds"):
        restarted.sign(3, tree_root(hashes[:3]), None, [])


# --- keys on disk -----------------------------------------------------------------------------------


def test_keys_init_creates_a_checkpoint_key_once_and_publishes_its_public_key(tmp_path: Path) -> None:
    assert init_checkpoint_key(tmp_path) == [tmp_path / "checkpoint.ed25519"]
    assert init_checkpoint_key(tmp_path) == []
    key = load_checkpoint_key(tmp_path)
    assert key is not None
    assert (tmp_path / "checkpoint.ed25519").stat().st_mode & 0o077 == 0
    published = published_keys(tmp_path)
    assert [(p.public_key, p.current) for p in published] == [(raw_public_key(key.public_key()), True)]


def test_rotating_the_key_keeps_every_old_public_key_published_as_retired(tmp_path: Path) -> None:
    init_checkpoint_key(tmp_path)
    first = load_checkpoint_key(tmp_path)
    assert first is not None
    old, new = rotate_checkpoint_key(tmp_path)
    _, newer = rotate_checkpoint_key(tmp_path)
    current = load_checkpoint_key(tmp_path)
    assert current is not None
    assert old == raw_public_key(first.public_key())
    assert raw_public_key(current.public_key()) == newer
    assert [(p.public_key, p.current) for p in published_keys(tmp_path)] == [
        (old, False),
        (new, False),
        (newer, True),
    ]


def test_a_process_without_a_checkpoint_key_has_none(tmp_path: Path) -> None:
    assert load_checkpoint_key(tmp_path) is None


def test_a_signer_that_was_not_the_last_to_sign_checks_the_new_tree_extends_what_it_signed(
    key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    hashes = leaves(12)
    mine = signer(key, tmp_path / "mine.last")
    mine.remember(mine.sign(5, tree_root(hashes[:5]), None, []))
    other = signer(key)  # another process with the same key signed size 8 since
    at_8 = other.sign(8, tree_root(hashes[:8]), None, []).checkpoint
    proof = consistency_proof(hashes, 8, 12)
    signed = mine.sign(12, tree_root(hashes), at_8, proof, lambda m: consistency_proof(hashes, m, 12))
    assert signed.checkpoint.size == 12
    forged = [leaf_hash(b"forged"), *hashes[1:]]  # a history that differs below what this signer signed
    forged_at_8 = other.sign(8, tree_root(forged[:8]), None, []).checkpoint
    with pytest.raises(InconsistentCheckpoint, match="this signer signed"):
        mine.sign(
            12,
            tree_root(forged),
            forged_at_8,
            consistency_proof(forged, 8, 12),
            lambda m: consistency_proof(forged, m, 12),
        )
    with pytest.raises(InconsistentCheckpoint, match="this signer signed"):
        mine.sign(12, tree_root(hashes), at_8, proof)  # and it will not sign without being able to check


def test_a_signer_given_a_new_origin_starts_a_new_log_despite_its_memory_of_the_old_one(
    key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    hashes = leaves(6)
    old = signer(key, tmp_path / "checkpoint.last")
    old.remember(old.sign(6, tree_root(hashes), None, []))
    renamed = CheckpointSigner(key, "gateway.test/new-log", FixedClock(AT), tmp_path / "checkpoint.last")
    first = renamed.sign(2, tree_root(hashes[:2]), None, [])
    renamed.remember(first)
    assert renamed.remembered() == first.checkpoint
