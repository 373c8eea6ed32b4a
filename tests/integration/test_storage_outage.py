"""A database that goes away while the gateway serves: every request answers 503 problem+json with
Retry-After (never 500) and nothing is released; once the database is back the same server serves
again, without a restart. PostgreSQL is cut off by a loopback proxy; SQLite's file turns read-only."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from gateway.api.app import create_app
from gateway.audit.chain import verify_chain
from gateway.clock import FixedClock
from gateway.container import build
from gateway.crypto.keys import init_keys
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from gateway.store.tables import audit_entries
from tests.conftest import IN_FORCE, LVV_CONFIG, ROOT, Gateway, make_settings, synthetic_records
from tests.support import postgres
from tests.support.server import LiveServer, free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import AUDIENCE, ISSUER, TokenMinter

QUIET = {
    "outbox_poll_seconds": 0,
    "covenant_end_notices": False,
    "audit_checkpoint_interval_seconds": 0,
    "lifecycle_poll_seconds": 0,
}


@contextlib.contextmanager
def serving(url: str, tmp_path: Path, minter: TokenMinter) -> Iterator[Gateway]:
    clock = FixedClock(IN_FORCE)
    container = build(make_settings(url, tmp_path / "keys", minter, **QUIET), clock)
    try:
        app = create_app(container=container)
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            yield Gateway(container, clock, minter, server.url, http)
    finally:
        container.close()


def register(gw: Gateway) -> httpx.Response:
    body = {"region": "amsterdam", "records": synthetic_records()}
    return gw.http.post("/v1/participants", json=body, headers=gw.headers("amsterdam", "intake_officer", "intake"))


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert "participant" not in response.json()


def served_again(gw: Gateway, within: float = 60.0) -> httpx.Response:
    """Return the first answer that is not 503, asking until `within` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        response = register(gw)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        assert_unavailable(response)


Headers = Callable[[str, str, "str | None"], dict[str, str]]
UNWRITTEN = {"fields": {"plan_summary": "written while the store was down"}}


def assert_every_request_refused(http: httpx.Client, headers: Headers, p: str, records: dict[str, Any]) -> None:
    """Reads, listings, writes, registrations and officer queries: each 503, none telling anything of `p`."""
    reader = headers("amsterdam", "case_manager", "lso_case_discussion")
    intake = headers("amsterdam", "intake_officer", "intake")
    answers = [
        http.get(f"/v1/participants/{p}", headers=reader),
        http.get("/v1/participants", params={"limit": 20}, headers=reader),
        http.put(
            f"/v1/participants/{p}/records/case_plan",
            json=UNWRITTEN,
            headers=headers("amsterdam", "case_manager", "intake"),
        ),
        http.post("/v1/participants", json={"region": "amsterdam", "records": records}, headers=intake),
        http.get("/v1/officer/entries", params={"limit": 20}, headers=headers("amsterdam", "privacy_officer", None)),
        http.get(f"/v1/participants/{p}", headers=reader),  # and again: it stays closed
    ]
    secrets = [str(v) for v in records["identity"].values()] + [records["contact"]["phone"], p]
    for response in answers:
        assert_unavailable(response)
        body = dict(response.json())
        assert body.pop("instance") == response.request.url.path  # the path asked for, echoed, nothing more
        told = json.dumps(body, ensure_ascii=False)
        assert not [s for s in secrets if s in told], response.text  # nothing about the participant


def assert_recovered(http: httpx.Client, headers: Headers, p: str, within: float = 60.0) -> None:
    """The same server reads `p` again (asking until `within` s), without the write refused while down."""
    reader = headers("amsterdam", "case_manager", "lso_case_discussion")
    deadline = time.monotonic() + within
    while (read := http.get(f"/v1/participants/{p}", headers=reader)).status_code == 503:
        assert time.monotonic() < deadline, read.text
    assert read.status_code == 200, read.text
    assert read.json()["records"]["case_plan"]["fields"]["plan_summary"] == "synthetic"


def assert_chain_verifies(url: str, registered: int) -> None:
    """The audit chain verifies and holds exactly the registrations acknowledged (none of the refused ones)."""
    db = connect(url)
    try:
        report = verify_chain(db)
        assert report.ok, report
        with db.read.connect() as conn:
            events = [orjson.loads(e)["event"] for e in conn.execute(select(audit_entries.c.entry)).scalars()]
        assert events.count("exchange.register") == registered, events
    finally:
        db.dispose()


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_template")
def test_postgresql_cut_off_while_serving_answers_503_with_retry_after_and_serves_again_once_back(
    tmp_path: Path, minter: TokenMinter
) -> None:
    name = postgres.clone()
    direct = make_url(postgres.url_for(name))
    proxy = TcpProxy(direct.port or 5432, direct.host or "127.0.0.1")
    proxy.start()
    try:
        url = direct.set(port=proxy.port).render_as_string(hide_password=False)
        with serving(url, tmp_path, minter) as gw:
            first = register(gw)
            assert first.status_code == 201, first.text
            p = first.json()["participant"]

            proxy.stop()
            assert_unavailable(register(gw))
            assert_unavailable(register(gw))  # refused connections, not only the dropped ones
            assert_every_request_refused(gw.http, gw.headers, p, synthetic_records())

            proxy.start()
            assert served_again(gw).status_code == 201
            assert_recovered(gw.http, gw.headers, p)
        assert_chain_verifies(postgres.url_for(name), registered=2)
    finally:
        proxy.stop()
        postgres.drop(name)


