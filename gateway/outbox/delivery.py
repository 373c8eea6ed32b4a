"""Delivering the outbox: signed POSTs with retries, exponential backoff and a dead letter.

At least once: a notice is marked delivered only after a 2xx answer; a crash between the answer and
the mark sends it again, with the same body and `Idempotency-Key`, so recipients deduplicate. One
delivery run leases the due notices (no other worker sends them meanwhile), sends them concurrently,
and records every attempt. The final outcome of a notice (delivered, or given up) is also an audit
entry, so the revocation report's "recipients notified" can be checked against the log.

Runs as an asyncio task inside the server (`outbox_poll_seconds`) and as `gateway outbox deliver`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import structlog

from gateway import __version__
from gateway.audit.writer import AuditUnavailable, AuditWriter
from gateway.clock import Clock
from gateway.evidence.keys import EvidenceSigner
from gateway.exchange.context import TraceContext
from gateway.outbox.model import Attempt, Notice, RetryPolicy
from gateway.outbox.repository import Outbox
from gateway.outbox.signing import content_digest, sign_request
from gateway.policies.compiled import CompiledPolicy
from gateway.store.db import Database

log = structlog.get_logger("gateway.outbox")
SIGNATURE_VALIDITY = 300  # seconds a notice signature is valid (the recipient's replay window)
NO_ENDPOINT = "no notification endpoint (notify_url) is configured; the organisation can fetch it: GET /v1/notices"


class Endpoints(Protocol):
    def endpoint(self, recipient_org: str, kind: str) -> str | None:
        """Return the URL that receives `kind` notices for `recipient_org`, or None."""
        ...


class PolicyEndpoints:
    """Endpoints from the configuration: each organisation's `notify_url`."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self._urls = {o.id: o.notify_url for o in policy.config.organisations}

    def endpoint(self, recipient_org: str, kind: str) -> str | None:
        """Return the organisation's notify_url, or None."""
        return self._urls.get(recipient_org)


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    delivered: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return len(self.delivered) + len(self.retried) + len(self.dead)


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.isdigit():
        return timedelta(seconds=min(int(value), 86_400))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment - now, timedelta(0)) if moment.tzinfo else None


