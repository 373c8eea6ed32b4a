"""Benchmarks of the audit log as evidence: offline verification, proofs at scale, durable appends.

    .venv/bin/python bench/bench_audit.py            # full run (under 3 minutes on 2 CPUs)
    .venv/bin/python bench/bench_audit.py --quick    # smaller sizes, a few seconds

1. Verification speed of an export of 1,000,000 synthetic entries (checkpoints every 100,000, segments
   of 65,536), with `gateway.audit.verify.verify_export`: every leaf recomputed, every signature and
   checkpoint root checked. Parallel (one worker per CPU) against a single-process baseline in the
   same run. Target >= 1,000,000 entries/s, no less than 500,000. The entries have the shapes of the
   demo's audit entries (mean ~1.15 KB; `--shape` for others, e.g. `compact` without null and empty
   fields); the CPU cost per entry is the figure that survives a busy machine.
2. Proof size and time at 10,000,000 entries: a tree of synthetic leaf hashes (no database), proofs
   produced by the gateway's own `TreeCache` code over an in-memory leaf store, and verified.
3. Sustained durable append rate of the audit store alone (`AuditWriter`, group commit), on SQLite
   (WAL, synchronous=FULL) and PostgreSQL when reachable, against one entry per commit: a burst of
   single entries, 64 waiting threads, async callers, and the batched API (calls of 2,000 entries,
   `submit_many` and `append_many_async`, 3 runs: median and spread). Target >= 50k/s batched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import math
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpoint import Checkpoint, VerifierKey, raw_public_key, sign
from gateway.audit.export import checkpoint_name, segment_name
from gateway.audit.fasthash import leaf_hashes_of_lines, tree_root
from gateway.audit.merkle import TreeBuilder, compact_range, join_subtree, verify_consistency, verify_inclusion
from gateway.audit.proofs import TreeCache
from gateway.audit.verify import Segment, verify_export, verify_segment

ORIGIN = "bench.example/audit"
START = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
PG_ADMIN_DSN = os.environ.get("GATEWAY_BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


def synthetic_entry(i: int) -> dict[str, object]:
    """A decision entry shaped like the gateway's (synthetic ids only)."""
    orgs = ("amsterdam", "rotterdam", "ind", "ngo-opvang-amsterdam", "avim")
    org = orgs[i % len(orgs)]
    return {
        "v": 1,
        "seq": i,
        "time": (START + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"),
        "event": "exchange.read",
        "organisation": org,
        "client_id": f"client-{org}",
        "acting_user": f"user.{i % 97}",
        "role": "case_manager",
        "purpose": "lso_case_discussion",
        "processing_activity_id": "urn:nl:lvv-gateway:activity:lso_case_discussion",
        "decision": "permit" if i % 7 else "deny",
        "reason": "permitted" if i % 7 else "no_rule_for_purpose",
        "participant": str(uuid.UUID(int=i * 2654435761 % (1 << 122))),
        "categories": ["case_plan", "identity"],
        "rule_ids": ["lso-city-read"],
        "legal_bases": ["eu-gdpr:A6-1-e"],
        "policy_version": "sha256:" + "ab" * 32,
        "trace_id": f"{i:032x}",
        "span_id": f"{i:016x}",
    }


# --- 1. verification of an export -----------------------------------------------------------------


# Shapes of real entries: three audited reads of the demo (`gateway demo init`, then the three reads
# `make run` prints: a full read for the LSO case discussion, the same participant cut down for shelter
# counselling, a denied read) and a demo write, copied from var/gateway.db with their ids made slots.
_POLICY = "sha256:51010f5cb3ab3b980a776a05f9c7a56915f3455fd707eeceaa7761638c78dbfe"
_FULL_READ: dict[str, object] = {
    "acting_user": "demo.user",
    "brokered_from": {"case_plan": "cvs-amsterdam"},
    "categories": [
        "case_plan",
        "identity",
        "identity_doubt",
        "immigration_procedure",
        "outflow",
        "return_track",
        "screening",
    ],
    "client_id": "demo-amsterdam",
    "covenants": ["lvv-amsterdam"],
    "decision": "permit",
    "event": "exchange.read",
    "fields": {
        "case_plan": ["phase", "perspective", "plan_summary", "next_lso_date", "regie_organisation"],
        "identity": ["family_name", "given_names", "birth_date", "nationality", "language"],
        "identity_doubt": ["identity_in_doubt", "nationality_in_doubt", "doubt_basis"],
        "immigration_procedure": [
            "procedure_type",
            "procedure_status",
            "last_decision_date",
            "dublin_claim",
            "repeat_application",
        ],
        "outflow": ["outflow_type", "outflow_route", "outflow_date"],
        "return_track": ["return_willingness", "travel_document_status", "return_course", "financial_support"],
        "screening": ["signals", "no_show_count", "last_screening_date", "warning_letter_sent"],
    },
    "legal_bases": ["eu-gdpr:A6-1-e"],
    "organisation": "amsterdam",
    "parent_span_id": None,
    "participant": "adcf40a5-31d6-4b46-af60-47a7aae2abaf",
    "policy_version": _POLICY,
    "processing_activity_id": "urn:nl:lvv-gateway:activity:lso_case_discussion",
    "purpose": "lso_case_discussion",
    "reason": "permitted",
    "role": "case_manager",
    "rule_ids": ["lso-city-read"],
    "seq": 101,
    "span_id": "6f33780de5c70d4c",
    "time": "2024-11-15T09:00:14.790355Z",
    "trace_id": "1df375a5eb2a469f252024c4a29f0e1a",
    "v": 1,
    "withheld": [],
}
_CUT_DOWN_READ: dict[str, object] = {
    **_FULL_READ,
    "categories": ["case_plan", "contact", "identity"],
    "fields": {
        "case_plan": ["phase", "next_lso_date"],
        "contact": ["shelter_location", "phone", "email"],
        "identity": ["family_name", "given_names", "birth_date", "language"],
    },
    "processing_activity_id": "urn:nl:lvv-gateway:activity:shelter_counselling",
    "purpose": "shelter_counselling",
    "rule_ids": ["shelter-city-read"],
}
_DENIED_READ: dict[str, object] = {
    **{k: v for k, v in _FULL_READ.items() if k != "brokered_from"},
    "categories": [],
    "client_id": "demo-ngo-opvang-amsterdam",
    "covenants": [],
    "decision": "deny",
    "fields": {},
    "legal_bases": [],
    "organisation": "ngo-opvang-amsterdam",
    "processing_activity_id": "urn:nl:lvv-gateway:activity:police_screening",
    "purpose": "police_screening",
    "reason": "no_rule_for_purpose",
    "role": "counsellor",
    "rule_ids": [],
}
_WRITE: dict[str, object] = {
    **{k: v for k, v in _FULL_READ.items() if k != "brokered_from"},
    "categories": ["return_track"],
    "client_id": "demo-dtv",
    "covenants": ["lvv-eindhoven"],
    "event": "exchange.write",
    "fields": {"return_track": ["return_willingness", "travel_document_status", "return_course", "financial_support"]},
    "organisation": "dtv",
    "processing_activity_id": "urn:nl:lvv-gateway:activity:return_support",
    "purpose": "return_support",
    "role": "return_officer",
    "rule_ids": ["return-dtv-write"],
}
# Of every 8 entries: 4 full reads, 2 cut-down reads, 1 denied read, 1 write (reads dominate an exchange).
_MIX = (_FULL_READ,) * 4 + (_CUT_DOWN_READ,) * 2 + (_DENIED_READ, _WRITE)
SHAPES = {
    "mix": "the demo's entries: 4 full reads, 2 cut-down reads, 1 denied read, 1 write of every 8",
    "compact": "the same mix without null and empty fields (parent_span_id: null, withheld: [], ...)",
    "read": "full reads only (the largest entry of the demo)",
    "small": "the earlier synthetic entry of this bench (smaller than the gateway's)",
}


def _compact(entry: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in entry.items() if v is not None and v != [] and v != {}}


def _line_template(entry: dict[str, object]) -> bytes:
    """Return a canonical entry line with %-slots for the fields that vary (fast to fill in).

    Slots, in the order sorted keys put them: acting user, participant, seq, span id, time, trace id.
    """
    entry = {
        **entry,
        "acting_user": "@A@",
        "participant": "@B@",
        "seq": 424242424242,
        "span_id": "@D@",
        "time": "@T@",
        "trace_id": "@C@",
    }
    line = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n"
    return (
        line.replace(b"%", b"%%")
        .replace(b"@A@", b"case.worker.%03d")
        .replace(b"@B@", b"%08x-0000-4000-8000-%012x")
        .replace(b"424242424242", b"%d")
        .replace(b"@D@", b"%016x")
        .replace(b"@T@", b"2024-11-15T%02d:%02d:%02d.%06dZ")
        .replace(b"@C@", b"%032x")
    )


def _line_templates(shape: str) -> list[bytes]:
    if shape == "small":
        return [_line_template(synthetic_entry(1))]
    entries = [_FULL_READ] if shape == "read" else list(_MIX)
    return [_line_template(_compact(e) if shape == "compact" else e) for e in entries]


def _lines(templates: list[bytes], first: int, last: int) -> bytes:
    """Return entries first..last, one canonical line each, cycling through the templates."""
    n = len(templates)
    out = []
    for i in range(first, last + 1):
        s = i // 1000  # one entry per millisecond from 09:00
        out.append(
            templates[i % n]
            % (i % 997, i, i * 2654435761 % (1 << 48), i, i, 9 + s // 3600, s // 60 % 60, s % 60, i % 1000 * 1000, i)
        )
    return b"".join(out)


def write_export(
    directory: Path, entries: int, checkpoint_every: int, segment: int, shape: str = "mix"
) -> tuple[VerifierKey, float]:
    """Write a signed export of `entries` synthetic entries in the gateway's export format."""
    started = time.perf_counter()
    key = Ed25519PrivateKey.generate()
    verifier = VerifierKey(ORIGIN, raw_public_key(key.public_key()))
    (directory / "segments").mkdir(parents=True)
    (directory / "checkpoints").mkdir()
    (directory / "keys.txt").write_text(verifier.encode() + "\n")
    builder = TreeBuilder()
    cuts = set(range(checkpoint_every, entries + 1, checkpoint_every)) | {entries}
    templates = _line_templates(shape)
    for first in range(1, entries + 1, segment):
        last = min(entries, first + segment - 1)
        data = _lines(templates, first, last)
        leaves = leaf_hashes_of_lines(data)
        stem = segment_name(first, last)
        (directory / "segments" / f"{stem}.jsonl").write_bytes(data)
        (directory / "segments" / f"{stem}.leaves").write_bytes(b"".join(leaves))
        bounds = [first - 1, *sorted(c for c in cuts if first - 1 < c < last), last]
        for start, end in itertools.pairwise(bounds):
            for s, e in compact_range(start, end):
                join_subtree(builder, tree_root(leaves[s - first + 1 : e - first + 1]), e - s)
            if end in cuts:
                signed = sign(Checkpoint(ORIGIN, end, builder.root(), START + timedelta(seconds=end)), key)
                (directory / "checkpoints" / checkpoint_name(end)).write_text(signed.text)
    return verifier, time.perf_counter() - started


def _cpu_seconds() -> float:
    """Return CPU seconds used by this process and its finished children (the verifier's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _burn(rounds: int) -> float:
    digest = b"x" * 32
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest[0] / 1e9  # (a value, so the loop cannot be skipped)


def effective_cpus(jobs: int, rounds: int = 400_000) -> float:
    """Return how many CPUs this machine gives us right now: `jobs` hashing processes against one."""
    started = time.perf_counter()
    _burn(rounds)
    one = time.perf_counter() - started
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        started = time.perf_counter()
        pool.map(_burn, [rounds] * jobs)
        many = time.perf_counter() - started
    return jobs * one / many


def bench_verify(entries: int, workdir: Path, shape: str = "mix") -> dict[str, float]:
    print(f"\n1. Offline verification of a {entries:,}-entry export")
    directory = workdir / "export"
    key, took = write_export(directory, entries, 100_000, 65_536, shape)
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    hashed = sum(p.stat().st_size for p in (directory / "segments").glob("*.jsonl")) - entries  # without newlines
    print(f"   wrote the export in {took:.1f} s ({size / 1e6:.0f} MB, checkpoints every 100,000 entries)")
    print(f"   entries: {SHAPES[shape]}; mean entry {hashed / entries:,.0f} bytes (--shape {shape})")
    jobs = os.cpu_count() or 1
    print(f"   control: {jobs} hashing processes run as fast as {effective_cpus(jobs):.2f} CPUs right now")
    results: dict[str, float] = {}
    for label, n in (("single process (baseline)", 1), (f"parallel, {jobs} workers", jobs)):
        best, cpu_best = None, None
        for _ in range(2):
            before = _cpu_seconds()
            report = verify_export(directory, [key], jobs=n)
            cpu = _cpu_seconds() - before
            assert report.ok, report.findings
            best = report.seconds if best is None else min(best, report.seconds)
            cpu_best = cpu if cpu_best is None else min(cpu_best, cpu)
        assert best is not None
        assert cpu_best is not None
        rate = entries / best
        results[label] = rate
        results[label + " cpu"] = entries / cpu_best
        print(f"   {label:30s} {best:6.2f} s   {rate:12,.0f} entries/s   ({entries / cpu_best:,.0f} per CPU-second)")
    single, parallel = results["single process (baseline)"], results[f"parallel, {jobs} workers"]
    verdict = "meets" if parallel >= 1_000_000 else ("above the floor of" if parallel >= 500_000 else "BELOW")
    print(f"   speed-up {parallel / single:.2f}x; {verdict} the target (>= 1,000,000/s, floor 500,000/s)")
    per_cpu = results["single process (baseline) cpu"]
    per_cpu_parallel = results[f"parallel, {jobs} workers cpu"]
    print(
        f"   CPU cost {1e6 / per_cpu:.2f} us per entry in one process, {1e6 / per_cpu_parallel:.2f} in the workers: "
        f"{jobs} otherwise idle CPUs would verify about {per_cpu_parallel * jobs:,.0f} entries/s "
        f"(load average now {os.getloadavg()[0]:.1f})"
    )
    _verify_steps(directory)
    return {"single": single, "parallel": parallel}


def _verify_steps(directory: Path, repeat: int = 5) -> None:
    """Print the CPU per entry of the steps of verifying one full segment (median of `repeat`)."""
    path = sorted((directory / "segments").glob("*.jsonl"))[0]
    first, last = (int(n) for n in path.stem.split("-"))
    segment = Segment(path, first, last, ())
    n = last - first + 1
    recorded = segment.leaves.read_bytes()
    leaves = [recorded[i : i + 32] for i in range(0, len(recorded), 32)]

    def read() -> None:
        with path.open("rb", buffering=0) as file:
            while file.read(256 * 1024):
                pass

    def median_us(fn: object) -> float:
        cpu = []
        for _ in range(repeat):
            started = time.process_time()
            fn()  # type: ignore[operator]
            cpu.append(time.process_time() - started)
        return statistics.median(cpu) / n * 1e6

    whole = median_us(lambda: verify_segment(segment))
    tree = median_us(lambda: tree_root(leaves))
    reading = median_us(read)
    print(
        f"   one segment of {n:,}, CPU per entry: {whole:.2f} us = tree (node hashes) {tree:.2f} + leaves and the "
        f"rest {whole - tree:.2f} (of which reading the file alone {reading:.2f})"
    )


# --- 2. proofs at 10 M -----------------------------------------------------------------------------


class MemoryTreeCache(TreeCache):
    """The gateway's proof code over leaf hashes held in memory instead of the database."""

    def __init__(self, leaves: list[bytes]) -> None:
        super().__init__(db=None)  # type: ignore[arg-type]
        self._memory = leaves

    def _leaves(self, start: int, end: int) -> list[bytes]:
        return self._memory[start:end]


def bench_proofs(size: int, samples: int) -> None:
    print(f"\n2. Proofs in a tree of {size:,} entries (synthetic leaf hashes, no database)")
    started = time.perf_counter()
    raw = os.urandom(32 * size)
    leaves = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    cache = MemoryTreeCache(leaves)
    cache._ensure(size)
    root = cache.root(size)
    print(f"   built the tree in {time.perf_counter() - started:.1f} s (block roots cached: {size // 256:,})")
    rng = random.Random(4)
    make, check, lengths = [], [], []
    for _ in range(samples):
        index = rng.randrange(size)
        t0 = time.perf_counter()
        proof = cache.inclusion_proof(index, size)
        t1 = time.perf_counter()
        assert verify_inclusion(leaves[index], index, size, proof, root)
        t2 = time.perf_counter()
        make.append(t1 - t0)
        check.append(t2 - t1)
        lengths.append(len(proof))
    print(
        f"   inclusion:   {statistics.mean(lengths):.1f} hashes ({max(lengths) * 32} bytes max); "
        f"make {statistics.median(make) * 1e6:.0f} us, verify {statistics.median(check) * 1e6:.0f} us (median)"
    )
    make, check, lengths = [], [], []
    for _ in range(samples):
        old = rng.randrange(1, size)
        old_root = cache.root(old)
        t0 = time.perf_counter()
        proof = cache.consistency_proof(old, size)
        t1 = time.perf_counter()
        assert verify_consistency(old, size, old_root, root, proof)
        t2 = time.perf_counter()
        make.append(t1 - t0)
        check.append(t2 - t1)
        lengths.append(len(proof))
    print(
        f"   consistency: {statistics.mean(lengths):.1f} hashes ({max(lengths) * 32} bytes max); "
        f"make {statistics.median(make) * 1e6:.0f} us, verify {statistics.median(check) * 1e6:.0f} us (median)"
    )
    print(f"   log2({size:,}) = {size.bit_length() - 1}: proofs grow logarithmically")


# --- 3. durable appends ------------------------------------------------------------------------------


def _thread_cpu(thread: threading.Thread) -> float:
    """Return a thread's CPU seconds so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _append_rates(url: str, batched: int, single_seconds: float) -> dict[str, Any]:
    from gateway.audit.writer import AuditWriter
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade

    db = connect(url)
    upgrade(db)
    now = START
    per_thread, threads = max(batched // 64, 50), 64
    # The entries are made before the clock starts: this measures the store, not the entry factory.
    entries = [synthetic_entry(i) for i in range(1, 2 * batched + per_thread * threads + 1)]
    # One entry per commit: the caller waits for each before sending the next.
    writer = AuditWriter(db)
    n = 0
    started = time.perf_counter()
    while time.perf_counter() - started < single_seconds and n < batched:
        writer.append(entries[n], now)
        n += 1
    single = n / (time.perf_counter() - started)
    writer.close()
    # Group commit: a burst of entries queued at once, committed in batches by the writer thread.
    writer = AuditWriter(db)
    burst = entries[batched : 2 * batched]
    started, cpu = time.perf_counter(), _cpu_seconds()
    writer_cpu = _thread_cpu(writer._thread)
    futures = [writer.submit(entry, now) for entry in burst]
    for future in futures:
        future.result(timeout=300)
    elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    writer_cpu = _thread_cpu(writer._thread) - writer_cpu
    batches = writer.batches
    writer.close()
    # Concurrent callers that each wait for their own commit (how requests really arrive).
    writer = AuditWriter(db)
    rest = entries[2 * batched :]

    def caller(k: int) -> None:
        for entry in rest[k * per_thread : (k + 1) * per_thread]:
            writer.append(entry, now, timeout=60)

    pool = [threading.Thread(target=caller, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    concurrent = per_thread * threads / (time.perf_counter() - t0)
    writer.close()
    # Async callers (how the gateway's coroutines append): each awaits a plain loop future.
    writer = AuditWriter(db)
    tail = [synthetic_entry(i) for i in range(batched)]

    async def burst_async() -> None:
        await asyncio.gather(*(writer.append_async(entry, now, 300) for entry in tail))

    started_async, cpu_async = time.perf_counter(), _cpu_seconds()
    asyncio.run(burst_async())
    elapsed_async, cpu_async = time.perf_counter() - started_async, _cpu_seconds() - cpu_async
    writer.close()
    print(
        f"   (group commit: {batched:,} entries in {batches:,} commits, {batched / batches:,.0f} per commit; "
        f"{cpu / batched * 1e6:.1f} us of this process's CPU per entry, of which the writer thread "
        f"{writer_cpu / batched * 1e6:.1f} us; async callers: "
        f"{batched / elapsed_async:,.0f} entries/s, {cpu_async / batched * 1e6:.1f} us CPU per entry)"
    )
    many = {"sync": [_batched_run(db, tail, now, False) for _ in range(3)]}
    many["async"] = [_batched_run(db, tail, now, True) for _ in range(3)]
    db.dispose()
    return {"single": single, "burst": batched / elapsed, "concurrent": concurrent, "many": many}


BATCH_CALL = 2_000  # entries per batched call (submit_many / append_many_async)


def _server_cpu(pid: int | None) -> float:
    """Return a local PostgreSQL backend's CPU seconds so far (Linux /proc; 0.0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _batched_run(
    db: Any, entries: list[dict[str, object]], now: datetime, use_async: bool
) -> tuple[float, float, float, float]:
    """Append `entries` through the batched API, in calls of BATCH_CALL queued at once.

    Return (entries/s, and CPU us per entry of: this process, its writer thread, the PostgreSQL backend
    serving the writer (0 on SQLite, whose work is in the writer thread))."""
    from gateway.audit.writer import AuditWriter

    writer = AuditWriter(db)
    backend = None
    if not db.is_sqlite:
        writer.append(dict(entries[0]), now)  # opens the writer's connection, whose backend we watch
        with contextlib.closing(writer._connection().cursor()) as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = int(cur.fetchone()[0])
        writer._connection().rollback()
    calls = [entries[i : i + BATCH_CALL] for i in range(0, len(entries), BATCH_CALL)]
    started, cpu, writer_cpu = time.perf_counter(), _cpu_seconds(), _thread_cpu(writer._thread)
    server_cpu = _server_cpu(backend)
    if use_async:

        async def run() -> None:
            await asyncio.gather(*(writer.append_many_async(call, now, 300) for call in calls))

        asyncio.run(run())
    else:
        futures = [writer.submit_many(call, now) for call in calls]
        for future in futures:
            future.result(timeout=300)
    elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    writer_cpu = _thread_cpu(writer._thread) - writer_cpu
    server_cpu = _server_cpu(backend) - server_cpu
    writer.close()
    n = len(entries)
    return n / elapsed, cpu / n * 1e6, writer_cpu / n * 1e6, server_cpu / n * 1e6


def _median_spread(runs: list[tuple[float, float, float, float]]) -> str:
    rates = [r[0] for r in runs]
    cpu, writer, server = (statistics.median(r[k] for r in runs) for k in (1, 2, 3))
    spent = f"{cpu:.1f} us CPU per entry, writer thread {writer:.1f} us"
    if server:
        spent += f", PostgreSQL backend {server:.1f} us"
    return (
        f"{statistics.median(rates):10,.0f} entries/s  ({min(rates):,.0f}-{max(rates):,.0f}; {spent}; "
        f"CPU-bound {1e6 / (cpu + server):,.0f}/s)"
    )


def _postgres_url() -> tuple[str, str] | None:
    try:
        import psycopg
    except ImportError:
        return None
    name = f"gw_bench_{os.getpid()}"
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"   PostgreSQL unreachable ({type(exc).__name__}); skipped")
        return None
    params = dict(part.split("=", 1) for part in PG_ADMIN_DSN.split())
    url = f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
    url += f"{params.get('port', '5432')}/{name}"
    return url, name


