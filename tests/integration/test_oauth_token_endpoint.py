"""The token endpoint (client credentials with private_key_jwt) over real HTTP, on SQLite and PostgreSQL:
a real OAuth client gets a token and reads a participant; the token's shape (RFC 9068); scopes; what
the endpoint refuses; discovery; introspection; rate limits; and what the log says about it all."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.auth.model import Status
from tests.conftest import AMS, Gateway
from tests.support.oauth import (
    ClockedPrivateKeyJWT,
    OAuth2Client,
    api_headers,
    assertion,
    captured_logs,
    events_named,
    get_token,
    post_token,
    register,
    token_form,
)


def claims_of(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return payload


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return header


# -- a real client --------------------------------------------------------------------------------


def test_authlibs_own_oauth_client_gets_a_token_with_private_key_jwt_and_reads_a_participant(
    gateway: Gateway,
) -> None:
    participant = gateway.register("amsterdam")
    partner = register(gateway, "amsterdam")
    metadata = httpx.get(f"{gateway.url}/.well-known/oauth-authorization-server", timeout=60).json()
    token_url = f"{gateway.url}/oauth/token"  # where it listens; the assertion's aud is the advertised endpoint
    auth_method = ClockedPrivateKeyJWT(gateway, metadata["token_endpoint"], partner.key, "RS256")
    with OAuth2Client(
        partner.client_id,
        partner.key,
        token_endpoint_auth_method=auth_method,
        base_url=gateway.url,
        timeout=60,
    ) as client:
        client.register_client_auth_method(auth_method)
        token = client.fetch_token(token_url, grant_type="client_credentials", scope="case_manager")
        assert token["token_type"] == "Bearer"
        assert "refresh_token" not in token
        response = client.get(
            f"/v1/participants/{participant}",
            headers={
                "Acting-User": "tester.1",
                "Acting-Role": "case_manager",
                "Processing-Purpose": "lso_case_discussion",
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["participant"] == participant
    assert "identity" in response.json()["records"]


def test_an_rs256_ps256_or_es256_assertion_is_accepted(gateway: Gateway) -> None:
    for alg in ("RS256", "PS256", "ES256"):
        partner = register(gateway, "amsterdam", alg=alg)
        response = post_token(gateway, token_form(assertion(gateway, partner)))
        assert response.status_code == 200, (alg, response.text)


# -- what is issued -------------------------------------------------------------------------------


def test_an_issued_token_has_the_rfc_9068_shape_and_verifies_with_the_published_keys(gateway: Gateway) -> None:
    partner = register(gateway, "rotterdam", roles=("case_manager",))
    response = post_token(gateway, token_form(assertion(gateway, partner)))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["expires_in"] == 900
    token = body["access_token"]
    assert header_of(token)["typ"] == "at+jwt"
    claims = claims_of(token)
    now = int(gateway.clock.timestamp())
    assert claims["iss"] == gateway.container.settings.token_issuer
    assert claims["aud"] == gateway.container.settings.token_audience
    assert claims["sub"] == claims["client_id"] == partner.client_id
    assert claims["organisation"] == "rotterdam"
    assert claims["scope"] == "case_manager"
    assert claims["iat"] == now
    assert claims["exp"] == now + 900
    assert len(claims["jti"]) >= 22
    published = KeySet.import_key_set(httpx.get(f"{gateway.url}/.well-known/jwks.json", timeout=60).json())
    verified = jwt.decode(token, published, algorithms=["ES256"])
    assert verified.claims["organisation"] == "rotterdam"


def test_the_token_lifetime_follows_the_setting(gateway: Gateway) -> None:
    gateway.container.settings.access_token_lifetime_seconds = 120
    partner = register(gateway)
    body = post_token(gateway, token_form(assertion(gateway, partner))).json()
    assert body["expires_in"] == 120
    assert claims_of(body["access_token"])["exp"] - claims_of(body["access_token"])["iat"] == 120


def test_without_a_scope_the_token_grants_every_registered_role(gateway: Gateway) -> None:
    partner = register(gateway, roles=("case_manager", "intake_officer"))
    token = get_token(gateway, partner)
    assert set(claims_of(token)["scope"].split()) == {"case_manager", "intake_officer"}


def test_a_scope_beyond_the_registered_roles_is_refused_as_invalid_scope(gateway: Gateway) -> None:
    partner = register(gateway, roles=("case_manager",))
    response = post_token(gateway, token_form(assertion(gateway, partner), scope="case_manager privacy_officer"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_the_acting_role_must_be_in_the_tokens_scope(gateway: Gateway) -> None:
    participant = gateway.register("amsterdam")
    partner = register(gateway, roles=("case_manager", "intake_officer"))
    token = get_token(gateway, partner, scope="intake_officer")
    response = gateway.http.get(f"/v1/participants/{participant}", headers=api_headers(token, "case_manager"))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert "insufficient_scope" in response.headers["www-authenticate"]


# -- what is refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        pytest.param({"grant_type": None}, 400, "invalid_request", id="no-grant-type"),
        pytest.param({"grant_type": "password"}, 400, "unsupported_grant_type", id="password-grant"),
        pytest.param({"grant_type": "refresh_token"}, 400, "unsupported_grant_type", id="refresh-token-grant"),
        pytest.param({"client_assertion_type": None}, 401, "invalid_client", id="no-assertion-type"),
        pytest.param({"client_assertion_type": "urn:other"}, 401, "invalid_client", id="other-assertion-type"),
        pytest.param({"client_assertion": None}, 401, "invalid_client", id="no-assertion"),
        pytest.param({"client_secret": "s3cret"}, 401, "invalid_client", id="a-client-secret-as-well"),
        pytest.param({"client_id": "someone-else"}, 401, "invalid_client", id="client-id-of-another-client"),
    ],
)
def test_a_malformed_token_request_gets_an_rfc_6749_json_error(
    gateway: Gateway, change: dict[str, str | None], status: int, error: str
) -> None:
    partner = register(gateway)
    form: dict[str, Any] = token_form(assertion(gateway, partner))
    form.update(change)
    response = post_token(gateway, {k: v for k, v in form.items() if v is not None})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error
    assert isinstance(response.json()["error_description"], str)


def test_a_json_body_is_refused_the_form_is_required(gateway: Gateway) -> None:
    partner = register(gateway)
    response = gateway.http.post("/oauth/token", json=token_form(assertion(gateway, partner)))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_parameter_given_twice_is_refused(gateway: Gateway) -> None:
    partner = register(gateway)
    body = "&".join(f"{k}={v}" for k, v in token_form(assertion(gateway, partner)).items()) + "&grant_type=x"
    response = gateway.http.post(
        "/oauth/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_basic_client_authentication_is_refused(gateway: Gateway) -> None:
    partner = register(gateway)
    response = post_token(gateway, token_form(assertion(gateway, partner)), auth=(partner.client_id, "secret"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_disabled_client_gets_no_token(gateway: Gateway) -> None:
    partner = register(gateway)
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.DISABLED)
    response = post_token(gateway, token_form(assertion(gateway, partner)))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_client_with_only_exchange_roles_gets_no_token_after_the_end(gateway: Gateway) -> None:
    partner = register(gateway, "ind", roles=("ind_officer",))
    gateway.clock.set(datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS))
    response = post_token(gateway, token_form(assertion(gateway, partner)))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["error_description"] == (
        "the covenants of ind ended on 2024-12-31T23:59:59+01:00; only oversight roles (privacy_officer) remain "
        "until 2026-07-01T00:00:00+02:00; this client is registered for none of them"
    )


def test_a_demo_client_is_refused_outside_demo_mode(gateway: Gateway) -> None:
    assert not gateway.container.settings.demo
    partner = register(gateway, demo=True)
    response = post_token(gateway, token_form(assertion(gateway, partner)))
    assert response.status_code == 401
    assert "demo" in response.json()["error_description"]


# -- discovery ------------------------------------------------------------------------------------


def test_the_metadata_document_describes_the_token_endpoint_per_rfc_8414(gateway: Gateway) -> None:
    metadata = gateway.http.get("/.well-known/oauth-authorization-server").json()
    issuer = gateway.container.settings.token_issuer
    assert metadata["issuer"] == issuer
    assert metadata["token_endpoint"] == f"{issuer}/oauth/token"
    assert metadata["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert metadata["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert metadata["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(metadata["token_endpoint_auth_signing_alg_values_supported"]) == {"RS256", "PS256", "ES256"}
    assert "case_manager" in metadata["scopes_supported"]


def test_the_jwks_publishes_public_keys_only(gateway: Gateway) -> None:
    get_token(gateway, register(gateway))
    keys = gateway.http.get("/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["use"] == "sig"
    assert keys[0]["alg"] == "ES256"
    assert not {"d", "p", "q", "k"} & set(keys[0])


# -- introspection --------------------------------------------------------------------------------


def introspect(gateway: Gateway, partner: Any, token: str) -> httpx.Response:
    form = token_form(assertion(gateway, partner), token=token)
    del form["grant_type"]
    return gateway.http.post("/oauth/introspect", data=form)


def test_introspection_describes_an_active_token_of_the_callers_own_organisation(gateway: Gateway) -> None:
    partner = register(gateway)
    colleague = register(gateway)  # another system of the same organisation
    token = get_token(gateway, partner)
    response = introspect(gateway, colleague, token)
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == partner.client_id
    assert body["organisation"] == "amsterdam"
    assert body["token_type"] == "Bearer"


def test_introspection_calls_another_organisations_or_a_revoked_token_inactive(gateway: Gateway) -> None:
    partner = register(gateway, "amsterdam")
    other = register(gateway, "rotterdam", roles=("case_manager",))
    token = get_token(gateway, partner)
    assert introspect(gateway, other, token).json() == {"active": False}
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.DISABLED)
    assert introspect(gateway, register(gateway), token).json() == {"active": False}
    assert introspect(gateway, register(gateway), "not-a-token").json() == {"active": False}


def test_introspection_needs_client_authentication(gateway: Gateway) -> None:
    token = get_token(gateway, register(gateway))
    response = gateway.http.post("/oauth/introspect", data={"token": token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# -- rate limits ----------------------------------------------------------------------------------


def test_too_many_token_requests_get_429_with_retry_after(gateway: Gateway) -> None:
    gateway.container.settings.token_rate_limit_per_minute = 6  # a burst of one, then one per 10 s
    partner = register(gateway)
    assert post_token(gateway, token_form(assertion(gateway, partner))).status_code == 200
    limited = post_token(gateway, token_form(assertion(gateway, partner)))
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert limited.headers["retry-after"] == "10"


def test_too_many_api_requests_of_a_client_get_429_with_retry_after_and_the_bucket_refills(
    gateway: Gateway,
) -> None:
    participant = gateway.register("amsterdam")
    partner = register(gateway, rate_limit_per_minute=12)  # a burst of two, then one per 5 s
    token = get_token(gateway, partner)
    url = f"/v1/participants/{participant}"
    assert [gateway.http.get(url, headers=api_headers(token)).status_code for _ in range(2)] == [200, 200]
    limited = gateway.http.get(url, headers=api_headers(token))
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited"
    assert limited.headers["retry-after"] == "5"
    other = get_token(gateway, register(gateway))
    assert gateway.http.get(url, headers=api_headers(other)).status_code == 200  # limits are per client
    gateway.clock.advance(timedelta(seconds=5))
    assert gateway.http.get(url, headers=api_headers(token)).status_code == 200


# -- the log --------------------------------------------------------------------------------------


def test_an_issuance_is_logged_without_the_token_or_the_assertion(gateway: Gateway) -> None:
    partner = register(gateway)
    signed = assertion(gateway, partner)
    with captured_logs() as events:
        token = post_token(gateway, token_form(signed)).json()["access_token"]
    issued = events_named(events, "auth.token.issued")
    assert len(issued) == 1
    event = issued[0]
    assert event["client_id"] == partner.client_id
    assert event["organisation"] == "amsterdam"
    assert event["token_id"] == claims_of(token)["jti"]
    assert event["trace_id"]
    text = json.dumps(events, default=str)
    assert token not in text
    assert signed not in text
    assert token.split(".")[2] not in text
