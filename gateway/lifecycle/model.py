"""The lifecycle facts: pure data, no I/O. The policy decision reads them through the compiled policy."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

import orjson


class HoldReason(StrEnum):
    """Why a participant's data is kept beyond its retention and read for the legal procedure only."""

    OBJECTION = "objection"  # bezwaar (Awb chapter 6-7)
    APPEAL = "appeal"  # beroep (Awb chapter 8)
    COMPLAINT = "complaint"  # klacht (Awb chapter 9)
    ACCESS_REQUEST = "access_request"  # GDPR art. 15 request still being answered


@dataclass(frozen=True, slots=True)
class CovenantRevocation:
    """A jurist ended a covenant early: from `effective_at` on, nothing is shared under it."""

    covenant_id: str
    effective_at: datetime  # the first instant no longer in force (aware UTC)
    reason: str
    authority_reference: str  # the decision on whose authority it was revoked
    organisation: str  # the jurist's organisation
    acting_user: str
    recorded_at: datetime
    audit_seq: int | None


@dataclass(frozen=True, slots=True)
class MandateWithdrawal:
    """A jurist recorded the withdrawal of a mandate decision: its permissions end at `effective_at`."""

    mandate_id: str
    effective_at: datetime  # the first instant no longer in force (aware UTC)
    reason: str
    authority_reference: str  # the withdrawal decision (intrekkingsbesluit)
    organisation: str
    acting_user: str
    recorded_at: datetime
    audit_seq: int | None


@dataclass(frozen=True, slots=True)
class LegalHold:
    """A participant's data is kept (destruction suspended) and read only for the legal procedure."""

    id: str
    participant_id: str
    region: str
    reason: HoldReason
    case_reference: str
    organisation: str  # the jurist's organisation that set it
    set_by: str
    set_at: datetime
    set_audit_seq: int | None
    lifted_at: datetime | None = None  # the decision became final; the retention clock restarts here
    lifted_by: str | None = None
    lift_reason: str | None = None
    lifted_audit_seq: int | None = None

    @property
    def active(self) -> bool:
        """Return whether the hold has not been lifted."""
        return self.lifted_at is None


@dataclass(frozen=True, slots=True)
class LifecycleFacts:
    """What the decision must know beyond the configuration, as of one lifecycle `version`."""

    version: int = 0
    revocations: Mapping[str, CovenantRevocation] = field(default_factory=lambda: MappingProxyType({}))
    withdrawals: Mapping[str, MandateWithdrawal] = field(default_factory=lambda: MappingProxyType({}))
    held: frozenset[str] = frozenset()  # participants with at least one active legal hold
    # (organisation that set it, region) of each active hold: that organisation's oversight outlives aftercare
    held_by: frozenset[tuple[str, str]] = frozenset()

    @property
    def empty(self) -> bool:
        """Return whether there is nothing beyond the configuration."""
        return not self.revocations and not self.withdrawals and not self.held

    def under_hold(self, participant_id: str | None) -> bool:
        """Return whether the participant has an active legal hold."""
        return participant_id is not None and participant_id in self.held

    def fingerprint(self) -> str:
        """Return a short hash of the facts that change decisions (audit entries name it)."""
        data = {
            "revocations": {k: v.effective_at.timestamp() for k, v in sorted(self.revocations.items())},
            "withdrawals": {k: v.effective_at.timestamp() for k, v in sorted(self.withdrawals.items())},
            "held": sorted(self.held),
            "held_by": sorted(self.held_by),
        }
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


NO_FACTS = LifecycleFacts()
