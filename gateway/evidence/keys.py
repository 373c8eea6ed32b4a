"""The evidence signing key: signs evidence documents (revocation reports, destruction records) and
outbound notices; its public keys are published as a JWKS.

Files in the key directory:
- `evidence.ed25519`: the current private key (base64 of the 32-byte Ed25519 seed, mode 0600);
- `evidence-keys.json`: a JWKS (RFC 7517, OKP keys per RFC 8037) of every public key that has ever
  signed evidence, current and retired (`"status"`), so documents stay verifiable after a rotation.

A separate key from the audit checkpoint key on purpose: checkpoints are checked by witnesses of the
log, evidence by jurists and recipients; either can be rotated, or found compromised, without the
other. The key id is the RFC 7638 JWK thumbprint, so anyone can recompute it from the public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)

from gateway.evidence.jws import b64u, unb64u

EVIDENCE_KEY_FILE = "evidence.ed25519"
EVIDENCE_KEYS_FILE = "evidence-keys.json"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class EvidenceKeyError(Exception):
    """An evidence key is missing or malformed."""


def raw_public(key: Ed25519PublicKey) -> bytes:
    """Return the 32-byte public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def thumbprint(public_key: bytes) -> str:
    """Return the RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key: its key id."""
    members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": b64u(public_key)}, separators=(",", ":"))
    return b64u(hashlib.sha256(members.encode()).digest())


@dataclass(frozen=True, slots=True)
class EvidenceKey:
    """A public evidence key, its key id and whether it signs now."""

    public_key: bytes
    current: bool = True

    @property
    def kid(self) -> str:
        """Return the key id (RFC 7638 thumbprint)."""
        return thumbprint(self.public_key)

    def jwk(self) -> dict[str, Any]:
        """Return the public JWK, with its status."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64u(self.public_key),
            "kid": self.kid,
            "alg": "Ed25519",
            "use": "sig",
            "status": "current" if self.current else "retired",
        }

    def verifier(self) -> Ed25519PublicKey:
        """Return the key as a cryptography public key."""
        return Ed25519PublicKey.from_public_bytes(self.public_key)


class EvidenceSigner:
    """The private evidence key and its key id."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = EvidenceKey(raw_public(key.public_key()))

    @property
    def kid(self) -> str:
        """Return the key id of the signing key."""
        return self.public.kid

    def sign(self, data: bytes) -> bytes:
        """Return the Ed25519 signature of `data`."""
        return self._key.sign(data)

    @property
    def private_key(self) -> Ed25519PrivateKey:
        """Return the private key (for the detached-JWS signer)."""
        return self._key

    def __repr__(self) -> str:
        return f"EvidenceSigner(kid={self.kid})"


def jwks(keys: list[EvidenceKey]) -> dict[str, Any]:
    """Return the published JWKS of `keys`."""
    return {"keys": [k.jwk() for k in keys]}


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _seed(key: Ed25519PrivateKey) -> bytes:
    return base64.b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())) + b"\n"


def _write_published(key_dir: Path, keys: list[EvidenceKey]) -> None:
    tmp = key_dir / (EVIDENCE_KEYS_FILE + ".tmp")
    tmp.write_text(json.dumps(jwks(keys), indent=2) + "\n")
    os.replace(tmp, key_dir / EVIDENCE_KEYS_FILE)


def published_keys(key_dir: Path) -> list[EvidenceKey]:
    """Return every published evidence key in the key dir, oldest first (empty when none exists)."""
    path = key_dir / EVIDENCE_KEYS_FILE
    if not path.exists():
        return []
    return parse_keys(path.read_bytes(), str(path))


def init_evidence_key(key_dir: Path) -> list[Path]:
    """Create the evidence signing key when missing (never overwrites); return the files created."""
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / EVIDENCE_KEY_FILE
    if path.exists():
        return []
    key = Ed25519PrivateKey.generate()
    _write_secret(path, _seed(key))
    retired = [EvidenceKey(k.public_key, False) for k in published_keys(key_dir)]
    _write_published(key_dir, [*retired, EvidenceKey(raw_public(key.public_key()), True)])
    return [path]


