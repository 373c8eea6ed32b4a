"""A retention run killed between its steps (a real process ended with os._exit at a named step, no
timing): the next run takes over at once, closes the dead run as interrupted with exact counts, logs
each destruction exactly once, and both runs get a destruction record that verifies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.evidence.envelope import verify_bytes
from gateway.evidence.keys import parse_keys
from gateway.lifecycle.events import Actor
from gateway.retention.run import LEASE, RetentionBusy, holder_alive, holder_identity
from gateway.store.tables import audit_entries, lifecycle_state, retention_destructions, retention_runs
from tests.conftest import AMS, LVV_CONFIG, ROOT, Gateway
from tests.support.cli import run_cli
from tests.support.retention_crash import KILLED
from tests.support.tokens import AUDIENCE, ISSUER

AFTER_SIX_MONTHS = datetime(2025, 7, 1, 0, 0, tzinfo=AMS)
AUTHORITY = "Besluit vernietiging LVV-gegevens 2025 (synthetic)"


def gateway_env(gw: Gateway) -> dict[str, str]:
    """The GATEWAY_* environment of a process (or command) on the test gateway's database and keys."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "GATEWAY_DATABASE_URL": gw.container.settings.database_url,
        "GATEWAY_CONFIG_DIR": str(LVV_CONFIG),
        "GATEWAY_KEY_DIR": str(gw.container.settings.key_dir),
        "GATEWAY_TOKEN_ISSUER": ISSUER,
        "GATEWAY_TOKEN_AUDIENCE": AUDIENCE,
        "GATEWAY_TOKEN_JWKS_FILE": str(gw.minter.jwks_path),
        "GATEWAY_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "0",
    }


def killed_run(gw: Gateway, after: str, at_batch: int = 1) -> None:
    """Run a retention run in its own process and kill it right after step `after` of batch `at_batch`."""
    env = {
        **gateway_env(gw),
        "TEST_CLOCK_AT": gw.clock.now().isoformat(),
        "TEST_CRASH_AFTER": after,
        "TEST_CRASH_AT_BATCH": str(at_batch),
        "TEST_AUTHORITY": AUTHORITY,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.retention_crash"], env=env, cwd=ROOT, capture_output=True, timeout=120
    )
    assert done.returncode == KILLED, done.stderr.decode()


def runs(gw: Gateway) -> list[Any]:
    with gw.container.db.read.connect() as conn:
        return list(conn.execute(select(retention_runs).order_by(retention_runs.c.started_at)).all())


def destroyed_entries(gw: Gateway) -> list[dict[str, Any]]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars()
        return [e for e in map(json.loads, rows) if e["event"] == "retention.destroyed"]


def rerun(gw: Gateway) -> Any:
    assert gw.container.lifecycle is not None
    return gw.container.lifecycle.retention.run(Actor("amsterdam", "archivist.1", "jurist"), AUTHORITY)


def verified_record(gw: Gateway, run_id: str) -> dict[str, Any]:
    assert gw.container.evidence is not None
    stored = gw.container.evidence.service.issue_destruction_record(run_id)
    keys = parse_keys(gw.http.get("/.well-known/evidence-keys.json").content)
    for data in (stored.signed_json, stored.html, stored.pdf):
        assert verify_bytes(data, keys).document_type == "destruction_record"
    document: dict[str, Any] = json.loads(stored.signed_json)["document"]
    return document


