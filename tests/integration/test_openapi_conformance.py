"""Schemathesis over the live gateway's own /openapi.json: every operation, as the roles that use it.

Positive and negative data, a fixed seed and a bounded number of examples per operation, no deadline and
no response-time check (the verdict must not depend on the machine's speed), no shrinking (a failure is
reported as generated; the time stays bounded). Every failure of every operation is collected and
reported together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import build
from tests.conftest import IN_FORCE, Gateway, make_settings
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

MAX_EXAMPLES = 15
# Who calls what: a city case manager with a purpose for the exchange and notices, the city's privacy
# officer (no purpose) for oversight, audit and evidence; public operations get the officer's headers too,
# which they ignore.
EXCHANGE_TAGS = {"exchange", "notices"}


@pytest.fixture
def unlimited_gateway(tmp_path: Path, minter: TokenMinter) -> Iterator[Gateway]:
    """A live gateway on SQLite whose rate limit the fuzzer's volume cannot reach (429 is still documented)."""
    url = f"sqlite:///{tmp_path}/gateway.db"
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade

    db = connect(url)
    upgrade(db)
    db.dispose()
    clock = FixedClock(IN_FORCE)
    container = build(make_settings(url, tmp_path / "keys", minter, rate_limit_per_minute=1_000_000), clock)
    app = create_app(container=container)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        yield Gateway(container, clock, minter, server.url, http)
    container.close()


def _schema(gateway: Gateway, headers: dict[str, str]) -> schemathesis.BaseSchema:
    """Return the live document, with the caller's credentials and acting headers fixed (never fuzzed)."""
    schema = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")
    schema.config.update(
        headers=headers, parameters={f"header.{name}": value for name, value in headers.items() if name != "Authorization"}
    )
    return schema


def _callers(gateway: Gateway) -> list[tuple[dict[str, str], bool]]:
    """Return each caller's headers, and whether it calls the exchange (True) or everything else."""
    return [
        (gateway.headers("amsterdam", "case_manager", "lso_case_discussion", user="cm.fuzz"), True),
        (gateway.headers("amsterdam", "privacy_officer", None, user="fg.fuzz"), False),
    ]


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, statuses: Counter[int]) -> list[str]:
    failures: list[str] = []

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
            statuses[case.call_and_validate().status_code] += 1
        except (FailureGroup, Exception) as exc:  # a FailureGroup names every failed check of the case
            failures.append(f"{operation.label} [{mode.value}]: {str(exc).strip()[:1500]}")

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # Negative mode: the operation takes nothing that could be made invalid.
    return failures


@pytest.mark.timeout(600)
def test_every_operation_keeps_to_the_openapi_document_as_its_roles(unlimited_gateway: Gateway) -> None:
    gateway = unlimited_gateway
    failures: list[str] = []
    fuzzed = 0
    statuses: Counter[int] = Counter()
    for headers, exchange in _callers(gateway):
        for result in _schema(gateway, headers).get_all_operations():
            operation = result.ok()
            if bool(EXCHANGE_TAGS & set(operation.tags or [])) != exchange:
                continue
            fuzzed += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failures += _fuzz(operation, mode, statuses)
    assert fuzzed > 20
    print(sorted(statuses.items()))
    assert not failures, "\n\n".join(failures)
