"""Queries over the audit log for privacy officers: scope, filters, pages and exports.

The log is personal data too. An officer sees only the entries in her organisation's scope:
- an officer of a gemeente (the city holds regie and is joint controller for its region) sees every
  entry about a participant registered in one of its regions, entries that name one of its regions
  (registrations, listings), and every entry of its own organisation;
- an officer of any other organisation sees the entries of its own organisation only.
Participants are shown by the officer's *own* pseudonym, never by the internal id or by another
organisation's pseudonym. The log holds no record contents, so neither does anything here.

Searches run on the derived index (`gateway/audit/index.py`) for entries 1..indexed_through, with
real indexes (O(log n) to the first match), and scan the log itself only beyond that (the tail the
sealer has not indexed yet): every answer covers the whole log, whatever the index's lag. A count
adds up the index's per-block counts (`gateway/audit/counts.py`) for whole days and counts the partial
days at a window's edges through the index, in one snapshot with the tail: its cost follows the span of
time, not the number of entries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import JSONB, array

from gateway.audit import counts
from gateway.audit.index import PARTICIPANT, REGION, indexed_through, micros
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import OrganisationKind
from gateway.store.db import Database
from gateway.store.tables import audit_entries, audit_index, audit_index_counts, audit_index_terms, participants


def _terms(kind: str, values: Sequence[str]) -> Select[Any]:
    return select(audit_index_terms.c.seq).where(
        audit_index_terms.c.kind == kind, audit_index_terms.c.value.in_(values)
    )


Pseudonymise = Callable[[str, str], str]  # (organisation, participant id) -> that organisation's pseudonym


@dataclass(frozen=True, slots=True)
class Scope:
    """Which entries one organisation's privacy officer may see, and the sentence that says so."""

    organisation: str
    regions: frozenset[str]
    text: str


def scope_for(policy: CompiledPolicy, organisation: str) -> Scope:
    """Return the review scope of `organisation`'s privacy officer."""
    org = policy.organisations[organisation]
    if org.kind is OrganisationKind.GEMEENTE:
        regions = frozenset(org.regions)
        text = (
            f"Entries about participants in {', '.join(sorted(regions))} (the regions of {org.name}) "
            f"and every entry of {org.name}."
        )
        return Scope(org.id, regions, text)
    return Scope(org.id, frozenset(), f"Entries of {org.name} only.")


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """What an officer searches for; every part is optional and they combine with AND."""

    participant_id: str | None = None
    organisation: str | None = None
    purpose: str | None = None
    decision: str | None = None
    event: str | None = None
    reasons: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None  # exclusive
    no_match: bool = False  # an unknown pseudonym was asked for: nothing matches (but the query is logged)

    def describe(self) -> dict[str, Any]:
        """Return the filter as it is written into the `audit.query` entry (no pseudonyms, no contents)."""
        out: dict[str, Any] = {
            "organisation": self.organisation,
            "purpose": self.purpose,
            "decision": self.decision,
            "event": self.event,
            "reasons": list(self.reasons) or None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "participant": bool(self.participant_id) or self.no_match,
        }
        return {k: v for k, v in out.items() if v not in (None, False)}


