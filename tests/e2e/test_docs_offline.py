"""/docs renders with no network but loopback: its assets come from an installed package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Gateway
from tests.support.browser import OFFLINE, Browser

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def offline_browser() -> Iterator[Browser]:
    browser = Browser(extra_flags=OFFLINE)
    try:
        yield browser
    finally:
        browser.close()


def _operations(gateway: Gateway) -> int:
    spec = gateway.http.get("/openapi.json").json()
    return sum(len(ops) for ops in spec["paths"].values())


@SQLITE
def test_docs_render_every_operation_without_internet(gateway: Gateway, offline_browser: Browser) -> None:
    browser = offline_browser
    browser.goto(f"{gateway.url}/docs")
    expected = _operations(gateway)
    browser.wait_for(f"document.querySelectorAll('.opblock').length === {expected}", timeout=60)
    assert "Authorize" in browser.text()  # the security schemes: a token can be sent from /docs
    assert "/v1/participants/{pseudonym}" in browser.text()
    loaded = browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded, "no assets loaded"
    assert all(url.startswith(gateway.url) for url in loaded), loaded
    browser.screenshot("docs-offline")
    # The block is real: the CDN FastAPI would use cannot be reached from this browser.
    reached = browser.evaluate(
        "fetch('https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css').then(() => true, () => false)"
    )
    assert reached is False
