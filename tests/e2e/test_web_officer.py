"""The officer pages in a real headless Chromium: sign in, search, denied attempts, anomalies, art. 15 report."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import Gateway
from tests.support.browser import Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # a browser process
]

IND = "Immigratie- en Naturalisatiedienst (IND)"
SHELTER = "Stichting Voorbeeld Opvang Amsterdam (fictief)"


@pytest.fixture
def chromium() -> Iterator[Browser]:
    browser = Browser()
    try:
        yield browser
    finally:
        browser.close()


def read(gw: Gateway, org: str, role: str, purpose: str, city_pseudonym: str) -> int:
    pseudonym = gw.pseudonym_for(org, city_pseudonym)
    return gw.http.get(f"/v1/participants/{pseudonym}", headers=gw.headers(org, role, purpose)).status_code


def traffic(gw: Gateway) -> str:
    """A participant read by three organisations under two purposes, denials, and a probe from Rotterdam."""
    p = gw.register("amsterdam")
    assert read(gw, "amsterdam", "case_manager", "lso_case_discussion", p) == 200
    assert read(gw, "ind", "ind_officer", "lso_case_discussion", p) == 200
    assert read(gw, "dtv", "return_officer", "lso_case_discussion", p) == 200
    assert read(gw, "ngo-opvang-amsterdam", "counsellor", "shelter_counselling", p) == 200
    for _ in range(6):
        assert read(gw, "ngo-opvang-amsterdam", "counsellor", "police_screening", p) == 403
    assert read(gw, "rotterdam", "case_manager", "lso_case_discussion", p) == 404
    return p


def test_an_officer_signs_in_searches_reviews_denials_and_makes_a_subject_access_report(
    gateway: Gateway, chromium: Browser
) -> None:
    p = traffic(gateway)
    b = chromium
    b.goto(f"{gateway.url}/officer/login")
    assert "Aanmelden als privacyfunctionaris" in b.text()
    assert "Logboek gecontroleerd en in orde" in b.text()
    assert b.evaluate("document.documentElement.lang") == "nl"
    b.fill("#acting_user", "fg.amsterdam")
    b.screenshot("officer-login")
    b.fill("#token", gateway.token("amsterdam"))
    b.click("button[type=submit]")
    b.wait_for("location.pathname === '/officer/entries'")
    assert "Het logboek doorzoeken" in b.text()
    assert "officer_session" not in b.evaluate("document.cookie")  # HttpOnly: scripts cannot read it

    b.fill("#participant", p)
    b.click("#search")
    b.wait_for(f"location.search.includes('participant={p}')")
    text = b.text()
    assert IND in text
    assert SHELTER in text
    assert "Synthetisch" not in text
    assert "AVG art. 6 lid 1 sub e" in text
    assert "eu-gdpr:" not in text
    # a trace id stays on one line: its cell is no taller than three lines of text
    heights = json.loads(
        b.evaluate(
            "JSON.stringify([...document.querySelectorAll('.trace')].map(e => "
            "e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight || 16)))"
        )
    )
    assert heights
    assert max(heights) < 1.6
    b.screenshot("officer-search")

    b.click("a[href='/officer/denied']")
    b.wait_for("location.pathname === '/officer/denied'")
    text = b.text()
    assert "Geweigerde pogingen" in text
    assert "no_rule_for_purpose" in text
    assert "participant_outside_covenant_region" in text
    b.screenshot("officer-denied")

    b.click("a[href='/officer/anomalies']")
    b.wait_for("location.pathname === '/officer/anomalies'")
    text = b.text()
    assert "Reeks weigeringen" in text
    assert "Toegang buiten de regio's van de client" in text
    assert "tester.1" in b.evaluate("document.querySelector('.card').innerText")  # names the acting user
    b.screenshot("officer-anomalies")
    first = b.evaluate("document.querySelector('.card .entries-links a').getAttribute('href')")
    seq = first.rsplit("#entry-", 1)[1]
    b.click(".card .entries-links a")
    b.wait_for(f"document.getElementById('entry-{seq}') !== null")

    b.click("a[href='/officer/subject-access']")
    b.wait_for("location.pathname === '/officer/subject-access'")
    b.fill("#participant", p)
    b.click("#make-report")
    b.wait_for("document.querySelector('#report-title') !== null")
    text = b.text()
    for fact in (IND, "Dienst Terugkeer en Vertrek (DT&V)", SHELTER, "Opvang en begeleiding", "AVG art. 6 lid 1 sub e"):
        assert fact in text
    assert "Voorstel: een ontwerpkeuze, geen wet." in text
    b.screenshot("officer-subject-access")

    status = b.evaluate("document.querySelector('.status').innerText")
    assert "Logboek gecontroleerd en in orde" in status
    links = json.loads(b.evaluate("JSON.stringify([...document.querySelectorAll('.exports a')].map(a => a.href))"))
    assert any(link.endswith(f"subject-access.pdf?participant={p}") for link in links)

    b.click("a[href='/officer/subject-lookup']")
    b.wait_for("location.pathname === '/officer/subject-lookup'")
    b.fill("#v_number", "TEST-V-00001")
    b.click("#find")
    b.wait_for("document.querySelector('.matches') !== null")
    assert "1 deelnemer gevonden" in b.text()
    assert b.evaluate("location.search") == ""  # posted: the V-number is in no URL
    b.screenshot("officer-subject-lookup")
