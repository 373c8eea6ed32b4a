"""The record source port takes only what the gate mints: every adapter refuses anything else, and the
in-memory adapter behaves as the port says (cut to the permitted fields, idempotent writes, listings)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

import httpx
import pytest

from gateway.audit.writer import Appended
from gateway.clock import FixedClock
from gateway.connectors.client_auth import MutualTls
from gateway.connectors.hosted import HostedSource
from gateway.connectors.memory import MemorySource
from gateway.connectors.port import CategoryRecord, RecordSource
from gateway.connectors.rest import RestSource
from gateway.exchange.authorize import AuthorizedAccess, Authorizer, ImportGrant, ListingAccess
from gateway.exchange.context import Principal, RequestContext, TraceContext
from gateway.policies.compiled import compile_policy
from gateway.policies.decision import AccessRequest
from gateway.policies.loader import load_config
from gateway.policies.model import Operation
from tests.conftest import IN_FORCE, LVV_CONFIG

POLICY = compile_policy(load_config(LVV_CONFIG))
PID = "00000000-0000-4000-8000-000000000001"


class CountingAudit:
    """Stands in for the audit writer: every append is 'committed' with the next seq."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any], now: datetime, timeout: float) -> Appended:
        self.entries.append(entry)
        return Appended(len(self.entries), b"")

    async def append_async(self, entry: dict[str, Any], now: datetime, timeout: float) -> Appended:
        return self.append(entry, now, timeout)


class Untouchable:
    """A store or client that fails the test when an adapter reaches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the adapter reached its backend ({name}) without a minted access")


def authorizer() -> Authorizer:
    return Authorizer(POLICY, CountingAudit(), FixedClock(IN_FORCE))  # type: ignore[arg-type]


def ctx(org: str = "amsterdam", role: str = "case_manager", purpose: str = "lso_case_discussion") -> RequestContext:
    return RequestContext(Principal(org, "client", "t", 0), "tester.1", role, purpose, TraceContext.from_header(None))


def minted(operation: Operation = Operation.READ) -> AuthorizedAccess:
    request = AccessRequest("amsterdam", "case_manager", "lso_case_discussion", operation, "amsterdam")
    if operation is Operation.WRITE:
        request = AccessRequest(
            "amsterdam", "case_manager", "intake", operation, "amsterdam", ("case_plan",), (("case_plan", "phase"),)
        )
        return asyncio.run(authorizer().authorize_async(ctx(purpose="intake"), "t", request, PID))
    return asyncio.run(authorizer().authorize_async(ctx(), "t", request, PID))


def listing() -> ListingAccess:
    request = AccessRequest("amsterdam", "case_manager", "lso_case_discussion", Operation.LIST)
    got: list[ListingAccess] = []

    async def fetch(access: ListingAccess) -> list[tuple[str, Any]]:
        got.append(access)
        return []

    asyncio.run(authorizer().authorize_listing_async(ctx(), "t", request, fetch, 10, None))
    return got[0]


def forged_access() -> AuthorizedAccess:
    """An object that looks like a minted access (a subclass made without the constructor)."""

    class Lookalike(AuthorizedAccess):
        pass

    fake = object.__new__(Lookalike)
    real = minted()
    for name in AuthorizedAccess.__slots__:
        object.__setattr__(fake, name, getattr(real, name))
    return fake


def adapters() -> list[RecordSource]:
    system = next(s for s in POLICY.config.sources if s.id == "cvs-amsterdam")
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: pytest.fail("the source was called")))
    rest = RestSource(system, "http://127.0.0.1:9", MutualTls(), lambda o, p: "p" + "a" * 26, lambda o: "", "o", client)
    return [MemorySource(), HostedSource(Untouchable()), rest]  # type: ignore[arg-type]


NOT_MINTED: list[Any] = [None, PID, {"participant_id": PID}, "amsterdam"]


@pytest.mark.parametrize("source", adapters(), ids=lambda s: type(s).__name__)
def test_no_adapter_reads_or_writes_without_the_minted_access(source: RecordSource) -> None:
    for bad in [*NOT_MINTED, forged_access(), listing()]:
        with pytest.raises(PermissionError):
            asyncio.run(source.read(bad))
        with pytest.raises(PermissionError):
            asyncio.run(source.write(bad, {"case_plan": {"phase": "x"}}, IN_FORCE, "key"))
    with pytest.raises(PermissionError):
        asyncio.run(source.read(minted(Operation.WRITE)))  # a write access does not read


@pytest.mark.parametrize("source", adapters(), ids=lambda s: type(s).__name__)
def test_no_adapter_lists_without_the_minted_listing_access(source: RecordSource) -> None:
    for bad in [*NOT_MINTED, frozenset({"amsterdam"}), minted()]:
        with pytest.raises(PermissionError):
            asyncio.run(source.list(bad))


def test_the_gate_objects_cannot_be_made_outside_the_gate() -> None:
    real = minted()
    with pytest.raises(PermissionError):
        AuthorizedAccess(object(), PID, real.decision, 1, "amsterdam", Operation.READ)
    with pytest.raises(PermissionError):
        ListingAccess(object(), real.decision, "amsterdam", 10, None)
    with pytest.raises(PermissionError):
        ImportGrant(object(), {"amsterdam": real.decision}, 1, "amsterdam")


def test_a_narrowed_access_keeps_only_categories_it_was_permitted() -> None:
    real = minted()
    narrow = real.narrowed(["case_plan", "medical"])  # medical is not permitted to the city
    assert set(narrow.decision.fields_by_category) == {"case_plan"}
    assert narrow.audit_seq == real.audit_seq


def test_the_memory_source_cuts_to_the_permitted_fields_and_applies_a_key_once() -> None:
    source = MemorySource()
    when = datetime(2024, 11, 15, 10, 0)
    source.records[PID] = {
        "case_plan": [CategoryRecord("case_plan", {"phase": "a", "secret": "no"}, 1, "amsterdam", when)],
        "medical": [CategoryRecord("medical", {"advice": "no"}, 1, "ngo-medisch", when)],
    }
    out = asyncio.run(source.read(minted()))
    assert out["case_plan"].fields == {"phase": "a"}
    assert "medical" not in out
    write = minted(Operation.WRITE)
    first = asyncio.run(source.write(write, {"case_plan": {"phase": "b"}}, when, "k1"))
    again = asyncio.run(source.write(write, {"case_plan": {"phase": "b"}}, when, "k1"))
    assert first.versions == again.versions == {"case_plan": 2}
    with pytest.raises(PermissionError):
        asyncio.run(source.write(write, {"case_plan": {"not_a_field": "x"}}, when, "k2"))


def test_the_memory_source_lists_only_the_permitted_regions_by_pseudonym() -> None:
    source = MemorySource()
    source.participants = {
        "1": ("amsterdam", date(2024, 1, 1), {"amsterdam": "pb"}),
        "2": ("amsterdam", date(2024, 1, 1), {"amsterdam": "pa"}),
        "3": ("rotterdam", date(2024, 1, 1), {"amsterdam": "pc"}),
    }
    rows = asyncio.run(source.list(listing()))
    assert [item.pseudonym for _, item in rows] == ["pa", "pb"]
