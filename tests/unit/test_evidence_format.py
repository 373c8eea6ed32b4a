"""The signed evidence format: canonical JSON, detached JWS, key ids, and that any change is caught."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OKPKey

from gateway.evidence.canonical import CanonicalError, canonical_json, pretty_json
from gateway.evidence.envelope import (
    FORMAT,
    HTML_MEDIA_TYPE,
    PDF_MEDIA_TYPE,
    EvidenceInvalid,
    SignedDocument,
    embed_script,
    sign_document,
    sign_rendition,
    verify_bytes,
)
from gateway.evidence.jws import JwsError, b64u, parse_detached, unb64u
from gateway.evidence.keys import (
    EvidenceKeyError,
    EvidenceSigner,
    init_evidence_key,
    load_evidence_signer,
    parse_keys,
    published_keys,
    rotate_evidence_key,
    thumbprint,
)


def document(**extra: Any) -> dict[str, Any]:
    return {
        "type": "revocation_report",
        "format_version": 1,
        "id": "00000000-0000-4000-8000-000000000001",
        "version": 1,
        "issued_at": "2025-01-01T00:00:05Z",
        "covenant": {"id": "lvv-test", "title": "Convenant Test (synthetisch) — é"},
        "attempts": [1, 2, 3],
        **extra,
    }


@pytest.fixture(scope="module")
def signer() -> EvidenceSigner:
    return EvidenceSigner(Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def signed(signer: EvidenceSigner) -> SignedDocument:
    return sign_document(document(), signer)


def html_rendition(signed: SignedDocument, signer: EvidenceSigner) -> bytes:
    body = f"<!doctype html>\n<html><body><p>Report {signed.document['id']}</p>{embed_script(signed)}</body></html>\n"
    return sign_rendition(body.encode(), HTML_MEDIA_TYPE, signed, signer)


# -- canonical JSON ------------------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'


def test_canonical_json_writes_non_ascii_as_utf8_and_escapes_controls_like_ecmascript() -> None:
    assert canonical_json({"t": "é\n\u0001"}) == '{"t":"é\\n\\u0001"}'.encode()


@pytest.mark.parametrize("value", [{"f": 1.5}, {"big": 2**53}, {1: "x"}, {"ï": 1}, {"s": {1, 2}}])
def test_canonical_json_refuses_what_rfc_8785_would_write_differently(value: Any) -> None:
    with pytest.raises(CanonicalError):
        canonical_json(value)


# -- keys ----------------------------------------------------------------------------------------------


def test_the_key_id_is_the_rfc_7638_thumbprint_of_the_rfc_8037_example_key() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
    public = unb64u("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    assert thumbprint(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_published_keys_are_a_jwks_any_jose_library_reads(tmp_path: Path) -> None:
    init_evidence_key(tmp_path)
    signer = load_evidence_signer(tmp_path)
    assert signer is not None
    doc = json.loads((tmp_path / "evidence-keys.json").read_text())
    key = OKPKey.import_key(doc["keys"][0])
    assert key.thumbprint() == signer.kid == doc["keys"][0]["kid"]
    assert doc["keys"][0]["status"] == "current"


def test_the_key_file_is_never_overwritten_and_rotation_keeps_old_keys_published(tmp_path: Path) -> None:
    init_evidence_key(tmp_path)
    first = load_evidence_signer(tmp_path)
    assert init_evidence_key(tmp_path) == []
    old_kid, new_kid = rotate_evidence_key(tmp_path)
    assert first is not None
    assert old_kid == first.kid
    keys = {k.kid: k.current for k in published_keys(tmp_path)}
    assert keys == {first.kid: False, new_kid: True}


def test_key_files_may_be_a_jwks_a_single_jwk_or_a_pem_public_key(signer: EvidenceSigner) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    jwk = signer.public.jwk()
    pem = signer.private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    for data in (json.dumps({"keys": [jwk]}).encode(), json.dumps(jwk).encode(), pem):
        assert [k.kid for k in parse_keys(data)] == [signer.kid]


def test_a_key_set_with_a_private_key_or_a_wrong_kid_is_refused(signer: EvidenceSigner) -> None:
    private = OKPKey.import_key(signer.private_key).as_dict(private=True)
    with pytest.raises(EvidenceKeyError, match="private"):
        parse_keys(json.dumps({"keys": [private]}).encode())
    with pytest.raises(EvidenceKeyError, match="thumbprint"):
        parse_keys(json.dumps({**signer.public.jwk(), "kid": "other"}).encode())


# -- the signed JSON file --------------------------------------------------------------------------------


def test_a_signed_document_verifies_with_the_published_key(signed: SignedDocument, signer: EvidenceSigner) -> None:
    verified = verify_bytes(signed.file_bytes, [signer.public])
    assert (verified.kind, verified.document_type, verified.kid) == ("json", "revocation_report", signer.kid)
    assert verified.document == signed.document
    assert json.loads(signed.file_bytes)["format"] == FORMAT


def test_the_document_signature_is_a_standard_detached_jws_over_the_canonical_document(
    signed: SignedDocument, signer: EvidenceSigner
) -> None:
    token = json.loads(signed.file_bytes)["signature"]
    header, _, signature = token.split(".")
    attached = f"{header}.{b64u(canonical_json(signed.document))}.{signature}"
    key = OKPKey.import_key(signer.public.jwk())
    result = jws.deserialize_compact(attached, key, algorithms=["Ed25519"])
    assert json.loads(result.payload) == signed.document
    assert result.protected["kid"] == signer.kid


def test_a_document_signed_by_an_unpublished_key_is_invalid(signed: SignedDocument) -> None:
    stranger = EvidenceSigner(Ed25519PrivateKey.generate())
    with pytest.raises(EvidenceInvalid, match="not among the trusted"):
        verify_bytes(signed.file_bytes, [stranger.public])


def test_changing_a_fact_in_the_json_file_fails(signed: SignedDocument, signer: EvidenceSigner) -> None:
    tampered = signed.file_bytes.replace(b'"lvv-test"', b'"lvv-tost"')
    with pytest.raises(EvidenceInvalid, match="does not verify"):
        verify_bytes(tampered, [signer.public])


def test_reformatting_the_json_file_fails_even_though_the_facts_are_unchanged(
    signed: SignedDocument, signer: EvidenceSigner
) -> None:
    compact = json.dumps(json.loads(signed.file_bytes), sort_keys=True).encode()
    with pytest.raises(EvidenceInvalid, match="written form"):
        verify_bytes(compact, [signer.public])


def test_a_changed_last_signature_character_that_only_touches_unused_bits_fails(
    signed: SignedDocument, signer: EvidenceSigner
) -> None:
    token = json.loads(signed.file_bytes)["signature"]
    last = token[-1]
    # 64 bytes are 86 base64url characters; the last carries 2 bits, so its neighbours decode alike.
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = sibling[(sibling.index(last) // 16) * 16 + (sibling.index(last) + 1) % 16]
    assert base64.urlsafe_b64decode(token.split(".")[2] + "==") == base64.urlsafe_b64decode(
        token.split(".")[2][:-1] + twin + "=="
    )
    tampered = signed.file_bytes.replace(token.encode(), (token[:-1] + twin).encode())
    with pytest.raises(EvidenceInvalid, match="canonical"):
        verify_bytes(tampered, [signer.public])


def test_only_ed25519_signatures_are_accepted() -> None:
    header = b64u(json.dumps({"alg": "none", "kid": "k"}).encode())
    with pytest.raises(JwsError, match="not accepted"):
        parse_detached(f"{header}..{b64u(bytes(64))}")


def changed_byte(data: st.DataObject, original: bytes) -> bytes:
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != original[position]), label="byte")
    return original[:position] + bytes([replacement]) + original[position + 1 :]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_single_changed_byte_of_the_json_file_fails(
    data: st.DataObject, signed: SignedDocument, signer: EvidenceSigner
) -> None:
    with pytest.raises(EvidenceInvalid):
        verify_bytes(changed_byte(data, signed.file_bytes), [signer.public])


# -- renditions ------------------------------------------------------------------------------------------


def test_an_html_rendition_verifies_and_carries_the_signed_json(signed: SignedDocument, signer: EvidenceSigner) -> None:
    verified = verify_bytes(html_rendition(signed, signer), [signer.public])
    assert verified.kind == "html"
    assert verified.document == signed.document
    assert verified.document_sha256 == signed.sha256


def test_a_pdf_like_rendition_verifies_by_its_signature_line(signed: SignedDocument, signer: EvidenceSigner) -> None:
    pdf = sign_rendition(b"%PDF-1.4\n% synthetic\n%%EOF\n", PDF_MEDIA_TYPE, signed, signer)
    verified = verify_bytes(pdf, [signer.public])
    assert (verified.kind, verified.document_id, verified.document_sha256) == (
        "pdf",
        signed.document["id"],
        signed.sha256,
    )


def test_a_pdf_signature_line_moved_onto_an_html_file_fails(signed: SignedDocument, signer: EvidenceSigner) -> None:
    pdf = sign_rendition(b"%PDF-1.4\n%%EOF\n", PDF_MEDIA_TYPE, signed, signer)
    line = pdf.rsplit(b"\n", 2)[-2].split(b": ", 1)[1]
    html = b"<!doctype html>\n<p>x</p>\n<!-- lvv-evidence-signature: " + line + b" -->\n"
    with pytest.raises(EvidenceInvalid):
        verify_bytes(html, [signer.public])


@pytest.fixture(scope="module")
def html(signed: SignedDocument, signer: EvidenceSigner) -> bytes:
    return html_rendition(signed, signer)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_single_changed_byte_of_the_html_file_fails(
    data: st.DataObject, html: bytes, signer: EvidenceSigner
) -> None:
    with pytest.raises(EvidenceInvalid):
        verify_bytes(changed_byte(data, html), [signer.public])


def test_a_changed_embedded_document_fails_even_with_the_outer_bytes_resigned(
    signed: SignedDocument, signer: EvidenceSigner
) -> None:
    other = sign_document(document(attempts=[1, 2]), signer)
    body = f"<!doctype html>\n<html><body>{embed_script(other)}</body></html>\n".encode()
    mixed = sign_rendition(body, HTML_MEDIA_TYPE, signed, signer)  # names `signed`, embeds `other`
    with pytest.raises(EvidenceInvalid, match="not the one"):
        verify_bytes(mixed, [signer.public])


def test_pretty_json_is_the_one_written_form() -> None:
    assert pretty_json({"b": [1], "a": "é"}) == '{\n  "a": "é",\n  "b": [\n    1\n  ]\n}\n'.encode()
