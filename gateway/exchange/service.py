"""Use cases of the exchange API: register, write, read, list. Framework-free; raises domain errors.

The use cases are coroutines: they await the durable audit commit without holding a thread. Their
database calls are short and synchronous (they run on the event loop), which on this hot path costs
less than a hop to a worker thread.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from gateway.clock import Clock
from gateway.connectors.port import CategoryRecord, Listed
from gateway.exchange.authorize import AuthorizedAccess, Authorizer, Denied, ListingAccess
from gateway.exchange.context import RequestContext
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.decision import AccessRequest, Reason
from gateway.policies.model import Operation
from gateway.store.records import RecordStore, encode_record

if TYPE_CHECKING:
    from gateway.connectors.port import RecordSource
    from gateway.connectors.registry import SourceRegistry


class BadRequest(Exception):
    """The request itself is malformed (not an access decision); `code` is stable."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True, slots=True)
class ReadResult:
    pseudonym: str
    access: AuthorizedAccess
    records: dict[str, CategoryRecord]


@dataclass(frozen=True, slots=True)
class WriteResult:
    pseudonym: str
    access: AuthorizedAccess
    versions: dict[str, int]


@dataclass(frozen=True, slots=True)
class ListResult:
    access: AuthorizedAccess
    items: list[Listed]


