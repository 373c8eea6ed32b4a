"""The monitor API for the steering role: `GET /v1/monitor` (JSON), `GET /v1/monitor/tables/{id}` (CSV)
(one suppressed table as CSV) and `POST /v1/monitor/last-measurement` (issue the signed last results
measurement). Bearer token, `Acting-User`, `Acting-Role: steering`; any other role gets 403 (logged).

Only protected counts leave: a suppressed cell is `null` (JSON) or `x` (CSV), with one reason for all.
Periods are fixed calendar periods of the configured grain; `period` only selects the series' periods
within a calendar year, quarter or month, and a free range cannot be asked.
"""

from __future__ import annotations

import threading
from datetime import UTC
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from gateway.api.deps import get_principal
from gateway.api.guards import audit_unavailable, oversight_guard
from gateway.api.problems import Problem
from gateway.api.schemas import problems
from gateway.audit.writer import AuditUnavailable
from gateway.evidence.service import EvidenceUnavailable, file_stem
from gateway.exchange.authorize import OversightGrant
from gateway.monitor.compute import SERIES_ID, period_label, table_json
from gateway.monitor.disclosure import SUPPRESSED_REASON, cut_columns
from gateway.monitor.measurement import issue_last_measurement
from gateway.monitor.render import region_labels, table_csv
from gateway.monitor.service import MEASURE_EVENT, VIEW_EVENT, Computed
from gateway.monitor.wiring import MonitorParts, build_monitor
from gateway.policies.model import OversightAction

router = APIRouter(
    prefix="/v1/monitor", tags=["steering monitor"], dependencies=[Depends(get_principal)], responses=problems(404)
)
_lock = threading.Lock()
ViewGrant = Annotated[OversightGrant, Depends(oversight_guard(OversightAction.MONITOR_VIEW, VIEW_EVENT))]
MeasureGrant = Annotated[OversightGrant, Depends(oversight_guard(OversightAction.MONITOR_MEASURE, MEASURE_EVENT))]


def monitor_parts(request: Request) -> MonitorParts:
    """Return the app's monitor parts (built once); 404 when the configuration has no monitor."""
    state = request.app.state
    if not hasattr(state, "monitor_parts"):
        with _lock:
            if not hasattr(state, "monitor_parts"):
                state.monitor_parts = build_monitor(state.container)
    parts: MonitorParts | None = state.monitor_parts
    if parts is None:
        raise Problem(404, "monitor_not_configured", "This configuration has no monitor (monitor.yaml).")
    return parts


PartsDep = Annotated[MonitorParts, Depends(monitor_parts)]


PERIOD_PATTERN = r"^\d{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$"


def periods_within(columns: tuple[str, ...], period: str | None) -> tuple[str, ...] | None:
    """Return the series' lattice columns that overlap a calendar period (a year, quarter or month).

    Only a cut of the one protected publication: no count is aggregated anew, so asking 2024, then
    2024-Q4, then 2024-11 gives nothing to subtract. A free range cannot be asked (the pattern refuses it).
    """
    if period is None:
        return None

    def span(p: str) -> tuple[str, str]:
        year, _, part = p.partition("-")
        if not part:
            return f"{year}-01", f"{year}-12"
        if part.startswith("Q"):
            q = int(part[1:])
            return f"{year}-{3 * q - 2:02d}", f"{year}-{3 * q:02d}"
        return p, p

    first, last = span(period)
    return tuple(c for c in columns if span(c)[0] <= last and span(c)[1] >= first)


def publication_body(parts: MonitorParts, computed: Computed, period: str | None = None) -> dict[str, Any]:
    """Return the JSON body of a computation (only protected counts)."""
    pub = computed.publication
    within = periods_within(pub.series.cols, period)
    series = pub.series if within is None else cut_columns(pub.series, within)
    config = parts.config
    return {
        "title": config.title,
        "computed_at": parts.service.authorizer.clock.now().astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "policy_version": parts.service.policy().version,
        "monitor_version": pub.monitor_version,
        "audit": {"seq": computed.audit_seq},
        "scope": {"regions": list(computed.scope.regions), "programme_totals": computed.scope.programme},
        "disclosure": {
            "threshold": pub.rules.threshold,
            "rounding": pub.rules.rounding,
            "explanation": config.disclosure.explanation,
            "suppressed_reason": SUPPRESSED_REASON,
        },
        "periods": {"grain": config.periods.grain, "counted_by": config.periods.counted_by},
        "series": {
            "id": SERIES_ID,
            "name": config.intake_series_name,
            "definition": config.intake_series_definition,
            "period_labels": {p: period_label(p) for p in series.cols},
            "table": table_json(series),
        },
        "indicators": [
            {
                "id": ind.id,
                "name": ind.name,
                "definition": ind.definition,
                "breakdown": ind.breakdown,
                "counted_from": ind.counted_from,
                "table": table_json(table),
            }
            for ind, table in pub.indicators
        ],
    }


