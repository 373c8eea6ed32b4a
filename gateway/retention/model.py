"""What a retention run plans and what it did: pure data for the CLI, the audit log and the evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

METHOD = "crypto-shredding (AES-256-GCM data keys destroyed)"


class KeepReason(StrEnum):
    """Why a live data key is not destroyed (yet)."""

    NOT_DUE = "not_due"  # its retention period has not passed
    ON_HOLD = "on_hold"  # the participant is under an active legal hold
    ARCHIVE = "archive"  # the rule keeps it permanently (archive)
    NO_RULE = "no_retention_rule"  # the configuration names no retention rule for the category
    TRIGGER_UNKNOWN = "trigger_unknown"  # the gateway holds no fact that starts this rule's clock
    NO_COVENANT = "no_covenant_for_region"  # a covenant_end rule, but no covenant covers the region


@dataclass(frozen=True, slots=True)
class LiveKey:
    """One data key that still exists: a participant's category that can be read."""

    participant_id: str
    region: str
    category: str
    last_written_at: datetime | None = None  # only loaded for rules triggered by `recorded`


@dataclass(frozen=True, slots=True)
class DueItem:
    """One data key whose retention period has passed: it is to be destroyed."""

    participant_id: str
    region: str
    category: str
    rule_id: str
    trigger: str
    trigger_at: datetime  # when the clock started (the later of the trigger and the last lifted hold)
    due_at: datetime
    restarted_by_hold: bool = False  # the clock restarted when a legal hold was lifted


@dataclass(frozen=True, slots=True)
class DueGroup:
    """What is due, summed per category and rule (what a dry run lists)."""

    category: str
    rule_id: str
    legal_source: str
    suggestion: bool
    trigger: str
    duration: str
    keys: int
    participants: int
    earliest_due: datetime
    latest_due: datetime


@dataclass(frozen=True, slots=True)
class KeptGroup:
    """What is kept, summed per category and reason."""

    category: str
    reason: KeepReason
    rule_id: str | None
    keys: int
    participants: int
    next_due: datetime | None  # the earliest moment one of them becomes due (None: never, or unknown)


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """What is due as of one moment, and what is kept and why."""

    as_of: datetime
    due: tuple[DueItem, ...]
    due_groups: tuple[DueGroup, ...]
    kept_groups: tuple[KeptGroup, ...]

    @property
    def participants_due(self) -> int:
        """Return how many participants have at least one key due."""
        return len({d.participant_id for d in self.due})


@dataclass(frozen=True, slots=True)
class DestructionGround:
    """One retention rule a run destroyed under, with its legal source."""

    rule_id: str
    applies_to: str
    trigger: str
    duration: str | None
    legal_source: str
    suggestion: bool  # a design choice, not law: say so in every output


@dataclass(frozen=True, slots=True)
class DestroyedCategory:
    """What a run destroyed of one category under one rule."""

    category: str
    category_name: str
    rule_id: str
    keys_destroyed: int
    records_deleted: int
    participants: int
    period_from: datetime | None  # the earliest record written among those destroyed
    period_until: datetime | None  # the latest record written among those destroyed


@dataclass(frozen=True, slots=True)
class EpochFact:
    """The key epoch some of a run's destroyed data keys were wrapped by, and whether it is destroyed."""

    epoch_id: str | None  # None: legacy data keys wrapped by the KEK itself (before key epochs)
    data_keys: int  # of the run's destroyed keys, how many were in this epoch
    state: str  # destroyed | destroying | live | legacy
    destroyed_at: datetime | None
    expected_from: datetime | None  # a due epoch: the first moment it may be destroyed


@dataclass(frozen=True, slots=True)
class DestructionBatch:
    """A retention run's destruction, as the vernietigingsverklaring (Archiefbesluit art. 8) states it.

    Which categories and how many records, of which period, on which ground, how, when, by whose
    authority. Holds counts only: no participant and no record content.
    """

    run_id: str
    status: str  # completed | interrupted | running
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    authority: str
    acting_user: str
    organisation: str | None
    method: str
    categories: tuple[DestroyedCategory, ...]
    grounds: tuple[DestructionGround, ...]
    participants: int
    keys_destroyed: int
    records_deleted: int
    period_from: datetime | None
    period_until: datetime | None
    kept: tuple[KeptGroup, ...]  # what was kept at the time of the run, and why
    audit_seq_first: int | None
    audit_seq_last: int | None
    policy_version: str
    epochs: tuple[EpochFact, ...] = ()  # the key epochs of the destroyed keys: what backups still hold