@pytest.mark.slow
def test_a_killed_run_is_taken_over_at_once_closed_as_interrupted_with_exact_counts_and_gets_a_record(
    gateway: Gateway,
) -> None:
    people = [gateway.register() for _ in range(3)]
    gateway.clock.set(AFTER_SIX_MONTHS)
    killed_run(gateway, after="destroyed", at_batch=2)  # two participants destroyed, the second unlogged
    (dead,) = runs(gateway)
    assert dead.status == "running"

    again = rerun(gateway)  # the same moment: the dead run's lease has not run out, its process is gone

    assert again.status == "completed"
    assert again.participants == len(people) - 2
    first, second = runs(gateway)
    assert (first.id, first.status, second.id) == (dead.id, "interrupted", again.run_id)
    assert (first.destroyed_keys, first.deleted_records) == (6, 6)
    assert first.finished_at is not None
    entries = destroyed_entries(gateway)
    assert len(entries) == len(people)
    assert sorted(e["run_id"] for e in entries) == sorted([dead.id, dead.id, again.run_id])
    assert [e["run_id"] for e in entries if e.get("late")] == [dead.id]  # the one the kill left unlogged
    record = verified_record(gateway, dead.id)
    assert record["batch"]["status"] == "interrupted"
    assert record["totals"]["data_keys_destroyed"] == 6
    assert verified_record(gateway, again.run_id)["totals"]["data_keys_destroyed"] == 3
    with gateway.container.db.read.connect() as conn:
        assert conn.execute(select(lifecycle_state.c.retention_holder)).scalar_one() is None