def _view(parts: MonitorParts, grant: OversightGrant) -> Computed:
    try:
        return parts.service.view(grant)
    except AuditUnavailable:
        raise audit_unavailable() from None


class MonitorOut(BaseModel, extra="allow"):
    """The protected publication for your regions: every count is suppressed where it could single out a person
    (`null`); `disclosure` says how, `audit.seq` is the entry that logged the computation."""

    title: str
    computed_at: str
    policy_version: str
    monitor_version: str
    audit: dict[str, int]
    scope: dict[str, Any]
    disclosure: dict[str, Any]
    periods: dict[str, Any]
    series: dict[str, Any]
    indicators: list[dict[str, Any]]


class MeasurementOut(BaseModel):
    """The issued last results measurement: a signed evidence document in three renditions."""

    id: str
    type: str
    version: int
    sha256: str
    audit: dict[str, int] = Field(description="`seq`: the issue; `computation_seq`: the computation")
    files: dict[str, str] = Field(description="json, html, pdf: where to download each rendition")
    file_stem: str


@router.get("", summary="The monitor's suppressed tables for your regions", response_model=MonitorOut)
def monitor(
    parts: PartsDep,
    grant: ViewGrant,
    period: Annotated[
        str | None,
        Query(
            pattern=PERIOD_PATTERN,
            description="A calendar year, quarter or month (2024, 2024-Q4, 2024-11): the series' periods within it",
        ),
    ] = None,
) -> Response:
    computed = _view(parts, grant)
    body = publication_body(parts, computed, period)
    return Response(orjson.dumps(body), headers={"Audit-Seq": str(computed.audit_seq)}, media_type="application/json")


class CsvResponse(Response):
    media_type = "text/csv"


@router.get(
    "/tables/{table}",
    summary="One suppressed table as CSV (x = suppressed)",
    response_class=CsvResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def monitor_csv(
    parts: PartsDep,
    grant: ViewGrant,
    table: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="instroom or an indicator id")],
) -> Response:
    known = {SERIES_ID, *(i.id for i in parts.config.indicators)}
    if table not in known:
        raise Problem(404, "not_found", "No such table.", f"Tables: {', '.join(sorted(known))}.")
    computed = _view(parts, grant)
    pub = computed.publication
    names = region_labels({r: r.capitalize() for r in pub.regions})
    if table == SERIES_ID:
        text = table_csv(pub.series, names, {p: period_label(p) for p in pub.series.cols})
    else:
        text = table_csv(next(t for i, t in pub.indicators if i.id == table), names)
    headers = {
        "Content-Disposition": f'attachment; filename="monitor-{table}.csv"',
        "Audit-Seq": str(computed.audit_seq),
    }
    return Response(text, headers=headers, media_type="text/csv; charset=utf-8")


@router.post(
    "/last-measurement",
    status_code=201,
    summary="Issue the signed last results measurement",
    responses=problems(409),
    response_model=MeasurementOut,
)
def last_measurement(parts: PartsDep, grant: MeasureGrant) -> Response:
    try:
        computed = parts.service.measure(grant)
        stored = issue_last_measurement(parts.evidence.service, parts.config, computed, grant.ctx.acting_user)
    except AuditUnavailable:
        raise audit_unavailable() from None
    except EvidenceUnavailable as exc:
        raise Problem(409, "evidence_unavailable", "The document cannot be issued now.", str(exc)) from None
    stem = file_stem(stored.type, stored.subject, stored.version)
    body = {
        "id": stored.id,
        "type": stored.type,
        "version": stored.version,
        "sha256": stored.sha256,
        "audit": {"seq": stored.audit_seq, "computation_seq": computed.audit_seq},
        "files": {ext: f"/v1/evidence/documents/{stored.id}.{ext}" for ext in ("json", "html", "pdf")},
        "file_stem": stem,
    }
    return Response(orjson.dumps(body), 201, media_type="application/json")
