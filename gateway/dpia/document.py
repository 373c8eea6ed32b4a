"""A small document model, so that the Markdown and the HTML of the DPIA say exactly the same thing.

Text is a sequence of spans: plain strings (escaped by each renderer), code, strong and emphasis.
A `Human` block is text people write; generation keeps whatever they wrote (see `human.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.dpia.lang import _, current


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Em:
    text: str


Span = str | Code | Strong | Em
Text = tuple[Span, ...]


def text(*spans: Span) -> Text:
    """Return a text made of these spans."""
    return tuple(spans)


@dataclass(frozen=True)
class Para:
    text: Text


@dataclass(frozen=True)
class Bullets:
    items: tuple[Text, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Text, ...], ...]


@dataclass(frozen=True)
class Human:
    """A place for human judgement; `placeholder` is what it says until someone writes there."""

    id: str
    placeholder: str


Block = Para | Bullets | Table | Human


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Block, ...] = ()
    children: tuple[Section, ...] = ()


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    facts: tuple[tuple[str, Text], ...]
    sections: tuple[Section, ...]
    lang: str = "nl"


def para(*spans: Span) -> Para:
    """Return a paragraph of these spans."""
    return Para(tuple(spans))


def table(headers: tuple[str, ...], rows: list[tuple[Text | str, ...]]) -> Table:
    """Return a table; plain-string cells become one-span texts."""
    return Table(headers, tuple(tuple((c,) if isinstance(c, str) else c for c in row) for row in rows))


def bullets(items: list[Text | str]) -> Bullets:
    """Return a bullet list; plain-string items become one-span texts."""
    return Bullets(tuple((i,) if isinstance(i, str) else i for i in items))


def to_assess(what: str) -> str:
    """Return the placeholder of a human section: clearly marked as still to be assessed ("Te beoordelen")."""
    return "**" + _("To be assessed.") + "** " + what


def document(title: str, subtitle: str, facts: tuple[tuple[str, Text], ...], sections: tuple[Section, ...]) -> Document:
    """Return a document in the language it is being written in."""
    return Document(title, subtitle, facts, sections, current())


def human_ids(sections: tuple[Section, ...]) -> list[str]:
    """Return the ids of every human block, in document order."""
    out: list[str] = []
    for s in sections:
        out += [b.id for b in s.blocks if isinstance(b, Human)]
        out += human_ids(s.children)
    return out
