"""Jinja2 rendering for the officer pages: autoescaping everywhere, strict about missing values."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gateway.policies.decision import REASON_TEXT, Reason

# Pages have no scripts; styles come from /officer/static only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_EXTRA_REASONS = {
    "purpose_missing": "No purpose was stated on the request.",
    "unknown_participant": "The pseudonym is not known to the organisation (answered 404).",
    "privacy_officer_review": "A privacy officer consulted the log.",
    "session_started": "A privacy officer signed in to the review pages.",
    "operator_export": "The operator exported the log.",
}


def reason_text(code: str | None) -> str:
    """Return the sentence for a reason code (the code itself when it is unknown)."""
    if not code:
        return ""
    try:
        return REASON_TEXT[Reason(code)]
    except ValueError:
        return _EXTRA_REASONS.get(code, code)


def make_environment(timezone: str) -> Environment:
    """Return the template environment; every template is HTML and every value is escaped."""
    env = Environment(
        loader=PackageLoader("gateway.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    zone = ZoneInfo(timezone)

    def when(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else ""

    def day(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d") if moment else ""

    env.filters["when"] = when
    env.filters["day"] = day
    env.filters["reason_text"] = reason_text
    env.globals["tz"] = timezone
    return env


class Renderer:
    def __init__(self, timezone: str) -> None:
        self._env = make_environment(timezone)

    def render(self, name: str, **context: Any) -> str:
        """Return the rendered template."""
        return self._env.get_template(name).render(**context)
