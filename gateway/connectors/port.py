"""The record source port: what every place that holds records (hosted store, partner system) offers.

One small protocol. Its methods take only what the gate mints (`AuthorizedAccess` for one
participant's records, `ListingAccess` for a listing), so no adapter can be reached with a bare
participant id, region or field list: the audit entry that permits the access is committed before
an adapter ever sees the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from gateway.exchange.authorize import AuthorizedAccess, ListingAccess
from gateway.policies.model import Operation


@dataclass(frozen=True, slots=True)
class CategoryRecord:
    category: str
    fields: dict[str, Any]
    version: int
    source_organisation: str
    written_at: datetime


@dataclass(frozen=True, slots=True)
class Listed:
    """One participant as a listing shows it: the caller's pseudonym, the region and the day (UTC) of registration."""

    pseudonym: str
    region: str
    registered_on: Any  # datetime.date: the day only, an exact moment would be one value every organisation sees


@dataclass(frozen=True, slots=True)
class Written:
    """What a source answers to a write: the new version of each category written."""

    versions: dict[str, int]


class SourceFailed(Exception):
    """A brokered source did not answer usably; nothing was released. `timeout` selects 504 over 502."""

    def __init__(self, source: str, code: str, text: str, timeout: bool = False) -> None:
        super().__init__(text)
        self.source = source
        self.code = code
        self.text = text
        self.timeout = timeout
        self.audit_seq: int | None = None  # the entry saying nothing was released, once logged


@runtime_checkable
class RecordSource(Protocol):
    """A place that holds participant records: read, write and list, each behind a minted access."""

    id: str

    async def read(self, access: AuthorizedAccess) -> Mapping[str, CategoryRecord]:
        """Return the latest record of each category the access permits, cut to the permitted fields."""
        ...

    async def write(
        self, access: AuthorizedAccess, values: Mapping[str, Mapping[str, Any]], now: datetime, idempotency_key: str
    ) -> Written:
        """Write the permitted categories' values as new versions (once per idempotency key); return the versions."""
        ...

    async def list(self, access: ListingAccess) -> list[tuple[str, Listed]]:
        """Return (participant id, listing) for the participants the listing access may see, one page."""
        ...


def require(access: object, *operations: Operation) -> AuthorizedAccess:
    """Return `access` when it is a minted access for one of `operations`; anything else is refused."""
    if type(access) is not AuthorizedAccess or access.operation not in operations:
        names = " or ".join(op.value for op in operations)
        raise PermissionError(f"a record source needs a minted {names} access")
    return access


def require_listing(access: object) -> ListingAccess:
    """Return `access` when it is a minted listing access; anything else is refused."""
    if type(access) is not ListingAccess:
        raise PermissionError("a record source lists only for a minted listing access")
    return access


def cut(access: AuthorizedAccess, category: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return `fields` cut to what the access permits for `category` (never trust a source to minimise)."""
    allowed = access.decision.fields_by_category.get(category, ())
    return {name: fields[name] for name in allowed if name in fields}
