"""Soak: minutes of mixed load against the real gateway on loopback, watching the server for leaks.

Prepares the same state as bench_exchange.py (keys, a seeded SQLite database, ES256 tokens for Amsterdam,
clock fixed at 2024-11-15 while the covenants are in force), starts the real gateway in its own process
(bench/_servers.py, one uvicorn worker) and drives it from a separate load-generator process over N
keep-alive HTTP/1.1 connections with a fixed, interleaved mix:

  read     GET /v1/participants/{p} for lso_case_discussion (case manager)           55 %
  write    PUT /v1/participants/{p}/records/case_plan for intake (case manager)      20 %
  list     GET /v1/participants?limit=20 for lso_case_discussion                     15 %
  officer  GET /v1/officer/entries?limit=20 (privacy officer: searches the audit log) 10 %

It prints, per interval and for the whole run, throughput, p50 / p99 latency and statuses per kind, and
the server's RSS (VmRSS in /proc/<pid>/status) and open file descriptors (entries of /proc/<pid>/fd) at
the start, every interval, and at the end. After the server stops, it verifies the audit hash chain.

    .venv/bin/python bench/bench_soak.py                  # 2 minutes, 8 connections
    .venv/bin/python bench/bench_soak.py --seconds 600 --clients 16 --interval 60

No figure makes it fail: the exit status is non-zero only when the set-up is broken, some response was
not 2xx, or a connection failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import queue
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _loadgen
from bench_exchange import ORG, PURPOSE, ROLE, Server, check_audit_log, prepare

MIX = (("read", 11), ("write", 4), ("list", 3), ("officer", 2))  # weights out of 20
KINDS = [kind for kind, _ in MIX]


# -- requests -------------------------------------------------------------------------------------


def build_mix(port: int, connections: int, pseudonyms: list[str], tokens: list[str]) -> list[list[tuple[str, bytes]]]:
    """Return, per connection, the (kind, request bytes) it cycles through: the mix interleaved, its own token."""
    order = [kind for kind, weight in MIX for _ in range(weight)]
    order = [order[(i * 7) % len(order)] for i in range(len(order))]  # spread each kind over the cycle
    out = []
    for c in range(connections):
        token = tokens[c % len(tokens)]
        common = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nActing-User: soak.user-{c}\r\n"
        reqs = []
        for k in range(len(order) * len(pseudonyms)):
            kind = order[k % len(order)]
            p = pseudonyms[(c * 7 + k + k // len(order)) % len(pseudonyms)]  # every kind meets every participant
            if kind == "read":
                head = f"GET /v1/participants/{p} HTTP/1.1\r\n{common}Acting-Role: {ROLE}\r\n"
                reqs.append((kind, f"{head}Processing-Purpose: {PURPOSE}\r\n\r\n".encode()))
            elif kind == "write":
                body = json.dumps({"fields": {"plan_summary": f"soak {c}-{k}"}}).encode()
                head = (
                    f"PUT /v1/participants/{p}/records/case_plan HTTP/1.1\r\n{common}Acting-Role: {ROLE}\r\n"
                    f"Processing-Purpose: intake\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                )
                reqs.append((kind, f"{head}\r\n".encode() + body))
            elif kind == "list":
                head = f"GET /v1/participants?limit=20 HTTP/1.1\r\n{common}Acting-Role: {ROLE}\r\n"
                reqs.append((kind, f"{head}Processing-Purpose: {PURPOSE}\r\n\r\n".encode()))
            else:
                head = f"GET /v1/officer/entries?limit=20 HTTP/1.1\r\n{common}Acting-Role: privacy_officer\r\n"
                reqs.append((kind, f"{head}\r\n".encode()))
        out.append(reqs)
    return out


# -- load generator (its own process) -------------------------------------------------------------


async def _soak(port: int, requests: list[list[tuple[str, bytes]]], seconds: float, interval: float) -> dict[str, Any]:
    """Run the mix for `seconds`; return latencies (ns) and statuses per kind and per interval."""
    start = time.perf_counter_ns()
    end = start + int(seconds * 1e9)
    step = int(interval * 1e9)
    n_slots = max(1, int(-(-seconds // interval)))
    lat: dict[str, list[int]] = {k: [] for k in KINDS}
    slots: list[dict[str, Any]] = [{"count": 0, "lat": {k: [] for k in KINDS}} for _ in range(n_slots)]
    statuses: dict[str, dict[int, int]] = {k: {} for k in KINDS}
    errors: list[str] = []

    async def worker(reqs: list[tuple[str, bytes]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        while True:
            t0 = time.perf_counter_ns()
            if t0 >= end:
                break
            kind, raw = reqs[i % len(reqs)]
            i += 1
            writer.write(raw)
            try:
                status, _ = await _loadgen.read_response(reader)
            except (OSError, _loadgen.BadResponse, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
                writer.close()
                if len(errors) > 1000:
                    return  # the server is gone; stop rather than spin
                await asyncio.sleep(0.1)
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError as again:
                    errors.append(f"reconnect: {again}"[:200])
                    return
                continue
            t1 = time.perf_counter_ns()
            statuses[kind][status] = statuses[kind].get(status, 0) + 1
            lat[kind].append(t1 - t0)
            slot = slots[min(n_slots - 1, (t1 - start) // step)]
            slot["count"] += 1
            slot["lat"][kind].append(t1 - t0)
        writer.close()

    await asyncio.gather(*(worker(reqs) for reqs in requests))
    return {
        "seconds": (time.perf_counter_ns() - start) / 1e9,
        "lat": lat,
        "slots": slots,
        "statuses": statuses,
        "errors": len(errors),
        "error_samples": errors[:5],
    }


def _run(port: int, requests: list[list[tuple[str, bytes]]], seconds: float, interval: float, out: Any) -> None:
    try:
        try:
            import uvloop
        except ImportError:
            out.put(asyncio.run(_soak(port, requests, seconds, interval)))
        else:
            out.put(uvloop.run(_soak(port, requests, seconds, interval)))
    except BaseException as exc:
        out.put(f"load generator failed: {type(exc).__name__}: {exc}")
        raise


# -- the server's process -------------------------------------------------------------------------


def process_sample(pid: int) -> dict[str, float]:
    """Return the process's resident memory (MiB) and its open file descriptors, from /proc."""
    rss_kb = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
                break
    return {"rss_mib": rss_kb / 1024, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def soak(server: Server, requests: list[list[tuple[str, bytes]]], seconds: float, interval: float) -> dict[str, Any]:
    """Run the load generator in its own process; sample the server every interval meanwhile."""
    pid = server.proc.pid
    samples = [(0.0, process_sample(pid))]
    print(f"  {0:>6.0f} s  rss {samples[0][1]['rss_mib']:7.1f} MiB  fds {samples[0][1]['fds']:>4.0f}", flush=True)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_run, args=(server.port, requests, seconds, interval, results), daemon=True)
    began = time.monotonic()
    proc.start()
    try:
        result: Any = None
        for k in range(1, int(-(-seconds // interval))):  # bounded: one sample per inner interval, then the result
            try:
                result = results.get(timeout=max(0.0, began + k * interval - time.monotonic()))
                break
            except queue.Empty:  # the interval has passed
                sample = process_sample(pid)
                samples.append((time.monotonic() - began, sample))
                print(
                    f"  {samples[-1][0]:>6.0f} s  rss {sample['rss_mib']:7.1f} MiB  fds {sample['fds']:>4.0f}",
                    flush=True,
                )
        if result is None:
            result = results.get(timeout=seconds + 120)
        samples.append((time.monotonic() - began, process_sample(pid)))
        proc.join(15)
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    if isinstance(result, str):
        raise RuntimeError(result)
    return {**result, "samples": samples}


# -- report ---------------------------------------------------------------------------------------


def pct(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))] / 1e6


def report(r: dict[str, Any], args: argparse.Namespace) -> bool:
    """Print the results; return whether every response was 2xx and no connection failed."""
    window = r["seconds"]
    print()
    print(
        f"bench_soak: {os.cpu_count()} CPUs, Python {platform.python_version()}, {window:.0f} s of mixed load over "
        f"{args.clients} connections as {ORG}"
    )
    print(f"{'kind':<10}{'count':>9}{'req/s':>9}{'p50':>9}{'p99':>9}{'max':>9}  statuses")
    print(f"{'':<28}{'ms':>9}{'ms':>9}{'ms':>9}")
    every: list[int] = []
    for kind in KINDS:
        lat = r["lat"][kind]
        every += lat
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(r["statuses"][kind].items()))
        print(
            f"{kind:<10}{len(lat):>9,}{len(lat) / window:>9,.1f}{pct(lat, 0.5):>9.2f}{pct(lat, 0.99):>9.2f}"
            f"{max(lat, default=0) / 1e6:>9.1f}  {statuses}"
        )
    print(
        f"{'all':<10}{len(every):>9,}{len(every) / window:>9,.1f}{pct(every, 0.5):>9.2f}{pct(every, 0.99):>9.2f}"
        f"{max(every, default=0) / 1e6:>9.1f}"
    )
    print()
    print(f"per interval of {args.interval:g} s:")
    print(f"{'from':>8}{'req/s':>9}{'p50':>9}{'p99':>9}")
    for k, slot in enumerate(r["slots"]):
        lat = [x for kind in KINDS for x in slot["lat"][kind]]
        span = min(args.interval, window - k * args.interval)
        if span > 0:
            print(f"{k * args.interval:>7.0f}s{len(lat) / span:>9,.1f}{pct(lat, 0.5):>9.2f}{pct(lat, 0.99):>9.2f}")
    (t0, first), (t1, last) = r["samples"][0], r["samples"][-1]
    print()
    print("server process (gateway, one uvicorn worker):")
    print(f"  start ({t0:>5.0f} s): rss {first['rss_mib']:7.1f} MiB, open fds {first['fds']:.0f}")
    print(f"  end   ({t1:>5.0f} s): rss {last['rss_mib']:7.1f} MiB, open fds {last['fds']:.0f}")
    print(f"  change: rss {last['rss_mib'] - first['rss_mib']:+.1f} MiB, fds {last['fds'] - first['fds']:+.0f}")
    bad = {k: {s: n for s, n in st.items() if not 200 <= s < 300} for k, st in r["statuses"].items()}
    bad = {k: v for k, v in bad.items() if v}
    if bad or r["errors"]:
        print(f"  !! non-2xx responses {bad}, {r['errors']} connection errors, e.g. {r['error_samples']}")
    return not bad and not r["errors"]


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds of load (default 120)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between server samples (default 30)")
    parser.add_argument("--per-city", type=int, default=20, help="synthetic participants per city (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    args = parser.parse_args()
    if args.seconds <= 0 or args.interval <= 0 or args.clients < 1:
        parser.error("--seconds and --interval must be positive, --clients at least 1")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    state = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    server: Server | None = None
    started = time.monotonic()
    try:
        pseudonyms, tokens = prepare(state, args.per_city, args.clients)
        print(f"prepared {state}: {len(pseudonyms)} Amsterdam participants, {len(tokens)} tokens", flush=True)
        server = Server("gateway", state)  # assigned before it starts, so the finally below always stops it
        server.start()
        result = soak(server, build_mix(server.port, args.clients, pseudonyms, tokens), args.seconds, args.interval)
        server.stop()
        server = None
        check_audit_log(state)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    ok = report(result, args)
    if args.json:
        summary = {k: v for k, v in result.items() if k not in ("lat", "slots")}
        summary["kinds"] = {
            k: {"count": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99)} for k, v in result["lat"].items()
        }
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
