"""The configuration model: organisations, covenants, purposes, data categories, sharing rules.

These are the reviewable facts a privacy officer reads in `config/<name>/*.yaml`. They are validated
entry by entry on load (see `loader.py`) and compiled into fast lookups (see `compiled.py`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_DPV_LEGAL_BASIS = re.compile(r"^eu-gdpr:A(6-1-[a-f]|9-2-[a-j]|10)$|^nl-(wpg|uavg|vw2000|awb):[A-Za-z0-9.-]+$")


_IN_ENGLISH = "The same text in English, for the English rendition of the documents (gateway dpia generate --lang en)"


class Strict(BaseModel):
    """Base for config entries: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganisationKind(StrEnum):
    GEMEENTE = "gemeente"
    RIJKSPARTNER = "rijkspartner"
    NGO = "ngo"


class GdprRole(StrEnum):
    JOINT_CONTROLLER = "joint_controller"
    CONTROLLER = "controller"
    PROCESSOR = "processor"
    RECIPIENT = "recipient"


class Sensitivity(StrEnum):
    """The type of a data item in the sense of the DPIA model (LEGAL.md, part A section 2)."""

    ORDINARY = "ordinary"
    SPECIAL = "special"  # GDPR art. 9
    CRIMINAL = "criminal"  # GDPR art. 10
    NATIONAL_ID = "national_id"  # UAVG art. 46


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"
    LIST = "list"
    REGISTER = "register"  # create a participant with its first records (intake); never implied by write


class Organisation(Strict):
    id: Identifier
    name: str
    kind: OrganisationKind
    oin: Annotated[str, Field(pattern=r"^\d{20}$", description="Organisatie-identificatienummer")]
    regions: tuple[Identifier, ...] = Field(min_length=1)
    roles: tuple[Identifier, ...] = Field(min_length=1)
    notify_url: str | None = Field(
        default=None,
        pattern=r"^(https://[^\s/]+(/\S*)?|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/\S*)?)$",
        description="Where the gateway POSTs signed notices (https; plain http only on loopback). "
        "None: notices wait for the organisation to fetch and acknowledge them",
    )


class LegalBasis(Strict):
    dpv: str = Field(description="DPV / eu-gdpr term, e.g. eu-gdpr:A6-1-e")
    text: str = Field(min_length=10, description="The article and the law that give the basis, in Dutch")
    text_en: str | None = Field(default=None, description=_IN_ENGLISH)

    @field_validator("dpv")
    @classmethod
    def _known_term(cls, value: str) -> str:
        if not _DPV_LEGAL_BASIS.match(value):
            raise ValueError(f"'{value}' is not a known legal-basis term (eu-gdpr:A6-1-c, eu-gdpr:A9-2-g, ...)")
        return value


def _require_full_moment(value: object) -> object:
    # A bare date would silently mean midnight: a covenant "until 2024-12-31" would end a day early.
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError("give a full date and time, e.g. 2024-12-31T23:59:59, not a bare date")
    if isinstance(value, str) and "T" not in value and " " not in value.strip():
        raise ValueError("give a full date and time, e.g. 2024-12-31T23:59:59, not a bare date")
    return value


def _require_known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{value}'") from exc
    return value


def _exclusive_end(valid_until: datetime, timezone: str) -> datetime:
    """Return the second after an inclusive last second in force (aware, in `timezone`)."""
    local = valid_until if valid_until.tzinfo is not None else valid_until.replace(tzinfo=ZoneInfo(timezone))
    # In UTC: adding a second to local wall-clock time is wrong across a DST change.
    end = local.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    return end.astimezone(ZoneInfo(timezone))


class CovenantParty(Strict):
    organisation: Identifier
    gdpr_role: GdprRole


