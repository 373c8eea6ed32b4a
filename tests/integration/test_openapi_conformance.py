"""Schemathesis over the gateway's own /openapi.json: every operation, as the role that uses it,
live and in a rehearsal (its clock operations, banner and media types).

Positive and negative data, derandomized (a fixed seed), at most `MAX_EXAMPLES` cases per operation and
mode, no deadline and no response-time check (the verdict must not depend on the machine's speed), no
shrinking (a failure is reported as generated, and the time stays bounded). Every failure of every
operation is collected and reported together.

Checks: all of schemathesis' checks for single requests (`ALL_CHECKS`), among them not_a_server_error,
status_code_conformance, content_type_conformance, response_headers_conformance,
response_schema_conformance, negative_data_rejection, positive_data_acceptance, missing_required_header,
unsupported_method, allow_header_conformance and ignored_auth (which strips and spoils the token).
The stateful checks (use_after_free, ensure_resource_availability, object_level_authorization) need
linked operations and do not run here.

Known gaps (KNOWN_GAPS), closed by narrowing: three operations' valid inputs depend on something no
schema can state, so positive_data_acceptance is not run on them over the served document (every other
check is). It runs on narrowed copies of the document instead (`_narrowed`), with every check:
- `PUT /v1/participants/{pseudonym}/records/{category}`: the body's field names depend on the
  `category` path parameter (a field of another category is answered 422 `unknown_field`); fuzzed once
  per category with the category fixed and the body's fields that category's.
- `GET /v1/audit/proofs/inclusion` and `/consistency`: `seq` and `first` must lie within the tree
  (beyond it the answer is 400 `not_in_tree`, `bad_sizes`, `beyond_checkpoint`); fuzzed with sizes
  within a checkpoint signed before the run.
Not narrowed, so positive data is not run on it: `POST /v1/imports/{category}`, whose text/csv body's
header names fields of the `category` path parameter and whose rows name participants the caller knows
(otherwise 422 `rows_rejected`, ...); tests/integration/test_connectors_csv.py covers its valid inputs.
Both positive and negative data accept 413 as a refusal: the byte limit on a body is not expressible.
The run covers SQLite live and rehearsing, and PostgreSQL live.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, CheckFunction
from schemathesis.config._auth import OpenAPIAuthConfig
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
    NegativeDataRejectionConfig,
    PositiveDataAcceptanceConfig,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi import checks as openapi_checks

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import build
from gateway.lifecycle.rehearsal import copy_database
from gateway.store.db import connect
from gateway.store.migrate import upgrade
from tests.conftest import IN_FORCE, Gateway, make_settings
from tests.support import postgres
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

MAX_EXAMPLES = 15
STATEFUL = {"use_after_free", "ensure_resource_availability", "object_level_authorization"}
ALL_CHECKS: list[CheckFunction] = [c for c in CHECKS.get_all() if c.__name__ not in STATEFUL]
NOT_NARROWED = {"POST /v1/imports/{category}"}
KNOWN_GAPS: dict[str, set[CheckFunction]] = {
    "PUT /v1/participants/{pseudonym}/records/{category}": {openapi_checks.positive_data_acceptance},
    "GET /v1/audit/proofs/inclusion": {openapi_checks.positive_data_acceptance},
    "GET /v1/audit/proofs/consistency": {openapi_checks.positive_data_acceptance},
    "POST /v1/imports/{category}": {openapi_checks.positive_data_acceptance},
}


@pytest.fixture(params=["live", "rehearsal", pytest.param("postgres", marks=pytest.mark.postgres)])
def unlimited_gateway(request: pytest.FixtureRequest, tmp_path: Path, minter: TokenMinter) -> Iterator[Gateway]:
    """A gateway on SQLite, live or rehearsing (its own operations, banner and media types), or live on
    PostgreSQL, whose rate limit the fuzzer's volume cannot reach (429 is still documented)."""
    cloned = None
    if request.param == "postgres":
        request.getfixturevalue("postgres_template")
        cloned = postgres.clone()
        url = postgres.url_for(cloned)
    else:
        url = f"sqlite:///{tmp_path}/gateway.db"
        db = connect(url)
        upgrade(db)
        db.dispose()
    clock = FixedClock(IN_FORCE)
    overrides: dict[str, Any] = {"rate_limit_per_minute": 1_000_000}
    if request.param == "rehearsal":
        copy = f"sqlite:///{tmp_path}/rehearsal.db"
        copy_database(url, copy, IN_FORCE, running=False)
        url = copy
        overrides.update(rehearsal=True, outbox_poll_seconds=0, covenant_end_notices=False)
    rehearsing = "rehearsal" in overrides  # then the container runs the rehearsal's own simulated clock
    container = build(make_settings(url, tmp_path / "keys", minter, **overrides), None if rehearsing else clock)
    app = create_app(container=container)
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
            yield Gateway(container, clock, minter, server.url, http)
    finally:
        container.close()
        if cloned is not None:
            postgres.drop(cloned)


