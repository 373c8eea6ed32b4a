"""Benchmark of the covenant end and the retention run with 10k and 100k synthetic participants.

For each size, in a fresh temporary directory: keys, a migrated database (SQLite by default), and N
synthetic participants in Amsterdam with three categories each (identity, contact, case_plan),
inserted directly as rows (random bytes for wrapped keys and ciphertexts: never real data, never
decrypted). Then, on a FixedClock:

1. covenant end: a jurist revokes `lvv-amsterdam` (audit entry, stored, version moved), the process
   swaps in the effective policy, the covenant-end sweep runs, and decisions at the end moment are
   timed. None of this should depend on N.
2. retention run: six months later, a dry run (plan) and the run itself: per participant one
   transaction destroying its three data keys and deleting its records, one audit entry each, then
   the WAL checkpoint. Its cost should be the key deletions: time per destroyed key about constant.

    .venv/bin/python bench/bench_lifecycle.py                      # 10k and 100k on SQLite
    .venv/bin/python bench/bench_lifecycle.py --sizes 2000 20000   # quicker
    .venv/bin/python bench/bench_lifecycle.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Targets: covenant end (revoke + swap + sweep) at the larger size within 1.5x of the smaller; time per
destroyed key at the larger size within 1.5x of the smaller.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text

from gateway.clock import FixedClock
from gateway.container import build
from gateway.crypto.keys import init_keys
from gateway.lifecycle.events import Actor
from gateway.policies.decision import AccessRequest, decide
from gateway.policies.model import Operation
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from gateway.store.tables import data_keys, participants, records

ROOT = Path(__file__).resolve().parent.parent
AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2024, 11, 15, 10, 0, tzinfo=AMS)
CATEGORIES = ("identity", "contact", "case_plan")
RATIO_TARGET = 1.5


@dataclass
class Result:
    size: int
    insert_s: float
    revoke_ms: float
    swap_ms: float
    sweep_ms: float
    decide_us: float
    plan_s: float
    run_s: float
    keys: int
    records: int
    wal: bool | None

    @property
    def covenant_end_ms(self) -> float:
        return self.revoke_ms + self.swap_ms + self.sweep_ms

    @property
    def us_per_key(self) -> float:
        return self.run_s * 1e6 / self.keys if self.keys else float("nan")


def seed(url: str, size: int, batch: int = 5000) -> float:
    """Insert `size` synthetic participants with three categories each; return the seconds it took."""
    db = connect(url)
    started = time.perf_counter()
    at = START - timedelta(days=30)
    try:
        for first in range(0, size, batch):
            ids = [str(uuid.uuid4()) for _ in range(min(batch, size - first))]
            with db.write.begin() as conn:
                conn.execute(
                    insert(participants),
                    [{"id": p, "region": "amsterdam", "registered_by": "amsterdam", "registered_at": at} for p in ids],
                )
                conn.execute(
                    insert(data_keys),
                    [
                        {
                            "participant_id": p,
                            "category": c,
                            "wrapped_key": os.urandom(60),
                            "kek_id": "bench",
                            "created_at": at,
                        }
                        for p in ids
                        for c in CATEGORIES
                    ],
                )
                conn.execute(
                    insert(records),
                    [
                        {
                            "id": str(uuid.uuid4()),
                            "participant_id": p,
                            "category": c,
                            "version": 1,
                            "ciphertext": os.urandom(180),
                            "source_organisation": "amsterdam",
                            "written_at": at,
                            "audit_seq": 0,
                        }
                        for p in ids
                        for c in CATEGORIES
                    ],
                )
    finally:
        db.dispose()
    return time.perf_counter() - started


def run_size(size: int, base_url: str | None, quiet: bool) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
        home = Path(tmp)
        url = base_url or f"sqlite:///{home}/gateway.db"
        key_dir = home / "keys"
        init_keys(key_dir)
        db = connect(url)
        if base_url:  # a PostgreSQL database given by the caller: start from an empty schema
            with db.write.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade(db)
        db.dispose()
        insert_s = seed(url, size)
        settings = Settings(
            config_dir=ROOT / "config" / "lvv",
            database_url=url,
            key_dir=key_dir,
            lifecycle_poll_seconds=0,
            retention_interval_seconds=0,
            audit_checkpoint_interval_seconds=0,
        )
        clock = FixedClock(START)
        container = build(settings, clock)
        try:
            parts = container.lifecycle
            assert parts is not None
            jurist = Actor.jurist("amsterdam", "bench.jurist")
            effective = START + timedelta(days=1)

            t0 = time.perf_counter()
            parts.service.revoke_covenant(jurist, "lvv-amsterdam", effective, "Benchmark revocation", "BENCH 1")
            revoke_ms = (time.perf_counter() - t0) * 1e3  # includes this process's swap (refresh)
            t0 = time.perf_counter()
            parts.holder.refresh(force=True)  # what another process does on its next poll
            swap_ms = (time.perf_counter() - t0) * 1e3
            clock.set(effective)
            t0 = time.perf_counter()
            if parts.covenant_end is not None:
                parts.covenant_end.sweep()
            sweep_ms = (time.perf_counter() - t0) * 1e3

            policy = parts.holder.current
            request = AccessRequest("amsterdam", "case_manager", "lso_case_discussion", Operation.READ, "amsterdam")
            now_ts = effective.timestamp()
            assert not decide(policy, request, now_ts).permitted
            samples = []
            for _ in range(20_000):
                t = time.perf_counter_ns()
                decide(policy, request, now_ts)
                samples.append(time.perf_counter_ns() - t)
            decide_us = statistics.median(samples) / 1000

            clock.set(effective + timedelta(days=200))  # every category's period has passed
            t0 = time.perf_counter()
            planned = parts.retention.plan()
            plan_s = time.perf_counter() - t0
            assert len(planned.due) == 3 * size, len(planned.due)

            last = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.perf_counter()
                if not quiet and (now - last[0] > 2 or done == total):
                    last[0] = now
                    print(f"\r  {size}: destroyed {done}/{total} participants", end="", file=sys.stderr, flush=True)

            t0 = time.perf_counter()
            outcome = parts.retention.run(
                Actor("amsterdam", "bench.archivist", "jurist"), "BENCH authority", progress=progress
            )
            run_s = time.perf_counter() - t0
            if not quiet:
                print(file=sys.stderr)
            assert outcome.keys_destroyed == 3 * size
        finally:
            container.close()
        return Result(
            size, insert_s, revoke_ms, swap_ms, sweep_ms, decide_us, plan_s, run_s, outcome.keys_destroyed,
            outcome.records_deleted, outcome.wal_checkpointed,
        )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--database-url", help="a PostgreSQL database to use (its public schema is recreated!)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    print(f"bench_lifecycle on {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{'SQLite (WAL, synchronous=FULL)' if not args.database_url else 'PostgreSQL'}")  # fmt: skip
    results = [run_size(n, args.database_url, args.quiet) for n in args.sizes]
    head = (
        f"{'participants':>12} {'seed s':>7} {'revoke ms':>9} {'swap ms':>8} {'sweep ms':>8} {'end ms':>7} "
        f"{'decide us':>9} {'plan s':>7} {'run s':>8} {'keys':>8} {'records':>8} {'us/key':>7} wal"
    )
    print(head)
    for r in results:
        print(
            f"{r.size:>12} {r.insert_s:>7.1f} {r.revoke_ms:>9.1f} {r.swap_ms:>8.1f} {r.sweep_ms:>8.1f} "
            f"{r.covenant_end_ms:>7.1f} {r.decide_us:>9.2f} {r.plan_s:>7.2f} {r.run_s:>8.1f} {r.keys:>8} "
            f"{r.records:>8} {r.us_per_key:>7.0f} {r.wal}"
        )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        size_ratio = large.size / small.size
        end_ratio = large.covenant_end_ms / small.covenant_end_ms
        key_ratio = large.us_per_key / small.us_per_key
        run_ratio = large.run_s / small.run_s
        print(f"\nsize ratio {size_ratio:.0f}x:")
        print(f"  covenant end (revoke + swap + sweep): {end_ratio:.2f}x   "
              f"target <= {RATIO_TARGET}x: {'MET' if end_ratio <= RATIO_TARGET else 'NOT MET'}")  # fmt: skip
        print(f"  retention run total: {run_ratio:.2f}x (keys destroyed: {large.keys / small.keys:.0f}x)")
        print(f"  time per destroyed key: {key_ratio:.2f}x   "
              f"target <= {RATIO_TARGET}x: {'MET' if key_ratio <= RATIO_TARGET else 'NOT MET'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
