"""SIGKILL under concurrent load, on SQLite and PostgreSQL: the real `gateway serve` process is killed with
kill -9 while reads, writes, listings and officer queries are in flight, at a moment chosen by how many
responses the clients have seen, then restarted on the same database and key directory. Three rounds per
backend. Afterwards the audit hash chain verifies, every 2xx response has its audit entry under its trace
id, every acknowledged write reads back with its value, and no record version stands without its audit
entry or its data key.

The server runs in demo mode only for its simulated clock (the LVV covenants were in force in November
2024); tokens are minted on real time, as partners do."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.audit.chain import verify_chain
from gateway.crypto.keys import init_keys
from gateway.store.db import connect
from gateway.store.tables import audit_entries, data_keys, pseudonyms, records
from tests.conftest import IN_FORCE, LVV_CONFIG, synthetic_records
from tests.support.cli import GATEWAY
from tests.support.server import free_port, wait_healthy
from tests.support.tokens import AUDIENCE, ISSUER, TokenMinter

pytestmark = pytest.mark.slow  # gateway processes killed and restarted, rounds under load

ROUNDS = 3
PEOPLE_PER_WRITER = 2
WRITERS = 2
# Kill after this many responses in round r (varied so the kill lands at different points of the load).
KILL_AFTER = (90, 131, 173)
MAX_REQUESTS_PER_THREAD = 2_000  # a bound: the kill ends every loop long before this
CATEGORY = "case_plan"


@dataclass
class Seen:
    """What the clients saw: every 2xx response by trace id, and the writes they sent and had acknowledged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    responses: int = 0
    ok: list[tuple[str, str, int | None]] = field(default_factory=list)  # (trace id, what, audit seq)
    unexpected: list[tuple[str, int, str]] = field(default_factory=list)
    acked: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # pseudonym -> [(version, value)]
    sent: dict[str, list[str]] = field(default_factory=dict)  # pseudonym -> values in the order sent
    threshold: int = 0
    reached: threading.Event = field(default_factory=threading.Event)

    def count(self) -> None:
        self.responses += 1
        if self.responses >= self.threshold:
            self.reached.set()