def _schema(
    gateway: Gateway, headers: dict[str, str], document: dict[str, Any] | None = None
) -> schemathesis.BaseSchema:
    """Return the live document (or `document`, a narrowed copy of it) with the caller's token as its
    bearer credentials and its acting headers sent on every request (never fuzzed); ignored_auth still
    strips and spoils the token."""
    token = headers["Authorization"].removeprefix("Bearer ")
    if document is None:
        schema = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")
    else:
        schema = schemathesis.openapi.from_dict(document)
        schema.config.update(base_url=gateway.url)
    schema.config.update(headers={name: value for name, value in headers.items() if name != "Authorization"})
    schema.config.auth.openapi = OpenAPIAuthConfig(schemes={"bearer": {"bearer": token}})
    # 413 is a refusal too: a body over the byte limit (which JSON Schema cannot state) is refused unread.
    checks = schema.config.checks
    checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=[*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
    )
    checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=[*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "413"]
    )
    return schema


def _callers(gateway: Gateway) -> list[tuple[dict[str, str], set[str] | None]]:
    """Return each caller's headers and the tags of the operations it calls (None: every non-exchange one).

    A city case manager (LSO purpose) and intake officer (intake) call the exchange; the city's privacy
    officer calls oversight, audit, notices, evidence, the rehearsal clock and the public operations; its
    jurist calls evidence and steps the rehearsal clock; its stuurgroep calls the monitor.
    """
    return [
        (gateway.headers("amsterdam", "case_manager", "lso_case_discussion", user="cm.fuzz"), {"exchange"}),
        (gateway.headers("amsterdam", "intake_officer", "intake", user="io.fuzz"), {"exchange"}),
        (gateway.headers("amsterdam", "privacy_officer", None, user="fg.fuzz"), None),
        (gateway.headers("amsterdam", "jurist", None, user="jr.fuzz"), {"evidence", "rehearsal"}),
        (gateway.headers("amsterdam", "steering", None, user="sg.fuzz"), {"steering monitor"}),
    ]


def _calls(tags: set[str] | None, operation: schemathesis.APIOperation) -> bool:
    operation_tags = set(operation.tags or [])
    return "exchange" not in operation_tags if tags is None else bool(tags & operation_tags)


def _fuzz(
    operation: schemathesis.APIOperation, mode: GenerationMode, statuses: Counter[int], narrowed: bool = False
) -> list[str]:
    failures: list[str] = []
    gaps = set() if narrowed else KNOWN_GAPS.get(operation.label, set())
    checks = [c for c in ALL_CHECKS if c not in gaps]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        try:
            statuses[case.call_and_validate(checks=checks).status_code] += 1
        except (FailureGroup, Exception) as exc:  # a FailureGroup names every failed check of the case
            kind = "narrowed " if narrowed else ""
            failures.append(f"{operation.label} [{kind}{mode.value}]: {str(exc).strip()[:1500]}")

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # Negative mode: the operation takes nothing that could be made invalid.
    return failures


