"""HTTP Message Signatures (RFC 9421) with Ed25519 for outbound notices, and their verification.

What the gateway sends with every notice (one signature, label `notice`):

    Content-Type: application/json
    Content-Digest: sha-256=:BASE64(SHA-256(body)):                       (RFC 9530)
    Idempotency-Key: "<notice id>"                                         (the same on every retry)
    Signature-Input: notice=("@method" "@target-uri" "content-type" "content-digest" "idempotency-key");
                     created=<unix>;expires=<unix>;keyid="<kid>";alg="ed25519";tag="lvv-gateway-notice"
    Signature: notice=:BASE64(Ed25519 signature over the signature base):

`keyid` is the RFC 7638 thumbprint of a key in the gateway's published evidence JWKS. A recipient
checks the signature with that key, that `created` is recent and `expires` not passed (replay
window), that Content-Digest matches the body, and then deduplicates on the notice id (delivery is
at least once). `verify_request` below does all of that and is what the tests use as a recipient.

Only what this gateway needs of RFC 8941 structured fields is parsed: one inner list of plain
component names with integer and string parameters, and byte-sequence signatures.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.evidence.keys import EvidenceKey

LABEL = "notice"
TAG = "lvv-gateway-notice"
ALG = "ed25519"
COMPONENTS = ("@method", "@target-uri", "content-type", "content-digest", "idempotency-key")
_ITEM = re.compile(r'"([a-z0-9@_.-]+)"')
_PARAM = re.compile(r';([a-z*][a-z0-9_.*-]*)=("(?:[^"\\]|\\.)*"|-?\d{1,15})')
_MEMBER = re.compile(r'^([a-z*][a-z0-9_.*-]*)=\(((?:"[^"]*"(?: "[^"]*")*)?)\)((?:;[^;]+)*)$')


class SignatureInvalid(Exception):
    """A signed request does not verify; the message says why."""


def content_digest(body: bytes) -> str:
    """Return the RFC 9530 Content-Digest value (sha-256) of `body`."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def _sf_string(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in value):
        raise ValueError("structured-field strings are printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def signature_params(components: Sequence[str], params: Sequence[tuple[str, int | str]]) -> str:
    """Return the serialised inner list with parameters, e.g. `("@method");created=1;keyid="k"`."""
    items = " ".join(_sf_string(c) for c in components)
    rendered = "".join(f";{k}={v}" if isinstance(v, int) else f";{k}={_sf_string(v)}" for k, v in params)
    return f"({items}){rendered}"


def _lower(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]}, {value.strip()}" if key in out else value.strip()
    return out


def component_value(name: str, method: str, url: str, headers: Mapping[str, str]) -> str:
    """Return the value of one covered component (RFC 9421 section 2)."""
    parts = urlsplit(url)
    if name == "@method":
        return method.upper()
    if name == "@target-uri":
        return url
    if name == "@authority":
        host = (parts.hostname or "").lower()
        default = {"http": 80, "https": 443}.get(parts.scheme)
        return host if parts.port in (None, default) else f"{host}:{parts.port}"
    if name == "@path":
        return parts.path or "/"
    if name == "@query":
        return f"?{parts.query}"
    if name.startswith("@"):
        raise SignatureInvalid(f"derived component {name} is not supported")
    if name not in headers:
        raise SignatureInvalid(f"covered header {name} is missing")
    return headers[name]


def signature_base(method: str, url: str, headers: Mapping[str, str], components: Sequence[str], params: str) -> bytes:
    """Return the signature base (RFC 9421 section 2.5) for a request."""
    lowered = _lower(headers)
    lines = [f'"{c}": {component_value(c, method, url, lowered)}' for c in components]
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode()


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    key: Ed25519PrivateKey,
    keyid: str,
    created: int,
    *,
    label: str = LABEL,
    components: Sequence[str] = COMPONENTS,
    expires: int | None = None,
    alg: str | None = ALG,
    tag: str | None = TAG,
) -> dict[str, str]:
    """Return the Signature-Input and Signature headers for a request with `headers`."""
    params: list[tuple[str, int | str]] = [("created", created)]
    if expires is not None:
        params.append(("expires", expires))
    params.append(("keyid", keyid))
    if alg is not None:
        params.append(("alg", alg))
    if tag is not None:
        params.append(("tag", tag))
    serialised = signature_params(components, params)
    signature = key.sign(signature_base(method, url, headers, components, serialised))
    return {
        "Signature-Input": f"{label}={serialised}",
        "Signature": f"{label}=:{base64.b64encode(signature).decode()}:",
    }


