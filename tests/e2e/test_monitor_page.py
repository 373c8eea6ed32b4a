"""A city's stuurgroep, in a real headless Chromium, signs in to the monitor page and sees its region's
tables and server-rendered SVG charts (no script), with small counts suppressed; someone without the
steering role cannot sign in; the jurists' page warns when a covenant's data falls due without a last
results measurement. Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import build
from gateway.demo.seed import seed
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from tests.conftest import AMS, Gateway, make_settings
from tests.support.browser import Browser
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"),
]


@dataclass
class Site:
    gw: Gateway
    browser: Browser

    def sign_in(self, family: str, org: str, role: str, user: str = "stuurgroep.synthetic") -> None:
        self.gw.minter.now = self.gw.clock.timestamp()
        token = self.gw.minter.token(org, exp=int(self.gw.clock.timestamp()) + 3600)
        self.browser.goto(f"{self.gw.url}/{family}/login")
        self.browser.fill("#token", token)
        self.browser.fill("#acting_user", user)
        self.browser.fill("#role", role)
        self.browser.click("button[type=submit]")


@pytest.fixture
def site(tmp_path: Path, minter: TokenMinter) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path}/gateway.db"
    db = connect(url)
    upgrade(db)
    db.dispose()
    clock = FixedClock(datetime(2024, 3, 12, 10, 0, tzinfo=AMS))
    settings = make_settings(
        url, tmp_path / "keys", minter, outbox_poll_seconds=0, covenant_end_notices=False,
        audit_checkpoint_interval_seconds=0, lifecycle_poll_seconds=0,
    )  # fmt: skip
    container = build(settings, clock)
    browser = Browser()
    try:
        with LiveServer(create_app(container=container)) as server, httpx.Client(base_url=server.url) as http:
            # Synthetic participants registered over three quarters of 2024.
            for month, per_city, rng in ((3, 6, 1), (6, 4, 2), (9, 8, 3)):
                clock.set(datetime(2024, month, 12, 10, 0, tzinfo=AMS))
                asyncio.run(seed(container, per_city=per_city, rng_seed=rng))
            clock.set(datetime(2024, 11, 15, 10, 0, tzinfo=AMS))
            yield Site(Gateway(container, clock, minter, server.url, http), browser)
    finally:
        browser.close()
        container.close()


def test_a_city_stuurgroep_sees_its_tables_and_charts_with_small_counts_suppressed(site: Site) -> None:
    b = site.browser
    site.sign_in("monitor", "amsterdam", "steering")
    b.wait_for("location.pathname === '/monitor/'")
    text = b.text()
    assert "Cijfers voor regio Amsterdam" in text
    assert "Nieuwe deelnemers per kwartaal" in text
    assert "Deelnemers naar fase" in text
    assert "Rotterdam" not in text
    assert "Totaal programma" not in text
    # Amsterdam registered 6, 4 and 8: the 4 of 2024 K2 is never shown, nor the 6 that, with the total of 18,
    # would give it away (secondary suppression); 8 and 18 are.
    rows = b.evaluate(
        "Array.from(document.querySelectorAll('#instroom table tbody tr')).map(r => "
        "Array.from(r.children).map(c => c.textContent.trim()))"
    )
    header = b.evaluate("Array.from(document.querySelectorAll('#instroom table thead th')).map(c => c.textContent)")
    assert header == ["Regio", "2024 K1", "2024 K2", "2024 K3", "Totaal"]
    assert rows[0] == ["Amsterdam", "\u2013", "\u2013", "8", "18"]
    # Charts: inline SVG, one line chart and one bar chart per indicator; no script anywhere on the page.
    assert b.evaluate("document.querySelectorAll('figure svg polyline, figure svg circle').length") > 0
    assert b.evaluate("document.querySelectorAll('figure svg rect[height]').length") > 0
    assert b.evaluate("document.querySelectorAll('script').length") == 0
    assert b.evaluate("document.querySelectorAll('figure svg').length") == 8
    assert not re.search(r"\bp[a-z2-7]{26}\b", b.evaluate("document.documentElement.outerHTML"))
    b.screenshot("monitor-page")
    b.evaluate("document.getElementById('instroom').scrollIntoView()")
    b.screenshot("monitor-line-chart")
    b.evaluate("document.getElementById('avim_screening').scrollIntoView()")
    b.screenshot("monitor-bar-chart")
    # The CSV download is the suppressed table (fetched with the page's session cookie).
    cookies = b.send("Network.getCookies", urls=[f"{site.gw.url}/monitor/tables/instroom.csv"])["cookies"]
    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    csv_text = site.gw.http.get("/monitor/tables/instroom.csv", headers={"Cookie": header}).text
    assert csv_text.splitlines()[1] == "Amsterdam,x,x,8,18"


def test_someone_without_the_steering_role_cannot_sign_in_to_the_monitor(site: Site) -> None:
    b = site.browser
    site.sign_in("monitor", "amsterdam", "case_manager")
    assert b.evaluate("location.pathname") == "/monitor/login"
    assert "Deelnemers naar fase" not in b.text()
    site.sign_in("monitor", "ind", "steering")
    assert b.evaluate("location.pathname") == "/monitor/login"


def test_the_jurists_page_warns_when_data_falls_due_without_a_last_measurement(site: Site) -> None:
    b = site.browser
    site.gw.clock.set(datetime(2024, 12, 20, 10, 0, tzinfo=AMS))
    site.sign_in("jurist", "amsterdam", "jurist")
    b.wait_for("location.pathname === '/jurist/covenants'")
    assert b.evaluate("!!document.getElementById('last-measurement-missing')")
    assert "Geen laatste resultaatmeting" in b.text()
    b.screenshot("jurist-covenants-no-last-measurement")
    issued = site.gw.http.post("/v1/monitor/last-measurement", headers=site.gw.headers("amsterdam", "steering", None))
    assert issued.status_code == 201, issued.text
    b.goto(f"{site.gw.url}/jurist/covenants")
    assert not b.evaluate("!!document.getElementById('last-measurement-missing')")
