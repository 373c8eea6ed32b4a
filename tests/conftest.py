"""Shared fixtures: databases (SQLite and PostgreSQL), keys, tokens, a live gateway on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import Container, build
from gateway.crypto.keys import init_keys
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from tests.support import postgres
from tests.support.server import LiveServer
from tests.support.tokens import AUDIENCE, ISSUER, TokenMinter

ROOT = Path(__file__).resolve().parent.parent
LVV_CONFIG = ROOT / "config" / "lvv"
AMS = ZoneInfo("Europe/Amsterdam")
IN_FORCE = datetime(2024, 11, 15, 10, 0, tzinfo=AMS)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[None]:
    """A migrated template database; fails (not skips) under CI when PostgreSQL is unreachable."""
    problem = postgres.reachable()
    if problem:
        message = f"PostgreSQL on 127.0.0.1:5432 is unreachable ({problem})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(
            f"{message}; start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    postgres.create_template()
    yield
    postgres.drop(postgres.TEMPLATE)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite in a temp file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/gateway.db"
        db = connect(url)
        upgrade(db)
        db.dispose()
        yield url
        return
    request.getfixturevalue("postgres_template")
    name = postgres.clone()
    yield postgres.url_for(name)
    postgres.drop(name)


@pytest.fixture(scope="session")
def minter(tmp_path_factory: pytest.TempPathFactory) -> TokenMinter:
    return TokenMinter(tmp_path_factory.mktemp("token-keys"))


def make_settings(database_url: str, key_dir: Path, minter: TokenMinter, **overrides: Any) -> Settings:
    init_keys(key_dir)
    return Settings(
        config_dir=overrides.pop("config_dir", LVV_CONFIG),
        database_url=database_url,
        key_dir=key_dir,
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_jwks_file=minter.jwks_path,
        **overrides,
    )


@dataclass
class Gateway:
    """A running gateway: its parts, its clock, a real HTTP server on loopback, and a client."""

    container: Container
    clock: FixedClock
    minter: TokenMinter
    url: str
    http: httpx.Client

    def token(self, org: str, **overrides: Any) -> str:
        # Tokens are timed by the gateway's token clock (real time in rehearsal mode; the test clock otherwise).
        self.minter.now = self.container.auth.token_clock.timestamp()
        return self.minter.token(org, **overrides)

    def headers(self, org: str, role: str, purpose: str | None, user: str = "tester.1", **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(org)}", "Acting-User": user, "Acting-Role": role}
        if purpose is not None:
            headers["Processing-Purpose"] = purpose
        headers.update(extra)
        return headers

    def register(self, city: str = "amsterdam", records: dict[str, Any] | None = None) -> str:
        """Register a synthetic participant as the city's intake officer; return the city's pseudonym."""
        body = {"region": city, "records": records or synthetic_records()}
        response = self.http.post("/v1/participants", json=body, headers=self.headers(city, "intake_officer", "intake"))
        assert response.status_code == 201, response.text
        return str(response.json()["participant"])

    def pseudonym_for(self, org: str, city_pseudonym: str, city: str = "amsterdam") -> str:
        ref = self.container.store.resolve(city, city_pseudonym)
        assert ref is not None
        return self.container.store.pseudonym(org, ref.id)


def synthetic_records(n: int = 1) -> dict[str, Any]:
    return {
        "identity": {
            "v_number": f"TEST-V-{n:05d}",
            "family_name": f"Synthetisch-{n:03d}",
            "given_names": "Test",
            "birth_date": "1990-01-01",
            "nationality": "XXA",
            "language": "en",
        },
        "contact": {"shelter_location": "Testopvang 1", "phone": "+31 6 00000000"},
        "case_plan": {"phase": "onderzoeksfase", "perspective": "undetermined", "plan_summary": "synthetic"},
    }


@pytest.fixture
def gateway(database_url: str, tmp_path: Path, minter: TokenMinter) -> Iterator[Gateway]:
    clock = FixedClock(IN_FORCE)
    container = build(make_settings(database_url, tmp_path / "keys", minter), clock)
    app = create_app(container=container)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield Gateway(container, clock, minter, server.url, http)
    container.close()