def _drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_appends(batched: int, single_seconds: float, workdir: Path) -> None:
    print("\n3. Durable append rate of the audit store alone (AuditWriter)")
    stores: list[tuple[str, str, str | None]] = [("SQLite (WAL, synchronous=FULL)", f"sqlite:///{workdir}/a.db", None)]
    pg = _postgres_url()
    if pg is not None:
        stores.append(("PostgreSQL", pg[0], pg[1]))
    for label, url, pg_name in stores:
        try:
            rates = _append_rates(url, batched, single_seconds)
        finally:
            if pg_name:
                _drop_postgres(pg_name)
        single, burst, concurrent = rates["single"], rates["burst"], rates["concurrent"]
        verdict = "meets" if burst >= 50_000 else "BELOW"
        print(f"   {label}")
        print(f"     one entry per commit (baseline)  {single:10,.0f} entries/s")
        print(
            f"     group commit, burst              {burst:10,.0f} entries/s  ({burst / single:,.0f}x; {verdict} 50k/s)"
        )
        print(f"     group commit, 64 waiting callers {concurrent:10,.0f} entries/s")
        for kind, name in (("sync", "submit_many"), ("async", "append_many_async")):
            runs = rates["many"][kind]
            median = statistics.median(r[0] for r in runs)
            verdict = "meets" if median >= 50_000 else "BELOW"
            print(f"     batched, {name:23s}{_median_spread(runs)}; {verdict} 50k/s")
        print(
            f"     (batched: {batched // BATCH_CALL} calls of {BATCH_CALL:,} entries queued at once; 3 runs, median "
            "and range; CPU-bound: what one idle core would append at that CPU per entry, client and server)"
        )


