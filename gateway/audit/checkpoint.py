"""Signed checkpoints: the text format of C2SP tlog-checkpoint, signed as a C2SP signed note (Ed25519).

A checkpoint commits to the Merkle tree of the audit log at one size:

    lvv-exchange-gateway/audit          <- origin (also the key name)
    1024                                <- tree size
    BASE64(root hash)                   <- RFC 9162 root
    time 2024-11-15T09:00:00Z           <- one extension line: when it was signed (UTC)

    — lvv-exchange-gateway/audit BASE64(key ID || Ed25519 signature over the four lines above)

Pure code (no database, no framework), so the offline verifier and the witness use it as is. The key
ID is SHA-256(key name || 0x0A || 0x01 || public key)[:4], as signed-note recommends; a verifier key
is written `name+hexkeyid+base64(0x01 || public key)`, the form Go's `note` package reads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.audit.merkle import HASH_SIZE

ED25519_TYPE = b"\x01"
_DASH = "\u2014"
_TIME_PREFIX = "time "
_MAX_SIGNATURES = 16


class CheckpointError(ValueError):
    """A checkpoint is malformed or its signature does not verify."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """Return the 32-byte RFC 8032 encoding of an Ed25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key ID of an Ed25519 key under `name`."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key that may sign checkpoints under `name`."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """Return the 4-byte key ID that signature lines carry."""
        return key_id(self.name, self.public_key)

    def encode(self) -> str:
        """Return the verifier key string `name+hexkeyid+base64(0x01||key)`."""
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(ED25519_TYPE + self.public_key).decode()}"

    @classmethod
    def decode(cls, text: str) -> VerifierKey:
        """Return the key written as `name+hexkeyid+base64(0x01||key)`; checks the key ID."""
        try:
            name, hex_id, b64 = text.strip().split("+", 2)  # names hold no "+"; base64 may
            raw = base64.b64decode(b64, validate=True)
            expected_id = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error) as exc:
            raise CheckpointError(f"malformed verifier key {text.strip()!r}") from exc
        if not name or raw[:1] != ED25519_TYPE or len(raw) != 1 + 32:
            raise CheckpointError("only Ed25519 verifier keys are supported")
        key = cls(name, raw[1:])
        if key.key_id != expected_id:
            raise CheckpointError(f"verifier key {text.strip()!r} has the wrong key ID")
        return key


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, tree size, root hash and the time it was signed (UTC, whole seconds)."""

    origin: str
    size: int
    root: bytes
    time: datetime

    def body(self) -> str:
        """Return the note text that is signed (four lines, each ending in a newline)."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n{_TIME_PREFIX}{_iso(self.time)}\n"

    @property
    def root_hex(self) -> str:
        """Return the root hash in hex."""
        return self.root.hex()


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: the key name, the 4-byte key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """Return the signature line (without the trailing newline)."""
        return f"{_DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}"


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with its signature lines, and the exact text it was parsed from or written as."""

    checkpoint: Checkpoint
    signatures: tuple[Signature, ...]

    @property
    def text(self) -> str:
        """Return the signed note: body, blank line, signature lines."""
        return self.checkpoint.body() + "\n" + "".join(s.line() + "\n" for s in self.signatures)

    def verify(self, keys: Iterable[VerifierKey]) -> VerifierKey:
        """Return the known key whose signature verifies; raise CheckpointError otherwise.

        As signed-note requires: signatures by unknown keys are ignored, a known key whose signature
        fails rejects the whole note, and at least one known key must have signed.
        """
        known = {(k.name, k.key_id): k for k in keys}
        body = self.checkpoint.body().encode()
        good: VerifierKey | None = None
        for sig in self.signatures:
            key = known.get((sig.name, sig.key_id))
            if key is None:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(key.public_key).verify(sig.signature, body)
            except InvalidSignature:
                raise CheckpointError(f"the signature by {sig.name} ({sig.key_id.hex()}) does not verify") from None
            good = good or key
        if good is None:
            raise CheckpointError("no signature by a known key")
        return good


def sign(checkpoint: Checkpoint, private_key: Ed25519PrivateKey, name: str | None = None) -> SignedCheckpoint:
    """Return the checkpoint signed by `private_key` under `name` (default: the origin)."""
    name = name or checkpoint.origin
    public = raw_public_key(private_key.public_key())
    signature = private_key.sign(checkpoint.body().encode())
    return SignedCheckpoint(checkpoint, (Signature(name, key_id(name, public), signature),))


def parse(text: str) -> SignedCheckpoint:
    """Return the signed checkpoint in `text`; raise CheckpointError when it is not well formed.

    Parsing checks the form only; call `verify` with trusted keys before believing any of it.
    """
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise CheckpointError("a checkpoint holds no control characters but newlines")
    if not text.endswith("\n"):
        raise CheckpointError("a checkpoint ends with a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointError("no blank line between the checkpoint and its signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    lines = body.split("\n")[:-1]
    if len(lines) != 4 or not lines[3].startswith(_TIME_PREFIX):
        raise CheckpointError("a checkpoint has four lines: origin, size, root hash, time")
    origin, size_text, root_text, time_line = lines
    if not origin or " " in origin or "+" in origin:
        raise CheckpointError("the origin is empty or holds a space or plus")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"the tree size {size_text!r} is not a decimal without leading zeros")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
        moment = datetime.strptime(time_line[len(_TIME_PREFIX) :], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError(f"malformed root hash or time: {exc}") from None
    if len(root_hash) != HASH_SIZE:
        raise CheckpointError(f"the root hash has {len(root_hash)} bytes, not {HASH_SIZE}")
    signatures: list[Signature] = []
    for line in sig_block.split("\n")[:-1]:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or not parts[1]:
            raise CheckpointError(f"malformed signature line {line!r}")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise CheckpointError(f"malformed signature line {line!r}") from None
        if len(raw) < 5:
            raise CheckpointError("a signature is shorter than its key ID")
        signatures.append(Signature(parts[1], raw[:4], raw[4:]))
    if not signatures or len(signatures) > _MAX_SIGNATURES:
        raise CheckpointError(f"a checkpoint carries 1 to {_MAX_SIGNATURES} signatures")
    return SignedCheckpoint(Checkpoint(origin, int(size_text), root_hash, moment), tuple(signatures))


def parse_verifier_keys(lines: Sequence[str]) -> list[VerifierKey]:
    """Return the verifier keys in `lines` (blank lines and `#` comments skipped)."""
    return [VerifierKey.decode(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
