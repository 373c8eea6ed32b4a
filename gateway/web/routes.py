"""The privacy-officer pages under /officer: search, denied attempts, anomalies, exports, art. 15 report.

Server-rendered HTML without scripts. Every page shows the log's verification status; every page
that shows log entries is itself an audit entry. Pages never show record contents (the log has
none) and every value is escaped by the template engine.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from gateway.audit.anomalies import HIDDEN_REASONS
from gateway.audit.query import csv_header, csv_row, json_document
from gateway.audit.writer import AuditUnavailable
from gateway.exchange.authorize import Denied
from gateway.i18n import N_, locale_or_default
from gateway.store.subject_index import given_kinds
from gateway.web import officer_signin
from gateway.web.deps import OfficerParts, PartsDep
from gateway.web.officer_signin import Page, signed_in
from gateway.web.pdf import report_pdf
from gateway.web.service import Criteria, LookupUnavailable, NotFound, OfficerService
from gateway.web.signin import FormDep, html_page

pages = APIRouter(prefix="/officer", include_in_schema=False)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DUTCH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$")
EVENTS = (
    ("exchange.read", N_("Read")),
    ("exchange.write", N_("Write")),
    ("exchange.register", N_("Register (intake)")),
    ("exchange.list", N_("List")),
    ("audit.query", N_("Log review")),
    ("audit.subject_access", N_("Subject access report")),
    ("audit.login", N_("Review sign-in")),
)
OWN_PURPOSES = (
    ("audit_review", N_("Audit log review (privacy officer)")),
    ("subject_access_request", N_("Subject access request (art. 15)")),
)
DATE_ERROR = N_("Give dates as dd-mm-yyyy (for example 31-12-2024).")


# -- filters -------------------------------------------------------------------------------------------


def _day_bounds(text: str, zone: ZoneInfo, end: bool) -> datetime | None:
    """Return the start of the day `text` names (dd-mm-yyyy, or ISO yyyy-mm-dd), or of the next one for `end`."""
    dutch = _DUTCH_DAY.match(text)
    if dutch:
        text = f"{dutch[3]}-{int(dutch[2]):02d}-{int(dutch[1]):02d}"
    if not _DAY.match(text):
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), zone)


class _Filters:
    """The search form's values as typed, and the criteria they mean."""

    NAMES = ("participant", "organisation", "purpose", "decision", "event", "since", "until")

    def __init__(self, request: Request, zone: ZoneInfo, decision: str | None = None) -> None:
        q = request.query_params
        self.values = {n: (q.get(n) or "").strip()[:64] for n in self.NAMES}
        if decision:
            self.values["decision"] = decision
        if self.values["decision"] not in ("", "permit", "deny"):
            self.values["decision"] = ""
        self.error: str | None = None
        since = _day_bounds(self.values["since"], zone, False) if self.values["since"] else None
        until = _day_bounds(self.values["until"], zone, True) if self.values["until"] else None
        if (self.values["since"] and since is None) or (self.values["until"] and until is None):
            self.error = DATE_ERROR
        v = self.values
        self.criteria = Criteria(
            v["participant"] or None,
            v["organisation"] or None,
            v["purpose"] or None,
            v["decision"] or None,
            v["event"] or None,
            (),
            since,
            until,
        )
        cursor = q.get("cursor", "")
        self.cursor = int(cursor) if cursor.isdigit() else None

    def query(self, **extra: object) -> str:
        items = {k: v for k, v in self.values.items() if v}
        items.update({k: str(v) for k, v in extra.items() if v is not None})
        return urlencode(items)


def _options(service: OfficerService) -> dict[str, Any]:
    policy = service.policy
    purposes = [(p.id, p.name) for p in policy.config.purposes] + list(OWN_PURPOSES)
    return {
        "organisations": [(o.id, o.name) for o in policy.config.organisations],
        "purposes": purposes,
        "purpose_names": dict(purposes),
        "category_names": {c.id: c.name for c in policy.config.categories},
        "events": EVENTS,
        "event_names": dict(EVENTS),
    }


