"""Forged, altered and out-of-date bearer tokens over real HTTP, against SQLite and PostgreSQL.

Every forgery is refused with 401 before any decision is made, and releases nothing about the
participant it aimed at. The organisation of a request comes from a verified token and nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import func, select

from gateway.store.tables import audit_entries
from tests.conftest import Gateway, synthetic_records

PROBLEM = "application/problem+json"
LOOPBACK_NOWHERE = "http://127.0.0.1:1/keys"  # port 1 on loopback: nothing listens, nothing leaves
DISTINCTIVE = {"family_name": "Vervalst-Zwaluwstaart", "given_names": "Kwartel", "birth_date": "1987-06-05"}

Forger = Callable[[Gateway], str]


# -- hand-made tokens ----------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims(gw: Gateway, org: str = "amsterdam", **overrides: Any) -> dict[str, Any]:
    """Return well-formed claims for `org` at the gateway's clock, with `overrides` (None removes)."""
    gw.minter.now = gw.clock.timestamp()
    return gw.minter.claims(org, **overrides)


def now(gw: Gateway) -> int:
    return int(gw.clock.timestamp())


def unsigned(gw: Gateway, alg: str, kid: bool = False) -> str:
    header: dict[str, Any] = {"alg": alg, "typ": "at+jwt"}
    if kid:
        header["kid"] = gw.minter.ec.kid
    return f"{segment(header)}.{segment(claims(gw))}."


