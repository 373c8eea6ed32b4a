"""Reading what the monitor counts: per participant the region, the registration day and the latest value
of each counted field. The only query of the monitor; it takes the gate's grant for a monitor action.

It decrypts the counted fields inside the gateway and hands them to the pure computation; nothing it
returns leaves the process (the service returns only protected counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

import orjson
from sqlalchemy import select

from gateway.crypto.envelope import Envelope
from gateway.crypto.epochs import DataKeyWrapper, EpochDestroyed
from gateway.monitor.compute import ParticipantFacts
from gateway.store.db import Database
from gateway.store.records import latest_sealed_records
from gateway.store.tables import participants


class MonitorAccess:
    """Proof that a computation of the monitor is in the audit log (made only by `MonitorService`)."""

    __slots__ = ("audit_seq",)

    def __init__(self, mint: object, audit_seq: int) -> None:
        if mint is not _MINT:
            raise PermissionError("MonitorAccess is made only by the monitor service after its audit entry")
        self.audit_seq = audit_seq


_MINT = object()


def mint_access(audit_seq: int) -> MonitorAccess:
    """Return the access for a computation whose audit entry `audit_seq` is committed."""
    return MonitorAccess(_MINT, audit_seq)


def participant_facts(
    db: Database, keys: DataKeyWrapper, access: MonitorAccess, fields: Mapping[str, tuple[str, ...]]
) -> list[ParticipantFacts]:
    """Return the facts of every participant, with the counted fields of the categories in `fields`."""
    if not isinstance(access, MonitorAccess):
        raise PermissionError("the monitor reads only under a logged computation")
    query = latest_sealed_records(fields)
    with db.read.connect() as conn:
        people = conn.execute(select(participants.c.id, participants.c.region, participants.c.registered_at)).all()
        rows = conn.execute(query).all()
    values: dict[str, dict[tuple[str, str], object]] = {}
    for row in rows:
        if row.wrapped_key is None:
            continue  # destroyed: counts as not recorded
        try:
            dek = keys.unwrap(row.wrapped_key, row.participant_id, row.category, row.epoch_id)
        except EpochDestroyed:
            continue
        record = orjson.loads(Envelope.open_record(dek, row.ciphertext, row.participant_id, row.category, row.id))
        own = values.setdefault(row.participant_id, {})
        for name in fields[row.category]:
            if name in record:
                own[(row.category, name)] = record[name]
    return [
        ParticipantFacts(p.region, p.registered_at.astimezone(UTC).date(), values.get(p.id, {}))
        for p in sorted(people, key=lambda p: p.id)
    ]