def _entries_page(request: Request, parts: OfficerParts, denied: bool) -> Response:
    page = signed_in(request, parts)
    if isinstance(page, Response):
        return page
    zone = ZoneInfo(parts.service.settings.officer_timezone)
    f = _Filters(request, zone, "deny" if denied else None)
    base = "/officer/denied" if denied else "/officer/entries"
    try:
        result = page.service.search(page.ctx, f.criteria, 50, f.cursor, view="denied" if denied else "search")
    except (Denied, AuditUnavailable) as exc:
        return page.problem(exc)
    next_cursor = result.value.next_cursor
    title = N_("Denied attempts") if denied else N_("Search the audit log")
    lead = (
        N_(
            "Every request the gateway refused in your scope, with the reason. A 404 answer hides whether a "
            "participant exists; the log still records who asked."
        )
        if denied
        else N_("Who accessed which participant's data, for which purpose, on which legal basis, and when.")
    )
    return page.render(
        "entries.html",
        title=title,
        lead=lead,
        nav="denied" if denied else "entries",
        action=base,
        filters=f.values,
        show_decision=not denied,
        denied_view=denied,
        items=result.value.items,
        next_url=f"{base}?{f.query(cursor=next_cursor)}" if next_cursor else None,
        export_csv=f"/officer/export.csv?{f.query()}",
        export_json=f"/officer/export.json?{f.query()}",
        export_ldv=f"/officer/ldv.jsonl?{f.query()}",
        scope=result.scope,
        audit_seq=result.audit_seq,
        error=f.error,
        **_options(page.service),
    )


@pages.get("/entries")
def entries(request: Request, parts: PartsDep) -> Response:
    return _entries_page(request, parts, denied=False)


@pages.get("/denied")
def denied_attempts(request: Request, parts: PartsDep) -> Response:
    return _entries_page(request, parts, denied=True)


# -- exports -------------------------------------------------------------------------------------------


