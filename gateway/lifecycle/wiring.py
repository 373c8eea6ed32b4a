"""Wire the lifecycle into the gateway: the policy holder, the jurist's service, the retention runner,
rehearsal mode. Called once by the container and the application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.audit.writer import AuditWriter
from gateway.clock import Clock
from gateway.crypto.epochs import DataKeyWrapper
from gateway.exchange.authorize import Authorizer
from gateway.lifecycle.covenant_end import CovenantEndSweep
from gateway.lifecycle.holder import PolicyHolder
from gateway.lifecycle.rehearsal import RehearsalClock
from gateway.lifecycle.service import LifecycleService
from gateway.retention.run import RetentionRunner
from gateway.retention.schedule import default_authority, scheduled
from gateway.settings import Settings
from gateway.store.db import Database

if TYPE_CHECKING:
    from fastapi import FastAPI

    from gateway.auth.server import AuthorizationServer
    from gateway.container import Container


@dataclass
class LifecycleParts:
    holder: PolicyHolder
    service: LifecycleService
    retention: RetentionRunner
    covenant_end: CovenantEndSweep | None = None


def wire(
    settings: Settings,
    db: Database,
    audit: AuditWriter,
    clock: Clock,
    authorizer: Authorizer,
    auth: AuthorizationServer | None = None,
    keys: DataKeyWrapper | None = None,
) -> LifecycleParts:
    """Return the lifecycle parts; the authorizer and the token server read the holder's effective policy."""
    holder = PolicyHolder(authorizer.policy, db, settings.lifecycle_poll_seconds)
    if isinstance(clock, RehearsalClock):
        holder.add_poll_hook(clock.sync)  # `gateway rehearsal step` in another process moves this clock too
    authorizer.holder = holder
    sweep: CovenantEndSweep | None = None
    if auth is not None:
        auth.follow_policy(lambda: holder.current)
        sweep = CovenantEndSweep(db, auth.registry, audit, clock, holder)
        holder.add_poll_hook(sweep)
    holder.start()
    service = LifecycleService(
        db, audit, clock, holder, settings.lifecycle_propagation_margin_seconds, settings.audit_flush_timeout_seconds
    )
    retention = RetentionRunner(
        db,
        audit,
        clock,
        lambda: holder.current,
        keys=keys,
        heartbeat_seconds=settings.retention_heartbeat_seconds,
        heartbeat_grace_seconds=settings.retention_heartbeat_grace_seconds,
    )
    if retention.epochs is not None:
        service.after_hold_set = retention.epochs.move_into_hold
    return LifecycleParts(holder, service, retention, sweep)


def install(app: FastAPI, container: Container) -> None:
    """Add rehearsal mode's banner middleware and clock endpoints when the container rehearses."""
    if isinstance(container.clock, RehearsalClock):
        from gateway.lifecycle.rehearsal_api import RehearsalMiddleware, router

        app.add_middleware(RehearsalMiddleware, clock=container.clock)
        app.include_router(router)


@asynccontextmanager
async def running(container: Container) -> AsyncIterator[None]:
    """Run the scheduled retention job while the application runs."""
    settings = container.settings
    parts = container.lifecycle
    authority = settings.retention_authority or default_authority(
        container.policy.config.meta.name, container.policy.version
    )
    async with scheduled(parts.retention if parts else None, settings.retention_interval_seconds, authority):
        yield
