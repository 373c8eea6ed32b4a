"""The officer API: query the audit log, anomalies, subject access reports, LDV export (privacy officers only).

Every call needs a bearer token, `Acting-User`, and `Acting-Role: privacy_officer`; any other role is
refused with 403 and the refusal is logged. Every permitted call is logged as `audit.query` or
`audit.subject_access` before anything is returned; the response's `audit.seq` names that entry.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response, StreamingResponse

from gateway.api.deps import MAX_INDEX, ContextDep, get_principal
from gateway.api.oversight_schemas import AnomaliesOut, EntryPage, LogStatusOut, SubjectLookupIn, SubjectLookupOut
from gateway.api.problems import Problem
from gateway.api.schemas import Rfc3339, problems
from gateway.audit.query import csv_header, csv_row, json_document
from gateway.audit.writer import AuditUnavailable
from gateway.exchange.authorize import Denied
from gateway.store.subject_index import given_kinds
from gateway.web.deps import OfficerDep, PartsDep
from gateway.web.pdf import report_pdf
from gateway.web.render import SECURITY_HEADERS
from gateway.web.service import Criteria, LookupUnavailable, NotFound

router = APIRouter(
    prefix="/v1/officer", tags=["privacy officer"], dependencies=[Depends(get_principal)], responses=problems(404)
)
_TEXT = {"schema": {"type": "string"}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
Moment = Annotated[Rfc3339 | None, Query(description="ISO-8601 with offset, e.g. 2024-11-01T00:00:00+01:00")]
Pseudonym = Annotated[str, Path(pattern=r"^p[a-z2-7]{26}$", description="Your organisation's pseudonym")]


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, Denied):
        if exc.hides_existence:
            return Problem(404, "not_found", "No such participant.", audit_seq=exc.audit_seq)
        return Problem(403, exc.reason, "Access denied.", exc.text, audit_seq=exc.audit_seq)
    if isinstance(exc, NotFound):
        return Problem(404, "not_found", "No such participant.", audit_seq=exc.audit_seq)
    if isinstance(exc, AuditUnavailable):
        return Problem(
            503,
            "audit_unavailable",
            "The audit log cannot record this request; nothing was released.",
            headers={"Retry-After": "5"},
        )
    raise exc


_ERRORS = (Denied, NotFound, AuditUnavailable)


def _aware(*moments: datetime | None) -> None:
    if any(m is not None and m.tzinfo is None for m in moments):
        raise Problem(422, "naive_time", "Times need a zone offset.", "Give e.g. 2024-11-01T00:00:00+01:00.")


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), 200, headers=headers, media_type="application/json")


def _criteria(
    participant: str | None,
    organisation: str | None,
    purpose: str | None,
    decision: str | None,
    event: str | None,
    reason: list[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> Criteria:
    _aware(since, until)
    return Criteria(participant, organisation, purpose, decision, event, tuple(reason or ()), since, until)


def _filters(
    participant: Annotated[str | None, Query(max_length=64, description="Your organisation's pseudonym")] = None,
    organisation: Annotated[str | None, Query(max_length=64)] = None,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    decision: Annotated[Literal["permit", "deny"] | None, Query()] = None,
    event: Annotated[str | None, Query(max_length=64, description="e.g. exchange.read, audit.query")] = None,
    reason: Annotated[list[str] | None, Query(description="Reason codes (repeatable)")] = None,
    since: Moment = None,
    until: Moment = None,
) -> Criteria:
    return _criteria(participant, organisation, purpose, decision, event, reason, since, until)


FiltersDep = Annotated[Criteria, Depends(_filters)]


@router.get(
    "/entries", response_model=EntryPage, summary="Search the audit log within your scope (paged, newest first)"
)
def search_entries(
    ctx: ContextDep,
    officer: OfficerDep,
    criteria: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[int | None, Query(ge=1, le=MAX_INDEX, description="next_cursor of the previous page")] = None,
) -> Response:
    try:
        result = officer.search(ctx, criteria, limit, cursor)
    except _ERRORS as exc:
        raise _problem(exc) from None
    page = result.value
    return _json(
        {
            "items": [v.as_dict() for v in page.items],
            "next_cursor": page.next_cursor,
            "scope": result.scope.text,
            "audit": {"seq": result.audit_seq},
        }
    )


@router.get(
    "/entries/export",
    summary="Export every matching entry in your scope as CSV or JSON",
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}, "text/csv": _TEXT}}},
)
def export_entries(
    ctx: ContextDep, officer: OfficerDep, criteria: FiltersDep, format: Literal["csv", "json"] = "json"
) -> StreamingResponse:
    try:
        result = officer.export(ctx, criteria, format)
    except _ERRORS as exc:
        raise _problem(exc) from None
    headers = {
        "Content-Disposition": f'attachment; filename="audit-entries-{result.audit_seq}.{format}"',
        "Audit-Seq": str(result.audit_seq),
        "Cache-Control": "no-store",
    }
    if format == "csv":
        rows = (csv_header().encode(), *(csv_row(v).encode() for v in result.value))
        return StreamingResponse(iter(rows), headers=headers, media_type="text/csv; charset=utf-8")
    head = {"scope": result.scope.text, "count": result.count, "audit": {"seq": result.audit_seq}}
    return StreamingResponse(json_document(head, result.value), headers=headers, media_type="application/json")


@router.get(
    "/anomalies", response_model=AnomaliesOut, summary="Anomalies in your scope for a period (default: the last 7 days)"
)
def anomalies(ctx: ContextDep, officer: OfficerDep, since: Moment = None, until: Moment = None) -> Response:
    _aware(since, until)
    default_since, default_until = officer.default_period()
    try:
        result = officer.anomalies(ctx, since or default_since, until or default_until)
    except _ERRORS as exc:
        raise _problem(exc) from None
    return _json(
        {
            "items": [a.as_dict() for a in result.value],
            "thresholds": asdict(officer.thresholds()),
            "scope": result.scope.text,
            "audit": {"seq": result.audit_seq},
        }
    )


@router.get(
    "/participants/{pseudonym}/access-report",
    summary="Subject access report (GDPR art. 15) as JSON, HTML or PDF",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/html": _TEXT,
                "application/pdf": _BINARY,
            }
        }
    },
)
def access_report(
    pseudonym: Pseudonym,
    ctx: ContextDep,
    officer: OfficerDep,
    parts: PartsDep,
    format: Literal["json", "html", "pdf"] = "json",
    lang: Annotated[
        Literal["nl", "en"], Query(description="Language of the HTML and PDF renditions (Dutch by default)")
    ] = "nl",
) -> Response:
    try:
        result = officer.subject_access(ctx, pseudonym, format)
    except _ERRORS as exc:
        raise _problem(exc) from None
    report = result.value
    headers = {"Audit-Seq": str(result.audit_seq), "Cache-Control": "no-store"}
    if format == "pdf":
        headers["Content-Disposition"] = f'attachment; filename="subject-access-{result.audit_seq}.pdf"'
        return Response(
            report_pdf(report, officer.settings.officer_timezone, lang), headers=headers, media_type="application/pdf"
        )
    if format == "html":
        html = parts.renderer.render("report_standalone.html", lang, r=report)
        return Response(html, headers={**SECURITY_HEADERS, **headers}, media_type="text/html; charset=utf-8")
    return _json(report.as_dict(), headers)


@router.get(
    "/ldv",
    summary="Your scope's entries as Logboek Dataverwerkingen records (JSON lines)",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": _TEXT}}},
)
def ldv_export(ctx: ContextDep, officer: OfficerDep, since: Moment = None, until: Moment = None) -> StreamingResponse:
    _aware(since, until)
    try:
        result = officer.ldv(ctx, since, until)
    except _ERRORS as exc:
        raise _problem(exc) from None
    headers = {
        "Content-Disposition": f'attachment; filename="ldv-{result.audit_seq}.jsonl"',
        "Audit-Seq": str(result.audit_seq),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(result.value, headers=headers, media_type="application/x-ndjson")


@router.get("/status", response_model=LogStatusOut, summary="The audit log's verification status")
def status(ctx: ContextDep, officer: OfficerDep) -> Response:
    try:
        return _json(officer.status_for(ctx).as_dict())
    except _ERRORS as exc:
        raise _problem(exc) from None


@router.post(
    "/subject-lookup",
    response_model=SubjectLookupOut,
    summary="Find the participant of an access request from its V-number, or family name and date of birth",
    responses=problems(422),
)
def subject_lookup(body: SubjectLookupIn, ctx: ContextDep, officer: OfficerDep) -> Response:
    # The schema asks for v_number, or family_name with birth_date; what normalises to nothing (" - ")
    # matches no one, and is answered (and logged) as a search that found no one.
    given = {k: str(v).strip() for k, v in body.model_dump(exclude_none=True).items()}
    kinds = given_kinds(given)
    try:
        result = officer.find_subject(ctx, given)
    except LookupUnavailable as exc:
        raise Problem(503, "lookup_unavailable", "Finding a participant is not set up.", str(exc)) from None
    except _ERRORS as exc:
        raise _problem(exc) from None
    return _json(
        {"pseudonyms": result.value, "matched_by": kinds, "audit_seq": result.audit_seq},
        {"Audit-Seq": str(result.audit_seq), "Cache-Control": "no-store"},
    )
