"""OAuth 2.0 endpoints: token (client credentials, private_key_jwt), introspection, JWKS, metadata.

Errors here are OAuth's own (RFC 6749 section 5.2: JSON with `error` and `error_description`), not
problem+json: partner OAuth libraries read them. Token responses are never cached.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.api.deps import ContainerDep, TraceDep
from gateway.auth import errors
from gateway.auth.errors import OAuthError
from gateway.auth.server import INTROSPECTION_PATH, JWKS_PATH, NO_STORE, TOKEN_PATH, HttpFacts

router = APIRouter(tags=["oauth"])
MAX_FORM_BYTES = 64 * 1024
FORM = "application/x-www-form-urlencoded"


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _error(exc: OAuthError) -> Response:
    return _json(exc.body(), exc.status, {**NO_STORE, **exc.headers})


async def _form(request: Request) -> dict[str, str]:
    """Return the urlencoded form; a parameter given twice is an invalid request (RFC 6749 section 3.2)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise OAuthError(errors.INVALID_REQUEST, f"the request body must be {FORM}")
    too_large = OAuthError(errors.INVALID_REQUEST, "the request body is too large")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise too_large  # refused unread
    buffer = bytearray()
    async for chunk in request.stream():
        buffer += chunk
        if len(buffer) > MAX_FORM_BYTES:
            raise too_large  # refused at the first chunk past the cap, whatever the body's length
    body = bytes(buffer)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError(errors.INVALID_REQUEST, "the request body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError(errors.INVALID_REQUEST, f"parameter {name[:40]} is given more than once")
        form[name] = value
    return form


def _facts(request: Request, container: ContainerDep, trace: TraceDep) -> HttpFacts:
    peer = request.client.host if request.client else None
    return HttpFacts(
        trace_id=trace.trace_id,
        has_authorization_header="authorization" in request.headers,
        certificate_thumbprint=container.auth.certificates.thumbprint(peer, request.headers),
    )


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_FIXED = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER}


def _form_body(fields: dict[str, str], required: list[str]) -> dict[str, Any]:
    properties: dict[str, dict[str, Any]] = {
        name: {"type": "string", "description": text} for name, text in fields.items()
    }
    for name, value in _FIXED.items():
        if name in properties:
            properties[name]["enum"] = [value]
    # Other parameters are ignored, but each may be given once only (RFC 6749 section 3.2).
    schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": {"type": "string"},
    }
    return {"requestBody": {"required": True, "content": {FORM: {"schema": schema}}}}


_CLIENT_AUTH = {
    "client_assertion_type": JWT_BEARER,
    "client_assertion": "A JWT signed with the client's registered private key (RFC 7523): iss = sub = "
    "client_id, aud = the token endpoint, exp, iat, a unique jti",
}


@router.post(
    TOKEN_PATH,
    summary="Get an access token (client credentials, private_key_jwt)",
    openapi_extra=_form_body(
        {
            "grant_type": "client_credentials",
            "scope": "Space-separated roles to act in (default: every role registered for the client)",
            **_CLIENT_AUTH,
        },
        ["grant_type", "client_assertion_type", "client_assertion"],
    ),
)
async def token(request: Request, container: ContainerDep, trace: TraceDep) -> Response:
    facts = _facts(request, container, trace)
    try:
        form = await _form(request)
    except OAuthError as exc:
        container.auth.log_refusal("token", exc, {}, facts)
        return _error(exc)
    try:
        issued = await run_in_threadpool(container.auth.token, form, facts)
    except OAuthError as exc:
        return _error(exc)
    return _json(issued.body(), headers=NO_STORE)


@router.post(
    INTROSPECTION_PATH,
    summary="Introspect an access token of your own organisation (RFC 7662)",
    openapi_extra=_form_body({"token": "The access token", **_CLIENT_AUTH}, ["token", *_CLIENT_AUTH]),
)
async def introspect(request: Request, container: ContainerDep, trace: TraceDep) -> Response:
    facts = _facts(request, container, trace)
    try:
        form = await _form(request)
    except OAuthError as exc:
        container.auth.log_refusal("introspection", exc, {}, facts)
        return _error(exc)
    try:
        body = await run_in_threadpool(container.auth.introspect, form, facts)
    except OAuthError as exc:
        return _error(exc)
    return _json(body, headers=NO_STORE)


@router.get(JWKS_PATH, summary="Public keys that verify the gateway's access tokens")
async def jwks(container: ContainerDep) -> Response:
    # Short caching: after a rotation, resource servers elsewhere must see the new key soon.
    return _json(container.auth.jwks(), headers={"Cache-Control": "public, max-age=60"})


@router.get("/.well-known/oauth-authorization-server", summary="Authorization server metadata (RFC 8414)")
async def metadata(container: ContainerDep) -> Response:
    return _json(container.auth.metadata(), headers={"Cache-Control": "public, max-age=3600"})
