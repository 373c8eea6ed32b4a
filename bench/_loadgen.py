"""A small load generator: N keep-alive HTTP/1.1 connections on asyncio streams, fixed duration.

Runs in its own process (bench_exchange.py starts it with multiprocessing). Each connection sends one
request, reads the head up to CRLFCRLF and the Content-Length body, and records the latency of every
request that starts and ends inside the measured window (after the warm-up). Far cheaper per request
than a general client such as httpx, so that one client process can load one server process.
"""

from __future__ import annotations

import asyncio
import os
import time
from array import array
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> tuple[float, float]:
    """Return (busy, steal): CPU seconds all CPUs of the machine spent busy, and stolen by the host."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class BadResponse(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    """Read one response; return (status, body bytes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise BadResponse(head[:40].decode("latin-1"))
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        length = int(lower[at + 17 : end])
        if length:
            await reader.readexactly(length)
        return status, length
    if b"\r\ntransfer-encoding: chunked" in lower:
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            total += size
            if size == 0:
                return status, total
    raise BadResponse("response without a length")


async def fetch_stats(port: int) -> dict[str, Any] | None:
    """GET /_bench/stats on a fresh connection; None when the server has no such endpoint."""
    import json

    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /_bench/stats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.read()
        writer.close()
        if int(head[9:12]) != 200:
            return None
        loaded: dict[str, Any] = json.loads(body)
        return loaded
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None


async def _run(port: int, requests: list[list[bytes]], warmup: float, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in requests:
        conns.append(await asyncio.open_connection("127.0.0.1", port))
    latencies = array("q")
    statuses: dict[int, int] = {}
    all_non200 = 0
    errors: list[str] = []
    body_bytes = 0
    begin = loop.time()
    start_ns = time.perf_counter_ns() + int(warmup * 1e9)
    end_ns = start_ns + int(seconds * 1e9)
    snapshots: list[dict[str, Any]] = []

    async def snapshot_at(when_ns: int) -> None:
        await asyncio.sleep(max(0.0, (when_ns - time.perf_counter_ns()) / 1e9))
        busy, steal = machine_cpu_s()
        snap: dict[str, Any] = {"client_cpu_s": own_cpu_s(), "machine_busy_s": busy, "steal_s": steal}
        snap["server"] = await fetch_stats(port)
        snapshots.append(snap)

    async def worker(n: int) -> None:
        nonlocal all_non200, body_bytes
        reader, writer = conns[n]
        reqs = requests[n]
        i = 0
        clock = time.perf_counter_ns
        while True:
            t0 = clock()
            if t0 >= end_ns:
                break
            writer.write(reqs[i % len(reqs)])
            i += 1
            try:
                status, size = await read_response(reader)
            except (OSError, BadResponse, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                if len(errors) < 1000:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                writer.close()
                await asyncio.sleep(0.05)
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError as exc2:
                    errors.append(f"reconnect: {exc2}"[:200])
                    await asyncio.sleep(0.5)
                continue
            t1 = clock()
            if status != 200:
                all_non200 += 1
            if t0 >= start_ns and t1 <= end_ns:
                latencies.append(t1 - t0)
                statuses[status] = statuses.get(status, 0) + 1
                body_bytes += size
        writer.close()

    tasks = [asyncio.create_task(worker(n)) for n in range(len(requests))]
    stats = [asyncio.create_task(snapshot_at(start_ns)), asyncio.create_task(snapshot_at(end_ns))]
    await asyncio.gather(*tasks, *stats)
    elapsed = loop.time() - begin

    lat = sorted(latencies)
    count = len(lat)

    def pct(q: float) -> float:
        if not lat:
            return float("nan")
        return lat[min(count - 1, max(0, round(q * count + 0.5) - 1))] / 1e6

    first, last = snapshots[0], snapshots[1]
    server = None
    if first["server"] and last["server"]:
        server = {k: last["server"][k] - first["server"][k] for k in first["server"]}
    window_cpu_client = last["client_cpu_s"] - first["client_cpu_s"]
    window_busy = last["machine_busy_s"] - first["machine_busy_s"]
    window_steal = last["steal_s"] - first["steal_s"]
    return {
        "connections": len(requests),
        "window_s": seconds,
        "elapsed_s": elapsed,
        "count": count,
        "rps": count / seconds,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": lat[-1] / 1e6 if lat else float("nan"),
        "mean_ms": sum(lat) / count / 1e6 if count else float("nan"),
        "statuses": statuses,
        "non200_in_window": sum(v for k, v in statuses.items() if k != 200),
        "non200_all": all_non200,
        "errors": len(errors),
        "error_samples": errors[:5],
        "body_bytes_mean": body_bytes / count if count else 0,
        "client_cpu_s": window_cpu_client,
        "machine_busy_s": window_busy,
        "steal_s": window_steal,
        "server": server,
    }


def run(port: int, requests: list[list[bytes]], warmup: float, seconds: float, out: Any) -> None:
    """Process entry point: run the load and put the result dict (or an error string) on `out`."""
    try:
        try:
            import uvloop
        except ImportError:
            out.put(asyncio.run(_run(port, requests, warmup, seconds)))
        else:
            out.put(uvloop.run(_run(port, requests, warmup, seconds)))
    except BaseException as exc:
        out.put(f"load generator failed: {type(exc).__name__}: {exc}")
        raise
