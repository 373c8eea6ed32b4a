"""Hostile but well-formed requests over real HTTP: each is a 4xx problem naming what is wrong, and nothing is stored.

Regression tests of the red-team findings (issue 10, items 1, 2, 3, 9): values Python's JSON parser
accepts but the store cannot encode, numbers beyond what the database holds, bodies beyond any bound.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.api.body_limit import BodyLimitMiddleware
from gateway.exchange.context import Principal, RequestContext, TraceContext
from gateway.exchange.service import BadRequest
from gateway.store.tables import audit_entries, participants
from tests.conftest import Gateway

PROBLEM = "application/problem+json"
FIELD = "plan_summary"
HOSTILE_VALUES = {
    "a lone surrogate": r'"\ud800"',
    "an integer beyond 64 bits": str(10**30),
    "an integer just beyond 63 bits": str(2**63),
    "a value nested 300 levels deep": "[" * 300 + "]" * 300,
    "a value nested 33 levels deep": "[" * 31 + "]" * 31,
    "NaN": "NaN",
    "Infinity": "Infinity",
    "minus Infinity": "-Infinity",
    "a number that overflows to infinity": "1e400",
    "a string of 10,001 characters": json.dumps("x" * 10_001),
}
TWENTY_DIGITS = "9" * 20


def permits(gw: Gateway, event: str) -> list[dict[str, Any]]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars()
        return [e for e in map(json.loads, rows) if e["event"] == event and e["decision"] == "permit"]


def participant_count(gw: Gateway) -> int:
    with gw.container.db.read.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(participants)).scalar_one())


def case_plan(gw: Gateway, pseudonym: str) -> dict[str, Any]:
    response = gw.http.get(
        f"/v1/participants/{pseudonym}", headers=gw.headers("amsterdam", "case_manager", "lso_case_discussion")
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["records"]["case_plan"])


def assert_problem_naming(response: Any, status: int, *names: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = dict(response.json())
    assert problem["status"] == status
    for name in names:
        assert name in response.text, f"{name!r} not named in {response.text}"
    return problem


def write_raw(gw: Gateway, pseudonym: str, body: bytes | Iterator[bytes]) -> Any:
    return gw.http.put(
        f"/v1/participants/{pseudonym}/records/case_plan",
        content=body,
        headers={**gw.headers("amsterdam", "case_manager", "intake"), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_a_write_of_a_hostile_value_is_a_422_naming_the_field_and_logs_no_permit(gateway: Gateway, value: str) -> None:
    p = gateway.register()
    before = case_plan(gateway, p)
    permitted = len(permits(gateway, "exchange.write"))
    response = write_raw(gateway, p, f'{{"fields": {{"{FIELD}": {value}}}}}'.encode())
    problem = assert_problem_naming(response, 422, f"body.fields.{FIELD}")
    assert problem["code"] == "invalid_request"
    assert len(permits(gateway, "exchange.write")) == permitted
    assert case_plan(gateway, p) == before


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_a_registration_with_a_hostile_value_is_a_422_naming_the_field_and_stores_nothing(
    gateway: Gateway, value: str
) -> None:
    registered = participant_count(gateway)
    body = f'{{"region": "amsterdam", "records": {{"case_plan": {{"{FIELD}": {value}}}}}}}'
    response = gateway.http.post(
        "/v1/participants",
        content=body.encode(),
        headers={**gateway.headers("amsterdam", "intake_officer", "intake"), "Content-Type": "application/json"},
    )
    assert_problem_naming(response, 422, f"body.records.case_plan.{FIELD}")
    assert permits(gateway, "exchange.register") == []
    assert participant_count(gateway) == registered


def test_a_hostile_key_is_refused_without_being_echoed(gateway: Gateway) -> None:
    p = gateway.register()
    response = write_raw(gateway, p, b'{"fields": {"\\ud800 Synthetisch": "x"}}')
    problem = assert_problem_naming(response, 422, "body.fields")
    assert "Synthetisch" not in response.text
    assert problem["errors"][0]["location"] == "body.fields.<key 1>"


def test_a_body_that_is_not_utf8_is_a_422(gateway: Gateway) -> None:
    p = gateway.register()
    response = write_raw(gateway, p, b'{"fields": {"plan_summary": "\xff"}}')
    assert_problem_naming(response, 422, "body", "UTF-8")


def officer(gw: Gateway) -> dict[str, str]:
    return gw.headers("amsterdam", "privacy_officer", None, user="fg.amsterdam")


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/v1/audit/entries", {"after": TWENTY_DIGITS}, "after"),
        (f"/v1/audit/checkpoints/{TWENTY_DIGITS}", {}, "size"),
        ("/v1/audit/proofs/inclusion", {"seq": TWENTY_DIGITS}, "seq"),
        ("/v1/audit/proofs/consistency", {"first": TWENTY_DIGITS}, "first"),
        ("/v1/officer/entries", {"cursor": TWENTY_DIGITS}, "cursor"),
    ],
)
def test_a_number_beyond_what_the_database_holds_is_a_422_naming_the_parameter(
    gateway: Gateway, path: str, params: dict[str, str], name: str
) -> None:
    response = gateway.http.get(path, params=params, headers=officer(gateway))
    assert_problem_naming(response, 422, name)


def test_a_declared_ten_megabyte_body_is_refused_with_413_and_not_stored(gateway: Gateway) -> None:
    p = gateway.register()
    before = case_plan(gateway, p)
    permitted = len(permits(gateway, "exchange.write"))
    body = orjson.dumps({"fields": {FIELD: "x" * 10_000_000}})
    response = write_raw(gateway, p, body)
    problem = assert_problem_naming(response, 413, str(gateway.container.settings.max_request_body_bytes))
    assert problem["code"] == "body_too_large"
    assert len(permits(gateway, "exchange.write")) == permitted
    assert case_plan(gateway, p) == before


def test_a_streamed_body_past_the_limit_is_refused_with_413_and_not_stored(gateway: Gateway) -> None:
    p = gateway.register()
    before = case_plan(gateway, p)

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"fields": {"plan_summary": "'
        for _ in range(100):
            yield b"x" * 100_000
        yield b'"}}'

    response = write_raw(gateway, p, chunks())
    assert_problem_naming(response, 413, "body_too_large")
    assert case_plan(gateway, p) == before


def test_the_body_limit_stops_reading_at_the_first_chunk_past_it() -> None:
    chunk, limit = 64 * 1024, 256 * 1024
    pulled = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * chunk, "more_body": pulled < 160}  # 10 MiB in all

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = await Request(scope, receive).body()  # buffers whole, as body parsing does
        await Response(str(len(body)))(scope, receive, send)

    scope: Scope = {"type": "http", "method": "PUT", "path": "/", "headers": [], "query_string": b""}
    asyncio.run(BodyLimitMiddleware(app, limit)(scope, receive, send))
    assert pulled == limit // chunk + 1
    assert sent[0]["status"] == 413


def test_a_value_the_store_cannot_encode_is_refused_before_the_decision_is_logged(gateway: Gateway) -> None:
    # Below the HTTP parser: the use case itself encodes as the store does before it asks for a decision.
    p = gateway.register()
    before = case_plan(gateway, p)
    permitted = len(permits(gateway, "exchange.write"))
    ctx = RequestContext(
        Principal("amsterdam", "client-amsterdam", "token-1", 2**31),
        "tester.1",
        "case_manager",
        "intake",
        TraceContext.from_header(None),
    )
    with pytest.raises(BadRequest) as raised:
        asyncio.run(gateway.container.exchange.write(ctx, p, "case_plan", {FIELD: 2**64}))
    assert raised.value.code == "unstorable_value"
    assert f"case_plan.{FIELD}" in raised.value.text
    assert len(permits(gateway, "exchange.write")) == permitted
    assert case_plan(gateway, p) == before


def answer_to_declared_body(gw: Gateway, path: str, content_type: str, declared: int) -> bytes:
    """Send headers declaring a body of `declared` bytes and none of it; return the whole answer (head and body)."""
    url = urlsplit(gw.url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
        )
        # An answer while the body is still awaited: it was refused unread. Head and body may come in
        # separate segments (a busy machine), so read until the body its Content-Length announces is in.
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
            chunk = conn.recv(65536)
            assert chunk, f"the connection closed before the answer was complete: {answer!r}"
            answer += chunk
        return answer


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def test_a_declared_oversized_body_is_refused_before_any_of_it_arrives(gateway: Gateway) -> None:
    answer = answer_to_declared_body(gateway, "/v1/participants", "application/json", 10_000_000)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert PROBLEM.encode() in answer


def test_the_token_endpoint_refuses_a_declared_oversized_form_before_any_of_it_arrives(gateway: Gateway) -> None:
    answer = answer_to_declared_body(gateway, "/oauth/token", "application/x-www-form-urlencoded", 100_000)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"too large" in answer


def test_the_token_endpoint_refuses_a_declared_oversized_form_unread(gateway: Gateway) -> None:
    response = gateway.http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&scope=" + b"x" * 100_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "too large" in response.json()["error_description"]


def test_the_token_endpoint_refuses_a_streamed_oversized_form(gateway: Gateway) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"grant_type=client_credentials&scope="
        for _ in range(10):
            yield b"x" * 10_000

    response = gateway.http.post(
        "/oauth/token", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert "too large" in response.json()["error_description"]