@pytest.mark.slow
def test_the_command_issues_the_interrupted_runs_destruction_record_and_it_verifies(
    gateway: Gateway, tmp_path: Path
) -> None:
    gateway.register()
    gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    killed_run(gateway, after="logged")
    (dead,) = runs(gateway)
    rerun(gateway)
    env = gateway_env(gateway)

    issued = run_cli(["evidence", "destruction-record", dead.id, "--out", "out"], tmp_path, env)
    assert issued.returncode == 0, issued.stderr  # the red team saw exit 2 here
    keys = run_cli(["evidence", "keys", "--out", "evidence-keys.json"], tmp_path, env)
    assert keys.returncode == 0, keys.stderr
    (signed,) = (tmp_path / "out").glob("destruction-record-*.json")
    verified = run_cli(["verify", str(signed), "--keys", "evidence-keys.json"], tmp_path, env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(signed.read_text())["document"]["batch"]["status"] == "interrupted"


@pytest.mark.slow
def test_a_run_killed_after_its_entries_were_committed_is_not_logged_twice(gateway: Gateway) -> None:
    gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    killed_run(gateway, after="logged")  # the entry is in the log; its seq never reached the destruction rows
    (logged,) = destroyed_entries(gateway)
    gateway.clock.set(AFTER_SIX_MONTHS + LEASE + timedelta(seconds=1))

    rerun(gateway)

    assert destroyed_entries(gateway) == [logged]
    with gateway.container.db.read.connect() as conn:
        seqs = set(conn.execute(select(retention_destructions.c.audit_seq)).scalars())
    assert seqs == {logged["seq"]}
    (run,) = runs(gateway)[:1]
    assert verified_record(gateway, run.id)["audit"]["last_entry"] == logged["seq"]


def test_a_lease_holder_is_dead_only_when_its_process_on_this_host_is_gone() -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: the pid names no process
    me = holder_identity()
    assert holder_alive(me)
    assert not holder_alive(f"{ended.pid}@{me.split('@', 1)[1]}")
    assert holder_alive(f"{ended.pid}@another-host")
    assert holder_alive("other@host")


# -- a holder on another host: its heartbeat tells -----------------------------------------------------

OTHER_HOST = "4242@gateway-2.other-host.example#123456"


def hand_lease_to(gw: Gateway, holder: str, heartbeat: datetime | None) -> None:
    """Make `holder` (another host's process) the lease holder with this heartbeat; its lease runs 10 more min."""
    with gw.container.db.write.begin() as conn:
        conn.execute(
            update(lifecycle_state).values(
                retention_holder=holder,
                retention_lease_until=gw.clock.now() + LEASE,
                retention_heartbeat_at=heartbeat,
            )
        )


def lease_row(gw: Gateway) -> Any:
    with gw.container.db.read.connect() as conn:
        return conn.execute(select(lifecycle_state)).one()


@pytest.mark.slow
def test_a_run_abandoned_on_another_host_with_a_stale_heartbeat_is_taken_over_at_once(gateway: Gateway) -> None:
    people = [gateway.register() for _ in range(3)]
    gateway.clock.set(AFTER_SIX_MONTHS)
    killed_run(gateway, after="destroyed", at_batch=2)
    # As if that process had run on another host: its pid tells nothing here, its heartbeat stopped 10 min ago
    # (beyond the 2-minute grace) while its lease has 10 more minutes to run.
    hand_lease_to(gateway, OTHER_HOST, datetime.now(UTC) - timedelta(minutes=10))
    (dead,) = runs(gateway)

    again = rerun(gateway)  # at once: no waiting out the lease

    assert again.status == "completed"
    assert again.participants == len(people) - 2
    first, second = runs(gateway)
    assert (first.id, first.status, first.destroyed_keys, first.deleted_records) == (dead.id, "interrupted", 6, 6)
    assert second.id == again.run_id
    assert len(destroyed_entries(gateway)) == len(people)  # each destruction logged exactly once
    assert verified_record(gateway, dead.id)["batch"]["status"] == "interrupted"
    assert lease_row(gateway).retention_holder is None


def test_a_holder_on_another_host_with_a_fresh_heartbeat_is_not_taken_over(gateway: Gateway) -> None:
    gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    hand_lease_to(gateway, OTHER_HOST, datetime.now(UTC) - timedelta(seconds=5))  # it beat 5 s ago: alive

    with pytest.raises(RetentionBusy):
        rerun(gateway)

    assert runs(gateway) == []
    assert destroyed_entries(gateway) == []
    assert lease_row(gateway).retention_holder == OTHER_HOST
    # Once its heartbeat is older than the grace, the same holder is taken over.
    hand_lease_to(gateway, OTHER_HOST, datetime.now(UTC) - timedelta(minutes=3))
    assert rerun(gateway).keys_destroyed == 3


def test_a_running_run_renews_its_heartbeat_while_it_works(gateway: Gateway) -> None:
    gateway.register()
    gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    assert gateway.container.lifecycle is not None
    runner = gateway.container.lifecycle.retention
    runner.heartbeat_seconds = 0.05
    beats: list[datetime] = []

    def step(name: str) -> None:
        if name != "destroyed" or beats:
            return
        first = lease_row(gateway).retention_heartbeat_at
        deadline = time.monotonic() + 60
        while (now := lease_row(gateway).retention_heartbeat_at) == first:  # wait for the next beat, mid-run
            assert time.monotonic() < deadline, "the heartbeat was not renewed while the run ran"
            time.sleep(0.01)
        beats.extend([first, now])

    runner.after_step = step
    outcome = runner.run(Actor("amsterdam", "archivist.1", "jurist"), AUTHORITY, batch=1)

    assert outcome.status == "completed"
    assert beats[0] < beats[1]
    assert lease_row(gateway).retention_heartbeat_at is None  # released with the lease


def test_a_run_whose_lease_was_taken_over_stops_before_its_next_batch(gateway: Gateway) -> None:
    for _ in range(3):
        gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    assert gateway.container.lifecycle is not None
    runner = gateway.container.lifecycle.retention

    def step(name: str) -> None:
        if name == "destroyed":  # another host judged this run dead and took its lease
            hand_lease_to(gateway, OTHER_HOST, datetime.now(UTC))

    runner.after_step = step
    with pytest.raises(RetentionBusy):
        runner.run(Actor("amsterdam", "archivist.1", "jurist"), AUTHORITY, batch=1)

    (stopped,) = runs(gateway)
    assert (stopped.status, stopped.destroyed_keys) == ("interrupted", 3)  # one participant, then it stopped
    assert len(destroyed_entries(gateway)) == 1
    assert lease_row(gateway).retention_holder == OTHER_HOST  # it did not release the lease it no longer held
