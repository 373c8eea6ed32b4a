"""The generated DPIA renders in a real headless Chromium, self-contained, readable as a document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.dpia.generate import DPIA_HTML, generate
from gateway.policies.loader import load_config
from tests.conftest import LVV_CONFIG
from tests.support.browser import Browser

pytestmark = pytest.mark.slow  # a browser process


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


# tests/support/browser.py calls websockets' connect() outside a context manager, which newer websockets
# releases deprecate; the driver is shared, so the warning is silenced here rather than changed there.
@pytest.mark.browser
def test_the_generated_dpia_html_renders_in_a_headless_browser(browser: Browser, tmp_path: Path) -> None:
    generate(load_config(LVV_CONFIG), tmp_path)
    browser.goto((tmp_path / "lvv" / DPIA_HTML).as_uri())
    text = browser.text()
    for heading in (
        "A. Beschrijving kenmerken gegevensverwerkingen",
        "12. Bijzondere persoonsgegevens",
        "16. Risico's",
        "17. Maatregelen",
        "Advies van de functionaris gegevensbescherming",
        "Vaststelling",
    ):
        assert heading in text
    # a table of contents whose every entry leads to a section on the page
    targets = browser.evaluate("[...document.querySelectorAll('nav a')].map(a => a.getAttribute('href'))")
    assert len(targets) >= 25
    assert browser.evaluate(
        "[...document.querySelectorAll('nav a')].every(a => document.getElementById(a.hash.slice(1)) !== null)"
    )
    # the organisational measures are filled from the configuration, for every inherent risk
    empty = browser.evaluate(
        "[...document.querySelectorAll('#s17 table')].find(t => t.innerText.includes('Organisatorische maatregel'))"
        ".querySelectorAll('tbody tr td:last-child:empty').length"
    )
    assert empty == 0
    assert "TE BEOORDELEN" in text.upper()
    assert browser.evaluate("performance.getEntriesByType('resource').length") == 0, "it loads nothing else"
    assert browser.evaluate("document.querySelectorAll('td.level-high').length") > 0, "high risks are highlighted"
    assert browser.evaluate("document.querySelector('main').getBoundingClientRect().width") > 600
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "nothing overflows sideways"
    path = browser.screenshot("dpia-lvv")
    assert path.stat().st_size > 10_000
