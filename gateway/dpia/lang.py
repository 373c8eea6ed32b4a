"""The language of the generated documents: Dutch, unless an English rendition is asked for.

Messages are the English text, translated through the project's catalogue (`gateway.i18n`); `{name}`
placeholders are filled after translation. The language is one choice per set of documents, made once
where they are rendered (`speaking`); a context variable carries it to the builders, so that every
builder does not take the same extra argument only to hand it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from gateway.i18n import DEFAULT_LOCALE, LOCALES, N_, gettext

__all__ = ["LOCALES", "N_", "_", "current", "speaking", "tr", "written"]

_LOCALE: ContextVar[str] = ContextVar("dpia_locale", default=DEFAULT_LOCALE)


def current() -> str:
    """Return the language the documents are being written in."""
    return _LOCALE.get()


@contextmanager
def speaking(locale: str) -> Iterator[None]:
    """Write the documents built inside this block in `locale`."""
    if locale not in LOCALES:
        raise ValueError(f"unknown language {locale!r}: one of {', '.join(LOCALES)}")
    token = _LOCALE.set(locale)
    try:
        yield
    finally:
        _LOCALE.reset(token)


def _(message: str, /, **values: object) -> str:
    """Return a literal message in the current language, with its placeholders filled."""
    text = gettext(_LOCALE.get(), message)
    return text.format(**values) if values else text


def tr(message: str) -> str:
    """Return a message kept in a variable (marked with `N_` where it is defined) in the current language."""
    return gettext(_LOCALE.get(), message) if message else message


def written(dutch: str, english: str | None) -> str:
    """Return a text of the configuration in the current language: its English twin when one is given."""
    return english if current() == "en" and english else dutch
