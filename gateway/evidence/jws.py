"""Detached JWS (RFC 7515 compact serialisation, payload detached as in appendix F) with Ed25519.

`header..signature`: the payload is not carried in the token; the verifier supplies it. Any JOSE
library verifies one by putting BASE64URL(payload) back between the dots. Only Ed25519 signatures
(RFC 8037; `"alg": "Ed25519"`, the fully-specified name of RFC 9864) are made or accepted, and every
base64url part must be in its one canonical form, so no character of a signature can change unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# RFC 9864 (fully-specified algorithms) deprecates the polymorphic "EdDSA" in favour of "Ed25519".
ALGORITHM = "Ed25519"


class JwsError(ValueError):
    """A detached JWS is malformed, uses another algorithm, or does not verify."""


def b64u(data: bytes) -> str:
    """Return unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    """Return the bytes of canonical unpadded base64url; refuse any other spelling of them."""
    if not text or any(c not in _ALPHABET for c in text):
        raise JwsError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwsError("not base64url") from exc
    if b64u(data) != text:  # e.g. a changed last character that only touches the unused bits
        raise JwsError("base64url is not in canonical form")
    return data


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class DetachedJws:
    """A parsed detached JWS: its protected header (as sent and decoded) and signature."""

    header_b64: str
    header: dict[str, Any]
    signature: bytes

    @property
    def kid(self) -> str:
        """Return the key id the header names."""
        return str(self.header["kid"])

    def signing_input(self, payload: bytes) -> bytes:
        """Return what the signature covers: ASCII(header_b64 '.' BASE64URL(payload))."""
        return f"{self.header_b64}.{b64u(payload)}".encode()

    def verify(self, payload: bytes, key: Ed25519PublicKey) -> None:
        """Raise JwsError unless the signature over `payload` verifies with `key`."""
        try:
            key.verify(self.signature, self.signing_input(payload))
        except InvalidSignature:
            raise JwsError("the signature does not verify") from None


def sign_detached(payload: bytes, key: Ed25519PrivateKey, header: dict[str, Any]) -> str:
    """Return `header..signature` over `payload`; `header` must name its `kid`."""
    if "kid" not in header:
        raise ValueError("a detached JWS header names its key id")
    protected = {"alg": ALGORITHM, **header}
    header_b64 = b64u(json.dumps(protected, sort_keys=True, separators=(",", ":")).encode())
    signature = key.sign(f"{header_b64}.{b64u(payload)}".encode())
    return f"{header_b64}..{b64u(signature)}"


def parse_detached(token: str) -> DetachedJws:
    """Return the parsed detached JWS; checks form and algorithm, not the signature."""
    parts = token.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise JwsError("not a detached compact JWS (header..signature)")
    header_b64, _, signature_b64 = parts
    try:
        header = json.loads(unb64u(header_b64))
    except ValueError as exc:
        raise JwsError(f"malformed protected header: {exc}") from None
    if not isinstance(header, dict):
        raise JwsError("the protected header is not a JSON object")
    if header.get("alg") != ALGORITHM:
        raise JwsError(f"algorithm {header.get('alg')!r} is not accepted (only {ALGORITHM})")
    if "crit" in header or "b64" in header:
        raise JwsError("critical header extensions are not accepted")
    if not isinstance(header.get("kid"), str):
        raise JwsError("the protected header names no key id")
    signature = unb64u(signature_b64)
    if len(signature) != 64:
        raise JwsError("an Ed25519 signature has 64 bytes")
    return DetachedJws(header_b64, header, signature)
