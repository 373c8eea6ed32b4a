"""Strict JSON request bodies: RFC 8259 only, within the configured bounds, each fault named by where it is.

Python's own parser accepts NaN and Infinity, overflows `1e400` to infinity, keeps lone surrogates and
integers of any size, and recurses as deep as the body goes. None of these can be stored (the store
encodes with orjson) or mean anything to a partner, so they are refused here, before any decision.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from gateway.api.problems import InvalidBody

INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what the store's encoding (orjson) and partners' parsers hold
_SAFE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class BodyBounds:
    max_depth: int
    max_string_length: int


class _NonFinite:
    """Stands in for NaN or Infinity while parsing, so the walk can say where it was."""


_NON_FINITE = _NonFinite()


def _segment(key: str, index: int) -> str:
    # Field names are echoed; anything else a caller put in a key is not (it may be personal data).
    return key if _SAFE_KEY.fullmatch(key) else f"<key {index + 1}>"


def _fault(value: Any, bounds: BodyBounds) -> str | None:
    """Return what is wrong with a scalar `value` (None when nothing is)."""
    if value is _NON_FINITE or (isinstance(value, float) and not math.isfinite(value)):
        return "NaN and Infinity are not JSON numbers."
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        return "Integers must lie between -2^63 and 2^63-1."
    if isinstance(value, str):
        if len(value) > bounds.max_string_length:
            return f"Strings may hold at most {bounds.max_string_length} characters."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "Strings must be valid Unicode (no lone surrogates)."
    return None


def _walk(value: Any, path: tuple[str, ...], depth: int, bounds: BodyBounds, errors: list[dict[str, str]]) -> None:
    if isinstance(value, dict | list) and depth > bounds.max_depth:
        errors.append(_error(path, f"Nesting is limited to {bounds.max_depth} levels."))
        return
    if isinstance(value, dict):
        for i, (key, item) in enumerate(value.items()):
            at = (*path, _segment(key, i))
            fault = _fault(key, bounds)
            if fault:
                errors.append(_error(at, f"Key: {fault}"))
                continue
            _walk(item, at, depth + 1, bounds, errors)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, (*path, str(i)), depth + 1, bounds, errors)
    else:
        fault = _fault(value, bounds)
        if fault:
            errors.append(_error(path, fault))


def _error(path: tuple[str, ...], message: str) -> dict[str, str]:
    return {"location": ".".join(path), "message": message}


def _non_finite(_: str) -> _NonFinite:
    return _NON_FINITE


def parse(body: bytes, bounds: BodyBounds) -> Any:
    """Return the parsed body; raise `InvalidBody` naming each place that is not strict JSON within `bounds`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBody([_error(("body",), "The body is not UTF-8.")]) from None
    try:
        value = json.loads(text, parse_constant=_non_finite)
    except RecursionError:
        raise InvalidBody([_error(("body",), f"Nesting is limited to {bounds.max_depth} levels.")]) from None
    except json.JSONDecodeError as exc:
        message = f"Not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        raise InvalidBody([_error(("body",), message)]) from None
    errors: list[dict[str, str]] = []
    _walk(value, ("body",), 1, bounds, errors)
    if errors:
        raise InvalidBody(errors[:20])
    return value


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            settings = self.app.state.container.settings
            bounds = BodyBounds(settings.max_json_depth, settings.max_string_length)
            self._json = parse(await self.body(), bounds)
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is parsed strictly (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict
