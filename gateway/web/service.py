"""Privacy-officer review: the one service behind the officer API and the officer pages (framework-free).

Every call is role-bound and logged: only the acting role `privacy_officer` of an organisation that
has that role may read the log; a refusal is itself an audit entry (and answers 403). A permitted
read is written to the log as `audit.query` or `audit.subject_access` and durably committed before
anything is returned (no log, no data). The purpose of these requests is fixed by what they are:
`audit_review` (accountability, GDPR art. 5(2)) or `subject_access_request` (art. 15).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from gateway.audit.anomalies import Anomaly, Thresholds, detect
from gateway.audit.index import progress as index_progress
from gateway.audit.ldv import SubjectIdCipher, ldv_lines
from gateway.audit.query import AuditQuery, EntryFilter, EntryView, Page, Scope, scope_for
from gateway.audit.report import ReportBuilder, SubjectAccessReport
from gateway.audit.status import latest_checkpoint_size, log_status
from gateway.container import Container
from gateway.crypto.keys import LDV_SUBJECT_FILE, load_secret_file
from gateway.exchange.authorize import OversightGrant
from gateway.exchange.context import RequestContext
from gateway.i18n import N_
from gateway.policies.model import OversightAction
from gateway.store.subject_index import given_kinds

OFFICER_ROLE = "privacy_officer"  # the role the sign-in form suggests; who may is oversight.yaml's
QUERY_EVENT = "audit.query"
SUBJECT_ACCESS_EVENT = "audit.subject_access"
LOGIN_EVENT = "audit.login"
STATUS_EVENT = "audit.status"
LOOKUP_EVENT = "audit.subject_lookup"
PERMIT_REASON = "privacy_officer_review"
T = TypeVar("T")


class LookupUnavailable(Exception):
    """The blind index has no key (subject-lookup.key is missing from the key dir): nothing can be matched."""


class NotFound(Exception):
    """The officer named a participant her organisation does not know (the refusal is logged)."""

    def __init__(self, audit_seq: int) -> None:
        super().__init__("No such participant.")
        self.audit_seq = audit_seq


@dataclass(frozen=True, slots=True)
class Criteria:
    """A search as the officer states it: the participant by her own organisation's pseudonym."""

    participant: str | None = None
    organisation: str | None = None
    purpose: str | None = None
    decision: str | None = None
    event: str | None = None
    reasons: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reviewed(Generic[T]):
    """What an officer asked for, the scope it was cut to, and the audit entry that records the access."""

    value: T
    audit_seq: int
    scope: Scope
    count: int = 0


@dataclass(frozen=True, slots=True)
class LogStatusView:
    """The log's verification status in words, for every page and the API."""

    ok: bool
    headline: str
    detail: str
    entries: int
    checked_at: datetime
    checkpoint_size: int | None = None
    checkpoint_at: datetime | None = None
    indexed_through: int = 0  # the search index holds entries 1..this; searches scan the log beyond it

    def as_dict(self) -> dict[str, object]:
        return {
            "verified": self.ok,
            "headline": self.headline,
            "detail": self.detail,
            "entries": self.entries,
            "checked_at": self.checked_at.isoformat().replace("+00:00", "Z"),
            "indexed_through": self.indexed_through,
        }


