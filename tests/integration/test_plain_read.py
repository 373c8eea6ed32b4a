"""The plain read route (gateway.api.exchange.PlainRead) answers exactly as the documented FastAPI route.

A read without a query string takes the plain route; the same read with an empty `categories=` query
(which means "all the purpose permits", as no query does) goes through the FastAPI route. Both must
give the same answers, permits and refusals alike, each with its own committed audit entry. Over real
HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.routing import Match

from gateway.api.app import create_app
from gateway.api.exchange import PlainRead
from tests.conftest import Gateway

PROBLEM = "application/problem+json"


def both(gw: Gateway, pseudonym: str, headers: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
    """Return the answers of the plain route and of the FastAPI route to the same read."""
    plain = gw.http.get(f"/v1/participants/{pseudonym}", headers=headers)
    documented = gw.http.get(f"/v1/participants/{pseudonym}?categories=", headers=headers)
    return plain, documented


def without_occurrence(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    """Return status, content type and body, less what names this occurrence (audit seq, trace id)."""
    body = dict(response.json())
    body.pop("trace_id", None)
    instance = body.pop("instance", None)  # the trace of each request: two requests, two traces
    assert instance is None or instance.startswith("urn:lvv-gateway:trace:")
    seq = body.pop("audit_seq", None) if "audit" not in body else body["audit"].pop("seq")
    assert seq is None or seq >= 1
    return response.status_code, response.headers["content-type"], body


def test_a_permitted_read_is_the_same_through_either_route_and_each_is_logged(gateway: Gateway) -> None:
    p = gateway.register()
    headers = gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    plain, documented = both(gateway, p, headers)
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"] == "application/json"
    assert plain.json()["records"]["identity"]["fields"]["family_name"] == "Synthetisch-001"
    assert documented.json()["audit"]["seq"] == plain.json()["audit"]["seq"] + 1  # two decisions, two entries
    assert without_occurrence(plain) == without_occurrence(documented)
    assert "traceparent" in plain.headers
    assert "api-version" in {k.lower() for k in plain.headers}


@pytest.mark.parametrize(
    ("drop", "purpose", "status", "code"),
    [
        ("Acting-User", "lso_case_discussion", 400, "acting_user_missing"),
        ("Acting-Role", "lso_case_discussion", 400, "acting_role_missing"),
        (None, None, 400, "purpose_missing"),
        (None, "not_a_purpose", 400, "unknown_purpose"),
        (None, "monitoring", 403, "purpose_is_aggregate_only"),
        ("Authorization", "lso_case_discussion", 401, "invalid_token"),
    ],
)
def test_a_refused_read_is_refused_alike_through_either_route(
    gateway: Gateway, drop: str | None, purpose: str | None, status: int, code: str
) -> None:
    p = gateway.register()
    headers = gateway.headers("amsterdam", "case_manager", purpose)
    if drop is not None:
        del headers[drop]
    plain, documented = both(gateway, p, headers)
    assert plain.status_code == status, plain.text
    assert plain.headers["content-type"] == PROBLEM
    assert plain.json()["code"] == code
    assert without_occurrence(plain) == without_occurrence(documented)


def test_another_organisations_participant_is_not_found_alike_through_either_route(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    headers = gateway.headers("rotterdam", "case_manager", "lso_case_discussion")
    plain, documented = both(gateway, p, headers)
    assert plain.status_code == 404
    assert without_occurrence(plain) == without_occurrence(documented)


def _scope(method: str, path: str, query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "query_string": query, "headers": []}


def test_the_plain_route_takes_only_a_plain_get_of_a_wellformed_pseudonym() -> None:
    route = PlainRead()
    p = "p" + "a" * 26
    assert route.matches(_scope("GET", f"/v1/participants/{p}"))[0] is Match.FULL
    assert route.matches(_scope("GET", f"/v1/participants/{p}", b"categories=identity"))[0] is Match.NONE
    assert route.matches(_scope("GET", "/v1/participants/" + "p" + "A" * 26))[0] is Match.NONE
    assert route.matches(_scope("GET", "/v1/participants/p1"))[0] is Match.NONE
    assert route.matches(_scope("PUT", f"/v1/participants/{p}"))[0] is Match.NONE
    assert route.matches(_scope("GET", f"/v1/participants/{p}/records/identity"))[0] is Match.NONE


def test_the_plain_route_comes_first_and_the_document_still_describes_the_read(gateway: Gateway) -> None:
    app = create_app(container=gateway.container)
    assert isinstance(app.router.routes[0], PlainRead)
    assert not app.router.routes[0].include_in_schema
    document = gateway.http.get("/openapi.json").json()
    operation = document["paths"]["/v1/participants/{pseudonym}"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {
        "pseudonym",
        "categories",
        "Acting-User",
        "Acting-Role",
        "Processing-Purpose",
    }
    assert operation["security"]
