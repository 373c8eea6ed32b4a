"""End-to-end throughput and latency of audited reads, against a bare FastAPI floor, in one run.

Starts, one at a time (so they never compete for the CPUs), single-worker uvicorn (or granian) servers
on free loopback ports, each in its own process (bench/_servers.py):

  bare             minimal FastAPI app, one async GET: decrypt one AES-GCM ciphertext, return the same
                   ~1.3 KB JSON document the gateway returns for an LSO read
  crud             the unaudited CRUD service a team would otherwise write: FastAPI + SQLAlchemy, ES256
                   token checked, the same records read and decrypted; no policy, no purpose, no audit
  gateway-noaudit  the real gateway with its audit writer replaced, in that bench process only, by a
                   stand-in that writes nothing (the baseline for the audit-cost target)
  gateway          the real gateway: ES256 bearer tokens, purpose/role/user headers, policy decision,
                   durable group-committed audit entry (SQLite, WAL, synchronous=FULL), decrypt, respond

and loads each with a separate load-generator process (bench/_loadgen.py: hand-written asyncio
HTTP/1.1 keep-alive client) at 1 and 32 concurrent connections, for a fixed time after a warm-up.

    .venv/bin/python bench/bench_exchange.py              # 2 s warm-up + 8 s per run, ~2 min in all
    .venv/bin/python bench/bench_exchange.py --runs 3     # three rounds; medians and spread at the end
    .venv/bin/python bench/bench_exchange.py --quick      # ~30 s smoke run
    .venv/bin/python bench/bench_exchange.py --http granian
    .venv/bin/python bench/bench_exchange.py --servers bare,bare-sync,crud,gateway-noaudit,gateway

Targets (issue 11): at 32 clients the gateway's throughput >= 1.0x the CRUD service's and >= 0.6x the bare
endpoint's; gateway p99 <= 1.5x no-audit p99 at 32 clients; single-client gateway p99 <= 2 ms (SQLite).
On a shared machine the server CPU per request is the steadier figure: the ratios are given both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import platform
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import _loadgen

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
ISSUER = "https://issuer.bench.invalid"
AUDIENCE = "lvv-exchange-gateway"
IN_FORCE = datetime.fromisoformat("2024-11-15T10:00:00+01:00")
PURPOSE, ROLE, ORG = "lso_case_discussion", "case_manager", "amsterdam"

TARGET_THROUGHPUT_RATIO = 0.6  # gateway / bare
TARGET_CRUD_RATIO = 1.0  # gateway / crud
TARGET_AUDIT_P99_RATIO = 1.5
TARGET_SINGLE_P99_MS = 2.0
SERVERS = ("bare", "bare-sync", "crud", "gateway-noaudit", "gateway")


# -- state: keys, a seeded database, tokens, the sample document -----------------------------------


def prepare(state: Path, per_city: int, n_tokens: int) -> tuple[list[str], list[str]]:
    """Create keys, a seeded SQLite database (copied per gateway server) and tokens; return
    (the Amsterdam case manager's pseudonyms of Amsterdam participants, bearer tokens)."""
    from joserfc import jwt
    from joserfc.jwk import ECKey

    from gateway.clock import FixedClock
    from gateway.container import build
    from gateway.crypto.keys import init_keys
    from gateway.demo.seed import seed
    from gateway.exchange.context import Principal, RequestContext, TraceContext
    from gateway.logging import configure_logging
    from gateway.settings import Settings
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade

    configure_logging("warning")
    init_keys(state / "keys")
    signer = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)
    (state / "trusted.jwks.json").write_text(json.dumps({"keys": [signer.as_dict(private=False)]}))
    template = state / "template.db"
    db = connect(f"sqlite:///{template}")
    upgrade(db)
    db.dispose()
    settings = Settings(
        config_dir=ROOT / "config" / "lvv",
        database_url=f"sqlite:///{template}",
        key_dir=state / "keys",
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_jwks_file=state / "trusted.jwks.json",
    )
    container = build(settings, FixedClock(IN_FORCE))
    try:
        asyncio.run(seed(container, per_city=per_city))
        principal = Principal(organisation=ORG, client_id="bench", token_id="bench", expires_at=0)
        ctx = RequestContext(principal, "bench.user", ROLE, PURPOSE, TraceContext.from_header(None))
        pseudonyms = [listed.pseudonym for listed in asyncio.run(container.exchange.list(ctx, 100_000, None)).items]
        sample = asyncio.run(container.exchange.read(ctx, pseudonyms[0], None))
    finally:
        container.close()
    d = sample.access.decision
    document = {  # the shape of GET /v1/participants/{pseudonym} (gateway/api/exchange.py)
        "participant": sample.pseudonym,
        "purpose": d.purpose,
        "processing_activity_id": d.processing_activity_id,
        "records": {
            name: {
                "fields": rec.fields,
                "version": rec.version,
                "source": rec.source_organisation,
                "written_at": rec.written_at.isoformat(),
            }
            for name, rec in sample.records.items()
        },
        "withheld_categories": list(d.withheld),
        "audit": {
            "seq": sample.access.audit_seq,
            "policy_version": d.policy_version,
            "rule_ids": list(d.rule_ids),
            "legal_bases": list(d.legal_bases),
        },
    }
    (state / "sample_read.json").write_text(json.dumps(document))
    for name in ("gateway.db", "noaudit.db", "crud.db"):
        shutil.copyfile(template, state / name)
    (state / "state.json").write_text(
        json.dumps({"config_dir": str(ROOT / "config" / "lvv"), "issuer": ISSUER, "audience": AUDIENCE})
    )
    now = int(IN_FORCE.timestamp())
    tokens = []
    for n in range(n_tokens):
        claims = {
            "iss": ISSUER,
            "sub": f"bench-client-{n}",
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "client_id": f"bench-client-{n}",
            "organisation": ORG,
        }
        header = {"alg": "ES256", "kid": signer.kid, "typ": "at+jwt"}
        tokens.append(jwt.encode(header, claims, signer, algorithms=["ES256"]))
    return pseudonyms, tokens