def _export(request: Request, parts: OfficerParts, fmt: str) -> Response:
    page = signed_in(request, parts)
    if isinstance(page, Response):
        return page
    f = _Filters(request, ZoneInfo(parts.service.settings.officer_timezone))
    try:
        result = page.service.export(page.ctx, f.criteria, fmt)
    except (Denied, AuditUnavailable) as exc:
        return page.problem(exc)
    headers = {
        "Content-Disposition": f'attachment; filename="audit-entries-{result.audit_seq}.{fmt}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if fmt == "csv":
        rows = (csv_header().encode(), *(csv_row(v).encode() for v in result.value))
        return StreamingResponse(iter(rows), headers=headers, media_type="text/csv; charset=utf-8")
    head = {"scope": result.scope.text, "count": result.count, "audit": {"seq": result.audit_seq}}
    return StreamingResponse(json_document(head, result.value), headers=headers, media_type="application/json")


@pages.get("/export.csv")
def export_csv(request: Request, parts: PartsDep) -> Response:
    return _export(request, parts, "csv")


@pages.get("/export.json")
def export_json(request: Request, parts: PartsDep) -> Response:
    return _export(request, parts, "json")


@pages.get("/ldv.jsonl")
def export_ldv(request: Request, parts: PartsDep) -> Response:
    page = signed_in(request, parts)
    if isinstance(page, Response):
        return page
    f = _Filters(request, ZoneInfo(parts.service.settings.officer_timezone))
    try:
        result = page.service.ldv(page.ctx, f.criteria.since, f.criteria.until)
    except (Denied, AuditUnavailable) as exc:
        return page.problem(exc)
    headers = {
        "Content-Disposition": f'attachment; filename="ldv-{result.audit_seq}.jsonl"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(result.value, headers=headers, media_type="application/x-ndjson")


# -- anomalies -------------------------------------------------------------------------------------------


@pages.get("/anomalies")
def anomalies(request: Request, parts: PartsDep) -> Response:
    page = signed_in(request, parts)
    if isinstance(page, Response):
        return page
    zone = ZoneInfo(parts.service.settings.officer_timezone)
    q = request.query_params
    default_since, default_until = page.service.default_period()
    typed = {n: (q.get(n) or "").strip()[:16] for n in ("since", "until")}
    since = _day_bounds(typed["since"], zone, False) if typed["since"] else None
    until = _day_bounds(typed["until"], zone, True) if typed["until"] else None
    error = DATE_ERROR if (typed["since"] and since is None) or (typed["until"] and until is None) else None
    since, until = since or default_since, until or default_until
    last_day = (until - timedelta(seconds=1)).astimezone(zone)
    shown = {"since": since.astimezone(zone).strftime("%d-%m-%Y"), "until": last_day.strftime("%d-%m-%Y")}
    try:
        result = page.service.anomalies(page.ctx, since, until)
    except (Denied, AuditUnavailable) as exc:
        return page.problem(exc)
    return page.render(
        "anomalies.html",
        title=N_("Anomalies"),
        nav="anomalies",
        anomalies=result.value,
        since=since,
        until_day=shown["until"],
        filters=shown,
        error=error,
        entry_query=lambda seq: urlencode({"cursor": seq + 1}),
        t=page.service.thresholds(),
        org_names={o.id: o.name for o in page.service.policy.config.organisations},
        hidden_reasons=HIDDEN_REASONS,
        scope=result.scope,
        audit_seq=result.audit_seq,
    )


# -- subject access (art. 15) -----------------------------------------------------------------------------


def _subject(request: Request, parts: OfficerParts, fmt: str) -> Response:
    page = signed_in(request, parts)
    if isinstance(page, Response):
        return page
    participant = (request.query_params.get("participant") or "").strip()[:64]
    lang = locale_or_default(request.query_params.get("lang"))
    common: dict[str, Any] = {
        "title": N_("Subject access report"),
        "nav": "subject",
        "participant": participant,
        "r": None,
        "locale": lang,
    }
    if not participant:
        return page.render("subject_access.html", **common)
    try:
        result = page.service.subject_access(page.ctx, participant, fmt)
    except NotFound as exc:
        error = N_("Your organisation knows no participant by this pseudonym.")
        return page.render("subject_access.html", 404, error=error, audit_seq=exc.audit_seq, **common)
    except (Denied, AuditUnavailable) as exc:
        return page.problem(exc)
    report = result.value
    if fmt == "pdf":
        body = report_pdf(report, parts.service.settings.officer_timezone, lang)
        headers = {
            "Content-Disposition": f'attachment; filename="subject-access-{result.audit_seq}-{lang}.pdf"',
            "Cache-Control": "no-store",
        }
        return Response(body, headers=headers, media_type="application/pdf")
    if fmt == "json":
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        return Response(orjson.dumps(report.as_dict()), headers=headers, media_type="application/json")
    query = urlencode({"participant": participant})
    common.update(
        r=report,
        pdf_url=f"/officer/subject-access.pdf?{query}",
        pdf_en_url=f"/officer/subject-access.pdf?{query}&lang=en",
        html_en_url=f"/officer/subject-access?{query}&lang=en",
        json_url=f"/officer/subject-access.json?{query}",
    )
    return page.render("subject_access.html", scope=result.scope, audit_seq=result.audit_seq, **common)


@pages.get("/subject-access")
def subject_access(request: Request, parts: PartsDep) -> Response:
    return _subject(request, parts, "html")


@pages.get("/subject-access.pdf")
def subject_access_pdf(request: Request, parts: PartsDep) -> Response:
    return _subject(request, parts, "pdf")


@pages.get("/subject-access.json")
def subject_access_json(request: Request, parts: PartsDep) -> Response:
    return _subject(request, parts, "json")


# -- finding the participant of an access request ----------------------------------------------------------

LOOKUP_FIELDS = ("v_number", "family_name", "birth_date")


def _lookup_page(page: Page, status: int = 200, **values: Any) -> Response:
    common: dict[str, Any] = {"title": N_("Find a participant"), "nav": "lookup", "found": None, "given": []}
    common.update(values)
    return page.render("subject_lookup.html", status, **common)


@pages.get("/subject-lookup")
def subject_lookup_form(request: Request, parts: PartsDep) -> Response:
    page = signed_in(request, parts)
    if isinstance(page, Response):
        return page
    return _lookup_page(page)


@pages.post("/subject-lookup")
def subject_lookup(request: Request, parts: PartsDep, form: FormDep) -> Response:
    # A form posted, never a query string: the identifiers must not end up in URLs, logs or history.
    page = signed_in(request, parts)
    if isinstance(page, Response):
        return page
    if not parts.signin.csrf_ok(page.session, form.get("csrf")):
        return html_page("Invalid form token.", 400)
    given = {name: (form.get(name) or "").strip()[:128] for name in LOOKUP_FIELDS}
    if not given_kinds(given):
        error = N_("Give the V-number, or the family name together with the date of birth (dd-mm-yyyy).")
        return _lookup_page(page, 422, error=error)
    try:
        result = page.service.find_subject(page.ctx, given)
    except LookupUnavailable:
        error = N_("Finding a participant is not set up: the key subject-lookup.key is missing (gateway keys init).")
        return _lookup_page(page, 503, error=error)
    except (Denied, AuditUnavailable) as exc:
        return page.problem(exc)
    return _lookup_page(page, found=result.value, given=given_kinds(given), audit_seq=result.audit_seq)


router = APIRouter()
router.include_router(officer_signin.router)
router.include_router(pages)
