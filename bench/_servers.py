"""The servers bench_exchange.py measures, one per process: `python bench/_servers.py KIND STATE_DIR`.

KIND is one of
  bare              a minimal FastAPI app: one async GET that decrypts one AES-GCM ciphertext and returns
                    the same JSON document the gateway returns for an LSO read (the floor)
  bare-sync         the same endpoint as a sync `def` (FastAPI runs it in its threadpool, like the gateway)
  gateway           the real gateway (create_app over a container built with a FixedClock), audited reads
  gateway-noaudit   the same gateway with its audit writer swapped, in this process only, for a stand-in
                    that records nothing: a measurement baseline, never reachable from settings or the CLI

Each server binds 127.0.0.1 on a free port, prints `PORT <n>` on stdout, and serves with one uvicorn
worker (uvloop and httptools when installed). Every server has GET /_bench/stats (process CPU seconds,
and for the gateway the audit writer's batch counters), added to the app object here, not in gateway code.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.responses import Response

from gateway.audit.writer import Appended

IN_FORCE_ISO = "2024-11-15T10:00:00+01:00"  # the LVV covenants are in force


def _cpu() -> dict[str, float]:
    t = os.times()
    return {"cpu_s": t.user + t.system, "wall_s": time.monotonic()}


def bare_app(state: Path, sync: bool) -> FastAPI:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    payload = (state / "sample_read.json").read_bytes()
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    aad = b"rec|bench|lso"
    sealed = AESGCM(key).encrypt(nonce, payload, aad)
    app = FastAPI(title="bare")

    def body(pseudonym: str) -> Response:
        document = orjson.loads(AESGCM(key).decrypt(nonce, sealed, aad))
        document["participant"] = pseudonym
        return Response(orjson.dumps(document), media_type="application/json")

    if sync:

        @app.get("/v1/participants/{pseudonym}")
        def read_sync(pseudonym: str) -> Response:
            return body(pseudonym)

    else:

        @app.get("/v1/participants/{pseudonym}")
        async def read_async(pseudonym: str) -> Response:
            return body(pseudonym)

    async def stats() -> dict[str, Any]:
        return _cpu()

    app.add_api_route("/_bench/stats", stats, methods=["GET"])
    return app


class NoAuditWriter:
    """Bench-only stand-in for AuditWriter: `append` returns at once and writes nothing.

    It exists to measure what durable auditing costs; the product cannot be configured to use it.
    """

    def __init__(self) -> None:
        self.batches = 0
        self.appended = 0
        self._seq = 0

    def submit(self, entry: dict[str, Any], recorded_at: datetime) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(self.append(entry, recorded_at))
        return future

    def append(self, entry: dict[str, Any], recorded_at: datetime, timeout: float = 5.0) -> Any:
        self._seq += 1  # not thread-safe; the numbers are never used for anything but the response
        self.appended += 1
        return Appended(self._seq, b"\0" * 32)

    async def append_async(self, entry: dict[str, Any], recorded_at: datetime, timeout: float = 5.0) -> Any:
        return self.append(entry, recorded_at, timeout)

    def close(self, timeout: float = 10.0) -> None:
        pass


def gateway_app(state: Path, audited: bool) -> tuple[FastAPI, Any]:
    from gateway.api.app import create_app
    from gateway.clock import FixedClock
    from gateway.container import build
    from gateway.logging import configure_logging
    from gateway.settings import Settings

    configure_logging("warning")
    meta = json.loads((state / "state.json").read_text())
    db_file = state / ("gateway.db" if audited else "noaudit.db")
    settings = Settings(
        config_dir=Path(meta["config_dir"]),
        database_url=f"sqlite:///{db_file}",
        key_dir=state / "keys",
        token_issuer=meta["issuer"],
        token_audience=meta["audience"],
        token_jwks_file=state / "trusted.jwks.json",
    )
    container = build(settings, FixedClock(datetime.fromisoformat(IN_FORCE_ISO)))
    if not audited:
        container.audit.close()  # stop the real writer's thread; nothing was queued
        stand_in: Any = NoAuditWriter()
        container.audit = stand_in
        container.exchange.authorizer.audit = stand_in
    app = create_app(container=container)

    async def stats() -> dict[str, Any]:
        audit = container.audit
        return {**_cpu(), "audit_batches": audit.batches, "audit_appended": audit.appended}

    app.add_api_route("/_bench/stats", stats, methods=["GET"])
    return app, container


def main() -> int:
    kind, state = sys.argv[1], Path(sys.argv[2])
    container = None
    if kind in ("bare", "bare-sync"):
        app = bare_app(state, sync=kind == "bare-sync")
    elif kind in ("gateway", "gateway-noaudit"):
        app, container = gateway_app(state, audited=kind == "gateway")
    else:
        print(f"unknown server kind {kind!r}", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    config = uvicorn.Config(
        app, loop=loop, http=http, log_level="warning", access_log=False, lifespan="on", backlog=1024
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if container is not None:
            container.close()
    return 0


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
