"""How the gateway authenticates itself to a brokered source: mTLS, or its own private_key_jwt client.

For private_key_jwt (RFC 7523, NL GOV Assurance profile) the gateway holds one ES256 key,
`connector_client.jwk` in the key dir, made on first use; a source registers its public half
(`gateway connectors jwks`). The gateway asks the source's token endpoint for a short-lived access
token with a fresh client assertion and reuses it until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

KEY_FILE = "connector_client.jwk"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def connector_key(key_dir: Path) -> ECKey:
    """Return the gateway's connector client key, creating it (owner-only) on first use."""
    path = key_dir / KEY_FILE
    if not path.exists():
        key = ECKey.generate_key("P-256", private=True, auto_kid=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(key.as_dict(private=True), out)
    return ECKey.import_key(json.loads(path.read_text()))


def public_jwks(key: ECKey) -> dict[str, Any]:
    """Return the public JWKS a source registers for the gateway's client."""
    public = key.as_dict(private=False)
    return {"keys": [{**public, "use": "sig", "alg": "ES256"}]}


class PrivateKeyJwt:
    """Bearer tokens from a source's token endpoint, got with a signed client assertion."""

    def __init__(self, client_id: str, key: ECKey, token_url: str) -> None:
        self.client_id = client_id
        self._key = key
        self.token_url = token_url
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def assertion(self) -> str:
        """Return a fresh client assertion for the token endpoint (60 s, unique jti)."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + 60,
            "jti": os.urandom(16).hex(),
        }
        return jwt.encode({"alg": "ES256", "kid": self._key.kid}, claims, self._key)

    async def headers(self, client: httpx.AsyncClient, timeout: float) -> dict[str, str]:
        """Return the Authorization header, fetching a new token when the cached one is (nearly) expired."""
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                form = {
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion(),
                }
                response = await client.post(self.token_url, data=form, timeout=timeout)
                response.raise_for_status()
                body = response.json()
                self._token = str(body["access_token"])
                self._expires = time.monotonic() + max(0.0, float(body.get("expires_in", 60)) - 15)
            return {"Authorization": f"Bearer {self._token}"}

    def forget(self) -> None:
        """Drop the cached token (the source refused it)."""
        self._token = None


class MutualTls:
    """Client certificate on the TLS connection itself: no header to add."""

    async def headers(self, client: httpx.AsyncClient, timeout: float) -> dict[str, str]:
        return {}

    def forget(self) -> None:
        return None


ClientAuth = PrivateKeyJwt | MutualTls
