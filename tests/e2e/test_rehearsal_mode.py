"""Rehearsal mode: copy the database (the command in-process), serve the copy as a real process on a
simulated clock, step the clock from the command line and over HTTP, see it said on every response;
refuse a database that is not a copy. Tokens and client assertions stay on real time: a partner system
rehearses with its own token client unchanged. SQLite source and copy (the copy is made through SQLAlchemy,
so PostgreSQL works the same)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gateway.store.db import connect
from gateway.store.migrate import upgrade
from gateway.store.tables import data_keys
from tests.conftest import AMS, LVV_CONFIG, Gateway
from tests.support.cli import GATEWAY, run_cli
from tests.support.oauth import Partner, assertion, register, token_form
from tests.support.server import free_port, wait_healthy
from tests.support.tokens import AUDIENCE, ISSUER, TokenMinter

pytestmark = pytest.mark.slow  # `gateway serve` processes

START = datetime(2024, 12, 31, 23, 59, 30, tzinfo=AMS)


def env_for(gw: Gateway, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_CONFIG_DIR=str(LVV_CONFIG),
        GATEWAY_DATABASE_URL=url,
        GATEWAY_KEY_DIR=str(gw.container.settings.key_dir),
        GATEWAY_TOKEN_ISSUER=ISSUER,
        GATEWAY_TOKEN_AUDIENCE=AUDIENCE,
        GATEWAY_TOKEN_JWKS_FILE=str(gw.minter.jwks_path),
        GATEWAY_LIFECYCLE_POLL_SECONDS="0.5",
        GATEWAY_LIFECYCLE_PROPAGATION_MARGIN_SECONDS="5",
        **extra,
    )
    return env


def cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, cwd, env)  # in this process; `gateway serve` is a real process


def process_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GATEWAY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The source database of these tests: a migrated SQLite file (overrides the two-backend fixture)."""
    url = f"sqlite:///{tmp_path}/source.db"
    db = connect(url)
    upgrade(db)
    db.dispose()
    return url


@pytest.fixture
def source(gateway: Gateway) -> Gateway:
    return gateway