class DeliveryWorker:
    """Sends due notices; one instance per process."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        endpoints: Endpoints,
        signer: EvidenceSigner | None,
        clock: Clock,
        retry: RetryPolicy,
        *,
        audit: AuditWriter | None = None,
        policy_version: str = "",
        timeout: float = 10.0,
        lease: timedelta = timedelta(seconds=120),
        batch: int = 50,
        transport: httpx.AsyncBaseTransport | None = None,
        paused: str | None = None,
        before_run: Sequence[Callable[[], object]] = (),
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._endpoints = endpoints
        self._signer = signer
        self._clock = clock
        self.retry = retry
        self._audit = audit
        self._policy_version = policy_version
        self._timeout = timeout
        self._lease = lease
        self._batch = batch
        self._transport = transport
        # Why nothing is sent (e.g. a rehearsal on a copy of the database must never reach real partners).
        self.paused = paused
        self._said_paused = False
        self._before_run = tuple(before_run)  # e.g. queue notices that are due (runs in a thread)
        self.worker_id = f"outbox:{os.getpid()}@{socket.gethostname()}"[:128]

    def add_before_run(self, hook: Callable[[], object]) -> None:
        """Run `hook` (in a thread) at the start of every delivery run, e.g. to queue notices that became due."""
        self._before_run += (hook,)

    # -- one run -------------------------------------------------------------------------------------

    async def deliver_due(self) -> DeliveryReport:
        """Send every notice that is due now (leased first); return what happened."""
        report = DeliveryReport()
        # Notices that became due are queued even when sending is paused: a rehearsal lists them, never sends.
        for hook in self._before_run:
            await asyncio.to_thread(hook)
        if self.paused is not None:
            if not self._said_paused:
                log.info("outbox.paused", reason=self.paused)
                self._said_paused = True
            return report
        if self._signer is None:
            log.error("outbox.unsigned", reason="no evidence signing key in the key dir; nothing is sent")
            return report
        while True:
            now = self._clock.now()
            leased = await asyncio.to_thread(self._lease_due, now)
            if not leased:
                return report
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
                attempts = await asyncio.gather(*(self._attempt(client, notice) for notice in leased))
            for notice, attempt in zip(leased, attempts, strict=True):
                stored = await asyncio.to_thread(self._record, notice, attempt)
                if not stored:
                    continue
                {"delivered": report.delivered, "retry": report.retried, "dead": report.dead}[attempt.outcome].append(
                    notice.id
                )
            if len(leased) < self._batch:
                return report

    def _lease_due(self, now: datetime) -> list[Notice]:
        with self._db.write.begin() as conn:
            return self._outbox.lease_due(conn, now, self.worker_id, self._lease, self._batch)

    async def _attempt(self, client: httpx.AsyncClient, notice: Notice) -> Attempt:
        number = notice.attempts + 1
        url = self._endpoints.endpoint(notice.recipient_org, notice.kind)
        started = self._clock.now()
        if url is None:
            # Nothing to retry until someone configures an endpoint: a person must deliver it otherwise.
            return Attempt(notice.id, number, started, None, None, NO_ENDPOINT, "dead", None)
        status: int | None = None
        error: str | None = None
        wait: timedelta | None = None
        try:
            response = await client.post(url, content=notice.body, headers=self._headers(notice, url, number))
            status = response.status_code
            if 200 <= status < 300:
                return Attempt(notice.id, number, started, url, status, None, "delivered", None)
            error = f"HTTP {status}"
            wait = _retry_after(response, started) if status in (429, 503) else None
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
        in_round = number - notice.round_offset
        if self.retry.exhausted(in_round):
            return Attempt(notice.id, number, started, url, status, error, "dead", None)
        delay = self.retry.delay(in_round, notice.id)
        if wait is not None and wait > delay:
            delay = wait
        return Attempt(notice.id, number, started, url, status, error, "retry", started + delay)

    def _headers(self, notice: Notice, url: str, attempt: int) -> dict[str, str]:
        assert self._signer is not None
        created = int(self._clock.timestamp())
        headers = {
            "Content-Type": "application/json",
            "Content-Digest": content_digest(notice.body),
            "Idempotency-Key": f'"{notice.idempotency_key}"',
            "Notice-Attempt": str(attempt),
            "User-Agent": f"lvv-exchange-gateway/{__version__} (outbox)",
            "traceparent": TraceContext.from_header(None).traceparent,
        }
        headers |= sign_request(
            "POST",
            url,
            headers,
            self._signer.private_key,
            self._signer.kid,
            created,
            expires=created + SIGNATURE_VALIDITY,
        )
        return headers

    def _record(self, notice: Notice, attempt: Attempt) -> bool:
        with self._db.write.begin() as conn:
            stored = self._outbox.record_attempt(conn, notice, attempt, self.worker_id)
        if not stored:
            log.warning("outbox.lease.lost", notice_id=notice.id)
            return False
        fields = {"notice_id": notice.id, "recipient": notice.recipient_org, "attempt": attempt.attempt}
        if attempt.outcome == "retry":
            log.info("outbox.notice.retry", **fields, error=attempt.error, next_attempt_at=str(attempt.next_attempt_at))
            return True
        log.info(f"outbox.notice.{attempt.outcome}", **fields, status_code=attempt.status_code, error=attempt.error)
        self._audit_outcome(notice, attempt)
        return True

    def _audit_outcome(self, notice: Notice, attempt: Attempt) -> None:
        if self._audit is None:
            return
        event = "notice.delivered" if attempt.outcome == "delivered" else "notice.dead_lettered"
        entry = system_entry(
            event,
            attempt.attempted_at,
            notice.recipient_org,
            decision="permit",  # a record of what the gateway did, as lifecycle entries are
            reason="notice_delivered" if attempt.outcome == "delivered" else "notice_undeliverable",
            policy_version=self._policy_version,
            notice_id=notice.id,
            notice_kind=notice.kind,
            reference=notice.reference,
            attempts=attempt.attempt,
            status_code=attempt.status_code,
            error=attempt.error,
        )
        try:
            self._audit.append(entry, attempt.attempted_at)
        except AuditUnavailable as exc:
            # The outcome is stored in the outbox either way; the log entry is the cross-check.
            log.error("outbox.audit.failed", notice_id=notice.id, error=str(exc)[:200])

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Deliver every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                await self.deliver_due()
            except Exception as exc:  # a database hiccup must not end the worker
                log.error("outbox.run.failed", error=type(exc).__name__, detail=str(exc)[:300])
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass


def system_entry(
    event: str, moment: datetime, organisation: str | None, *, decision: str, reason: str, **fields: Any
) -> dict[str, Any]:
    """Return an audit entry for something the gateway itself did (no client, no acting person)."""
    trace = TraceContext.from_header(None)
    return {
        "v": 1,
        "time": moment.isoformat().replace("+00:00", "Z"),
        "event": event,
        "organisation": organisation,
        "client_id": None,
        "acting_user": "gateway",
        "role": None,
        "purpose": None,
        "trace_id": trace.trace_id,
        "span_id": trace.span_id,
        "parent_span_id": None,
        "participant": None,
        "processing_activity_id": None,
        "decision": decision,
        "reason": reason,
        **fields,
    }


class WorkerHandle:
    """The server's delivery task: started with the application, stopped with it."""

    def __init__(self, worker: DeliveryWorker, interval: float) -> None:
        self._worker = worker
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._worker.run(self._interval, self._stop), name="outbox-delivery")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
