"""The client registry, the operator's side: register partner systems, rotate their keys, disable and
enable clients and whole organisations, list them. Each change is one committed unit of work; every
revocation advances the epoch, so every gateway process stops honouring the tokens on its next request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from gateway.auth.client_keys import validate_jwks_uri, validate_public_jwks
from gateway.auth.model import CLIENT_ID, Client, RegistryError, Status
from gateway.auth.repository import AuthRepository
from gateway.clock import Clock
from gateway.policies.compiled import CompiledPolicy
from gateway.store.db import Database

log = structlog.get_logger("gateway.auth")


class ClientRegistry:
    def __init__(
        self,
        db: Database,
        repo: AuthRepository,
        policy: Callable[[], CompiledPolicy],
        clock: Clock,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._repo = repo
        self._policy = policy
        self._clock = clock
        self._on_change = on_change

    def _organisation_roles(self, organisation: str) -> tuple[str, ...]:
        org = self._policy().organisations.get(organisation)
        if org is None:
            raise RegistryError(f"organisation {organisation!r} is not in the configuration")
        return tuple(org.roles)

    def register(
        self,
        client_id: str,
        organisation: str,
        roles: tuple[str, ...],
        *,
        jwks: Any = None,
        jwks_uri: str | None = None,
        name: str | None = None,
        certificate_bound: bool = False,
        rate_limit_per_minute: int | None = None,
        demo: bool = False,
    ) -> Client:
        """Register a partner system with its public keys; return it."""
        if not CLIENT_ID.match(client_id):
            raise RegistryError("client_id: 3 to 64 characters of letters, digits and . _ : -, starting alphanumeric")
        org_roles = self._organisation_roles(organisation)
        if not roles:
            raise RegistryError("a client needs at least one role")
        unknown = sorted(set(roles) - set(org_roles))
        if unknown:
            raise RegistryError(f"roles {unknown} are not roles of {organisation} ({', '.join(org_roles)})")
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise RegistryError("rate_limit_per_minute must be at least 1")
        keys, uri = self._keys(jwks, jwks_uri)
        client = Client(
            client_id=client_id,
            organisation=organisation,
            name=(name or client_id)[:200],
            roles=tuple(dict.fromkeys(roles)),
            jwks=keys,
            jwks_uri=uri,
            status=Status.ACTIVE,
            status_reason=None,
            demo=demo,
            certificate_bound=certificate_bound,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        with self._db.write.begin() as conn:
            if self._repo.client(conn, client_id) is not None:
                raise RegistryError(f"client {client_id!r} is already registered")
            self._repo.add_client(conn, client, self._clock.now())
            # The per-request status is cached behind the counter, "not registered" too (a client
            # trusted through the JWKS file): the registration's status and rate limit apply at once.
            self._repo.bump_epoch(conn)
        log.info("auth.client.registered", client_id=client_id, organisation=organisation, roles=list(roles))
        return client

    def _keys(self, jwks: Any, jwks_uri: str | None) -> tuple[dict[str, Any] | None, str | None]:
        if (jwks is None) == (jwks_uri is None):
            raise RegistryError("give either a JWKS or a jwks_uri")
        if jwks is not None:
            return validate_public_jwks(jwks), None
        assert jwks_uri is not None
        return None, validate_jwks_uri(jwks_uri)

    def rotate_keys(
        self, client_id: str, *, jwks: Any = None, jwks_uri: str | None = None, keep_current: bool = False
    ) -> Client:
        """Replace a client's public keys (or add to them, `keep_current`, for an overlap); return it."""
        keys, uri = self._keys(jwks, jwks_uri)
        with self._db.write.begin() as conn:
            client = self._repo.client(conn, client_id)
            if client is None:
                raise RegistryError(f"no client {client_id!r}")
            if keep_current and keys is not None:
                if client.jwks is None:
                    raise RegistryError("--keep-current needs inline keys on both sides")
                keys = validate_public_jwks({"keys": [*client.jwks["keys"], *keys["keys"]]})
            self._repo.set_client_keys(conn, client_id, keys, uri, self._clock.now())
            updated = self._repo.client(conn, client_id)
        assert updated is not None
        self._on_change()
        kids = [k.get("kid") for k in keys["keys"]] if keys else []
        log.info("auth.client.keys_rotated", client_id=client_id, kids=kids, jwks_uri=uri)
        return updated

    def set_client_status(self, client_id: str, status: Status, reason: str | None = None) -> None:
        """Disable or enable a client; a disabled client's tokens stop working at once."""
        with self._db.write.begin() as conn:
            if not self._repo.set_client_status(conn, client_id, status, reason, self._clock.now()):
                raise RegistryError(f"no client {client_id!r}")
            self._repo.bump_epoch(conn)
        self._on_change()
        log.info(f"auth.client.{'enabled' if status is Status.ACTIVE else 'disabled'}", client_id=client_id)

    def set_organisation_status(self, organisation: str, status: Status, reason: str | None = None) -> None:
        """Disable or enable an organisation; while disabled, no token naming it works."""
        self._organisation_roles(organisation)
        with self._db.write.begin() as conn:
            self._repo.set_organisation_status(conn, organisation, status, reason, self._clock.now())
            self._repo.bump_epoch(conn)
        self._on_change()
        event = "enabled" if status is Status.ACTIVE else "disabled"
        log.info(f"auth.organisation.{event}", organisation=organisation)

    def clients(self, organisation: str | None = None) -> list[Client]:
        """Return the registered clients."""
        with self._db.read.connect() as conn:
            return self._repo.clients(conn, organisation)

    def disabled_organisations(self) -> dict[str, str | None]:
        """Return the disabled organisations with the reason given."""
        with self._db.read.connect() as conn:
            return self._repo.disabled_organisations(conn)

    def client(self, client_id: str) -> Client | None:
        """Return one client, or None."""
        with self._db.read.connect() as conn:
            return self._repo.client(conn, client_id)
