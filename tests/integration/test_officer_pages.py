"""The officer pages over real HTTP: sign-in, session cookie, CSRF, escaping, status, logging."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from gateway.auth.model import Status
from gateway.store.tables import audit_entries, web_sessions
from tests.conftest import Gateway

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def browser(gateway: Gateway) -> Iterator[httpx.Client]:
    """A cookie-keeping client of its own (the fixture's client is used for API calls)."""
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        yield client


def sign_in(
    gw: Gateway, client: httpx.Client, org: str = "amsterdam", role: str = "privacy_officer", **headers: str
) -> httpx.Response:
    form = client.get("/officer/login", headers=headers)
    assert form.status_code == 200
    match = CSRF.search(form.text)
    assert match
    data = {"token": gw.token(org), "acting_user": "fg.pages", "role": role, "csrf": match.group(1)}
    return client.post("/officer/login", data=data, headers=headers)


def last_entry(gw: Gateway) -> dict[str, object]:
    with gw.container.db.read.connect() as conn:
        text = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq.desc())).first()
    assert text is not None
    entry: dict[str, object] = orjson.loads(text[0])
    return entry


def test_signing_in_sets_a_signed_httponly_strict_cookie_that_does_not_hold_the_token(
    gateway: Gateway, browser: httpx.Client
) -> None:
    response = sign_in(gateway, browser)
    assert response.status_code == 303
    assert response.headers["location"] == "/officer/entries"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("officer_session="))
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/officer" in attributes
    assert "secure" not in attributes  # plain http on loopback
    value = cookie.split(";")[0].split("=", 1)[1]
    session_id, sealed, _mac = value.split(".")
    token = str(response.request.content.decode()).split("token=")[1].split("&")[0]
    claims = token.split(".")[1]
    assert claims not in value
    assert claims.encode() not in base64.urlsafe_b64decode(sealed + "==")  # sealed (AES-GCM), never in clear
    with gateway.container.db.read.connect() as conn:
        stored = conn.execute(select(web_sessions)).one()
    assert stored.id_hash == hashlib.sha256(session_id.encode()).hexdigest()  # the id itself is not stored
    assert (stored.page_family, stored.acting_user, stored.role) == ("officer", "fg.pages", "privacy_officer")
    assert last_entry(gateway)["event"] == "audit.login"


def test_the_cookie_is_secure_when_the_page_is_served_over_https(gateway: Gateway, browser: httpx.Client) -> None:
    https = {"X-Forwarded-Proto": "https"}  # uvicorn trusts this header from loopback
    form = browser.get("/officer/login", headers=https)
    login_cookie = form.headers["set-cookie"]
    assert "secure" in [a.strip().lower() for a in login_cookie.split(";")]
    csrf = CSRF.search(form.text)
    assert csrf
    data = {
        "token": gateway.token("amsterdam"),
        "acting_user": "fg.pages",
        "role": "privacy_officer",
        "csrf": csrf.group(1),
    }
    # A real browser sends the Secure cookie back over https; httpx, speaking http here, must be told to.
    response = httpx.post(
        f"{gateway.url}/officer/login",
        data=data,
        headers={**https, "Cookie": login_cookie.split(";")[0]},
        timeout=60,
    )
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("officer_session="))
    assert "secure" in [a.strip().lower() for a in cookie.split(";")]


def test_the_session_lasts_no_longer_than_the_token(gateway: Gateway, browser: httpx.Client) -> None:
    response = sign_in(gateway, browser)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("officer_session="))
    assert "max-age=600" in cookie.lower()  # the test token lives 600 s; the session setting is 30 min
    assert browser.get("/officer/entries").status_code == 200
    gateway.clock.advance(timedelta(seconds=601))
    expired = browser.get("/officer/entries")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/officer/login"


def test_a_revoked_organisation_is_signed_out_on_its_next_page(gateway: Gateway, browser: httpx.Client) -> None:
    sign_in(gateway, browser)
    assert browser.get("/officer/entries").status_code == 200
    gateway.container.auth.registry.set_organisation_status("amsterdam", Status.DISABLED, "test")
    response = browser.get("/officer/entries")
    assert response.status_code == 303
    assert response.headers["location"] == "/officer/login"