def hmac_signed(gw: Gateway, secret: bytes, kid: str | None) -> str:
    """Return an HS256 token whose HMAC secret is `secret` (a public key: the key-confusion attack)."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "at+jwt"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{segment(header)}.{segment(claims(gw))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def attacker_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)


def attacker_signed(gw: Gateway, kid: str | None = None, **extra_header: Any) -> str:
    """Return an ES256 token signed with a fresh key the gateway does not trust."""
    key = attacker_key()
    header: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": kid or key.kid, **extra_header}
    if extra_header.get("jwk") == "embed":
        header["jwk"] = key.as_dict(private=False)
    return jwt.encode(header, claims(gw), key, algorithms=["ES256"])


def trusted_signed(gw: Gateway, org: str = "amsterdam", alg: str = "ES256", **overrides: Any) -> str:
    gw.minter.now = gw.clock.timestamp()
    header = overrides.pop("header", None)
    return gw.minter.token(org, alg=alg, header=header, **overrides)


def with_payload(token: str, payload: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{segment(payload)}.{signature}"


def tampered(gw: Gateway) -> str:
    """Return a token validly signed for Rotterdam whose payload now says Amsterdam."""
    genuine = trusted_signed(gw, "rotterdam")
    payload = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
    payload.update(organisation="amsterdam", sub="client-amsterdam", client_id="client-amsterdam")
    return with_payload(genuine, payload)


def rsa_public_jwk(gw: Gateway) -> bytes:
    return json.dumps(gw.minter.rsa.as_dict(private=False)).encode()


FORGERIES: list[Any] = [
    pytest.param(lambda gw: unsigned(gw, "none"), id="alg-none"),
    pytest.param(lambda gw: unsigned(gw, "none", kid=True), id="alg-none-with-trusted-kid"),
    pytest.param(lambda gw: unsigned(gw, "None"), id="alg-None-capitalised"),
    pytest.param(lambda gw: unsigned(gw, "ES256", kid=True), id="es256-header-without-signature"),
    pytest.param(
        lambda gw: hmac_signed(gw, gw.minter.ec.as_pem(private=False), gw.minter.ec.kid),
        id="hs256-keyed-with-ec-public-pem",
    ),
    pytest.param(
        lambda gw: hmac_signed(gw, gw.minter.ec.as_pem(private=False), None),
        id="hs256-keyed-with-ec-public-pem-no-kid",
    ),
    pytest.param(
        lambda gw: hmac_signed(gw, gw.minter.rsa.as_pem(private=False), gw.minter.rsa.kid),
        id="hs256-keyed-with-rsa-public-pem",
    ),
    pytest.param(lambda gw: hmac_signed(gw, rsa_public_jwk(gw), gw.minter.rsa.kid), id="hs256-keyed-with-rsa-jwk"),
    pytest.param(
        lambda gw: hmac_signed(gw, gw.minter.jwks_path.read_bytes(), None), id="hs256-keyed-with-trusted-jwks-file"
    ),
    pytest.param(lambda gw: attacker_signed(gw), id="unknown-kid"),
    pytest.param(lambda gw: attacker_signed(gw, kid=gw.minter.ec.kid), id="attacker-key-claiming-trusted-kid"),
    pytest.param(lambda gw: attacker_signed(gw, jku=LOOPBACK_NOWHERE), id="injected-jku"),
    pytest.param(lambda gw: attacker_signed(gw, x5u=LOOPBACK_NOWHERE), id="injected-x5u"),
    pytest.param(lambda gw: attacker_signed(gw, jwk="embed"), id="injected-jwk"),
    pytest.param(lambda gw: attacker_signed(gw, kid=gw.minter.ec.kid, jwk="embed"), id="injected-jwk-trusted-kid"),
    pytest.param(
        lambda gw: trusted_signed(gw, header={"jku": LOOPBACK_NOWHERE}), id="trusted-signature-with-jku-header"
    ),
    pytest.param(
        lambda gw: trusted_signed(gw, header={"x5u": LOOPBACK_NOWHERE}), id="trusted-signature-with-x5u-header"
    ),
    pytest.param(lambda gw: trusted_signed(gw, iss="https://issuer.attacker.test"), id="wrong-iss"),
    pytest.param(lambda gw: trusted_signed(gw, iss=None), id="missing-iss"),
    pytest.param(lambda gw: trusted_signed(gw, aud="some-other-api"), id="wrong-aud"),
    pytest.param(lambda gw: trusted_signed(gw, aud=None), id="missing-aud"),
    pytest.param(
        lambda gw: trusted_signed(gw, iat=now(gw) - 700, nbf=now(gw) - 700, exp=now(gw) - 100),
        id="expired-beyond-leeway",
    ),
    pytest.param(lambda gw: trusted_signed(gw, exp=now(gw) - 30), id="expired-exactly-at-leeway"),
    pytest.param(lambda gw: trusted_signed(gw, nbf=now(gw) + 120), id="nbf-in-future-beyond-leeway"),
    pytest.param(lambda gw: trusted_signed(gw, nbf=now(gw) + 31), id="nbf-one-second-beyond-leeway"),
    pytest.param(lambda gw: trusted_signed(gw, iat=now(gw) + 120), id="iat-in-future-beyond-leeway"),
    pytest.param(tampered, id="tampered-organisation-in-payload"),
    pytest.param(lambda gw: trusted_signed(gw, organisation=None), id="missing-organisation"),
    pytest.param(lambda gw: trusted_signed(gw, organisation=["amsterdam"]), id="organisation-not-a-string"),
    pytest.param(lambda gw: trusted_signed(gw, exp=None), id="missing-exp"),
    pytest.param(lambda gw: trusted_signed(gw, exp="9999999999"), id="exp-as-string"),
    pytest.param(lambda gw: trusted_signed(gw, jti=None), id="missing-jti"),
    pytest.param(lambda gw: trusted_signed(gw, client_id=None), id="missing-client-id"),
    pytest.param(lambda gw: "not-a-jwt", id="not-a-jwt"),
    pytest.param(lambda gw: "a.b.c", id="three-garbage-segments"),
    pytest.param(lambda gw: "..", id="three-empty-segments"),
    pytest.param(lambda gw: trusted_signed(gw) + ".extra", id="four-segments"),
]


# -- requests ------------------------------------------------------------------------------------


def read_with(gw: Gateway, token: str, pseudonym: str, **extra: Any) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {token}",
        "Acting-User": "tester.1",
        "Acting-Role": "case_manager",
        "Processing-Purpose": "lso_case_discussion",
        **extra.pop("headers", {}),
    }
    return gw.http.request("GET", f"/v1/participants/{pseudonym}", headers=headers, **extra)


def registered(gw: Gateway) -> str:
    """Register an Amsterdam participant with distinctive synthetic values; return Amsterdam's pseudonym."""
    records = synthetic_records(7)
    records["identity"].update(DISTINCTIVE)
    return gw.register("amsterdam", records)


def permits_logged(gw: Gateway) -> int:
    with gw.container.db.read.connect() as conn:
        return int(conn.execute(select(func.count()).where(audit_entries.c.decision == "permit")).scalar_one())


