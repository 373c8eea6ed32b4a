"""The outbox, the domain: notices, their states, and when a failed delivery is tried again.

Pure data and functions; no framework, no database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class NoticeStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # a 2xx answer was received
    DEAD = "dead"  # given up after the last attempt, or no endpoint: needs a person (dead letter)


class AckOutcome(StrEnum):
    """What a recipient states when it acknowledges a deletion notice."""

    RECEIVED = "received"  # notice received; deletion still to be confirmed
    DELETED = "deleted"  # copies received under the covenant are deleted
    KEPT_OWN_BASIS = "kept_own_basis"  # kept under the recipient's own lawful basis (its own responsibility)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: the n-th failed attempt waits base * factor^(n-1), capped, plus a spread.

    The spread (up to `spread` of the delay) is derived from the notice id, not drawn at random, so
    notices that failed together do not retry together, and a schedule can be recomputed exactly.
    """

    max_attempts: int = 8
    base_seconds: float = 30.0
    factor: float = 2.0
    max_delay_seconds: float = 6 * 3600.0
    spread: float = 0.1

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_seconds < 0 or self.factor < 1 or not 0 <= self.spread < 1:
            raise ValueError("invalid retry policy")

    def delay(self, attempts: int, notice_id: str = "") -> timedelta:
        """Return how long to wait after the `attempts`-th failed attempt (1-based)."""
        raw = min(self.base_seconds * self.factor ** max(attempts - 1, 0), self.max_delay_seconds)
        digest = hashlib.sha256(f"{notice_id}:{attempts}".encode()).digest()
        fraction = int.from_bytes(digest[:4], "big") / 2**32
        return timedelta(seconds=raw * (1 + self.spread * fraction))

    def exhausted(self, attempts: int) -> bool:
        """Return whether no attempt is left after `attempts` attempts."""
        return attempts >= self.max_attempts


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice to one recipient organisation, as stored."""

    id: str
    kind: str
    recipient_org: str
    reference: str | None
    body: bytes  # the exact bytes every attempt sends
    status: NoticeStatus
    attempts: int  # every attempt ever made (numbers the attempts)
    round_offset: int  # attempts made before the current round; a requeued dead letter starts a new round
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None
    last_error: str | None

    @property
    def idempotency_key(self) -> str:
        """Return the key recipients deduplicate on: the notice id (unchanged across retries)."""
        return self.id


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt and what came of it."""

    notice_id: str
    attempt: int
    attempted_at: datetime
    url: str | None
    status_code: int | None
    error: str | None
    outcome: str  # delivered | retry | dead
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A recipient's acknowledgement of a notice, as recorded (and logged as `audit_seq`)."""

    notice_id: str
    organisation: str
    client_id: str
    acting_user: str
    outcome: AckOutcome
    reference: str | None
    acknowledged_at: datetime
    audit_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "notice_id": self.notice_id,
            "organisation": self.organisation,
            "client_id": self.client_id,
            "acting_user": self.acting_user,
            "outcome": self.outcome.value,
            "reference": self.reference,
            "acknowledged_at": self.acknowledged_at.isoformat().replace("+00:00", "Z"),
            "audit_seq": self.audit_seq,
        }
