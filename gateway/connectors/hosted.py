"""The gateway's own encrypted store as a record source (records written through the API or imported)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.connectors.port import CategoryRecord, Listed, Written, require, require_listing
from gateway.exchange.authorize import AuthorizedAccess, ListingAccess
from gateway.policies.model import Operation
from gateway.store.records import RecordStore


class HostedSource:
    """Adapter of `RecordStore` to the record source port."""

    id = "hosted"

    def __init__(self, store: RecordStore) -> None:
        self.store = store

    async def read(self, access: AuthorizedAccess) -> Mapping[str, CategoryRecord]:
        """Return the latest hosted record of each permitted category, cut to the permitted fields."""
        access = require(access, Operation.READ)  # before the store is touched at all
        return self.store.read(access)

    async def write(
        self, access: AuthorizedAccess, values: Mapping[str, Mapping[str, Any]], now: datetime, idempotency_key: str
    ) -> Written:
        """Write each category's values as a new hosted version; return the versions."""
        access = require(access, Operation.WRITE)
        return Written({cat: self.store.write(access, cat, dict(fields), now) for cat, fields in values.items()})

    async def list(self, access: ListingAccess) -> list[tuple[str, Listed]]:
        """Return one page of the participants the listing access may see, from the participant registry."""
        access = require_listing(access)
        return self.store.list_candidates(access)
