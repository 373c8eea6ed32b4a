"""Test signing keys and access-token minting (the token endpoint is a separate component)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ISSUER = "https://gateway.test"
AUDIENCE = "lvv-exchange-gateway"


class TokenMinter:
    def __init__(self, key_dir: Path) -> None:
        self.ec = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)
        self.rsa = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig"}, auto_kid=True)
        self.jwks_path = key_dir / "trusted.jwks.json"
        self.jwks_path.write_text(
            json.dumps({"keys": [self.ec.as_dict(private=False), self.rsa.as_dict(private=False)]})
        )
        self.now: float | None = None  # follows the gateway's clock when set

    def claims(self, org: str, **overrides: Any) -> dict[str, Any]:
        now = int(self.now if self.now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": f"client-{org}",
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "client_id": f"client-{org}",
            "organisation": org,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, org: str, alg: str = "ES256", header: dict[str, Any] | None = None, **overrides: Any) -> str:
        key = self.ec if alg == "ES256" else self.rsa
        head = {"alg": alg, "kid": key.kid, "typ": "at+jwt", **(header or {})}
        return jwt.encode(head, self.claims(org, **overrides), key, algorithms=[alg])
