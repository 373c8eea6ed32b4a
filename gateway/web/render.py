"""Jinja2 rendering for the officer pages: autoescaping everywhere, strict about missing values."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gateway.audit.report import RetentionLine, describe_retention
from gateway.i18n import DEFAULT_LOCALE, LOCALES, N_, install, locale_or_default, translations
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
    "purpose_missing": N_("No purpose was stated on the request."),
    "unknown_participant": N_("The pseudonym is not known to the organisation (answered 404)."),
    "privacy_officer_review": N_("A privacy officer consulted the log."),
    "session_started": N_("A privacy officer signed in to the review pages."),
    "operator_export": N_("The operator exported the log."),
}


def reason_text(code: str | None) -> str:
    """Return the sentence for a reason code (the code itself when it is unknown)."""
    if not code:
        return ""
    try:
        return REASON_TEXT[Reason(code)]
    except ValueError:
        return _EXTRA_REASONS.get(code, code)


def make_environment(timezone: str, locale: str = DEFAULT_LOCALE) -> Environment:
    """Return the template environment in `locale`; every template is HTML and every value is escaped."""
    env = Environment(
        loader=PackageLoader("gateway.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install(env, locale, timezone)
    tr = translations(locale)

    def period(line: RetentionLine) -> str:
        if line.trigger is None and line.duration is None and not line.action:
            return tr.gettext(line.period)
        return describe_retention(line.action, line.duration, line.trigger, tr.gettext)

    env.filters["reason_text"] = reason_text
    env.filters["period"] = period
    return env


class Renderer:
    """The officer pages' templates, one environment per language (Dutch unless asked otherwise)."""

    def __init__(self, timezone: str) -> None:
        self._envs = {locale: make_environment(timezone, locale) for locale in LOCALES}

    def render(self, name: str, locale: str = DEFAULT_LOCALE, **context: Any) -> str:
        """Return the rendered template in `locale`."""
        return self._envs[locale_or_default(locale)].get_template(name).render(**context)
