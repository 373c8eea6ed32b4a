"""The one sign-in of the officer pages and the jurist pages, over real HTTP, on SQLite and PostgreSQL:
the token is checked as the API checks it (scope, certificate binding, revocation), and the session is
a row that sign-out and revocation end at once, in every gateway process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.api.app import create_app
from gateway.auth.model import Status
from gateway.container import build
from gateway.store.tables import audit_entries, web_sessions
from tests.conftest import Gateway
from tests.support.oauth import captured_logs, events_named, get_token, register
from tests.support.server import LiveServer

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Family:
    name: str
    role: str
    home: str
    login_event: str

    @property
    def path(self) -> str:
        return f"/{self.name}"

    @property
    def cookie(self) -> str:
        return f"{self.name}_session"


OFFICER = Family("officer", "privacy_officer", "/officer/entries", "audit.login")
JURIST = Family("jurist", "jurist", "/jurist/holds", "evidence.login")


@pytest.fixture(params=[OFFICER, JURIST], ids=["officer", "jurist"])
def family(request: pytest.FixtureRequest) -> Family:
    family: Family = request.param
    return family


@pytest.fixture
def browser(gateway: Gateway) -> Iterator[httpx.Client]:
    """A cookie-keeping client of its own (the fixture's client is used for API calls)."""
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        yield client


def sign_in(client: httpx.Client, family: Family, token: str, **headers: str) -> httpx.Response:
    form = client.get(f"{family.path}/login", headers=headers)
    assert form.status_code == 200
    csrf = CSRF.search(form.text)
    assert csrf
    data = {"token": token, "acting_user": "synthetic.user", "role": family.role, "csrf": csrf.group(1)}
    return client.post(f"{family.path}/login", data=data, headers=headers)


def sign_out(client: httpx.Client, family: Family) -> httpx.Response:
    page = client.get(family.home)
    csrf = CSRF.search(page.text)
    assert csrf
    return client.post(f"{family.path}/logout", data={"csrf": csrf.group(1)})


def replay(gw: Gateway, family: Family, cookie: str, accept: str = "text/html") -> httpx.Response:
    """Load the family's home page with nothing but `cookie`, as someone who copied it would."""
    return httpx.get(
        f"{gw.url}{family.home}", headers={"Cookie": f"{family.cookie}={cookie}", "Accept": accept}, timeout=60
    )


def sessions(gw: Gateway) -> list[tuple[str, str | None]]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(web_sessions.c.page_family, web_sessions.c.end_reason)).all()
    return [(r.page_family, r.end_reason) for r in rows]


def events(gw: Gateway) -> list[str]:
    with gw.container.db.read.connect() as conn:
        texts = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars().all()
    return [f"{e['event']}:{e['decision']}" for e in map(orjson.loads, texts)]


def assert_sent_to_sign_in(response: httpx.Response, family: Family) -> None:
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{family.path}/login"


def test_a_signed_in_session_is_a_row_and_its_cookie_opens_the_pages(
    gateway: Gateway, family: Family, browser: httpx.Client
) -> None:
    response = sign_in(browser, family, gateway.token("amsterdam"))
    assert response.status_code == 303, response.text
    assert browser.get(family.home).status_code == 200
    assert sessions(gateway) == [(family.name, None)]
    assert f"{family.login_event}:permit" in events(gateway)


def test_a_token_whose_scope_lacks_the_role_cannot_sign_in_and_the_refusal_is_logged(
    gateway: Gateway, family: Family, browser: httpx.Client
) -> None:
    with captured_logs() as logs:
        response = sign_in(browser, family, gateway.token("amsterdam", scope="case_manager"))
    assert response.status_code == 403
    assert f"does not grant the role {family.role}" in response.text
    assert family.cookie not in browser.cookies
    refused = events_named(logs, "web.signin.refused")
    assert [(e["family"], e["reason"]) for e in refused] == [(family.name, "insufficient_scope")]
    assert events_named(logs, "auth.token.insufficient_scope")
    assert sessions(gateway) == []
    assert f"{family.login_event}:permit" not in events(gateway)
    assert "auth.refused:deny" in events(gateway)  # the token named its client: the refusal is evidence
    assert_sent_to_sign_in(browser.get(family.home), family)


