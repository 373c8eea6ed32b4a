"""Finding a participant from what an access request gives: a blind index of identifying fields.

An art. 15 request names a person (family name and date of birth, or a V-number), not a pseudonym. The
gateway keeps, per participant, a keyed HMAC-SHA256 of each normalised identifying value, written with
the record that holds it: the values themselves are never stored for matching, and without the key
(`subject-lookup.key` in the key dir) a digest cannot be tested against a guess. A digest is matched only
while the data key of the category it was computed from exists: once that category is crypto-shredded,
the participant can no longer be found this way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from gateway.store.tables import data_keys, participants, pseudonyms, subject_index

# kind -> the record fields it is computed from (all of them must be present)
LOOKUP_FIELDS: dict[str, tuple[str, ...]] = {
    "v_number": ("v_number",),
    "name_birth": ("family_name", "birth_date"),
}
_DAY_FIRST = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")


def normalise_v_number(value: object) -> str:
    """Return a V-number without spaces, dots or dashes, in upper case."""
    return re.sub(r"[^0-9A-Z]", "", str(value).upper())


def normalise_name(value: object) -> str:
    """Return a name without accents, spaces, hyphens or apostrophes, case-folded ("Ó Brien-Dijk" = "obriendijk")."""
    decomposed = unicodedata.normalize("NFKD", str(value))
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).casefold()


def normalise_date(value: object) -> str:
    """Return a date as YYYY-MM-DD from ISO or day-first (dd-mm-yyyy) notation; "" when it is no date."""
    text = str(value).strip()
    dutch = _DAY_FIRST.match(text)
    if dutch:
        text = f"{dutch[3]}-{int(dutch[2]):02d}-{int(dutch[1]):02d}"
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return ""


def _normalised(kind: str, values: Mapping[str, Any]) -> str | None:
    fields = LOOKUP_FIELDS[kind]
    if any(not values.get(f) for f in fields):
        return None
    if kind == "v_number":
        text = normalise_v_number(values["v_number"])
    else:
        name, born = normalise_name(values["family_name"]), normalise_date(values["birth_date"])
        text = f"{name}\x1f{born}" if name and born else ""
    return text or None


@dataclass(frozen=True, slots=True)
class SubjectIndex:
    """Computes and matches the keyed digests (the key never leaves this object)."""

    key: bytes

    def digest(self, kind: str, values: Mapping[str, Any]) -> str | None:
        """Return the digest of `kind` for these values (None when they do not give it)."""
        text = _normalised(kind, values)
        if text is None:
            return None
        return hmac.new(self.key, f"{kind}\x00{text}".encode(), hashlib.sha256).hexdigest()

    def index(self, conn: Connection, participant_id: str, category: str, values: Mapping[str, Any]) -> None:
        """Replace the participant's digests that this category's record gives."""
        for kind, fields in LOOKUP_FIELDS.items():
            if not set(fields) & set(values):
                continue
            conn.execute(
                delete(subject_index).where(
                    subject_index.c.participant_id == participant_id, subject_index.c.kind == kind
                )
            )
            value = self.digest(kind, values)
            if value is not None:
                conn.execute(
                    insert(subject_index).values(
                        participant_id=participant_id, kind=kind, category=category, digest=value
                    )
                )

    def find(self, conn: Connection, given: Mapping[str, Any], organisation: str, regions: Iterable[str]) -> list[str]:
        """Return `organisation`'s pseudonyms of the participants in `regions` whose digests match every kind given."""
        wanted = {kind: d for kind in LOOKUP_FIELDS if (d := self.digest(kind, given)) is not None}
        if not wanted:
            return []
        matches: set[str] | None = None
        for kind, value in wanted.items():
            query = (
                select(pseudonyms.c.pseudonym)
                .join(subject_index, subject_index.c.participant_id == pseudonyms.c.participant_id)
                .join(participants, participants.c.id == pseudonyms.c.participant_id)
                .join(
                    data_keys,
                    (data_keys.c.participant_id == subject_index.c.participant_id)
                    & (data_keys.c.category == subject_index.c.category),
                )
                .where(
                    pseudonyms.c.organisation == organisation,
                    subject_index.c.kind == kind,
                    subject_index.c.digest == value,
                    participants.c.region.in_(list(regions)),
                    data_keys.c.wrapped_key.is_not(None),
                )
            )
            found = set(conn.execute(query).scalars())
            matches = found if matches is None else matches & found
        return sorted(matches or ())


def given_kinds(given: Mapping[str, Any]) -> list[str]:
    """Return the kinds of identifier a request gives (for the log: which, never their values)."""
    return [kind for kind in LOOKUP_FIELDS if _normalised(kind, given) is not None]
