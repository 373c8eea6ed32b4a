"""The OpenAPI document, made to tell the truth in one place.

FastAPI documents what a handler declares; the responses that come from elsewhere (authentication,
the rate limit, the body limit, validation, a database outage) it does not know about, and it documents
every error as `application/json`. This module adds them once, from facts about each route: whether it
authenticates (it depends on `get_principal`), reads the acting headers (`get_context`), or takes a body.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from gateway.api.deps import ROLE_HEADER, USER_HEADER, get_context, get_principal
from gateway.api.problems import PROBLEM_JSON
from gateway.api.refusals import ACTING_USER, ROLE
from gateway.api.schemas import ProblemOut

BEARER = "bearer"
_REF = "#/components/schemas/"
_TITLES = {
    400: "The request is not valid for this operation (a header, purpose or parameter)",
    401: "No valid bearer access token",
    403: "The token, role, organisation or purpose does not permit this",
    404: "Not found, or not visible to you",
    409: "Conflicts with the state of the data",
    413: "The request body is too large",
    422: "The request does not match this operation's schema",
    429: "Too many requests for this client (see Retry-After)",
    503: "The database or audit log is unavailable; nothing was released (see Retry-After)",
}
# The operations that keep OAuth's own error format (RFC 6749 section 5.2) instead of problem+json.
_OAUTH_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": _TITLES[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"{_REF}ProblemOut"}}},
    }


def _error_statuses(route: APIRoute, operation: dict[str, Any]) -> set[int]:
    """Return the error statuses `route` can answer whatever its handler does."""
    calls = set(_calls(route.dependant))
    statuses = {503}  # every operation may meet a database outage
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(413)
    if get_principal in calls:
        statuses |= {401, 403, 429}
    if get_context in calls:
        statuses.add(400)  # Acting-User or Acting-Role missing, purpose missing or unknown
    return statuses


def _acting_headers(operation: dict[str, Any]) -> None:
    """Declare the acting headers as required, with the patterns they are checked against."""
    patterns = {USER_HEADER: ACTING_USER.pattern, ROLE_HEADER: ROLE.pattern}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"] in patterns:
            parameter["required"] = True
            parameter["schema"] = {"type": "string", "pattern": patterns[parameter["name"]]}


def _fix(route: APIRoute, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    calls = set(_calls(route.dependant))
    if get_principal in calls:
        operation["security"] = [{BEARER: []}]
    _acting_headers(operation)
    oauth = "oauth" in route.tags
    for status in _error_statuses(route, operation):
        responses.setdefault(str(status), {})
    for code, response in responses.items():
        status = int(code)
        if status < 400:
            continue
        if oauth and status != 413 and status != 503:
            response["description"] = response.get("description") or "OAuth error (RFC 6749 section 5.2)"
            response["content"] = {"application/json": {"schema": _OAUTH_ERROR}}
            continue
        documented = _problem(status) if status in _TITLES else {"description": "Error"}
        response["description"] = documented["description"]
        response["content"] = {PROBLEM_JSON: {"schema": {"$ref": f"{_REF}ProblemOut"}}}


def install(app: FastAPI) -> None:
    """Replace `app.openapi` with the generator of the complete document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["ProblemOut"] = ProblemOut.model_json_schema(ref_template=_REF + "{model}")
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        components["securitySchemes"] = {
            BEARER: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token from the token endpoint (client credentials, private_key_jwt)",
            }
        }
        for route in app.routes:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            path = document["paths"].get(route.path_format, {})
            for method in route.methods:
                operation = path.get(method.lower())
                if operation is not None:
                    _fix(route, operation)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