def build_requests(port: int, connections: int, pseudonyms: list[str], tokens: list[str]) -> list[list[bytes]]:
    """Return, per connection, the request bytes it cycles through (own token, rotating participants)."""
    out = []
    for c in range(connections):
        token = tokens[c % len(tokens)]
        reqs = []
        for k in range(len(pseudonyms)):
            p = pseudonyms[(c * 7 + k) % len(pseudonyms)]
            reqs.append(
                (
                    f"GET /v1/participants/{p} HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\n"
                    f"Authorization: Bearer {token}\r\n"
                    f"Processing-Purpose: {PURPOSE}\r\n"
                    f"Acting-Role: {ROLE}\r\n"
                    f"Acting-User: bench.user-{c}\r\n"
                    "\r\n"
                ).encode()
            )
        out.append(reqs)
    return out


# -- processes ------------------------------------------------------------------------------------


class Server:
    """One server subprocess; always stopped by `stop()` (called from a finally)."""

    def __init__(self, kind: str, state: Path, http: str = "uvicorn") -> None:
        self.kind = kind
        self.log_path = state / f"{kind}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "_servers.py"), kind, str(state), http],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.port = 0

    def start(self) -> Server:
        """Wait until the server listens and answers; return it."""
        self.port = self._read_port(timeout=60)
        self._wait_ready(timeout=60)
        return self

    def _read_port(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                line = self.proc.stdout.readline()
                if line.startswith("PORT "):
                    return int(line.split()[1])
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"{self.kind} server did not start; see {self.log_path}:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.stats() is not None:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} server not ready; see {self.log_path}:\n{self.log_tail()}")

    def stats(self) -> dict[str, Any] | None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/_bench/stats")
            response = conn.getresponse()
            body = response.read()
            return json.loads(body) if response.status == 200 else None
        finally:
            conn.close()

    def worker_pid(self) -> int:
        """Return the pid of the process that runs the app (granian's worker is a child of the server)."""
        stats = self.stats()
        return int(stats["pid"]) if stats and "pid" in stats else self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully (and flushes the audit log)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def run_load(port: int, requests: list[list[bytes]], warmup: float, seconds: float) -> dict[str, Any]:
    """Run the load generator in its own process and return its result."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_loadgen.run, args=(port, requests, warmup, seconds, queue), daemon=True)
    proc.start()
    try:
        result = queue.get(timeout=warmup + seconds + 120)
        proc.join(15)
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    if isinstance(result, str):
        raise RuntimeError(result)
    return dict(result)


# -- report ---------------------------------------------------------------------------------------


def other_cores(r: dict[str, Any]) -> float:
    """Return the cores the rest of the machine kept busy during a run's window (other load)."""
    ours = float(r["client_cpu_s"]) + float((r.get("server") or {}).get("cpu_s", 0.0))
    return max(0.0, float(r["machine_busy_s"]) - ours) / float(r["window_s"])


