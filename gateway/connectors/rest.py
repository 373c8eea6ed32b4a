"""The REST connector: brokers a permitted request to a partner's own source system over HTTPS.

It is called only after the gate decided and the audit entry is durably committed (it takes the
minted access and nothing else). What the source receives, so it can log its side and link it:

    GET  {base}/participants/{ref}/records?categories=c1,c2&fields=c1.f1,c2.f2
    PUT  {base}/participants/{ref}/records/{category}   {"fields": {...}}   Idempotency-Key: ...

    traceparent                  W3C Trace Context: the request's trace with the gateway's span
    Processing-Purpose           the purpose the decision was made for
    LDV-Processing-Activity-Id   the purpose's processing activity (register id)
    LDV-Audit-Entry              the gateway's audit entry that permitted this call: "<origin>#<seq>"
    LDV-Foreign-Entity           urn:nl:oin:<OIN> of the organisation on whose request the gateway calls

`{ref}` is the pseudonym the source's own organisation knows the participant by (the gateway never
sends its internal id, nor the requester's pseudonym). The connector asks only for the permitted
fields and cuts the answer to them again. Reads are retried with backoff on transport errors and
502/503/504; writes carry an Idempotency-Key, so they are retried the same way without risk. A
circuit breaker fails fast while a source keeps failing. Every failure raises `SourceFailed`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import structlog

from gateway.connectors.breaker import CircuitBreaker
from gateway.connectors.client_auth import ClientAuth
from gateway.connectors.port import CategoryRecord, Listed, SourceFailed, Written, cut, require, require_listing
from gateway.exchange.authorize import AuthorizedAccess, ListingAccess
from gateway.policies.model import Operation, SourceEndpoint, SourceSystem

log = structlog.get_logger("gateway.connectors")
MAX_ANSWER_BYTES = 1 << 20  # a record answer larger than this is not a record answer
_RETRY_STATUS = {502, 503, 504}


class _Retryable(Exception):
    def __init__(self, code: str, text: str, timeout: bool = False) -> None:
        super().__init__(text)
        self.code, self.text, self.timeout = code, text, timeout


class RestSource:
    """One partner source system reached over HTTP(S)."""

    def __init__(
        self,
        system: SourceSystem,
        base_url: str,
        auth: ClientAuth,
        pseudonym_of: Callable[[str, str], str],
        oin_of: Callable[[str], str],
        audit_origin: str,
        client: httpx.AsyncClient,
    ) -> None:
        assert system.endpoint is not None
        self.id = system.id
        self.system = system
        self.endpoint: SourceEndpoint = system.endpoint
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self._pseudonym_of = pseudonym_of
        self._oin_of = oin_of
        self._origin = audit_origin
        self._client = client
        self.breaker = CircuitBreaker(self.endpoint.breaker_failures, self.endpoint.breaker_reset_seconds)

    async def aclose(self) -> None:
        """Close the HTTP client (its connections belong to the server's event loop)."""
        await self._client.aclose()

    # -- the port -------------------------------------------------------------------------------

    async def read(self, access: AuthorizedAccess) -> Mapping[str, CategoryRecord]:
        """Ask the source for the permitted fields only; return its answer cut to them again."""
        access = require(access, Operation.READ)
        permitted = access.decision.fields_by_category
        if not permitted:
            return {}
        params = {
            "categories": ",".join(sorted(permitted)),
            "fields": ",".join(f"{c}.{f}" for c in sorted(permitted) for f in permitted[c]),
        }
        status, body = await self._call("GET", self._path(access), access, params=params)
        if status == 404:
            return {}
        return self._records(access, body)

    async def write(
        self, access: AuthorizedAccess, values: Mapping[str, Mapping[str, Any]], now: datetime, idempotency_key: str
    ) -> Written:
        """Write each category at the source under one idempotency key per category; return the versions."""
        access = require(access, Operation.WRITE, Operation.REGISTER)
        versions: dict[str, int] = {}
        for category, fields in values.items():
            if set(fields) - set(access.decision.fields_by_category.get(category, ())):
                raise PermissionError("write holds fields outside the authorized access")
            path = f"{self._path(access)}/{quote(category, safe='')}"
            key = f"{idempotency_key}:{category}"
            status, body = await self._call("PUT", path, access, json={"fields": dict(fields)}, key=key)
            version = body.get("version") if isinstance(body, dict) else None
            if status not in (200, 201) or not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise self._failed("source_bad_answer", "The source's answer to a write is not understood.")
            versions[category] = version
        return Written(versions)

    async def list(self, access: ListingAccess) -> list[tuple[str, Listed]]:
        """A source system does not list: who is visible is the participant registry's answer (hosted)."""
        require_listing(access)
        raise PermissionError(f"source '{self.id}' does not list participants; the registry does")

    # -- HTTP -----------------------------------------------------------------------------------

    def _path(self, access: AuthorizedAccess) -> str:
        assert access.participant_id is not None
        ref = self._pseudonym_of(self.system.organisation, access.participant_id)
        return f"{self.base_url}/participants/{quote(ref, safe='')}/records"

    def _headers(self, access: AuthorizedAccess) -> dict[str, str]:
        d = access.decision
        headers = {
            "Accept": "application/json",
            "Processing-Purpose": d.purpose,
            "LDV-Audit-Entry": f"{self._origin}#{access.audit_seq}",
            "LDV-Foreign-Entity": f"urn:nl:oin:{self._oin_of(access.organisation)}",
        }
        if d.processing_activity_id:
            headers["LDV-Processing-Activity-Id"] = d.processing_activity_id
        if access.trace is not None:
            headers["traceparent"] = access.trace.traceparent
        return headers

    def _failed(self, code: str, text: str, timeout: bool = False) -> SourceFailed:
        self.breaker.failed()
        log.warning("connector.source.failed", source=self.id, code=code)
        return SourceFailed(self.id, code, text, timeout)

    async def _call(
        self,
        method: str,
        url: str,
        access: AuthorizedAccess,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> tuple[int, Any]:
        """Return (status, parsed JSON body) of a successful call, retrying what may be retried."""
        if not self.breaker.allow():
            raise SourceFailed(self.id, "source_circuit_open", "The source failed repeatedly; it is not called now.")
        headers = self._headers(access)
        if key is not None:
            headers["Idempotency-Key"] = key
        attempts = 1 + self.endpoint.retries
        last: _Retryable | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
            try:
                status, body = await self._once(method, url, headers, params, json)
            except _Retryable as exc:
                last = exc
                continue
            self.breaker.succeeded()
            return status, body
        assert last is not None
        raise self._failed(last.code, last.text, last.timeout)

    async def _once(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
    ) -> tuple[int, Any]:
        timeout = self.endpoint.timeout_seconds
        try:
            auth = await self.auth.headers(self._client, timeout)
            request = self._client.build_request(
                method, url, headers={**headers, **auth}, params=params, json=json, timeout=timeout
            )
            response = await self._client.send(request, stream=True)
            try:
                raw = await self._body(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise _Retryable("source_timeout", "The source did not answer in time.", timeout=True) from None
        except (httpx.TransportError, httpx.HTTPStatusError, KeyError, ValueError):
            raise _Retryable("source_unreachable", "The source could not be reached.") from None
        if response.status_code == 401:
            self.auth.forget()
            raise _Retryable("source_refused_client", "The source refused the gateway's credentials.")
        if response.status_code in _RETRY_STATUS:
            raise _Retryable("source_error", f"The source answered {response.status_code}.")
        if response.status_code == 404 and method == "GET":
            return 404, None
        if response.status_code not in (200, 201):
            raise self._failed("source_error", f"The source answered {response.status_code}.")
        try:
            return response.status_code, orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._failed("source_bad_answer", "The source's answer is not JSON.") from None

    @staticmethod
    async def _body(response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ValueError("answer too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _records(self, access: AuthorizedAccess, body: Any) -> dict[str, CategoryRecord]:
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, dict):
            raise self._failed("source_bad_answer", "The source's answer holds no records object.")
        out: dict[str, CategoryRecord] = {}
        for category in access.decision.fields_by_category:
            rec = records.get(category)
            if rec is None:
                continue
            fields, version, written = (
                (rec.get("fields"), rec.get("version"), rec.get("written_at")) if isinstance(rec, dict) else (0, 0, 0)
            )
            try:
                when = datetime.fromisoformat(str(written))
            except ValueError:
                when = None
            valid_version = isinstance(version, int) and not isinstance(version, bool) and version >= 1
            if not isinstance(fields, dict) or not valid_version or when is None or when.tzinfo is None:
                raise self._failed("source_bad_answer", f"The source's record of '{category}' is not understood.")
            assert isinstance(version, int)
            org = self.system.organisation
            out[category] = CategoryRecord(category, cut(access, category, fields), version, org, when)
        return out