class Covenant(Strict):
    """An agreement between parties recording how data is shared; not itself a legal basis."""

    id: Identifier
    title: str
    parties: tuple[CovenantParty, ...] = Field(min_length=2)
    regions: tuple[Identifier, ...] = Field(min_length=1)
    valid_from: datetime
    valid_until: datetime = Field(description="Last second in force, inclusive")
    timezone: str = "Europe/Amsterdam"
    mandate: str | None = Field(default=None, description="Reference of the mandate decision")
    note: str | None = None

    @field_validator("valid_from", "valid_until", mode="before")
    @classmethod
    def _full_moment(cls, value: object) -> object:
        return _require_full_moment(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _require_known_zone(value)

    @model_validator(mode="after")
    def _ordered(self) -> Covenant:
        if self.starts_at >= self.ends_at:
            raise ValueError("valid_until lies before valid_from")
        seen = [p.organisation for p in self.parties]
        if len(seen) != len(set(seen)):
            raise ValueError("an organisation is listed twice among the parties")
        return self

    def _localise(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            return moment.replace(tzinfo=ZoneInfo(self.timezone))
        return moment

    @property
    def starts_at(self) -> datetime:
        """The first instant in force (aware)."""
        return self._localise(self.valid_from)

    @property
    def ends_at(self) -> datetime:
        """The first instant no longer in force: the second after `valid_until` (aware, exclusive)."""
        return _exclusive_end(self.valid_until, self.timezone)


class Purpose(Strict):
    """A purpose names one processing activity of the register."""

    id: Identifier
    name: str
    description: str = Field(description="What the processing is, in Dutch (the documents of record)")
    description_en: str | None = Field(default=None, description=_IN_ENGLISH)
    processing_activity_id: Annotated[str, Field(pattern=r"^(https?|urn):\S+$")]
    dpv_purpose: str
    legal_basis: LegalBasis
    art9_condition: LegalBasis | None = Field(default=None, description="GDPR art. 9(2) exception")
    art10_condition: LegalBasis | None = Field(default=None, description="GDPR art. 10 / UAVG basis")
    aggregate_only: bool = Field(default=False, description="Serves counts only, never a person's record")
    legal_procedure: bool = Field(
        default=False,
        description="Handles an objection, appeal, complaint or access request: the only kind of purpose "
        "for which a participant under a legal hold may be read",
    )


class CategoryField(Strict):
    name: FieldName
    description: str = ""
    description_en: str | None = Field(default=None, description=_IN_ENGLISH)
    sensitivity: Sensitivity | None = Field(default=None, description="Overrides the category's type")


class DataCategory(Strict):
    id: Identifier
    name: str
    description: str = ""
    description_en: str | None = Field(default=None, description=_IN_ENGLISH)
    dpv_category: str
    sensitivity: Sensitivity
    fields: tuple[CategoryField, ...] = Field(min_length=1)
    sources: tuple[Identifier, ...] = Field(
        min_length=1, description="Organisations (ids) or kinds that are source (bronhouder) and may write"
    )

    @model_validator(mode="after")
    def _unique_fields(self) -> DataCategory:
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError("a field is listed twice")
        return self

    def field_sensitivity(self, name: str) -> Sensitivity:
        """Return the type of one field: its own, or the category's."""
        for f in self.fields:
            if f.name == name:
                return f.sensitivity or self.sensitivity
        raise KeyError(name)


class Recipient(Strict):
    """Who a rule serves: any of `kinds` or `organisations`, acting in one of `roles`."""

    kinds: tuple[OrganisationKind, ...] = ()
    organisations: tuple[Identifier, ...] = ()
    roles: tuple[Identifier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _someone(self) -> Recipient:
        if not self.kinds and not self.organisations:
            raise ValueError("a recipient needs kinds or organisations")
        return self


class Grant(Strict):
    category: Identifier
    fields: Annotated[tuple[FieldName, ...], Field(min_length=1)] | Literal["*"] = Field(
        description="Field names, or '*' for all but national-id fields"
    )


class SharingRule(Strict):
    """Permits a recipient to read, write or list categories for one purpose under named covenants."""

    id: Identifier
    description: str
    purpose: Identifier
    covenants: tuple[Identifier, ...] = Field(min_length=1)
    operations: tuple[Operation, ...] = (Operation.READ,)
    recipient: Recipient
    condition: Literal["covenant_region", "same_region"] = Field(
        default="same_region",
        description="covenant_region: participant in a region of the covenant; "
        "same_region: also in a region of the recipient organisation",
    )
    grants: tuple[Grant, ...] = ()
    legal_basis: LegalBasis
    during_legal_hold_after_end: bool = Field(
        default=False,
        description="Also applies after its covenants ended (or were revoked), for a participant under a legal "
        "hold only; allowed only for a legal-procedure purpose",
    )

    @model_validator(mode="after")
    def _grants_for_data(self) -> SharingRule:
        needs_grants = {Operation.READ, Operation.WRITE, Operation.REGISTER} & set(self.operations)
        if needs_grants and not self.grants:
            raise ValueError("a read, write or register rule must grant at least one category")
        return self


class RetentionTrigger(StrEnum):
    """What starts the retention clock (LEGAL.md: the clock starts after the process ends)."""

    COVENANT_END = "covenant_end"
    CASE_CLOSED = "case_closed"
    DECISION_FINAL = "decision_final"
    PROVISION_END = "provision_end"
    RECORDED = "recorded"


RECORD_KINDS = ("audit_log", "destruction_records", "revocation_reports", "covenant_documents", "mandates")
_ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$")


class RetentionRule(Strict):
    """How long one category (or one kind of gateway record) is kept, and on which legal source."""

    id: Identifier
    applies_to: Identifier = Field(description=f"A data category id, or one of {', '.join(RECORD_KINDS)}")
    trigger: RetentionTrigger
    duration: str | None = Field(default=None, description="ISO-8601 duration (e.g. P10Y); none when archived")
    action: Literal["destroy", "archive"]
    legal_source: str = Field(min_length=5)
    suggestion: bool = Field(default=False, description="A design choice, not law (labelled so in output)")
    note: str | None = Field(default=None, description="Why this period, in Dutch")
    note_en: str | None = Field(default=None, description=_IN_ENGLISH)

    @model_validator(mode="after")
    def _duration_fits_action(self) -> RetentionRule:
        if self.action == "destroy":
            if self.duration is None or not _ISO_DURATION.match(self.duration):
                raise ValueError("a destroy rule needs an ISO-8601 duration such as P10Y, P6M or P0D")
        elif self.duration is not None:
            raise ValueError("an archive rule keeps permanently and has no duration")
        return self


class Mandate(Strict):
    """A mandate decision (mandaatbesluit): one authority lets others act in its name.

    The permissions it carries are the sharing rules in `rules`, under the covenants in `covenants`:
    they apply only from `valid_from` and, once the mandate is withdrawn (here, or by a jurist's recorded
    withdrawal), no longer from that moment.
    """

    id: Identifier
    reference: str = Field(min_length=5, description="The reference of the mandate decision")
    mandator: Identifier = Field(description="The organisation whose authority is mandated (mandaatgever)")
    mandataries: tuple[Identifier, ...] = Field(min_length=1, description="Who act in its name (gemandateerden)")
    covenants: tuple[Identifier, ...] = Field(min_length=1)
    rules: tuple[Identifier, ...] = Field(min_length=1, description="The sharing rules whose permissions it carries")
    valid_from: datetime
    valid_until: datetime | None = Field(
        default=None, description="Last second in force, inclusive; none: until withdrawn"
    )
    timezone: str = "Europe/Amsterdam"
    note: str | None = None

    @field_validator("valid_from", "valid_until", mode="before")
    @classmethod
    def _full_moment(cls, value: object) -> object:
        return _require_full_moment(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _require_known_zone(value)

    @model_validator(mode="after")
    def _ordered(self) -> Mandate:
        if self.ends_at is not None and self.starts_at >= self.ends_at:
            raise ValueError("valid_until lies before valid_from")
        return self

    @property
    def starts_at(self) -> datetime:
        """The first instant in force (aware)."""
        if self.valid_from.tzinfo is None:
            return self.valid_from.replace(tzinfo=ZoneInfo(self.timezone))
        return self.valid_from

    @property
    def ends_at(self) -> datetime | None:
        """The first instant no longer in force (aware, exclusive), or None while it runs open-ended."""
        return None if self.valid_until is None else _exclusive_end(self.valid_until, self.timezone)


class OversightAction(StrEnum):
    """What oversight and aftercare may do: a closed catalogue, none of which releases record contents."""

    AUDIT_REVIEW = "audit.review"  # read the organisation's own audit entries, searches, LDV export
    SUBJECT_ACCESS = "audit.subject_access"  # compile an art. 15 report of disclosures about one participant
    EVIDENCE_VIEW = "evidence.view"  # covenants, revocation reports, destruction records, legal holds
    EVIDENCE_ISSUE = "evidence.issue"  # issue a revocation report or destruction record
    NOTICE_ACKNOWLEDGE = "notice.acknowledge"  # read and acknowledge deletion notices sent to the organisation
    LEGAL_HOLD = "lifecycle.hold"  # set and lift legal holds
    COVENANT_REVOKE = "lifecycle.revoke"  # revoke a covenant early, withdraw a mandate
    REHEARSAL_CLOCK = "rehearsal.clock"  # move a rehearsal's simulated clock forward
    MONITOR_VIEW = "monitor.view"  # compute and see the monitor's suppressed counts (never a record)
    MONITOR_MEASURE = "monitor.measure"  # issue the last results measurement (signed, suppressed counts)


# Keys that would make an oversight activity hand out records; refused with a pointer to rules.yaml.
_RECORD_KEYS = ("grants", "categories", "fields", "operations", "condition", "purpose")


class Aftercare(Strict):
    """How long an oversight activity outlives the end of the covenants it serves."""

    after_retention: bool = Field(
        default=False,
        description="Until the last retention period (trigger covenant_end) of the categories shared under the "
        "covenant has run out, then `period` more",
    )
    period: str = Field(default="P0D", description="ISO-8601 duration after the end (or after the retention)")
    while_legal_hold: bool = Field(
        default=False,
        description="Also for as long as a legal hold the organisation set runs in a region of the covenant "
        "(an appeal may outlast any fixed period)",
    )

    @field_validator("period")
    @classmethod
    def _iso(cls, value: str) -> str:
        if not _ISO_DURATION.match(value):
            raise ValueError("period must be an ISO-8601 duration such as P0D, P6M or P1Y")
        return value


class OversightActivity(Strict):
    """A processing activity of oversight or aftercare (log review, art. 15, evidence, holds, notices).

    Decided by the same gate as the exchange: the organisation must be a party to one of `covenants`
    (every covenant when empty) that has started and whose end plus `aftercare` has not passed.
    It never releases record contents; reading a participant is a sharing rule's (rules.yaml).
    """

    id: Identifier
    name: str
    description: str = Field(description="What the activity is, in Dutch (the documents of record)")
    description_en: str | None = Field(default=None, description=_IN_ENGLISH)
    processing_activity_id: Annotated[str, Field(pattern=r"^(https?|urn):\S+$")]
    dpv_purpose: str
    legal_basis: LegalBasis
    actions: tuple[OversightAction, ...] = Field(min_length=1)
    recipient: Recipient
    covenants: tuple[Identifier, ...] = Field(default=(), description="Empty: every covenant of the organisation")
    aftercare: Aftercare = Field(default_factory=Aftercare)

    @model_validator(mode="before")
    @classmethod
    def _no_record_contents(cls, value: object) -> object:
        if isinstance(value, dict):
            found = [k for k in _RECORD_KEYS if k in value]
            if found:
                raise ValueError(
                    f"an oversight activity never releases record contents ({', '.join(found)} given); "
                    "access to a participant's records is a sharing rule in rules.yaml"
                )
            actions = value.get("actions")
            if isinstance(actions, list | tuple):
                exchange = [a for a in actions if a in {op.value for op in Operation}]
                if exchange:
                    raise ValueError(
                        f"action {', '.join(map(str, exchange))} would release record contents; an oversight "
                        "activity may only name oversight actions (" + ", ".join(a.value for a in OversightAction) + ")"
                    )
        return value


class ConfigMeta(Strict):
    name: Identifier
    title: str
    status: str
    disclaimer: str
    disclaimer_en: str | None = Field(default=None, description=_IN_ENGLISH)
    controller_contact: str


class SourceKind(StrEnum):
    """How a source system delivers its records to the gateway."""

    HOSTED = "hosted"  # written through the exchange API into the gateway's encrypted store
    REST = "rest"  # brokered: read and written at the partner's own system, per request
    FILE = "file"  # delivered as a file (CSV) and imported into the encrypted store


class SourceAuth(StrEnum):
    """How the gateway authenticates itself to a brokered source."""

    MTLS = "mtls"
    PRIVATE_KEY_JWT = "private_key_jwt"


class SourceEndpoint(Strict):
    """Where and how a brokered source is reached (the URL may be set per deployment instead)."""

    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    auth: SourceAuth
    token_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", description="private_key_jwt only")
    timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5, description="Extra attempts of an idempotent read")
    breaker_failures: int = Field(default=5, ge=1, le=100, description="Failures in a row that open the breaker")
    breaker_reset_seconds: float = Field(default=30.0, gt=0, le=3600)


class SourceSystem(Strict):
    """A partner's source system and the categories it serves for its organisation (bronhouder)."""

    id: Identifier
    name: str
    organisation: Identifier = Field(description="The organisation that holds the records (bronhouder)")
    kind: SourceKind
    categories: tuple[Identifier, ...] = Field(min_length=1)
    covenants: tuple[Identifier, ...] = Field(
        min_length=1, description="The covenants it serves under: when all have ended the connector is paused"
    )
    endpoint: SourceEndpoint | None = None

    @model_validator(mode="after")
    def _endpoint_for_rest_only(self) -> SourceSystem:
        if self.kind is SourceKind.REST and self.endpoint is None:
            raise ValueError("a rest source needs an endpoint (auth, and base_url here or per deployment)")
        if self.kind is not SourceKind.REST and self.endpoint is not None:
            raise ValueError(f"a {self.kind.value} source has no endpoint")
        return self


class PolicyConfig(Strict):
    """The whole configuration of one deployment (one directory under `config/`)."""

    meta: ConfigMeta
    organisations: tuple[Organisation, ...]
    covenants: tuple[Covenant, ...]
    purposes: tuple[Purpose, ...]
    categories: tuple[DataCategory, ...]
    rules: tuple[SharingRule, ...]
    retention: tuple[RetentionRule, ...] = ()
    mandates: tuple[Mandate, ...] = ()
    oversight: tuple[OversightActivity, ...] = ()
    sources: tuple[SourceSystem, ...] = ()
