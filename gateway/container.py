"""The running gateway's parts, wired once from settings (the composition root)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.audit.proofs import TreeCache
from gateway.audit.sealer import CheckpointSigner, Sealer
from gateway.audit.signing_keys import derive_rehearsal_key, load_checkpoint_key, published_keys
from gateway.audit.writer import AuditWriter
from gateway.auth.server import AuthorizationServer
from gateway.auth.tokens import TokenVerifier
from gateway.clock import Clock, SimulatedClock, SystemClock
from gateway.connectors.wiring import build_sources
from gateway.crypto.envelope import Envelope
from gateway.crypto.epochs import EPOCH_DIR, DataKeyWrapper, EpochKeyStore
from gateway.crypto.keys import SUBJECT_LOOKUP_FILE, KeyMaterialError, load_keys, load_secret_file
from gateway.crypto.pseudonyms import Pseudonymiser
from gateway.evidence.parts import EvidenceParts, build_evidence
from gateway.exchange.authorize import Authorizer
from gateway.exchange.service import ExchangeService
from gateway.lifecycle.rehearsal import open_rehearsal, rehearsal_identity
from gateway.lifecycle.wiring import LifecycleParts, wire
from gateway.policies.compiled import CompiledPolicy, compile_policy
from gateway.policies.loader import load_config
from gateway.retention.epochs import epoch_for
from gateway.settings import Settings
from gateway.store.db import Database, connect
from gateway.store.records import RecordStore
from gateway.store.subject_index import SubjectIndex

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
    auth: AuthorizationServer
    proofs: TreeCache | None = None
    sealer: Sealer | None = None  # None when this process holds no checkpoint signing key
    evidence: EvidenceParts | None = None  # outbox, notices, signed evidence for jurists
    lifecycle: LifecycleParts | None = None  # policy holder, jurist actions, retention runner

    def close(self) -> None:
        """Flush the audit writer and close the database."""
        if self.lifecycle is not None:
            self.lifecycle.holder.close()
        if self.sealer is not None:
            self.sealer.close()
        self.audit.close()
        self.auth.close()
        self.store.close()
        self.db.dispose()


def _subject_index(key_dir: Path) -> SubjectIndex | None:
    """Return the blind index of identifying fields, or None (with a warning) when its key was never made."""
    try:
        return SubjectIndex(load_secret_file(key_dir, SUBJECT_LOOKUP_FILE, 32))
    except KeyMaterialError as exc:
        log.warning("subject_index.disabled", reason=str(exc))
        return None


def build(settings: Settings, clock: Clock | None = None, token_clock: Clock | None = None) -> Container:
    """Return the wired gateway for `settings`; refuses to build on an invalid configuration.

    Two clocks: `clock` decides covenant standing and times the audit log (simulated in demo and
    rehearsal mode), `token_clock` times tokens and assertions (real time: partners sign on it). In
    production both are one SystemClock; an injected `clock` drives both unless `token_clock` is given.
    """
    simulated = clock is None and (settings.rehearsal or settings.clock_start is not None)
    if clock is None and not settings.rehearsal:
        clock = SimulatedClock(settings.clock_start, settings.clock_anchor) if settings.clock_start else SystemClock()
    policy = compile_policy(load_config(settings.config_dir))
    keys = load_keys(settings)
    db = connect(settings.database_url)
    if settings.rehearsal:
        # Refuses unless the database is marked as a rehearsal copy; its simulated clock lives in the copy.
        rehearsal_clock = open_rehearsal(db)
        clock = clock or rehearsal_clock
    assert clock is not None
    token_clock = token_clock or (SystemClock() if simulated else clock)
    audit = AuditWriter(db)
    # The token endpoint and the resource server share keys and revocation state; the key file
    # (GATEWAY_TOKEN_JWKS_FILE) adds an external issuer's keys only when it is set explicitly.
    auth = AuthorizationServer(
        settings,
        clock,
        policy,
        db,
        keys.kek,
        keys.token_keys if settings.token_jwks_file else None,
        token_clock=token_clock,
        audit=audit,
    )
    verifier = auth.verifier
    wrapper = DataKeyWrapper(Envelope(keys.kek), EpochKeyStore(settings.key_dir / EPOCH_DIR, keys.kek))

    def effective() -> CompiledPolicy:
        # The lifecycle's effective policy (revocations move covenant ends), once it is wired.
        return container.lifecycle.holder.current if container.lifecycle is not None else policy

    store = RecordStore(
        db,
        wrapper,
        Pseudonymiser(keys.pseudonym_key),
        lambda region, category, now: epoch_for(effective(), region, category, now),
        _subject_index(settings.key_dir),
    )
    authorizer = Authorizer(policy, audit, clock, settings.audit_flush_timeout_seconds)
    sources = build_sources(settings, store, policy.config, effective)
    exchange = ExchangeService(policy, authorizer, store, clock, sources)
    log.info("gateway.built", policy_version=policy.version, config=policy.config.meta.name)
    container = Container(settings, clock, policy, db, audit, verifier, store, exchange, auth)
    # A rehearsal copy shares the key store with the real database: its runs must never destroy an epoch.
    container.lifecycle = wire(settings, db, audit, clock, authorizer, auth, None if settings.rehearsal else wrapper)
    holder = container.lifecycle.holder
    auth.follow_policy(lambda: holder.current)  # an early covenant revocation revokes tokens too
    container.proofs = TreeCache(db)
    container.sealer = build_sealer(settings, db, clock)
    if container.sealer is not None:
        container.sealer.start()
    container.evidence = build_evidence(container)
    return container


def build_sealer(settings: Settings, db: Database, clock: Clock) -> Sealer | None:
    """Return the checkpoint sealer, or None (with a warning) when the key dir holds no checkpoint key."""
    key = load_checkpoint_key(settings.key_dir)
    if key is None:
        log.warning("audit.sealer.disabled", reason="no checkpoint signing key in the key dir")
        return None
    trusted = [k.public_key for k in published_keys(settings.key_dir)]  # current and retired
    if settings.rehearsal:
        # A rehearsal's log forks the real one: it must never be signed with the real log's key and origin
        # (a witness would see a split view, and the real signer's memory would refuse the real log after).
        # It signs with a key derived for this copy, under an origin that says so, and remembers nothing.
        fork = rehearsal_identity(db)
        key = derive_rehearsal_key(key, fork)
        signer = CheckpointSigner(
            key, f"{settings.audit_origin}/rehearsal-{fork[:12]}", clock, None, continues=settings.audit_origin
        )
        trusted.append(signer.public_key)
    else:
        signer = CheckpointSigner(key, settings.audit_origin, clock, settings.key_dir / "checkpoint.last")
    return Sealer(
        db, signer, settings.audit_checkpoint_interval_seconds, settings.audit_checkpoint_max_entries, trusted
    )
