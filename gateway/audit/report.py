"""The subject access report (GDPR art. 15) for one participant, built from the audit log and the config.

It answers: which organisations received which categories, for which purpose, on which legal basis
and when (art. 15(1)(a)-(c)); how long each category is kept and on which legal source (15(1)(d));
where the data came from (15(1)(g)). Recipients are named by organisation name; the participant is
referred to by the issuing organisation's own pseudonym only. The log holds no record contents, and
the report reads only record metadata (category, source, time), never a record.

Scope: the issuing officer's scope (see `query.py`). When the participant lives in one of the
officer's regions (a gemeente answering for its LVV participants) the report covers every
organisation; otherwise it covers the officer's own organisation only, and says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from gateway.audit.query import AuditQuery, EntryFilter, Scope
from gateway.i18n import N_
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import RetentionRule, Sensitivity
from gateway.store.db import Database
from gateway.store.tables import records

RECEIVING_EVENTS = ("exchange.read", "exchange.list")
SOURCE_EVENTS = ("exchange.register", "exchange.write")
_TRIGGER_TEXT = {
    "covenant_end": N_("after the covenant ends"),
    "case_closed": N_("after the case is closed"),
    "decision_final": N_("after the decision is final"),
    "provision_end": N_("after the provision ends"),
    "recorded": N_("after it was recorded"),
}
_TRIGGER_WHEN = {
    "covenant_end": N_("when the covenant ends"),
    "case_closed": N_("when the case is closed"),
    "decision_final": N_("when the decision is final"),
    "provision_end": N_("when the provision ends"),
    "recorded": N_("when it was recorded"),
}
# Dutch counts like English (one, other), so the singular and plural are two plain messages.
_UNITS = {
    "Y": (N_("year"), N_("years")),
    "M": (N_("month"), N_("months")),
    "W": (N_("week"), N_("weeks")),
    "D": (N_("day"), N_("days")),
}
_KIND_TEXT = {
    "gemeente": N_("the municipality (gemeente) of the participant's region"),
    "rijkspartner": N_("a national agency (rijkspartner) party to the covenant"),
    "ngo": N_("an NGO party to the covenant"),
}
AUDIT_LOG_NAME = N_("Log of disclosures (audit log)")
NO_RULE = N_("no retention rule configured")
ARCHIVE = N_("kept permanently (archive)")
DESTROYED = N_("destroyed {period} {trigger}")
DESTROYED_WHEN = N_("destroyed {trigger}")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class LegalBasisRef:
    term: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"term": self.term, "text": self.text}


@dataclass(frozen=True, slots=True)
class CategoryRef:
    id: str
    name: str
    fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "fields": list(self.fields)}


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One release to one organisation, as the log records it."""

    time: datetime
    organisation: str
    organisation_name: str
    operation: str  # read: categories released; list: only the participant's pseudonym and region
    purpose: str
    purpose_name: str
    processing_activity_id: str | None
    categories: tuple[CategoryRef, ...]
    legal_bases: tuple[LegalBasisRef, ...]
    audit_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": _iso(self.time),
            "organisation": self.organisation,
            "organisation_name": self.organisation_name,
            "operation": self.operation,
            "purpose": self.purpose,
            "purpose_name": self.purpose_name,
            "processing_activity_id": self.processing_activity_id,
            "categories": [c.as_dict() for c in self.categories],
            "legal_bases": [b.as_dict() for b in self.legal_bases],
            "audit_seq": self.audit_seq,
        }


@dataclass(frozen=True, slots=True)
class RecipientSummary:
    """All disclosures to one organisation for one purpose, folded together."""

    organisation_name: str
    purpose_name: str
    categories: tuple[str, ...]
    legal_bases: tuple[LegalBasisRef, ...]
    count: int
    first: datetime
    last: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "organisation_name": self.organisation_name,
            "purpose_name": self.purpose_name,
            "categories": list(self.categories),
            "legal_bases": [b.as_dict() for b in self.legal_bases],
            "count": self.count,
            "first": _iso(self.first),
            "last": _iso(self.last),
        }


@dataclass(frozen=True, slots=True)
class RetentionLine:
    applies_to: str
    name: str
    period: str  # human: "6 months after the covenant ends", "kept permanently (archive)"
    duration: str | None  # ISO-8601
    action: str
    legal_source: str
    suggestion: bool
    note: str | None
    trigger: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "applies_to": self.applies_to,
            "name": self.name,
            "period": self.period,
            "duration": self.duration,
            "action": self.action,
            "legal_source": self.legal_source,
            "suggestion": self.suggestion,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class SourceLine:
    category: str
    name: str
    sources_by_config: tuple[str, ...]
    provided_by: tuple[str, ...]  # organisation names that actually wrote it, from the log or records
    last_written: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "name": self.name,
            "sources_by_config": list(self.sources_by_config),
            "provided_by": list(self.provided_by),
            "last_written": _iso(self.last_written) if self.last_written else None,
        }