class ExchangeService:
    def __init__(
        self,
        policy: CompiledPolicy,
        authorizer: Authorizer,
        store: RecordStore,
        clock: Clock,
        sources: SourceRegistry | None = None,
    ) -> None:
        from gateway.connectors.hosted import HostedSource

        self.authorizer = authorizer
        self.store = store
        self.clock = clock
        self.hosted: RecordSource = sources.hosted if sources is not None else HostedSource(store)
        self.sources = sources

    def _split(self, categories: Iterable[str], region: str) -> dict[str | None, list[str]]:
        """Return the categories grouped by the brokered source system that holds them (None: hosted)."""
        out: dict[str | None, list[str]] = {}
        for category in categories:
            system = self.sources.system_for(category, region) if self.sources is not None else None
            out.setdefault(system.id if system is not None else None, []).append(category)
        return out

    def _brokered(self, categories: Iterable[str], region: str) -> dict[str, Any]:
        """Return the audit fields naming the source systems a request would reach (none when all hosted)."""
        split = self._split(categories, region)
        brokered = {c: sid for sid, cats in split.items() if sid is not None for c in cats}
        return {"brokered_from": dict(sorted(brokered.items()))} if brokered else {}

    async def _through_source(
        self, ctx: RequestContext, event: str, access: AuthorizedAccess, source_id: str, call: Any
    ) -> Any:
        """Run one call to a brokered source; on failure log that nothing left and re-raise."""
        from gateway.connectors.port import SourceFailed

        assert self.sources is not None
        system = next(s for s in self.policy.config.sources if s.id == source_id)
        try:
            if self.sources.paused(system, self.clock.now()):
                raise SourceFailed(source_id, "source_paused", "The connector to this source is paused.")
            return await call(self.sources.source(system))
        except SourceFailed as exc:
            exc.audit_seq = await self.authorizer.record_not_released_async(ctx, event, access, source_id, exc.code)
            raise

    @property
    def policy(self) -> CompiledPolicy:
        """Return the effective policy now (the authorizer's, with the lifecycle facts folded in)."""
        return self.authorizer.current_policy()

    async def _purpose(self, ctx: RequestContext, event: str, participant_id: str | None = None) -> str:
        """Return the declared purpose, or log the refusal and raise when it is missing or unknown."""
        purposes = self.policy.purposes
        if ctx.purpose and ctx.purpose in purposes:
            return ctx.purpose
        valid = f"Valid purposes: {', '.join(sorted(purposes))}."
        if not ctx.purpose:
            raise await self.authorizer.refuse_async(
                ctx, event, "purpose_missing", f"A purpose is required on every request. {valid}", participant_id
            )
        raise await self.authorizer.refuse_async(
            ctx, event, Reason.UNKNOWN_PURPOSE.value, f"The stated purpose is not known. {valid}", participant_id
        )

    async def require_purpose(self, ctx: RequestContext, event: str) -> str:
        """Return the declared purpose, or log the refusal and raise when it is missing or unknown."""
        return await self._purpose(ctx, event)

    def _validate_fields(self, values: dict[str, dict[str, Any]]) -> None:
        for category, fields in values.items():
            cat = self.policy.categories.get(category)
            if cat is None:
                raise BadRequest("unknown_category", f"'{category}' is not a data category.")
            names = {f.name for f in cat.fields}
            unknown = sorted(set(fields) - names)
            if unknown:
                raise BadRequest("unknown_field", f"Category '{category}' has no field(s) {', '.join(unknown)}.")
            for name, value in fields.items():
                # Encoded as the store will, before any decision is logged: a permit must not claim a
                # write that the store then cannot make.
                try:
                    encode_record({name: value})
                except orjson.JSONEncodeError:
                    raise BadRequest(
                        "unstorable_value", f"Field '{category}.{name}' holds a value that cannot be stored."
                    ) from None

    async def _resolve(self, ctx: RequestContext, event: str, pseudonym: str) -> tuple[str, str]:
        ref = self.store.resolve(ctx.principal.organisation, pseudonym)
        if ref is None:
            raise await self.authorizer.refuse_async(
                ctx,
                event,
                "unknown_participant",
                "No such participant.",
                None,
                hides_existence=True,
                requested_pseudonym=pseudonym[:40],
            )
        return ref.id, ref.region

    async def read(self, ctx: RequestContext, pseudonym: str, categories: tuple[str, ...] | None) -> ReadResult:
        """Return the participant's records the caller may see for its purpose."""
        event = "exchange.read"
        purpose = await self._purpose(ctx, event)
        if categories is not None:
            self._validate_fields({c: {} for c in categories})
        participant_id, region = await self._resolve(ctx, event, pseudonym)
        held = self.policy.lifecycle.under_hold(participant_id)
        request = AccessRequest(
            ctx.principal.organisation, ctx.role, purpose, Operation.READ, region, categories, under_legal_hold=held
        )
        access = await self.authorizer.authorize_async(
            ctx, event, request, participant_id, lambda permitted: self._brokered(permitted, region)
        )
        records: dict[str, CategoryRecord] = {}
        for source_id, cats in self._split(access.decision.fields_by_category, region).items():
            part = access.narrowed(cats)
            if source_id is None:
                records.update(await self.hosted.read(part))
            else:
                records.update(
                    await self._through_source(ctx, event, access, source_id, lambda src, part=part: src.read(part))
                )
        return ReadResult(pseudonym, access, records)

    async def register(self, ctx: RequestContext, region: str, initial: dict[str, dict[str, Any]]) -> WriteResult:
        """Register a new participant (intake) with its first records; return the caller's pseudonym."""
        event = "exchange.register"
        purpose = await self._purpose(ctx, event)
        self._validate_fields(initial)
        if not initial:
            raise BadRequest("no_records", "A registration holds at least one category.")
        participant_id = str(uuid.uuid4())
        request = AccessRequest(
            ctx.principal.organisation,
            ctx.role,
            purpose,
            Operation.REGISTER,
            region,
            tuple(initial),
            tuple((c, f) for c, values in initial.items() for f in values),
        )
        split = self._split(initial, region)
        access = await self.authorizer.authorize_async(
            ctx, event, request, participant_id, region=region, **self._brokered(initial, region)
        )
        now = self.clock.now()
        hosted = {c: initial[c] for c in split.get(None, [])}
        # The source systems first, the gateway's own store last: when a source refuses or fails, the
        # participant is not registered at all (502/504, nothing stored here), never registered without
        # the categories its sources hold. (A source's reference is the keyed pseudonym, computable
        # before the participant exists here.)
        versions: dict[str, int] = {}
        for source_id, cats in split.items():
            if source_id is not None:
                values = {c: initial[c] for c in cats}
                key = f"{participant_id}:register"
                written = await self._through_source(
                    ctx, event, access, source_id, lambda src, v=values, k=key: src.write(access, v, now, k)
                )
                versions.update(written.versions)
        self.store.register(access, region, tuple(self.policy.organisations), now, hosted)
        versions.update(dict.fromkeys(hosted, 1))
        pseudonym = self.store.pseudonym(ctx.principal.organisation, participant_id)
        return WriteResult(pseudonym, access, versions)

    async def write(
        self,
        ctx: RequestContext,
        pseudonym: str,
        category: str,
        values: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """Write a new version of one category of a participant (only its source may)."""
        event = "exchange.write"
        purpose = await self._purpose(ctx, event)
        self._validate_fields({category: values})
        if not values:
            raise BadRequest("no_fields", "A write holds at least one field.")
        participant_id, region = await self._resolve(ctx, event, pseudonym)
        request = AccessRequest(
            ctx.principal.organisation,
            ctx.role,
            purpose,
            Operation.WRITE,
            region,
            (category,),
            tuple((category, f) for f in values),
            under_legal_hold=self.policy.lifecycle.under_hold(participant_id),
        )
        brokered = self._brokered((category,), region)
        access = await self.authorizer.authorize_async(ctx, event, request, participant_id, **brokered)
        now = self.clock.now()
        # The caller's Idempotency-Key, scoped to its organisation; without one, the decision's own entry.
        # (A source system applies a key once; the hosted store writes one version per permitted write.)
        key = (
            hashlib.sha256(f"{ctx.principal.organisation}\n{idempotency_key}".encode()).hexdigest()[:40]
            if idempotency_key
            else f"audit-{access.audit_seq}"
        )
        if not brokered:
            hosted = await self.hosted.write(access, {category: values}, now, key)
            return WriteResult(pseudonym, access, hosted.versions)
        source_id = brokered["brokered_from"][category]
        written = await self._through_source(
            ctx, event, access, source_id, lambda src: src.write(access, {category: values}, now, key)
        )
        return WriteResult(pseudonym, access, written.versions)

    async def list(self, ctx: RequestContext, limit: int, after: str | None) -> ListResult:
        """Return the participants visible to the caller for its purpose (pseudonyms and region only)."""
        event = "exchange.list"
        purpose = await self._purpose(ctx, event)
        request = AccessRequest(ctx.principal.organisation, ctx.role, purpose, Operation.LIST)
        policy = self.policy
        held = policy.lifecycle.held if not policy.purposes[purpose].legal_procedure else frozenset()

        async def fetch(listing: ListingAccess) -> list[tuple[str, Listed]]:
            # A participant under a legal hold is listed for the legal procedure only.
            rows = await self.hosted.list(listing)
            if not held:
                return rows
            kept = [row for row in rows if row[0] not in held]
            while len(rows) == limit and len(kept) < limit:
                rows = await self.hosted.list(listing.next_page(rows[-1][1].pseudonym))
                kept += [row for row in rows if row[0] not in held]
            return kept[:limit]

        access, rows = await self.authorizer.authorize_listing_async(ctx, event, request, fetch, limit, after)
        return ListResult(access, [item for _, item in rows])


__all__ = ["BadRequest", "Denied", "ExchangeService", "ListResult", "ReadResult", "WriteResult"]