def assert_refused_without_data(response: httpx.Response, pseudonym: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer ")
    problem = response.json()
    assert problem["code"] == "invalid_token"
    assert problem["status"] == 401
    assert not {"records", "participant", "audit"} & set(problem)
    assert pseudonym not in response.text
    for value in DISTINCTIVE.values():
        assert value not in response.text


# -- the matrix ----------------------------------------------------------------------------------


@pytest.mark.parametrize("forge", FORGERIES)
def test_a_forged_or_invalid_token_is_refused_with_401_and_releases_nothing(gateway: Gateway, forge: Forger) -> None:
    p = registered(gateway)
    permits_before = permits_logged(gateway)
    response = read_with(gateway, forge(gateway), p)
    assert_refused_without_data(response, p)
    assert permits_logged(gateway) == permits_before


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_valid_token_signed_by_a_trusted_key_is_accepted(gateway: Gateway, alg: str) -> None:
    p = registered(gateway)
    response = read_with(gateway, trusted_signed(gateway, alg=alg), p)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["participant"] == p
    assert body["records"]["identity"]["fields"]["family_name"] == DISTINCTIVE["family_name"]


@pytest.mark.parametrize(
    ("claim", "offset"),
    [
        pytest.param("nbf", 30, id="nbf-at-the-edge-of-the-leeway"),
        pytest.param("exp", -29, id="exp-passed-within-the-leeway"),
    ],
)
def test_clock_skew_within_the_30_second_leeway_is_tolerated(gateway: Gateway, claim: str, offset: int) -> None:
    p = registered(gateway)
    gateway.minter.now = gateway.clock.timestamp()
    skewed: dict[str, Any] = {claim: now(gateway) + offset}
    token = gateway.minter.token("amsterdam", **skewed)
    assert read_with(gateway, token, p).status_code == 200


def test_a_tampered_copy_of_a_token_already_accepted_is_still_refused(gateway: Gateway) -> None:
    p = registered(gateway)
    genuine = trusted_signed(gateway, "amsterdam")
    assert read_with(gateway, genuine, p).status_code == 200
    payload = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
    payload["exp"] += 86_400
    assert_refused_without_data(read_with(gateway, with_payload(genuine, payload), p), p)


@pytest.mark.parametrize("authorization", ["Bearer", "Basic YW1zdGVyZGFtOnNlY3JldA==", "amsterdam"])
def test_an_authorization_header_without_a_bearer_token_is_refused(gateway: Gateway, authorization: str) -> None:
    p = registered(gateway)
    response = read_with(gateway, "unused", p, headers={"Authorization": authorization})
    assert_refused_without_data(response, p)


# -- the organisation comes from the token -------------------------------------------------------


def test_a_rotterdam_token_cannot_read_an_amsterdam_participant_by_claiming_amsterdam(gateway: Gateway) -> None:
    p = registered(gateway)
    rotterdam_pseudonym = gateway.pseudonym_for("rotterdam", p)
    claims_amsterdam = {"Organisation": "amsterdam", "X-Organisation": "amsterdam", "X-Client-Id": "client-amsterdam"}
    response = read_with(
        gateway,
        trusted_signed(gateway, "rotterdam"),
        rotterdam_pseudonym,
        headers=claims_amsterdam,
        json={"organisation": "amsterdam", "client_id": "client-amsterdam"},
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    for value in DISTINCTIVE.values():
        assert value not in response.text
    # The claim in the query is no parameter of the read: refused before anything is decided.
    claimed = read_with(
        gateway, trusted_signed(gateway, "rotterdam"), rotterdam_pseudonym, params={"organisation": "amsterdam"}
    )
    assert claimed.status_code == 422
    assert claimed.json()["errors"] == [
        {"location": "query.organisation", "message": "not a parameter of this operation"}
    ]
    for value in DISTINCTIVE.values():
        assert value not in claimed.text


def test_a_rotterdam_token_does_not_resolve_amsterdams_pseudonym(gateway: Gateway) -> None:
    p = registered(gateway)
    response = read_with(gateway, trusted_signed(gateway, "rotterdam"), p, headers={"X-Organisation": "amsterdam"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert DISTINCTIVE["family_name"] not in response.text


def test_the_audit_log_names_the_organisation_of_the_token_not_of_the_request(gateway: Gateway) -> None:
    p = registered(gateway)
    response = read_with(
        gateway,
        trusted_signed(gateway, "rotterdam"),
        gateway.pseudonym_for("rotterdam", p),
        headers={"X-Organisation": "amsterdam"},
    )
    seq = response.json()["audit_seq"]
    with gateway.container.db.read.connect() as conn:
        row = conn.execute(select(audit_entries).where(audit_entries.c.seq == seq)).one()
    assert row.organisation == "rotterdam"
    assert row.decision == "deny"
    assert json.loads(row.entry)["client_id"] == "client-rotterdam"
