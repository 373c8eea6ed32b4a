"""The OpenAPI document, made to tell the truth in one place.

FastAPI documents what a handler declares. The answers that come from elsewhere (authentication, the
rate limit, the body limit, validation, a database outage) it does not know about, and it documents
every error as `application/json`. This module adds them once, from facts the document already holds
about each operation: whether it authenticates (it names the bearer scheme), reads the acting headers,
or takes a body. It also writes the policy's vocabulary (data categories and their fields, purposes)
into the exchange's request schemas, so that what the schema allows is what the gateway accepts.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.deps import PURPOSE_HEADER, ROLE_HEADER, USER_HEADER
from gateway.api.oversight_schemas import SUCCESS_MODELS
from gateway.api.problems import PROBLEM_JSON, Problem, problem_response
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
OAUTH2 = "oauth2"


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


# Response headers (components/headers), named on the responses that carry them.
_HEADERS: dict[str, dict[str, Any]] = {
    "traceparent": {
        "description": "W3C Trace Context of this request: yours continued, or a new trace; in the audit entry",
        "required": True,
        "schema": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
    },
    "API-Version": {
        "description": "The gateway's version (NL API Design Rules: on every response)",
        "required": True,
        "schema": {"type": "string"},
    },
    "Gateway-Policy-Time": {
        "description": "Demo and rehearsal mode only: the simulated policy clock's time (RFC 3339). Tokens and "
        "client assertions are still checked on real time (see Date)",
        "schema": {"type": "string", "format": "date-time"},
    },
    "Date": {"description": "The gateway's real time (RFC 9110)", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before asking again", "schema": {"type": "string"}},
    "Location": {
        "description": "The new participant's address, with your pseudonym",
        "required": True,
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {"description": "RFC 6750 bearer challenge", "schema": {"type": "string"}},
}
_EVERY_RESPONSE = ("traceparent", "API-Version", "Gateway-Policy-Time", "Date")
_BY_STATUS = {"429": ("Retry-After",), "503": ("Retry-After",), "401": ("WWW-Authenticate",)}


def _header_refs(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


NO_NUL = "^[^\\u0000]*$"  # (ECMA-262) text the gateway stores or queries holds no NUL: StrictQueryMiddleware


def _no_nul(operation: dict[str, Any]) -> None:
    """Say in each free-text query parameter's schema that it holds no NUL (the middleware refuses one)."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query":
            continue
        schema = parameter.get("schema", {})
        for part in [
            schema,
            schema.get("items", {}),
            *schema.get("anyOf", []),
            *(a.get("items", {}) for a in schema.get("anyOf", [])),
        ]:
            if part.get("type") == "string" and not {"pattern", "enum", "format"} & set(part):
                part["pattern"] = NO_NUL


