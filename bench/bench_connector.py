"""Brokered read overhead: the gateway brokering a read to a partner source vs calling that source
directly, in the same run, on loopback.

Starts (each in its own process) the simulated city CVS (`gateway.connectors.simulators`) and the real
gateway with its `cvs-amsterdam` connector pointed at it (private_key_jwt, audited, SQLite). Seeds
synthetic Amsterdam participants through the gateway, so their case plans live in the CVS only. Then,
alternating rounds, loads with `_loadgen` (same connections, same duration):

  direct    GET {cvs}/participants/{ref}/records?categories=case_plan&fields=...   (the CVS's own token)
  brokered  GET {gateway}/v1/participants/{p}?categories=case_plan   (token, purpose, decision, durable
            audit entry, then the same call to the CVS, answer cut to the permitted fields)

  hosted    the same gateway reading a hosted category (identity): the gateway's own cost, no source

and prints p50/p99 and throughput per round, and the overhead (brokered minus direct, p50 and p99).
The gateway's HTTP client (httpx) is part of what is measured: on a loaded 2-core machine one
httpx request to a loopback server costs several milliseconds of Python by itself.

    .venv/bin/python bench/bench_connector.py            # 2 rounds x (2 s warm-up + 6 s) per target
    .venv/bin/python bench/bench_connector.py --quick    # 1 round, 1 s + 3 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from bench_exchange import AUDIENCE, IN_FORCE, ISSUER, ROOT, run_load

CONFIG = ROOT / "config" / "lvv"
ORG, ROLE, PURPOSE = "amsterdam", "case_manager", "lso_case_discussion"


def free_port() -> int:
    from gateway.connectors.simulators import free_port as fp

    return fp()


def settings_for(state: Path, cvs_url: str) -> Any:
    from gateway.settings import Settings

    return Settings(
        config_dir=CONFIG,
        database_url=f"sqlite:///{state / 'gateway.db'}",
        key_dir=state / "keys",
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_jwks_file=state / "trusted.jwks.json",
        connector_urls={"cvs-amsterdam": cvs_url},
        audit_checkpoint_interval_seconds=0,
    )


def serve_gateway(state: Path, port: int, cvs_url: str) -> None:
    """Process entry point: the real gateway, audited, with the CVS connector."""
    import uvicorn

    from gateway.api.app import create_app
    from gateway.clock import FixedClock
    from gateway.container import build
    from gateway.logging import configure_logging

    configure_logging("warning")
    container = build(settings_for(state, cvs_url), FixedClock(IN_FORCE))
    uvicorn.run(create_app(container=container), host="127.0.0.1", port=port, log_level="error", access_log=False)


def wait_up(url: str, proc: subprocess.Popen[bytes], path: str = "/health") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server {url} exited")
        try:
            httpx.get(url + path, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server {url} did not start")


def prepare(state: Path, cvs_url: str, per_city: int) -> tuple[list[str], list[str], str]:
    """Seed through the gateway (case plans land in the CVS); return (pseudonyms, gateway tokens, CVS token)."""
    from joserfc import jwt
    from joserfc.jwk import ECKey

    from gateway.clock import FixedClock
    from gateway.connectors.client_auth import PrivateKeyJwt, connector_key
    from gateway.container import build
    from gateway.demo.seed import seed
    from gateway.exchange.context import Principal, RequestContext, TraceContext
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade

    db = connect(f"sqlite:///{state / 'gateway.db'}")
    upgrade(db)
    db.dispose()
    container = build(settings_for(state, cvs_url), FixedClock(IN_FORCE))

    async def go() -> list[str]:
        try:
            await seed(container, per_city=per_city)
            principal = Principal(ORG, "bench", "bench", 0)
            ctx = RequestContext(principal, "bench.user", ROLE, PURPOSE, TraceContext.from_header(None))
            return [i.pseudonym for i in (await container.exchange.list(ctx, 10_000, None)).items]
        finally:
            assert container.exchange.sources is not None
            await container.exchange.sources.aclose()

    try:
        pseudonyms = asyncio.run(go())
    finally:
        container.close()
    signer = ECKey.import_key(json.loads((state / "signer.jwk").read_text()))
    now = int(IN_FORCE.timestamp())
    tokens = []
    for n in range(8):
        claims = {
            "iss": ISSUER,
            "sub": f"bench-{n}",
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "client_id": f"bench-{n}",
            "organisation": ORG,
        }
        tokens.append(jwt.encode({"alg": "ES256", "kid": signer.kid, "typ": "at+jwt"}, claims, signer))
    auth = PrivateKeyJwt("lvv-gateway", connector_key(state / "keys"), f"{cvs_url}/token")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": auth.assertion(),
    }
    cvs_token = httpx.post(f"{cvs_url}/token", data=form, timeout=10).json()["access_token"]
    return pseudonyms, tokens, cvs_token


def requests_for(port: int, paths: list[str], headers: list[str], connections: int) -> list[list[bytes]]:
    out = []
    for c in range(connections):
        head = headers[c % len(headers)]
        out.append(
            [
                f"GET {paths[(c * 7 + k) % len(paths)]} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}\r\n".encode()
                for k in range(len(paths))
            ]
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--per-city", type=int, default=10)
    args = parser.parse_args()
    rounds, warmup, seconds = (1, 1.0, 3.0) if args.quick else (2, 2.0, 6.0)
    sys.path.insert(0, str(ROOT))
    from joserfc.jwk import ECKey

    from gateway.connectors.client_auth import connector_key, public_jwks
    from gateway.crypto.keys import init_keys
    from gateway.logging import configure_logging

    configure_logging("warning")
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-connector-") as tmp:
        state = Path(tmp)
        init_keys(state / "keys")
        (state / "cvs.jwks.json").write_text(json.dumps(public_jwks(connector_key(state / "keys"))))
        signer = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)
        (state / "signer.jwk").write_text(json.dumps(signer.as_dict(private=True)))
        (state / "trusted.jwks.json").write_text(json.dumps({"keys": [signer.as_dict(private=False)]}))
        cvs_port, gw_port = free_port(), free_port()
        cvs_url = f"http://127.0.0.1:{cvs_port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        try:
            cmd = [
                sys.executable,
                "-m",
                "gateway.connectors.simulators",
                "cvs",
                str(cvs_port),
                str(state / "cvs.jwks.json"),
            ]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env))
            wait_up(cvs_url, procs[-1], "/docs")
            pseudonyms, tokens, cvs_token = prepare(state, cvs_url, args.per_city)
            code = (
                f"import sys, pathlib; sys.path.insert(0, {str(ROOT / 'bench')!r}); import bench_connector as b; "
                f"b.serve_gateway(pathlib.Path({str(state)!r}), {gw_port}, {cvs_url!r})"
            )
            procs.append(subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env))
            wait_up(f"http://127.0.0.1:{gw_port}", procs[-1])
            from gateway.policies.compiled import compile_policy
            from gateway.policies.loader import load_config

            policy = compile_policy(load_config(CONFIG))
            fields = next(
                g.fields
                for r in policy.config.rules
                if r.id == "lso-city-read"
                for g in r.grants
                if g.category == "case_plan"
            )
            names = [f.name for f in policy.categories["case_plan"].fields] if fields == "*" else list(fields)
            query = "categories=case_plan&fields=" + ",".join(f"case_plan.{n}" for n in names)
            direct = requests_for(
                cvs_port,
                [f"/participants/{p}/records?{query}" for p in pseudonyms],
                [f"Authorization: Bearer {cvs_token}\r\nProcessing-Purpose: {PURPOSE}\r\n"],
                args.connections,
            )
            brokered = requests_for(
                gw_port,
                [f"/v1/participants/{p}?categories=case_plan" for p in pseudonyms],
                [
                    f"Authorization: Bearer {t}\r\nActing-User: bench.user\r\nActing-Role: {ROLE}\r\n"
                    f"Processing-Purpose: {PURPOSE}\r\n"
                    for t in tokens
                ],
                args.connections,
            )
            # The same gateway reading a hosted category (identity): what the gateway costs without a source.
            hosted = [[r.replace(b"categories=case_plan", b"categories=identity") for r in c] for c in brokered]
            results: dict[str, list[dict[str, Any]]] = {"direct": [], "brokered": [], "hosted": []}
            for _ in range(rounds):
                results["direct"].append(run_load(cvs_port, direct, warmup, seconds))
                results["brokered"].append(run_load(gw_port, brokered, warmup, seconds))
                results["hosted"].append(run_load(gw_port, hosted, warmup, seconds))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
    print(f"\nBrokered read vs direct source call, {args.connections} connections, {len(pseudonyms)} participants")
    print(f"{'target':10} {'round':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}")
    bad = 0
    for name, runs in results.items():
        for i, r in enumerate(runs, 1):
            print(f"{name:10} {i:>5} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non200_all']:>8}")
            bad += r["non200_all"] + r["errors"]
    d50 = min(r["p50_ms"] for r in results["brokered"]) - min(r["p50_ms"] for r in results["direct"])
    d99 = min(r["p99_ms"] for r in results["brokered"]) - min(r["p99_ms"] for r in results["direct"])
    ratio = max(r["rps"] for r in results["brokered"]) / max(r["rps"] for r in results["direct"])
    print(
        f"\noverhead of brokering (best rounds): p50 +{d50:.2f} ms, p99 +{d99:.2f} ms; throughput {ratio:.0%} of direct"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
