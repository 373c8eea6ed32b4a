"""A jurist, in a real headless Chromium, signs in, sees the covenants with their end and notices, issues a
revocation report and a destruction record, downloads them, and the downloads verify; screenshots go to
test-artifacts/ for a person to look at."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import build
from gateway.evidence.envelope import verify_bytes
from gateway.evidence.keys import parse_keys
from gateway.lifecycle.events import Actor
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from tests.conftest import AMS, IN_FORCE, Gateway, make_settings, synthetic_records
from tests.support.browser import Browser
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

AFTER_END = datetime(2025, 1, 1, 9, 30, tzinfo=AMS)
AFTER_RETENTION = datetime(2025, 4, 2, 9, 0, tzinfo=AMS)
APPEAL = "AWB 25/0002 (synthetic)"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # a browser process
    # tests/support/browser.py opens its websocket outside a context manager (a shared driver; not changed here).
    pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"),
]


@dataclass
class Site:
    gw: Gateway
    browser: Browser

    def sign_in(self, org: str, role: str, user: str = "jurist.synthetic") -> None:
        self.gw.minter.now = self.gw.clock.timestamp()
        token = self.gw.minter.token(org, exp=int(self.gw.clock.timestamp()) + 3600)
        self.browser.goto(f"{self.gw.url}/jurist/login")
        self.browser.fill("#token", token)
        self.browser.fill("#acting_user", user)
        self.browser.fill("#role", role)
        self.browser.click("button[type=submit]")

    def fetch(self, path: str) -> bytes:
        """Return a download with the signed-in browser's session cookie (the pages allow no scripts to fetch)."""
        cookies = self.browser.send("Network.getCookies", urls=[f"{self.gw.url}{path}"])["cookies"]
        header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
        answer = self.gw.http.get(path, headers={"Cookie": header})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-disposition"].startswith("attachment;")
        return answer.content


