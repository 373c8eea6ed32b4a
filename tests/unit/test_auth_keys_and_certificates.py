"""What the registry accepts as a client's public keys, what the gateway reads as a client certificate,
and what a refusal log line may say about the client it could not authenticate."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_backend
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, OctKey, RSAKey

from gateway.auth.client_keys import validate_jwks_uri, validate_public_jwks
from gateway.auth.model import RegistryError
from gateway.auth.mtls import CertificateSource, certificate_thumbprint, parse_certificate
from gateway.auth.server import claimed_client


def rsa(bits: int = 2048, kid: str = "r1") -> dict[str, Any]:
    if bits >= 2048:
        return RSAKey.generate_key(bits, parameters={"kid": kid}).as_dict(private=False)
    # joserfc (rightly) will not make a short key; cryptography will, for this test of the refusal.
    numbers = rsa_backend.generate_private_key(65537, bits).public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    return {"kty": "RSA", "kid": kid, "n": b64(numbers.n), "e": b64(numbers.e)}


def ec_jwk(kid: str = "e1", private: bool = False) -> dict[str, Any]:
    return ECKey.generate_key("P-256", parameters={"kid": kid}).as_dict(private=private)


def test_public_rsa_and_ec_keys_are_accepted() -> None:
    jwks = validate_public_jwks({"keys": [rsa(), ec_jwk()]})
    assert [k["kid"] for k in jwks["keys"]] == ["r1", "e1"]


@pytest.mark.parametrize(
    ("jwks", "complaint"),
    [
        pytest.param({"keys": []}, "non-empty", id="empty"),
        pytest.param({"kty": "EC"}, "non-empty", id="a-bare-key-not-a-set"),
        pytest.param({"keys": [ec_jwk(private=True)]}, "private", id="a-private-key"),
        pytest.param({"keys": [OctKey.generate_key(256).as_dict()]}, "private or symmetric", id="a-symmetric-key"),
        pytest.param({"keys": [rsa(1024)]}, "1024 bits", id="a-short-rsa-key"),
        pytest.param({"keys": [{**ec_jwk(), "crv": "secp256k1"}]}, "curve", id="an-unaccepted-curve"),
        pytest.param({"keys": [{**ec_jwk(), "use": "enc"}]}, "not a signing key", id="an-encryption-key"),
        pytest.param({"keys": [ec_jwk("same"), ec_jwk("same")]}, "duplicate kid", id="a-duplicate-kid"),
        pytest.param(
            {"keys": [{k: v for k, v in ec_jwk().items() if k != "kid"}, ec_jwk()]}, "no kid", id="several-without-kid"
        ),
    ],
)
def test_unacceptable_client_keys_are_refused_with_the_reason(jwks: Any, complaint: str) -> None:
    with pytest.raises(RegistryError, match=complaint):
        validate_public_jwks(jwks)


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://partner.example/jwks.json", True),
        ("http://127.0.0.1:8080/jwks.json", True),
        ("http://localhost/jwks.json", True),
        ("http://partner.example/jwks.json", False),
        ("file:///etc/passwd", False),
        ("ftp://partner.example/jwks.json", False),
    ],
)
def test_a_jwks_uri_must_be_https_or_loopback(uri: str, ok: bool) -> None:
    if ok:
        assert validate_jwks_uri(uri) == uri
    else:
        with pytest.raises(RegistryError):
            validate_jwks_uri(uri)


def certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partner-system.test")])
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_a_certificate_is_read_from_rfc_9440_and_from_url_escaped_pem() -> None:
    cert = certificate()
    der = cert.public_bytes(Encoding.DER)
    assert parse_certificate(f":{base64.b64encode(der).decode()}:") == der
    assert parse_certificate(quote(cert.public_bytes(Encoding.PEM).decode())) == der
    assert parse_certificate(":bm90IGEgY2VydGlmaWNhdGU=:") is None
    assert parse_certificate("garbage") is None


def test_the_certificate_header_is_believed_from_a_terminator_only() -> None:
    der = certificate().public_bytes(Encoding.DER)
    headers = {"client-cert": f":{base64.b64encode(der).decode()}:"}
    source = CertificateSource("Client-Cert", ("10.0.0.0/24",))
    assert source.thumbprint("10.0.0.7", headers) == certificate_thumbprint(der)
    assert source.thumbprint("10.0.1.7", headers) is None
    assert source.thumbprint(None, headers) is None
    assert CertificateSource(None, ("10.0.0.0/24",)).thumbprint("10.0.0.7", headers) is None


def test_the_thumbprint_is_the_unpadded_base64url_sha256_of_the_der() -> None:
    assert certificate_thumbprint(b"abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"


@pytest.mark.parametrize(
    ("form", "claimed"),
    [
        ({"client_id": "partner-a"}, "partner-a"),
        ({"client_id": 'evil"\n\x1b[31m'}, "evil31m"),
        ({"client_id": "x" * 500}, "x" * 64),
        ({"client_assertion": "not.a.jwt"}, None),
        ({}, None),
    ],
)
def test_a_refusal_log_names_the_claimed_client_cleaned_and_truncated(
    form: dict[str, str], claimed: str | None
) -> None:
    assert claimed_client(form) == claimed


def test_the_claimed_client_is_read_from_the_assertions_sub_without_verifying_it() -> None:
    payload = base64.urlsafe_b64encode(b'{"sub":"partner-b"}').rstrip(b"=").decode()
    assert claimed_client({"client_assertion": f"eyJhbGciOiJub25lIn0.{payload}."}) == "partner-b"
