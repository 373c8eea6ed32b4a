"""The PDF house style: a heading never ends a page alone, and a command is never cut."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from gateway.pdfdoc import Writer, new_document

MOMENT = datetime(2025, 1, 1, 9, 30, tzinfo=UTC)


def _document() -> tuple[Writer, object]:
    pdf = new_document("Titel", "Auteur", MOMENT, "nl", "Voettekst", "pagina")
    return Writer(pdf), pdf


def _pages(pdf: object) -> list[str]:
    data = bytes(pdf.output())  # type: ignore[attr-defined]
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def test_a_heading_near_the_foot_of_a_page_moves_to_the_next_with_its_text() -> None:
    w, pdf = _document()
    while pdf.get_y() < pdf.page_break_trigger - 18:  # type: ignore[attr-defined]
        w.para("Een regel tekst die de pagina vult.")
    w.heading("Kop die niet alleen mag staan")
    w.para("De eerste alinea na de kop.")
    pages = _pages(pdf)
    assert "Kop die niet alleen mag staan" not in pages[0]
    assert "Kop die niet alleen mag staan" in pages[1]
    assert "De eerste alinea na de kop." in pages[1]


def test_a_heading_with_room_below_it_stays_on_the_page() -> None:
    w, pdf = _document()
    w.para("Een korte alinea.")
    w.heading("Kop")
    assert len(_pages(pdf)) == 1


def test_a_long_command_is_one_line_in_a_smaller_font_and_never_cut_inside_a_word() -> None:
    w, pdf = _document()
    command = "gateway verify destruction-record-0f8e6a52-9d3c-4b7e-a1f2-3c4d5e6f7a8b-v12.pdf --keys evidence-keys.json"
    longer = " ".join(["gateway verify"] + [f"argument-{n:02d}" for n in range(30)])
    w.command(command)
    w.command(longer)  # too long for one line even at the smallest size: wrapped at spaces only
    text = _pages(pdf)[0]
    assert command in [line.strip() for line in text.splitlines()]
    for n in range(30):
        assert f"argument-{n:02d}" in text
