"""Reading a PDF back as a reader would: its lines of text, and whether the layout cut a word in two."""

from __future__ import annotations

import io
import itertools
import re

from pypdf import PdfReader

_WORD = r"[A-Za-zÀ-ÿ]"


def pdf_lines(data: bytes) -> list[str]:
    """Return the PDF's non-empty lines of text, stripped, in page order."""
    reader = PdfReader(io.BytesIO(data))
    return [line.strip() for page in reader.pages for line in page.extract_text().splitlines() if line.strip()]


def cut_words(lines: list[str], source: str) -> list[str]:
    """Return the words the layout cut at a line end ("head/tail").

    A cut word leaves its head at the end of one line and its tail, in lower case, at the start of the
    next; joined, they make a word that `source` (the facts the document shows) or the text itself holds.
    """
    known = set(re.findall(f"{_WORD}{{6,}}", source + " " + " ".join(lines)))
    cuts = []
    for above, below in itertools.pairwise(lines):
        head = re.search(f"({_WORD}+)$", above)
        tail = re.match(r"([a-zà-ÿ]+)", below)
        if head and tail and head[1] + tail[1] in known:
            cuts.append(f"{head[1]}/{tail[1]}")
    return cuts


def word_spacing(data: bytes) -> list[bytes]:
    """Return the non-zero word-spacing operators (`Tw`) in the PDF's pages: what justified text leaves."""
    reader = PdfReader(io.BytesIO(data))
    found: list[bytes] = []
    for page in reader.pages:
        contents = page.get_contents()
        if contents is not None:
            found += [m for m in re.findall(rb"(-?[0-9.]+) Tw", contents.get_data()) if float(m) != 0]
    return found
