"""Partner simulators: real HTTP servers on loopback for tests, benchmarks and the demo.

- `SourceSystemSim`: a partner's source system speaking the REST connector's contract (see
  `gateway.connectors.rest`): a city's client tracking system (CVS, private_key_jwt: its token
  endpoint checks the gateway's client assertion) or DT&V's case system. It records every request
  it receives (headers, query) and can be told to misbehave: answer slowly, with garbage, with
  errors, or with more fields than were asked (a source that does not minimise).
- `NgoCsvSim`: an NGO that delivers its counselling notes as a CSV export over HTTP.

Synthetic data only. Run one as a process: `python -m gateway.connectors.simulators cvs PORT [JWKS_FILE]`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.responses import JSONResponse, PlainTextResponse, Response


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class SourceState:
    """What a simulated source holds and how it behaves (tests change `mode` while it runs)."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # ref -> category -> record
    received: list[Received] = field(default_factory=list)
    mode: str = "ok"  # ok | slow | garbage | error | wrong_shape
    unavailable_next: int = 0  # answer this many next record requests with 503 (a source restarting)
    delay_seconds: float = 10.0
    minimise: bool = False  # a source that does not minimise returns every field it holds
    client_jwks: dict[str, Any] | None = None  # private_key_jwt: the gateway's public keys
    client_id: str = "lvv-gateway"
    issued: set[str] = field(default_factory=set)
    seen_keys: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> version
    seen_jti: set[str] = field(default_factory=set)
    on_request: Callable[[Received], None] | None = None  # tests: look at the world when a call arrives

    def put(self, ref: str, category: str, fields: dict[str, Any], version: int = 1) -> None:
        """Hold a record for the participant the source knows as `ref`."""
        written = datetime.now(UTC).replace(microsecond=0).isoformat()
        self.records.setdefault(ref, {})[category] = {"fields": fields, "version": version, "written_at": written}


def source_app(state: SourceState, name: str) -> FastAPI:
    """Return the ASGI app of a simulated partner source system."""
    app = FastAPI(title=f"{name} (simulator)")

    def authorised(request: Request) -> bool:
        if state.client_jwks is None:
            return True  # mTLS (or none): the transport authenticated the gateway
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in state.issued

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if state.client_jwks is None:
            return JSONResponse({"error": "unsupported"}, 400)
        try:
            claims = jwt.decode(str(form.get("client_assertion", "")), KeySet.import_key_set(state.client_jwks)).claims  # type: ignore[arg-type]
        except (JoseError, ValueError):
            return JSONResponse({"error": "invalid_client"}, 401)
        fresh = claims.get("jti") not in state.seen_jti and int(claims.get("exp", 0)) > time.time()
        if claims.get("iss") != state.client_id or claims.get("sub") != state.client_id or not fresh:
            return JSONResponse({"error": "invalid_client"}, 401)
        state.seen_jti.add(str(claims["jti"]))
        token = os.urandom(16).hex()
        state.issued.add(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 300})

    def arrived(received: Received) -> None:
        state.received.append(received)
        if state.on_request is not None:
            state.on_request(received)

    @app.get("/participants/{ref}/records")
    async def read(ref: str, request: Request) -> Response:
        arrived(Received("GET", request.url.path, dict(request.query_params), dict(request.headers)))
        if not authorised(request):
            return JSONResponse({"error": "unauthorised"}, 401)
        if state.unavailable_next > 0:
            state.unavailable_next -= 1
            return JSONResponse({"error": "restarting"}, 503)
        if state.mode == "slow":
            await asyncio.sleep(state.delay_seconds)
        if state.mode == "garbage":
            return Response(b"\x00<html>not json", 200, media_type="application/json")
        if state.mode == "wrong_shape":
            return JSONResponse({"records": {"case_plan": {"fields": "everything", "version": "one"}}})
        if state.mode == "error":
            return JSONResponse({"error": "internal"}, 500)
        held = state.records.get(ref)
        if held is None:
            return JSONResponse({"error": "not_found"}, 404)
        wanted = set(request.query_params.get("fields", "").split(","))
        out: dict[str, Any] = {}
        for category, rec in held.items():
            fields = rec["fields"]
            if state.minimise:
                fields = {k: v for k, v in fields.items() if f"{category}.{k}" in wanted}
            out[category] = {**rec, "fields": fields}
        return JSONResponse({"records": out})

    @app.put("/participants/{ref}/records/{category}")
    async def write(ref: str, category: str, request: Request) -> Response:
        body = await request.json()
        arrived(Received("PUT", request.url.path, dict(request.query_params), dict(request.headers), body))
        if not authorised(request):
            return JSONResponse({"error": "unauthorised"}, 401)
        if state.mode == "error":
            return JSONResponse({"error": "internal"}, 500)
        key = request.headers.get("idempotency-key")
        if key is not None and key in state.seen_keys:
            return JSONResponse({"version": state.seen_keys[key], "replayed": True})
        current = state.records.get(ref, {}).get(category)
        version = (current["version"] if current else 0) + 1
        state.put(ref, category, {**(current["fields"] if current else {}), **body["fields"]}, version)
        if key is not None:
            state.seen_keys[key] = version
        return JSONResponse({"version": version}, 201 if version == 1 else 200)

    return app


