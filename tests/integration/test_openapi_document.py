"""The OpenAPI document states what the gateway really answers: problem+json errors, the bearer scheme."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/ProblemOut"}
OAUTH_FORMS = {("post", "/oauth/token"), ("post", "/oauth/introspect")}


@pytest.fixture
def spec(gateway: Gateway) -> dict[str, Any]:
    response = gateway.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_error_response_is_documented_as_problem_json(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            content = response["content"]
            assert content[PROBLEM_JSON]["schema"] == PROBLEM_REF, (method, path, status)
            if (method, path) not in OAUTH_FORMS:
                assert set(content) == {PROBLEM_JSON}, (method, path, status)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_oauth_endpoints_document_oauths_own_error_format(spec: dict[str, Any]) -> None:
    for method, path in OAUTH_FORMS:
        errors = spec["paths"][path][method]["responses"]
        assert {"400", "401", "429", "503"} <= set(errors)
        assert errors["400"]["content"]["application/json"]["schema"]["required"] == ["error"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_authenticated_operation_names_the_bearer_scheme_and_its_refusals(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from the token endpoint (client credentials, private_key_jwt)",
    }
    authenticated = [(m, p, op) for m, p, op in _operations(spec) if op.get("security")]
    assert {(m, p) for m, p, _ in authenticated} >= {
        ("get", "/v1/participants/{pseudonym}"),
        ("get", "/v1/officer/anomalies"),
        ("get", "/v1/audit/entries"),
        ("post", "/v1/notices/{notice_id}/ack"),
    }
    for method, path, operation in authenticated:
        assert operation["security"] == [{"bearer": []}, {"oauth2": []}], (method, path)
        assert {"401", "403", "429", "503"} <= set(operation["responses"]), (method, path)
    public = {(m, p) for m, p, op in _operations(spec) if not op.get("security")}
    assert ("get", "/v1/audit/checkpoint") in public
    assert ("get", "/.well-known/jwks.json") in public


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_operations_with_a_body_document_the_413_and_the_acting_headers_are_required(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)
        for parameter in operation.get("parameters", []):
            if parameter["name"] in {"Acting-User", "Acting-Role"}:
                assert parameter["required"] is True, (method, path)
                assert "pattern" in parameter["schema"], (method, path)
    read = spec["paths"]["/v1/participants/{pseudonym}"]["get"]
    purpose = next(p for p in read["parameters"] if p["name"] == "Processing-Purpose")
    assert "lso_case_discussion" in purpose["schema"]["enum"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_moment_that_is_not_rfc_3339_is_refused_as_the_schema_says(gateway: Gateway) -> None:
    headers = gateway.headers("amsterdam", "privacy_officer", None, user="fg.officer")
    for bad in ("0.0", "1700000000", "2024-11-01", "2024-11-01T00:00:00"):
        response = gateway.http.get("/v1/officer/anomalies", params={"until": bad}, headers=headers)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM_JSON
    good = gateway.http.get("/v1/officer/anomalies", params={"until": "2024-11-15T10:00:00+01:00"}, headers=headers)
    assert good.status_code == 200
