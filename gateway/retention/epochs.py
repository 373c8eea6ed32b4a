"""Which key epoch a data key belongs to, and when an epoch may be destroyed: pure functions of the policy.

Epoch ids:
- `due-YYYY-MM`: data keys that fall due for destruction in that month (local time of the retention
  zone). Known at creation for rules triggered by `covenant_end` (the region's covenant end plus the
  rule's duration) and by `recorded` (the write plus the duration). A due month already past when the
  key is made is replaced by the current month, so a destroyed epoch never receives new keys. The
  epoch may be destroyed once its month has fully passed.
- `hold-<legal hold id>`: data keys of a participant under that legal hold, moved there when their
  own epoch is destroyed; destroyed once the hold is lifted and its keys have moved on.
- `open`: data with no computable due date (archive rules, triggers the gateway holds no fact for, a
  region no covenant covers). It is never destroyed: backups keep such data readable with the key store.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.crypto.epochs import OPEN_EPOCH
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.loader import add_duration
from gateway.policies.model import RetentionTrigger
from gateway.retention.plan import region_ends, rules_by_category

ZONE = "Europe/Amsterdam"
HOLD_PREFIX = "hold-"
DUE_PREFIX = "due-"


def hold_epoch(hold_id: str) -> str:
    """Return the epoch id that keeps the data keys of legal hold `hold_id`."""
    if re.fullmatch(r"[A-Za-z0-9-]{1,40}", hold_id):
        return HOLD_PREFIX + hold_id
    # The id also names a file: an id of other characters is named by its digest instead.
    return HOLD_PREFIX + hashlib.sha256(hold_id.encode()).hexdigest()[:32]


def due_epoch(due_at: datetime, now: datetime, zone: str = ZONE) -> str:
    """Return the `due-YYYY-MM` epoch of a key due at `due_at`, never a month before `now`'s."""
    local = ZoneInfo(zone)
    moment = max(due_at.astimezone(local), now.astimezone(local))
    return f"{DUE_PREFIX}{moment.year:04d}-{moment.month:02d}"


def due_at(
    policy: CompiledPolicy,
    region: str,
    category: str,
    last_written: datetime | None,
    last_lift: datetime | None = None,
    zone: str = ZONE,
) -> datetime | None:
    """Return when the category's data of a participant in `region` falls due (None: no computable date).

    The same clock as the retention plan: the trigger, or the last lifted legal hold when that is later.
    """
    rule = rules_by_category(policy).get(category)
    if rule is None or rule.action == "archive" or rule.duration is None:
        return None
    if rule.trigger is RetentionTrigger.COVENANT_END:
        start = region_ends(policy).get(region)
    elif rule.trigger is RetentionTrigger.RECORDED and last_written is not None:
        start = last_written.astimezone(ZoneInfo(zone))
    else:
        return None
    if start is None:
        return None
    if last_lift is not None and last_lift > start:
        start = last_lift.astimezone(ZoneInfo(zone))
    return add_duration(start, rule.duration)


def epoch_for(
    policy: CompiledPolicy,
    region: str,
    category: str,
    now: datetime,
    last_lift: datetime | None = None,
    zone: str = ZONE,
) -> str:
    """Return the epoch a data key made (or moved) at `now` belongs to."""
    due = due_at(policy, region, category, now, last_lift, zone)
    return OPEN_EPOCH if due is None else due_epoch(due, now, zone)


def closes_at(epoch_id: str, zone: str = ZONE) -> datetime | None:
    """Return the first moment a `due-YYYY-MM` epoch may be destroyed (its month fully passed), else None."""
    if not epoch_id.startswith(DUE_PREFIX):
        return None
    year, month = (int(part) for part in epoch_id[len(DUE_PREFIX) :].split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=ZoneInfo(zone))