def test_a_sign_in_without_the_forms_csrf_token_is_refused(gateway: Gateway, browser: httpx.Client) -> None:
    browser.get("/officer/login")
    data = {"token": gateway.token("amsterdam"), "acting_user": "fg.pages", "role": "privacy_officer", "csrf": "x"}
    response = browser.post("/officer/login", data=data)
    assert response.status_code == 400
    assert "officer_session" not in response.headers.get("set-cookie", "")


def test_a_counsellor_cannot_sign_in_and_the_attempt_is_logged(gateway: Gateway, browser: httpx.Client) -> None:
    response = sign_in(gateway, browser, org="ngo-opvang-amsterdam", role="counsellor")
    assert response.status_code == 403
    assert "Geen toezichtactiviteit staat deze organisatie en rol deze handeling toe." in response.text
    entry = last_entry(gateway)
    assert (entry["event"], entry["decision"], entry["reason"]) == ("audit.login", "deny", "no_oversight_activity")


def test_a_token_whose_scope_lacks_the_privacy_officer_role_cannot_sign_in(
    gateway: Gateway, browser: httpx.Client
) -> None:
    form = browser.get("/officer/login")
    csrf = CSRF.search(form.text)
    assert csrf
    token = gateway.token("amsterdam", scope="case_manager")
    data = {"token": token, "acting_user": "fg.pages", "role": "privacy_officer", "csrf": csrf.group(1)}
    response = browser.post("/officer/login", data=data)
    assert response.status_code == 403
    assert "does not grant the role privacy_officer" in response.text
    assert "officer_session" not in browser.cookies


def test_an_invalid_token_is_refused(gateway: Gateway, browser: httpx.Client) -> None:
    form = browser.get("/officer/login")
    csrf = CSRF.search(form.text)
    assert csrf
    data = {"token": "not-a-token", "acting_user": "fg.pages", "role": "privacy_officer", "csrf": csrf.group(1)}
    response = browser.post("/officer/login", data=data)
    assert response.status_code == 401
    assert "Het toegangstoken is niet geaccepteerd." in response.text


@pytest.mark.parametrize(
    "path",
    ["/officer/entries", "/officer/denied", "/officer/anomalies", "/officer/subject-access", "/officer/export.csv"],
)
def test_pages_without_a_session_send_the_visitor_to_sign_in(browser: httpx.Client, path: str) -> None:
    response = browser.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/officer/login"


def test_a_tampered_session_cookie_is_not_accepted(gateway: Gateway, browser: httpx.Client) -> None:
    sign_in(gateway, browser)
    value = browser.cookies["officer_session"]
    session_id, sealed, mac = value.split(".")
    forged = f"{session_id}.{sealed.replace(sealed[5], 'A' if sealed[5] != 'A' else 'B', 1)}.{mac}"
    browser.cookies.set("officer_session", forged, path="/officer")
    assert browser.get("/officer/entries").status_code == 303


def test_signing_out_needs_the_sessions_csrf_token(gateway: Gateway, browser: httpx.Client) -> None:
    sign_in(gateway, browser)
    page = browser.get("/officer/entries")
    token = CSRF.search(page.text)
    assert token
    assert browser.post("/officer/logout", data={"csrf": "wrong"}).status_code == 400
    out = browser.post("/officer/logout", data={"csrf": token.group(1)})
    assert out.status_code == 303
    assert 'officer_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]


def test_every_page_shows_the_logs_verification_status(gateway: Gateway, browser: httpx.Client) -> None:
    gateway.register("amsterdam")
    before = browser.get("/officer/login").text
    assert "Logboek gecontroleerd en in orde" in before
    assert "regels; hashketen intact" not in before  # the log's size only after sign-in
    sign_in(gateway, browser)
    for path in ("/officer/entries", "/officer/denied", "/officer/anomalies", "/officer/subject-access"):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert "Logboek gecontroleerd en in orde" in page.text
        assert "regels; hashketen intact" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in page.headers["content-security-policy"]


