"""Queries of partner authentication: clients, organisation status, the jti replay cache, signing keys, epoch.

Every method takes the connection of the caller's unit of work; the caller commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from gateway.auth.model import Client, PartyStatus, Status
from gateway.store.tables import (
    auth_assertion_jtis,
    auth_clients,
    auth_organisation_status,
    auth_signing_keys,
    auth_state,
)


@dataclass(frozen=True, slots=True)
class SigningKeyRow:
    kid: str
    alg: str
    public_jwk: dict[str, Any]
    private_sealed: bytes | None
    kek_id: str
    status: str
    created_at: datetime
    retired_at: datetime | None
    publish_until: datetime | None


def _client(row: Row[Any]) -> Client:
    return Client(
        client_id=row.client_id,
        organisation=row.organisation,
        name=row.name,
        roles=tuple(json.loads(row.roles)),
        jwks=json.loads(row.jwks) if row.jwks else None,
        jwks_uri=row.jwks_uri,
        status=Status(row.status),
        status_reason=row.status_reason,
        demo=bool(row.demo),
        certificate_bound=bool(row.certificate_bound),
        rate_limit_per_minute=row.rate_limit_per_minute,
    )


def _key(row: Row[Any]) -> SigningKeyRow:
    return SigningKeyRow(
        kid=row.kid,
        alg=row.alg,
        public_jwk=json.loads(row.public_jwk),
        private_sealed=bytes(row.private_sealed) if row.private_sealed is not None else None,
        kek_id=row.kek_id,
        status=row.status,
        created_at=row.created_at,
        retired_at=row.retired_at,
        publish_until=row.publish_until,
    )


# One round trip per request: the client's status and limit, the organisation's status, the epoch.
_PARTY_STATUS = select(
    select(auth_clients.c.status)
    .where(auth_clients.c.client_id == bindparam("client_id"))
    .scalar_subquery()
    .label("client_status"),
    select(auth_clients.c.rate_limit_per_minute)
    .where(auth_clients.c.client_id == bindparam("client_id"))
    .scalar_subquery()
    .label("rate_limit"),
    select(auth_organisation_status.c.status)
    .where(auth_organisation_status.c.organisation == bindparam("organisation"))
    .scalar_subquery()
    .label("organisation_status"),
    select(auth_state.c.epoch).where(auth_state.c.id == 1).scalar_subquery().label("epoch"),
)


# The change counter alone: every status change bumps it in the same transaction (`bump_epoch`).
EPOCH_SQL = "SELECT epoch FROM auth_state WHERE id = 1"


class AuthRepository:
    # -- clients ---------------------------------------------------------------------------------

    def client(self, conn: Connection, client_id: str) -> Client | None:
        """Return the registered client, or None."""
        row = conn.execute(select(auth_clients).where(auth_clients.c.client_id == client_id)).first()
        return _client(row) if row is not None else None

    def clients(self, conn: Connection, organisation: str | None = None) -> list[Client]:
        """Return the registered clients (of one organisation), by client id."""
        query = select(auth_clients).order_by(auth_clients.c.client_id)
        if organisation is not None:
            query = query.where(auth_clients.c.organisation == organisation)
        return [_client(row) for row in conn.execute(query)]

    def add_client(self, conn: Connection, client: Client, now: datetime) -> None:
        conn.execute(
            insert(auth_clients).values(
                client_id=client.client_id,
                organisation=client.organisation,
                name=client.name,
                roles=json.dumps(list(client.roles)),
                jwks=json.dumps(client.jwks) if client.jwks is not None else None,
                jwks_uri=client.jwks_uri,
                status=client.status.value,
                status_reason=client.status_reason,
                demo=client.demo,
                certificate_bound=client.certificate_bound,
                rate_limit_per_minute=client.rate_limit_per_minute,
                created_at=now,
                updated_at=now,
            )
        )

    def set_client_keys(
        self, conn: Connection, client_id: str, jwks: dict[str, Any] | None, jwks_uri: str | None, now: datetime
    ) -> bool:
        """Replace the client's keys; return whether the client exists."""
        result = conn.execute(
            update(auth_clients)
            .where(auth_clients.c.client_id == client_id)
            .values(jwks=json.dumps(jwks) if jwks is not None else None, jwks_uri=jwks_uri, updated_at=now)
        )
        return result.rowcount == 1

    def set_client_status(
        self, conn: Connection, client_id: str, status: Status, reason: str | None, now: datetime
    ) -> bool:
        """Set the client's status; return whether the client exists."""
        result = conn.execute(
            update(auth_clients)
            .where(auth_clients.c.client_id == client_id)
            .values(status=status.value, status_reason=reason, updated_at=now)
        )
        return result.rowcount == 1

    # -- organisations ---------------------------------------------------------------------------

    def set_organisation_status(
        self, conn: Connection, organisation: str, status: Status, reason: str | None, now: datetime
    ) -> None:
        values = {"status": status.value, "reason": reason, "changed_at": now}
        changed = conn.execute(
            update(auth_organisation_status)
            .where(auth_organisation_status.c.organisation == organisation)
            .values(**values)
        )
        if changed.rowcount == 0:
            conn.execute(insert(auth_organisation_status).values(organisation=organisation, **values))

    def disabled_organisations(self, conn: Connection) -> dict[str, str | None]:
        """Return the disabled organisations and the reason given."""
        rows = conn.execute(
            select(auth_organisation_status.c.organisation, auth_organisation_status.c.reason).where(
                auth_organisation_status.c.status == Status.DISABLED.value
            )
        )
        return {row.organisation: row.reason for row in rows}

    def party_status(self, conn: Connection, client_id: str, organisation: str) -> PartyStatus:
        """Return what a request's revocation check needs, in one query."""
        row = conn.execute(_PARTY_STATUS, {"client_id": client_id, "organisation": organisation}).one()
        return PartyStatus(
            epoch=int(row.epoch or 0),
            client=Status(row.client_status) if row.client_status is not None else None,
            organisation_disabled=row.organisation_status == Status.DISABLED.value,
            rate_limit_per_minute=row.rate_limit,
        )

    def epoch(self, conn: Connection) -> int:
        """Return the change counter (one primary-key read, no statement compilation)."""
        return int(conn.exec_driver_sql(EPOCH_SQL).scalar_one())

    # -- jti replay cache ------------------------------------------------------------------------

    def remember_jti(self, conn: Connection, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record a client-assertion jti; return False when it was seen before (a replay)."""
        try:
            with conn.begin_nested():
                conn.execute(insert(auth_assertion_jtis).values(client_id=client_id, jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def purge_jtis(self, conn: Connection, before: datetime) -> int:
        """Forget jtis of assertions that expired before `before`; return how many."""
        return int(conn.execute(delete(auth_assertion_jtis).where(auth_assertion_jtis.c.expires_at < before)).rowcount)

    # -- signing keys and the epoch --------------------------------------------------------------

    def lock_state(self, conn: Connection) -> int:
        """Lock the auth state row for this transaction (serialising key changes); return the epoch."""
        conn.execute(update(auth_state).where(auth_state.c.id == 1).values(epoch=auth_state.c.epoch))
        return int(conn.execute(select(auth_state.c.epoch).where(auth_state.c.id == 1)).scalar_one())

    def bump_epoch(self, conn: Connection) -> None:
        """Advance the epoch: every process drops its verified tokens and reloads keys on its next request."""
        conn.execute(update(auth_state).where(auth_state.c.id == 1).values(epoch=auth_state.c.epoch + 1))

    def signing_key(self, conn: Connection, kid: str) -> SigningKeyRow | None:
        row = conn.execute(select(auth_signing_keys).where(auth_signing_keys.c.kid == kid)).first()
        return _key(row) if row is not None else None

    def active_signing_key(self, conn: Connection) -> SigningKeyRow | None:
        """Return the newest active signing key, or None before the first."""
        row = conn.execute(
            select(auth_signing_keys)
            .where(auth_signing_keys.c.status == "active")
            .order_by(auth_signing_keys.c.created_at.desc(), auth_signing_keys.c.kid)
            .limit(1)
        ).first()
        return _key(row) if row is not None else None

    def signing_keys(self, conn: Connection) -> list[SigningKeyRow]:
        """Return every signing key, newest first."""
        rows = conn.execute(
            select(auth_signing_keys).order_by(auth_signing_keys.c.created_at.desc(), auth_signing_keys.c.kid)
        )
        return [_key(row) for row in rows]

    def add_signing_key(self, conn: Connection, key: SigningKeyRow) -> None:
        conn.execute(
            insert(auth_signing_keys).values(
                kid=key.kid,
                alg=key.alg,
                public_jwk=json.dumps(key.public_jwk),
                private_sealed=key.private_sealed,
                kek_id=key.kek_id,
                status=key.status,
                created_at=key.created_at,
                retired_at=key.retired_at,
                publish_until=key.publish_until,
            )
        )

    def retire_active_keys(self, conn: Connection, now: datetime, publish_until: datetime) -> list[str]:
        """Retire every active key: destroy its private part, publish it until `publish_until`."""
        kids = list(
            conn.execute(select(auth_signing_keys.c.kid).where(auth_signing_keys.c.status == "active")).scalars()
        )
        if kids:
            conn.execute(
                update(auth_signing_keys)
                .where(auth_signing_keys.c.kid.in_(kids))
                .values(status="retired", private_sealed=None, retired_at=now, publish_until=publish_until)
            )
        return kids

    def withdraw_retired_keys(self, conn: Connection, now: datetime) -> list[str]:
        """End publication of every retired key that is still published; return their kids."""
        kids = list(
            conn.execute(
                select(auth_signing_keys.c.kid).where(
                    auth_signing_keys.c.status == "retired", auth_signing_keys.c.publish_until > now
                )
            ).scalars()
        )
        if kids:
            conn.execute(update(auth_signing_keys).where(auth_signing_keys.c.kid.in_(kids)).values(publish_until=now))
        return kids
