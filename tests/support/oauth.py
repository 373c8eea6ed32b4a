"""Partner systems for the OAuth tests: synthetic key pairs, registration, client assertions on the
gateway's clock, the token endpoint over real HTTP, and structured-log capture."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

from tests.conftest import Gateway

with warnings.catch_warnings():
    # authlib 1.9 prefers the `httpx2` package and warns when it falls back to `httpx`, which this
    # project uses; the client itself is the same.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client

__all__ = ["OAuth2Client"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_PATH = "/oauth/token"


def rsa_key(kid: str, alg: str = "RS256") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"alg": alg, "use": "sig", "kid": kid})


def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig", "kid": kid})


def public_jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


@dataclass
class Partner:
    """A synthetic partner system: its client id, organisation, roles and private key."""

    client_id: str
    organisation: str
    key: Key
    roles: tuple[str, ...]
    alg: str = "RS256"
    extra_keys: list[Key] = field(default_factory=list)


def register(
    gw: Gateway,
    organisation: str = "amsterdam",
    roles: tuple[str, ...] = ("case_manager", "intake_officer"),
    client_id: str | None = None,
    alg: str = "RS256",
    **options: Any,
) -> Partner:
    """Register a partner client of `organisation` with a fresh key pair; return it."""
    client_id = client_id or f"partner-{organisation}-{secrets.token_hex(3)}"
    key: Key = ec_key(f"{client_id}-k1") if alg == "ES256" else rsa_key(f"{client_id}-k1", alg)
    gw.container.auth.registry.register(client_id, organisation, roles, jwks=public_jwks(key), **options)
    return Partner(client_id, organisation, key, roles, alg)


def assertion_claims(gw: Gateway, partner: Partner, **overrides: Any) -> dict[str, Any]:
    """Return valid assertion claims at the gateway's clock; `overrides` replace (None removes) claims."""
    now = int(gw.clock.timestamp())
    claims: dict[str, Any] = {
        "iss": partner.client_id,
        "sub": partner.client_id,
        "aud": gw.container.auth.token_endpoint,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(24),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def assertion(
    gw: Gateway, partner: Partner, header: dict[str, Any] | None = None, key: Key | None = None, **overrides: Any
) -> str:
    """Return a client assertion signed with the partner's key (or `key`)."""
    signing_key = key or partner.key
    head = {"alg": partner.alg, "kid": signing_key.kid, **(header or {})}
    return jwt.encode(head, assertion_claims(gw, partner, **overrides), signing_key, algorithms=[head["alg"]])


def token_form(assertion_value: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion_value,
        **extra,
    }


def post_token(gw: Gateway, form: dict[str, str], **kwargs: Any) -> httpx.Response:
    """POST the form to the token endpoint over real HTTP."""
    return gw.http.post(TOKEN_PATH, data=form, **kwargs)


def get_token(gw: Gateway, partner: Partner, **extra: str) -> str:
    """Return an access token for the partner, obtained from the token endpoint."""
    response = post_token(gw, token_form(assertion(gw, partner), **extra))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def api_headers(token: str, role: str = "case_manager", purpose: str = "lso_case_discussion") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Acting-User": "tester.1",
        "Acting-Role": role,
        "Processing-Purpose": purpose,
    }


class ClockedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib's own `private_key_jwt` client authentication, timed by the gateway's (test) clock.

    Only the moment changes: authlib still builds and signs the assertion, with a fresh jti each time.
    """

    def __init__(self, gw: Gateway, token_endpoint: str, key: Key, alg: str) -> None:
        super().__init__(token_endpoint=token_endpoint, alg=alg, headers={"kid": key.kid})
        self._gw = gw

    def sign(self, auth: Any, token_endpoint: str) -> str:
        signed: str = private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            header=dict(self.headers),
            issued_at=int(self._gw.clock.timestamp()),
            expires_in=60,
        )
        return signed


@contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Yield the list the structured log events of the block are captured into (all threads)."""
    with structlog.testing.capture_logs() as events:
        yield events


def events_named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == name]