@dataclass(frozen=True, slots=True)
class SubjectAccessReport:
    reference: str
    issued_by: str
    issued_by_name: str
    generated_at: datetime
    complete: bool
    scope_text: str
    policy_version: str
    controller_contact: str
    summary: tuple[RecipientSummary, ...]
    disclosures: tuple[Disclosure, ...]
    retention: tuple[RetentionLine, ...]
    sources: tuple[SourceLine, ...]
    audit_seq: int | None = None
    disclaimer: str = field(default="")

    def with_seq(self, seq: int) -> SubjectAccessReport:
        """Return the report stamped with the seq of the audit entry that records its issue."""
        return replace(self, audit_seq=seq)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (the same facts as the HTML and PDF)."""
        return {
            "report": "GDPR art. 15 subject access report",
            "participant_reference": self.reference,
            "issued_by": {"organisation": self.issued_by, "name": self.issued_by_name},
            "generated_at": _iso(self.generated_at),
            "complete": self.complete,
            "scope": self.scope_text,
            "policy_version": self.policy_version,
            "controller_contact": self.controller_contact,
            "recipients": [s.as_dict() for s in self.summary],
            "disclosures": [d.as_dict() for d in self.disclosures],
            "retention": [r.as_dict() for r in self.retention],
            "sources": [s.as_dict() for s in self.sources],
            "audit_seq": self.audit_seq,
            "disclaimer": self.disclaimer,
        }


def describe_retention(
    action: str,
    duration: str | None,
    trigger: str | None,
    gettext: Callable[[str], str] = str,
) -> str:
    """Return a retention period in words ('destroyed 6 months after the covenant ends'), in gettext's language."""
    if action == "archive" or duration is None:
        return gettext(ARCHIVE)
    key = trigger or ""
    parts = []
    for amount, unit in re.findall(r"(\d+)([YMWD])", duration):
        n = int(amount)
        if n:
            singular, plural = _UNITS[unit]
            parts.append(f"{n} {gettext(singular if n == 1 else plural)}")
    if not parts:
        when = gettext(_TRIGGER_WHEN[key]) if key in _TRIGGER_WHEN else f"when {key}"
        return gettext(DESTROYED_WHEN).format(trigger=when)
    after = gettext(_TRIGGER_TEXT[key]) if key in _TRIGGER_TEXT else f"after {key}"
    return gettext(DESTROYED).format(period=" ".join(parts), trigger=after)


def describe_period(rule: RetentionRule) -> str:
    """Return a retention rule's period in words, e.g. '6 months after the covenant ends'."""
    return describe_retention(rule.action, rule.duration, rule.trigger.value)