# --- 4. officer queries over the derived index ------------------------------------------------------


def _officer_entry(i: int) -> dict[str, object]:
    entry = synthetic_entry(i)
    entry["participant"] = str(uuid.UUID(int=i % 500))  # 500 registered participants, 100 per region
    entry["time"] = (START + timedelta(seconds=30 * i)).isoformat().replace("+00:00", "Z")
    return entry


def _timed(fn: object, repeat: int = 5) -> tuple[float, float]:
    """Return the median wall and CPU milliseconds of `fn()` over `repeat` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3


def bench_officer(sizes: list[int], scan_upto: int, workdir: Path) -> list[dict[str, object]]:
    """Officer queries of a city's privacy officer at growing log sizes (SQLite), through the index;
    the same queries by scanning the log (the old path) as the baseline where it is affordable."""
    from sqlalchemy import delete, insert

    from gateway.audit import index
    from gateway.audit.query import AuditQuery, EntryFilter, scope_for
    from gateway.audit.writer import AuditWriter
    from gateway.policies.compiled import compile_policy
    from gateway.policies.loader import load_config
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade
    from gateway.store.tables import audit_index, audit_index_counts, audit_index_terms, participants

    config = Path(__file__).resolve().parents[1] / "config" / "lvv"
    policy = compile_policy(load_config(config))
    db = connect(f"sqlite:///{workdir}/officer.db")
    upgrade(db)
    regions = ("amsterdam", "rotterdam", "utrecht", "groningen", "eindhoven")
    with db.write.begin() as conn:
        conn.execute(
            insert(participants),
            [
                {
                    "id": str(uuid.UUID(int=n)),
                    "region": regions[n % 5],
                    "registered_by": "bench",
                    "registered_at": START,
                }
                for n in range(500)
            ],
        )
    query = AuditQuery(db, policy, lambda org, pid: pid)
    scope = scope_for(policy, "amsterdam")
    target = str(uuid.UUID(int=5))  # an Amsterdam participant
    print("\n4. Officer queries, Amsterdam's privacy officer (scope: own entries and its region), SQLite")
    print(
        f"   {'entries':>9} {'path':>6} {'count':>14} {'page':>14} {'7-day window':>14} "
        f"{'participant':>14} {'export start':>14}   (wall/CPU ms)"
    )
    results: list[dict[str, object]] = []
    indexing: list[str] = []
    walls: list[tuple[int, dict[str, float]]] = []
    done = 0
    for size in sizes:
        writer = AuditWriter(db)
        futures = [
            writer.submit(_officer_entry(i), START + timedelta(seconds=30 * i)) for i in range(done + 1, size + 1)
        ]
        for future in futures:
            future.result(timeout=600)
        writer.close()
        added, done = size - done, size
        last = START + timedelta(seconds=30 * size)
        week = EntryFilter(since=last - timedelta(days=7), until=last)
        queries = {
            "count": lambda: query.count(scope, EntryFilter()),
            "page": lambda: query.page(scope, EntryFilter(), 50),
            "7-day window": lambda week=week: query.page(scope, week, 50) and query.count(scope, week),
            "participant": lambda: query.page(scope, EntryFilter(participant_id=target), 50),
            "export start": lambda: list(itertools.islice(query.iterate(scope, EntryFilter()), 100)),
        }
        paths = ["index"] + (["scan"] if size <= scan_upto else [])
        for path in paths:
            if path == "index":
                cpu, wall = time.process_time(), time.perf_counter()
                index.catch_up(db, batch=5_000)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                per = 1e6 / added
                indexing.append(f"{added:,} entries up to {size:,}: {cpu * per:.1f} us CPU, {wall * per:.1f} us wall")
            else:
                with db.write.begin() as conn:
                    conn.execute(delete(audit_index_counts))
                    conn.execute(delete(audit_index_terms))
                    conn.execute(delete(audit_index))
            rounds = 3 if path == "index" and size == sizes[-1] and len(sizes) > 1 else 1
            runs = [
                {name: _timed(fn, 5 if path == "index" else 1) for name, fn in queries.items()} for _ in range(rounds)
            ]
            timings = {
                name: (statistics.median(r[name][0] for r in runs), statistics.median(r[name][1] for r in runs))
                for name in queries
            }
            cells = " ".join(f"{w:>7.1f}/{c:<6.1f}" for w, c in timings.values())
            print(f"   {size:>9,} {path:>6} {cells}")
            if rounds > 1:
                spread = " ".join(
                    f"{min(r[n][0] for r in runs):>6.1f}-{max(r[n][0] for r in runs):<7.1f}" for n in queries
                )
                print(f"   {'':>9} {'spread':>6} {spread}  (wall ms, min-max of {rounds} rounds; row above: median)")
            results.append(
                {"entries": size, "path": path, **{k: {"wall_ms": w, "cpu_ms": c} for k, (w, c) in timings.items()}}
            )
            if path == "index":
                walls.append((size, {name: w for name, (w, _c) in timings.items()}))
        if "scan" in paths:
            index.catch_up(db, batch=20_000)
    print("   (median of 5 runs through the index, 1 run by scan; target <= 50 ms at 1,000,000, growing <= log n)")
    if len(walls) > 1:
        (small, first), (large, final) = walls[0], walls[-1]
        growth = " ".join(f"{name} {final[name] / max(first[name], 1e-3):.2f}x" for name in first)
        print(
            f"   growth {large:,} vs {small:,} entries ({large / small:,.0f}x the entries, "
            f"log ratio {math.log(large) / math.log(small):.2f}): {growth}"
        )
    print("   index catch-up (the sealer's work, parse + index + counts, one process):")
    for line in indexing:
        print(f"     {line}")
    print(f"   (load average now {os.getloadavg()[0]:.1f})")
    db.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds")
    parser.add_argument("--only", choices=["verify", "proofs", "appends", "officer"], help="run one part")
    parser.add_argument("--shape", choices=list(SHAPES), default="mix", help="entries of the verified export")
    parser.add_argument("--officer-sizes", default="10000,100000,1000000", help="log sizes for the officer queries")
    parser.add_argument("--json", type=Path, help="write the officer query figures to this file")
    args = parser.parse_args()
    entries, tree, appends = (200_000, 1_000_000, 20_000) if args.quick else (1_000_000, 10_000_000, 100_000)
    print(
        f"bench_audit on {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} (figures are wall-clock; other work on the machine lowers them)"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        work = Path(tmp)
        if args.only in (None, "verify"):
            bench_verify(entries, work, args.shape)
        if args.only in (None, "proofs"):
            bench_proofs(tree, 200 if args.quick else 500)
        if args.only in (None, "appends"):
            bench_appends(appends, 1.0 if args.quick else 3.0, work)
        if args.only in (None, "officer"):
            sizes = [10_000] if args.quick else [int(n) for n in args.officer_sizes.split(",")]
            officer = bench_officer(sizes, 10_000, work)
            if args.json:
                args.json.write_text(orjson.dumps({"officer": officer}, option=orjson.OPT_INDENT_2).decode())
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
