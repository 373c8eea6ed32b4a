"""Resource-server side of authentication: verify signed JWT access tokens.

Signature with an asymmetric allow-list only (`none` and every HMAC algorithm are refused, so a token
"signed" with the public key as an HMAC secret never verifies); issuer, audience, expiry and
not-before checked against the injected clock. A verified token is cached by its SHA-256 digest
until it expires, so signature verification does not dominate each request.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from gateway.clock import Clock
from gateway.exchange.context import Principal

ASYMMETRIC = frozenset({"ES256", "ES384", "RS256", "RS384", "PS256", "PS384", "EdDSA"})
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


class InvalidToken(Exception):
    """The bearer token is not acceptable; `reason` is safe to log (it never holds the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...],
        clock: Clock,
        leeway: int = 30,
        cache_size: int = 10_000,
    ) -> None:
        bad = set(algorithms) - ASYMMETRIC
        if bad:
            raise ValueError(f"only asymmetric algorithms are accepted, not {sorted(bad)}")
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._registry = JWSRegistry(algorithms=self._algorithms)
        self._clock = clock
        self._leeway = leeway
        self._cache: OrderedDict[bytes, Principal] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        """Forget every verified token (on key rotation or revocation)."""
        with self._lock:
            self._cache.clear()

    def verify(self, token: str) -> Principal:
        """Return the principal of a valid token, or raise InvalidToken."""
        now = int(self._clock.timestamp())
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None:
            if now >= cached.expires_at + self._leeway:
                with self._lock:
                    self._cache.pop(digest, None)
                raise InvalidToken("expired")
            return cached
        principal = self._verify(token, now)
        with self._lock:
            self._cache[digest] = principal
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def _verify(self, token: str, now: int) -> Principal:
        if token.count(".") != 2:
            raise InvalidToken("malformed")
        try:
            decoded = jwt.decode(token, self._keys, algorithms=self._algorithms, registry=self._registry)
        except JoseError as exc:
            raise InvalidToken(f"signature: {exc.error}") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidToken("malformed") from exc
        header = decoded.header
        if header.get("alg") not in self._algorithms:
            raise InvalidToken("algorithm not allowed")
        if _FORBIDDEN_HEADERS & set(header):
            raise InvalidToken("key-reference header not allowed")
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            raise InvalidToken("not an access token (typ must be at+jwt, RFC 9068)")
        registry = jwt.JWTClaimsRegistry(
            now=now,
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
        if nbf is not None and (not isinstance(nbf, int | float) or nbf > now + self._leeway):
            raise InvalidToken("not yet valid")
        organisation, client_id = claims["organisation"], claims["client_id"]
        if not isinstance(organisation, str) or not isinstance(client_id, str):
            raise InvalidToken("claims: organisation and client_id must be strings")
        return Principal(
            organisation=organisation,
            client_id=client_id,
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
        )
