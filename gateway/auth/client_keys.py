"""A partner client's public keys: validated at registration, resolved at the token endpoint.

Keys are registered inline (a JWKS) or as a `jwks_uri` the gateway fetches (HTTPS; plain HTTP only
on loopback, for development and tests), caches, and fetches again when an assertion names a kid it
does not know yet (at most once per `refetch_seconds`, so a flood of unknown kids costs no requests).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.auth.model import Client, RegistryError
from gateway.clock import Clock

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVES = frozenset({"P-256", "P-384", "P-521"})
MAX_JWKS_BYTES = 64 * 1024


class ClientKeysUnavailable(Exception):
    """The client's jwks_uri could not be fetched or did not hold a valid key set."""


def _rsa_bits(n: str) -> int:
    raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    return int.from_bytes(raw, "big").bit_length()


def validate_public_jwks(data: Any) -> dict[str, Any]:
    """Return `data` as a JWKS of public signing keys, or raise RegistryError saying what is wrong.

    Only RSA (at least 2048 bits) and EC (P-256, P-384, P-521) keys; no private or symmetric key
    material; a kid on every key when there are several, and no kid twice.
    """
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise RegistryError('a JWKS needs a non-empty "keys" array')
    keys: list[dict[str, Any]] = []
    kids: set[str] = set()
    for i, jwk in enumerate(data["keys"]):
        if not isinstance(jwk, dict):
            raise RegistryError(f"key {i} is not a JSON object")
        if _PRIVATE_MEMBERS & set(jwk):
            raise RegistryError(f"key {i} holds private or symmetric key material; register public keys only")
        kty = jwk.get("kty")
        if kty == "RSA":
            try:
                bits = _rsa_bits(str(jwk["n"]))
            except (KeyError, ValueError) as exc:
                raise RegistryError(f"key {i} is not a valid RSA public key") from exc
            if bits < 2048:
                raise RegistryError(f"key {i} is an RSA key of {bits} bits; at least 2048 are required")
        elif kty == "EC":
            if jwk.get("crv") not in _CURVES:
                raise RegistryError(f"key {i} uses curve {jwk.get('crv')!r}; use P-256, P-384 or P-521")
        else:
            raise RegistryError(f"key {i} has key type {kty!r}; only RSA and EC keys are accepted")
        if jwk.get("use", "sig") != "sig":
            raise RegistryError(f"key {i} is not a signing key (use={jwk.get('use')!r})")
        kid = jwk.get("kid")
        if kid is not None:
            if not isinstance(kid, str) or not kid or kid in kids:
                raise RegistryError(f"key {i} has a missing, malformed or duplicate kid")
            kids.add(kid)
        elif len(data["keys"]) > 1:
            raise RegistryError(f"key {i} has no kid; with several keys every key needs one")
        keys.append(jwk)
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise RegistryError(f"the key set does not import: {exc}") from exc
    return {"keys": keys}


def validate_jwks_uri(uri: str) -> str:
    """Return `uri` if the gateway may fetch keys from it: HTTPS, or HTTP on a loopback address."""
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return uri
    raise RegistryError("jwks_uri must be an https URL (plain http only on loopback)")


@dataclass
class _Fetched:
    keys: KeySet
    fetched_at: float


class ClientKeys:
    """Resolves a client's key set; fetched key sets are cached by the injected clock."""

    def __init__(self, clock: Clock, cache_seconds: float = 300, refetch_seconds: float = 10, timeout: float = 5):
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._timeout = timeout
        self._inline: dict[str, tuple[str, KeySet]] = {}
        self._fetched: dict[str, _Fetched] = {}
        self._lock = threading.Lock()

    def key_set(self, client: Client, kid: str | None) -> KeySet:
        """Return the keys to verify `client`'s assertion whose header names `kid`."""
        if client.jwks is not None:
            return self._inline_keys(client.client_id, client.jwks)
        if client.jwks_uri is None:
            raise ClientKeysUnavailable("the client has no keys registered")
        now = self._clock.timestamp()
        with self._lock:
            cached = self._fetched.get(client.jwks_uri)
        if cached is not None:
            age = now - cached.fetched_at
            known = kid is None or any(k.kid == kid for k in cached.keys.keys)
            if age < self._cache_seconds and (known or age < self._refetch_seconds):
                return cached.keys
        keys = self._fetch(client.jwks_uri)
        with self._lock:
            self._fetched[client.jwks_uri] = _Fetched(keys, now)
        return keys

    def forget(self, client: Client | None = None) -> None:
        """Drop cached keys (of one client, or all), e.g. after its keys were rotated."""
        with self._lock:
            if client is None:
                self._inline.clear()
                self._fetched.clear()
                return
            self._inline.pop(client.client_id, None)
            if client.jwks_uri:
                self._fetched.pop(client.jwks_uri, None)

    def _inline_keys(self, client_id: str, jwks: dict[str, Any]) -> KeySet:
        digest = hashlib.sha256(json.dumps(jwks, sort_keys=True).encode()).hexdigest()
        with self._lock:
            cached = self._inline.get(client_id)
        if cached is not None and cached[0] == digest:
            return cached[1]
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        with self._lock:
            self._inline[client_id] = (digest, keys)
        return keys

    def _fetch(self, uri: str) -> KeySet:
        request = urllib.request.Request(validate_jwks_uri(uri), headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = response.read(MAX_JWKS_BYTES + 1)
        except OSError as exc:
            raise ClientKeysUnavailable(f"jwks_uri could not be fetched ({type(exc).__name__})") from exc
        if len(body) > MAX_JWKS_BYTES:
            raise ClientKeysUnavailable("jwks_uri returned more than 64 KiB")
        try:
            jwks = validate_public_jwks(json.loads(body))
        except (ValueError, RegistryError) as exc:
            raise ClientKeysUnavailable(f"jwks_uri did not return a valid public key set: {exc}") from exc
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
