"""Rotation of the gateway's own signing key, on SQLite and PostgreSQL: tokens signed with the old key
keep working until they expire, new tokens use the new key, the old key stays published exactly as
long as a token it signed can live, and an emergency rotation withdraws the old key at once."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from gateway.auth.keyring import SigningKeyError
from gateway.container import Container, build
from gateway.store.tables import auth_signing_keys
from tests.conftest import Gateway
from tests.support.oauth import api_headers, get_token, register


def kid_of(token: str) -> str:
    return str(json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"])


def published(gw: Gateway) -> set[str]:
    return {k["kid"] for k in gw.http.get("/.well-known/jwks.json").json()["keys"]}


def read(gw: Gateway, token: str, pseudonym: str) -> int:
    return gw.http.get(f"/v1/participants/{pseudonym}", headers=api_headers(token)).status_code


@pytest.fixture
def other_process(gateway: Gateway) -> Iterator[Container]:
    second = build(gateway.container.settings, gateway.clock)
    yield second
    second.close()


def test_tokens_of_the_old_key_work_until_they_expire_and_new_tokens_use_the_new_key(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    partner = register(gateway)
    old = get_token(gateway, partner)
    gateway.clock.advance(timedelta(minutes=10))  # the old token has five minutes left
    new_kid, retired = gateway.container.auth.rotate_signing_key()
    assert retired == [kid_of(old)]
    new = get_token(gateway, partner)
    assert kid_of(new) == new_kid != kid_of(old)
    assert read(gateway, old, p) == 200
    assert read(gateway, new, p) == 200
    assert published(gateway) == {kid_of(old), new_kid}

    gateway.clock.advance(timedelta(minutes=5, seconds=30))  # the old token expired (leeway included)
    assert read(gateway, old, p) == 401
    assert read(gateway, new, p) == 200
    assert published(gateway) == {kid_of(old), new_kid}  # still published: a token signed just before rotation
    gateway.clock.advance(timedelta(minutes=10))  # ... lives at most 15 min + leeway after the rotation
    assert published(gateway) == {new_kid}


def test_a_retired_key_keeps_no_private_part_and_no_key_is_stored_in_the_clear(gateway: Gateway) -> None:
    partner = register(gateway)
    old = kid_of(get_token(gateway, partner))
    gateway.container.auth.rotate_signing_key()
    with gateway.container.db.read.connect() as conn:
        rows = {r.kid: r for r in conn.execute(select(auth_signing_keys))}
    assert rows[old].private_sealed is None
    assert rows[old].status == "retired"
    (active,) = [r for r in rows.values() if r.status == "active"]
    public = json.loads(active.public_jwk)
    assert "d" not in public
    sealed = bytes(active.private_sealed)
    assert public["x"].encode() not in sealed
    assert b'"d"' not in sealed


def test_an_emergency_rotation_withdraws_the_old_key_and_its_tokens_die_at_once(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    partner = register(gateway)
    old = get_token(gateway, partner)
    gateway.container.auth.rotate_signing_key()  # an ordinary rotation first: that key stays published
    older = old
    old = get_token(gateway, partner)
    assert read(gateway, older, p) == 200
    new_kid, _ = gateway.container.auth.rotate_signing_key(revoke_previous=True)
    assert read(gateway, old, p) == 401
    assert read(gateway, older, p) == 401
    assert published(gateway) == {new_kid}
    assert read(gateway, get_token(gateway, partner), p) == 200


def test_a_rotation_in_another_process_is_followed_here_for_signing_and_verifying(
    gateway: Gateway, other_process: Container
) -> None:
    p = gateway.register("amsterdam")
    partner = register(gateway)
    old = get_token(gateway, partner)
    new_kid, _ = other_process.auth.rotate_signing_key()
    assert kid_of(get_token(gateway, partner)) == new_kid
    assert read(gateway, old, p) == 200


def test_an_emergency_rotation_in_another_process_kills_tokens_cached_here(
    gateway: Gateway, other_process: Container
) -> None:
    p = gateway.register("amsterdam")
    old = get_token(gateway, register(gateway))
    assert read(gateway, old, p) == 200
    assert gateway.container.verifier.cached == 1
    gateway.clock.advance(timedelta(milliseconds=400))  # withdrawn within a second still means at once
    other_process.auth.rotate_signing_key(revoke_previous=True)
    gateway.clock.advance(timedelta(milliseconds=100))
    assert read(gateway, old, p) == 401


def test_rotation_clears_the_verified_token_cache(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    read(gateway, get_token(gateway, register(gateway)), p)
    assert gateway.container.verifier.cached == 1
    gateway.container.auth.rotate_signing_key()
    assert gateway.container.verifier.cached == 0


def test_a_signing_key_sealed_under_another_kek_is_never_used(gateway: Gateway) -> None:
    get_token(gateway, register(gateway))
    other_kek = SecretStr(base64.b64encode(os.urandom(32)).decode())
    settings = gateway.container.settings.model_copy(update={"kek": other_kek})
    stranger = build(settings, gateway.clock)
    try:
        with pytest.raises(SigningKeyError, match="another key-encryption key"):
            stranger.auth.keyring.signer()
    finally:
        stranger.close()
