"""A database that goes away while the gateway serves: every request answers 503 problem+json with
Retry-After (never 500) and nothing is released; once the database is back the same server serves
again, without a restart. PostgreSQL is cut off by a loopback proxy; SQLite's file turns read-only."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import build
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from tests.conftest import IN_FORCE, Gateway, make_settings, synthetic_records
from tests.support import postgres
from tests.support.server import LiveServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import TokenMinter

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
            assert register(gw).status_code == 201

            proxy.stop()
            assert_unavailable(register(gw))
            assert_unavailable(register(gw))  # refused connections, not only the dropped ones

            proxy.start()
            assert served_again(gw).status_code == 201
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
    db = connect(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    _read_only(path, True)
    try:
        with serving(f"sqlite:///{path}", tmp_path, minter) as gw:
            assert_unavailable(register(gw))

            _read_only(path, False)
            assert served_again(gw).status_code == 201
    finally:
        _read_only(path, False)
