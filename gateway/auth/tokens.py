"""Resource-server side of authentication: verify signed JWT access tokens, and check revocation per request.

Signature with an asymmetric allow-list only (`none` and every HMAC algorithm are refused, so a token
"signed" with the public key as an HMAC secret never verifies); no key-reference headers; `typ`
at+jwt (RFC 9068); issuer, audience, expiry and not-before checked against the injected clock (the token clock: real
time, also in demo and rehearsal mode; see `gateway.auth.timing`).

A verified token is cached by its SHA-256 digest until it expires, so signature verification does not
dominate each request. Revocation is not cached: with a `Revocation` configured, every request reads
the current status of the token's client and organisation (one query) and the revocation epoch; when
the epoch moved (a key rotated, a client or organisation was disabled, in any process), the cache is
dropped and the keys are read again before the token is accepted.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from joserfc.jws import JWSRegistry

from gateway.auth.model import PartyStatus
from gateway.auth.timing import checked_against
from gateway.clock import Clock
from gateway.exchange.context import Principal

ASYMMETRIC = frozenset({"ES256", "ES384", "RS256", "RS384", "PS256", "PS384", "EdDSA"})
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


class InvalidToken(Exception):
    """The bearer token is not acceptable; `reason` is safe to log (it never holds the token)."""

    def __init__(self, reason: str, token: VerifiedToken | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token = token  # set when the token verified but is refused (revoked): its client is known


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature and claims verified. `gateway_issued`: signed by the gateway's own key."""

    principal: Principal
    claims: Mapping[str, Any]
    scope: frozenset[str] | None
    certificate_thumbprint: str | None  # cnf x5t#S256 (RFC 8705), when the token is certificate-bound
    gateway_issued: bool


@dataclass(frozen=True, slots=True)
class Authenticated:
    token: VerifiedToken
    status: PartyStatus | None


class TrustedKeys(Protocol):
    def resolve(self, kid: str | None, now: float) -> tuple[Key, bool] | None:
        """Return the key named `kid` and whether it is the gateway's own, or None when not trusted now."""
        ...

    def invalidate(self) -> None:
        """Forget keys held in memory."""
        ...


class OwnKeys(Protocol):
    def resolve(self, kid: str, now: float) -> Key | None: ...

    def invalidate(self) -> None: ...


class StaticKeys:
    """A fixed set of trusted public keys (e.g. an external authorization server's)."""

    def __init__(self, keys: KeySet) -> None:
        if any(k.key_type == "oct" for k in keys.keys):
            raise ValueError("symmetric keys are never trusted for access tokens")
        self._keys = keys

    def resolve(self, kid: str | None, now: float) -> tuple[Key, bool] | None:
        """Return the key named `kid` (or the only key, when there is no kid)."""
        try:
            return self._keys.get_by_kid(kid), False
        except (JoseError, ValueError):
            return None

    def invalidate(self) -> None:
        """Nothing to forget: the set is fixed."""


class IssuerKeys:
    """The gateway's own signing keys first, then any additionally trusted static keys."""

    def __init__(self, own: OwnKeys, extra: KeySet | None = None) -> None:
        self._own = own
        self._extra = StaticKeys(extra) if extra is not None and extra.keys else None

    def resolve(self, kid: str | None, now: float) -> tuple[Key, bool] | None:
        """Return the trusted key named `kid` and whether it is the gateway's own."""
        if kid is not None:
            key = self._own.resolve(kid, now)
            if key is not None:
                return key, True
        return self._extra.resolve(kid, now) if self._extra is not None else None

    def invalidate(self) -> None:
        """Forget the own keys held in memory."""
        self._own.invalidate()