def test_a_tampered_log_is_shown_as_failed_on_every_page(gateway: Gateway, browser: httpx.Client) -> None:
    gateway.register("amsterdam")
    with gateway.container.db.write.begin() as conn:
        text = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == 1)).scalar_one()
        forged = text.replace('"decision":"permit"', '"decision":"deny"')
        conn.execute(update(audit_entries).where(audit_entries.c.seq == 1).values(entry=forged))
    page = browser.get("/officer/login")
    assert "Controle van het logboek MISLUKT" in page.text
    assert "first bad entry: 1" in page.text


def test_pages_escape_what_the_log_holds(gateway: Gateway, browser: httpx.Client) -> None:
    p = gateway.register("amsterdam")
    hostile = "<script>alert(1)</script>"
    headers = gateway.headers("amsterdam", "case_manager", hostile)
    assert gateway.http.get(f"/v1/participants/{p}", headers=headers).status_code == 400
    sign_in(gateway, browser)
    page = browser.get("/officer/denied")
    assert hostile not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_the_pages_show_no_record_contents(gateway: Gateway, browser: httpx.Client) -> None:
    p = gateway.register("amsterdam")
    gateway.http.get(
        f"/v1/participants/{p}", headers=gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    )
    sign_in(gateway, browser)
    pages = [
        browser.get("/officer/entries").text,
        browser.get("/officer/subject-access", params={"participant": p}).text,
        browser.get("/officer/export.csv").text,
        browser.get("/officer/export.json").text,
    ]
    for text in pages:
        for content in ("Synthetisch-001", "TEST-V-00001", "Testopvang", "+31 6 00000000"):
            assert content not in text


def test_page_views_and_downloads_are_logged(gateway: Gateway, browser: httpx.Client) -> None:
    p = gateway.register("amsterdam")
    sign_in(gateway, browser)
    browser.get("/officer/denied")
    assert (last_entry(gateway)["event"], last_entry(gateway)["view"]) == ("audit.query", "denied")
    pdf = browser.get("/officer/subject-access.pdf", params={"participant": p})
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert (last_entry(gateway)["event"], last_entry(gateway)["format"]) == ("audit.subject_access", "pdf")
    export = browser.get("/officer/export.json", params={"decision": "permit"})
    assert orjson.loads(export.content)["count"] >= 1
    assert (last_entry(gateway)["view"], last_entry(gateway)["format"]) == ("export", "json")
    ldv = browser.get("/officer/ldv.jsonl")
    assert ldv.text.count("\n") >= 1
    assert last_entry(gateway)["view"] == "ldv"


def test_an_unknown_pseudonym_on_the_subject_access_page_says_so(gateway: Gateway, browser: httpx.Client) -> None:
    sign_in(gateway, browser)
    page = browser.get("/officer/subject-access", params={"participant": "p" + "c" * 26})
    assert page.status_code == 404
    assert "Uw organisatie kent geen deelnemer met dit pseudoniem." in page.text


def test_dates_are_typed_the_dutch_way_and_a_wrong_one_is_named(gateway: Gateway, browser: httpx.Client) -> None:
    gateway.register("amsterdam")
    sign_in(gateway, browser)
    today = gateway.clock.now()
    dutch = today.strftime("%d-%m-%Y")
    page = browser.get("/officer/entries", params={"since": dutch, "until": dutch})
    assert page.status_code == 200
    assert 'placeholder="dd-mm-jjjj"' in page.text
    assert f'value="{dutch}"' in page.text
    assert "intake-city-write" in page.text  # the registration of today is found
    before = (today - timedelta(days=1)).strftime("%d-%m-%Y")
    assert "intake-city-write" not in browser.get("/officer/entries", params={"until": before}).text
    wrong = browser.get("/officer/entries", params={"since": "11/15/2024"})
    assert "Geef datums op als dd-mm-jjjj (bijvoorbeeld 31-12-2024)." in wrong.text


def test_the_status_banner_follows_a_new_checkpoint_at_once(gateway: Gateway, browser: httpx.Client) -> None:
    gateway.register("amsterdam")
    sign_in(gateway, browser)
    assert "Nog geen ondertekend controlepunt" in browser.get("/officer/entries").text
    sealer = gateway.container.sealer
    assert sealer is not None
    sealer.seal()
    page = browser.get("/officer/entries").text
    assert "het ondertekende controlepunt over" in page  # not the cached view of a minute ago
