"""The checkpoint signing key on disk, its rotation, and the published public keys.

Files in the key directory:
- `checkpoint.ed25519`: the current private key (base64 of the 32-byte Ed25519 seed, mode 0600);
- `checkpoint-keys.json`: every public key that has ever signed checkpoints, current and retired,
  so that old checkpoints stay verifiable after a rotation. Rotation replaces the private key; the
  retired private key is not kept.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from gateway.audit.checkpoint import raw_public_key

CHECKPOINT_KEY_FILE = "checkpoint.ed25519"
PUBLISHED_KEYS_FILE = "checkpoint-keys.json"


class CheckpointKeyError(Exception):
    """The checkpoint signing key is missing or malformed."""


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """A public checkpoint key and whether it is the one signing now."""

    public_key: bytes
    current: bool


def _encode_seed(key: Ed25519PrivateKey) -> bytes:
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(seed) + b"\n"


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_published(key_dir: Path, keys: list[PublishedKey]) -> None:
    doc = {
        "keys": [
            {"public_key": base64.b64encode(k.public_key).decode(), "status": "current" if k.current else "retired"}
            for k in keys
        ]
    }
    tmp = key_dir / (PUBLISHED_KEYS_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, key_dir / PUBLISHED_KEYS_FILE)


def published_keys(key_dir: Path) -> list[PublishedKey]:
    """Return every published checkpoint key, oldest first; empty when none was created."""
    path = key_dir / PUBLISHED_KEYS_FILE
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
        return [
            PublishedKey(base64.b64decode(k["public_key"], validate=True), k["status"] == "current")
            for k in doc["keys"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointKeyError(f"{path} is malformed: {exc}") from exc


def init_checkpoint_key(key_dir: Path) -> list[Path]:
    """Create the checkpoint signing key when missing (never overwrites); return the files created."""
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / CHECKPOINT_KEY_FILE
    if path.exists():
        return []
    key = Ed25519PrivateKey.generate()
    _write_secret(path, _encode_seed(key))
    published = [PublishedKey(k.public_key, False) for k in published_keys(key_dir)]
    _write_published(key_dir, [*published, PublishedKey(raw_public_key(key.public_key()), True)])
    return [path]


def derive_rehearsal_key(key: Ed25519PrivateKey, fork: str) -> Ed25519PrivateKey:
    """Return the checkpoint key of one rehearsal copy: derived from the real key, never equal to it."""
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    info = b"lvv-gateway rehearsal checkpoint key " + fork.encode()
    derived = HKDF(algorithm=SHA256(), length=32, salt=None, info=info)
    return Ed25519PrivateKey.from_private_bytes(derived.derive(seed))


def load_checkpoint_key(key_dir: Path) -> Ed25519PrivateKey | None:
    """Return the current checkpoint signing key, or None when this process holds none."""
    path = key_dir / CHECKPOINT_KEY_FILE
    try:
        seed = base64.b64decode(path.read_text().strip(), validate=True)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise CheckpointKeyError(f"{path} is not valid base64") from exc
    if len(seed) != 32:
        raise CheckpointKeyError(f"{path} must hold a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def rotate_checkpoint_key(key_dir: Path) -> tuple[bytes | None, bytes]:
    """Replace the signing key with a new one; keep every old public key published. Return (old, new)."""
    key_dir.mkdir(parents=True, exist_ok=True)
    old = load_checkpoint_key(key_dir)
    new = Ed25519PrivateKey.generate()
    new_public = raw_public_key(new.public_key())
    published = [PublishedKey(k.public_key, False) for k in published_keys(key_dir)]
    old_public = raw_public_key(old.public_key()) if old is not None else None
    if old_public is not None and old_public not in {k.public_key for k in published}:
        published.append(PublishedKey(old_public, False))
    # Publish the new public key before it signs anything, then swap the private key atomically.
    _write_published(key_dir, [*published, PublishedKey(new_public, True)])
    tmp = key_dir / (CHECKPOINT_KEY_FILE + ".new")
    if tmp.exists():
        tmp.unlink()
    _write_secret(tmp, _encode_seed(new))
    os.replace(tmp, key_dir / CHECKPOINT_KEY_FILE)
    return old_public, new_public
