"""Canonical JSON: the exact bytes that evidence signatures cover.

The subset of RFC 8785 (JSON Canonicalization Scheme) that evidence documents use: objects with
string keys sorted by code point, arrays, strings, integers, booleans and null; no insignificant
whitespace; UTF-8; strings escaped as ECMAScript's JSON.stringify escapes them. Floats are refused
(JCS would need ECMAScript number formatting, and no evidence fact needs one), so the bytes here
equal RFC 8785's for every document this gateway signs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1  # RFC 8785 section 3.2.2.3 / I-JSON: larger integers lose precision


class CanonicalError(ValueError):
    """A value cannot be written as canonical JSON."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError(f"{path}: integer {value} is outside the I-JSON range")
        return
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floats are not used in evidence documents")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                # ASCII keys sort the same by code point (Python) and by UTF-16 unit (RFC 8785).
                raise CanonicalError(f"{path}: object keys are ASCII strings, not {key!r}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, Sequence):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    raise CanonicalError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> bytes:
    """Return the canonical UTF-8 bytes of `value` (RFC 8785 for the types evidence uses)."""
    _check(value, "$")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def pretty_json(value: Any) -> bytes:
    """Return the one readable form of `value` this gateway writes to files (sorted keys, two-space indent)."""
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return text.encode() + b"\n"
