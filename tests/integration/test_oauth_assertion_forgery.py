"""Forged, altered, misdirected and replayed client assertions at the token endpoint, over real HTTP, on
SQLite and PostgreSQL. Each is refused with 401 `invalid_client` (RFC 6749 section 5.2, as JSON), no
token is issued, and the refusal is logged with its reason and without the assertion.

Key references in a header (`jku`, `x5u`) point at a loopback server that would hand out the
attacker's key: the test proves the gateway never even asks it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from gateway.auth.errors import OAuthError
from gateway.auth.server import HttpFacts
from gateway.container import build
from tests.conftest import Gateway
from tests.support.oauth import (
    Partner,
    assertion,
    assertion_claims,
    captured_logs,
    ec_key,
    events_named,
    get_token,
    post_token,
    public_jwks,
    register,
    token_form,
)

OTHER_TOKEN_ENDPOINT = "https://other-gateway.test/oauth/token"


class KeyServer:
    """A loopback HTTP server that would serve an attacker's JWKS, counting every request it gets."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        body = json.dumps(jwks).encode()
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def attacker() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig", "kid": "attacker-1"})


@pytest.fixture
def key_server(attacker: RSAKey) -> Iterator[KeyServer]:
    server = KeyServer({"keys": [attacker.as_dict(private=False)]})
    yield server
    server.close()


# -- hand-made assertions -------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def unsigned(gw: Gateway, p: Partner, alg: str) -> str:
    return f"{segment({'alg': alg, 'kid': p.key.kid})}.{segment(assertion_claims(gw, p))}."


def hmac_with(gw: Gateway, p: Partner, secret: bytes) -> str:
    """HS256 keyed with the client's *public* key: the algorithm-confusion attack."""
    signing_input = f"{segment({'alg': 'HS256', 'kid': p.key.kid})}.{segment(assertion_claims(gw, p))}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def signed_by(gw: Gateway, p: Partner, key: RSAKey | ECKey, header: dict[str, Any], **claims: Any) -> str:
    alg = "RS256" if isinstance(key, RSAKey) else "ES256"
    return jwt.encode({"alg": alg, **header}, assertion_claims(gw, p, **claims), key, algorithms=[alg])


def tampered(gw: Gateway, p: Partner) -> str:
    """A genuine assertion whose payload was changed after signing (a later expiry)."""
    genuine = assertion(gw, p)
    head, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["exp"] += 3600
    return f"{head}.{segment(claims)}.{signature}"


def now(gw: Gateway) -> int:
    return int(gw.clock.timestamp())


Forger = Callable[[Gateway, Partner, RSAKey, str], str]

FORGERIES: list[Any] = [
    pytest.param(lambda gw, p, a, u: unsigned(gw, p, "none"), id="alg-none"),
    pytest.param(lambda gw, p, a, u: unsigned(gw, p, "None"), id="alg-None-capitalised"),
    pytest.param(lambda gw, p, a, u: unsigned(gw, p, "RS256"), id="rs256-header-without-signature"),
    pytest.param(lambda gw, p, a, u: hmac_with(gw, p, p.key.as_pem(private=False)), id="hs256-with-public-key-pem"),
    pytest.param(
        lambda gw, p, a, u: hmac_with(gw, p, json.dumps(p.key.as_dict(private=False)).encode()),
        id="hs256-with-public-jwk",
    ),
    pytest.param(lambda gw, p, a, u: signed_by(gw, p, a, {"kid": a.kid}), id="unknown-kid"),
    pytest.param(lambda gw, p, a, u: signed_by(gw, p, a, {"kid": p.key.kid}), id="attacker-key-claiming-clients-kid"),
    pytest.param(lambda gw, p, a, u: signed_by(gw, p, a, {"kid": a.kid, "jku": u}), id="injected-jku"),
    pytest.param(lambda gw, p, a, u: signed_by(gw, p, a, {"kid": a.kid, "x5u": u}), id="injected-x5u"),
    pytest.param(
        lambda gw, p, a, u: signed_by(gw, p, a, {"kid": a.kid, "jwk": a.as_dict(private=False)}), id="injected-jwk"
    ),
    pytest.param(
        lambda gw, p, a, u: signed_by(gw, p, a, {"kid": p.key.kid, "jwk": a.as_dict(private=False)}),
        id="injected-jwk-with-clients-kid",
    ),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, header={"jku": u}), id="genuine-signature-with-jku-header"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, iss="https://issuer.attacker.test"), id="wrong-iss"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, iss="partner-rotterdam-x"), id="iss-not-sub"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, iss=None), id="missing-iss"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, sub=None), id="missing-sub"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, aud="lvv-exchange-gateway"), id="wrong-aud-the-resource-api"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, aud=OTHER_TOKEN_ENDPOINT), id="assertion-for-another-audience"),
    pytest.param(
        lambda gw, p, a, u: assertion(gw, p, aud=[gw.container.auth.token_endpoint, OTHER_TOKEN_ENDPOINT]),
        id="aud-list-naming-another-audience-too",
    ),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, aud=None), id="missing-aud"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, iat=now(gw) - 200, exp=now(gw) - 31), id="expired"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, nbf=now(gw) + 31), id="nbf-in-the-future"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, iat=now(gw) + 31, exp=now(gw) + 90), id="iat-in-the-future"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, exp=None), id="missing-exp"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, iat=None), id="missing-iat"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, exp=now(gw) + 3600), id="lifetime-beyond-five-minutes"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, jti=None), id="missing-jti"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, jti="0123456789abcdef"), id="jti-under-128-bits"),
    pytest.param(lambda gw, p, a, u: tampered(gw, p), id="tampered-payload"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, header={"typ": "at+jwt"}), id="an-access-token-as-assertion"),
    pytest.param(lambda gw, p, a, u: assertion(gw, p, sub="nobody", iss="nobody"), id="unknown-client"),
    pytest.param(lambda gw, p, a, u: "a.b.c", id="garbage"),
]