@dataclass(frozen=True, slots=True)
class SignatureInput:
    """One parsed Signature-Input member."""

    label: str
    components: tuple[str, ...]
    params: dict[str, int | str]
    serialised: str  # exactly as received after `label=`, which is what `@signature-params` covers


def _split_members(value: str) -> list[str]:
    members, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if quoted:
            if ch == '"' and value[i - 1] != "\\":
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            members.append(value[start:i].strip())
            start = i + 1
    members.append(value[start:].strip())
    return [m for m in members if m]


def parse_signature_input(value: str) -> dict[str, SignatureInput]:
    """Return the Signature-Input members by label (the subset of RFC 8941 this gateway uses)."""
    found: dict[str, SignatureInput] = {}
    for member in _split_members(value):
        match = _MEMBER.match(member)
        if match is None:
            raise SignatureInvalid("malformed Signature-Input")
        label, items, rest = match.groups()
        components = tuple(_ITEM.findall(items))
        params: dict[str, int | str] = {}
        consumed = ""
        for key, raw in _PARAM.findall(rest):
            consumed += f";{key}={raw}"
            params[key] = int(raw) if not raw.startswith('"') else raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if consumed != rest:
            raise SignatureInvalid("malformed Signature-Input parameters")
        found[label] = SignatureInput(label, components, params, member[len(label) + 1 :])
    return found


def parse_signature(value: str) -> dict[str, bytes]:
    """Return the Signature members (byte sequences) by label."""
    found: dict[str, bytes] = {}
    for member in _split_members(value):
        label, sep, rest = member.partition("=")
        if not sep or not (rest.startswith(":") and rest.endswith(":")) or len(rest) < 2:
            raise SignatureInvalid("malformed Signature")
        try:
            found[label] = base64.b64decode(rest[1:-1], validate=True)
        except binascii.Error:
            raise SignatureInvalid("malformed Signature") from None
    return found


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A notice request whose signature, freshness and body digest verified."""

    kid: str
    created: int
    idempotency_key: str


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    keys: Sequence[EvidenceKey],
    now: float,
    *,
    label: str = LABEL,
    required: Sequence[str] = COMPONENTS,
    max_age: int = 300,
    skew: int = 60,
) -> VerifiedRequest:
    """Return the verified request; raise SignatureInvalid for any failed check (a recipient's view)."""
    lowered = _lower(headers)
    inputs = parse_signature_input(lowered.get("signature-input", ""))
    signatures = parse_signature(lowered.get("signature", ""))
    if label not in inputs or label not in signatures:
        raise SignatureInvalid(f"no signature labelled {label!r}")
    sig_input, signature = inputs[label], signatures[label]
    missing = set(required) - set(sig_input.components)
    if missing:
        raise SignatureInvalid(f"the signature does not cover {sorted(missing)}")
    params = sig_input.params
    if params.get("alg", ALG) != ALG or params.get("tag", TAG) != TAG:
        raise SignatureInvalid("unexpected alg or tag")
    created, expires = params.get("created"), params.get("expires")
    if not isinstance(created, int):
        raise SignatureInvalid("the signature has no creation time")
    if created > now + skew or created < now - max_age:
        raise SignatureInvalid("the signature is not fresh (replayed or clock skew)")
    if isinstance(expires, int) and expires < now - skew:
        raise SignatureInvalid("the signature has expired")
    key = next((k for k in keys if k.kid == params.get("keyid")), None)
    if key is None:
        raise SignatureInvalid(f"unknown key id {params.get('keyid')!r}")
    if "content-digest" in sig_input.components and lowered.get("content-digest") != content_digest(body):
        raise SignatureInvalid("Content-Digest does not match the body")
    base = signature_base(method, url, lowered, sig_input.components, sig_input.serialised)
    try:
        key.verifier().verify(signature, base)
    except InvalidSignature:
        raise SignatureInvalid("the signature does not verify") from None
    idem = lowered.get("idempotency-key", "")
    return VerifiedRequest(key.kid, created, idem[1:-1] if idem.startswith('"') and idem.endswith('"') else idem)