def load_evidence_signer(key_dir: Path) -> EvidenceSigner | None:
    """Return the evidence signer, or None when the key dir holds no evidence key."""
    path = key_dir / EVIDENCE_KEY_FILE
    try:
        seed = base64.b64decode(path.read_text().strip(), validate=True)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise EvidenceKeyError(f"{path} is not valid base64") from exc
    if len(seed) != 32:
        raise EvidenceKeyError(f"{path} must hold a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return EvidenceSigner(Ed25519PrivateKey.from_private_bytes(seed))


def rotate_evidence_key(key_dir: Path) -> tuple[str | None, str]:
    """Replace the evidence key; keep every old public key published as retired. Return (old kid, new kid)."""
    key_dir.mkdir(parents=True, exist_ok=True)
    old = load_evidence_signer(key_dir)
    new = Ed25519PrivateKey.generate()
    new_public = raw_public(new.public_key())
    keys = [EvidenceKey(k.public_key, False) for k in published_keys(key_dir)]
    if old is not None and old.public.public_key not in {k.public_key for k in keys}:
        keys.append(EvidenceKey(old.public.public_key, False))
    # Publish the new public key before it signs anything, then swap the private key atomically.
    _write_published(key_dir, [*keys, EvidenceKey(new_public, True)])
    tmp = key_dir / (EVIDENCE_KEY_FILE + ".new")
    if tmp.exists():
        tmp.unlink()
    _write_secret(tmp, _seed(new))
    os.replace(tmp, key_dir / EVIDENCE_KEY_FILE)
    return (old.kid if old is not None else None), thumbprint(new_public)


def _jwk_key(jwk: Any, where: str) -> EvidenceKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise EvidenceKeyError(f"{where}: only Ed25519 (OKP) keys are evidence keys")
    if "d" in jwk:
        raise EvidenceKeyError(f"{where}: holds a private key; publish and trust public keys only")
    try:
        public = unb64u(str(jwk["x"]))
    except (KeyError, ValueError) as exc:
        raise EvidenceKeyError(f"{where}: malformed x") from exc
    if len(public) != 32:
        raise EvidenceKeyError(f"{where}: an Ed25519 public key has 32 bytes")
    key = EvidenceKey(public, jwk.get("status", "current") == "current")
    if "kid" in jwk and jwk["kid"] != key.kid:
        raise EvidenceKeyError(f"{where}: kid {jwk['kid']!r} is not the key's thumbprint {key.kid!r}")
    return key


def parse_keys(data: bytes, where: str = "keys") -> list[EvidenceKey]:
    """Return the Ed25519 keys in a JWKS, a single JWK, or a PEM public key."""
    text = data.decode("utf-8", errors="replace").strip()
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        try:
            pem = load_pem_public_key(text.encode())
        except ValueError as exc:
            raise EvidenceKeyError(f"{where}: malformed PEM public key") from exc
        if not isinstance(pem, Ed25519PublicKey):
            raise EvidenceKeyError(f"{where}: the PEM key is not an Ed25519 key")
        return [EvidenceKey(raw_public(pem))]
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise EvidenceKeyError(f"{where}: neither a JWKS, a JWK nor a PEM public key") from exc
    if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
        # A combined key set may hold other keys (e.g. token keys); only Ed25519 keys sign evidence.
        okp = [k for k in doc["keys"] if isinstance(k, dict) and k.get("kty") == "OKP"]
        keys = [_jwk_key(k, f"{where} key {i + 1}") for i, k in enumerate(okp)]
    else:
        keys = [_jwk_key(doc, where)]
    if not keys:
        raise EvidenceKeyError(f"{where}: holds no Ed25519 key")
    return keys


def fetch_keys(url: str, timeout: float = 10.0) -> list[EvidenceKey]:
    """Return the keys published at `url` (https, or http on loopback only)."""
    parsed = urllib.parse.urlsplit(url)
    if not (parsed.scheme == "https" or (parsed.scheme == "http" and parsed.hostname in _LOOPBACK)):
        raise EvidenceKeyError("fetch published keys over https (plain http only from loopback)")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return parse_keys(response.read(), url)