def assert_refused(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "invalid_client"
    assert "access_token" not in body


@pytest.mark.parametrize("forge", FORGERIES)
def test_a_forged_or_invalid_client_assertion_is_refused_with_401_and_logged(
    gateway: Gateway, forge: Forger, attacker: RSAKey, key_server: KeyServer
) -> None:
    partner = register(gateway, "amsterdam")
    register(gateway, "rotterdam", roles=("case_manager",), client_id="partner-rotterdam-x")
    forged = forge(gateway, partner, attacker, key_server.url)
    with captured_logs() as events:
        response = post_token(gateway, token_form(forged))
    assert_refused(response)
    assert key_server.requests == 0
    failures = events_named(events, "auth.client.authentication_failed")
    assert len(failures) == 1, events
    assert failures[0]["endpoint"] == "token"
    assert failures[0]["reason"]
    assert failures[0]["trace_id"]
    assert not events_named(events, "auth.token.issued")
    assert forged not in json.dumps(events, default=str)


def test_a_replayed_assertion_is_refused_the_second_time(gateway: Gateway) -> None:
    partner = register(gateway)
    once = assertion(gateway, partner)
    assert post_token(gateway, token_form(once)).status_code == 200
    with captured_logs() as events:
        again = post_token(gateway, token_form(once))
    assert_refused(again)
    assert "replay" in again.json()["error_description"]
    refused = events_named(events, "auth.client.authentication_failed")[0]
    assert (refused["reason"], refused["client_id"]) == ("assertion_replayed", partner.client_id)


def test_a_jti_used_once_is_refused_even_in_a_new_assertion(gateway: Gateway) -> None:
    partner = register(gateway)
    assert post_token(gateway, token_form(assertion(gateway, partner, jti="j" * 32))).status_code == 200
    assert_refused(post_token(gateway, token_form(assertion(gateway, partner, jti="j" * 32, exp=now(gateway) + 61))))


def test_the_replay_cache_is_durable_a_new_gateway_process_on_the_same_database_remembers(gateway: Gateway) -> None:
    partner = register(gateway)
    once = assertion(gateway, partner)
    assert post_token(gateway, token_form(once)).status_code == 200
    second = build(gateway.container.settings, gateway.clock)  # another process's view of the same database
    try:
        with pytest.raises(OAuthError) as refused:
            second.auth.token(token_form(once), HttpFacts(trace_id="0" * 31 + "1"))
        assert refused.value.error == "invalid_client"
        assert "replay" in refused.value.description
    finally:
        second.close()


def test_an_assertion_used_for_introspection_cannot_be_replayed_at_the_token_endpoint(gateway: Gateway) -> None:
    partner = register(gateway)
    token = get_token(gateway, partner)
    once = assertion(gateway, partner)
    form = token_form(once, token=token)
    del form["grant_type"]
    assert gateway.http.post("/oauth/introspect", data=form).json()["active"] is True
    assert_refused(post_token(gateway, token_form(once)))


def test_an_assertion_signed_by_another_registered_clients_key_is_refused(gateway: Gateway) -> None:
    partner = register(gateway)
    other = register(gateway)
    assert_refused(post_token(gateway, token_form(assertion(gateway, partner, key=other.key))))


def test_clock_skew_within_the_leeway_is_tolerated(gateway: Gateway) -> None:
    partner = register(gateway)
    skewed = assertion(gateway, partner, iat=now(gateway) + 30, nbf=now(gateway) + 30, exp=now(gateway) + 90)
    assert post_token(gateway, token_form(skewed)).status_code == 200


def test_an_es256_client_with_its_own_key_is_accepted_and_an_hs256_one_never(gateway: Gateway) -> None:
    partner = register(gateway, alg="ES256")
    assert post_token(gateway, token_form(assertion(gateway, partner))).status_code == 200
    secret = json.dumps(partner.key.as_dict(private=False)).encode()
    assert_refused(post_token(gateway, token_form(hmac_with(gateway, partner, secret))))


def test_a_rotated_out_client_key_no_longer_authenticates(gateway: Gateway) -> None:
    partner = register(gateway)
    new_key = ec_key(f"{partner.client_id}-k2")
    gateway.container.auth.registry.rotate_keys(partner.client_id, jwks=public_jwks(new_key))
    assert_refused(post_token(gateway, token_form(assertion(gateway, partner))))
    renewed = Partner(partner.client_id, partner.organisation, new_key, partner.roles, "ES256")
    assert post_token(gateway, token_form(assertion(gateway, renewed))).status_code == 200