@dataclass(frozen=True, slots=True)
class EntryView:
    """One audit entry as an officer sees it: the participant by her own pseudonym, names beside ids."""

    seq: int
    time: datetime
    event: str
    decision: str
    reason: str | None
    organisation: str | None
    organisation_name: str | None
    client_id: str | None
    acting_user: str | None
    role: str | None
    purpose: str | None
    processing_activity_id: str | None
    participant: str | None
    participants_listed: int | None
    region: str | None
    categories: tuple[str, ...]
    fields: dict[str, list[str]]
    withheld: tuple[str, ...]
    rule_ids: tuple[str, ...]
    legal_bases: tuple[str, ...]
    covenants: tuple[str, ...]
    policy_version: str | None
    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the view as JSON-ready data."""
        return {
            "seq": self.seq,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "event": self.event,
            "decision": self.decision,
            "reason": self.reason,
            "organisation": self.organisation,
            "organisation_name": self.organisation_name,
            "client_id": self.client_id,
            "acting_user": self.acting_user,
            "role": self.role,
            "purpose": self.purpose,
            "processing_activity_id": self.processing_activity_id,
            "participant": self.participant,
            "participants_listed": self.participants_listed,
            "region": self.region,
            "categories": list(self.categories),
            "fields": self.fields,
            "withheld": list(self.withheld),
            "rule_ids": list(self.rule_ids),
            "legal_bases": list(self.legal_bases),
            "covenants": list(self.covenants),
            "policy_version": self.policy_version,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
        }


CSV_COLUMNS = (
    "seq",
    "time",
    "event",
    "decision",
    "reason",
    "organisation",
    "organisation_name",
    "client_id",
    "acting_user",
    "role",
    "purpose",
    "processing_activity_id",
    "participant",
    "participants_listed",
    "region",
    "categories",
    "withheld",
    "rule_ids",
    "legal_bases",
    "covenants",
    "policy_version",
    "trace_id",
    "span_id",
    "parent_span_id",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    text = str(value)
    # Spreadsheets run cells that start like a formula; an acting user may start with + - or @.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_header() -> str:
    """Return the CSV header line."""
    return _csv_line(CSV_COLUMNS)


def csv_row(view: EntryView) -> str:
    """Return one entry as a CSV line, formula-like cells neutralised."""
    data = view.as_dict()
    return _csv_line([_cell(data[c]) for c in CSV_COLUMNS])


def json_document(head: dict[str, Any], views: Iterable[EntryView]) -> Iterator[bytes]:
    """Yield a JSON object: `head` plus an `items` array of the views, streamed in pieces."""
    yield orjson.dumps(head)[:-1] + (b',"items":[' if head else b'"items":[')
    for i, view in enumerate(views):
        yield (b"," if i else b"") + orjson.dumps(view.as_dict())
    yield b"]}"


def _csv_line(values: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Page:
    items: list[EntryView]
    next_cursor: int | None
    scope: Scope = field(repr=False)


def _column_filters(columns: Any, flt: EntryFilter) -> list[ColumnElement[bool]]:
    """Return the filter's equality tests on a table with the index's columns (the index or its counts)."""
    clauses: list[ColumnElement[bool]] = []
    for name in ("organisation", "decision", "purpose", "event"):
        value = getattr(flt, name)
        if value:
            clauses.append(getattr(columns, name) == value)
    if flt.reasons:
        clauses.append(columns.reason.in_(flt.reasons))
    return clauses


class AuditQuery:
    """Read-only queries over `audit_entries`, always within a scope."""

    def __init__(self, db: Database, policy: CompiledPolicy, pseudonymise: Pseudonymise) -> None:
        self._db = db
        self._policy = policy
        self._pseudonymise = pseudonymise

    # -- SQL building -----------------------------------------------------------------------------

    def json_text(self, key: str) -> ColumnElement[Any]:
        """Return an SQL expression for a top-level text member of the entry's canonical JSON."""
        if self._db.is_sqlite:
            return func.json_extract(audit_entries.c.entry, f"$.{key}")
        member: ColumnElement[Any] = cast(audit_entries.c.entry, JSONB)[key].astext
        return member

    def _json_array_overlaps(self, key: str, values: frozenset[str]) -> ColumnElement[bool]:
        if self._db.is_sqlite:
            items = func.json_each(audit_entries.c.entry, f"$.{key}").table_valued("value")
            return exists(select(literal(1)).select_from(items).where(items.c.value.in_(sorted(values))))
        overlaps: ColumnElement[bool] = cast(audit_entries.c.entry, JSONB)[key].has_any(array(sorted(values)))
        return overlaps

    def scope_clause(self, scope: Scope) -> ColumnElement[bool]:
        """Return the WHERE clause that keeps an officer inside her scope."""
        own = audit_entries.c.organisation == scope.organisation
        if not scope.regions:
            return own
        regions = sorted(scope.regions)
        in_region = select(participants.c.id).where(participants.c.region.in_(regions))
        return or_(
            own,
            audit_entries.c.participant_id.in_(in_region),
            self.json_text("region").in_(regions),
            self._json_array_overlaps("regions", scope.regions),
        )

    def _where(self, scope: Scope | None, flt: EntryFilter) -> list[ColumnElement[bool]]:
        """Return the clauses for `flt` within `scope` (`None`: the whole log, for the operator's CLI)."""
        if flt.no_match:
            return [false()]
        clauses = [self.scope_clause(scope)] if scope is not None else []
        if flt.participant_id:
            listed = and_(
                audit_entries.c.participant_id.is_(None),
                audit_entries.c.entry.like(f'%"{flt.participant_id}"%'),
            )
            clauses.append(or_(audit_entries.c.participant_id == flt.participant_id, listed))
        if flt.organisation:
            clauses.append(audit_entries.c.organisation == flt.organisation)
        if flt.decision:
            clauses.append(audit_entries.c.decision == flt.decision)
        if flt.purpose:
            clauses.append(self.json_text("purpose") == flt.purpose)
        if flt.event:
            clauses.append(self.json_text("event") == flt.event)
        if flt.reasons:
            clauses.append(self.json_text("reason").in_(flt.reasons))
        if flt.since:
            clauses.append(self._recorded() >= self._moment(flt.since))
        if flt.until:
            clauses.append(self._recorded() < self._moment(flt.until))
        return clauses

    def _index_parts(
        self, scope: Scope | None, flt: EntryFilter, table: Any = audit_index
    ) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
        """Return `_where` on the index as (the scope's alternatives, the other clauses): the same entries.

        Each alternative has an index on (column, seq), so the newest matches of each come in seq order
        and a page never sorts more than its own length per alternative.
        """
        i = table.c
        branches: list[ColumnElement[bool]] = []
        if scope is not None:
            branches.append(i.organisation == scope.organisation)
            if scope.regions:
                regions = sorted(scope.regions)
                branches += [
                    i.participant_region.in_(regions),
                    i.region.in_(regions),
                    i.seq.in_(_terms(REGION, regions)),
                ]
        clauses: list[ColumnElement[bool]] = [false()] if flt.no_match else []
        if flt.participant_id:
            # One participant's entries are few: they drive the search, the scope only filters them.
            listed = i.seq.in_(_terms(PARTICIPANT, [flt.participant_id]))  # only entries about no one participant
            if branches:
                clauses.append(or_(*branches))
            branches = [i.participant_id == flt.participant_id, listed]
        clauses += _column_filters(i, flt)
        if flt.since:
            clauses.append(i.at >= micros(flt.since))
        if flt.until:
            clauses.append(i.at < micros(flt.until))
        return branches, clauses

    def _index_where(
        self, scope: Scope | None, flt: EntryFilter, table: Any = audit_index
    ) -> list[ColumnElement[bool]]:
        branches, clauses = self._index_parts(scope, flt, table)
        return [or_(*branches), *clauses] if branches else clauses

    @classmethod
    def _window(cls, flt: EntryFilter) -> Any:
        """Return the index rows of the period, behind a planner fence (OFFSET 0, on SQLite and
        PostgreSQL alike): a period is searched from the time index, not from the scope's alternatives."""
        return cls._window_of(micros(flt.since) if flt.since else None, micros(flt.until) if flt.until else None)

    @staticmethod
    def _window_of(since: int | None, until: int | None) -> Any:
        bounds = []
        if since is not None:
            bounds.append(audit_index.c.at >= since)
        if until is not None:
            bounds.append(audit_index.c.at < until)
        return select(audit_index).where(*bounds).offset(0).subquery("period")

    def _indexed_seqs(
        self, scope: Scope | None, flt: EntryFilter, through: int, cursor: int | None, limit: int, newest_first: bool
    ) -> Select[Any]:
        """Return a query of the first `limit` matching seqs up to `through` and beyond `cursor`.

        A period is read from the time index (its rows sorted); otherwise each of the scope's
        alternatives gives its own first `limit` in seq order from its index, and their union is cut.
        """
        table = self._window(flt) if flt.since or flt.until else audit_index
        seq = table.c.seq
        order = seq.desc() if newest_first else seq.asc()
        bounds = [seq <= through]
        if cursor is not None:
            bounds.append(seq < cursor if newest_first else seq > cursor)
        branches, clauses = self._index_parts(scope, flt, table)
        if len(branches) <= 1 or table is not audit_index:
            where = [or_(*branches)] if branches else []
            return select(seq).where(*where, *clauses, *bounds).order_by(order).limit(limit)
        firsts = [
            select(select(seq).where(b, *clauses, *bounds).order_by(order).limit(limit).subquery().c.seq)
            for b in branches
        ]
        merged = union(*firsts).subquery()
        return select(merged.c.seq).order_by(merged.c.seq.desc() if newest_first else merged.c.seq.asc()).limit(limit)

    def _rows(
        self, scope: Scope | None, flt: EntryFilter, limit: int, cursor: int | None, newest_first: bool
    ) -> list[Any]:
        """Return up to `limit` matching (seq, recorded_at, entry) rows beyond `cursor`, in order."""
        e = audit_entries.c
        order = e.seq.desc() if newest_first else e.seq.asc()
        with self._db.read.connect() as conn:
            through = indexed_through(conn)
            tail = select(e.seq, e.recorded_at, e.entry).where(*self._where(scope, flt), e.seq > through)
            if cursor is not None:
                tail = tail.where(e.seq < cursor if newest_first else e.seq > cursor)
            rows: list[Any] = []
            for part in ("tail", "index") if newest_first else ("index", "tail"):
                wanted = limit - len(rows)
                if wanted <= 0:
                    break
                if part == "tail":
                    rows.extend(conn.execute(tail.order_by(order).limit(wanted)).all())
                    continue
                seqs = self._indexed_seqs(scope, flt, through, cursor, wanted, newest_first).subquery()
                found = select(e.seq, e.recorded_at, e.entry).where(e.seq.in_(select(seqs.c.seq))).order_by(order)
                rows.extend(conn.execute(found).all())
        return rows

    def _recorded(self) -> ColumnElement[Any]:
        # SQLite keeps times as text, and not every writer spells them alike ('... 09:00:00.000000' and
        # '... 09:00:00+00:00' both occur): compare a normalised UTC spelling, to the millisecond.
        if self._db.is_sqlite:
            return func.strftime("%Y-%m-%d %H:%M:%f", audit_entries.c.recorded_at)
        return audit_entries.c.recorded_at

    def _moment(self, moment: datetime) -> Any:
        if self._db.is_sqlite:
            utc = moment.astimezone(UTC)
            return f"{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond // 1000:03d}"
        return moment

    # -- reading ----------------------------------------------------------------------------------

    def count(self, scope: Scope | None, flt: EntryFilter) -> int:
        """Return how many entries match: the counted blocks of whole days, the index for partial days
        and filters the counts cannot answer, the log itself beyond the index; all in one snapshot."""
        with self._snapshot() as conn:
            through = indexed_through(conn)
            tail = (
                select(func.count())
                .select_from(audit_entries)
                .where(*self._where(scope, flt), audit_entries.c.seq > through)
            )
            counted = self._counted_where(scope, flt)
            if counted is None:
                indexed = self._index_count(conn, scope, flt, through, flt.since, flt.until)
            else:
                indexed = self._counted(conn, scope, flt, counted, through)
            return indexed + int(conn.execute(tail).scalar_one())

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """Yield a read connection whose statements all see one state of the database (the counts must
        cover exactly the index rows that `indexed_through` reports)."""
        with self._db.read.connect() as conn:
            if not self._db.is_sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                yield conn
                return
            conn.exec_driver_sql("BEGIN")  # a read transaction: one WAL snapshot until it ends
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")

    def _index_count(
        self,
        conn: Connection,
        scope: Scope | None,
        flt: EntryFilter,
        through: int,
        since: datetime | int | None,
        until: datetime | int | None,
    ) -> int:
        """Return how many index rows up to `through` match `flt` in [since, until) (moments or micros)."""
        flt = replace(flt, since=None, until=None)
        if since is not None or until is not None:
            table = self._window_of(
                micros(since) if isinstance(since, datetime) else since,
                micros(until) if isinstance(until, datetime) else until,
            )
        else:
            table = audit_index
        where = self._index_where(scope, flt, table)
        query = select(func.count()).select_from(table).where(*where, table.c.seq <= through)
        return int(conn.execute(query).scalar_one())

    @staticmethod
    def _counted_where(scope: Scope | None, flt: EntryFilter) -> ColumnElement[bool] | None:
        """Return `_index_where` on `audit_index_counts` (time aside), or None when the counts cannot answer
        it (a participant: the indexed path is selective anyway)."""
        if flt.participant_id or flt.no_match:
            return None
        c = audit_index_counts.c
        clauses: list[ColumnElement[bool]] = [c.sig != counts.OVERFLOW]
        if scope is not None:
            branches = [c.organisation == scope.organisation]
            if scope.regions:
                regions = sorted(scope.regions)
                branches += [c.participant_region.in_(regions), c.region.in_(regions)]
                branches += [c.regions.contains(counts.region_needle(r)) for r in regions]
            clauses.append(or_(*branches))
        clauses += _column_filters(c, flt)
        return and_(*clauses)

    def _counted(
        self, conn: Connection, scope: Scope | None, flt: EntryFilter, where: ColumnElement[bool], through: int
    ) -> int:
        """Return how many indexed entries match: whole days from the counts, partial days from the index."""
        c = audit_index_counts.c
        since = micros(flt.since) if flt.since else None
        until = micros(flt.until) if flt.until else None
        if since is not None and until is not None and since >= until:
            return 0
        first = -(-since // counts.DAY) if since is not None else None
        end = until // counts.DAY if until is not None else None
        if first is None or end is None:
            low, high = conn.execute(select(func.min(c.block), func.max(c.block)).where(c.level == 0)).one()
            if low is None:
                return 0  # nothing indexed (the counts hold what the index holds, in this snapshot)
            first = int(low) if first is None else first
            end = int(high) + 1 if end is None else end
        if first >= end:
            return self._index_count(conn, scope, flt, through, since, until)
        total = 0
        exact: list[tuple[int | None, int | None]] = []
        if since is not None and since < first * counts.DAY:
            exact.append((since, first * counts.DAY))
        if until is not None and end * counts.DAY < until:
            exact.append((end * counts.DAY, until))
        pending = counts.decompose(first, end)
        while pending:
            spans = [and_(c.level == lv, c.block >= a, c.block < b) for lv, a, b in counts.runs(pending)]
            found = conn.execute(
                select(
                    c.level,
                    c.block,
                    func.max(case((c.sig == counts.OVERFLOW, 1), else_=0)),
                    func.sum(case((where, c.n), else_=0)),
                )
                .where(or_(*spans))
                .group_by(c.level, c.block)
            )
            pending = []
            for level, block, overflowed, matched in found:
                if not overflowed:
                    total += int(matched)
                elif level:
                    pending += counts.parts((int(level), int(block)))
                else:
                    exact.append((int(block) * counts.DAY, (int(block) + 1) * counts.DAY))
        for low_at, high_at in exact:
            total += self._index_count(conn, scope, flt, through, low_at, high_at)
        return total

    def page(self, scope: Scope, flt: EntryFilter, limit: int, cursor: int | None = None) -> Page:
        """Return up to `limit` matching entries, newest first, starting below `cursor` (a seq)."""
        rows = self._rows(scope, flt, limit + 1, cursor, newest_first=True)
        items = [self.view(scope, r.seq, r.recorded_at, r.entry) for r in rows[:limit]]
        next_cursor = items[-1].seq if len(rows) > limit and items else None
        return Page(items, next_cursor, scope)

    def iterate(
        self, scope: Scope, flt: EntryFilter, batch: int = 1000, newest_first: bool = True
    ) -> Iterator[EntryView]:
        """Yield every matching entry in batches (for exports)."""
        for seq, recorded_at, entry in self.iterate_raw(scope, flt, batch, newest_first):
            yield self.view(scope, seq, recorded_at, entry)

    def iterate_raw(
        self, scope: Scope | None, flt: EntryFilter, batch: int = 1000, newest_first: bool = False
    ) -> Iterator[tuple[int, datetime, dict[str, Any]]]:
        """Yield (seq, recorded_at, entry) of matching entries; `scope=None` is the whole log (operator)."""
        cursor: int | None = None
        while True:
            rows = self._rows(scope, flt, batch, cursor, newest_first)
            if not rows:
                return
            for row in rows:
                yield int(row.seq), row.recorded_at, orjson.loads(row.entry)
            cursor = int(rows[-1].seq)

    def view(self, scope: Scope, seq: int, recorded_at: datetime, entry: str | dict[str, Any]) -> EntryView:
        """Return the officer's view of one stored entry."""
        data: dict[str, Any] = orjson.loads(entry) if isinstance(entry, str) else entry
        org_id = data.get("organisation")
        org = self._policy.organisations.get(org_id) if org_id else None
        participant = data.get("participant")
        listed = data.get("participants")
        return EntryView(
            seq=seq,
            time=recorded_at,
            event=str(data.get("event", "")),
            decision=str(data.get("decision", "")),
            reason=data.get("reason"),
            organisation=org_id,
            organisation_name=org.name if org else None,
            client_id=data.get("client_id"),
            acting_user=data.get("acting_user"),
            role=data.get("role"),
            purpose=data.get("purpose"),
            processing_activity_id=data.get("processing_activity_id"),
            participant=self._pseudonymise(scope.organisation, participant) if participant else None,
            participants_listed=len(listed) if isinstance(listed, list) else None,
            region=data.get("region"),
            categories=tuple(data.get("categories") or ()),
            fields={str(k): list(v) for k, v in (data.get("fields") or {}).items()},
            withheld=tuple(data.get("withheld") or ()),
            rule_ids=tuple(data.get("rule_ids") or ()),
            legal_bases=tuple(data.get("legal_bases") or ()),
            covenants=tuple(data.get("covenants") or ()),
            policy_version=data.get("policy_version"),
            trace_id=data.get("trace_id"),
            span_id=data.get("span_id"),
            parent_span_id=data.get("parent_span_id"),
        )
