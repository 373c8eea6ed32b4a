"""The running gateway's parts, wired once from settings (the composition root)."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from gateway.audit.writer import AuditWriter
from gateway.auth.tokens import TokenVerifier
from gateway.clock import Clock, SimulatedClock, SystemClock
from gateway.crypto.envelope import Envelope
from gateway.crypto.keys import load_keys
from gateway.crypto.pseudonyms import Pseudonymiser
from gateway.exchange.authorize import Authorizer
from gateway.exchange.service import ExchangeService
from gateway.policies.compiled import CompiledPolicy, compile_policy
from gateway.policies.loader import load_config
from gateway.settings import Settings
from gateway.store.db import Database, connect
from gateway.store.records import RecordStore

log = structlog.get_logger("gateway")


@dataclass
class Container:
    settings: Settings
    clock: Clock
    policy: CompiledPolicy
    db: Database
    audit: AuditWriter
    verifier: TokenVerifier
    store: RecordStore
    exchange: ExchangeService

    def close(self) -> None:
        """Flush the audit writer and close the database."""
        self.audit.close()
        self.db.dispose()


def build(settings: Settings, clock: Clock | None = None) -> Container:
    """Return the wired gateway for `settings`; refuses to build on an invalid configuration."""
    if clock is None:
        clock = SimulatedClock(settings.clock_start, settings.clock_anchor) if settings.clock_start else SystemClock()
    policy = compile_policy(load_config(settings.config_dir))
    keys = load_keys(settings)
    db = connect(settings.database_url)
    audit = AuditWriter(db)
    verifier = TokenVerifier(
        keys.token_keys,
        settings.token_issuer,
        settings.token_audience,
        settings.token_algorithms,
        clock,
        leeway=settings.token_leeway_seconds,
    )
    store = RecordStore(db, Envelope(keys.kek), Pseudonymiser(keys.pseudonym_key))
    authorizer = Authorizer(policy, audit, clock, settings.audit_flush_timeout_seconds)
    exchange = ExchangeService(policy, authorizer, store, clock)
    log.info("gateway.built", policy_version=policy.version, config=policy.config.meta.name)
    return Container(settings, clock, policy, db, audit, verifier, store, exchange)