def _responses(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    oauth = _oauth_form(operation)
    for status in _error_statuses(operation):
        responses.setdefault(str(status), {})
    for code, response in responses.items():
        status = int(code)
        extra = _BY_STATUS.get(code, ())
        if method == "post" and path == "/v1/participants" and code == "201":
            extra = ("Location",)
        response["headers"] = _header_refs(_EVERY_RESPONSE + extra)
        if status < 400:
            _success(path, method, response)
            continue
        response["description"] = _DESCRIPTIONS.get(status, "Error")
        response["content"] = {PROBLEM_JSON: _PROBLEM}
        if oauth and status in _OAUTH_STATUSES:
            response["description"] = "OAuth error (RFC 6749 section 5.2); a database outage as problem+json"
            response["content"] = {"application/json": _OAUTH_ERROR, PROBLEM_JSON: _PROBLEM}


def _success(path: str, method: str, response: dict[str, Any]) -> None:
    """Name the success body of an operation whose handler builds its response itself."""
    model = SUCCESS_MODELS.get((method, path))
    content: dict[str, Any] = response.get("content", {})
    if model is not None:
        content["application/json"] = {"schema": {"$ref": f"{_REF}{model.__name__}"}}
    for media, entry in content.items():
        if media.startswith("text/") and not entry.get("schema"):
            entry["schema"] = {"type": "string"}


def _components(document: dict[str, Any]) -> None:
    """Add the schemas and headers the post-processing refers to."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    models: list[type[BaseModel]] = [ProblemOut, *SUCCESS_MODELS.values()]
    for model in models:
        schema = model.model_json_schema(ref_template=_REF + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["headers"] = _HEADERS


def _security(document: dict[str, Any], config: PolicyConfig) -> None:
    """Offer the token flow beside the bearer scheme: either authenticates an operation that needs a token."""
    roles = sorted({role for org in config.organisations for role in org.roles})
    document["components"]["securitySchemes"][OAUTH2] = {
        "type": "oauth2",
        "description": "Client credentials with private_key_jwt client authentication (RFC 7523): sign a client "
        "assertion with your registered key and post it to the token endpoint. The scope names the roles to act "
        "in. In /docs, paste the token under `bearer`.",
        "flows": {
            "clientCredentials": {
                "tokenUrl": "/oauth/token",
                "scopes": {role: f"act as {role}" for role in roles},
            }
        },
    }
    for path in document["paths"].values():
        for operation in path.values():
            if operation.get("security"):
                operation["security"] = [{"bearer": []}, {OAUTH2: []}]


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


def _query_parameters(document: dict[str, Any]) -> dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]]:
    """Return, per (method, path template), the query parameters the document names, and those of them
    it says are given once."""
    out: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            out[(method.upper(), path)] = (
                frozenset(p["name"] for p in query),
                frozenset(p["name"] for p in query if not _is_array(p)),
            )
    return out


def _is_array(parameter: dict[str, Any]) -> bool:
    schema = parameter.get("schema", {})
    return schema.get("type") == "array" or any(s.get("type") == "array" for s in schema.get("anyOf", []))


class StrictQueryMiddleware:
    """Refuse, on a documented operation, a query parameter the document does not name, one given more
    than once where the document says it is one value (FastAPI would ignore the one and silently take one
    of the other), or a value holding NUL: 422 problem+json naming the parameters. Works from the
    document's path templates, so it covers every documented operation, also one a later module adds."""

    def __init__(self, app: ASGIApp, gateway: FastAPI) -> None:
        self.app = app
        self.gateway = gateway
        self._operations: list[tuple[str, re.Pattern[str], tuple[frozenset[str], frozenset[str]]]] | None = None

    def _parameters(self, method: str, path: str) -> tuple[frozenset[str], frozenset[str]] | None:
        if self._operations is None:
            self._operations = [
                (method, re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"), names)
                for (method, path), names in _query_parameters(self.gateway.openapi()).items()
            ]
        found = (names for m, pattern, names in self._operations if m == method and pattern.match(path))
        return next(found, None)

    def _errors(self, scope: Scope) -> list[dict[str, str]]:
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        keys = [key for key, _ in pairs]
        parameters = self._parameters(scope["method"], scope["path"])
        if parameters is None:
            return []  # not a documented operation (pages, assets)
        named, once = parameters
        errors = [{"location": f"query.{key[:64]}", "message": "not a parameter of this operation"}
                  for key in sorted(set(keys) - named)]  # fmt: skip
        # No text the gateway stores or queries may hold NUL (PostgreSQL refuses it outright).
        errors += [{"location": f"query.{key}", "message": "contains a NUL character"}
                   for key in sorted({k for k, v in pairs if k in named and "\x00" in v})]  # fmt: skip
        errors += [{"location": f"query.{key}", "message": "given more than once"}
                   for key in sorted(once) if keys.count(key) > 1]  # fmt: skip
        return errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            errors = self._errors(scope)
            if errors:
                wrong = ", ".join(e["location"].removeprefix("query.") for e in errors)
                problem = Problem(
                    422, "invalid_request", "The request is not valid.", f"Check: {wrong}.", errors=errors
                )
                await problem_response(Request(scope), problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI, config: PolicyConfig, bounds: BodyBounds) -> None:
    """Replace `app.openapi` with the generator of the complete document (built once, then cached).

    Every route, also one added later by another module, is post-processed here: its problem responses
    (from what the operation authenticates, reads and takes), their media type and headers are declared
    without anything on the route itself. A route only declares the statuses its handler answers itself,
    with `responses=problems(404, 409)` (gateway.api.schemas).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            license_info={"name": "EUPL-1.2", "identifier": "EUPL-1.2"},
            servers=[{"url": "/", "description": "This gateway (the address this document was fetched from)"}],
        )
        # Set here, not through FastAPI's model (which would want the optional email-validator).
        document["info"]["contact"] = {
            "name": "Gateway operator and privacy contact",
            "email": config.meta.controller_contact,
        }
        _components(document)
        purposes = sorted(p.id for p in config.purposes)
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                _acting_headers(operation, purposes)
                _no_nul(operation)
                _responses(path, method, operation)
        _vocabulary(document, config, bounds)
        _security(document, config)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
