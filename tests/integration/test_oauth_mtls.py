"""Certificate-bound access tokens (RFC 8705) behind a TLS terminator, over real HTTP on loopback.

The test client plays the terminator: it sends the client certificate in the `Client-Cert` header
(RFC 9440). The gateway believes that header only from the configured terminator address."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from gateway.auth.mtls import CertificateSource, certificate_thumbprint
from gateway.store.tables import audit_entries
from tests.conftest import Gateway
from tests.support.oauth import api_headers, assertion, captured_logs, events_named, post_token, register, token_form


def self_signed(name: str) -> bytes:
    """Return the DER of a fresh self-signed certificate for a synthetic partner system."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime(2024, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=730))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


def client_cert(der: bytes) -> dict[str, str]:
    return {"Client-Cert": f":{base64.b64encode(der).decode()}:"}


@pytest.fixture
def terminated(gateway: Gateway) -> Gateway:
    """The gateway behind a TLS terminator on 127.0.0.1 that passes client certificates in Client-Cert."""
    gateway.container.auth.certificates = CertificateSource("Client-Cert", ("127.0.0.1/32",))
    return gateway


def bound_token(gw: Gateway, der: bytes) -> tuple[str, str]:
    partner = register(gw, certificate_bound=True)
    response = post_token(gw, token_form(assertion(gw, partner)), headers=client_cert(der))
    assert response.status_code == 200, response.text
    return partner.client_id, response.json()["access_token"]


def test_a_bound_token_carries_the_certificate_thumbprint_and_works_only_with_that_certificate(
    terminated: Gateway,
) -> None:
    p = terminated.register("amsterdam")
    der = self_signed("partner-system.test")
    _, token = bound_token(terminated, der)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["cnf"] == {"x5t#S256": certificate_thumbprint(der)}
    url = f"/v1/participants/{p}"
    assert terminated.http.get(url, headers={**api_headers(token), **client_cert(der)}).status_code == 200
    assert terminated.http.get(url, headers=api_headers(token)).status_code == 401
    other = client_cert(self_signed("another-system.test"))
    assert terminated.http.get(url, headers={**api_headers(token), **other}).status_code == 401


def test_a_certificate_bound_client_gets_no_token_without_its_certificate(terminated: Gateway) -> None:
    partner = register(terminated, certificate_bound=True)
    response = post_token(terminated, token_form(assertion(terminated, partner)))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_certificate_header_from_outside_the_terminator_is_never_believed(gateway: Gateway) -> None:
    gateway.container.auth.certificates = CertificateSource("Client-Cert", ("10.9.9.9/32",))
    der = self_signed("partner-system.test")
    partner = register(gateway, certificate_bound=True)
    with captured_logs() as events:
        response = post_token(gateway, token_form(assertion(gateway, partner)), headers=client_cert(der))
    assert response.status_code == 401
    assert events_named(events, "auth.mtls.untrusted_certificate_header")


def test_a_bound_token_is_refused_when_the_certificate_comes_from_outside_the_terminator(
    terminated: Gateway,
) -> None:
    p = terminated.register("amsterdam")
    der = self_signed("partner-system.test")
    _, token = bound_token(terminated, der)
    terminated.container.auth.certificates = CertificateSource("Client-Cert", ("10.9.9.9/32",))
    headers = {**api_headers(token), **client_cert(der)}
    assert terminated.http.get(f"/v1/participants/{p}", headers=headers).status_code == 401


def test_the_metadata_advertises_certificate_bound_tokens_only_behind_a_terminator(gateway: Gateway) -> None:
    assert (
        gateway.http.get("/.well-known/oauth-authorization-server").json()["tls_client_certificate_bound_access_tokens"]
        is False
    )
    gateway.container.auth.certificates = CertificateSource("Client-Cert", ("127.0.0.1",))
    assert (
        gateway.http.get("/.well-known/oauth-authorization-server").json()["tls_client_certificate_bound_access_tokens"]
        is True
    )


def test_a_bound_token_used_without_its_certificate_is_an_audited_refusal(terminated: Gateway) -> None:
    p = terminated.register("amsterdam")
    client_id, token = bound_token(terminated, self_signed("partner-system.test"))
    assert terminated.http.get(f"/v1/participants/{p}", headers=api_headers(token)).status_code == 401
    with terminated.container.db.read.connect() as conn:
        entries = [json.loads(e) for e in conn.execute(select(audit_entries.c.entry)).scalars()]
    refused = [e for e in entries if e["event"] == "auth.refused"]
    assert [(e["client_id"], e["reason"], e["decision"]) for e in refused] == [
        (client_id, "certificate_mismatch", "deny")
    ]
