"""An in-memory record source for unit tests: the same port, the same checks, no database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from gateway.connectors.port import CategoryRecord, Listed, Written, cut, require, require_listing
from gateway.exchange.authorize import AuthorizedAccess, ListingAccess
from gateway.policies.model import Operation


@dataclass
class MemorySource:
    """Records kept in dicts: participant id -> category -> versions (newest last)."""

    id: str = "memory"
    records: dict[str, dict[str, list[CategoryRecord]]] = field(default_factory=dict)
    # participant id -> (region, day registered, {organisation: pseudonym})
    participants: dict[str, tuple[str, date, dict[str, str]]] = field(default_factory=dict)
    applied: dict[str, Written] = field(default_factory=dict)  # idempotency key -> what it wrote

    async def read(self, access: AuthorizedAccess) -> Mapping[str, CategoryRecord]:
        """Return the latest record of each permitted category, cut to the permitted fields."""
        access = require(access, Operation.READ)
        held = self.records.get(access.participant_id or "", {})
        out: dict[str, CategoryRecord] = {}
        for category in access.decision.fields_by_category:
            versions = held.get(category)
            if versions:
                rec = versions[-1]
                out[category] = CategoryRecord(
                    category, cut(access, category, rec.fields), rec.version, rec.source_organisation, rec.written_at
                )
        return out

    async def write(
        self, access: AuthorizedAccess, values: Mapping[str, Mapping[str, Any]], now: datetime, idempotency_key: str
    ) -> Written:
        """Merge each category's permitted values into a new version; return the versions."""
        access = require(access, Operation.WRITE, Operation.REGISTER)
        if idempotency_key in self.applied:
            return self.applied[idempotency_key]
        versions: dict[str, int] = {}
        for category, fields in values.items():
            if set(fields) - set(access.decision.fields_by_category.get(category, ())):
                raise PermissionError("write holds fields outside the authorized access")
            held = self.records.setdefault(access.participant_id or "", {}).setdefault(category, [])
            merged = {**(held[-1].fields if held else {}), **fields}
            held.append(CategoryRecord(category, merged, len(held) + 1, access.organisation, now))
            versions[category] = len(held)
        self.applied[idempotency_key] = Written(versions)
        return self.applied[idempotency_key]

    async def list(self, access: ListingAccess) -> list[tuple[str, Listed]]:
        """Return one page, by pseudonym, of the participants in the access's regions."""
        access = require_listing(access)
        rows = [
            (pid, Listed(names[access.organisation], region, day))
            for pid, (region, day, names) in self.participants.items()
            if region in access.regions and access.organisation in names
        ]
        rows.sort(key=lambda row: row[1].pseudonym)
        if access.after:
            rows = [row for row in rows if row[1].pseudonym > access.after]
        return rows[: access.limit]
