"""Two gateway processes on one PostgreSQL keep one gap-free, verifiable audit sequence."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from gateway.audit.chain import verify_chain
from gateway.crypto.keys import init_keys
from gateway.store.db import connect
from gateway.store.tables import audit_entries
from tests.conftest import IN_FORCE, LVV_CONFIG, ROOT, synthetic_records
from tests.support import postgres
from tests.support.server import free_port
from tests.support.tokens import AUDIENCE, ISSUER, TokenMinter

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # gateway processes


@pytest.fixture
def two_gateways(postgres_template: None, tmp_path: Path, minter: TokenMinter) -> Iterator[tuple[str, list[str]]]:
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
        "TEST_CLOCK_AT": IN_FORCE.isoformat(),
    }
    procs, urls, logs = [], [], []
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
    try:
        deadline = time.monotonic() + 30
        for base, proc in zip(urls, procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"gateway process exited; see {tmp_path}")
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("gateway process did not start")
                time.sleep(0.1)
        yield url, urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        for log in logs:
            log.close()
        postgres.drop(name)


def test_two_processes_writing_concurrently_keep_one_gap_free_chain(
    two_gateways: tuple[str, list[str]], minter: TokenMinter
) -> None:
    url, bases = two_gateways
    minter.now = IN_FORCE.timestamp()

    def headers(org: str, role: str, purpose: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {minter.token(org)}",
            "Acting-User": "load.test",
            "Acting-Role": role,
            "Processing-Purpose": purpose,
        }

    def work(worker: int) -> int:
        base = bases[worker % 2]
        done = 0
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in range(25):
                body = {"region": "amsterdam", "records": synthetic_records(worker * 100 + i)}
                created = http.post(
                    "/v1/participants", json=body, headers=headers("amsterdam", "intake_officer", "intake")
                )
                assert created.status_code == 201, created.text
                p = created.json()["participant"]
                read = http.get(
                    f"/v1/participants/{p}", headers=headers("amsterdam", "case_manager", "lso_case_discussion")
                )
                assert read.status_code == 200, read.text
                denied = http.get(
                    f"/v1/participants/{p}", headers=headers("amsterdam", "case_manager", "medical_advice")
                )
                assert denied.status_code in (200, 403)
                done += 3
        return done

    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(work, range(8)))
    db = connect(url)
    with db.read.connect() as conn:
        seqs = conn.execute(select(audit_entries.c.seq).order_by(audit_entries.c.seq)).scalars().all()
    report = verify_chain(db)
    db.dispose()
    assert seqs == list(range(1, total + 1))
    assert report.ok, report
