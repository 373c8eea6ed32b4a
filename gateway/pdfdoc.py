"""The house style of the gateway's PDF documents (fpdf2): ragged-right text, no split words or commands.

Shared by the art. 15 report and the evidence documents. Text is set flush left (never justified);
a table's columns are widened until their longest word fits, so fpdf2 never has to cut a word; a
heading moves to the next page when the lines after it would not fit (keep with next); a command is
set on one line in a monospace font small enough to fit, and where even that cannot fit it wraps at
spaces only. The creation date is the document's own date (the gateway's clock, simulated in a
rehearsal), never the wall-clock time of rendering.

Not PDF/A: PDF/A requires every font to be embedded and an ICC output intent; the documents use the
PDF core fonts (Helvetica, Courier), which are not embedded, because the package ships no font files.
fpdf2 can embed a TrueType font and add an output intent, but it does not write the structure tree a
tagged (accessible) PDF needs for text and tables, so the documents would still fail PDF/UA. The
signed JSON and the HTML rendition are the accessible forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fpdf import FPDF
from fpdf.fonts import FontFace

# The core PDF fonts cover Latin-1 only; map the typographic characters in use and replace anything
# else visibly, so that no fact is silently dropped and no font file is needed.
_PLAIN = str.maketrans(
    {"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."}
)
HEAD = FontFace(emphasis="BOLD", fill_color=(232, 236, 242))
BOLD = FontFace(emphasis="BOLD")
FONT = "Helvetica"
MONO = "Courier"
_MIN_SIZE = 6.0
_KEEP_WITH_NEXT_MM = 22.0  # a heading needs its own line and about three lines after it on the same page


def plain(value: object, empty: str = "") -> str:
    """Return `value` as Latin-1 text the core fonts can show."""
    text = empty if value is None or value == "" else str(value)
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


class DocumentPDF(FPDF):
    """An A4 document with a footer line: its title and the page number."""

    footer_text = ""
    page_word = "page"

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, plain(f"{self.footer_text} - {self.page_word} {self.page_no()}/{{nb}}"), align="C")


def new_document(title: str, author: str, created: datetime, lang: str, footer: str, page_word: str) -> DocumentPDF:
    """Return an A4 document with its metadata set and its first page added."""
    pdf = DocumentPDF(format="A4")
    pdf.footer_text = footer
    pdf.page_word = page_word
    pdf.set_title(plain(title))
    pdf.set_author(plain(author))
    pdf.set_lang(lang)
    pdf.set_creation_date(created)
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(16, 16, 16)
    pdf.add_page()
    return pdf


class Writer:
    """Headings, paragraphs, fact lists, tables and commands in the house style."""

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf

    def heading(self, text: str, size: int = 12) -> None:
        """Write a heading, on a new page when it would otherwise end up alone at the foot of this one."""
        pdf = self.pdf
        if pdf.will_page_break(_KEEP_WITH_NEXT_MM + size * 0.6):
            pdf.add_page()
        else:
            pdf.ln(3)
        pdf.set_font(FONT, "B", size)
        pdf.multi_cell(0, 7, plain(text), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FONT, size=9)

    def para(self, text: str, size: float = 9, style: str = "") -> None:
        """Write a paragraph, flush left."""
        self.pdf.set_font(FONT, style, size)
        self.pdf.multi_cell(0, size * 0.55, plain(text), align="L", new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(FONT, size=9)

    def command(self, text: str) -> None:
        """Write a command to type: one line in a monospace font that fits, else wrapped at spaces only."""
        pdf = self.pdf
        size = 9.0
        pdf.set_font(MONO, size=size)
        while pdf.get_string_width(plain(text)) > pdf.epw - 2 and size > _MIN_SIZE:
            size -= 0.5
            pdf.set_font(MONO, size=size)
        lines: list[str] = []
        for word in plain(text).split(" "):
            if lines and pdf.get_string_width(f"{lines[-1]} {word}") <= pdf.epw - 2:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
        pdf.set_fill_color(243, 245, 248)
        for line in lines:
            pdf.cell(0, size * 0.5, line, fill=True, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
        pdf.set_font(FONT, size=9)

    def facts(self, rows: Sequence[tuple[str, object]], label_width: float = 45) -> None:
        """Write label-value pairs as a borderless two-column table."""
        self.pdf.set_font(FONT, size=9)
        widths = self._fit((label_width, self.pdf.epw - label_width), rows)
        with self.pdf.table(
            col_widths=widths, first_row_as_headings=False, borders_layout="NONE", text_align="LEFT"
        ) as table:
            for label, value in rows:
                row = table.row()
                row.cell(plain(label), style=BOLD)
                row.cell(plain(value, "-"))

    def table(self, head: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[float], empty: str) -> None:
        """Write a table with a heading row; columns widened so that no word is cut."""
        if not rows:
            self.para(empty)
            return
        self.pdf.set_font(FONT, size=8)
        fitted = self._fit(widths, [tuple(head), *(tuple(r) for r in rows)])
        with self.pdf.table(col_widths=fitted, headings_style=HEAD, text_align="LEFT") as table:
            header = table.row()
            for cell in head:
                header.cell(plain(cell))
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(plain(value, "-"))
        self.pdf.set_font(FONT, size=9)

    def _fit(self, widths: Sequence[float], rows: Sequence[Sequence[object]]) -> tuple[float, ...]:
        """Return column widths (summing to the text width) in which each column's longest word fits.

        The current font size is lowered (to 6 pt at least) when the words cannot all fit at this size.
        """
        pdf = self.pdf
        total = pdf.epw
        scale = total / sum(widths)
        wanted = [w * scale for w in widths]
        size = pdf.font_size_pt
        while True:
            need = [0.0] * len(wanted)
            pdf.set_font(FONT, "B", size)  # measured in bold: headings and labels are bold, and it is the wider
            for row in rows:
                for col, value in enumerate(row[: len(need)]):
                    for word in plain(value).split():
                        need[col] = max(need[col], pdf.get_string_width(word) + 2 * pdf.c_margin + 1.5)
            pdf.set_font(FONT, "", size)
            if sum(need) <= total or size <= _MIN_SIZE:
                break
            size -= 0.5
        out = [max(w, n) for w, n in zip(wanted, need, strict=True)]
        excess = sum(out) - total
        if excess > 0:
            slack = [o - n for o, n in zip(out, need, strict=True)]
            room = sum(s for s in slack if s > 0)
            if room > 0:
                out = [o - excess * s / room if s > 0 else o for o, s in zip(out, slack, strict=True)]
        return tuple(out)