def test_a_certificate_bound_token_without_its_certificate_cannot_sign_in(
    gateway: Gateway, family: Family, browser: httpx.Client
) -> None:
    bound = gateway.token("amsterdam", cnf={"x5t#S256": "c3ludGhldGljLWNlcnRpZmljYXRlLXRodW1icHJpbnQ"})
    with captured_logs() as logs:
        response = sign_in(browser, family, bound)
    assert response.status_code == 401
    assert "Het toegangstoken is niet geaccepteerd." in response.text
    reasons = [e["reason"] for e in events_named(logs, "web.signin.refused")]
    assert reasons == ["certificate_mismatch"]
    assert "auth.refused:deny" in events(gateway)
    assert sessions(gateway) == []


def test_after_the_client_is_disabled_the_next_page_is_refused_and_the_session_ends(
    gateway: Gateway, family: Family, browser: httpx.Client
) -> None:
    partner = register(gateway, roles=("privacy_officer", "jurist"))
    assert sign_in(browser, family, get_token(gateway, partner)).status_code == 303
    assert browser.get(family.home).status_code == 200
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.DISABLED, "test")  # as the CLI does
    assert_sent_to_sign_in(browser.get(family.home), family)
    assert sessions(gateway) == [(family.name, "token_rejected")]
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.ACTIVE)
    assert_sent_to_sign_in(browser.get(family.home), family)  # an ended session stays ended


def test_after_sign_out_the_old_cookie_is_refused(gateway: Gateway, family: Family, browser: httpx.Client) -> None:
    sign_in(browser, family, gateway.token("amsterdam"))
    cookie = browser.cookies[family.cookie]
    assert replay(gateway, family, cookie).status_code == 200
    out = sign_out(browser, family)
    assert_sent_to_sign_in(out, family)
    assert f'{family.cookie}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert sessions(gateway) == [(family.name, "signed_out")]
    assert_sent_to_sign_in(replay(gateway, family, cookie), family)
    assert replay(gateway, family, cookie, accept="application/json").status_code == 401


def test_sign_out_needs_the_sessions_csrf_token(gateway: Gateway, family: Family, browser: httpx.Client) -> None:
    sign_in(browser, family, gateway.token("amsterdam"))
    assert browser.post(f"{family.path}/logout", data={"csrf": "wrong"}).status_code == 400
    assert browser.get(family.home).status_code == 200
    assert sessions(gateway) == [(family.name, None)]


def test_a_session_of_one_page_family_does_not_open_the_other(gateway: Gateway, browser: httpx.Client) -> None:
    sign_in(browser, OFFICER, gateway.token("amsterdam"))
    cookie = browser.cookies[OFFICER.cookie]
    response = httpx.get(f"{gateway.url}{JURIST.home}", headers={"Cookie": f"{JURIST.cookie}={cookie}"}, timeout=60)
    assert_sent_to_sign_in(response, JURIST)


def test_sign_out_in_one_gateway_process_ends_the_session_in_another(
    gateway: Gateway, family: Family, browser: httpx.Client
) -> None:
    other = build(gateway.container.settings, gateway.clock)
    try:
        with LiveServer(create_app(container=other)) as second:
            sign_in(browser, family, gateway.token("amsterdam"))
            cookie = browser.cookies[family.cookie]
            header = {"Cookie": f"{family.cookie}={cookie}", "Accept": "text/html"}
            assert httpx.get(f"{second.url}{family.home}", headers=header, timeout=60).status_code == 200
            sign_out(browser, family)
            answer = httpx.get(f"{second.url}{family.home}", headers=header, timeout=60)
            assert_sent_to_sign_in(answer, family)
    finally:
        other.close()


def test_sessions_a_day_past_their_expiry_are_deleted_at_a_later_sign_in(
    gateway: Gateway, browser: httpx.Client
) -> None:
    sign_in(browser, OFFICER, gateway.token("amsterdam"))
    gateway.clock.advance(timedelta(days=1, minutes=11))
    with httpx.Client(base_url=gateway.url, timeout=60) as later:
        assert sign_in(later, JURIST, gateway.token("amsterdam")).status_code == 303
    assert sessions(gateway) == [(JURIST.name, None)]
