"""After the end, as the partners and a jurist live it: one rehearsal, real processes, real tokens.

A rehearsal copy of the gateway's database stands at 2024-12-31 23:59:58 (Europe/Amsterdam). Partner
systems get their tokens from the gateway's token endpoint with their own keys, on real time. The
jurist walks the clock: a read is permitted at 23:59:59 and refused at 00:00:00; after the end
Amsterdam's privacy officer reviews its log (which shows the refused read) and answers an art. 15
request, its jurist signs in to /jurist, sets a legal hold, issues the signed revocation report and
verifies it with `gateway verify`, and reads the held participant for `legal_procedure` only; an NGO's
privacy officer acknowledges its deletion notice; a year on, a retention run destroys what is due,
the held participant survives, and the signed destruction record verifies.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import AMS, Gateway
from tests.e2e.test_rehearsal_mode import cli, database_url, rehearsal_server  # noqa: F401 (fixture)
from tests.support.oauth import Partner, assertion, register, token_form

pytestmark = pytest.mark.slow  # a `gateway serve` process

START = datetime(2024, 12, 31, 23, 59, 58, tzinfo=AMS)
LAST_SECOND = datetime(2024, 12, 31, 23, 59, 59, tzinfo=AMS)
NEW_YEAR = datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS)
A_YEAR_ON = datetime(2026, 1, 1, 0, 0, 0, tzinfo=AMS)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Rehearsal:
    """The running rehearsal server, the CLI against its copy, and the partners' token clients."""

    def __init__(self, source: Gateway, base: str, env: dict[str, str], cwd: Path) -> None:
        self.source = source
        self.base = base
        self.env = env
        self.cwd = cwd
        self.http = httpx.Client(base_url=base, timeout=20)

    def step(self, to: datetime) -> None:
        """Move the rehearsal clock (as the operator, from the command line) and wait until the server follows."""
        stepped = cli(["rehearsal", "step", "--to", to.isoformat()], self.cwd, self.env)
        assert stepped.returncode == 0, stepped.stderr
        shown = to.astimezone(UTC).isoformat()
        deadline = time.monotonic() + 60  # headroom for a busy machine
        while shown not in self.http.get("/health").headers["gateway-rehearsal"]:
            assert time.monotonic() < deadline, "the server did not follow the stepped clock"
            time.sleep(0.1)

    def token_response(self, partner: Partner, scope: str | None = None) -> httpx.Response:
        """Ask the token endpoint as the partner system does: an assertion signed with its key, on real time."""
        now = int(time.time())
        extra = {"scope": scope} if scope else {}
        return self.http.post(
            "/oauth/token", data=token_form(assertion(self.source, partner, iat=now, exp=now + 60), **extra)
        )

    def token(self, partner: Partner, scope: str | None = None) -> str:
        response = self.token_response(partner, scope)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), self.cwd, self.env)


def headers(token: str, role: str, purpose: str | None = None, user: str = "scenario.user") -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}", "Acting-User": user, "Acting-Role": role}
    if purpose:
        out["Processing-Purpose"] = purpose
    return out


@pytest.fixture
def world(gateway: Gateway, tmp_path: Path) -> Any:
    source = gateway
    partners = {
        "amsterdam": register(source, "amsterdam", roles=("case_manager", "privacy_officer", "jurist")),
        "ngo": register(source, "ngo-opvang-amsterdam", roles=("counsellor", "privacy_officer")),
    }
    people = {"ams": source.register("amsterdam"), "held": source.register("amsterdam")}
    with rehearsal_server(source, tmp_path, START, GATEWAY_OUTBOX_POLL_SECONDS="0.5") as (base, _, env):
        rehearsal = Rehearsal(source, base, env, tmp_path)
        with rehearsal.http:
            yield rehearsal, partners, people


def wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def verify(r: Rehearsal, path: Path, keys: Path) -> subprocess.CompletedProcess[str]:
    return r.cli("verify", str(path), "--keys", str(keys))


def download(r: Rehearsal, token: str, role: str, doc_id: str, out: Path) -> Path:
    got = r.http.get(f"/v1/evidence/documents/{doc_id}.json", headers=headers(token, role))
    assert got.status_code == 200, got.text
    out.write_bytes(got.content)
    return out


