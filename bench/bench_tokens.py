"""Access-token verification with and without the digest cache, in one run.

Issues real ES256 access tokens through the gateway's own token service (client credentials with a
private_key_jwt assertion, SQLite in a temporary directory) and times, per call, with
`time.perf_counter_ns`:

  signature only     `TokenVerifier.verify` with the gateway's keys and no revocation check:
                     uncached (cache size 0: JWS signature + claims every time) vs cached (SHA-256
                     digest lookup) - the effect of the cache itself
  per request        the verifier as the resource API uses it: the same, plus the per-request
                     revocation check (the epoch read per request; the client's and organisation's
                     status cached per process behind it), uncached vs cached, and against the
                     status read in full on every request (the baseline)

    .venv/bin/python bench/bench_tokens.py              # 20k timed calls per case after 2k warm-up
    .venv/bin/python bench/bench_tokens.py --calls 5000

Target: the cache makes signature-only verification at least 10x cheaper (p50).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
IN_FORCE = datetime.fromisoformat("2024-11-15T10:00:00+01:00")
TARGET_RATIO = 10.0


def prepare(state: Path, n_tokens: int) -> tuple[Any, Any, list[str]]:
    """Return the authorization server, its fresh SQLite database and `n_tokens` issued tokens."""
    from joserfc import jwt
    from joserfc.jwk import ECKey

    from gateway.auth.server import AuthorizationServer, HttpFacts
    from gateway.clock import FixedClock
    from gateway.crypto.keys import init_keys, load_keys
    from gateway.logging import configure_logging
    from gateway.policies.compiled import compile_policy
    from gateway.policies.loader import load_config
    from gateway.settings import Settings
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade

    configure_logging("warning")
    init_keys(state / "keys")
    settings = Settings(
        config_dir=ROOT / "config" / "lvv",
        database_url=f"sqlite:///{state}/bench.db",
        key_dir=state / "keys",
        token_issuer="https://gateway.bench.invalid",
        token_rate_limit_per_minute=1_000_000,
    )
    db = connect(settings.database_url)
    upgrade(db)
    clock = FixedClock(IN_FORCE)
    policy = compile_policy(load_config(settings.config_dir))
    server = AuthorizationServer(settings, clock, policy, db, load_keys(settings).kek)
    key = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig", "kid": "bench-1"})
    server.registry.register(
        "bench-client", "amsterdam", ("case_manager",), jwks={"keys": [key.as_dict(private=False)]}
    )
    now = int(clock.timestamp())
    tokens = []
    for _ in range(n_tokens):
        claims = {
            "iss": "bench-client",
            "sub": "bench-client",
            "aud": server.token_endpoint,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(24),
        }
        signed = jwt.encode({"alg": "ES256", "kid": "bench-1"}, claims, key, algorithms=["ES256"])
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed,
        }
        tokens.append(server.token(form, HttpFacts(trace_id="0" * 32)).access_token)
    return server, db, tokens


def timed(call: Callable[[str], object], tokens: list[str], calls: int, warmup: int) -> list[int]:
    """Return per-call nanoseconds of `call` cycling through `tokens`."""
    n = len(tokens)
    for i in range(warmup):
        call(tokens[i % n])
    samples = [0] * calls
    gc.disable()
    try:
        for i in range(calls):
            token = tokens[i % n]
            start = time.perf_counter_ns()
            call(token)
            samples[i] = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return samples


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def row(name: str, samples: list[int]) -> tuple[str, float, float, float, float]:
    return (
        name,
        statistics.fmean(samples) / 1000,
        pct(samples, 0.5),
        pct(samples, 0.99),
        1e9 / statistics.fmean(samples),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--tokens", type=int, default=64, help="distinct tokens cycled through")
    args = parser.parse_args()

    from gateway.auth.revocation import PartyRevocation
    from gateway.auth.tokens import IssuerKeys, TokenVerifier

    with tempfile.TemporaryDirectory(prefix="bench-tokens-") as tmp:
        server, db, tokens = prepare(Path(tmp), args.tokens)
        settings = server.settings
        revocation = PartyRevocation(db, server.repo, lambda: server.policy)

        class FullRead(PartyRevocation):
            """The status read in full on every request (before it was cached behind the epoch)."""

            def status(self, token: Any) -> Any:
                with db.read.connect() as conn:
                    return server.repo.party_status(conn, token.principal.client_id, token.principal.organisation)

        full_read = FullRead(db, server.repo, lambda: server.policy)

        def verifier(cache_size: int, check_revocation: bool, status_read: Any = None) -> TokenVerifier:
            return TokenVerifier(
                IssuerKeys(server.keyring),
                settings.token_issuer,
                settings.token_audience,
                settings.token_algorithms,
                server.clock,
                leeway=settings.token_leeway_seconds,
                cache_size=cache_size,
                revocation=(status_read or revocation) if check_revocation else None,
            )

        cases = [
            ("signature only, uncached", verifier(0, False)),
            ("signature only, cached", verifier(10_000, False)),
            ("per request (+ revocation query), uncached", verifier(0, True)),
            ("per request (+ revocation query), cached", verifier(10_000, True)),
            ("per request, status read in full (baseline)", verifier(10_000, True, full_read)),
        ]
        results = {}
        for name, v in cases:
            v.verify(tokens[0])  # fail loudly before timing if anything is wrong
            results[name] = row(name, timed(v.verify, tokens, args.calls, args.warmup))
        db.dispose()

    print(f"token verification: ES256 at+jwt, {args.tokens} distinct tokens, {args.calls} timed calls per case")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs\n")
    print(f"{'case':<46} {'mean µs':>9} {'p50 µs':>9} {'p99 µs':>9} {'calls/s':>10}")
    for name, mean, p50, p99, rate in results.values():
        print(f"{name:<46} {mean:>9.1f} {p50:>9.1f} {p99:>9.1f} {rate:>10.0f}")
    sig_ratio = results["signature only, uncached"][2] / results["signature only, cached"][2]
    req_ratio = (
        results["per request (+ revocation query), uncached"][2]
        / results["per request (+ revocation query), cached"][2]
    )
    verdict = "MET" if sig_ratio >= TARGET_RATIO else "NOT MET"
    target = f"target >= {TARGET_RATIO:.0f}x: {verdict}"
    print(f"\ncache effect (p50 uncached / cached): signature only {sig_ratio:.1f}x [{target}],")
    print(f"                                      per request     {req_ratio:.1f}x")
    full, cached = "per request, status read in full (baseline)", "per request (+ revocation query), cached"
    status_ratio = results[full][2] / results[cached][2]
    print(
        f"revocation status cached behind the epoch (one primary-key read per request): p50 {status_ratio:.1f}x "
        "cheaper than reading the status in full"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
