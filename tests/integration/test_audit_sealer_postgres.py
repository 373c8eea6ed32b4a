"""Several writers, one log: two gateway processes on one PostgreSQL elect exactly one sealer, whose
checkpoints are consistent with each other and with the entries both processes wrote; when the sealer
stops, the other process takes over and extends the same tree."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from gateway.audit.chain import verify_chain
from gateway.audit.checkpoint import SignedCheckpoint, VerifierKey
from gateway.audit.merkle import consistency_proof, root, verify_consistency
from gateway.audit.repository import checkpoints
from gateway.audit.sealer import SEALER_LOCK_KEY
from gateway.crypto.keys import init_keys
from gateway.store.db import Database, connect
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head
from tests.conftest import IN_FORCE, LVV_CONFIG, ROOT, synthetic_records
from tests.support import postgres
from tests.support.server import free_port
from tests.support.tokens import AUDIENCE, ISSUER, TokenMinter

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # gateway processes
ORIGIN = "gateway.test/two-writers"


@dataclass
class Cluster:
    db: Database
    urls: list[str]
    procs: list[subprocess.Popen[bytes]]


def wait_healthy(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError("gateway process exited")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("gateway process did not start")
        time.sleep(0.1)


@pytest.fixture
def cluster(postgres_template: None, tmp_path: Path, minter: TokenMinter) -> Iterator[Cluster]:
    name = postgres.clone()
    url = postgres.url_for(name)
    init_keys(tmp_path / "keys")
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_CONFIG_DIR": str(LVV_CONFIG),
        "GATEWAY_KEY_DIR": str(tmp_path / "keys"),
        "GATEWAY_TOKEN_ISSUER": ISSUER,
        "GATEWAY_TOKEN_AUDIENCE": AUDIENCE,
        "GATEWAY_TOKEN_JWKS_FILE": str(minter.jwks_path),
        "GATEWAY_AUDIT_ORIGIN": ORIGIN,
        "GATEWAY_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "0.2",
        "TEST_CLOCK_AT": IN_FORCE.isoformat(),
    }
    procs: list[subprocess.Popen[bytes]] = []
    urls, logs = [], []
    for _ in range(2):
        port = free_port()
        logs.append((tmp_path / f"gateway-{port}.log").open("wb"))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.support.serve_proc"],
                cwd=ROOT,
                env={**env, "TEST_PORT": str(port)},
                stdout=subprocess.DEVNULL,
                stderr=logs[-1],
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    db = connect(url)
    try:
        deadline = time.monotonic() + 30
        for base, proc in zip(urls, procs, strict=True):
            wait_healthy(base, proc, deadline)
        yield Cluster(db, urls, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(10)
        for log in logs:
            log.close()
        db.dispose()
        postgres.drop(name)


def drive(bases: list[str], minter: TokenMinter, workers: int = 6, rounds: int = 10) -> int:
    """Send registrations and reads to every base concurrently; return how many decisions were made."""
    minter.now = IN_FORCE.timestamp()

    def headers(role: str, purpose: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {minter.token('amsterdam')}",
            "Acting-User": "load.test",
            "Acting-Role": role,
            "Processing-Purpose": purpose,
        }

    def work(worker: int) -> int:
        with httpx.Client(base_url=bases[worker % len(bases)], timeout=30) as http:
            for i in range(rounds):
                body = {"region": "amsterdam", "records": synthetic_records(worker * 100 + i)}
                created = http.post("/v1/participants", json=body, headers=headers("intake_officer", "intake"))
                assert created.status_code == 201, created.text
                p = created.json()["participant"]
                read = http.get(f"/v1/participants/{p}", headers=headers("case_manager", "lso_case_discussion"))
                assert read.status_code == 200, read.text
        return 2 * rounds

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(work, range(workers)))


def head(db: Database) -> int:
    with db.read.connect() as conn:
        return int(conn.execute(select(audit_head.c.seq)).scalar_one())


def wait_sealed(db: Database, size: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with db.read.connect() as conn:
            latest = conn.execute(select(audit_checkpoints.c.tree_size).order_by(text("tree_size DESC"))).scalar()
        if latest is not None and latest >= size:
            return
        assert time.monotonic() < deadline, f"no checkpoint reached size {size} (latest {latest})"
        time.sleep(0.1)


def sealers(db: Database) -> list[str]:
    with db.read.connect() as conn:
        return list(conn.execute(select(audit_checkpoints.c.sealer).order_by("tree_size")).scalars())


def lock_holders(db: Database) -> int:
    high, low = SEALER_LOCK_KEY >> 32, SEALER_LOCK_KEY & 0xFFFFFFFF
    with db.read.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :high AND objid = :low AND objsubid = 1 AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"high": high, "low": low},
            ).scalar_one()
        )


def assert_consistent(db: Database, key_dir: Path) -> list[SignedCheckpoint]:
    from gateway.audit.signing_keys import published_keys

    keys = [VerifierKey(ORIGIN, k.public_key) for k in published_keys(key_dir)]
    with db.read.connect() as conn:
        leaves = [bytes(h) for h in conn.execute(select(audit_entries.c.leaf_hash).order_by("seq")).scalars()]
    signed = list(checkpoints(db))
    for s in signed:
        s.verify(keys)
        assert s.checkpoint.root == root(leaves[: s.checkpoint.size])
    for old, new in itertools.pairwise(signed):
        a, b = old.checkpoint, new.checkpoint
        assert verify_consistency(a.size, b.size, a.root, b.root, consistency_proof(leaves, a.size, b.size))
    return signed


def test_two_processes_writing_concurrently_have_exactly_one_sealer_and_consistent_checkpoints(
    cluster: Cluster, minter: TokenMinter, tmp_path: Path
) -> None:
    total = drive(cluster.urls, minter)
    assert head(cluster.db) == total
    wait_sealed(cluster.db, total)
    assert lock_holders(cluster.db) == 1
    assert len(set(sealers(cluster.db))) == 1
    signed = assert_consistent(cluster.db, tmp_path / "keys")
    assert len(signed) >= 2, "checkpoints were signed while entries arrived"
    assert verify_chain(cluster.db).ok


def test_when_the_sealer_stops_the_other_process_takes_over_the_same_tree(
    cluster: Cluster, minter: TokenMinter, tmp_path: Path
) -> None:
    first = drive(cluster.urls, minter, workers=2, rounds=3)
    wait_sealed(cluster.db, first)
    (leader,) = set(sealers(cluster.db))
    pid = int(leader.split("@")[0])
    index = [p.pid for p in cluster.procs].index(pid)
    cluster.procs[index].terminate()
    cluster.procs[index].wait(10)
    survivor = cluster.urls[1 - index]
    total = first + drive([survivor], minter, workers=2, rounds=3)
    wait_sealed(cluster.db, total)
    names = sealers(cluster.db)
    assert names[-1] != leader
    assert names[-1].startswith(f"{cluster.procs[1 - index].pid}@")
    assert lock_holders(cluster.db) == 1
    assert_consistent(cluster.db, tmp_path / "keys")
