"""Every problem code the API sends has its page: found in the source, so a new code cannot slip by."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.api.problem_types import CATALOGUE
from gateway.policies.decision import Reason

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
README = GATEWAY.parent / "README.md"
# Where codes are made: Problem(status, "code", ...), BadRequest("code", ...), a refusal's reason.
SENT = [
    re.compile(r'Problem\(\s*\d{3},\s*"([a-z_]+)"'),
    re.compile(r'BadRequest\(\s*"([a-z_]+)"'),
    re.compile(r'refuse_async\(\s*ctx,\s*event,\s*"([a-z_]+)"'),
    re.compile(r'\{\d{3}: "([a-z_]+)"'),  # the HTTP errors' codes by status
]


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in GATEWAY.rglob("*.py"):
        text = path.read_text()
        for pattern in SENT:
            found |= set(pattern.findall(text))
    return found


def test_every_code_the_source_sends_has_a_page() -> None:
    codes = _codes_in_source()
    assert {"acting_user_missing", "body_too_large", "unknown_field", "purpose_missing", "not_found"} <= codes
    missing = codes - set(CATALOGUE)
    assert not missing, f"add these to gateway/api/problem_types.py CATALOGUE: {sorted(missing)}"


def test_every_refusal_reason_of_the_policy_has_a_page_in_dutch_and_english() -> None:
    for reason in Reason:
        if reason is Reason.PERMITTED:
            continue
        page = CATALOGUE[reason.value]
        assert page.nl, reason
        assert page.nl != page.en, reason


def test_the_readme_names_only_codes_the_api_sends() -> None:
    # Backticked snake_case words in the README's error paragraph are codes; each must be a real one.
    text = README.read_text()
    start = text.index("Errors are `application/problem+json`")
    paragraph = text[start : text.index("\n\n", start)]
    members = {"trace_id", "audit_seq"}  # the problem's own members, not codes
    named = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", paragraph)) - members
    assert named, "the README's error paragraph names no codes"
    assert named <= set(CATALOGUE), sorted(named - set(CATALOGUE))
