"""Render a `Document` as one self-contained HTML page (inline CSS, no scripts, no external assets)."""

from __future__ import annotations

import re
from html import escape

from gateway.dpia.document import Block, Bullets, Code, Document, Em, Human, Para, Section, Span, Strong, Table, Text
from gateway.dpia.human import close_marker, open_marker
from gateway.dpia.lang import _
from gateway.dpia.risk_model import level_word

CSS = """
:root { --ink: #1b1f24; --line: #d0d7de; --accent: #1f4e79; --human: #fff8e1; --humanline: #e0a800; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--ink); }
header { background: var(--accent); color: #fff; padding: 1.5rem 2rem; }
header h1 { margin: 0 0 .25rem; font-size: 1.6rem; }
header p { margin: 0; opacity: .9; }
.layout { display: grid; grid-template-columns: 17rem 1fr; gap: 2rem; padding: 1.5rem 2rem; }
nav { position: sticky; top: 1rem; align-self: start; font-size: .85rem; max-height: 95vh; overflow: auto; }
nav ul { list-style: none; padding-left: .8rem; margin: .2rem 0; }
nav > ul { padding-left: 0; }
nav a { color: var(--accent); text-decoration: none; }
main { min-width: 0; max-width: 72rem; overflow-x: auto; }
h2 { border-bottom: 2px solid var(--accent); padding-bottom: .2rem; margin-top: 2.2rem; color: var(--accent); }
h3 { margin-top: 1.6rem; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0 1rem; font-size: .86rem; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
tr:nth-child(even) td { background: #fafbfc; }
code { font: .85em ui-monospace, Menlo, Consolas, monospace; background: #f0f3f6; padding: 0 .2em; }
code { border-radius: 3px; }
table.facts { width: auto; }
table.facts th { white-space: nowrap; }
.human { background: var(--human); border-left: 5px solid var(--humanline); padding: .4rem 1rem; margin: .8rem 0; }
.human-label { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: #7a5c00; margin: .2rem 0; }
.level-high { background: #ffd7d5 !important; font-weight: 600; }
.level-medium { background: #fff1c2 !important; }
.level-low { background: #e6f4ea !important; }
a.anchor { font-size: .8em; color: var(--line); text-decoration: none; }
h2:hover a.anchor, h3:hover a.anchor, h4:hover a.anchor, a.anchor:focus { color: var(--accent); }
section { scroll-margin-top: 1rem; }
@media (max-width: 60rem) { .layout { display: block; } }
@media (max-width: 60rem) { nav { position: static; max-height: none; margin-bottom: 1.5rem; } }
@media print { nav { display: none; } .layout { display: block; } header { color: #000; background: none; } }
"""


def breakable(value: str) -> str:
    """Return escaped text with line-break opportunities after '_', '/', '.', ':' and '#' (long ids and names)."""
    return re.sub(r"([_/.:#])(?=\w)", r"\1<wbr>", escape(value))


def _span(span: Span) -> str:
    if isinstance(span, Code):
        return f"<code>{breakable(span.text)}</code>"
    if isinstance(span, Strong):
        return f"<strong>{escape(span.text)}</strong>"
    if isinstance(span, Em):
        return f"<em>{escape(span.text)}</em>"
    return escape(span)


def inline(value: Text) -> str:
    """Return a text as HTML."""
    return "".join(_span(s) for s in value)


_BULLET = re.compile(r"^\s*[-*] ")


def _human_inline(line: str) -> str:
    parts = re.split(r"(`[^`]+`)", line)
    out = []
    for part in parts:
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{escape(part[1:-1])}</code>")
            continue
        html = escape(part)
        html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
        html = re.sub(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])", r"<em>\1</em>", html)
        out.append(re.sub(r"\\([\\`*\[\]<|])", r"\1", html))
    return "".join(out)


def human_html(markdown: str) -> str:
    """Return people's Markdown as HTML: paragraphs, bullet lists, headings and emphasis (nothing else)."""
    out: list[str] = []
    for chunk in re.split(r"\n\s*\n", markdown.strip()):
        lines = chunk.splitlines()
        if lines and all(_BULLET.match(line) for line in lines):
            items = "".join(f"<li>{_human_inline(_BULLET.sub('', line))}</li>" for line in lines)
            out.append(f"<ul>{items}</ul>")
        elif len(lines) == 1 and lines[0].startswith("#"):
            out.append(f"<h4>{_human_inline(lines[0].lstrip('#').strip())}</h4>")
        elif chunk.strip():
            out.append(f"<p>{'<br>'.join(_human_inline(line) for line in lines)}</p>")
    return "\n".join(out)


def _cell(cell: Text) -> str:
    # A risk level ("high", "medium", "low" in bold, in the document's language) is coloured.
    only = cell[0] if len(cell) == 1 else None
    levels = {level_word(value): value for value in ("high", "medium", "low")}
    if isinstance(only, Strong) and only.text in levels:
        return f'<td class="level-{levels[only.text]}">{inline(cell)}</td>'
    return f"<td>{inline(cell)}</td>"


def _block(block: Block, human: dict[str, str]) -> str:
    if isinstance(block, Para):
        return f"<p>{inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{breakable(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Human):
        content = human.get(block.id, block.placeholder)
        label = escape(_("Human judgement")) + " · " + escape(_("kept across regenerations"))
        return (
            f'<div class="human" id="human-{block.id}"><p class="human-label">{label} · <code>{block.id}</code></p>\n'
            f"{open_marker(block.id)}\n{human_html(content)}\n{close_marker()}</div>"
        )
    raise TypeError(block)


def _section(section: Section, depth: int, human: dict[str, str]) -> str:
    link = escape(_("Link to this section"))
    anchor = f'<a class="anchor" href="#{section.id}" aria-label="{link}">#</a>'
    body = [f'<section id="{section.id}"><h{depth}>{escape(section.title)} {anchor}</h{depth}>']
    body += [_block(b, human) for b in section.blocks]
    body += [_section(c, depth + 1, human) for c in section.children]
    body.append("</section>")
    return "\n".join(body)


def _toc(sections: tuple[Section, ...]) -> str:
    items = [
        f'<li><a href="#{s.id}">{escape(s.title)}</a>{_toc(s.children) if s.children else ""}</li>' for s in sections
    ]
    return "<ul>" + "".join(items) + "</ul>"


def render_html(document: Document, human: dict[str, str]) -> str:
    """Return the document as a self-contained HTML page, with people's text in its human sections."""
    facts = "".join(f"<tr><th>{escape(k)}</th><td>{inline(v)}</td></tr>" for k, v in document.facts)
    sections = "\n".join(_section(s, 2, human) for s in document.sections)
    contents = escape(_("Table of contents"))
    return f"""<!DOCTYPE html>
<html lang="{document.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(document.title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{escape(document.title)}</h1><p>{escape(document.subtitle)}</p></header>
<div class="layout">
<nav aria-label="{contents}"><strong>{contents}</strong>{_toc(document.sections)}</nav>
<main>
<table class="facts">{facts}</table>
{sections}
</main>
</div>
</body>
</html>
"""