def fmt_row(kind: str, r: dict[str, Any]) -> str:
    w = r["window_s"]
    srv_cpu = (r.get("server") or {}).get("cpu_s", float("nan")) / w
    bad = r["non200_all"] + r["errors"]
    return (
        f"{kind:<16}{r['connections']:>4}{r['rps']:>9,.0f}{r['p50_ms']:>8.2f}{r['p90_ms']:>8.2f}{r['p99_ms']:>8.2f}"
        f"{r['p999_ms']:>8.2f}{r['max_ms']:>8.1f}{bad:>7}{r['body_bytes_mean']:>7.0f}"
        f"{srv_cpu:>7.2f}{r['client_cpu_s'] / w:>7.2f}{other_cores(r):>7.2f}"
    )


HEADER = (
    f"{'server':<16}{'conn':>4}{'req/s':>9}{'p50':>8}{'p90':>8}{'p99':>8}{'p99.9':>8}{'max':>8}"
    f"{'bad':>7}{'body':>7}{'srvCPU':>7}{'cliCPU':>7}{'other':>7}"
)
UNITS = f"{'':<29}" + "".join(f"{u:>8}" for u in ("ms",) * 5) + f"{'':>7}{'B':>7}" + f"{'cores':>7}" * 3


def verdict(ok: bool, valid: bool) -> str:
    if not valid:
        return "INVALID (the runs had errors or non-200 responses)"
    return "MET" if ok else "NOT MET"


def valid(*rs: dict[str, Any] | None) -> bool:
    """Return whether every run exists and saw only 200 responses and no connection errors."""
    return all(r is not None and r["non200_all"] == 0 and r["errors"] == 0 and r["count"] > 0 for r in rs)


def cpu_per_request_ms(r: dict[str, Any] | None) -> float:
    """Return the server's CPU milliseconds per completed request in the measured window (nan if unknown)."""
    if not r or not r.get("server") or not r["count"]:
        return float("nan")
    return float(r["server"]["cpu_s"]) / float(r["count"]) * 1e3


def ratios(results: dict[tuple[str, int], dict[str, Any]], hi: int) -> dict[str, float]:
    """Return the figures the targets are about, for one run (absent servers give nan)."""
    nan = float("nan")

    def get(kind: str, conns: int, key: str) -> float:
        r = results.get((kind, conns))
        return float(r[key]) if r else nan

    def cpu(kind: str) -> float:
        return cpu_per_request_ms(results.get((kind, hi)))

    return {
        "gateway/crud rps": get("gateway", hi, "rps") / get("crud", hi, "rps"),
        "gateway/bare rps": get("gateway", hi, "rps") / get("bare", hi, "rps"),
        "crud/gateway CPU": cpu("crud") / cpu("gateway"),
        "bare/gateway CPU": cpu("bare") / cpu("gateway"),
        "gateway/no-audit p99": get("gateway", hi, "p99_ms") / get("gateway-noaudit", hi, "p99_ms"),
        "single-client p99 ms": get("gateway", 1, "p99_ms"),
    }


