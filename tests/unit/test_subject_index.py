"""What the blind index treats as the same identifier, and that its digests depend on the key."""

from __future__ import annotations

from gateway.store.subject_index import SubjectIndex, given_kinds, normalise_date, normalise_name, normalise_v_number


def test_a_v_number_is_the_same_however_it_is_typed() -> None:
    # Synthetic: a test V-number never has the 10 digits of a real one.
    assert normalise_v_number(" test.v-00.042 ") == normalise_v_number("TEST-V-00042") == "TESTV00042"


def test_a_name_is_the_same_without_accents_case_spaces_or_hyphens() -> None:
    assert normalise_name("Ó Brien-Dijk") == normalise_name("o'brien dijk") == "obriendijk"


def test_a_date_of_birth_is_read_day_first_or_iso_and_nothing_else() -> None:
    assert normalise_date("1-2-1990") == normalise_date("01-02-1990") == normalise_date("1990-02-01") == "1990-02-01"
    assert normalise_date("02/31/1990") == ""
    assert normalise_date("yesterday") == ""


def test_a_digest_depends_on_the_key_and_the_kind_and_a_name_needs_its_date() -> None:
    one, other = SubjectIndex(b"k" * 32), SubjectIndex(b"x" * 32)
    values = {"v_number": "TEST-V-00042", "family_name": "Voorbeeld", "birth_date": "1990-02-01"}
    assert one.digest("v_number", values) != other.digest("v_number", values)
    assert one.digest("v_number", values) != one.digest("name_birth", values)
    assert one.digest("name_birth", {"family_name": "Voorbeeld"}) is None
    assert given_kinds({"family_name": "Voorbeeld", "birth_date": "not a date"}) == []