@pytest.fixture
def site(tmp_path: Path, minter: TokenMinter) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path}/gateway.db"
    db = connect(url)
    upgrade(db)
    db.dispose()
    clock = FixedClock(IN_FORCE)
    settings = make_settings(
        url, tmp_path / "keys", minter, outbox_poll_seconds=0, covenant_end_notices=False,
        audit_checkpoint_interval_seconds=0, lifecycle_poll_seconds=0,
    )  # fmt: skip
    container = build(settings, clock)
    browser = Browser()
    try:
        with (
            LiveServer(create_app(container=container)) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            gw = Gateway(container, clock, minter, server.url, http)
            gw.register("amsterdam", synthetic_records(1))
            held = gw.register("amsterdam", synthetic_records(2))
            ref = container.store.resolve("amsterdam", held)
            assert ref is not None
            assert container.lifecycle is not None
            container.lifecycle.service.set_hold(
                Actor.jurist("amsterdam", "jurist.synthetic"), ref.id, "appeal", APPEAL
            )
            clock.set(AFTER_END)
            pseudonym = container.store.pseudonym("ind", ref.id)
            gw.http.get(
                f"/v1/participants/{pseudonym}", headers=gw.headers("ind", "ind_officer", "lso_case_discussion")
            )
            assert container.evidence is not None
            container.evidence.notify_covenant_end("lvv-amsterdam")
            asyncio.run(container.evidence.worker.deliver_due())
            with container.db.read.connect() as conn:
                notice = container.evidence.outbox.notices(conn, recipient_org="ngo-medisch")[0].id
            acked = http.post(
                f"/v1/notices/{notice}/ack",
                json={"outcome": "deleted"},
                headers=gw.headers("ngo-medisch", "privacy_officer", None),
            )
            assert acked.status_code == 201
            yield Site(gw, browser)
    finally:
        browser.close()
        container.close()


def test_a_jurist_sees_the_covenants_issues_a_report_and_its_downloads_verify(site: Site) -> None:
    b = site.browser
    site.sign_in("amsterdam", "jurist")
    b.wait_for("location.pathname === '/jurist/covenants'")
    text = b.text()
    assert "Convenant LVV Amsterdam (voorbeeld)" in text
    assert "beëindigd" in text
    assert "tot en met 31 december 2024 23:59:59; beëindigd op 1 januari 2025 00:00" in text
    assert "1 van 8 bevestigd" in text
    assert b.evaluate("document.documentElement.lang") == "nl"
    assert "Convenant LVV Rotterdam" not in text  # not a party
    b.screenshot("jurist-covenants")

    b.click("a[href='/jurist/covenants/lvv-amsterdam']")
    assert "niet bezorgd" in b.text()
    b.click("form[action='/jurist/covenants/lvv-amsterdam/report'] button")
    text = b.text()
    assert "Intrekkingsrapport versie 1 uitgegeven." in text
    assert "gateway verify revocation-report-lvv-amsterdam-v1.json --keys evidence-keys.json" in text
    b.screenshot("jurist-covenant-lvv-amsterdam")

    links = b.evaluate("Array.from(document.querySelectorAll('.downloads a')).map(a => a.getAttribute('href'))")
    assert [link.rsplit(".", 1)[1] for link in links] == ["json", "html", "pdf"]
    keys = parse_keys(site.gw.http.get("/.well-known/evidence-keys.json").content)
    files = {link.rsplit(".", 1)[1]: site.fetch(link) for link in links}
    for kind, data in files.items():
        assert verify_bytes(data, keys).kind == kind

    # The HTML rendition is a document of its own: it renders, offline, without the site.
    rendition = site.gw.container.settings.key_dir.parent / "revocation-report-lvv-amsterdam-v1.html"
    rendition.write_bytes(files["html"])
    b.goto(rendition.as_uri())
    text = b.text()
    for fact in (
        "Intrekkingsrapport: Convenant LVV Amsterdam",
        "2025-01-01T00:00:00+01:00",
        APPEAL,
        "Zo controleert u",
    ):
        assert fact in text, fact
    assert b.evaluate("performance.getEntriesByType('resource').length") == 0, "it loads nothing else"
    assert b.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "nothing overflows sideways"
    b.screenshot("revocation-report-rendition")


def test_a_jurist_reviews_mandates_holds_and_issues_a_destruction_record(site: Site) -> None:
    b = site.browser
    site.gw.clock.set(AFTER_RETENTION)
    lifecycle = site.gw.container.lifecycle
    assert lifecycle is not None
    lifecycle.retention.run(Actor.scheduler(), "Besluit vernietiging LVV-gegevens 2025 (synthetic)")
    site.sign_in("amsterdam", "jurist")
    b.goto(f"{site.gw.url}/jurist/mandates")
    text = b.text()
    assert "Mandaten" in text
    assert "Stichting Voorbeeld Opvang Amsterdam (fictief)" in text  # names, not ids
    assert "ngo-opvang-amsterdam" not in text
    b.screenshot("jurist-mandates")

    b.goto(f"{site.gw.url}/jurist/holds")
    text = b.text()
    assert APPEAL in text
    assert "actief" in text
    assert "in het logboek vastgelegd als regel" in text
    b.screenshot("jurist-holds")

    b.goto(f"{site.gw.url}/jurist/destruction")
    b.click("form[action^='/jurist/retention-runs/'] button")
    text = b.text()
    assert "Vernietigingsverklaring versie 1 uitgegeven." in text
    b.screenshot("jurist-destruction")
    link = b.evaluate("document.querySelector('.downloads a[href$=\".pdf\"]').getAttribute('href')")
    keys = parse_keys(site.gw.http.get("/.well-known/evidence-keys.json").content)
    assert verify_bytes(site.fetch(link), keys).document_type == "destruction_record"

    b.goto(f"{site.gw.url}/jurist/verify")
    assert "Zo controleert u een document" in b.text()
    b.screenshot("jurist-verify")


def test_someone_without_the_jurist_or_privacy_officer_role_cannot_sign_in(site: Site) -> None:
    site.sign_in("ngo-opvang-amsterdam", "counsellor", "counsellor.synthetic")
    assert (
        "Geen toezichtactiviteit staat deze organisatie en rol deze handeling toe." in site.browser.text()
    )  # the refusal is an audit entry, too
    site.browser.goto(f"{site.gw.url}/jurist/covenants")
    site.browser.wait_for("location.pathname === '/jurist/login'")


def test_a_jurist_signs_in_and_out_and_the_old_session_cookie_no_longer_opens_a_page(site: Site) -> None:
    b = site.browser
    site.sign_in("amsterdam", "jurist")
    b.wait_for("location.pathname === '/jurist/covenants'")
    assert "jurist.synthetic" in b.text()
    cookies = b.send("Network.getCookies", urls=[f"{site.gw.url}/jurist/covenants"])["cookies"]
    old = "; ".join(f"{c['name']}={c['value']}" for c in cookies if c["name"] == "jurist_session")
    assert old
    assert site.gw.http.get("/jurist/covenants", headers={"Cookie": old}).status_code == 200

    b.click("form.logout button")
    b.wait_for("location.pathname === '/jurist/login'")
    assert "Aanmelden als jurist of privacyfunctionaris" in b.text()
    b.screenshot("jurist-login")
    b.goto(f"{site.gw.url}/jurist/covenants")
    b.wait_for("location.pathname === '/jurist/login'")
    replayed = site.gw.http.get("/jurist/covenants", headers={"Cookie": old})
    assert replayed.status_code == 303
    assert replayed.headers["location"] == "/jurist/login"