TARGETS = {  # name -> (target, whether higher is better)
    "gateway/crud rps": (TARGET_CRUD_RATIO, True),
    "gateway/bare rps": (TARGET_THROUGHPUT_RATIO, True),
    "crud/gateway CPU": (TARGET_CRUD_RATIO, True),
    "bare/gateway CPU": (TARGET_THROUGHPUT_RATIO, True),
    "gateway/no-audit p99": (TARGET_AUDIT_P99_RATIO, False),
    "single-client p99 ms": (TARGET_SINGLE_P99_MS, False),
}


def met(name: str, value: float) -> bool:
    target, higher = TARGETS[name]
    return value >= target if higher else value <= target


def report(results: dict[tuple[str, int], dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"bench_exchange: {os.cpu_count()} CPUs, Python {platform.python_version()}, {args.http}, {args.warmup:g} s "
        f"warm-up + {args.seconds:g} s measured per run; GET /v1/participants/{{p}} as {ROLE}@{ORG} for {PURPOSE}"
    )
    print(HEADER)
    print(UNITS)
    print("-" * len(HEADER))
    for (kind, _), r in results.items():
        print(fmt_row(kind, r))
    print(
        "bad = non-200 responses + connection errors over the whole run (warm-up included); srvCPU, cliCPU = CPU "
        "seconds per second of the server and of the load-generator process; other = the rest of the machine's "
        "busy CPU in the window (load from elsewhere)"
    )

    audits = [(conns, r) for (kind, conns), r in results.items() if kind == "gateway" and r.get("server")]
    if audits:
        print()
        print("audit writer of the gateway (group commit), measured window:")
        for conns, r in audits:
            b, a = r["server"].get("audit_batches", 0), r["server"].get("audit_appended", 0)
            per = a / b if b else float("nan")
            print(
                f"  {conns:>3} clients: {a:,} entries in {b:,} commits = {per:.1f} entries/commit, "
                f"{b / r['window_s']:,.0f} commits/s"
            )

    hi = max(args.clients)
    print()
    print(f"server CPU per request at {hi} clients (ms):")
    for kind in SERVERS:
        run = results.get((kind, hi))
        if run and run.get("server"):
            print(f"  {kind:<16}{cpu_per_request_ms(run):8.3f}")
    print()
    print(f"ratios (same run, {hi} clients):")
    figures = ratios(results, hi)
    for name, value in figures.items():
        if value != value:  # nan: a server of the ratio was not run
            continue
        runs = [results.get(("gateway", hi)), results.get(("gateway", 1))]
        target, higher = TARGETS[name]
        print(
            f"  {name:<22}{value:8.2f}   target {'>=' if higher else '<='} {target:g}: "
            f"{verdict(met(name, value), valid(*[r for r in runs if r is not None]))}"
        )
    one, na1, bare1 = results.get(("gateway", 1)), results.get(("gateway-noaudit", 1)), results.get(("bare", 1))
    if one and na1:
        extra = f", bare {bare1['p50_ms']:.2f} ms" if bare1 else ""
        print(f"  single-client p50: gateway {one['p50_ms']:.2f} ms, no-audit {na1['p50_ms']:.2f} ms{extra}")
    for (kind, conns), r in results.items():
        if r["non200_all"] or r["errors"]:
            print(
                f"  !! {kind} at {conns} clients: {r['non200_all']} non-200 responses (in window: {r['statuses']}), "
                f"{r['errors']} connection errors, e.g. {r['error_samples']}"
            )
    worst = max((other_cores(r) for r in results.values()), default=0.0)
    steal = max((r["steal_s"] / r["window_s"] for r in results.values()), default=0.0)
    if worst > 0.25 or steal > 0.05:
        print(
            f"  note: other processes kept up to {worst:.2f} of {os.cpu_count()} cores busy (hypervisor steal up "
            f"to {steal:.2f}) during some runs; absolute figures, and ratios across those runs, are disturbed"
        )


def summary(rounds: list[dict[tuple[str, int], dict[str, Any]]], args: argparse.Namespace) -> None:
    """Print, over the rounds, the median and the range (min-max) of each server's figures and each ratio."""
    hi = max(args.clients)

    def line(name: str, values: list[float], fmt: str) -> str:
        values = sorted(v for v in values if v == v)
        if not values:
            return ""
        med = statistics.median(values)
        return f"  {name:<28}{format(med, fmt):>10}   ({format(values[0], fmt)} - {format(values[-1], fmt)})"

    print()
    print(f"summary over {len(rounds)} rounds: median (min - max)")
    keys = [k for k in rounds[0] if all(k in r for r in rounds)]
    for kind, conns in keys:
        rs = [r[(kind, conns)] for r in rounds]
        label = f"{kind} @{conns}"
        print(line(f"{label} req/s", [x["rps"] for x in rs], ",.0f"))
        print(line(f"{label} p50 ms", [x["p50_ms"] for x in rs], ".2f"))
        print(line(f"{label} p99 ms", [x["p99_ms"] for x in rs], ".2f"))
        if conns == hi:
            print(line(f"{label} CPU ms/req", [cpu_per_request_ms(x) for x in rs], ".3f"))
    print("  ratios:")
    per_round = [ratios(r, hi) for r in rounds]
    for name in TARGETS:
        values = [f[name] for f in per_round]
        text = line(name, values, ".2f")
        if text:
            med = statistics.median(v for v in values if v == v)
            target, higher = TARGETS[name]
            print(f"{text}   target {'>=' if higher else '<='} {target:g}: {'MET' if met(name, med) else 'NOT MET'}")


# -- optional profile of the servers with py-spy ----------------------------------------------------

IDLE_LEAVES = ("Condition.wait", "Queue.get", "Event.wait", "select", "poll")


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recording one server during one measured window (it starts `delay` s from now)."""

    def __init__(self, binary: str, pid: int, out: Path, delay: float, seconds: float) -> None:
        self.cmd = [binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "250"]
        self.cmd += ["--gil", "--nonblocking", "--format", "raw", "--output", str(out)]
        self.proc: subprocess.Popen[bytes] | None = None
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._record, args=(delay,), daemon=True)
        self._thread.start()

    def _record(self, delay: float) -> None:
        if self._cancelled.wait(delay):
            return
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc.wait()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self.stop()

    def stop(self) -> None:
        self._cancelled.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


def summarise_profile(path: Path, top: int = 15) -> None:
    """Print the functions with the most samples (inclusive) and the hottest lines (self), idle waits excluded."""
    if not path.exists():
        print(f"  (no profile at {path})")
        return
    inclusive: dict[str, int] = {}
    self_lines: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        if frames[-1].split(" (")[0].endswith(IDLE_LEAVES):
            continue
        n = int(count)
        total += n
        self_lines[frames[-1]] = self_lines.get(frames[-1], 0) + n
        for name in {f.rsplit(":", 1)[0] + ")" for f in frames if " (" in f}:
            inclusive[name] = inclusive.get(name, 0) + n
    prefix = str(ROOT) + "/"
    site = "/site-packages/"

    def short(frame: str) -> str:
        frame = frame.replace(prefix, "")
        return frame[frame.index(site) + len(site) :] if site in frame else frame

    print(f"  {path.name}: {total} busy samples")
    print("    inclusive, gateway code:")
    ours = [(n, f) for f, n in inclusive.items() if "(gateway/" in f.replace(prefix, "")]
    for n, f in sorted(ours, reverse=True)[:top]:
        print(f"      {100 * n / total:5.1f}%  {short(f)}")
    print("    self, by line:")
    for f, n in sorted(self_lines.items(), key=lambda kv: -kv[1])[:top]:
        print(f"      {100 * n / total:5.1f}%  {short(f)}")


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per run (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 0.5 s warm-up, 2 s measured")
    parser.add_argument("--clients", default="1,32", help="concurrent connections, comma-separated (default 1,32)")
    parser.add_argument(
        "--servers",
        default="bare,crud,gateway-noaudit,gateway",
        help=f"servers in run order ({', '.join(SERVERS)}); default: bare,crud,gateway-noaudit,gateway",
    )
    parser.add_argument("--runs", type=int, default=1, help="rounds over all servers; medians and spread (default 1)")
    parser.add_argument(
        "--http",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help="HTTP server of every server (default uvicorn)",
    )
    parser.add_argument("--per-city", type=int, default=20, help="synthetic participants per city (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record each server with py-spy during each measured window (raw stacks in DIR) and print the hotspots",
    )
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.seconds = 0.5, 2.0
    args.clients = [int(c) for c in args.clients.split(",")]
    servers = [s for s in args.servers.split(",") if s]
    known = set(SERVERS)
    if not set(servers) <= known:
        parser.error(f"unknown servers {sorted(set(servers) - known)}")

    spy = py_spy_binary() if args.py_spy else None
    if args.py_spy and not spy:
        parser.error("--py-spy needs py-spy (.venv/bin/pip install py-spy)")
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    state = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    rounds: list[dict[tuple[str, int], dict[str, Any]]] = []
    server: Server | None = None
    profiler: Profiler | None = None
    started = time.monotonic()
    try:
        t0 = time.monotonic()
        pseudonyms, tokens = prepare(state, args.per_city, max(args.clients))
        print(
            f"prepared {state}: {len(pseudonyms)} Amsterdam participants to read, {len(tokens)} ES256 tokens "
            f"({time.monotonic() - t0:.1f} s)",
            flush=True,
        )
        for n in range(args.runs):
            if args.runs > 1:
                print(f"round {n + 1} of {args.runs}", flush=True)
            results: dict[tuple[str, int], dict[str, Any]] = {}
            rounds.append(results)
            for kind in servers:
                server = Server(kind, state, args.http)  # assigned before it starts: the finally always stops it
                server.start()
                for conns in args.clients:
                    requests = build_requests(server.port, conns, pseudonyms, tokens)
                    if spy:
                        out = args.py_spy / f"{kind}-{conns}.txt"
                        profiler = Profiler(spy, server.worker_pid(), out, args.warmup + 0.3, args.seconds)
                    r = run_load(server.port, requests, args.warmup, args.seconds)
                    if profiler:
                        profiler.join(args.seconds + 30)
                        profiler = None
                    results[(kind, conns)] = r
                    print(f"  {fmt_row(kind, r)}", flush=True)
                server.stop()
                server = None
                if kind == "gateway":
                    check_audit_log(state)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if profiler is not None:
            profiler.stop()
        if server is not None:
            server.stop()
        if args.keep:
            print(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    for results in rounds:
        report(results, args)
    if len(rounds) > 1:
        summary(rounds, args)
    if args.py_spy:
        print()
        print(
            f"py-spy profiles (raw stacks in {args.py_spy}; the sampling slows the servers, so use the figures above)"
        )
        for kind in ("gateway-noaudit", "gateway"):
            if kind in servers:
                summarise_profile(args.py_spy / f"{kind}-{max(args.clients)}.txt")
    if args.json:
        # The load generator's result has the server's own statistics under "server"; the row's "server"
        # is the server's name, and those statistics are "server_stats".
        rows = [
            {**{k: v for k, v in r.items() if k != "server"}, "server": kind, "clients": conns, "round": n + 1,
             "http": args.http, "server_stats": r.get("server"), "server_cpu_ms_per_request": cpu_per_request_ms(r)}
            for n, results in enumerate(rounds)
            for (kind, conns), r in results.items()
        ]  # fmt: skip
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    bad = any(r["non200_all"] or r["errors"] for results in rounds for r in results.values())
    return 1 if bad else 0


def check_audit_log(state: Path) -> None:
    """After the audited server stopped: count its entries and verify the hash chain."""
    from gateway.audit.chain import verify_chain
    from gateway.store.db import connect

    db = connect(f"sqlite:///{state / 'gateway.db'}")
    try:
        t0 = time.monotonic()
        chain = verify_chain(db)
        took = time.monotonic() - t0
    finally:
        db.dispose()
    status = "intact" if chain.ok else f"BROKEN at {chain.first_bad_seq}: {chain.problem}"
    print(f"  audit log after the gateway runs: {chain.entries:,} entries, chain {status} (verified in {took:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