WRITE = "/v1/participants/{pseudonym}/records/{category}"
PROOFS = ("/v1/audit/proofs/inclusion", "/v1/audit/proofs/consistency")


def _narrowed(document: dict[str, Any], config: Any, sealed: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Return copies of the document narrowed to what the request depends on but no schema can state, so
    that positive data for the known gaps is valid: one per category for the write (the body's field
    names are that category's), and for the proofs, sizes within a checkpoint that is signed (`sealed`).
    Each is (method, path, document)."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for category in config.categories:
        narrowed = copy.deepcopy(document)
        for parameter in narrowed["paths"][WRITE]["put"]["parameters"]:
            if parameter["name"] == "category":
                parameter["schema"] = {"type": "string", "enum": [category.id]}
        fields = narrowed["components"]["schemas"]["WriteRecord"]["properties"]["fields"]
        fields["propertyNames"] = {"enum": sorted(f.name for f in category.fields)}
        out.append(("PUT", WRITE, narrowed))
    bounds = {"seq": (1, sealed), "tree_size": (sealed, sealed), "first": (0, sealed), "second": (sealed, sealed)}
    narrowed = copy.deepcopy(document)
    for path in PROOFS:
        for parameter in narrowed["paths"][path]["get"]["parameters"]:
            low, high = bounds[parameter["name"]]
            parameter["schema"] = {"type": "integer", "minimum": low, "maximum": high}
            parameter["required"] = True
        out.append(("GET", path, narrowed))
    return out


def _fuzz_narrowed(gateway: Gateway, statuses: Counter[int]) -> tuple[list[str], set[str]]:
    """Positive data, with every check, for the operations KNOWN_GAPS exempts (see `_narrowed`)."""
    assert gateway.container.sealer is not None
    gateway.register()
    gateway.register()
    sealed = gateway.container.sealer.seal()
    assert sealed is not None
    size = sealed.checkpoint.size
    assert size >= 2
    document = gateway.http.get("/openapi.json").json()
    writer = gateway.headers("amsterdam", "case_manager", "intake", user="cm.fuzz")
    officer = gateway.headers("amsterdam", "privacy_officer", None, user="fg.fuzz")
    failures: list[str] = []
    covered: set[str] = set()
    for method, path, narrowed in _narrowed(document, gateway.container.policy.config, size):
        headers = writer if path == WRITE else officer
        operation = _schema(gateway, headers, narrowed)[path][method]
        covered.add(operation.label)
        failures += _fuzz(operation, GenerationMode.POSITIVE, statuses, narrowed=True)
    return failures, covered


@pytest.mark.timeout(900)
def test_every_operation_keeps_to_the_openapi_document_as_the_role_that_uses_it(
    unlimited_gateway: Gateway,
) -> None:
    gateway = unlimited_gateway
    assert {c.__name__ for c in ALL_CHECKS} >= {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "ignored_auth",
    }
    statuses: Counter[int] = Counter()
    # First, while the rehearsal clock still stands in the covenants (the fuzzer moves it on later).
    failures, narrowed = _fuzz_narrowed(gateway, statuses)
    fuzzed: set[str] = set()
    for headers, tags in _callers(gateway):
        for result in _schema(gateway, headers).get_all_operations():
            operation = result.ok()
            if not _calls(tags, operation):
                continue
            fuzzed.add(operation.label)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failures += _fuzz(operation, mode, statuses)
    assert not failures, "\n\n".join(failures)
    # Every known gap got its positive data after all, but the CSV upload (its valid bodies: test_connectors_csv.py).
    assert narrowed == set(KNOWN_GAPS) - NOT_NARROWED, narrowed
    assert len(fuzzed) > 20, sorted(fuzzed)
    if gateway.container.settings.rehearsal:
        assert {"GET /v1/rehearsal/clock", "POST /v1/rehearsal/clock"} <= fuzzed
    # The callers' credentials worked: cases got through to the data, not only to the refusals.
    assert sum(n for status, n in statuses.items() if 200 <= status < 300) > 100, statuses
