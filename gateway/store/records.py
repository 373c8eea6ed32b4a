"""The record store: participants, their pseudonyms, and their encrypted records.

Reads and writes of records take an `AuthorizedAccess` (minted only after a committed audit entry)
and return or accept only the fields that access permits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Select, and_, bindparam, func, insert, select

from gateway.connectors.port import CategoryRecord, Listed, require, require_listing
from gateway.crypto.envelope import Envelope
from gateway.crypto.epochs import OPEN_EPOCH, DataKeyWrapper, EpochDestroyed
from gateway.crypto.pseudonyms import Pseudonymiser
from gateway.exchange.authorize import AuthorizedAccess, ListingAccess
from gateway.policies.model import Operation
from gateway.store.db import Database
from gateway.store.hot import CompiledRead, HotReads
from gateway.store.subject_index import LOOKUP_FIELDS, SubjectIndex
from gateway.store.tables import data_keys, participants, pseudonyms, records, source_imports


def latest_sealed_records(categories: Collection[str] | None = None) -> Select[Any]:
    """Return the query for the latest version of each participant's record per category (of `categories`, when
    given), with its ciphertext and its wrapped data key: what opening the latest records needs."""
    latest = select(records.c.participant_id, records.c.category, func.max(records.c.version).label("version"))
    if categories is not None:
        latest = latest.where(records.c.category.in_(sorted(categories)))
    newest = latest.group_by(records.c.participant_id, records.c.category).subquery()
    return (
        select(
            records.c.id,
            records.c.participant_id,
            records.c.category,
            records.c.ciphertext,
            data_keys.c.wrapped_key,
            data_keys.c.epoch_id,
        )
        .join(
            newest,
            and_(
                records.c.participant_id == newest.c.participant_id,
                records.c.category == newest.c.category,
                records.c.version == newest.c.version,
            ),
        )
        .join(
            data_keys,
            and_(data_keys.c.participant_id == records.c.participant_id, data_keys.c.category == records.c.category),
        )
    )


class DataDestroyed(Exception):
    """The data key of a category is destroyed; its records are unrecoverable."""


@dataclass(frozen=True, slots=True)
class ParticipantRef:
    id: str
    region: str


def encode_record(values: dict[str, Any]) -> bytes:
    """Return a record's fields as the bytes that are sealed; raise `orjson.JSONEncodeError` when they cannot be."""
    return orjson.dumps(values)


def _resolve_statement() -> Any:
    return (
        select(participants.c.id, participants.c.region)
        .join(pseudonyms, pseudonyms.c.participant_id == participants.c.id)
        .where(pseudonyms.c.organisation == bindparam("org"), pseudonyms.c.pseudonym == bindparam("pseudonym"))
    )


def _read_statement() -> Any:
    pid: Any = bindparam("pid")
    latest = (
        select(records.c.category, func.max(records.c.version).label("version"))
        .where(records.c.participant_id == pid, records.c.category.in_(bindparam("categories", expanding=True)))
        .group_by(records.c.category)
        .subquery()
    )
    return (
        select(
            records.c.id,
            records.c.category,
            records.c.version,
            records.c.ciphertext,
            records.c.source_organisation,
            records.c.written_at,
            data_keys.c.wrapped_key,
            data_keys.c.epoch_id,
        )
        .join(latest, and_(records.c.category == latest.c.category, records.c.version == latest.c.version))
        .join(data_keys, and_(data_keys.c.participant_id == pid, data_keys.c.category == records.c.category))
        .where(records.c.participant_id == pid)
    )


# (region, category, now) -> the key epoch of a data key made now (see gateway.retention.epochs).
EpochOf = Callable[[str, str, datetime], str]


class _RecordRow(NamedTuple):
    """A row of the read statement (`_read_statement`), in its column order."""

    id: str
    category: str
    version: int
    ciphertext: bytes
    source_organisation: str
    written_at: datetime
    wrapped_key: bytes | None
    epoch_id: str | None


