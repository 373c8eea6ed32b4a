"""SIGKILL between the decision and the source's answer, on SQLite and PostgreSQL: the gateway process is
killed with kill -9 the moment the partner source receives the brokered call (the permit is committed,
the data has not left). The log stays consistent: the chain verifies, the permit entry the source was
told about is in it, nothing claims a release; a restarted gateway on the same database serves again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
from sqlalchemy import select

from gateway.audit.chain import verify_chain
from gateway.connectors.client_auth import connector_key, public_jwks
from gateway.connectors.simulators import Received, city_cvs
from gateway.crypto.keys import init_keys
from gateway.store.db import connect
from gateway.store.tables import audit_entries
from tests.conftest import IN_FORCE, LVV_CONFIG, ROOT, synthetic_records
from tests.support.server import free_port, wait_healthy
from tests.support.tokens import AUDIENCE, ISSUER, TokenMinter


@contextmanager
def gateway_process(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.serve_proc"],
            cwd=ROOT,
            env={**env, "TEST_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base, log)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


def headers(minter: TokenMinter, role: str, purpose: str) -> dict[str, str]:
    minter.now = IN_FORCE.timestamp()
    token = minter.token("amsterdam")
    return {
        "Authorization": f"Bearer {token}",
        "Acting-User": "t.1",
        "Acting-Role": role,
        "Processing-Purpose": purpose,
    }


def test_a_sigkill_while_the_source_is_called_leaves_a_consistent_log(
    database_url: str, tmp_path: Path, minter: TokenMinter
) -> None:
    key_dir = tmp_path / "keys"
    init_keys(key_dir)
    killed = threading.Event()
    seen: list[int] = []
    db = connect(database_url)
    with city_cvs(public_jwks(connector_key(key_dir))) as cvs:
        env = {
            **os.environ,
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_CONFIG_DIR": str(LVV_CONFIG),
            "GATEWAY_KEY_DIR": str(key_dir),
            "GATEWAY_TOKEN_ISSUER": ISSUER,
            "GATEWAY_TOKEN_AUDIENCE": AUDIENCE,
            "GATEWAY_TOKEN_JWKS_FILE": str(minter.jwks_path),
            "GATEWAY_CONNECTOR_URLS": json.dumps({"cvs-amsterdam": cvs.url}),
            "TEST_CLOCK_AT": IN_FORCE.isoformat(),
        }
        with gateway_process(env, tmp_path / "gateway.log") as (proc, base):
            body = {"region": "amsterdam", "records": synthetic_records()}
            created = httpx.post(
                f"{base}/v1/participants", json=body, headers=headers(minter, "intake_officer", "intake"), timeout=30
            )
            assert created.status_code == 201, created.text
            p = created.json()["participant"]

            def kill_on_arrival(received: Received) -> None:
                seq = int(received.headers["ldv-audit-entry"].rsplit("#", 1)[1])
                with db.read.connect() as conn:  # committed before the call, seen from another connection
                    if conn.execute(select(audit_entries.c.seq).where(audit_entries.c.seq == seq)).first():
                        seen.append(seq)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(30)
                killed.set()

            cvs.state.on_request = kill_on_arrival
            try:
                answer = httpx.get(
                    f"{base}/v1/participants/{p}",
                    headers=headers(minter, "case_manager", "lso_case_discussion"),
                    timeout=30,
                )
                released = answer.content
            except httpx.TransportError:
                released = b""
            assert killed.wait(60)
        assert b"onderzoeksfase" not in released
        assert b"Synthetisch" not in released
        assert len(seen) == 1
        report = verify_chain(db)
        assert report.ok, report
        with db.read.connect() as conn:
            entries = [
                orjson.loads(e)
                for e in conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars()
            ]
        permit = entries[seen[0] - 1]
        assert (permit["event"], permit["decision"], permit["brokered_from"]) == (
            "exchange.read",
            "permit",
            {"case_plan": "cvs-amsterdam"},
        )
        assert not [e for e in entries if e.get("decision_seq") == seen[0]]  # nothing claims what did not happen
        cvs.state.on_request = None
        with gateway_process(env, tmp_path / "gateway.log") as (_, base):
            again = httpx.get(
                f"{base}/v1/participants/{p}",
                headers=headers(minter, "case_manager", "lso_case_discussion"),
                timeout=30,
            )
            assert again.status_code == 200, again.text
            assert again.json()["records"]["case_plan"]["fields"]["phase"] == "onderzoeksfase"
        assert verify_chain(db).ok
    db.dispose()
