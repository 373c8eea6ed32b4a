"""Translations for the pages and documents people read: Dutch first, English on request (gettext, Babel).

Message ids are the English text; `gateway/locale/<lang>/LC_MESSAGES/messages.po` is the catalogue
source. It is compiled in memory on first use (Babel's own compiler), so a fresh clone needs no build
step and no binary .mo file is kept beside its source. `N_` marks a string in Python code for the
catalogue without translating it there; the page or document translates it when it renders.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

if TYPE_CHECKING:
    from jinja2 import Environment

DEFAULT_LOCALE = "nl"
LOCALES = ("nl", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_ARTICLE = re.compile(r"^eu-gdpr:A(?P<art>\d+)(?:-(?P<lid>\d+)(?:-(?P<sub>[a-z]))?)?$")
_NATIONAL = {"nl-wpg": "Wpg", "nl-uavg": "UAVG", "nl-vw2000": "Vw 2000", "nl-awb": "Awb"}
# Day-first in Dutch (dd-mm-jjjj), ISO order in English; the zone is said once per page, not per time.
_MOMENT = {"nl": "dd-MM-yyyy HH:mm:ss", "en": "yyyy-MM-dd HH:mm:ss"}
_DAY = {"nl": "dd-MM-yyyy", "en": "yyyy-MM-dd"}
_LONG = {"nl": "d MMMM y HH:mm:ss", "en": "d MMMM y HH:mm:ss"}
_CATALOGUE_DATE = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))
_LONG_MINUTE = {"nl": "d MMMM y HH:mm", "en": "d MMMM y HH:mm"}


def N_(message: str) -> str:
    """Return `message` unchanged; marks it for the catalogue."""
    return message


def locale_or_default(value: str | None) -> str:
    """Return `value` when it names a locale the gateway has, else Dutch."""
    return value if value in LOCALES else DEFAULT_LOCALE


def catalogue_path(locale: str) -> Path:
    """Return the .po file of `locale`."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> Translations:
    """Return the compiled catalogue of `locale` (compiled from its .po once per process)."""
    with catalogue_path(locale).open("rb") as source:
        catalog = read_po(source, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


def gettext(locale: str, message: str) -> str:
    """Return `message` in `locale`."""
    return translations(locale).gettext(message)


def legal_article(term: str) -> str:
    """Return the article a DPV legal-basis term stands for, as a Dutch jurist cites it (AVG art. 6 lid 1 sub e)."""
    m = _ARTICLE.match(term)
    if m:
        text = f"AVG art. {m['art']}"
        if m["lid"]:
            text += f" lid {m['lid']}"
        if m["sub"]:
            text += f" sub {m['sub']}"
        return text
    law, _, article = term.partition(":")
    if law in _NATIONAL and article:
        return f"{_NATIONAL[law]} art. {article}"
    return term


def legal_basis_text(term: str, text: str | None = None) -> str:
    """Return the article and, when known, what it says: "AVG art. 6 lid 1 sub e — ..."."""
    article = legal_article(term)
    return f"{article} — {text}" if text else article


class Moments:
    """Times in one zone and one locale's notation."""

    def __init__(self, timezone: str, locale: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.timezone = timezone
        self.locale = locale

    def _fmt(self, moment: datetime | None, pattern: str) -> str:
        if moment is None:
            return ""
        return format_datetime(moment, pattern, tzinfo=self.zone, locale=self.locale)

    def when(self, moment: datetime | None) -> str:
        """Return date and time to the second (31-12-2024 23:59:59)."""
        return self._fmt(moment, _MOMENT[self.locale])

    def day(self, moment: datetime | None) -> str:
        """Return the date alone (31-12-2024)."""
        return self._fmt(moment, _DAY[self.locale])

    def long(self, moment: datetime | None) -> str:
        """Return the date written out with the time to the second (31 december 2024 23:59:59)."""
        return self._fmt(moment, _LONG[self.locale])

    def long_minute(self, moment: datetime | None) -> str:
        """Return the date written out with the time to the minute (1 januari 2025 00:00)."""
        return self._fmt(moment, _LONG_MINUTE[self.locale])


def install(env: Environment, locale: str, timezone: str) -> Environment:
    """Add gettext (`_`, `{% trans %}`, `ngettext`), Dutch or English times and legal-basis filters to `env`."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    moments = Moments(timezone, locale)
    env.filters["when"] = moments.when
    env.filters["day"] = moments.day
    env.filters["long"] = moments.long
    env.filters["long_minute"] = moments.long_minute
    env.filters["article"] = legal_article
    # `_()` marks its result safe (it is catalogue text); values from data are translated with `|tr`,
    # whose result is escaped like any other value.
    env.filters["tr"] = lambda value: translations(locale).gettext(str(value)) if value else ""
    env.globals["tz"] = timezone
    env.globals["lang"] = locale
    return env


Message = str | tuple[str, str]


def extracted_messages() -> dict[str, Message]:
    """Return every message the templates and the marked Python strings use, by msgid (plurals as pairs)."""
    from babel.messages.extract import extract_from_dir

    from gateway.policies.decision import REASON_TEXT

    root = Path(__file__).resolve().parent
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}, "**.py": {}}
    keywords = {"N_": None, "_": None, "gettext": None, "ngettext": (1, 2)}
    found: dict[str, Message] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(str(root), method_map, options, keywords):
        if isinstance(message, tuple):
            singular, plural = message[0], message[1]
            if singular and plural:
                found[singular] = (singular, plural)
        elif message:
            found.setdefault(message, message)
    for text in REASON_TEXT.values():
        found.setdefault(text, text)
    return found


def update_catalogues() -> dict[str, int]:
    """Merge the extracted messages into every locale's .po (translations kept); return the untranslated counts."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    messages = extracted_messages()
    missing: dict[str, int] = {}
    for locale in LOCALES:
        path = catalogue_path(locale)
        old: dict[str, Any] = {}
        if path.exists():
            with path.open("rb") as source:
                old = {m.id if isinstance(m.id, str) else m.id[0]: m.string for m in read_po(source) if m.id}
        catalog = Catalog(
            locale=locale,
            project="lvv-exchange-gateway",
            version="1",
            copyright_holder="LVV exchange gateway",
            creation_date=_CATALOGUE_DATE,  # fixed, so that regenerating an unchanged catalogue changes nothing
            revision_date=_CATALOGUE_DATE,
            fuzzy=False,
        )
        for key in sorted(messages):
            message = messages[key]
            catalog.add(message, old.get(key) or ("", "") if isinstance(message, tuple) else old.get(key) or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            write_po(out, catalog, width=0, omit_header=False, no_location=True, sort_output=True)
        if locale != "en":  # English msgids are the English text; an empty entry falls back to them
            missing[locale] = sum(1 for m in catalog if m.id and not _translated(m.string))
    translations.cache_clear()
    return missing


def _translated(string: object) -> bool:
    if isinstance(string, tuple | list):
        return all(bool(s) for s in string)
    return bool(string)


if __name__ == "__main__":
    print(update_catalogues())
