"""The queries on `web_sessions`: the server-side state of the officer and jurist page sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from gateway.store.tables import web_sessions as t


@dataclass(frozen=True, slots=True)
class StoredSession:
    """One signed-in session as stored: who, as which role, on which pages, until when."""

    id_hash: str
    page_family: str
    organisation: str
    client_id: str
    token_id: str
    acting_user: str
    role: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None


def add(conn: Connection, session: StoredSession) -> None:
    """Store a new session."""
    conn.execute(
        insert(t).values(
            id_hash=session.id_hash,
            page_family=session.page_family,
            organisation=session.organisation,
            client_id=session.client_id,
            token_id=session.token_id,
            acting_user=session.acting_user,
            role=session.role,
            created_at=session.created_at,
            expires_at=session.expires_at,
            ended_at=session.ended_at,
            end_reason=session.end_reason,
        )
    )


def find(conn: Connection, id_hash: str) -> StoredSession | None:
    """Return the session stored under `id_hash` (ended or not), or None."""
    row = conn.execute(select(t).where(t.c.id_hash == id_hash)).first()
    return StoredSession(**row._asdict()) if row is not None else None


def end(conn: Connection, id_hash: str, at: datetime, reason: str) -> bool:
    """End a session that has not ended yet; return whether this call ended it."""
    result = conn.execute(
        update(t).where(t.c.id_hash == id_hash, t.c.ended_at.is_(None)).values(ended_at=at, end_reason=reason[:64])
    )
    return result.rowcount > 0


def purge_expired(conn: Connection, before: datetime) -> int:
    """Delete sessions that expired before `before`; return how many."""
    return conn.execute(delete(t).where(t.c.expires_at < before)).rowcount