def serve(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    out = cwd / f"serve-{port}.out"
    with out.open("w") as log:
        proc = subprocess.Popen([GATEWAY, "serve", "--port", str(port)], cwd=cwd, env=env, stdout=log, stderr=log)
    return proc, f"http://127.0.0.1:{port}", out


@contextmanager
def rehearsal_server(
    source: Gateway, cwd: Path, start: datetime, **extra_env: str
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Copy the source database standing at `start`, serve the copy in rehearsal mode; yield (url, copy, env)."""
    copy_url = f"sqlite:///{cwd}/rehearsal.db"
    copy = ["rehearsal", "copy", "--from", source.container.db.url, "--to", copy_url, "--start", start.isoformat()]
    made = cli([*copy, "--stand"], cwd, env_for(source, copy_url))
    assert made.returncode == 0, made.stderr
    env = env_for(source, copy_url, GATEWAY_REHEARSAL="true", **extra_env)
    proc, base, out = serve(env, cwd)
    try:
        wait_healthy(proc, base, out)
        yield base, copy_url, env
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def partner(source: Gateway) -> Partner:
    """A partner client of Amsterdam, registered in the source before the copy is made."""
    return register(source, "amsterdam", roles=("case_manager", "privacy_officer"))


@pytest.fixture
def rehearsal(
    source: Gateway, partner: Partner, tmp_path: Path
) -> Iterator[tuple[str, str, dict[str, str], list[str]]]:
    people = [source.register("amsterdam"), source.register("utrecht")]
    with rehearsal_server(source, tmp_path, START) as (base, copy_url, env):
        yield base, copy_url, env, people


def read(
    base: str, minter: TokenMinter, at: datetime, org: str, role: str, purpose: str, pseudonym: str
) -> httpx.Response:
    """Read at rehearsal moment `at` (the server's clock shows it), with a token on real time."""
    minter.now = None
    headers = {
        "Authorization": f"Bearer {minter.token(org)}",
        "Acting-User": "rehearser.1",
        "Acting-Role": role,
        "Processing-Purpose": purpose,
    }
    return httpx.get(f"{base}/v1/participants/{pseudonym}", headers=headers, timeout=60)


def test_the_gateway_refuses_rehearsal_mode_on_a_database_that_is_not_a_copy(source: Gateway, tmp_path: Path) -> None:
    proc, _, out = serve(env_for(source, source.container.db.url, GATEWAY_REHEARSAL="true"), tmp_path)
    assert proc.wait(60) != 0
    assert "not marked as a rehearsal copy" in out.read_text()


def test_every_rehearsal_response_says_so_in_a_header_and_in_its_json(
    rehearsal: tuple[str, str, dict[str, str], list[str]], source: Gateway
) -> None:
    base, _, _, people = rehearsal
    health = httpx.get(f"{base}/health", timeout=60)
    assert health.headers["gateway-rehearsal"].startswith("REHEARSAL on a copy of sqlite:///")
    assert "simulated clock standing at 2024-12-31T22:59:30+00:00" in health.headers["gateway-rehearsal"]
    assert health.json()["rehearsal"] == health.headers["gateway-rehearsal"]
    ngo = source.pseudonym_for("ngo-opvang-amsterdam", people[0])
    denied = read(base, source.minter, START, "ngo-opvang-amsterdam", "counsellor", "police_screening", ngo)
    assert denied.status_code == 403
    assert denied.json()["rehearsal"].startswith("REHEARSAL")
    assert "gateway-rehearsal" in denied.headers


def test_stepping_the_clock_from_the_command_line_ends_the_covenants_in_the_rehearsal_only(
    rehearsal: tuple[str, str, dict[str, str], list[str]], source: Gateway, tmp_path: Path
) -> None:
    base, _, env, people = rehearsal
    ams = people[0]
    ind = source.pseudonym_for("ind", ams)
    assert read(base, source.minter, START, "ind", "ind_officer", "identity_nationality", ind).status_code == 200

    new_year = datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS)
    stepped = cli(["rehearsal", "step", "--to", new_year.isoformat()], tmp_path, env)
    assert stepped.returncode == 0, stepped.stderr
    deadline = time.monotonic() + 60  # headroom for a busy machine
    while "2024-12-31T23:00:00+00:00" not in httpx.get(f"{base}/health", timeout=60).headers["gateway-rehearsal"]:
        assert time.monotonic() < deadline, "the server did not follow the stepped clock"
        time.sleep(0.2)
    after = read(base, source.minter, new_year, "amsterdam", "case_manager", "lso_case_discussion", ams)
    assert after.status_code == 403
    assert after.json()["code"] == "no_covenant_in_force"
    # the source database and its clock are untouched
    assert source.clock.now() < new_year
    backwards = cli(["rehearsal", "step", "--to", START.isoformat()], tmp_path, env)
    assert backwards.returncode == 2
    assert "only moves forward" in backwards.stderr


def test_a_jurist_steps_the_clock_over_http_and_a_retention_run_destroys_in_the_copy_only(
    rehearsal: tuple[str, str, dict[str, str], list[str]], source: Gateway, tmp_path: Path
) -> None:
    base, copy_url, env, _ = rehearsal
    july = datetime(2025, 7, 1, 0, 0, tzinfo=AMS)
    source.minter.now = None  # tokens on real time
    headers = {
        "Authorization": f"Bearer {source.minter.token('amsterdam')}",
        "Acting-User": "jurist.1",
        "Acting-Role": "jurist",
    }
    not_jurist = httpx.post(
        f"{base}/v1/rehearsal/clock",
        json={"to": july.isoformat()},
        headers={**headers, "Acting-Role": "case_manager"},
        timeout=60,
    )
    assert not_jurist.status_code == 403
    stepped = httpx.post(f"{base}/v1/rehearsal/clock", json={"to": july.isoformat()}, headers=headers, timeout=60)
    assert stepped.status_code == 200, stepped.text
    assert stepped.json()["now"] == "2025-06-30T22:00:00+00:00"

    dry = cli(["retention", "run", "--dry-run"], tmp_path, env)
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing is destroyed" in dry.stdout
    assert "identity-after-covenant" in dry.stdout
    # --json as a script reads it: its own process, stdout holding nothing but the document.
    dry_json = process_cli(["retention", "run", "--dry-run", "--json"], tmp_path, env)
    assert dry_json.returncode == 0, dry_json.stderr
    plan = json.loads(dry_json.stdout)
    assert plan["keys_due"] == 3
    assert plan["participants_due"] == 1
    assert "identity-after-covenant" in {g["rule_id"] for g in plan["due_groups"]}
    assert sum(g["keys"] for g in plan["due_groups"]) == plan["keys_due"]
    assert "participant_id" not in dry_json.stdout  # counts only, never a participant
    run = cli(["retention", "run", "--quiet", "--by", "rehearser.1"], tmp_path, env)
    assert run.returncode == 0, run.stderr
    assert "3 data keys destroyed" in run.stdout  # the Amsterdam participant; Utrecht continues locally
    runs = process_cli(["retention", "runs", "--json"], tmp_path, env)
    assert runs.returncode == 0, runs.stderr
    [listed] = json.loads(runs.stdout)
    assert (listed["status"], listed["keys_destroyed"], listed["acting_user"]) == ("completed", 3, "rehearser.1")

    def live(url: str) -> int:
        db = connect(url)
        try:
            with db.read.connect() as conn:
                return int(
                    conn.execute(
                        select(func.count()).select_from(data_keys).where(data_keys.c.wrapped_key.is_not(None))
                    ).scalar_one()
                )
        finally:
            db.dispose()

    assert live(copy_url) == 3
    assert live(source.container.db.url) == 6


def step(base: str, env: dict[str, str], cwd: Path, to: datetime) -> None:
    """Step the rehearsal clock from the command line and wait until the server follows."""
    stepped = cli(["rehearsal", "step", "--to", to.isoformat()], cwd, env)
    assert stepped.returncode == 0, stepped.stderr
    shown = to.astimezone(UTC).isoformat()
    deadline = time.monotonic() + 60  # headroom for a busy machine
    while shown not in httpx.get(f"{base}/health", timeout=60).headers["gateway-rehearsal"]:
        assert time.monotonic() < deadline, "the server did not follow the stepped clock"
        time.sleep(0.2)


def test_a_partner_client_on_real_time_rehearses_the_end_second_with_its_own_tokens(
    rehearsal: tuple[str, str, dict[str, str], list[str]], source: Gateway, partner: Partner, tmp_path: Path
) -> None:
    base, _, env, people = rehearsal
    step(base, env, tmp_path, datetime(2024, 12, 31, 23, 59, 59, tzinfo=AMS))
    now = int(time.time())  # the partner's own clock: real time, not the rehearsal's
    form = token_form(assertion(source, partner, iat=now, exp=now + 60), scope="case_manager")
    issued = httpx.post(f"{base}/oauth/token", data=form, timeout=60)
    assert issued.status_code == 200, issued.text
    headers = {
        "Authorization": f"Bearer {issued.json()['access_token']}",
        "Acting-User": "rehearser.1",
        "Acting-Role": "case_manager",
        "Processing-Purpose": "lso_case_discussion",
    }
    assert httpx.get(f"{base}/v1/participants/{people[0]}", headers=headers, timeout=60).status_code == 200

    step(base, env, tmp_path, datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS))
    refused = httpx.get(f"{base}/v1/participants/{people[0]}", headers=headers, timeout=60)
    assert refused.status_code == 403
    assert refused.json()["code"] == "no_covenant_in_force"
    now = int(time.time())
    again = httpx.post(
        f"{base}/oauth/token", data=token_form(assertion(source, partner, iat=now, exp=now + 60)), timeout=60
    )
    assert again.json()["scope"] == "privacy_officer"  # after the end: the oversight role only


def test_an_assertion_on_the_rehearsal_clock_is_refused_naming_the_real_time(
    rehearsal: tuple[str, str, dict[str, str], list[str]], source: Gateway, partner: Partner
) -> None:
    base = rehearsal[0]
    at = int(START.timestamp())
    refused = httpx.post(
        f"{base}/oauth/token", data=token_form(assertion(source, partner, iat=at, exp=at + 60)), timeout=60
    )
    assert refused.status_code == 401
    assert "checked against the gateway's real time 20" in refused.json()["error_description"]
