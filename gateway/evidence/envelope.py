"""The signed evidence format, version 1, and its offline verification.

Three files carry one evidence document; each is signed as a whole, so that any changed character
fails `gateway verify`:

- **JSON** (`*.json`): `{"format": "lvv-gateway-evidence/1", "document": {...}, "signature": JWS}`,
  written in one readable form (sorted keys, two-space indent, UTF-8, final newline). `signature`
  is a detached JWS (Ed25519) whose payload is the RFC 8785 canonical JSON of `document`; its
  protected header is `{"alg": "Ed25519", "kid": <RFC 7638 thumbprint>, "typ": "lvv-evidence+json"}`.
  The verifier also requires the file to be exactly that readable form of what it holds, so a
  change of layout is a change too.
- **HTML** and **PDF**: the rendition, then one last line that carries a detached JWS over every
  byte before that line: `<!-- lvv-evidence-signature: JWS -->` (HTML) or
  `%lvv-evidence-signature: JWS` (PDF, a comment after `%%EOF`). Its protected header adds
  `"typ": "lvv-evidence-rendition"`, `"cty"` (the media type), `"doc"` (the SHA-256 of the
  canonical document it renders), `"evidence_type"`, `"document_id"` and `"issued_at"`. The HTML
  also embeds the signed JSON file, checked as well.

Verification needs only the published public keys (a JWKS, JWK or PEM file): no database, no network.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.evidence.backups import StatementMismatch, check
from gateway.evidence.canonical import CanonicalError, canonical_json, pretty_json
from gateway.evidence.jws import DetachedJws, JwsError, parse_detached, sign_detached
from gateway.evidence.keys import EvidenceKey, EvidenceSigner

FORMAT = "lvv-gateway-evidence/1"
DOCUMENT_TYP = "lvv-evidence+json"
RENDITION_TYP = "lvv-evidence-rendition"
DOCUMENT_TYPES = ("revocation_report", "destruction_record", "last_results_measurement")
HTML_MEDIA_TYPE = "text/html"
PDF_MEDIA_TYPE = "application/pdf"
_HTML_TRAILER = re.compile(rb"<!-- lvv-evidence-signature: ([A-Za-z0-9_.-]+) -->\n\Z")
_PDF_TRAILER = re.compile(rb"%lvv-evidence-signature: ([A-Za-z0-9_.-]+)\n\Z")
_EMBEDDED = re.compile(rb'<script type="application/json" id="lvv-evidence">(.*?)</script>', re.S)

FileKind = Literal["json", "html", "pdf"]


class EvidenceInvalid(Exception):
    """The file is not an intact evidence document signed by a trusted key; the message says why."""


@dataclass(frozen=True, slots=True)
class Verified:
    """What a successful verification established."""

    kind: FileKind
    document_type: str
    document_id: str
    issued_at: str
    kid: str
    key_current: bool
    document_sha256: str
    document: dict[str, Any] | None = field(default=None, compare=False)

    def summary(self) -> str:
        """Return one line a jurist can read."""
        key = "current key" if self.key_current else "retired key"
        return (
            f"VALID {self.kind.upper()}: {self.document_type.replace('_', ' ')} {self.document_id}, "
            f"issued {self.issued_at}, signed by {key} {self.kid}; document sha256 {self.document_sha256}"
        )


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """A signed evidence document: the readable JSON file bytes, its digest and key id."""

    document: dict[str, Any]
    file_bytes: bytes
    sha256: str
    kid: str


def document_digest(document: dict[str, Any]) -> str:
    """Return the SHA-256 (hex) of the canonical JSON of `document`."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def sign_document(document: dict[str, Any], signer: EvidenceSigner) -> SignedDocument:
    """Return `document` signed as a version 1 evidence JSON file."""
    if document.get("type") not in DOCUMENT_TYPES or not document.get("id") or not document.get("issued_at"):
        raise ValueError("an evidence document has a known type, an id and an issued_at")
    payload = canonical_json(document)
    jws = sign_detached(payload, signer.private_key, {"kid": signer.kid, "typ": DOCUMENT_TYP})
    envelope = {"format": FORMAT, "document": document, "signature": jws}
    return SignedDocument(document, pretty_json(envelope), hashlib.sha256(payload).hexdigest(), signer.kid)


def sign_rendition(body: bytes, media_type: str, signed: SignedDocument, signer: EvidenceSigner) -> bytes:
    """Return `body` (HTML or PDF rendering `signed`) with its signature line appended."""
    if not body.endswith(b"\n"):
        body += b"\n"
    header = {
        "kid": signer.kid,
        "typ": RENDITION_TYP,
        "cty": media_type,
        "doc": signed.sha256,
        "evidence_type": signed.document["type"],
        "document_id": signed.document["id"],
        "issued_at": signed.document["issued_at"],
    }
    jws = sign_detached(body, signer.private_key, header).encode()
    if media_type == HTML_MEDIA_TYPE:
        return body + b"<!-- lvv-evidence-signature: " + jws + b" -->\n"
    if media_type == PDF_MEDIA_TYPE:
        return body + b"%lvv-evidence-signature: " + jws + b"\n"
    raise ValueError(f"no rendition signature for {media_type}")


def _escape_for_script(text: str) -> str:
    # Inside JSON strings only; \u003c etc. are JSON escapes, so the text still parses to the same value.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def embed_script(signed: SignedDocument) -> str:
    """Return the `<script>` element that carries the signed JSON inside an HTML rendition."""
    return (
        f'<script type="application/json" id="lvv-evidence">{_escape_for_script(signed.file_bytes.decode())}</script>'
    )


