"""The resource server's token verifier with a per-request revocation check (fakes, no database): the
digest cache saves signature checks, never revocation checks; an epoch change drops the cache and the
keys held in memory; what the verifier cannot understand, it refuses."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, Key, KeySet

from gateway.auth.model import PartyStatus, Status
from gateway.auth.tokens import InvalidToken, IssuerKeys, TokenVerifier, VerifiedToken
from gateway.clock import FixedClock

ISSUER, AUDIENCE = "https://gateway.test", "lvv-exchange-gateway"
NOW = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)


class OwnKeys:
    """The gateway's keys as a dict, counting how often they are forgotten."""

    def __init__(self, *keys: ECKey) -> None:
        self.keys: dict[str, Key] = {str(k.kid): k for k in keys}
        self.invalidated = 0

    def resolve(self, kid: str, now: float) -> Key | None:
        return self.keys.get(kid)

    def invalidate(self) -> None:
        self.invalidated += 1


class FakeRevocation:
    def __init__(self) -> None:
        self.epoch = 1
        self.disabled: set[str] = set()
        self.checks = 0

    def status(self, token: VerifiedToken) -> PartyStatus:
        self.checks += 1
        client = Status.DISABLED if token.principal.client_id in self.disabled else Status.ACTIVE
        return PartyStatus(self.epoch, client, False, None)

    def revoked(self, token: VerifiedToken, status: PartyStatus, now: float) -> str | None:
        return "client_disabled" if status.client is Status.DISABLED else None


class CountingKeys(OwnKeys):
    def __init__(self, *keys: ECKey) -> None:
        super().__init__(*keys)
        self.resolved = 0

    def resolve(self, kid: str, now: float) -> Key | None:
        self.resolved += 1
        return super().resolve(kid, now)


def key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"alg": "ES256", "kid": kid})


def mint(signer: ECKey, clock: FixedClock, **claims: Any) -> str:
    now = int(clock.timestamp())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "client-a",
        "client_id": "client-a",
        "organisation": "amsterdam",
        "iat": now,
        "exp": now + 600,
        "jti": "j" * 32,
        **claims,
    }
    return jwt.encode({"alg": "ES256", "kid": signer.kid, "typ": "at+jwt"}, body, signer, algorithms=["ES256"])


def verifier(
    keys: OwnKeys, clock: FixedClock, revocation: FakeRevocation | None, cache_size: int = 100
) -> TokenVerifier:
    return TokenVerifier(
        IssuerKeys(keys), ISSUER, AUDIENCE, ("ES256",), clock, cache_size=cache_size, revocation=revocation
    )


def test_a_cached_token_is_still_checked_for_revocation_on_every_request() -> None:
    clock, signer, revocation = FixedClock(NOW), key("k1"), FakeRevocation()
    keys = CountingKeys(signer)
    v = verifier(keys, clock, revocation)
    token = mint(signer, clock)
    for _ in range(3):
        assert v.verify(token).organisation == "amsterdam"
    assert revocation.checks == 3
    assert keys.resolved == 2  # verified twice: once, and once more on meeting the first epoch
    revocation.disabled.add("client-a")
    with pytest.raises(InvalidToken, match="revoked: client_disabled"):
        v.verify(token)


def test_an_epoch_change_drops_the_cache_and_the_keys_held_in_memory() -> None:
    clock, signer, revocation = FixedClock(NOW), key("k1"), FakeRevocation()
    keys = OwnKeys(signer)
    v = verifier(keys, clock, revocation)
    token = mint(signer, clock)
    v.verify(token)
    assert v.cached == 1
    del keys.keys["k1"]  # the key was withdrawn in another process ...
    v.verify(token)  # ... which this one does not know until the epoch moves
    revocation.epoch += 1
    with pytest.raises(InvalidToken, match="unknown signing key"):
        v.verify(token)
    assert v.cached == 0
    assert keys.invalidated == 2


def test_without_a_cache_every_request_verifies_the_signature() -> None:
    clock, signer = FixedClock(NOW), key("k1")
    keys = CountingKeys(signer)
    v = verifier(keys, clock, None, cache_size=0)
    token = mint(signer, clock)
    for _ in range(3):
        v.verify(token)
    assert keys.resolved == 3
    assert v.cached == 0


def test_a_cached_token_expires_on_time() -> None:
    clock, signer = FixedClock(NOW), key("k1")
    v = verifier(OwnKeys(signer), clock, None)
    token = mint(signer, clock)
    v.verify(token)
    clock.advance(timedelta(seconds=600 + 30))
    with pytest.raises(InvalidToken, match="expired"):
        v.verify(token)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param({"cnf": {"jkt": "abc"}}, "unsupported cnf", id="a-confirmation-it-cannot-check"),
        pytest.param({"cnf": "x"}, "unsupported cnf", id="a-malformed-confirmation"),
        pytest.param({"scope": ["case_manager"]}, "scope must be", id="a-scope-that-is-not-a-string"),
    ],
)
def test_a_token_the_verifier_cannot_fully_understand_is_refused(claims: dict[str, Any], reason: str) -> None:
    clock, signer = FixedClock(NOW), key("k1")
    with pytest.raises(InvalidToken, match=reason):
        verifier(OwnKeys(signer), clock, None).verify(mint(signer, clock, **claims))


def test_a_token_signed_by_an_additionally_trusted_key_is_not_gateway_issued() -> None:
    clock, own, external = FixedClock(NOW), key("own"), key("external")
    trusted = IssuerKeys(OwnKeys(own), KeySet([ECKey.import_key(external.as_dict(private=False))]))
    v = TokenVerifier(trusted, ISSUER, AUDIENCE, ("ES256",), clock)
    assert v.authenticate(mint(own, clock)).token.gateway_issued is True
    assert v.authenticate(mint(external, clock)).token.gateway_issued is False


def test_the_verifier_refuses_a_symmetric_trusted_key() -> None:
    from joserfc.jwk import OctKey

    with pytest.raises(ValueError, match="symmetric"):
        TokenVerifier(KeySet([OctKey.generate_key(256)]), ISSUER, AUDIENCE, ("ES256",), FixedClock(NOW))


def test_verification_takes_no_wall_clock_time_into_account() -> None:
    """Validity follows the injected clock only: a token of 2024 verifies in 2024, whatever today is."""
    clock, signer = FixedClock(NOW), key("k1")
    assert time.time() > NOW.timestamp() + 3600
    assert verifier(OwnKeys(signer), clock, None).verify(mint(signer, clock)).client_id == "client-a"
