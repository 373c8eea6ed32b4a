"""Render a `Document` as Markdown (GitHub flavour: pipe tables, HTML comments for human sections)."""

from __future__ import annotations

import re

from gateway.dpia.document import Block, Bullets, Code, Document, Em, Human, Para, Section, Span, Strong, Table, Text
from gateway.dpia.human import close_marker, open_marker

_SPECIAL = re.compile(r"([\\`*\[\]<|])")


def escape(plain: str) -> str:
    """Return plain text with Markdown's special characters escaped."""
    return _SPECIAL.sub(r"\\\1", plain)


def _span(span: Span) -> str:
    if isinstance(span, Code):
        return f"`{span.text}`"
    if isinstance(span, Strong):
        return f"**{escape(span.text)}**"
    if isinstance(span, Em):
        return f"*{escape(span.text)}*"
    return escape(span)


def inline(value: Text) -> str:
    """Return a text as one line of Markdown."""
    return "".join(_span(s) for s in value).replace("\n", " ")


def _block(block: Block, human: dict[str, str]) -> str:
    if isinstance(block, Para):
        return inline(block.text)
    if isinstance(block, Bullets):
        return "\n".join(f"- {inline(item)}" for item in block.items)
    if isinstance(block, Table):
        head = "| " + " | ".join(escape(h) for h in block.headers) + " |"
        rule = "|" + "|".join("---" for _ in block.headers) + "|"
        rows = ["| " + " | ".join(inline(c) for c in row) + " |" for row in block.rows]
        return "\n".join([head, rule, *rows])
    if isinstance(block, Human):
        content = human.get(block.id, block.placeholder)
        return f"{open_marker(block.id)}\n{content}\n{close_marker()}"
    raise TypeError(block)


def _section(section: Section, depth: int, human: dict[str, str]) -> list[str]:
    out = [f"{'#' * depth} {escape(section.title)}"]
    out += [_block(b, human) for b in section.blocks]
    for child in section.children:
        out += _section(child, depth + 1, human)
    return out


def render_markdown(document: Document, human: dict[str, str]) -> str:
    """Return the document as Markdown, with people's text in its human sections."""
    parts = [f"# {escape(document.title)}", f"*{escape(document.subtitle)}*"]
    parts.append("\n".join(["| | |", "|---|---|", *(f"| {escape(k)} | {inline(v)} |" for k, v in document.facts)]))
    for section in document.sections:
        parts += _section(section, 2, human)
    return "\n\n".join(parts) + "\n"
