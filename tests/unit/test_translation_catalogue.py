"""The Dutch catalogue is complete: every message the pages, documents and marked code use is translated."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from gateway.i18n import LOCALES, catalogue_path, extracted_messages, legal_article, translations

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|\{(\w+)\}")


def _catalogue(locale: str) -> dict[str, object]:
    with catalogue_path(locale).open("rb") as source:
        return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in read_po(source, locale=locale) if m.id}


def _names(text: str) -> set[str]:
    return {a or b for a, b in _PLACEHOLDER.findall(text)}


def test_the_templates_and_the_code_use_messages_at_all() -> None:
    messages = extracted_messages()
    assert "Sign in as privacy officer" in messages  # a page
    assert "Revocation report: %(title)s" in messages  # a document
    assert "Burst of denials" in messages  # marked in code with N_


def test_every_message_in_use_has_a_dutch_translation() -> None:
    dutch = _catalogue("nl")
    missing = []
    for key, message in extracted_messages().items():
        entry = dutch.get(key)
        strings = () if entry is None else entry.string  # type: ignore[attr-defined]
        strings = (strings,) if isinstance(strings, str) else tuple(strings)
        if entry is None or entry.fuzzy or not strings or not all(strings):  # type: ignore[attr-defined]
            missing.append(key if isinstance(message, str) else message[0])
    assert missing == [], f"{len(missing)} messages without a Dutch translation (run: python -m gateway.i18n)"


@pytest.mark.parametrize("locale", LOCALES)
def test_a_translation_keeps_the_placeholders_of_its_message(locale: str) -> None:
    for key, entry in _catalogue(locale).items():
        ids = (entry.id,) if isinstance(entry.id, str) else tuple(entry.id)  # type: ignore[attr-defined]
        strings = (entry.string,) if isinstance(entry.string, str) else tuple(entry.string)  # type: ignore[attr-defined]
        for text in strings:
            if text:
                assert _names(text) == _names(ids[-1]), key


def test_the_catalogue_is_compiled_on_first_use_and_speaks_dutch() -> None:
    assert translations("nl").gettext("Sign in") == "Aanmelden"
    assert translations("en").gettext("Sign in") == "Sign in"


def test_a_legal_basis_is_shown_as_the_article_a_jurist_cites() -> None:
    assert legal_article("eu-gdpr:A6-1-e") == "AVG art. 6 lid 1 sub e"
    assert legal_article("eu-gdpr:A9-2-g") == "AVG art. 9 lid 2 sub g"
    assert legal_article("eu-gdpr:A10") == "AVG art. 10"
    assert legal_article("nl-vw2000:107") == "Vw 2000 art. 107"
