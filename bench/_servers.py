"""The servers bench_exchange.py measures, one per process: `python bench/_servers.py KIND STATE_DIR`.

KIND is one of
  bare              a minimal FastAPI app: one async GET that decrypts one AES-GCM ciphertext and returns
                    the same JSON document the gateway returns for an LSO read (the floor)
  bare-sync         the same endpoint as a sync `def` (FastAPI runs it in its threadpool)
  crud              the unaudited CRUD service a team would otherwise write: FastAPI + SQLAlchemy, the
                    bearer token's ES256 signature and expiry checked, then the same records read
                    (pseudonym -> participant, latest version of each category, its data key) and
                    decrypted from a copy of the same database, returned in the same JSON shape; no
                    policy, no purpose, no audit, no revocation
  gateway           the real gateway (create_app over a container built with a FixedClock), audited reads
  gateway-noaudit   the same gateway with its audit writer swapped, in this process only, for a stand-in
                    that records nothing: a measurement baseline, never reachable from settings or the CLI

Each server binds 127.0.0.1 on a free port, prints `PORT <n>` on stdout, and serves with one uvicorn
worker (uvloop and httptools when installed), or with `python bench/_servers.py KIND STATE_DIR granian`
one granian worker (ASGI, one runtime thread, uvloop); there the app lives in granian's worker process,
whose CPU /_bench/stats reports (and its pid, for py-spy). Every server has GET /_bench/stats (process CPU seconds,
and for the gateway the audit writer's batch counters), added to the app object here, not in gateway code.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from sqlalchemy import Connection
from starlette.responses import Response

from gateway.audit.writer import Appended

IN_FORCE_ISO = "2024-11-15T10:00:00+01:00"  # the LVV covenants are in force


def _cpu() -> dict[str, float]:
    t = os.times()
    return {"cpu_s": t.user + t.system, "wall_s": time.monotonic(), "pid": os.getpid()}


_crud: dict[str, Any] = {}  # the CRUD server's engine, keys and trusted token keys (one server per process)


def _crud_conn() -> Iterator[Connection]:
    with _crud["engine"].connect() as conn:
        yield conn


def _crud_organisation(authorization: Annotated[str | None, Header()] = None) -> str:
    from joserfc import jwt

    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401)
    try:
        token = jwt.decode(authorization[7:], _crud["trusted"], algorithms=["ES256"])
        now = int(datetime.fromisoformat(IN_FORCE_ISO).timestamp())  # the bench's tokens live on its fixed clock
        claims = jwt.JWTClaimsRegistry(
            now=now, exp={"essential": True}, aud={"essential": True, "value": _crud["audience"]}
        )
        claims.validate(token.claims)
    except Exception:
        raise HTTPException(401) from None
    return str(token.claims["organisation"])


def _crud_read(
    pseudonym: str,
    organisation: Annotated[str, Depends(_crud_organisation)],
    conn: Annotated[Connection, Depends(_crud_conn)],
) -> Response:
    from sqlalchemy import and_, func, select

    from gateway.crypto.envelope import Envelope
    from gateway.store.tables import data_keys, participants, pseudonyms, records

    found = conn.execute(
        select(participants.c.id)
        .join(pseudonyms, pseudonyms.c.participant_id == participants.c.id)
        .where(pseudonyms.c.organisation == organisation, pseudonyms.c.pseudonym == pseudonym)
    ).first()
    if found is None:
        raise HTTPException(404)
    pid = found.id
    latest = (
        select(records.c.category, func.max(records.c.version).label("version"))
        .where(records.c.participant_id == pid)
        .group_by(records.c.category)
        .subquery()
    )
    rows = conn.execute(
        select(records, data_keys.c.wrapped_key, data_keys.c.epoch_id)
        .join(latest, and_(records.c.category == latest.c.category, records.c.version == latest.c.version))
        .join(data_keys, and_(data_keys.c.participant_id == pid, data_keys.c.category == records.c.category))
        .where(records.c.participant_id == pid)
    ).all()
    out = {}
    for row in rows:
        dek = _crud["keys"].unwrap(row.wrapped_key, pid, row.category, row.epoch_id)
        fields = orjson.loads(Envelope.open_record(dek, row.ciphertext, pid, row.category, row.id))
        out[row.category] = {
            "fields": fields,
            "version": row.version,
            "source": row.source_organisation,
            "written_at": row.written_at.isoformat(),
        }
    return Response(orjson.dumps({"participant": pseudonym, "records": out}), media_type="application/json")


def crud_app(state: Path) -> FastAPI:
    """The unaudited CRUD baseline (see the module docstring), written as the FastAPI and SQLAlchemy
    tutorials write it: a sync endpoint with a connection dependency, statements built in the handler."""
    from joserfc.jwk import KeySet
    from sqlalchemy import create_engine

    from gateway.crypto.envelope import Envelope
    from gateway.crypto.epochs import EPOCH_DIR, DataKeyWrapper, EpochKeyStore
    from gateway.crypto.keys import load_keys
    from gateway.settings import Settings

    meta = json.loads((state / "state.json").read_text())
    settings = Settings(config_dir=Path(meta["config_dir"]), key_dir=state / "keys")
    kek = load_keys(settings).kek
    _crud["keys"] = DataKeyWrapper(Envelope(kek), EpochKeyStore(settings.key_dir / EPOCH_DIR, kek))
    _crud["trusted"] = KeySet.import_key_set(json.loads((state / "trusted.jwks.json").read_text()))
    _crud["audience"] = meta["audience"]
    _crud["engine"] = create_engine(f"sqlite:///{state / 'crud.db'}", connect_args={"check_same_thread": False})
    app = FastAPI(title="crud")
    app.add_api_route("/v1/participants/{pseudonym}", _crud_read, methods=["GET"])

    async def stats() -> dict[str, Any]:
        return _cpu()

    app.add_api_route("/_bench/stats", stats, methods=["GET"])
    return app


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

    async def threads() -> dict[str, str]:
        # The Python name of each thread by its OS id, to read per-thread CPU from /proc/PID/task/ID/stat.
        return {str(t.native_id): t.name for t in threading.enumerate() if t.native_id is not None}

    app.add_api_route("/_bench/stats", stats, methods=["GET"])
    app.add_api_route("/_bench/threads", threads, methods=["GET"])
    return app, container


def make_app(kind: str, state: Path) -> tuple[FastAPI | None, Any]:
    """Return the app of `kind` and the gateway's container (None for the other servers)."""
    container = None
    if kind in ("bare", "bare-sync"):
        app = bare_app(state, sync=kind == "bare-sync")
    elif kind == "crud":
        app = crud_app(state)
    elif kind in ("gateway", "gateway-noaudit"):
        app, container = gateway_app(state, audited=kind == "gateway")
    else:
        return None, None
    return app, container


def granian_app() -> FastAPI:
    """The factory granian's worker calls (it re-imports this module): the app the environment names."""
    app, _ = make_app(os.environ["BENCH_KIND"], Path(os.environ["BENCH_STATE"]))
    assert app is not None
    return app


def serve_granian(kind: str, state: Path) -> int:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # granian binds it itself (a race with another process is possible, and then start fails)
    os.environ.update(BENCH_KIND=kind, BENCH_STATE=str(state))
    print(f"PORT {port}", flush=True)
    server = Granian(
        "_servers:granian_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1,
        runtime_threads=1,
        loop=Loops.uvloop if _has("uvloop") else Loops.asyncio,
        log_enabled=False,
        backlog=1024,
    )
    server.serve()
    return 0


def main() -> int:
    kind, state = sys.argv[1], Path(sys.argv[2])
    http = sys.argv[3] if len(sys.argv) > 3 else "uvicorn"
    if http == "granian":
        return serve_granian(kind, state)
    app, container = make_app(kind, state)
    if app is None:
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
