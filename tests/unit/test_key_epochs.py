"""Key epochs: which epoch a data key is made in, when an epoch may close, the epoch key files, and what a
destruction record may say about backups given the state of its epochs."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto.envelope import DecryptionError, Envelope
from gateway.crypto.epochs import DataKeyWrapper, EpochDestroyed, EpochKeyStore, valid_epoch_id
from gateway.evidence.backups import METHOD_EXPLAINED, UNREADABLE, StatementMismatch, check, statements
from gateway.policies.compiled import compile_policy
from gateway.policies.loader import load_config
from gateway.retention.epochs import closes_at, due_epoch, epoch_for, hold_epoch

AMS = ZoneInfo("Europe/Amsterdam")
POLICY = compile_policy(load_config(Path(__file__).resolve().parents[2] / "config" / "lvv"))
REGISTERED = datetime(2024, 11, 15, 10, 0, tzinfo=AMS)


# -- which epoch a data key is made in ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "category", "epoch"),
    [
        ("amsterdam", "identity", "due-2025-07"),  # covenant end 2025-01-01 00:00 + P6M
        ("amsterdam", "contact", "due-2025-04"),  # + P3M
        ("amsterdam", "screening", "due-2025-01"),  # + P0D: due at the end itself
        ("utrecht", "identity", "due-2026-07"),  # the successor covenant ends a year later
        ("nowhere", "identity", "open"),  # no covenant covers the region: no due date is known
        ("amsterdam", "no_such_category", "open"),  # no retention rule
    ],
)
def test_a_data_key_is_made_in_the_epoch_of_the_month_it_falls_due(region: str, category: str, epoch: str) -> None:
    assert epoch_for(POLICY, region, category, REGISTERED) == epoch


def test_a_key_made_after_its_due_month_goes_into_the_current_month_never_a_closed_epoch() -> None:
    late = datetime(2025, 9, 10, 12, 0, tzinfo=AMS)
    assert epoch_for(POLICY, "amsterdam", "identity", late) == "due-2025-09"


def test_a_lifted_hold_restarts_the_clock_and_so_moves_the_epoch() -> None:
    lifted = datetime(2025, 5, 20, 9, 0, tzinfo=AMS)
    assert epoch_for(POLICY, "amsterdam", "identity", lifted, last_lift=lifted) == "due-2025-11"


def test_the_due_month_is_the_local_month_not_the_utc_month() -> None:
    # 2025-06-30 23:30 UTC is already 1 July in Amsterdam.
    assert due_epoch(datetime(2025, 6, 30, 23, 30, tzinfo=UTC), REGISTERED) == "due-2025-07"


@pytest.mark.parametrize(
    ("epoch", "closes"),
    [
        ("due-2025-07", datetime(2025, 8, 1, tzinfo=AMS)),
        ("due-2025-12", datetime(2026, 1, 1, tzinfo=AMS)),
        ("open", None),
        (hold_epoch("3f1c"), None),
    ],
)
def test_a_due_epoch_closes_when_its_month_has_fully_passed_and_others_never_by_date(
    epoch: str, closes: datetime | None
) -> None:
    assert closes_at(epoch) == closes


# -- the epoch key files --------------------------------------------------------------------------------


@pytest.fixture
def wrapper(tmp_path: Path) -> DataKeyWrapper:
    kek = os.urandom(32)
    return DataKeyWrapper(Envelope(kek), EpochKeyStore(tmp_path / "epochs", kek))


def test_a_data_key_opens_only_under_its_own_epoch_and_not_after_the_epoch_is_destroyed(
    wrapper: DataKeyWrapper,
) -> None:
    dek, wrapped = wrapper.new_data_key("p-1", "identity", "due-2025-07")
    assert wrapper.unwrap(wrapped, "p-1", "identity", "due-2025-07") == dek
    wrapper.epochs.key("due-2025-04", create=True)
    with pytest.raises(DecryptionError):
        wrapper.unwrap(wrapped, "p-1", "identity", "due-2025-04")  # relabelled to another epoch
    with pytest.raises(DecryptionError):
        wrapper.unwrap(wrapped, "p-1", "identity", None)  # the KEK alone does not open it
    assert wrapper.epochs.destroy("due-2025-07") is True
    assert not (wrapper.epochs.directory / "due-2025-07.key").exists()
    with pytest.raises(EpochDestroyed):
        wrapper.unwrap(wrapped, "p-1", "identity", "due-2025-07")
    assert wrapper.epochs.destroy("due-2025-07") is False  # destroying twice is harmless


def test_the_keys_of_one_read_open_as_one_by_one_and_not_after_their_epoch_is_destroyed(
    wrapper: DataKeyWrapper,
) -> None:
    dek_a, wrapped_a = wrapper.new_data_key("p-1", "identity", "due-2025-07")
    dek_b, wrapped_b = wrapper.new_data_key("p-1", "contact", "due-2025-07")
    legacy_dek, legacy = wrapper.envelope.new_data_key("p-1", "case_plan")
    items = [
        (wrapped_a, "p-1", "identity", "due-2025-07"),
        (None, "p-1", "health", "due-2025-07"),  # a destroyed data key: nothing to open
        (wrapped_b, "p-1", "contact", "due-2025-07"),
        (legacy, "p-1", "case_plan", None),
    ]
    assert wrapper.unwrap_many(items) == [dek_a, None, dek_b, legacy_dek]
    with pytest.raises(DecryptionError):
        wrapper.unwrap_many([(wrapped_a, "p-1", "contact", "due-2025-07")])  # moved to another category
    wrapper.epochs.destroy("due-2025-07")
    with pytest.raises(EpochDestroyed):
        wrapper.unwrap_many(items)


def test_an_epoch_key_file_renamed_to_another_epoch_does_not_open(wrapper: DataKeyWrapper) -> None:
    wrapper.epochs.key("due-2025-07", create=True)
    directory = wrapper.epochs.directory
    (directory / "due-2025-07.key").rename(directory / "due-2025-08.key")
    with pytest.raises(DecryptionError):
        wrapper.epochs.key("due-2025-08")


def test_a_legacy_row_without_epoch_is_still_unwrapped_by_the_kek(wrapper: DataKeyWrapper) -> None:
    dek, wrapped = wrapper.envelope.new_data_key("p-1", "contact")
    assert wrapper.unwrap(wrapped, "p-1", "contact", None) == dek


def test_a_rewrapped_key_opens_under_its_new_epoch_after_the_old_one_is_destroyed(wrapper: DataKeyWrapper) -> None:
    dek, wrapped = wrapper.new_data_key("p-1", "identity", "due-2025-07")
    moved = wrapper.rewrap(wrapped, "p-1", "identity", "due-2025-07", hold_epoch("h-1"))
    wrapper.epochs.destroy("due-2025-07")
    assert wrapper.unwrap(moved, "p-1", "identity", hold_epoch("h-1")) == dek


# -- what a destruction record may say about backups ---------------------------------------------------


def record(*epochs: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": "destruction_record",
        "method_explained": METHOD_EXPLAINED,
        "batch": {"executed_at": "2025-08-01T00:00:05Z"},
        "totals": {"data_keys_destroyed": sum(e["data_keys_destroyed"] for e in epochs)},
        "backups": {"epochs": list(epochs)},
    }
    document["backups"]["statements"] = statements(document)
    return document


def epoch(epoch_id: str | None, state: str, keys: int = 3, destroyed_at: str | None = None) -> dict[str, Any]:
    return {
        "epoch": epoch_id,
        "data_keys_destroyed": keys,
        "state": state,
        "destroyed_at": destroyed_at,
        "expected_destruction_from": "2025-08-31T22:00:00Z" if state == "live" and epoch_id != "open" else None,
    }


def test_a_destroyed_epoch_is_stated_as_unreadable_in_older_backups_and_a_live_one_as_readable() -> None:
    doc = record(epoch("due-2025-04", "destroyed", 2, "2025-08-01T00:00:06Z"), epoch("due-2025-08", "live"))
    said = doc["backups"]["statements"]
    assert said[0].startswith("Destroyed in the database on 2025-08-01T00:00:05Z")
    assert UNREADABLE in said[1]
    assert "destroyed on 2025-08-01T00:00:06Z" in said[1]
    assert "stays readable with the key store" in said[2]
    assert "2025-08-31T22:00:00Z" in said[2]
    check(doc)


def test_a_record_that_claims_unreadable_backups_for_a_live_epoch_is_refused() -> None:
    doc = record(epoch("due-2025-08", "live"))
    doc["backups"]["statements"][1] = (
        f"Epoch due-2025-08 (3 data keys): {UNREADABLE} 2025-08-01T00:00:05Z, since epoch due-2025-08 was "
        "destroyed on 2025-08-01T00:00:06Z."
    )
    with pytest.raises(StatementMismatch, match="overstates"):
        check(doc)


def test_a_record_of_the_old_format_without_epoch_facts_is_refused() -> None:
    old = {"type": "destruction_record", "method_explained": "unrecoverable, from any backup", "batch": {}}
    with pytest.raises(StatementMismatch, match="no key-epoch facts"):
        check(old)


STATES = st.sampled_from(["destroyed", "destroying", "live", "legacy"])
IDS = st.sampled_from(["due-2025-04", "due-2025-07", "open", "hold-h1", None])


@given(st.lists(st.tuples(IDS, STATES, st.integers(0, 50)), max_size=5, unique_by=lambda t: t[0]))
def test_the_statements_never_claim_unreadable_backups_for_an_epoch_not_destroyed(
    facts: list[tuple[str | None, str, int]],
) -> None:
    doc = record(*(epoch(e, s, n, "2025-08-01T00:00:06Z" if s == "destroyed" else None) for e, s, n in facts))
    check(doc)
    destroyed = {e for e, s, _ in facts if s == "destroyed" and e is not None}
    for sentence in doc["backups"]["statements"]:
        if UNREADABLE in sentence:
            assert any(sentence.startswith(f"Epoch {e} ") for e in destroyed)


def test_a_hold_id_that_cannot_name_a_file_gives_a_valid_epoch_id_of_its_digest() -> None:
    assert hold_epoch("2b0c-uuid") == "hold-2b0c-uuid"
    odd = hold_epoch("../../kek.key")
    assert valid_epoch_id(odd)
    assert odd == hold_epoch("../../kek.key") != hold_epoch("../../kek.kez")
