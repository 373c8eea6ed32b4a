"""The exchange API: register, write, read and list participants, always for a stated purpose."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Depends, Header, Path, Query
from pydantic.json_schema import SkipJsonSchema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from gateway.api.deps import (
    PURPOSE_HEADER,
    ROLE_HEADER,
    USER_HEADER,
    ContainerDep,
    ContextDep,
    get_context,
    get_principal,
)
from gateway.api.problems import Problem
from gateway.api.schemas import (
    ParticipantListOut,
    ParticipantOut,
    RegisterParticipant,
    WriteRecord,
    WrittenOut,
    problems,
)
from gateway.api.strict_json import StrictJsonRoute
from gateway.audit.writer import AuditUnavailable
from gateway.connectors.port import SourceFailed
from gateway.crypto.envelope import DecryptionError
from gateway.exchange.authorize import AuthorizedAccess, Denied
from gateway.exchange.service import BadRequest
from gateway.store.records import DataDestroyed

router = APIRouter(
    prefix="/v1",
    tags=["exchange"],
    dependencies=[Depends(get_principal)],
    responses=problems(404, 409, 500, 502, 504),
    route_class=StrictJsonRoute,
)
PSEUDONYM_PATTERN = r"^p[a-z2-7]{26}$"
Pseudonym = Annotated[str, Path(pattern=PSEUDONYM_PATTERN, description="Your pseudonym for the participant")]
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{8,128}$")
_BAD_PURPOSE = {"purpose_missing", "unknown_purpose"}
_DOMAIN_ERRORS = (Denied, BadRequest, AuditUnavailable, DataDestroyed, DecryptionError, SourceFailed)
log = structlog.get_logger("gateway.store")


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _audit_ref(access: AuthorizedAccess) -> dict[str, Any]:
    d = access.decision
    return {
        "seq": access.audit_seq,
        "policy_version": d.policy_version,
        "rule_ids": list(d.rule_ids),
        "legal_bases": list(d.legal_bases),
    }


def _problem(exc: Exception) -> Problem:
    """Map a domain error to its problem response."""
    if isinstance(exc, Denied):
        if exc.reason in _BAD_PURPOSE:
            return Problem(400, exc.reason, "The purpose is missing or unknown.", exc.text, audit_seq=exc.audit_seq)
        if exc.hides_existence:
            return Problem(404, "not_found", "No such participant.", audit_seq=exc.audit_seq)
        return Problem(403, exc.reason, "Access denied.", exc.text, audit_seq=exc.audit_seq)
    if isinstance(exc, BadRequest):
        return Problem(422, exc.code, "The request is not valid.", exc.text)
    if isinstance(exc, AuditUnavailable):
        return Problem(
            503,
            "audit_unavailable",
            "The audit log cannot record this request; nothing was released.",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, SourceFailed):
        # The permit is logged, and so is that nothing left: the answer names both entries' source.
        status = 504 if exc.timeout else 502
        title = "The source system holding this record did not answer usably; nothing was released."
        return Problem(status, exc.code, title, exc.text, audit_seq=exc.audit_seq, source=exc.source)
    if isinstance(exc, DataDestroyed):
        return Problem(409, "data_destroyed", "This category's data has been destroyed.")
    if isinstance(exc, DecryptionError):
        # A ciphertext or wrapped key that does not authenticate: tampering or a misplaced row.
        log.error("store.record.integrity_failed")
        return Problem(500, "record_integrity", "A stored record failed its integrity check; nothing was released.")
    raise exc


@router.post("/participants", status_code=201, response_model=WrittenOut, summary="Register a participant (intake)")
async def register_participant(body: RegisterParticipant, ctx: ContextDep, container: ContainerDep) -> Response:
    try:
        result = await container.exchange.register(ctx, body.region, body.records)
    except _DOMAIN_ERRORS as exc:
        raise _problem(exc) from None
    payload = {
        "participant": result.pseudonym,
        "versions": result.versions,
        "audit": _audit_ref(result.access),
    }
    return _json(payload, 201, {"Location": f"/v1/participants/{result.pseudonym}"})


@router.get("/participants", response_model=ParticipantListOut, summary="List participants visible for a purpose")
async def list_participants(
    ctx: ContextDep,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(pattern=r"^p[a-z2-7]{26}$")] = None,
) -> Response:
    try:
        result = await container.exchange.list(ctx, limit, after)
    except _DOMAIN_ERRORS as exc:
        raise _problem(exc) from None
    items = [
        {"participant": i.pseudonym, "region": i.region, "registered_at": i.registered_on.isoformat()}
        for i in result.items
    ]
    next_after = items[-1]["participant"] if len(items) == limit else None
    return _json({"items": items, "next_after": next_after, "audit": _audit_ref(result.access)})


@router.get("/participants/{pseudonym}", response_model=ParticipantOut, summary="Read a participant for a purpose")
async def read_participant(
    pseudonym: Pseudonym,
    ctx: ContextDep,
    container: ContainerDep,
    categories: Annotated[
        str | None, Query(description="Comma-separated categories; default: all the purpose permits")
    ] = None,
) -> Response:
    wanted = tuple(c for c in categories.split(",") if c) if categories else None
    try:
        result = await container.exchange.read(ctx, pseudonym, wanted)
    except _DOMAIN_ERRORS as exc:
        raise _problem(exc) from None
    d = result.access.decision
    payload = {
        "participant": result.pseudonym,
        "purpose": d.purpose,
        "processing_activity_id": d.processing_activity_id,
        "records": {
            name: {
                "fields": rec.fields,
                "version": rec.version,
                "source": rec.source_organisation,
                "written_at": rec.written_at.isoformat(),
            }
            for name, rec in result.records.items()
        },
        "withheld_categories": list(d.withheld),
        "audit": _audit_ref(result.access),
    }
    return _json(payload)


@router.put(
    "/participants/{pseudonym}/records/{category}",
    response_model=WrittenOut,
    summary="Write a category record",
)
async def write_record(
    pseudonym: Pseudonym,
    category: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")],
    body: WriteRecord,
    ctx: ContextDep,
    container: ContainerDep,
    idempotency_key: Annotated[
        str | SkipJsonSchema[None],
        Header(
            alias="Idempotency-Key",
            json_schema_extra={"pattern": IDEMPOTENCY_KEY.pattern},
            description="Repeat a write safely: a source system applies one key once",
        ),
    ] = None,
) -> Response:
    if idempotency_key is not None:
        # Checked here with the document's own pattern (Python's `$` also ends before a final newline, which
        # HTTP treats as whitespace around the value), not by pydantic's engine, whose `$` is stricter.
        idempotency_key = idempotency_key.strip()
        if not IDEMPOTENCY_KEY.match(idempotency_key):
            raise Problem(
                422,
                "invalid_request",
                "The request is not valid.",
                errors=[{"location": "header.Idempotency-Key", "message": "8 to 128 printable ASCII characters"}],
            )
    try:
        result = await container.exchange.write(ctx, pseudonym, category, body.fields, idempotency_key)
    except _DOMAIN_ERRORS as exc:
        raise _problem(exc) from None
    return _json({"participant": result.pseudonym, "versions": result.versions, "audit": _audit_ref(result.access)})


# -- the read without FastAPI's per-request dependency resolution ---------------------------------------

_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)


class PlainRead(Route):
    """GET /v1/participants/{pseudonym} without a query, as a plain Starlette route.

    FastAPI resolves the read's dependency tree (container, trace, bearer, principal, context and their
    header parameters) anew for every request, and on the hot read that costs about as much CPU as the
    read's own work. This route calls the very same functions in a straight line: `get_principal`
    (token, revocation, scope, rate limit, refusals logged), `get_context` (acting user and role
    checked, purpose passed on) and `read_participant` (the decision, its durable audit entry, then
    the data). It takes only the plain shape of the request: a valid pseudonym and no query string.
    Anything else (a `categories` query, a malformed pseudonym, another method) does not match here
    and goes on to the FastAPI route, which answers it, errors included, as before. The FastAPI route
    stays the one the OpenAPI document describes; this one is not in the document.
    """

    def __init__(self) -> None:
        super().__init__("/v1/participants/{pseudonym}", _plain_read, methods=["GET"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string"):
            return Match.NONE, {}
        match, child = super().matches(scope)
        if match is not Match.FULL or not _PSEUDONYM.match(child["path_params"]["pseudonym"]):
            return Match.NONE, {}
        child["route"] = self  # the metrics label it by its template, as the FastAPI route
        return match, child


async def _plain_read(request: Request) -> Response:
    container = request.app.state.container
    trace = request.state.trace
    principal = await get_principal(request, container, trace, None)
    headers = request.headers
    ctx = await get_context(
        request,
        container,
        principal,
        trace,
        headers.get(USER_HEADER),
        headers.get(ROLE_HEADER),
        headers.get(PURPOSE_HEADER),
    )
    return await read_participant(request.path_params["pseudonym"], ctx, container)


def install(app: Any) -> None:
    """Add the exchange routes to `app`, the plain read first (it takes only the requests it can)."""
    app.router.routes.insert(0, PlainRead())
    app.include_router(router)
