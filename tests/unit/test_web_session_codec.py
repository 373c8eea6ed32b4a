"""The web session cookie: signed, the token sealed and bound to its session id, one key per page family."""

from __future__ import annotations

import pytest

from gateway.web.session import SessionCodec, session_hash

KEY = bytes(range(32))
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzeW50aGV0aWMifQ.c2lnbmF0dXJl"


def test_a_cookie_gives_back_its_session_id_and_token_and_holds_the_token_only_sealed() -> None:
    codec = SessionCodec(KEY, "officer")
    session_id = codec.new_session_id()
    value = codec.issue(session_id, TOKEN)
    read = codec.read(value)
    assert read is not None
    assert (read.session_id, read.token) == (session_id, TOKEN)
    assert "eyJzdWIiOiJzeW50aGV0aWMifQ" not in value


def test_a_cookie_of_one_page_family_is_nothing_to_another() -> None:
    value = SessionCodec(KEY, "officer").issue(SessionCodec.new_session_id(), TOKEN)
    assert SessionCodec(KEY, "jurist").read(value) is None


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_cookie_with_any_part_changed_is_not_accepted(part: int) -> None:
    codec = SessionCodec(KEY, "jurist")
    parts = codec.issue(codec.new_session_id(), TOKEN).split(".")
    parts[part] = ("A" if parts[part][0] != "A" else "B") + parts[part][1:]
    assert codec.read(".".join(parts)) is None


def test_a_sealed_token_moved_to_another_session_id_is_not_accepted_even_when_signed() -> None:
    codec = SessionCodec(KEY, "officer")
    _id, sealed, _mac = codec.issue(codec.new_session_id(), TOKEN).split(".")
    other = codec.new_session_id()
    body = f"{other}.{sealed}"
    forged = f"{body}.{codec.issue(other, TOKEN).split('.')[2]}"  # a MAC over a different sealed token
    assert codec.read(forged) is None
    assert codec.read(body) is None


def test_csrf_tokens_belong_to_one_session_and_the_stored_hash_is_not_the_id() -> None:
    codec = SessionCodec(KEY, "officer")
    first, second = codec.new_session_id(), codec.new_session_id()
    assert codec.csrf_ok(first, codec.csrf(first))
    assert not codec.csrf_ok(second, codec.csrf(first))
    assert not codec.csrf_ok(first, None)
    assert session_hash(first) != first
    assert len(session_hash(first)) == 64


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SessionCodec(b"short", "officer")