class _Thread:
    """A uvicorn server in a daemon thread of this process, on a free loopback port."""

    def __init__(self, app: FastAPI, port: int | None = None, tls: dict[str, Any] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="error", access_log=False, **(tls or {})
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("simulator did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


class SourceSystemSim:
    """A simulated partner source system on loopback: `with SourceSystemSim("cvs") as sim: sim.url`."""

    def __init__(
        self, name: str, state: SourceState | None = None, port: int | None = None, tls: dict[str, Any] | None = None
    ) -> None:
        self.name = name
        self.state = state or SourceState()
        self._server = _Thread(source_app(self.state, name), port, tls)
        self.url = self._server.url

    def __enter__(self) -> SourceSystemSim:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def city_cvs(client_jwks: dict[str, Any] | None, port: int | None = None) -> SourceSystemSim:
    """Return a simulated city client tracking system (CVS) that authenticates the gateway by private_key_jwt."""
    return SourceSystemSim("city-cvs", SourceState(client_jwks=client_jwks), port)


def dtv_case_system(port: int | None = None, tls: dict[str, Any] | None = None) -> SourceSystemSim:
    """Return a simulated DT&V case system; with `tls` (uvicorn's ssl_* options) it requires a client
    certificate (mTLS) as the real one does."""
    return SourceSystemSim("dtv-case-system", SourceState(), port, tls)


def ngo_notes_csv(rows: list[tuple[str, str, str]]) -> bytes:
    """Return an NGO's CSV export of counselling notes: (participant ref, notes, last contact date) rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["participant", "notes", "last_contact_date"])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


class NgoCsvSim:
    """An NGO that delivers its export as a CSV over HTTP at /exports/counselling_notes.csv."""

    def __init__(self, export: bytes, port: int | None = None) -> None:
        self.export = export
        app = FastAPI(title="ngo csv export (simulator)")

        @app.get("/exports/counselling_notes.csv")
        async def download() -> Response:
            return PlainTextResponse(self.export, media_type="text/csv; charset=utf-8")

        self._server = _Thread(app, port)
        self.url = self._server.url

    def __enter__(self) -> NgoCsvSim:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def main(argv: list[str]) -> None:
    """Serve one simulator in the foreground (for killable-process tests and the demo)."""
    kind, port = argv[0], int(argv[1])
    jwks = json.loads(Path(argv[2]).read_text()) if len(argv) > 2 else None
    state = SourceState(client_jwks=jwks)
    seed = os.environ.get("SIM_SEED_FILE")
    if seed:
        for ref, categories in json.loads(Path(seed).read_text()).items():
            for category, fields in categories.items():
                state.put(ref, category, fields)
    if os.environ.get("SIM_DELAY_SECONDS"):
        state.mode, state.delay_seconds = "slow", float(os.environ["SIM_DELAY_SECONDS"])
    uvicorn.run(source_app(state, kind), host="127.0.0.1", port=port, log_level="error", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