def _key_for(jws: DetachedJws, keys: list[EvidenceKey]) -> EvidenceKey:
    for key in keys:
        if key.kid == jws.kid:
            return key
    raise EvidenceInvalid(f"signed by key {jws.kid}, which is not among the trusted published keys")


def _parse(data: bytes) -> dict[str, Any]:
    try:
        envelope = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EvidenceInvalid(f"not well-formed JSON: {exc}") from None
    if not isinstance(envelope, dict) or set(envelope) != {"format", "document", "signature"}:
        raise EvidenceInvalid("not an evidence file (format, document, signature)")
    return envelope


def _check_envelope(envelope: dict[str, Any], keys: list[EvidenceKey]) -> tuple[dict[str, Any], str, EvidenceKey]:
    if envelope["format"] != FORMAT:
        raise EvidenceInvalid(f"unknown format {envelope['format']!r} (this verifier reads {FORMAT})")
    document = envelope["document"]
    if not isinstance(document, dict) or document.get("type") not in DOCUMENT_TYPES:
        raise EvidenceInvalid("the document is not a known kind of evidence")
    try:
        jws = parse_detached(str(envelope["signature"]))
        if jws.header.get("typ") != DOCUMENT_TYP:
            raise EvidenceInvalid("the signature is not an evidence document signature")
        payload = canonical_json(document)
        key = _key_for(jws, keys)
        jws.verify(payload, key.verifier())
    except (JwsError, CanonicalError) as exc:
        raise EvidenceInvalid(str(exc)) from None
    if document["type"] == "destruction_record":
        # A valid signature is not enough: what the record says about backups must follow from its facts.
        try:
            check(document)
        except StatementMismatch as exc:
            raise EvidenceInvalid(f"the destruction record's statement is refused: {exc}") from None
    return document, hashlib.sha256(payload).hexdigest(), key


def _check_json(data: bytes, keys: list[EvidenceKey]) -> tuple[dict[str, Any], str, EvidenceKey]:
    envelope = _parse(data)
    checked = _check_envelope(envelope, keys)
    if pretty_json(envelope) != data:
        raise EvidenceInvalid("the signed content verifies, but the file is not in its one written form")
    return checked


def _check_rendition(data: bytes, kind: FileKind, keys: list[EvidenceKey]) -> tuple[DetachedJws, EvidenceKey, bytes]:
    pattern, media = (_HTML_TRAILER, HTML_MEDIA_TYPE) if kind == "html" else (_PDF_TRAILER, PDF_MEDIA_TYPE)
    match = pattern.search(data)
    if match is None:
        raise EvidenceInvalid(f"the {kind.upper()} file does not end with its evidence signature line")
    body = data[: match.start()]
    try:
        jws = parse_detached(match.group(1).decode())
        if jws.header.get("typ") != RENDITION_TYP or jws.header.get("cty") != media:
            raise EvidenceInvalid(f"the signature is not the signature of a {kind.upper()} rendition")
        key = _key_for(jws, keys)
        jws.verify(body, key.verifier())
    except JwsError as exc:
        raise EvidenceInvalid(str(exc)) from None
    if not isinstance(jws.header.get("doc"), str):
        raise EvidenceInvalid("the rendition signature names no document digest")
    return jws, key, body


def detect(data: bytes) -> FileKind:
    """Return which kind of evidence file `data` is (by its first bytes)."""
    head = data[:64].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "pdf"
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head.startswith(b"{"):
        return "json"
    raise EvidenceInvalid("neither an evidence JSON, HTML nor PDF file")


def verify_bytes(data: bytes, keys: list[EvidenceKey]) -> Verified:
    """Return what `data` proves; raise EvidenceInvalid on any change or an untrusted key."""
    if not keys:
        raise EvidenceInvalid("no trusted evidence keys were given")
    kind = detect(data)
    if kind == "json":
        checked, json_digest, json_key = _check_json(data, keys)
        return _verified(kind, checked, json_digest, json_key)
    jws, key, body = _check_rendition(data, kind, keys)
    digest = str(jws.header["doc"])
    document: dict[str, Any] | None = None
    if kind == "html":
        embedded = _EMBEDDED.search(body)
        if embedded is None:
            raise EvidenceInvalid("the HTML file does not embed its signed JSON document")
        envelope = _parse(embedded.group(1))
        document, inner_digest, _ = _check_envelope(envelope, keys)
        if _escape_for_script(pretty_json(envelope).decode()).encode() != embedded.group(1):
            raise EvidenceInvalid("the embedded JSON document is not in its one written form")
        if inner_digest != digest:
            raise EvidenceInvalid("the embedded document is not the one the HTML signature names")
    return Verified(
        kind,
        str(jws.header.get("evidence_type") or (document or {}).get("type") or "evidence"),
        str((document or {}).get("id") or jws.header.get("document_id") or "?"),
        str((document or {}).get("issued_at") or jws.header.get("issued_at") or "?"),
        key.kid,
        key.current,
        digest,
        document,
    )


def _verified(kind: FileKind, document: dict[str, Any], digest: str, key: EvidenceKey) -> Verified:
    return Verified(
        kind,
        str(document["type"]),
        str(document.get("id", "?")),
        str(document.get("issued_at", "?")),
        key.kid,
        key.current,
        digest,
        document,
    )
