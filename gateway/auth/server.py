"""The authorization server: client credentials with `private_key_jwt` (NL GOV Assurance profile for
OAuth 2.0), token introspection (RFC 7662), discovery (RFC 8414, JWKS), and the resource server's
token verifier that shares its keys and its revocation state.

Framework-free: the API layer hands in the parsed form and the facts of the HTTP request, and turns
`OAuthError` into an RFC 6749 JSON error. Access tokens are JWTs in the RFC 9068 shape, signed by the
gateway's current key; never a refresh token.

Two clocks: the token clock (real time, also in demo and rehearsal mode) times assertions, the jti
replay cache, access tokens, key rotation and rate limits; the policy clock (simulated in demo and
rehearsal mode) decides the organisation's covenant standing, and so which roles a token may carry.
In production both are the one system clock.

A refusal of an identified client (a known client id: disabled, refused for its standing or scope,
a replayed assertion whose signature verified) is recorded in the audit log (`auth.token.refused`)
before the answer; a refusal that names nobody (unknown client, forged assertion) and a rate limit
go to the operational log only, so that nobody can flood the audit log.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from authlib.oauth2.rfc6749 import OAuth2Error
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.audit.writer import AuditUnavailable, AuditWriter
from gateway.auth import errors
from gateway.auth.assertion import ClientAssertionVerifier
from gateway.auth.client_keys import ClientKeys
from gateway.auth.errors import OAuthError
from gateway.auth.keyring import KeyRing
from gateway.auth.model import ASSERTION_ALGORITHMS, ASSERTION_TYPE, CLIENT_CREDENTIALS, Client
from gateway.auth.mtls import CertificateSource
from gateway.auth.ratelimit import RateLimited, RateLimiter
from gateway.auth.registry import ClientRegistry
from gateway.auth.repository import AuthRepository
from gateway.auth.revocation import PartyRevocation
from gateway.auth.standing import granted_roles, token_standing
from gateway.auth.timing import checked_against
from gateway.auth.tokens import InvalidToken, IssuerKeys, TokenVerifier
from gateway.clock import Clock
from gateway.policies.compiled import CompiledPolicy
from gateway.settings import Settings
from gateway.store.db import Database

log = structlog.get_logger("gateway.auth")
TOKEN_PATH = "/oauth/token"
INTROSPECTION_PATH = "/oauth/introspect"
JWKS_PATH = "/.well-known/jwks.json"
JTI_PURGE_INTERVAL = 600.0
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    token_id: str

    def body(self) -> dict[str, Any]:
        """Return the RFC 6749 section 5.1 response (never a refresh token)."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


@dataclass(frozen=True, slots=True)
class HttpFacts:
    """What the API layer tells about the HTTP request: nothing of it is believed unchecked."""

    trace_id: str
    has_authorization_header: bool = False
    certificate_thumbprint: str | None = None  # from a trusted TLS terminator only (see mtls.py)


def claimed_client(form: Mapping[str, str]) -> str | None:
    """Return the client id an assertion *claims* (unverified; for the log only), truncated and cleaned."""
    assertion = form.get("client_assertion")
    claimed: Any = form.get("client_id")
    if assertion:
        try:
            payload = json.loads(jws.extract_compact(assertion.encode()).payload)
            claimed = payload.get("sub", claimed) if isinstance(payload, dict) else claimed
        except (JoseError, ValueError, TypeError):
            pass
    if not isinstance(claimed, str):
        return None
    return "".join(c for c in claimed[:64] if c.isalnum() or c in "._:-") or None


