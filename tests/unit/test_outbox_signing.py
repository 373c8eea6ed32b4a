"""Notice signatures (RFC 9421 HTTP Message Signatures, Ed25519), checked against the RFC's own example."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.evidence.jws import unb64u
from gateway.evidence.keys import EvidenceKey, EvidenceSigner
from gateway.outbox.signing import (
    COMPONENTS,
    SignatureInvalid,
    content_digest,
    parse_signature_input,
    sign_request,
    signature_base,
    verify_request,
)

# RFC 9421 appendix B.1.4 (test-key-ed25519) and the request of appendix B.2.
RFC_PRIVATE = unb64u("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU")
RFC_PUBLIC = unb64u("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs")
RFC_URL = "https://example.com/foo?param=Value&Pet=dog"
RFC_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest": "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWX"
    "vJwew==:",
    "Content-Length": "18",
}
B26_COMPONENTS = ("date", "@method", "@path", "@authority", "content-type", "content-length")
B26_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="


def test_the_signature_base_and_signature_equal_rfc_9421_example_b_2_6() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC_PRIVATE)
    headers = sign_request(
        "POST", RFC_URL, RFC_HEADERS, key, "test-key-ed25519", 1618884473,
        label="sig-b26", components=B26_COMPONENTS, alg=None, tag=None,
    )  # fmt: skip
    member = parse_signature_input(headers["Signature-Input"])["sig-b26"]
    assert signature_base("POST", RFC_URL, RFC_HEADERS, member.components, member.serialised).decode() == B26_BASE
    assert headers["Signature"] == f"sig-b26=:{B26_SIGNATURE}:"
    EvidenceKey(RFC_PUBLIC).verifier().verify(base64.b64decode(B26_SIGNATURE), B26_BASE.encode())


@pytest.fixture(scope="module")
def signer() -> EvidenceSigner:
    return EvidenceSigner(Ed25519PrivateKey.generate())


URL = "http://127.0.0.1:9/notify"
BODY = b'{"notice_id":"n-1","payload":{}}'
NOW = 1_735_686_005


def notice_headers(signer: EvidenceSigner, body: bytes = BODY, created: int = NOW) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Content-Digest": content_digest(body),
        "Idempotency-Key": '"n-1"',
    }
    return headers | sign_request("POST", URL, headers, signer.private_key, signer.kid, created, expires=created + 300)


def test_a_notice_signature_verifies_and_names_its_idempotency_key(signer: EvidenceSigner) -> None:
    verified = verify_request("POST", URL, notice_headers(signer), BODY, [signer.public], NOW + 10)
    assert (verified.kid, verified.idempotency_key, verified.created) == (signer.kid, "n-1", NOW)
    assert set(COMPONENTS) <= set(parse_signature_input(notice_headers(signer)["Signature-Input"])["notice"].components)


def test_a_changed_body_fails_the_content_digest(signer: EvidenceSigner) -> None:
    with pytest.raises(SignatureInvalid, match="Content-Digest"):
        verify_request("POST", URL, notice_headers(signer), BODY.replace(b"n-1", b"n-2"), [signer.public], NOW)


def test_a_changed_digest_header_fails_the_signature(signer: EvidenceSigner) -> None:
    other = b'{"notice_id":"n-2"}'
    headers = notice_headers(signer) | {"Content-Digest": content_digest(other)}
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_request("POST", URL, headers, other, [signer.public], NOW)


def test_a_replay_after_the_window_is_refused(signer: EvidenceSigner) -> None:
    with pytest.raises(SignatureInvalid, match="fresh"):
        verify_request("POST", URL, notice_headers(signer), BODY, [signer.public], NOW + 3600)


def test_another_target_or_an_unknown_key_is_refused(signer: EvidenceSigner) -> None:
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_request("POST", URL + "x", notice_headers(signer), BODY, [signer.public], NOW)
    stranger = EvidenceSigner(Ed25519PrivateKey.generate())
    with pytest.raises(SignatureInvalid, match="unknown key"):
        verify_request("POST", URL, notice_headers(signer), BODY, [stranger.public], NOW)


def test_a_signature_that_leaves_out_the_idempotency_key_is_refused(signer: EvidenceSigner) -> None:
    headers = {"Content-Type": "application/json", "Content-Digest": content_digest(BODY)}
    headers |= sign_request(
        "POST",
        URL,
        headers,
        signer.private_key,
        signer.kid,
        NOW,
        components=("@method", "@target-uri", "content-digest"),
    )
    with pytest.raises(SignatureInvalid, match="does not cover"):
        verify_request("POST", URL, headers, BODY, [signer.public], NOW)