class Load:
    """Client threads against one server until it goes away (or a bound is reached)."""

    def __init__(self, base: str, minter: TokenMinter, people: list[str], seen: Seen, tag: str) -> None:
        self.base, self.minter, self.people, self.seen, self.tag = base, minter, people, seen, tag
        self.stop = threading.Event()
        owned = [people[i::WRITERS] for i in range(WRITERS)]
        self.threads = [threading.Thread(target=self._writer, args=(i, owned[i]), daemon=True) for i in range(WRITERS)]
        self.threads += [
            threading.Thread(target=self._reader, daemon=True),
            threading.Thread(target=self._browser, daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
            assert not t.is_alive(), "a load thread did not stop"

    def _headers(self, role: str, purpose: str | None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.minter.token('amsterdam')}",
            "Acting-User": "sweeper.1",
            "Acting-Role": role,
        }
        if purpose:
            headers["Processing-Purpose"] = purpose
        return headers

    def _send(
        self, http: httpx.Client, what: str, method: str, path: str, headers: dict[str, str], **kw: Any
    ) -> httpx.Response | None:
        """Send one request with a fresh trace; record it; None once the server is gone."""
        trace = uuid.uuid4().hex
        traced = {**headers, "traceparent": f"00-{trace}-{uuid.uuid4().hex[:16]}-01"}
        try:
            response = http.request(method, path, headers=traced, **kw)
        except httpx.TransportError:
            return None
        with self.seen.lock:
            if 200 <= response.status_code < 300:
                audit = response.json().get("audit") if what != "officer" else None
                self.seen.ok.append((trace, what, audit["seq"] if audit else None))
            else:
                self.seen.unexpected.append((what, response.status_code, response.text[:200]))
            self.seen.count()
        return response

    def _loop(self, step: Callable[[httpx.Client, int], bool]) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            for i in range(MAX_REQUESTS_PER_THREAD):
                if self.stop.is_set() or not step(http, i):
                    return

    def _writer(self, n: int, mine: list[str]) -> None:
        headers = self._headers("case_manager", "intake")

        def step(http: httpx.Client, i: int) -> bool:
            p = mine[i % len(mine)]
            value = f"{self.tag}-w{n}-{i}"
            with self.seen.lock:
                self.seen.sent.setdefault(p, []).append(value)
            path = f"/v1/participants/{p}/records/{CATEGORY}"
            body = {"fields": {"plan_summary": value}}
            r = self._send(http, "write", "PUT", path, headers, json=body)
            if r is None:
                return False
            if r.status_code == 200:
                with self.seen.lock:
                    self.seen.acked.setdefault(p, []).append((r.json()["versions"][CATEGORY], value))
            return True

        self._loop(step)

    def _reader(self) -> None:
        headers = self._headers("case_manager", "lso_case_discussion")

        def step(http: httpx.Client, i: int) -> bool:
            p = self.people[i % len(self.people)]
            return self._send(http, "read", "GET", f"/v1/participants/{p}", headers) is not None

        self._loop(step)

    def _browser(self) -> None:
        listing = self._headers("case_manager", "lso_case_discussion")
        officer = self._headers("privacy_officer", None)

        def step(http: httpx.Client, i: int) -> bool:
            if i % 2:
                r = self._send(http, "officer", "GET", "/v1/officer/entries", officer, params={"limit": 5})
            else:
                r = self._send(http, "list", "GET", "/v1/participants", listing, params={"limit": 5})
            return r is not None

        self._loop(step)


class Served:
    """The gateway process on one database and key directory, started and killed again."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> str:
        port = free_port()
        out = self.cwd / f"serve-{port}.out"
        with out.open("w") as log:
            self.proc = subprocess.Popen(
                [GATEWAY, "serve", "--port", str(port)], cwd=self.cwd, env=self.env, stdout=log, stderr=log
            )
        self.base = f"http://127.0.0.1:{port}"
        wait_healthy(self.proc, self.base, out, seconds=45)
        return self.base

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def served_env(url: str, tmp_path: Path, minter: TokenMinter) -> dict[str, str]:
    """The environment of `gateway serve` on `url`: fresh keys, the test token issuer, a clock in 2024."""
    init_keys(tmp_path / "keys")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_CONFIG_DIR=str(LVV_CONFIG),
        GATEWAY_DATABASE_URL=url,
        GATEWAY_KEY_DIR=str(tmp_path / "keys"),
        GATEWAY_TOKEN_ISSUER=ISSUER,
        GATEWAY_TOKEN_AUDIENCE=AUDIENCE,
        GATEWAY_TOKEN_JWKS_FILE=str(minter.jwks_path),
        GATEWAY_DEMO="true",
        GATEWAY_CLOCK_START=IN_FORCE.isoformat(),
        GATEWAY_CLOCK_ANCHOR=str(time.time()),
    )
    return env


def register(base: str, minter: TokenMinter, n: int) -> list[str]:
    headers = {
        "Authorization": f"Bearer {minter.token('amsterdam')}",
        "Acting-User": "intake.1",
        "Acting-Role": "intake_officer",
        "Processing-Purpose": "intake",
    }
    people = []
    for i in range(n):
        body = {"region": "amsterdam", "records": synthetic_records(i + 1)}
        r = httpx.post(f"{base}/v1/participants", json=body, headers=headers, timeout=30)
        assert r.status_code == 201, r.text
        people.append(r.json()["participant"])
    return people


def test_kill_9_under_load_loses_no_acknowledged_write_and_leaves_no_half_state(
    database_url: str, tmp_path: Path, minter: TokenMinter
) -> None:
    minter.now = None
    server = Served(served_env(database_url, tmp_path, minter), tmp_path)
    seen = Seen()
    try:
        base = server.start()
        people = register(base, minter, WRITERS * PEOPLE_PER_WRITER)
        for r in range(ROUNDS):
            seen.threshold = seen.responses + KILL_AFTER[r]
            seen.reached.clear()
            load = Load(base, minter, people, seen, f"r{r}")
            load.start()
            assert seen.reached.wait(45), f"round {r}: only {seen.responses} responses; see {tmp_path}"
            server.kill()
            load.join()
            base = server.start()
        final = read_back(base, minter, people)
    finally:
        server.stop()

    assert not seen.unexpected, seen.unexpected[:5]
    assert seen.ok, "no request succeeded"
    for p in people:
        check_write_survived(p, final[p], seen)

    db = connect(database_url)
    try:
        chain = verify_chain(db)
        assert chain.ok, f"chain broken at {chain.first_bad_seq}: {chain.problem}"
        with db.read.connect() as conn:
            entries = {
                row.seq: (row.trace_id, json.loads(row.entry))
                for row in conn.execute(select(audit_entries.c.seq, audit_entries.c.trace_id, audit_entries.c.entry))
            }
            by_trace = {trace for trace, _ in entries.values()}
            ids = dict(
                conn.execute(
                    select(pseudonyms.c.pseudonym, pseudonyms.c.participant_id).where(
                        pseudonyms.c.organisation == "amsterdam"
                    )
                ).all()
            )
            versions = conn.execute(
                select(records.c.participant_id, records.c.category, records.c.version, records.c.audit_seq)
            ).all()
            keys = {(k.participant_id, k.category) for k in conn.execute(select(data_keys))}
    finally:
        db.dispose()

    for trace, what, seq in seen.ok:
        assert trace in by_trace, f"a 2xx {what} has no audit entry for trace {trace}"
        if seq is not None:
            assert entries[seq][0] == trace, f"the {what} response names audit entry {seq} of another trace"
    stored = {(pid, cat, v) for pid, cat, v, _ in versions}
    for p, acks in seen.acked.items():
        for version, _ in acks:
            assert (ids[p], CATEGORY, version) in stored, f"acknowledged version {version} of {p} is not stored"
    by_record: dict[tuple[str, str], list[int]] = {}
    for pid, cat, version, audit_seq in versions:
        by_record.setdefault((pid, cat), []).append(version)
        assert (pid, cat) in keys, f"version {version} of {cat} of {pid} has no data key"
        assert audit_seq in entries, f"version {version} of {cat} of {pid} names a missing audit entry {audit_seq}"
        entry = entries[audit_seq][1]
        assert entry.get("decision") == "permit", entry
        assert entry.get("event") in ("exchange.write", "exchange.register"), entry
    for (pid, cat), vs in by_record.items():
        assert sorted(vs) == list(range(1, len(vs) + 1)), f"versions of {cat} of {pid} have a gap: {sorted(vs)}"


def read_back(base: str, minter: TokenMinter, people: list[str]) -> dict[str, tuple[int, str]]:
    """Return each participant's stored case plan after the last restart: (version, plan_summary)."""
    headers = {
        "Authorization": f"Bearer {minter.token('amsterdam')}",
        "Acting-User": "sweeper.2",
        "Acting-Role": "case_manager",
        "Processing-Purpose": "lso_case_discussion",
    }
    found = {}
    for p in people:
        r = httpx.get(f"{base}/v1/participants/{p}", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        plan = r.json()["records"][CATEGORY]
        found[p] = (plan["version"], plan["fields"]["plan_summary"])
    return found


def check_write_survived(p: str, final: tuple[int, str], seen: Seen) -> None:
    """The last acknowledged write of `p` is what reads back, unless a later write (sent, unanswered) landed."""
    acks = seen.acked.get(p, [])
    assert acks, f"no write to {p} was acknowledged"
    last_version, last_value = max(acks)
    version, value = final
    assert version >= last_version, f"{p} reads version {version}, but version {last_version} was acknowledged"
    if version == last_version:
        assert value == last_value, f"{p} version {version} reads {value!r}, acknowledged as {last_value!r}"
    else:
        sent = seen.sent[p]
        later = sent[sent.index(last_value) + 1 :]
        assert value in later, f"{p} reads {value!r}, neither acknowledged last nor sent after it"