class AuthorizationServer:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        policy: CompiledPolicy,
        db: Database,
        kek: bytes,
        extra_keys: KeySet | None = None,
        token_clock: Clock | None = None,
        audit: AuditWriter | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock  # the policy clock: covenant standing
        self.token_clock = token_clock or clock  # real time: every time a token or an assertion carries
        self.audit = audit  # None (the command line): refusals go to the operational log only
        self._policy: Callable[[], CompiledPolicy] = lambda: policy
        self._db = db
        self.repo = AuthRepository()
        self.issuer = settings.token_issuer.rstrip("/")
        self.token_endpoint = self.issuer + TOKEN_PATH
        self.keyring = KeyRing(db, self.repo, kek, self.token_clock, settings.token_signing_algorithm)
        self.client_keys = ClientKeys(self.token_clock, cache_seconds=settings.jwks_uri_cache_seconds)
        self.limiter = RateLimiter(self.token_clock)
        self.certificates = CertificateSource(settings.mtls_certificate_header, settings.mtls_trusted_proxies)
        self._revocation = PartyRevocation(db, self.repo, lambda: self.policy, clock)
        self.verifier = TokenVerifier(
            IssuerKeys(self.keyring, extra_keys),
            settings.token_issuer,
            settings.token_audience,
            settings.token_algorithms,
            self.token_clock,
            leeway=settings.token_leeway_seconds,
            revocation=self._revocation,
        )
        self.registry = ClientRegistry(db, self.repo, lambda: self.policy, clock, on_change=self._forget)
        self._assertions = ClientAssertionVerifier(
            audiences=(self.issuer, self.token_endpoint),
            clock=self.token_clock,
            keys_for=self.client_keys.key_set,
            remember_jti=self._remember_jti,
            leeway=settings.token_leeway_seconds,
            max_lifetime=settings.client_assertion_max_lifetime_seconds,
        )
        self._next_purge = 0.0

    def close(self) -> None:
        """Close the revocation check's raw read connections."""
        self._revocation.close()

    @property
    def policy(self) -> CompiledPolicy:
        """Return the effective policy now (configuration and lifecycle facts)."""
        return self._policy()

    def follow_policy(self, source: Callable[[], CompiledPolicy]) -> None:
        """Read the effective policy from `source` from now on (the lifecycle's policy holder)."""
        self._policy = source

    # -- the token endpoint ------------------------------------------------------------------------

    def token(self, form: Mapping[str, str], http: HttpFacts) -> IssuedToken:
        """Issue an access token to the client the form's assertion proves, or raise OAuthError."""
        try:
            grant_type = form.get("grant_type")
            if not grant_type:
                raise OAuthError(errors.INVALID_REQUEST, "grant_type is required")
            if grant_type != CLIENT_CREDENTIALS:
                raise OAuthError(errors.UNSUPPORTED_GRANT_TYPE, "only client_credentials is supported")
            client = self._authenticate(form, http)
            standing = token_standing(self.policy, client.organisation, self.clock.timestamp(), client.client_id)
            roles = granted_roles(self.policy, standing, client.roles, form.get("scope"), client.client_id)
            self._limit(client, "token")
            issued = self._issue(client, roles, http)
        except OAuthError as exc:
            self.log_refusal("token", exc, form, http)
            self.record_refusal("token", exc, form, http)
            raise
        return issued

    def _authenticate(self, form: Mapping[str, str], http: HttpFacts) -> Client:
        """Return the active client the assertion proves; raise invalid_client (401) otherwise."""
        if http.has_authorization_header or "client_secret" in form:
            raise OAuthError(errors.INVALID_CLIENT, "authenticate with private_key_jwt only", reason="other_method")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuthError(
                errors.INVALID_CLIENT, "client authentication with private_key_jwt is required", reason="no_assertion"
            )
        try:
            client = self._assertions.authenticate(form, self._query_client)
        except OAuth2Error as exc:
            description = exc.description or "client authentication failed"
            if any(f"assertion claim {c}" in description for c in ("exp", "iat", "nbf")):
                description = f"{description}; {checked_against(self.token_clock)}"
            # Set only when the assertion's signature verified with the client's registered key.
            identified = getattr(exc, "client_id", None)
            reason = getattr(exc, "reason", None)
            raise OAuthError(errors.INVALID_CLIENT, description, reason=reason, client_id=identified) from None
        if client is None:  # pragma: no cover - the form was checked above
            raise OAuthError(errors.INVALID_CLIENT, "client authentication failed")
        if form.get("client_id") not in (None, client.client_id):
            raise OAuthError(
                errors.INVALID_CLIENT,
                "client_id does not match the assertion",
                reason="client_id_mismatch",
                client_id=client.client_id,
            )
        self._check_standing(client)
        if client.certificate_bound and http.certificate_thumbprint is None:
            raise OAuthError(
                errors.INVALID_CLIENT,
                "this client's tokens are certificate-bound: connect with its TLS client certificate",
                reason="certificate_missing",
                client_id=client.client_id,
            )
        return client

    def _query_client(self, client_id: str) -> Client | None:
        with self._db.read.connect() as conn:
            return self.repo.client(conn, client_id)

    def _check_standing(self, client: Client) -> None:
        """Refuse a client that is disabled, demo-only outside demo mode, or of a disabled organisation."""
        cid = client.client_id
        if not client.active:
            raise OAuthError(errors.INVALID_CLIENT, "the client is disabled", reason="client_disabled", client_id=cid)
        if client.demo and not self.settings.demo:
            raise OAuthError(
                errors.INVALID_CLIENT, "demo clients are refused outside demo mode", reason="demo_client", client_id=cid
            )
        with self._db.read.connect() as conn:
            status = self.repo.party_status(conn, cid, client.organisation)
        if status.organisation_disabled:
            raise OAuthError(
                errors.INVALID_CLIENT, "the organisation is disabled", reason="organisation_disabled", client_id=cid
            )
        # After the end only the oversight roles remain, until the aftercare ends (policy clock).
        token_standing(self.policy, client.organisation, self.clock.timestamp(), cid)

    def _limit(self, client: Client, what: str) -> None:
        try:
            self.limiter.take(f"{what}:{client.client_id}", self.settings.token_rate_limit_per_minute)
        except RateLimited as exc:
            raise OAuthError(
                errors.RATE_LIMITED,
                f"too many {what} requests; retry after {exc.retry_after} s",
                reason="rate_limited",
                client_id=client.client_id,
                headers={"Retry-After": str(exc.retry_after)},
            ) from None

    def _issue(self, client: Client, roles: tuple[str, ...], http: HttpFacts) -> IssuedToken:
        signer = self.keyring.signer()
        now = int(self.token_clock.timestamp())
        lifetime = self.settings.access_token_lifetime_seconds
        token_id = secrets.token_urlsafe(24)
        claims: dict[str, Any] = {
            "iss": self.settings.token_issuer,
            "sub": client.client_id,
            "aud": self.settings.token_audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": token_id,
            "client_id": client.client_id,
            "organisation": client.organisation,
            "scope": " ".join(roles),
        }
        if client.certificate_bound:
            claims["cnf"] = {"x5t#S256": http.certificate_thumbprint}
        header = {"alg": signer.alg, "kid": signer.kid, "typ": "at+jwt"}
        token = jwt.encode(header, claims, signer.key, algorithms=[signer.alg])
        log.info(
            "auth.token.issued",
            client_id=client.client_id,
            organisation=client.organisation,
            token_id=token_id,
            kid=signer.kid,
            scope=claims["scope"],
            expires_at=claims["exp"],
            certificate_bound=client.certificate_bound,
            trace_id=http.trace_id,
        )
        return IssuedToken(token, lifetime, claims["scope"], token_id)

    def _remember_jti(self, client_id: str, jti: str, keep_until: int) -> bool:
        now = self.token_clock.now()
        with self._db.write.begin() as conn:
            fresh = self.repo.remember_jti(conn, client_id, jti, datetime.fromtimestamp(keep_until, UTC))
            if now.timestamp() >= self._next_purge:
                self._next_purge = now.timestamp() + JTI_PURGE_INTERVAL
                self.repo.purge_jtis(conn, now)
        return fresh

    def log_refusal(self, endpoint: str, exc: OAuthError, form: Mapping[str, str], http: HttpFacts) -> None:
        """Log a refused token or introspection request: the reason, never the assertion."""
        event = (
            "auth.client.authentication_failed" if exc.error == errors.INVALID_CLIENT else f"auth.{endpoint}.refused"
        )
        log.warning(
            event,
            endpoint=endpoint,
            error=exc.error,
            reason=exc.reason,
            client_id=exc.client_id,
            claimed_client_id=None if exc.client_id else claimed_client(form),
            trace_id=http.trace_id,
        )

    def record_refusal(self, endpoint: str, exc: OAuthError, form: Mapping[str, str], http: HttpFacts) -> None:
        """Append the refusal of an identified client to the audit log before the answer; raise a 503
        OAuthError when the log cannot take it. Nameless refusals and rate limits are not recorded."""
        if self.audit is None or exc.client_id is None or exc.error in (errors.RATE_LIMITED, errors.UNAVAILABLE):
            return
        client = self._query_client(exc.client_id)
        if client is None:
            return
        policy = self.policy
        now = self.clock.now()  # the policy clock, as every entry of the log: "after the end" is its time
        scope = "".join(c for c in form.get("scope", "")[:120] if c.isalnum() or c in " ._-") or None
        entry: dict[str, Any] = {
            "v": 1,
            "time": now.isoformat().replace("+00:00", "Z"),
            "event": f"auth.{endpoint}.refused",
            "organisation": client.organisation,
            "client_id": client.client_id,
            "acting_user": None,
            "role": None,
            "purpose": None,
            "trace_id": http.trace_id,
            "span_id": None,
            "parent_span_id": None,
            "policy_version": policy.version,
            "decision": "deny",
            "reason": exc.reason if exc.reason != exc.description else exc.error,
            "processing_activity_id": None,
            "error": exc.error,
            "scope_requested": scope,
        }
        if policy.lifecycle_version is not None:
            entry["lifecycle_version"] = policy.lifecycle_version
        try:
            self.audit.append(entry, now, self.settings.audit_flush_timeout_seconds)
        except AuditUnavailable:
            log.error("auth.refusal.audit_unavailable", endpoint=endpoint, client_id=client.client_id)
            raise OAuthError(
                errors.UNAVAILABLE,
                "the audit log cannot record this request; retry later",
                reason="audit_unavailable",
                client_id=client.client_id,
                headers={"Retry-After": "5"},
            ) from None

    # -- introspection (RFC 7662) ------------------------------------------------------------------

    def introspect(self, form: Mapping[str, str], http: HttpFacts) -> dict[str, Any]:
        """Return what an authenticated client may learn of a token: only its own organisation's tokens."""
        try:
            client = self._authenticate(form, http)
            self._limit(client, "introspection")
            token = form.get("token")
            if not token:
                raise OAuthError(errors.INVALID_REQUEST, "token is required", client_id=client.client_id)
        except OAuthError as exc:
            self.log_refusal("introspection", exc, form, http)
            self.record_refusal("introspection", exc, form, http)
            raise
        try:
            verified = self.verifier.authenticate(token).token
        except InvalidToken as exc:
            log.info("auth.token.introspected", client_id=client.client_id, active=False, reason=exc.reason)
            return {"active": False}
        if verified.principal.organisation != client.organisation:
            log.info("auth.token.introspected", client_id=client.client_id, active=False, reason="other_organisation")
            return {"active": False}
        claims = verified.claims
        body: dict[str, Any] = {"active": True, "token_type": "Bearer"}
        for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "organisation", "cnf"):
            if name in claims:
                body[name] = claims[name]
        log.info("auth.token.introspected", client_id=client.client_id, active=True, token_id=claims.get("jti"))
        return body

    # -- discovery ---------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """Return the authorization server metadata (RFC 8414)."""
        algorithms = list(ASSERTION_ALGORITHMS)
        roles = sorted({role for org in self.policy.organisations.values() for role in org.roles})
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.issuer + JWKS_PATH,
            "introspection_endpoint": self.issuer + INTROSPECTION_PATH,
            "grant_types_supported": [CLIENT_CREDENTIALS],
            "response_types_supported": [],
            "scopes_supported": roles,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": algorithms,
            "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
            "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
            "tls_client_certificate_bound_access_tokens": self.certificates.enabled,
        }

    def jwks(self) -> dict[str, Any]:
        """Return the public keys that verify access tokens: the current key and those still in use."""
        return {"keys": self.keyring.published()}

    # -- operator actions ----------------------------------------------------------------------------

    def rotate_signing_key(self, revoke_previous: bool = False) -> tuple[str, list[str]]:
        """Activate a new signing key; the old one stays published until its last token expired."""
        keep = timedelta(seconds=self.settings.access_token_lifetime_seconds + self.settings.token_leeway_seconds)
        kid, retired = self.keyring.rotate(keep, revoke_previous)
        self._forget()
        log.info("auth.signing_key.rotated", kid=kid, retired=retired, revoke_previous=revoke_previous)
        return kid, retired

    def _forget(self) -> None:
        """Drop what this process holds in memory after a rotation or revocation (others follow the epoch)."""
        self.verifier.clear_cache()
        self.keyring.invalidate()
        self.client_keys.forget()
