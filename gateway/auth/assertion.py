"""Client authentication with `private_key_jwt` (RFC 7523 section 2.2), on authlib's framework-neutral
`JWTBearerClientAssertion`, tightened to the NL GOV Assurance profile.

authlib drives the flow (read the form, find the client by `sub`, verify the signature with joserfc,
check the claims, check the jti); this subclass decides what is acceptable:

- RS256, PS256 or ES256 only; `none` and HMAC never (a public key is never an HMAC secret);
- no `jku`, `x5u`, `jwk`, `x5c` or `crit` header: the key comes from the registry, never the token;
- `iss` = `sub` = the client id; `aud` names this authorization server only (its issuer identifier or
  its token endpoint), a list holding anything else is refused;
- `exp`, `iat` and `jti` required; `nbf` honoured; time from the injected clock with a small leeway;
  an assertion may live at most `max_lifetime` seconds;
- a jti of at least 128 bits, accepted once: the replay cache is durable and shared by all processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from gateway.auth.client_keys import ClientKeysUnavailable
from gateway.auth.model import ASSERTION_ALGORITHMS, FORBIDDEN_HEADERS, MIN_JTI_LENGTH, Client
from gateway.clock import Clock

QueryClient = Callable[[str], Client | None]
KeysFor = Callable[[Client, str | None], KeySet]
RememberJti = Callable[[str, str, int], bool]  # (client_id, jti, keep_until) -> first time seen


def reject(description: str, client_id: str | None = None, reason: str | None = None) -> InvalidClientError:
    """Return an `invalid_client` error whose description is safe to send (RFC 6749 character set).

    `client_id` only once the assertion's signature verified with that client's registered key: the
    refusal then names an identified client (and is audited), not a claim anyone could make.
    """
    safe = "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in description)[:200]
    error = InvalidClientError(description=safe, status_code=401)
    error.client_id = client_id
    error.reason = reason
    return error


class _AssertionRequest:
    """The little of an OAuth2 request authlib's client assertion reads: the form, and the client found."""

    def __init__(self, form: Mapping[str, str]) -> None:
        self.form = form
        self.client: Client | None = None


class ClientAssertionVerifier(JWTBearerClientAssertion):  # type: ignore[misc]
    def __init__(
        self,
        audiences: tuple[str, ...],
        clock: Clock,
        keys_for: KeysFor,
        remember_jti: RememberJti,
        leeway: int = 30,
        max_lifetime: int = 300,
    ) -> None:
        super().__init__(validate_jti=True, leeway=leeway)
        self._audiences = audiences
        self._clock = clock
        self._keys_for = keys_for
        self._remember_jti = remember_jti
        self._max_lifetime = max_lifetime
        self._registry = JWSRegistry(algorithms=list(ASSERTION_ALGORITHMS))

    def authenticate(self, form: Mapping[str, str], query_client: QueryClient) -> Client | None:
        """Return the client the form's assertion proves, None when the form holds no assertion,
        or raise `InvalidClientError`."""
        request = _AssertionRequest(form)
        try:
            client = self(query_client, request)
        except ValueError as exc:  # authlib refuses to build an error description it finds unsafe
            raise reject("invalid client assertion") from exc
        return client if isinstance(client, Client) else None

    # -- authlib hooks ---------------------------------------------------------------------------

    def get_audiences(self) -> list[str]:
        return list(self._audiences)

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        headers, claims = super().extract_assertion(assertion)
        # Refused before any key is looked up: the algorithm and where the key would come from.
        if headers.get("alg") not in ASSERTION_ALGORITHMS:
            raise reject(f"assertion algorithm must be one of {', '.join(ASSERTION_ALGORITHMS)}")
        if FORBIDDEN_HEADERS & set(headers):
            raise reject("assertion headers jku, x5u, jwk, x5c and crit are not accepted")
        if str(headers.get("typ", "")).lower() in ("at+jwt", "application/at+jwt"):
            raise reject("an access token is not a client assertion")
        return headers, claims

    def resolve_client_public_key(self, client: Client) -> Callable[[Any], KeySet]:
        # A callable, so the key set is picked once the header's kid is known (jwks_uri refetch).
        return lambda obj: self._keys_for(client, obj.headers().get("kid"))

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(ASSERTION_ALGORITHMS), registry=self._registry)
        except ClientKeysUnavailable as exc:
            raise reject(f"the client's keys are unavailable: {exc}") from exc
        except JoseError as exc:
            raise reject(f"assertion signature not verified ({exc.error})") from exc
        except (ValueError, TypeError) as exc:
            raise reject("assertion signature not verified (no matching key)") from exc
        self.verify_claims(token.claims)
        claims: dict[str, Any] = token.claims
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> None:
        # Called once the signature verified with the registered key of the client named by `sub`.
        client_id = str(claims.get("sub"))[:64]
        now = int(self._clock.timestamp())
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=self.leeway,
            iss={"essential": True},
            sub={"essential": True},
            aud={"essential": True, "values": list(self._audiences)},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            claim = getattr(exc, "claim", "")
            raise reject(
                f"assertion claim {claim or ''} not valid ({exc.error})".replace("  ", " "),
                client_id,
                "assertion_invalid",
            ) from exc
        if claims["iss"] != claims["sub"]:
            raise reject("assertion iss and sub must both be the client id", client_id, "assertion_invalid")
        aud = claims["aud"]
        if isinstance(aud, list) and not set(aud) <= set(self._audiences):
            raise reject("assertion aud may name this authorization server only", client_id, "assertion_invalid")
        lifetime = claims["exp"] - claims["iat"]
        if lifetime > self._max_lifetime:
            raise reject(
                f"assertion lifetime (exp - iat) exceeds {self._max_lifetime} seconds", client_id, "assertion_invalid"
            )
        jti = claims["jti"]
        if not isinstance(jti, str) or not MIN_JTI_LENGTH <= len(jti) <= 256:
            raise reject(
                "assertion jti must hold at least 128 bits (22 to 256 characters)", client_id, "assertion_invalid"
            )
        if not self.validate_jti(claims, jti):
            raise reject("assertion jti was used before (replay)", client_id, "assertion_replayed")

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        # Kept until the assertion could no longer pass the exp check, leeway included.
        return self._remember_jti(str(claims["sub"]), jti, int(claims["exp"]) + self.leeway + 1)

    def authenticate_client(self, client: Client) -> Client:
        return client