class RecordStore:
    def __init__(
        self,
        db: Database,
        keys: DataKeyWrapper,
        pseudonymiser: Pseudonymiser,
        epoch_of: EpochOf | None = None,
        subject_index: SubjectIndex | None = None,
    ) -> None:
        self._db = db
        self.subject_index = subject_index
        self._keys = keys
        self._epoch_of: EpochOf = epoch_of or (lambda region, category, now: OPEN_EPOCH)
        self._pseudonymiser = pseudonymiser
        # Built once: constructing statements per call costs more than the queries themselves.
        self._resolve_stmt = _resolve_statement()
        self._read_stmt = _read_statement()
        # On SQLite the two reads of every exchange read run on the raw driver (gateway.store.hot).
        self._hot = HotReads.for_database(db)
        if self._hot is not None:
            dialect = db.read.dialect
            self._hot_resolve = CompiledRead(self._resolve_stmt, dialect)
            self._hot_read = CompiledRead(self._read_stmt, dialect)

    def close(self) -> None:
        """Close the raw read connections (the engines are the Database's to dispose of)."""
        if self._hot is not None:
            self._hot.close()

    @property
    def keys(self) -> DataKeyWrapper:
        """Return the wrapper of data keys (epoch keys from the key store, the KEK for legacy rows)."""
        return self._keys

    # -- participants -------------------------------------------------------------------------

    def resolve(self, organisation: str, pseudonym: str) -> ParticipantRef | None:
        """Return the participant `organisation` knows as `pseudonym`, if any."""
        params = {"org": organisation, "pseudonym": pseudonym}
        if self._hot is not None:
            found = self._hot.rows(self._hot_resolve, params)
            return ParticipantRef(found[0][0], found[0][1]) if found else None
        with self._db.read.connect() as conn:
            row = conn.execute(self._resolve_stmt, params).first()
        return ParticipantRef(row.id, row.region) if row else None

    def pseudonym(self, organisation: str, participant_id: str) -> str:
        """Return the pseudonym `organisation` knows the participant by."""
        return self._pseudonymiser.pseudonym(organisation, participant_id)

    def _insert_pseudonyms(self, conn: Connection, participant_id: str, organisations: Iterable[str]) -> None:
        conn.execute(
            insert(pseudonyms),
            [
                {
                    "organisation": org,
                    "pseudonym": self.pseudonym(org, participant_id),
                    "participant_id": participant_id,
                }
                for org in organisations
            ],
        )

    def ensure_pseudonyms(self, organisations: Sequence[str]) -> int:
        """Create missing pseudonyms for organisations added to the configuration; return how many."""
        created = 0
        with self._db.write.begin() as conn:
            for org in organisations:
                known = select(pseudonyms.c.participant_id).where(pseudonyms.c.organisation == org)
                missing = conn.execute(select(participants.c.id).where(participants.c.id.not_in(known))).scalars()
                rows = [
                    {"organisation": org, "pseudonym": self.pseudonym(org, p), "participant_id": p} for p in missing
                ]
                if rows:
                    conn.execute(insert(pseudonyms), rows)
                    created += len(rows)
        return created

    def list_candidates(self, access: ListingAccess) -> list[tuple[str, Listed]]:
        """Return (participant id, listing) for the organisation's pseudonyms in the permitted regions.

        Called only with a listing access minted by `Authorizer.authorize_listing_async`, which logs
        the result before releasing it.
        """
        access = require_listing(access)
        organisation, regions, limit, after = access.organisation, access.regions, access.limit, access.after
        query = (
            select(participants.c.id, participants.c.region, participants.c.registered_at, pseudonyms.c.pseudonym)
            .join(pseudonyms, pseudonyms.c.participant_id == participants.c.id)
            .where(pseudonyms.c.organisation == organisation, participants.c.region.in_(sorted(regions)))
            .order_by(pseudonyms.c.pseudonym)
            .limit(limit)
        )
        if after:
            query = query.where(pseudonyms.c.pseudonym > after)
        with self._db.read.connect() as conn:
            rows = conn.execute(query).all()
        return [(r.id, Listed(r.pseudonym, r.region, r.registered_at.astimezone(UTC).date())) for r in rows]

    # -- records --------------------------------------------------------------------------------

    def read(self, access: AuthorizedAccess) -> dict[str, CategoryRecord]:
        """Return the latest record of each permitted category, cut to the permitted fields."""
        require(access, Operation.READ)
        assert access.participant_id is not None
        permitted = access.decision.fields_by_category
        pid = access.participant_id
        params = {"pid": pid, "categories": sorted(permitted)}
        rows = self._record_rows(params)
        try:
            deks = self._unwrap_all(pid, rows)
        except EpochDestroyed:
            # The retention run moved a key out of its epoch and destroyed that epoch between our read
            # and the unwrap: read again, the row now names the key's new epoch.
            rows = self._record_rows(params)
            deks = self._unwrap_all(pid, rows)
        out: dict[str, CategoryRecord] = {}
        for row, dek in zip(rows, deks, strict=True):
            if dek is None:
                continue  # destroyed: nothing to release
            values = orjson.loads(Envelope.open_record(dek, row.ciphertext, pid, row.category, row.id))
            allowed = permitted[row.category]
            out[row.category] = CategoryRecord(
                row.category,
                {name: values[name] for name in allowed if name in values},
                row.version,
                row.source_organisation,
                row.written_at,
            )
        return out

    def _record_rows(self, params: dict[str, Any]) -> Sequence[Any]:
        """Return the latest record and data key of each asked category (the read statement's rows)."""
        if self._hot is not None:
            return [_RecordRow(*row) for row in self._hot.rows(self._hot_read, params)]
        with self._db.read.connect() as conn:
            return conn.execute(self._read_stmt, params).all()

    def _unwrap_all(self, pid: str, rows: Sequence[Any]) -> list[bytes | None]:
        """Return each row's data key (None where it is destroyed)."""
        return self._keys.unwrap_many([(r.wrapped_key, pid, r.category, r.epoch_id) for r in rows])

    def reindex_subjects(self) -> int:
        """Write the blind-index digests of every live latest record (records from before the index); return how
        many records gave one. Nothing leaves the gateway: records are opened here only to compute digests."""
        if self.subject_index is None:
            return 0
        query = latest_sealed_records().where(data_keys.c.wrapped_key.is_not(None))
        indexed = 0
        with self._db.read.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            dek = self._keys.unwrap(row.wrapped_key, row.participant_id, row.category, row.epoch_id)
            values = orjson.loads(Envelope.open_record(dek, row.ciphertext, row.participant_id, row.category, row.id))
            if not set(values) & {f for fields in LOOKUP_FIELDS.values() for f in fields}:
                continue
            with self._db.write.begin() as conn:
                self.subject_index.index(conn, row.participant_id, row.category, values)
            indexed += 1
        return indexed

    def register(
        self,
        access: AuthorizedAccess,
        region: str,
        organisations: Sequence[str],
        now: datetime,
        initial: dict[str, dict[str, Any]],
    ) -> None:
        """Create the participant of a permitted registration, its pseudonyms and initial records."""
        require(access, Operation.REGISTER)
        assert access.participant_id is not None
        with self._db.write.begin() as conn:
            conn.execute(
                insert(participants).values(
                    id=access.participant_id,
                    region=region,
                    registered_by=access.organisation,
                    registered_at=now,
                )
            )
            self._insert_pseudonyms(conn, access.participant_id, organisations)
            for category, values in initial.items():
                self._write(conn, access, category, values, now)

    def write(self, access: AuthorizedAccess, category: str, values: dict[str, Any], now: datetime) -> int:
        """Merge `values` into the category's latest record as a new version; return that version."""
        require(access, Operation.WRITE)
        with self._db.write.begin() as conn:
            return self._write(conn, access, category, values, now)

    def resolve_many(self, organisation: str, pseudonyms_: Sequence[str]) -> dict[str, ParticipantRef]:
        """Return the participants `organisation` knows by each of `pseudonyms_` (unknown ones left out)."""
        if not pseudonyms_:
            return {}
        query = (
            select(pseudonyms.c.pseudonym, participants.c.id, participants.c.region)
            .join(pseudonyms, pseudonyms.c.participant_id == participants.c.id)
            .where(pseudonyms.c.organisation == organisation, pseudonyms.c.pseudonym.in_(sorted(set(pseudonyms_))))
        )
        with self._db.read.connect() as conn:
            return {r.pseudonym: ParticipantRef(r.id, r.region) for r in conn.execute(query)}

    def find_import(self, organisation: str, category: str, content_sha256: str) -> Any:
        """Return the earlier import of the same file by the same source into the category, if any."""
        query = select(source_imports).where(
            source_imports.c.source_organisation == organisation,
            source_imports.c.category == category,
            source_imports.c.content_sha256 == content_sha256,
        )
        with self._db.read.connect() as conn:
            return conn.execute(query).first()

    def write_import(
        self,
        category: str,
        rows: Iterable[tuple[AuthorizedAccess, dict[str, Any]]],
        now: datetime,
        record: dict[str, Any],
    ) -> int:
        """Write each row as a new version and record the import, all in one transaction; return the rows."""
        written = 0
        with self._db.write.begin() as conn:
            for access, values in rows:
                self._write(conn, require(access, Operation.WRITE), category, values, now)
                written += 1
            conn.execute(insert(source_imports).values(**record, rows_imported=written, imported_at=now))
        return written

    def _write(
        self, conn: Connection, access: AuthorizedAccess, category: str, values: dict[str, Any], now: datetime
    ) -> int:
        pid = access.participant_id
        assert pid is not None
        allowed = set(access.decision.fields_by_category.get(category, ()))
        if not set(values) <= allowed:
            raise PermissionError("write holds fields outside the authorized access")
        key_query = select(data_keys.c.wrapped_key, data_keys.c.epoch_id).where(
            data_keys.c.participant_id == pid, data_keys.c.category == category
        )
        if not self._db.is_sqlite:
            # Waits for a retention run re-wrapping this key, so the epoch read is the one that stays.
            key_query = key_query.with_for_update()
        key_row = conn.execute(key_query).first()
        if key_row is None:
            region = conn.execute(select(participants.c.region).where(participants.c.id == pid)).scalar_one()
            # The epoch of the month the key falls due: destroying that epoch later reaches backups too.
            epoch_id = self._epoch_of(region, category, now)
            dek, wrapped = self._keys.new_data_key(pid, category, epoch_id)
            conn.execute(
                insert(data_keys).values(
                    participant_id=pid,
                    category=category,
                    wrapped_key=wrapped,
                    kek_id=self._keys.kek_id,
                    created_at=now,
                    epoch_id=epoch_id,
                )
            )
            current: dict[str, Any] = {}
            version = 0
        else:
            if key_row.wrapped_key is None:
                raise DataDestroyed(category)
            dek = self._keys.unwrap(key_row.wrapped_key, pid, category, key_row.epoch_id)
            previous = conn.execute(
                select(records.c.id, records.c.version, records.c.ciphertext)
                .where(records.c.participant_id == pid, records.c.category == category)
                .order_by(records.c.version.desc())
                .limit(1)
            ).first()
            current, version = {}, 0
            if previous is not None:
                current = orjson.loads(Envelope.open_record(dek, previous.ciphertext, pid, category, previous.id))
                version = previous.version
        merged = {k: v for k, v in {**current, **values}.items() if v is not None}
        if self.subject_index is not None:
            self.subject_index.index(conn, pid, category, merged)
        record_id = str(uuid.uuid4())
        conn.execute(
            insert(records).values(
                id=record_id,
                participant_id=pid,
                category=category,
                version=version + 1,
                ciphertext=Envelope.seal_record(dek, encode_record(merged), pid, category, record_id),
                source_organisation=access.organisation,
                written_at=now,
                audit_seq=access.audit_seq,
            )
        )
        return version + 1