def test_the_end_and_the_year_after_as_partners_and_a_jurist_live_it(world: Any, tmp_path: Path) -> None:
    r, partners, people = world
    ams, held = people["ams"], people["held"]

    # 23:59:59: the exchange works with a real token the partner got itself.
    r.step(LAST_SECOND)
    exchange_token = r.token(partners["amsterdam"], scope="case_manager")
    lso = headers(exchange_token, "case_manager", "lso_case_discussion")
    assert r.http.get(f"/v1/participants/{ams}", headers=lso).status_code == 200

    # 00:00:00: refused, to the second; new tokens carry the oversight roles only, and say why.
    r.step(NEW_YEAR)
    refused = r.http.get(f"/v1/participants/{ams}", headers=lso)
    assert refused.status_code == 403
    assert refused.json()["code"] == "no_covenant_in_force"
    scoped = r.token_response(partners["amsterdam"])
    assert scoped.status_code == 200, scoped.text
    assert set(scoped.json()["scope"].split()) == {"privacy_officer", "jurist"}
    exchange_refused = r.token_response(partners["amsterdam"], scope="case_manager")
    assert exchange_refused.status_code == 400
    assert exchange_refused.json()["error"] == "invalid_scope"
    assert "ended on 2024-12-31T23:59:59+01:00" in exchange_refused.json()["error_description"]

    # Amsterdam's privacy officer reviews its log: the refused read is there.
    officer = r.token(partners["amsterdam"], scope="privacy_officer")
    entries = r.http.get("/v1/audit/entries", params={"limit": 1000}, headers=headers(officer, "privacy_officer"))
    assert entries.status_code == 200, entries.text
    denied = [e["entry"] for e in entries.json()["entries"] if e["entry"].get("reason") == "no_covenant_in_force"]
    assert denied
    assert denied[-1]["event"].startswith("exchange.")
    # ... and answers an art. 15 request for the participant.
    report = r.http.get(f"/v1/officer/participants/{ams}/access-report", headers=headers(officer, "privacy_officer"))
    assert report.status_code == 200, report.text

    # The jurist signs in to /jurist with a real token, then sets a legal hold (an appeal) after the end.
    jurist = r.token(partners["amsterdam"], scope="jurist")
    with httpx.Client(base_url=r.base, timeout=20) as browser:
        form = browser.get("/jurist/login")
        csrf = CSRF.search(form.text)
        assert csrf
        signed_in = browser.post(
            "/jurist/login",
            data={"token": jurist, "acting_user": "jurist.synthetic", "role": "jurist", "csrf": csrf.group(1)},
        )
        assert signed_in.status_code == 303, signed_in.text
        covenants = browser.get("/jurist/covenants")
        assert covenants.status_code == 200
        assert "lvv-amsterdam" in covenants.text
    hold = r.cli(
        "hold", "set", "--participant", held, "--reason", "appeal", "--case", "AWB 25/0001 (synthetic)",
        "--org", "amsterdam", "--by", "jurist.synthetic",
    )  # fmt: skip
    assert hold.returncode == 0, hold.stderr

    # It reads the held participant for the legal procedure only (once the server's next lifecycle poll saw the hold).
    def read_held() -> httpx.Response | None:
        got = r.http.get(f"/v1/participants/{held}", headers=headers(jurist, "jurist", "legal_procedure"))
        return got if got.status_code == 200 else None

    procedure = wait_for(read_held, "the hold to reach the server")
    assert "identity" in procedure.json()["records"]
    other_purpose = r.http.get(f"/v1/participants/{held}", headers=headers(jurist, "jurist", "lso_case_discussion"))
    assert other_purpose.status_code == 403
    not_held = r.http.get(f"/v1/participants/{ams}", headers=headers(jurist, "jurist", "legal_procedure"))
    assert not_held.status_code == 403

    # It issues the signed revocation report and checks it offline.
    keys = tmp_path / "evidence-keys.json"
    keys.write_bytes(r.http.get("/.well-known/evidence-keys.json").content)
    issued = r.http.post("/v1/evidence/covenants/lvv-amsterdam/revocation-report", headers=headers(jurist, "jurist"))
    assert issued.status_code == 201, issued.text
    report_file = download(r, jurist, "jurist", issued.json()["id"], tmp_path / "revocation-report.json")
    checked = verify(r, report_file, keys)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "VALID" in checked.stdout
    attempts = json.loads(report_file.read_text())["document"]["attempts_after_end"]["entries"]
    seen = {(a["event"], a["reason"], a["role"]) for a in attempts}
    assert ("exchange.read", "no_covenant_in_force", "case_manager") in seen  # the refused read
    assert ("auth.token.refused", "oversight_roles_only", None) in seen  # the refused token request

    # The NGO's privacy officer acknowledges its deletion notice after the end.
    ngo = r.token(partners["ngo"], scope="privacy_officer")
    ngo_headers = headers(ngo, "privacy_officer", user="fg.ngo")

    def notices() -> list[dict[str, Any]]:
        listed = r.http.get("/v1/notices", headers=ngo_headers)
        assert listed.status_code == 200, listed.text
        return [n for n in listed.json()["items"] if "lvv-amsterdam" in str(n)]

    notice = wait_for(notices, "the deletion notice of lvv-amsterdam")[0]
    ack = r.http.post(
        f"/v1/notices/{notice['id']}/ack", json={"outcome": "deleted", "reference": "FG-2025-01"}, headers=ngo_headers
    )
    assert ack.status_code == 201, ack.text
    assert r.token_response(partners["ngo"], scope="counsellor").status_code == 400  # exchange role: refused

    # A year on: a retention run destroys what is due; the held participant survives.
    r.step(A_YEAR_ON)
    run = r.cli("retention", "run", "--quiet", "--by", "jurist.synthetic", "--org", "amsterdam")
    assert run.returncode == 0, run.stdout + run.stderr
    jurist = r.token(partners["amsterdam"], scope="jurist")
    survived = r.http.get(f"/v1/participants/{held}", headers=headers(jurist, "jurist", "legal_procedure"))
    assert survived.status_code == 200, survived.text
    assert survived.json()["records"]

    runs = r.cli("retention", "runs")
    assert runs.returncode == 0, runs.stderr
    run_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", runs.stdout)
    assert run_id, runs.stdout
    record = r.http.post(
        f"/v1/evidence/retention-runs/{run_id.group(0)}/destruction-record", headers=headers(jurist, "jurist")
    )
    assert record.status_code == 201, record.text
    record_file = download(r, jurist, "jurist", record.json()["id"], tmp_path / "destruction-record.json")
    checked = verify(r, record_file, keys)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "VALID" in checked.stdout
    backups = json.loads(record_file.read_text())["document"]["backups"]
    assert all(e["state"] != "destroyed" for e in backups["epochs"])  # a rehearsal never destroys an epoch
    assert all("unreadable in database backups" not in line for line in backups["statements"])
