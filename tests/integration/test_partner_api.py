"""What a partner developer and an operator meet: problem types with pages, the headers every response
carries, /health with the clocks, /ready, /metrics without personal data, and the NL API Design Rules
that apply (checked on the live document and live responses)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from gateway import __version__
from tests.conftest import IN_FORCE, Gateway

PROBLEM_JSON = "application/problem+json"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOTH = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _spec(gateway: Gateway) -> dict[str, Any]:
    response = gateway.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


@SQLITE
def test_the_document_is_valid_openapi_and_says_who_what_and_where(gateway: Gateway) -> None:
    spec = _spec(gateway)
    validate(spec)  # openapi-spec-validator: OpenAPI 3.1 and its JSON Schema dialect
    info = spec["info"]
    assert info["license"]["identifier"] == "EUPL-1.2"
    assert "@" in info["contact"]["email"]
    assert info["version"] == __version__
    assert spec["servers"][0]["url"] == "/"
    schemes = spec["components"]["securitySchemes"]
    assert schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert "case_manager" in schemes["oauth2"]["flows"]["clientCredentials"]["scopes"]


@SQLITE
def test_every_operation_has_a_success_schema_and_declares_its_headers(gateway: Gateway) -> None:
    spec = _spec(gateway)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
            assert successes, (method, path)
            for status, response in successes.items():
                assert response.get("content"), (method, path, status)
                for media, entry in response["content"].items():
                    assert entry.get("schema") not in (None, {}), (method, path, status, media)
            for status, response in operation["responses"].items():
                assert {"traceparent", "API-Version"} <= set(response["headers"]), (method, path, status)
            for status in ("429", "503"):
                if status in operation["responses"]:
                    assert "Retry-After" in operation["responses"][status]["headers"], (method, path)
    register = spec["paths"]["/v1/participants"]["post"]["responses"]["201"]
    assert "Location" in register["headers"]


@SQLITE
def test_nl_api_design_rules_that_apply(gateway: Gateway) -> None:
    spec = _spec(gateway)
    # API-20 (/core/uri-version): major version in the URI; API-05/API-54 lowercase kebab-case paths.
    segment = re.compile(r"^([a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+)*|\{[a-z_]+\}(\.\{[a-z_]+\})?|\.well-known)$")
    for path in spec["paths"]:
        for part in path.strip("/").split("/"):
            assert segment.match(part), (path, part)
        assert path == "/" or not path.endswith("/"), path  # API-48: no trailing slash
    assert any(p.startswith("/v1/") for p in spec["paths"])
    # API-57 (/core/version-header): API-Version on every response, errors and unknown paths included.
    for method, path in [("get", "/openapi.json"), ("get", "/v1/participants"), ("get", "/nope"), ("get", "/health")]:
        response = gateway.http.request(method, path)
        assert response.headers["API-Version"] == __version__, path
    # /core/error-handling/problem-details: errors as problem+json.
    refused = gateway.http.get("/v1/participants")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM_JSON


@SQLITE
def test_a_problem_names_its_page_its_instance_and_always_a_detail(gateway: Gateway) -> None:
    refused = gateway.http.get("/v1/participants/unknown-one", headers={"Authorization": "Bearer nonsense"})
    problem = refused.json()
    assert refused.status_code == 401
    assert problem["type"] == f"{gateway.url}/problems/invalid_token"
    assert problem["instance"] == f"urn:lvv-gateway:trace:{problem['trace_id']}"
    assert "unknown-one" not in refused.text  # nothing of the request is echoed
    assert problem["detail"]
    page = gateway.http.get(problem["type"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="nl">' in html
    assert html.index("Geen geldig toegangstoken") < html.index("No valid access token")  # Dutch first
    index = gateway.http.get("/problems")
    assert "invalid_token" in index.text
    assert "not_source_of_category" in index.text
    unknown = gateway.http.get("/problems/no_such_code")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM_JSON
    # A problem raised without a detail gets its type's explanation.
    not_found = gateway.http.get("/no/such/path")
    assert not_found.json()["detail"]


@SQLITE
def test_an_unknown_or_missing_purpose_lists_the_valid_ones(gateway: Gateway) -> None:
    pseudonym = gateway.register()
    for purpose in ("fishing", None):
        headers = gateway.headers("amsterdam", "case_manager", purpose)
        response = gateway.http.get(f"/v1/participants/{pseudonym}", headers=headers)
        assert response.status_code == 400
        problem = response.json()
        assert problem["code"] == ("unknown_purpose" if purpose else "purpose_missing")
        valid = sorted(p.id for p in gateway.container.policy.config.purposes)
        assert f"Valid purposes: {', '.join(valid)}." in problem["detail"]


@SQLITE
def test_health_shows_both_clocks_and_responses_carry_the_policy_time(gateway: Gateway) -> None:
    response = gateway.http.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["clock"] == "simulated"  # the tests' fixed clock
    assert datetime.fromisoformat(health["policy_time"]) == IN_FORCE
    assert health["time"] != health["policy_time"]
    assert response.headers["Gateway-Policy-Time"] == health["policy_time"]
    assert response.headers["Date"]  # real time, from the HTTP server


@SQLITE
def test_ready_names_what_is_not_ready(gateway: Gateway) -> None:
    ready = gateway.http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True
    assert set(ready.json()["checks"]) == {"database", "audit_writer", "sealer"}
    gateway.container.audit.close()  # the audit writer stops: nothing could be logged, so nothing served
    refused = gateway.http.get("/ready")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.headers["Retry-After"]
    assert refused.json()["code"] == "not_ready"
    assert refused.json()["checks"]["audit_writer"]["ok"] is False
    assert "audit_writer" in refused.json()["detail"]


@pytest.mark.parametrize("database_url", BOTH, indirect=True)
def test_ready_is_503_when_the_database_is_gone(gateway: Gateway) -> None:
    assert gateway.http.get("/ready").status_code == 200
    engine = gateway.container.db.write
    engine.dispose()
    # Point the pool at nothing: every new connection fails as an outage does.
    engine.pool._creator = _refuse  # type: ignore[attr-defined]
    refused = gateway.http.get("/ready")
    assert refused.status_code == 503, refused.text
    assert refused.json()["checks"]["database"]["ok"] is False


def _refuse(*_: Any) -> Any:
    raise ConnectionRefusedError("database unreachable (test)")


def _samples(text: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
        assert name is not None, line
        out.append((name.group(0), dict(re.findall(r'(\w+)="([^"]*)"', line))))
    return out


@SQLITE
def test_metrics_count_requests_decisions_and_audit_batches_without_personal_data(gateway: Gateway) -> None:
    pseudonym = gateway.register()
    read = gateway.headers("amsterdam", "case_manager", "lso_case_discussion", user="cm.metrics")
    assert gateway.http.get(f"/v1/participants/{pseudonym}", headers=read).status_code == 200
    denied = gateway.headers("ngo-opvang-amsterdam", "counsellor", "police_screening", user="ngo.metrics")
    theirs = gateway.pseudonym_for("ngo-opvang-amsterdam", pseudonym)
    assert gateway.http.get(f"/v1/participants/{theirs}", headers=denied).status_code == 403
    response = gateway.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    samples = _samples(text)
    names = {name for name, _ in samples}
    assert {
        "gateway_http_requests_total",
        "gateway_http_request_duration_seconds_bucket",
        "gateway_decision_duration_seconds_count",
        "gateway_audit_batch_entries_count",
        "gateway_audit_commit_duration_seconds_count",
        "gateway_audit_checkpoint_age_seconds",
        "gateway_outbox_notices",
    } <= names
    routes = {labels["route"] for name, labels in samples if name == "gateway_http_requests_total"}
    assert "/v1/participants/{pseudonym}" in routes
    outcomes = {labels["outcome"] for name, labels in samples if name == "gateway_decision_duration_seconds_count"}
    assert {"permit", "deny"} <= outcomes
    # No pseudonym, organisation, user, role or purpose anywhere in the exposition.
    for secret in (pseudonym, theirs, "amsterdam", "ngo-opvang", "cm.metrics", "case_manager", "lso_case_discussion"):
        assert secret not in text, secret
    with httpx.Client(base_url=gateway.url) as other:
        assert other.get("/metrics").headers["API-Version"] == __version__


@SQLITE
def test_a_query_parameter_given_twice_or_not_documented_is_refused(gateway: Gateway) -> None:
    headers = gateway.headers("amsterdam", "privacy_officer", None, user="fg.officer")
    twice = gateway.http.get("/v1/officer/entries/export?purpose=a&purpose=b", headers=headers)
    assert twice.status_code == 422, twice.text
    assert twice.json()["errors"] == [{"location": "query.purpose", "message": "given more than once"}]
    unknown = gateway.http.get("/v1/officer/entries/export?purpos=a", headers=headers)
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"] == [{"location": "query.purpos", "message": "not a parameter of this operation"}]
    repeatable = gateway.http.get("/v1/officer/entries/export?reason=a&reason=b&purpose=intake", headers=headers)
    assert repeatable.status_code == 200, repeatable.text


@pytest.mark.parametrize("database_url", BOTH, indirect=True)
def test_a_nul_character_in_a_query_value_is_refused_not_a_server_error(gateway: Gateway) -> None:
    headers = gateway.headers("amsterdam", "privacy_officer", None, user="fg.officer")
    params = {"format": "csv", "reason": "a\x00b"}
    response = gateway.http.get("/v1/officer/entries/export", params=params, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"location": "query.reason", "message": "contains a NUL character"}]