class ReportBuilder:
    """Builds the art. 15 report from the log (within a scope) and the configuration."""

    def __init__(self, db: Database, policy: CompiledPolicy, query: AuditQuery) -> None:
        self._db = db
        self._policy = policy
        self._query = query

    def _org_name(self, org_id: str) -> str:
        org = self._policy.organisations.get(org_id)
        return org.name if org else org_id

    def _category(self, cat_id: str, fields: Iterable[str] = ()) -> CategoryRef:
        cat = self._policy.categories.get(cat_id)
        return CategoryRef(cat_id, cat.name if cat else cat_id, tuple(fields))

    def _legal_bases(self, entry: dict[str, Any]) -> tuple[LegalBasisRef, ...]:
        """Return the bases of the rules that granted the released categories, art. 9/10 conditions too."""
        rule_ids = set(entry.get("rule_ids") or ())
        categories = set(entry.get("categories") or ())
        out: dict[str, LegalBasisRef] = {}
        purpose = self._policy.purposes.get(str(entry.get("purpose")))
        for rule in self._policy.config.rules:
            if rule.id in rule_ids and (not categories or any(g.category in categories for g in rule.grants)):
                out.setdefault(rule.legal_basis.dpv, LegalBasisRef(rule.legal_basis.dpv, rule.legal_basis.text))
        if purpose is not None:
            for cat_id in categories:
                cat = self._policy.categories.get(cat_id)
                condition = None
                if cat is not None and cat.sensitivity is Sensitivity.SPECIAL:
                    condition = purpose.art9_condition
                elif cat is not None and cat.sensitivity is Sensitivity.CRIMINAL:
                    condition = purpose.art10_condition
                if condition is not None:
                    out.setdefault(condition.dpv, LegalBasisRef(condition.dpv, condition.text))
        for term in entry.get("legal_bases") or ():  # a rule changed since: keep the logged term
            out.setdefault(term, LegalBasisRef(term, "(rule no longer in the configuration; term as logged)"))
        return tuple(out.values())

    def build(
        self, scope: Scope, participant_id: str, region: str, reference: str, now: datetime
    ) -> SubjectAccessReport:
        """Return the report for one participant within `scope` (not yet stamped with its audit seq)."""
        complete = region in scope.regions
        disclosures: list[Disclosure] = []
        provided: dict[str, dict[str, datetime]] = {}
        entries = self._query.iterate_raw(scope, EntryFilter(participant_id=participant_id, decision="permit"))
        for seq, moment, entry in entries:
            event = entry.get("event")
            if event in RECEIVING_EVENTS and participant_id in (
                entry.get("participant"),
                *(entry.get("participants") or ()),
            ):
                org = str(entry.get("organisation"))
                purpose_id = str(entry.get("purpose"))
                purpose = self._policy.purposes.get(purpose_id)
                fields = entry.get("fields") or {}
                disclosures.append(
                    Disclosure(
                        time=moment,
                        organisation=org,
                        organisation_name=self._org_name(org),
                        operation="list" if event == "exchange.list" else "read",
                        purpose=purpose_id,
                        purpose_name=purpose.name if purpose else purpose_id,
                        processing_activity_id=entry.get("processing_activity_id"),
                        categories=tuple(self._category(c, fields.get(c, ())) for c in entry.get("categories") or ())
                        if event == "exchange.read"
                        else (),
                        legal_bases=self._legal_bases(entry),
                        audit_seq=seq,
                    )
                )
            elif event in SOURCE_EVENTS and entry.get("participant") == participant_id:
                for cat in entry.get("categories") or ():
                    seen = provided.setdefault(cat, {})
                    org = str(entry.get("organisation"))
                    seen[org] = max(seen.get(org, moment), moment)
        if complete:
            self._add_record_sources(participant_id, provided)
        categories = sorted(
            {c.id for d in disclosures for c in d.categories} | set(provided),
            key=lambda c: list(self._policy.categories).index(c) if c in self._policy.categories else 999,
        )
        meta = self._policy.config.meta
        issuer = self._policy.organisations[scope.organisation]
        scope_text = (
            "This report covers every organisation that received data about you through the gateway."
            if complete
            else f"This report covers the processing by {issuer.name} only; the municipality of your region "
            "answers for the exchange as a whole."
        )
        return SubjectAccessReport(
            reference=reference,
            issued_by=issuer.id,
            issued_by_name=issuer.name,
            generated_at=now,
            complete=complete,
            scope_text=scope_text,
            policy_version=self._policy.version,
            controller_contact=meta.controller_contact,
            summary=self._summarise(disclosures),
            disclosures=tuple(sorted(disclosures, key=lambda d: d.time)),
            retention=self._retention(categories),
            sources=self._sources(categories, provided),
            disclaimer=meta.disclaimer,
        )

    def _add_record_sources(self, participant_id: str, provided: dict[str, dict[str, datetime]]) -> None:
        # Metadata only: which organisation wrote which category when. The ciphertext is never read.
        query = (
            select(records.c.category, records.c.source_organisation, func.max(records.c.written_at).label("at"))
            .where(records.c.participant_id == participant_id)
            .group_by(records.c.category, records.c.source_organisation)
        )
        with self._db.read.connect() as conn:
            for row in conn.execute(query):
                seen = provided.setdefault(row.category, {})
                at: datetime = row.at
                seen[row.source_organisation] = max(seen.get(row.source_organisation, at), at)

    def _summarise(self, disclosures: list[Disclosure]) -> tuple[RecipientSummary, ...]:
        groups: dict[tuple[str, str], list[Disclosure]] = {}
        for d in disclosures:
            groups.setdefault((d.organisation_name, d.purpose_name), []).append(d)
        out = []
        for (org_name, purpose_name), items in sorted(groups.items()):
            categories = tuple(dict.fromkeys(c.name for d in items for c in d.categories)) or (
                "(listed: pseudonym and region only)",
            )
            bases = tuple({b.term: b for d in items for b in d.legal_bases}.values())
            times = [d.time for d in items]
            out.append(RecipientSummary(org_name, purpose_name, categories, bases, len(items), min(times), max(times)))
        return tuple(out)

    def _retention(self, categories: list[str]) -> tuple[RetentionLine, ...]:
        rules = {r.applies_to: r for r in self._policy.config.retention}
        out = []
        for cat_id in [*categories, "audit_log"]:
            rule = rules.get(cat_id)
            name = self._category(cat_id).name if cat_id != "audit_log" else AUDIT_LOG_NAME
            if rule is None:
                out.append(RetentionLine(cat_id, name, NO_RULE, None, "", "", False, None))
                continue
            out.append(
                RetentionLine(
                    cat_id,
                    name,
                    describe_period(rule),
                    rule.duration,
                    rule.action,
                    rule.legal_source,
                    rule.suggestion,
                    rule.note,
                    rule.trigger.value,
                )
            )
        return tuple(out)

    def _sources(self, categories: list[str], provided: dict[str, dict[str, datetime]]) -> tuple[SourceLine, ...]:
        out = []
        for cat_id in categories:
            cat = self._policy.categories.get(cat_id)
            configured = tuple(_KIND_TEXT.get(s) or self._org_name(s) for s in (cat.sources if cat is not None else ()))
            by = provided.get(cat_id, {})
            out.append(
                SourceLine(
                    cat_id,
                    self._category(cat_id).name,
                    configured,
                    tuple(sorted(self._org_name(o) for o in by)),
                    max(by.values()) if by else None,
                )
            )
        return tuple(out)