class OfficerService:
    def __init__(self, container: Container) -> None:
        self._c = container
        self._authorizer = container.exchange.authorizer
        self.policy = container.policy
        self.clock = container.clock
        self.settings = container.settings
        self.query = AuditQuery(container.db, container.policy, container.store.pseudonym)
        self.reports = ReportBuilder(container.db, container.policy, self.query)
        self._cipher: SubjectIdCipher | None = None
        self._status: tuple[float, LogStatusView] | None = None
        self._status_lock = threading.Lock()

    # -- guard ------------------------------------------------------------------------------------

    def authorise(
        self, ctx: RequestContext, event: str, action: OversightAction = OversightAction.AUDIT_REVIEW
    ) -> tuple[OversightGrant, Scope]:
        """Return the gate's grant and the scope; the gate logs and raises Denied for anyone it refuses."""
        grant = self._authorizer.oversee(ctx, event, action)
        return grant, scope_for(self.policy, grant.organisation)

    def sign_in(self, ctx: RequestContext) -> int:
        """Record that a privacy officer opened a review session (refused and logged for anyone else)."""
        grant, _scope = self.authorise(ctx, LOGIN_EVENT)
        return self._authorizer.record(grant, LOGIN_EVENT, "session_started")

    def _filter(self, scope: Scope, criteria: Criteria) -> tuple[EntryFilter, str | None]:
        participant_id = None
        if criteria.participant:
            ref = self._c.store.resolve(scope.organisation, criteria.participant.strip())
            if ref is None:
                return EntryFilter(no_match=True), None
            participant_id = ref.id
        flt = EntryFilter(
            participant_id=participant_id,
            organisation=criteria.organisation or None,
            purpose=criteria.purpose or None,
            decision=criteria.decision or None,
            event=criteria.event or None,
            reasons=criteria.reasons,
            since=criteria.since,
            until=criteria.until,
        )
        return flt, participant_id

    def _log(self, grant: OversightGrant, event: str, participant_id: str | None, **fields: object) -> int:
        return self._authorizer.record(grant, event, PERMIT_REASON, participant_id, **fields)

    # -- reads ------------------------------------------------------------------------------------

    def search(
        self, ctx: RequestContext, criteria: Criteria, limit: int = 50, cursor: int | None = None, view: str = "search"
    ) -> Reviewed[Page]:
        """Return one page of entries in scope; the query is logged before the page is returned."""
        grant, scope = self.authorise(ctx, QUERY_EVENT)
        flt, participant_id = self._filter(scope, criteria)
        page = self.query.page(scope, flt, limit, cursor)
        seq = self._log(
            grant, QUERY_EVENT, participant_id, view=view, query=flt.describe(), cursor=cursor, results=len(page.items)
        )
        return Reviewed(page, seq, scope, len(page.items))

    def export(self, ctx: RequestContext, criteria: Criteria, fmt: str) -> Reviewed[Iterator[EntryView]]:
        """Return every entry in scope that matches, for CSV or JSON export (count logged first)."""
        grant, scope = self.authorise(ctx, QUERY_EVENT)
        flt, participant_id = self._filter(scope, criteria)
        count = self.query.count(scope, flt)
        seq = self._log(
            grant, QUERY_EVENT, participant_id, view="export", format=fmt, query=flt.describe(), results=count
        )
        return Reviewed(self.query.iterate(scope, flt), seq, scope, count)

    def default_period(self, days: int = 7) -> tuple[datetime, datetime]:
        """Return the last `days` days up to now (the clock's now, plus a second so now is included)."""
        now = self.clock.now()
        return now - timedelta(days=days), now + timedelta(seconds=1)

    def thresholds(self) -> Thresholds:
        s = self.settings
        return Thresholds(
            burst_count=s.anomaly_denial_burst_count,
            burst_window_seconds=s.anomaly_denial_burst_window_seconds,
            volume_factor=s.anomaly_volume_factor,
            volume_min_requests=s.anomaly_volume_min_requests,
            baseline_days=s.anomaly_volume_baseline_days,
            timezone=s.officer_timezone,
        )

    def anomalies(self, ctx: RequestContext, since: datetime, until: datetime) -> Reviewed[list[Anomaly]]:
        """Return the anomalies in scope for [since, until); logged before they are returned."""
        grant, scope = self.authorise(ctx, QUERY_EVENT)
        t = self.thresholds()
        rows = self.query.iterate_raw(scope, EntryFilter(since=since - timedelta(days=t.baseline_days), until=until))
        found = detect(rows, since, until, t)
        period = EntryFilter(since=since, until=until).describe()
        seq = self._log(grant, QUERY_EVENT, None, view="anomalies", query=period, results=len(found))
        return Reviewed(found, seq, scope, len(found))

    def subject_access(self, ctx: RequestContext, pseudonym: str, fmt: str) -> Reviewed[SubjectAccessReport]:
        """Return the art. 15 report for the participant the officer's organisation knows as `pseudonym`."""
        grant, scope = self.authorise(ctx, SUBJECT_ACCESS_EVENT, OversightAction.SUBJECT_ACCESS)
        ref = self._c.store.resolve(scope.organisation, pseudonym.strip())
        if ref is None or ref.region not in self.policy.organisations[scope.organisation].regions:
            # Every organisation holds a pseudonym for every participant: one outside its regions is
            # refused (and logged) exactly as an unknown one, so the answer cannot tell that it exists.
            denied = self._authorizer.refuse_within(
                grant, SUBJECT_ACCESS_EVENT, "unknown_participant", "No such participant.", None, hides_existence=True
            )
            raise NotFound(denied.audit_seq)
        report = self.reports.build(scope, ref.id, ref.region, pseudonym.strip(), self.clock.now())
        seq = self._log(
            grant,
            SUBJECT_ACCESS_EVENT,
            ref.id,
            format=fmt,
            complete=report.complete,
            disclosures=len(report.disclosures),
        )
        return Reviewed(report.with_seq(seq), seq, scope, len(report.disclosures))

    def find_subject(self, ctx: RequestContext, given: Mapping[str, str]) -> Reviewed[list[str]]:
        """Return the officer's pseudonyms of the participants an access request's identifiers match.

        The identifiers (a V-number; family name and date of birth) are matched inside the gateway against
        the blind index; only participants in the regions of the officer's organisation can match, so one
        outside them looks exactly like no match. The lookup is its own audit entry (which kinds of
        identifier were given and how many matched, never their values), written before the answer.
        """
        index = self._c.store.subject_index
        if index is None:  # say so, rather than answer "no match" for everyone
            raise LookupUnavailable("subject-lookup.key is missing from the key dir; run `gateway keys init`")
        grant, scope = self.authorise(ctx, LOOKUP_EVENT, OversightAction.SUBJECT_ACCESS)
        kinds = given_kinds(given)
        found: list[str] = []
        if kinds:
            regions = self.policy.organisations[scope.organisation].regions
            with self._c.db.read.connect() as conn:
                found = index.find(conn, given, scope.organisation, regions)
        ref = self._c.store.resolve(scope.organisation, found[0]) if len(found) == 1 else None
        seq = self._log(
            grant, LOOKUP_EVENT, ref.id if ref else None, view="subject_lookup", given=kinds, results=len(found)
        )
        return Reviewed(found, seq, scope, len(found))

    def ldv(self, ctx: RequestContext, since: datetime | None, until: datetime | None) -> Reviewed[Iterator[bytes]]:
        """Return the LDV export (JSON lines) of the entries in scope; logged before the first line."""
        grant, scope = self.authorise(ctx, QUERY_EVENT)
        flt = EntryFilter(since=since, until=until)
        count = self.query.count(scope, flt)
        seq = self._log(grant, QUERY_EVENT, None, view="ldv", format="ldv-jsonl", query=flt.describe(), results=count)
        return Reviewed(ldv_lines(self.query, scope, flt, self.cipher(), self.policy), seq, scope, count)

    def cipher(self) -> SubjectIdCipher:
        """Return the LDV subject-id cipher (key loaded from the key dir once)."""
        if self._cipher is None:
            self._cipher = SubjectIdCipher(load_secret_file(self.settings.key_dir, LDV_SUBJECT_FILE, 64))
        return self._cipher

    # -- status -----------------------------------------------------------------------------------

    def status_for(self, ctx: RequestContext) -> LogStatusView:
        """Return the log's status to a privacy officer the gate permits; the look is logged first."""
        grant, _scope = self.authorise(ctx, STATUS_EVENT)
        self._log(grant, STATUS_EVENT, None, view="status")
        return self.status()

    def status(self) -> LogStatusView:
        """Return the log's verification status, recomputed when a newer checkpoint is signed and at least every
        `officer_status_cache_seconds`."""
        with self._status_lock:
            now = time.monotonic()
            if (
                self._status
                and now - self._status[0] < self.settings.officer_status_cache_seconds
                and latest_checkpoint_size(self._c.db) == self._status[1].checkpoint_size
            ):
                return self._status[1]
            view = self._compute_status()
            self._status = (now, view)
            return view

    def _compute_status(self) -> LogStatusView:
        return replace(self._verify_status(), indexed_through=index_progress(self._c.db).indexed_through)

    def _verify_status(self) -> LogStatusView:
        status = log_status(self._c.db)
        checked = self.clock.now()
        cp = status.checkpoint
        if not status.verified:
            where = f" (first bad entry: {status.first_bad_seq})" if status.first_bad_seq else ""
            return LogStatusView(
                False,
                N_("Log verification FAILED"),
                f"{status.problem or 'unknown problem'}{where}. Treat this as a security incident.",
                status.entries,
                checked,
            )
        if cp is None:
            detail = f"{status.entries} entries; hash chain intact. No signed checkpoint yet."
        else:
            detail = (
                f"{status.entries} entries; hash chain intact; signed checkpoint of {cp.size} entries "
                f"(signed {cp.time.isoformat(timespec='seconds').replace('+00:00', 'Z')}) verifies."
            )
        return LogStatusView(
            True,
            N_("Log verified"),
            detail,
            status.entries,
            checked,
            cp.size if cp else None,
            cp.time if cp else None,
        )
