"""The OpenAPI document, made to tell the truth in one place.

FastAPI documents what a handler declares. The answers that come from elsewhere (authentication, the
rate limit, the body limit, validation, a database outage) it does not know about, and it documents
every error as `application/json`. This module adds them once, from facts the document already holds
about each operation: whether it authenticates (it names the bearer scheme), reads the acting headers,
or takes a body. It also writes the policy's vocabulary (data categories and their fields, purposes)
into the exchange's request schemas, so that what the schema allows is what the gateway accepts.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.api.deps import PURPOSE_HEADER, ROLE_HEADER, USER_HEADER
from gateway.api.problems import PROBLEM_JSON
from gateway.api.refusals import ACTING_USER, ROLE
from gateway.api.schemas import ProblemOut
from gateway.api.strict_json import INT_MAX, INT_MIN, BodyBounds
from gateway.policies.model import PolicyConfig

_REF = "#/components/schemas/"
_PROBLEM = {"schema": {"$ref": f"{_REF}ProblemOut"}}
_DESCRIPTIONS = {
    400: "Not valid for this operation: an acting header, the purpose, or a parameter's relation to the data",
    401: "No valid bearer access token",
    403: "The token's scope, the role, organisation or purpose does not permit this (the refusal is logged)",
    404: "Not found, or not visible to you",
    409: "Conflicts with the state of the data or the log",
    413: "The request body is too large",
    422: "The request does not match this operation's schema",
    429: "Too many requests for this client (see Retry-After)",
    500: "A stored record failed its integrity check; nothing was released",
    503: "The database or the audit log is unavailable; nothing was released (see Retry-After)",
}
# OAuth endpoints answer in OAuth's own error format (RFC 6749 section 5.2), which partner libraries read.
_OAUTH_ERROR = {
    "schema": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    }
}
_OAUTH_STATUSES = (400, 401, 429, 503)
_OAUTH_TAG = "oauth"


def _oauth_form(operation: dict[str, Any]) -> bool:
    """Return whether the operation is an OAuth endpoint that reads a form (token, introspection)."""
    return _OAUTH_TAG in operation.get("tags", []) and "requestBody" in operation


def _error_statuses(operation: dict[str, Any]) -> set[int]:
    """Return the error statuses an operation can answer whatever its handler does."""
    statuses = {503}  # every operation may meet a database outage
    parameters = operation.get("parameters", [])
    oauth_form = _oauth_form(operation)
    if parameters or ("requestBody" in operation and not oauth_form):
        statuses.add(422)  # the OAuth endpoints read their form themselves
    if "requestBody" in operation:
        statuses.add(413)
    if "security" in operation:
        statuses |= {401, 403, 429}
    if any(p["in"] == "header" and p["name"] == USER_HEADER for p in parameters):
        statuses.add(400)  # an acting header missing or malformed; the purpose missing or unknown
    if oauth_form:
        statuses |= set(_OAUTH_STATUSES)
    return statuses


def _acting_headers(operation: dict[str, Any], purposes: list[str]) -> None:
    """Declare the acting headers as required, with the patterns (and purposes) they are checked against."""
    schemas: dict[str, dict[str, Any]] = {
        USER_HEADER: {"type": "string", "pattern": ACTING_USER.pattern},
        ROLE_HEADER: {"type": "string", "pattern": ROLE.pattern},
    }
    if "exchange" in operation.get("tags", []):
        schemas[PURPOSE_HEADER] = {"type": "string", "enum": purposes}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"] in schemas:
            parameter["required"] = True
            parameter["schema"] = schemas[parameter["name"]]


def _responses(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    oauth = _oauth_form(operation)
    for status in _error_statuses(operation):
        responses.setdefault(str(status), {})
    for code, response in responses.items():
        status = int(code)
        if status < 400:
            continue
        response["description"] = _DESCRIPTIONS.get(status, "Error")
        response["content"] = {PROBLEM_JSON: _PROBLEM}
        if oauth and status in _OAUTH_STATUSES:
            response["description"] = "OAuth error (RFC 6749 section 5.2); a database outage as problem+json"
            response["content"] = {"application/json": _OAUTH_ERROR, PROBLEM_JSON: _PROBLEM}


def json_value(bounds: BodyBounds) -> dict[str, Any]:
    """Return the schema of a field value: any JSON within the bounds strict parsing holds bodies to.

    (The nesting depth, also bounded, is not expressible in JSON Schema.)
    """
    ref = {"$ref": f"{_REF}JsonValue"}
    return {
        "description": "Any JSON value: integers within 64 bits, strings of bounded length",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
            {"type": "number"},
            {"type": "string", "maxLength": bounds.max_string_length},
            {"type": "array", "items": ref},
            {
                "type": "object",
                "propertyNames": {"maxLength": bounds.max_string_length},
                "additionalProperties": ref,
            },
        ],
    }


def _vocabulary(document: dict[str, Any], config: PolicyConfig, bounds: BodyBounds) -> None:
    """Name the data categories and their fields where requests carry them."""
    fields = {c.id: sorted(f.name for f in c.fields) for c in config.categories}
    categories = sorted(fields)
    value = {"$ref": f"{_REF}JsonValue"}
    record = {
        name: {"type": "object", "properties": dict.fromkeys(names, value), "additionalProperties": False}
        for name, names in fields.items()
    }
    schemas = document["components"]["schemas"]
    schemas["JsonValue"] = json_value(bounds)
    registration = schemas["RegisterParticipant"]["properties"]["records"]
    registration.update(properties=record, additionalProperties=False)
    schemas["RegisterParticipant"]["properties"]["region"] = {
        "type": "string",
        "enum": sorted({r for o in config.organisations for r in o.regions}),
        "description": "The LVV region the participant is registered in",
    }
    every_field = sorted({f for names in fields.values() for f in names})
    written = schemas["WriteRecord"]["properties"]["fields"]
    written.update(propertyNames={"enum": every_field}, additionalProperties=value)
    operations = document["paths"]
    write = operations["/v1/participants/{pseudonym}/records/{category}"]["put"]
    for parameter in write["parameters"]:
        if parameter["name"] == "category":
            parameter["schema"] = {"type": "string", "enum": categories}
    read = operations["/v1/participants/{pseudonym}"]["get"]
    for parameter in read["parameters"]:
        if parameter["name"] == "categories":
            # Sent comma-separated (form style, not exploded), as the gateway reads it.
            parameter.update(style="form", explode=False)
            parameter["schema"] = {"type": "array", "items": {"type": "string", "enum": categories}}


def install(app: FastAPI, config: PolicyConfig, bounds: BodyBounds) -> None:
    """Replace `app.openapi` with the generator of the complete document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["ProblemOut"] = ProblemOut.model_json_schema(ref_template=_REF + "{model}")
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        purposes = sorted(p.id for p in config.purposes)
        for path in document["paths"].values():
            for operation in path.values():
                _acting_headers(operation, purposes)
                _responses(operation)
        _vocabulary(document, config, bounds)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