class Revocation(Protocol):
    def status(self, token: VerifiedToken) -> PartyStatus:
        """Return the current status of the token's client and organisation, and the epoch."""
        ...

    def revoked(self, token: VerifiedToken, status: PartyStatus, now: float) -> str | None:
        """Return why the token is revoked now, or None."""
        ...


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet | TrustedKeys,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...],
        clock: Clock,
        leeway: int = 30,
        cache_size: int = 10_000,
        revocation: Revocation | None = None,
    ) -> None:
        bad = set(algorithms) - ASYMMETRIC
        if bad:
            raise ValueError(f"only asymmetric algorithms are accepted, not {sorted(bad)}")
        self._keys: TrustedKeys = StaticKeys(keys) if isinstance(keys, KeySet) else keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._registry = JWSRegistry(algorithms=self._algorithms)
        self._clock = clock
        self._leeway = leeway
        self._cache: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._revocation = revocation
        self._epoch: int | None = None

    def clear_cache(self) -> None:
        """Forget every verified token (on key rotation or revocation)."""
        with self._lock:
            self._cache.clear()

    @property
    def cached(self) -> int:
        """Return how many verified tokens are cached."""
        with self._lock:
            return len(self._cache)

    def verify(self, token: str) -> Principal:
        """Return the principal of a valid, unrevoked token, or raise InvalidToken."""
        return self.authenticate(token).token.principal

    def authenticate(self, token: str) -> Authenticated:
        """Return the verified token and its client's current status, or raise InvalidToken."""
        now = self._clock.timestamp()
        digest = hashlib.sha256(token.encode()).digest()
        verified = self._cached(digest, now) or self._verify_and_cache(token, digest, now)
        if self._revocation is None:
            return Authenticated(verified, None)
        status = self._revocation.status(verified)
        if status.epoch != self._epoch:
            # Something changed somewhere (a rotation, a revocation): trust nothing held in memory.
            self._keys.invalidate()
            self.clear_cache()
            self._epoch = status.epoch
            verified = self._verify_and_cache(token, digest, now)
        reason = self._revocation.revoked(verified, status, now)
        if reason is not None:
            raise InvalidToken(f"revoked: {reason}", verified)
        return Authenticated(verified, status)

    def identify(self, token: str) -> VerifiedToken | None:
        """Return the token if its signature and claims verify now (revocation aside), else None.

        For the refusal path only: a token refused after it verified names a client whose refusal
        is evidence; a token that does not verify names nobody.
        """
        now = self._clock.timestamp()
        try:
            return self._cached(hashlib.sha256(token.encode()).digest(), now) or self._verify(token, now)
        except InvalidToken:
            return None

    def checked_against(self) -> str:
        """Return the phrase naming the clock the token's times are checked against, and its now."""
        return checked_against(self._clock)

    def _cached(self, digest: bytes, now: float) -> VerifiedToken | None:
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now >= cached.principal.expires_at + self._leeway:
            with self._lock:
                self._cache.pop(digest, None)
            raise InvalidToken("expired")
        return cached

    def _verify_and_cache(self, token: str, digest: bytes, now: float) -> VerifiedToken:
        verified = self._verify(token, now)
        if self._cache_size > 0:
            with self._lock:
                self._cache[digest] = verified
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return verified

    def _verify(self, token: str, now: float) -> VerifiedToken:
        if token.count(".") != 2:
            raise InvalidToken("malformed")
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken("malformed") from exc
        # Refused before any key is looked up: the algorithm, key references, the token type.
        if header.get("alg") not in self._algorithms:
            raise InvalidToken("algorithm not allowed")
        if _FORBIDDEN_HEADERS & set(header):
            raise InvalidToken("key-reference header not allowed")
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            raise InvalidToken("not an access token (typ must be at+jwt, RFC 9068)")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed")
        resolved = self._keys.resolve(kid, now)
        if resolved is None:
            raise InvalidToken("unknown signing key")
        key, own = resolved
        try:
            decoded = jwt.decode(token, key, algorithms=self._algorithms, registry=self._registry)
        except JoseError as exc:
            raise InvalidToken(f"signature: {exc.error}") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidToken("malformed") from exc
        registry = jwt.JWTClaimsRegistry(
            now=int(now),
            leeway=self._leeway,
            iss={"essential": True, "value": self._issuer},
            aud={"essential": True, "value": self._audience},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
            organisation={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(f"claims: {exc.error} {getattr(exc, 'claim', '')}".strip()) from exc
        claims = decoded.claims
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or nbf > int(now) + self._leeway):
            raise InvalidToken("not yet valid")
        organisation, client_id = claims["organisation"], claims["client_id"]
        if not isinstance(organisation, str) or not isinstance(client_id, str):
            raise InvalidToken("claims: organisation and client_id must be strings")
        return VerifiedToken(
            principal=Principal(
                organisation=organisation,
                client_id=client_id,
                token_id=str(claims["jti"]),
                expires_at=int(claims["exp"]),
            ),
            claims=MappingProxyType(dict(claims)),
            scope=_scope(claims.get("scope")),
            certificate_thumbprint=_thumbprint(claims.get("cnf")),
            gateway_issued=own,
        )


def _scope(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidToken("claims: scope must be a space-separated string")
    return frozenset(value.split())


def _thumbprint(cnf: Any) -> str | None:
    if cnf is None:
        return None
    thumbprint = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    if not isinstance(thumbprint, str) or not thumbprint:
        # A confirmation this resource server cannot check must never be ignored (RFC 7800 section 3.1).
        raise InvalidToken("claims: unsupported cnf (only x5t#S256 is understood)")
    return thumbprint
