"""Request and response bodies of the exchange API (what /docs shows partners)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# RFC 3339 `date-time` (what `format: date-time` promises), offset required: pydantic alone would also take
# a bare number as a Unix time, and a moment without an offset.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("Give a moment as RFC 3339 with its offset, e.g. 2024-11-01T00:00:00+01:00")
    if not isinstance(value, str | datetime):
        raise ValueError("Give a moment as RFC 3339 with its offset, e.g. 2024-11-01T00:00:00+01:00")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]


class RegisterParticipant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = Field(description="The LVV region the participant is registered in", examples=["amsterdam"])
    records: dict[str, dict[str, Any]] = Field(
        min_length=1,
        description="Initial records per category: {category: {field: value}}",
        examples=[{"identity": {"family_name": "Voorbeeld", "given_names": "Testpersoon"}}],
    )


class WriteRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: dict[str, Any] = Field(
        min_length=1,
        description="Fields to set in the category's record; merged into its latest version, null clears a field",
    )


class AuditRef(BaseModel):
    seq: int = Field(description="Sequence number of the audit entry recording this decision")
    policy_version: str
    rule_ids: list[str]
    legal_bases: list[str]


class CategoryOut(BaseModel):
    fields: dict[str, Any]
    version: int
    source: str
    written_at: datetime


class ParticipantOut(BaseModel):
    participant: str = Field(description="Your organisation's pseudonym for this participant")
    purpose: str
    processing_activity_id: str
    records: dict[str, CategoryOut]
    withheld_categories: list[str]
    audit: AuditRef


class WrittenOut(BaseModel):
    participant: str
    versions: dict[str, int]
    audit: AuditRef


class ListedOut(BaseModel):
    participant: str
    region: str
    registered_at: date = Field(description="Day of registration (UTC), never the exact moment")


class ParticipantListOut(BaseModel):
    items: list[ListedOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last page")
    audit: AuditRef


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the `responses` entry declaring problem statuses (`gateway.api.openapi` describes them all)."""
    return {status: {"model": ProblemOut} for status in statuses}


class ProblemError(BaseModel):
    location: str = Field(description="Where: e.g. body.fields.plan_summary, header.Acting-User, query.limit")
    message: str


class ProblemOut(BaseModel):
    """RFC 9457 problem details, with the gateway's stable `code` and the request's `trace_id`."""

    type: str = Field(
        json_schema_extra={"format": "uri"},
        description="The page that explains this problem type: {gateway}/problems/{code}",
    )
    title: str
    status: int
    code: str = Field(description="Stable code of the problem type (README lists them; /problems explains them)")
    detail: str = Field(description="What is wrong with this request, and what to do")
    instance: str | None = Field(
        default=None, description="This occurrence: urn:lvv-gateway:trace:{trace_id} (never the request's path)"
    )
    trace_id: str | None = Field(default=None, description="W3C trace id; links to the audit entry")
    audit_seq: int | None = Field(default=None, description="Sequence number of the audit entry of this refusal")
    errors: list[ProblemError] | None = Field(default=None, description="Each invalid part of the request")
