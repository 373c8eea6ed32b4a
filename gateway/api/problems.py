"""RFC 9457 problem details: a stable code, a short title, a detail that says what is wrong and no more."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.api.problem_types import default_detail, problem_base
from gateway.store.db import StorageUnavailable, is_storage_outage

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("gateway.api")


class Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class InvalidBody(StarletteHTTPException):
    """A request body that is not strict JSON within the bounds; `errors` say where, as validation errors do.

    An HTTP exception, because FastAPI lets only those (and JSON syntax errors) out of body parsing.
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(422, "The request is not valid.")
        self.errors = errors


def body_too_large(limit: int) -> Problem:
    """Return the problem of a body over `limit` bytes."""
    return Problem(413, "body_too_large", "The request body is too large.", f"At most {limit} bytes are accepted.")


def problem_response(request: Request, problem: Problem) -> Response:
    """Return the problem+json response: `type` the page of its code, always a `detail`, the trace id."""
    trace = getattr(request.state, "trace", None)
    body: dict[str, Any] = {
        "type": f"{problem_base(request)}/{problem.code}",  # a page that explains the problem type
        "title": problem.title,
        "status": problem.status,
        "code": problem.code,
        "detail": problem.detail or default_detail(problem.code) or problem.title,
    }
    if trace is not None:
        # This occurrence, by its trace id (which the audit entry and the logs carry). Never the path: it
        # may hold a pseudonym, and a problem echoes nothing of the request.
        body["instance"] = f"urn:lvv-gateway:trace:{trace.trace_id}"
    if trace is not None:
        body["trace_id"] = trace.trace_id
    body.update(problem.extra)
    return Response(orjson.dumps(body), problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


def storage_unavailable() -> Problem:
    """Return the 503 answered while the database cannot be reached or written (nothing was released)."""
    return Problem(
        503,
        "storage_unavailable",
        "The gateway's database is unavailable; nothing was released.",
        "Retry later.",
        headers={"Retry-After": "5"},
    )


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the input back: it may hold personal data.
    return [
        {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "invalid")}
        for err in exc.errors()
    ]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problem = Problem(422, "invalid_request", "The request is not valid.", errors=_validation_detail(exc))
        return problem_response(request, problem)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, InvalidBody):
            return problem_response(request, Problem(422, "invalid_request", exc.detail, errors=exc.errors))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        title = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        return problem_response(request, Problem(exc.status_code, code, title))

    async def on_storage(request: Request, exc: Exception) -> Response:
        # Raised on any step before a response starts (token revocation check, decision, audit, read):
        # the database is down or read-only, nothing was released, and asking again later may work.
        if not is_storage_outage(exc):
            return await on_error(request, exc)
        log.warning("storage.unavailable", error=type(exc).__name__, path=request.url.path)
        return problem_response(request, storage_unavailable())

    async def on_error(request: Request, exc: Exception) -> Response:
        return problem_response(request, Problem(500, "internal_error", "An internal error occurred."))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(StorageUnavailable, on_storage)
    app.add_exception_handler(DBAPIError, on_storage)
    app.add_exception_handler(SQLAlchemyError, on_storage)  # a pool timeout is not a DBAPIError
    app.add_exception_handler(Exception, on_error)