def _read_only(path: Path, read_only: bool) -> None:
    if os.geteuid() == 0:  # root writes through file modes: make the file immutable instead
        subprocess.run(["chattr", "+i" if read_only else "-i", str(path)], check=True, capture_output=True)
    else:
        path.chmod(0o444 if read_only else 0o644)


def test_a_server_started_on_a_read_only_sqlite_file_answers_503_and_serves_once_it_is_writable(
    tmp_path: Path, minter: TokenMinter
) -> None:
    if os.geteuid() == 0 and shutil.which("chattr") is None:
        pytest.skip("root without chattr cannot make a file read-only")
    path = tmp_path / "gateway.db"
    url = f"sqlite:///{path}"
    db = connect(url)
    upgrade(db)
    db.dispose()
    with serving(url, tmp_path, minter) as before:  # one participant, registered while it could write
        p = register(before).json()["participant"]
    _read_only(path, True)
    try:
        with serving(url, tmp_path, minter) as gw:
            assert_every_request_refused(gw.http, gw.headers, p, synthetic_records())

            _read_only(path, False)
            assert served_again(gw).status_code == 201
            assert_recovered(gw.http, gw.headers, p)
    finally:
        _read_only(path, False)
    assert_chain_verifies(url, registered=2)


# -- the SQLite disk full ------------------------------------------------------------------------------
#
# The server runs as its own process; while the test sets that process's RLIMIT_FSIZE to one byte (prlimit
# from outside, no privilege needed for one's own processes) every write SQLite makes into its database, WAL
# or shared-memory file fails (EFBIG; SIGXFSZ is ignored, so the write fails instead of killing the server):
# a disk that cannot grow, exactly as SQLite sees a full disk (a short write), on any machine, without
# root, a mount or a filesystem of a known size. Lifting the limit is space coming back. The server writes
# its own output into a pipe, which the limit does not touch.

FSIZE = resource.RLIMIT_FSIZE


def _ignore_sigxfsz() -> None:  # runs in the child before exec; an ignored signal stays ignored across exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


@contextlib.contextmanager
def served_process(
    url: str, tmp_path: Path, minter: TokenMinter
) -> Iterator[tuple[subprocess.Popen[bytes], str, bytearray]]:
    """A gateway process on `url` (clock fixed while the covenants are in force); its output kept in memory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_CONFIG_DIR=str(LVV_CONFIG),
        GATEWAY_DATABASE_URL=url,
        GATEWAY_KEY_DIR=str(tmp_path / "keys"),
        GATEWAY_TOKEN_ISSUER=ISSUER,
        GATEWAY_TOKEN_AUDIENCE=AUDIENCE,
        GATEWAY_TOKEN_JWKS_FILE=str(minter.jwks_path),
        TEST_CLOCK_AT=IN_FORCE.isoformat(),
        TEST_PORT=str(free_port()),
        **{f"GATEWAY_{name.upper()}": str(value) for name, value in QUIET.items()},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.serve_proc"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_ignore_sigxfsz,
    )
    output = bytearray()

    def drain_output() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(65536):
            output.extend(chunk)

    drain = threading.Thread(target=drain_output, daemon=True)
    drain.start()
    base = f"http://127.0.0.1:{env['TEST_PORT']}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            assert proc.poll() is None, output.decode(errors="replace")
            assert time.monotonic() < deadline, "the gateway process did not start"
            time.sleep(0.2)
        yield proc, base, output
        assert proc.poll() is None, f"the server died:\n{output.decode(errors='replace')}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        drain.join(10)
        proc.stdout.close()  # type: ignore[union-attr]


def _headers(minter: TokenMinter) -> Headers:
    def headers(org: str, role: str, purpose: str | None) -> dict[str, str]:
        minter.now = IN_FORCE.timestamp()
        out = {"Authorization": f"Bearer {minter.token(org)}", "Acting-User": "tester.1", "Acting-Role": role}
        if purpose is not None:
            out["Processing-Purpose"] = purpose
        return out

    return headers


@pytest.mark.slow
def test_a_full_disk_under_sqlite_answers_503_releases_nothing_and_the_same_server_recovers(
    tmp_path: Path, minter: TokenMinter
) -> None:
    path = tmp_path / "gateway.db"
    url = f"sqlite:///{path}"
    db = connect(url)
    upgrade(db)
    db.dispose()
    init_keys(tmp_path / "keys")
    headers = _headers(minter)
    records = synthetic_records(7)
    with (
        served_process(url, tmp_path, minter) as (proc, base, output),
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        intake = headers("amsterdam", "intake_officer", "intake")
        created = http.post("/v1/participants", json={"region": "amsterdam", "records": records}, headers=intake)
        assert created.status_code == 201, created.text
        p = created.json()["participant"]

        soft, hard = resource.prlimit(proc.pid, FSIZE)
        resource.prlimit(proc.pid, FSIZE, (1, hard))  # the disk is full
        try:
            assert_every_request_refused(http, headers, p, records)
        finally:
            resource.prlimit(proc.pid, FSIZE, (soft, hard))  # space comes back
        assert b"audit.append.failed" in output, output.decode(errors="replace")  # the write failed, as intended

        assert_recovered(http, headers, p)  # the same process, no restart
        again = http.post("/v1/participants", json={"region": "amsterdam", "records": records}, headers=intake)
        assert again.status_code == 201, again.text
    assert_chain_verifies(url, registered=2)
