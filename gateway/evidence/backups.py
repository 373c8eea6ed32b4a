"""What a destruction record may say about database backups: sentences derived only from signed facts.

The generator writes `backups.statements` with `statements(document)`; `gateway verify` recomputes them
from the same signed facts and refuses a record whose sentences differ, so a record can never claim that
backups are unreadable unless every epoch of its data keys is recorded as destroyed.
"""

from __future__ import annotations

from typing import Any

METHOD_EXPLAINED = (
    "Each participant's records in a category are encrypted with their own data key; destroying that key and "
    "deleting the ciphertext makes the records unrecoverable from the database. Each data key is wrapped by the "
    "key of its key epoch (the month it falls due, a legal hold, or 'open'), kept only in the key store; a "
    "database backup made before the destruction becomes unreadable only once that epoch key is destroyed. "
    "The statements below say, per epoch, which is the case."
)
UNREADABLE = "unreadable in database backups made before"
KEY_STORE_CAVEAT = (
    "Epoch keys are kept only in the key store, never in the database or its backups; a copy of the key store "
    "made before an epoch's destruction would still open that epoch."
)


class StatementMismatch(Exception):
    """The statements of a destruction record do not follow from its signed facts."""


def _epoch_sentence(epoch: dict[str, Any], executed_at: str, rehearsal: bool = False) -> str:
    epoch_id, keys, state = epoch.get("epoch"), epoch.get("data_keys_destroyed"), epoch.get("state")
    if epoch_id is None:
        return (
            f"{keys} data keys from before key epochs are wrapped by the key-encryption key itself: a database "
            f"backup made before {executed_at} stays readable with that key."
        )
    if state == "destroyed":
        return (
            f"Epoch {epoch_id} ({keys} data keys): {UNREADABLE} {executed_at}, since epoch {epoch_id} was "
            f"destroyed on {epoch['destroyed_at']}."
        )
    if rehearsal:
        until = "a rehearsal never destroys key epochs, since its copy shares the key store with the real database"
    elif epoch_id == "open":
        until = "epoch open holds data without a known due date and is not destroyed"
    elif epoch.get("expected_destruction_from"):
        until = (
            f"until epoch {epoch_id} is destroyed, expected at the first retention run from "
            f"{epoch['expected_destruction_from']} on"
        )
    elif state == "destroying":
        until = f"until epoch {epoch_id} is destroyed; its destruction is under way and the next retention run ends it"
    elif str(epoch_id).startswith("hold-"):
        until = f"until epoch {epoch_id} is destroyed, after its legal hold is lifted"
    else:
        until = f"until epoch {epoch_id} is destroyed; no date is known"
    return (
        f"Epoch {epoch_id} ({keys} data keys): not destroyed, so a database backup made before {executed_at} "
        f"stays readable with the key store: {until}."
    )


def statements(document: dict[str, Any]) -> list[str]:
    """Return the sentences a destruction record states about the database and its backups."""
    executed_at = document["batch"]["executed_at"]
    epochs = document["backups"]["epochs"]
    keys = document["totals"]["data_keys_destroyed"]
    out = [f"Destroyed in the database on {executed_at}: {keys} data keys and the records they encrypted."]
    rehearsal = bool(document.get("rehearsal"))
    out += [_epoch_sentence(e, executed_at, rehearsal) for e in epochs]
    if any(e.get("state") == "destroyed" for e in epochs):
        out.append(KEY_STORE_CAVEAT)
    return out


def check(document: dict[str, Any]) -> None:
    """Raise StatementMismatch unless the record's statements are exactly those its signed facts support."""
    try:
        backups = document["backups"]
        epochs = backups["epochs"]
        signed = backups["statements"]
        expected = statements(document)
    except (KeyError, TypeError) as exc:
        raise StatementMismatch(
            "the destruction record carries no key-epoch facts for what it states about backups "
            f"(missing {exc}); a record of an older format claimed unreadability in every backup, which "
            "the gateway did not ensure: reissue it"
        ) from None
    states = {e.get("epoch"): e.get("state") for e in epochs}
    for sentence in signed if isinstance(signed, list) else []:
        if UNREADABLE not in str(sentence):
            continue
        claimed = [e for e in states if e is not None and f"Epoch {e} " in str(sentence)]
        for epoch_id in claimed or [None]:
            if states.get(epoch_id) != "destroyed":
                raise StatementMismatch(
                    f"overstates: claims backups unreadable for epoch {epoch_id}, which its signed facts record "
                    f"as {states.get(epoch_id) or 'absent'}, not destroyed"
                )
    for epoch in epochs:
        if epoch.get("state") == "destroyed" and not epoch.get("destroyed_at"):
            raise StatementMismatch(f"epoch {epoch.get('epoch')} is recorded as destroyed without a time")
    if document.get("method_explained") != METHOD_EXPLAINED:
        raise StatementMismatch("the method explanation is not the one the gateway states about backups")
    if signed != expected:
        raise StatementMismatch("the statements about the database and backups do not follow from the signed facts")
