"""Key material on disk: created once by `gateway keys init`, loaded by path or from settings."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey, KeySet

from gateway.settings import Settings

KEK_FILE = "kek.key"
PSEUDONYM_FILE = "pseudonym.key"
ISSUER_PRIVATE_FILE = "issuer.jwk.json"
ISSUER_PUBLIC_FILE = "issuer.jwks.json"
# Privacy-officer review: AES-SIV key for LDV data-subject ids (64 bytes), HMAC key for web sessions.
LDV_SUBJECT_FILE = "ldv-subject.key"
OFFICER_SESSION_FILE = "officer-session.key"
SUBJECT_LOOKUP_FILE = "subject-lookup.key"  # keys the blind index of identifying fields (store/subject_index.py)


class KeyMaterialError(Exception):
    """Key material is missing or malformed."""


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def init_keys(key_dir: Path) -> list[Path]:
    """Create missing key files in `key_dir` (never overwrites); return the files created."""
    key_dir.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    for name in (KEK_FILE, PSEUDONYM_FILE):
        path = key_dir / name
        if not path.exists():
            _write_secret(path, base64.b64encode(os.urandom(32)) + b"\n")
            created.append(path)
    for name, size in ((LDV_SUBJECT_FILE, 64), (OFFICER_SESSION_FILE, 32), (SUBJECT_LOOKUP_FILE, 32)):
        path = key_dir / name
        if not path.exists():
            _write_secret(path, base64.b64encode(os.urandom(size)) + b"\n")
            created.append(path)
    private = key_dir / ISSUER_PRIVATE_FILE
    if not private.exists():
        key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, auto_kid=True)
        _write_secret(private, json.dumps(key.as_dict(private=True)).encode())
        (key_dir / ISSUER_PUBLIC_FILE).write_text(json.dumps({"keys": [key.as_dict(private=False)]}, indent=2))
        created.append(private)
    # The Ed25519 key that signs audit checkpoints, and the file that publishes its public keys.
    from gateway.audit.signing_keys import init_checkpoint_key

    created += init_checkpoint_key(key_dir)
    # The Ed25519 key that signs evidence documents and notices, and its published JWKS.
    from gateway.evidence.keys import init_evidence_key

    created += init_evidence_key(key_dir)
    return created


def _secret(settings_value: str | None, path: Path, what: str) -> bytes:
    raw = settings_value
    if raw is None:
        try:
            raw = path.read_text().strip()
        except FileNotFoundError as exc:
            raise KeyMaterialError(f"{what} not found at {path}; run `gateway keys init`") from exc
    try:
        value = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise KeyMaterialError(f"{what} is not valid base64") from exc
    if len(value) != 32:
        raise KeyMaterialError(f"{what} must be 32 bytes, got {len(value)}")
    return value


@dataclass(frozen=True)
class KeyMaterial:
    kek: bytes
    pseudonym_key: bytes
    token_keys: KeySet

    def __repr__(self) -> str:
        return "KeyMaterial(<secret>)"


def load_keys(settings: Settings) -> KeyMaterial:
    """Return the KEK, pseudonym key and trusted token keys the settings point at."""
    kek = _secret(settings.kek.get_secret_value() if settings.kek else None, settings.key_dir / KEK_FILE, "KEK")
    pkey = _secret(
        settings.pseudonym_key.get_secret_value() if settings.pseudonym_key else None,
        settings.key_dir / PSEUDONYM_FILE,
        "pseudonym key",
    )
    try:
        jwks = json.loads(settings.jwks_path.read_text())
        token_keys = KeySet.import_key_set(jwks)
    except FileNotFoundError as exc:
        raise KeyMaterialError(f"token signing keys not found at {settings.jwks_path}") from exc
    if any(k.key_type == "oct" for k in token_keys.keys):
        raise KeyMaterialError("symmetric keys are never trusted for access tokens")
    return KeyMaterial(kek=kek, pseudonym_key=pkey, token_keys=token_keys)


def load_issuer_private_key(key_dir: Path) -> ECKey:
    """Return the gateway's token-signing private key (used by the demo token command)."""
    data = json.loads((key_dir / ISSUER_PRIVATE_FILE).read_text())
    return ECKey.import_key(data)


def load_secret_file(key_dir: Path, name: str, size: int) -> bytes:
    """Return the base64 key of `size` bytes stored as `name` in the key dir."""
    path = key_dir / name
    try:
        value = base64.b64decode(path.read_text().strip(), validate=True)
    except FileNotFoundError as exc:
        raise KeyMaterialError(f"{name} not found in {key_dir}; run `gateway keys init`") from exc
    except ValueError as exc:
        raise KeyMaterialError(f"{name} is not valid base64") from exc
    if len(value) != size:
        raise KeyMaterialError(f"{name} must be {size} bytes, got {len(value)}")
    return value
