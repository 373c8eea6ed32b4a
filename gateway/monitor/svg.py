"""Server-rendered SVG charts of published tables (no script): grouped bars and lines.

They draw only what the table publishes: a suppressed cell has no bar and breaks a line, and is marked
with a dash and the word "onderdrukt" in its title, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from gateway.monitor.disclosure import PublishedTable
from gateway.monitor.render import SUPPRESSED_MARK

COLOURS = ("#1f5f8b", "#c0504d", "#4f8b2e", "#8064a2", "#e08a1e", "#2e8b8b", "#7f7f7f")
_W, _H, _LEFT, _BOTTOM, _TOP = 640, 260, 48, 56, 16


def _scale(values: Sequence[int | None]) -> int:
    """Return the axis top: four whole steps of 1, 2 or 5 times a power of ten."""
    top = max((v for v in values if v is not None), default=0)
    power = 1
    while True:
        for factor in (1, 2, 5):
            if 4 * factor * power >= top:
                return 4 * factor * power
        power *= 10


def _frame(title: str, top: int, parts: list[str]) -> str:
    plot_h = _H - _BOTTOM - _TOP
    grid = []
    for i in range(5):
        value = top * i / 4
        y = _TOP + plot_h - plot_h * i / 4
        label = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
        grid.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - 8}" y2="{y:.1f}" stroke="#ddd"/>')
        grid.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'font-family="sans-serif" aria-label={quoteattr(title)}><title>{escape(title)}</title>'
        + "".join(grid)
        + "".join(parts)
        + "</svg>"
    )


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        x = _LEFT + i * 110
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<rect x="{x}" y="{_H - 16}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{_H - 7}" font-size="11">{escape(name)}</text>')
    return out


def bar_chart(table: PublishedTable, rows: Sequence[str], labels: dict[str, str], title: str) -> str:
    """Return grouped bars: per column of the table one bar per row in `rows` (a region or the total)."""
    cols = table.cols
    values = [table.value(r, c) for c in cols for r in rows]
    top = _scale(values)
    plot_h = _H - _BOTTOM - _TOP
    group_w = (_W - _LEFT - 8) / max(1, len(cols))
    bar_w = max(4.0, (group_w - 10) / max(1, len(rows)))
    parts: list[str] = []
    for ci, col in enumerate(cols):
        x0 = _LEFT + ci * group_w + 5
        for ri, row in enumerate(rows):
            value = table.value(row, col)
            x = x0 + ri * bar_w
            name = f"{labels.get(row, row)}, {col}"
            if value is None:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{_TOP + plot_h - 3:.1f}" text-anchor="middle" font-size="11">'
                    f"<title>{escape(name)}: onderdrukt</title>{SUPPRESSED_MARK}</text>"
                )
                continue
            h = plot_h * value / top if top else 0
            colour = COLOURS[ri % len(COLOURS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{_TOP + plot_h - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(name)}: {value}</title></rect>'
            )
        short = col if len(col) <= 18 else col[:17] + "…"
        parts.append(
            f'<text x="{x0 + (group_w - 10) / 2:.1f}" y="{_TOP + plot_h + 14}" text-anchor="middle" '
            f'font-size="11">{escape(short)}</text>'
        )
    parts += _legend([labels.get(r, r) for r in rows])
    return _frame(title, top, parts)


def line_chart(
    table: PublishedTable, rows: Sequence[str], labels: dict[str, str], col_labels: dict[str, str], title: str
) -> str:
    """Return one line per row over the table's columns (periods); a suppressed point breaks its line."""
    cols = table.cols
    top = _scale([table.value(r, c) for r in rows for c in cols])
    plot_h = _H - _BOTTOM - _TOP
    step = (_W - _LEFT - 24) / max(1, len(cols) - 1)
    parts: list[str] = []
    every = max(1, len(cols) // 8)
    for ci, col in enumerate(cols):
        if ci % every == 0 or ci == len(cols) - 1:
            x = _LEFT + 8 + ci * step
            parts.append(
                f'<text x="{x:.1f}" y="{_TOP + plot_h + 14}" text-anchor="middle" font-size="11">'
                f"{escape(col_labels.get(col, col))}</text>"
            )
    for ri, row in enumerate(rows):
        colour = COLOURS[ri % len(COLOURS)]
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        for ci, col in enumerate(cols):
            value = table.value(row, col)
            x = _LEFT + 8 + ci * step
            name = f"{labels.get(row, row)}, {col_labels.get(col, col)}"
            if value is None:
                segment = []
                segments.append(segment)
                parts.append(
                    f'<text x="{x:.1f}" y="{_TOP + plot_h - 3:.1f}" text-anchor="middle" font-size="11" '
                    f'fill="{colour}"><title>{escape(name)}: onderdrukt</title>{SUPPRESSED_MARK}</text>'
                )
                continue
            y = _TOP + plot_h - (plot_h * value / top if top else 0)
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(name)}: {value}</title>'
                "</circle>"
            )
        for points in segments:
            if len(points) > 1:
                parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    parts += _legend([labels.get(r, r) for r in rows])
    return _frame(title, top, parts)
