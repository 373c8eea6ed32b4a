"""Presenting published tables: rows as a reader sees them (Dutch labels, a dash for suppressed), for the
page, the CSV download, and the PDF of the last results measurement."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.monitor.disclosure import TOTAL, PublishedTable

SUPPRESSED_MARK = "\u2013"  # an en dash
CSV_SUPPRESSED = "x"  # the CBS convention for a figure that is kept secret


def region_labels(names: Mapping[str, str]) -> dict[str, str]:
    """Return display labels of regions, with the programme total."""
    return {**names, TOTAL: "Totaal programma"}


def grid(
    table: PublishedTable, row_labels: Mapping[str, str], col_labels: Mapping[str, str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Return the header and the rows of a table as text, totals last, suppressed cells as a dash."""
    cols = (*table.cols, TOTAL)
    head = ["Regio", *((col_labels or {}).get(c, c) for c in table.cols), "Totaal"]
    rows = [r for r in (*table.rows, TOTAL) if (r, TOTAL) in table.cells]
    out = []
    for r in rows:
        values = [table.cells[(r, c)] for c in cols]
        out.append([row_labels.get(r, r), *(SUPPRESSED_MARK if v is None else str(v) for v in values)])
    return head, out


def _safe(cell: str) -> str:
    # A spreadsheet must not read a label as a formula.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def table_csv(table: PublishedTable, row_labels: Mapping[str, str], col_labels: Mapping[str, str] | None = None) -> str:
    """Return a published table as CSV (suppressed: x); never a number the table does not publish."""
    head, rows = grid(table, row_labels, col_labels)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_safe(h) for h in head])
    for row in rows:
        writer.writerow([_safe(row[0]), *(CSV_SUPPRESSED if v == SUPPRESSED_MARK else v for v in row[1:])])
    return buffer.getvalue()


def table_from_json(data: Mapping[str, Any], table_id: str = "") -> PublishedTable:
    """Return a published table from its JSON form in a signed document."""
    cells = {(c["row"], c["column"]): c["value"] for c in data["cells"]}
    return PublishedTable(table_id, tuple(data["rows"]), tuple(data["columns"]), cells)


def document_rows(data: Mapping[str, Any], row_labels: Mapping[str, str]) -> tuple[list[str], list[list[str]]]:
    """Return header and rows of a table in a signed document, for its HTML and PDF renditions."""
    return grid(table_from_json(data), row_labels)


def widths(columns: int, total: int = 178) -> Sequence[int]:
    """Return PDF column widths: a wider first column, the rest shared."""
    first = 34
    rest = max(8, (total - first) // max(1, columns - 1))
    return (first, *([rest] * (columns - 1)))
