"""The client registry on SQLite and PostgreSQL: keys registered inline or published at a jwks_uri
(fetched over loopback HTTP here), key rotation with and without overlap, and what it refuses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gateway.auth.model import RegistryError
from tests.conftest import Gateway
from tests.support.oauth import Partner, assertion, ec_key, post_token, public_jwks, register, token_form


class JwksServer:
    """A partner's own loopback server publishing its JWKS; the keys can change, requests are counted."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def published_partner(gateway: Gateway) -> Iterator[tuple[Partner, JwksServer]]:
    key = ec_key("published-k1")
    server = JwksServer(public_jwks(key))
    gateway.container.auth.registry.register("partner-published", "amsterdam", ("case_manager",), jwks_uri=server.url)
    yield Partner("partner-published", "amsterdam", key, ("case_manager",), "ES256"), server
    server.close()


def test_a_client_publishing_its_keys_at_a_jwks_uri_authenticates_and_the_keys_are_cached(
    gateway: Gateway, published_partner: tuple[Partner, JwksServer]
) -> None:
    partner, server = published_partner
    for _ in range(3):
        assert post_token(gateway, token_form(assertion(gateway, partner))).status_code == 200
    assert server.requests == 1


def test_a_new_key_at_the_jwks_uri_is_fetched_when_an_assertion_names_it(
    gateway: Gateway, published_partner: tuple[Partner, JwksServer]
) -> None:
    partner, server = published_partner
    assert post_token(gateway, token_form(assertion(gateway, partner))).status_code == 200
    new_key = ec_key("published-k2")
    server.jwks = public_jwks(partner.key, new_key)
    renewed = Partner(partner.client_id, partner.organisation, new_key, partner.roles, "ES256")
    assert post_token(gateway, token_form(assertion(gateway, renewed))).status_code == 401  # fetched seconds ago
    gateway.clock.advance(timedelta(seconds=10))
    assert post_token(gateway, token_form(assertion(gateway, renewed))).status_code == 200
    assert server.requests == 2


def test_an_unreachable_jwks_uri_fails_authentication_and_says_so(
    gateway: Gateway, published_partner: tuple[Partner, JwksServer]
) -> None:
    partner, server = published_partner
    server.close()
    response = post_token(gateway, token_form(assertion(gateway, partner)))
    assert response.status_code == 401
    assert "keys are unavailable" in response.json()["error_description"]


def test_rotating_keys_with_an_overlap_keeps_both_working_until_the_next_rotation(gateway: Gateway) -> None:
    partner = register(gateway)
    new_key = ec_key(f"{partner.client_id}-k2")
    renewed = Partner(partner.client_id, partner.organisation, new_key, partner.roles, "ES256")
    registry = gateway.container.auth.registry
    registry.rotate_keys(partner.client_id, jwks=public_jwks(new_key), keep_current=True)
    assert post_token(gateway, token_form(assertion(gateway, partner))).status_code == 200
    assert post_token(gateway, token_form(assertion(gateway, renewed))).status_code == 200
    registry.rotate_keys(partner.client_id, jwks=public_jwks(new_key))
    assert post_token(gateway, token_form(assertion(gateway, partner))).status_code == 401
    assert post_token(gateway, token_form(assertion(gateway, renewed))).status_code == 200


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param({"client_id": "x"}, "client_id", id="a-too-short-client-id"),
        pytest.param({"client_id": "bad id!"}, "client_id", id="a-client-id-with-spaces"),
        pytest.param({"organisation": "atlantis"}, "not in the configuration", id="an-unknown-organisation"),
        pytest.param({"roles": ()}, "at least one role", id="no-role"),
        pytest.param({"roles": ("ind_officer",)}, "not roles of amsterdam", id="a-role-of-another-organisation"),
        pytest.param({"jwks": None}, "either a JWKS or a jwks_uri", id="no-keys"),
        pytest.param({"jwks_uri": "https://partner.test/jwks"}, "either a JWKS or a jwks_uri", id="both-kinds-of-keys"),
        pytest.param({"rate_limit_per_minute": 0}, "at least 1", id="a-zero-rate-limit"),
    ],
)
def test_the_registry_refuses_a_registration_that_does_not_fit(
    gateway: Gateway, change: dict[str, Any], complaint: str
) -> None:
    args: dict[str, Any] = {
        "client_id": "partner-new",
        "organisation": "amsterdam",
        "roles": ("case_manager",),
        "jwks": public_jwks(ec_key("k")),
        **change,
    }
    with pytest.raises(RegistryError, match=complaint):
        gateway.container.auth.registry.register(
            args.pop("client_id"), args.pop("organisation"), args.pop("roles"), **args
        )


def test_a_client_id_is_registered_once(gateway: Gateway) -> None:
    partner = register(gateway)
    with pytest.raises(RegistryError, match="already registered"):
        gateway.container.auth.registry.register(
            partner.client_id, "amsterdam", ("case_manager",), jwks=public_jwks(ec_key("k"))
        )
