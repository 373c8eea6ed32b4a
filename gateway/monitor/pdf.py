"""The PDF section of the last results measurement (laatste resultaatmeting)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.monitor.render import document_rows, region_labels, widths


def measurement_section(w: Any, when: Callable[[str | None], str], d: dict[str, Any]) -> None:
    """Write the measurement's facts and tables with the evidence PDF writer `w` (`when` renders a moment)."""
    regions = region_labels({})
    comp = d["computation"]
    w.heading(f"Laatste resultaatmeting: {d['title']}", 14)
    w.facts(
        [
            ("Uitgegeven", when(d["issued_at"])),
            ("Configuratie", d["issuer"]["configuration"]),
            ("Beleidsversie", d["issuer"]["policy_version"]),
            ("Monitorversie", d["monitor_version"]),
            ("Aangevraagd door", d["issuer"]["requested_by"]),
            ("Audit-entry", comp["audit_seq"]),
            (
                "Checkpoint",
                "-"
                if comp["checkpoint"] is None
                else f"boom {comp['checkpoint']['tree_size']}, root {comp['checkpoint']['root_hash']}",
            ),
            (
                "Voor vernietiging",
                "ja: nog geen sleutel van getelde gegevens vernietigd"
                if comp["taken_before_destruction"]
                else f"nee: {comp['data_keys_destroyed_before']} sleutels van getelde gegevens al vernietigd",
            ),
        ]
    )
    disc = d["disclosure"]
    w.heading("Onthullingsbeheersing")
    w.para(
        f"{disc['explanation']} Drempel: {disc['threshold']}; afronding: "
        f"{disc['rounding'] or 'geen'}; onderdrukte cellen: {disc['suppressed_cells']}. Methode: {disc['method']}."
    )
    series = d["series"]
    w.heading(series["name"])
    w.para(series["definition"])
    head, rows = document_rows(series["table"], regions)
    head = [head[0], *(series["period_labels"].get(c, c) for c in head[1:-1]), head[-1]]
    _tables(w, head, rows)
    for ind in d["indicators"]:
        w.heading(ind["name"])
        w.para(f"{ind['definition']} (geteld uit {ind['counted_from']})")
        head, rows = document_rows(ind["table"], regions)
        _tables(w, head, rows)
    if comp["checkpoint"] is not None:
        w.heading("Checkpoint van het logboek")
        w.para(comp["checkpoint"]["signed_note"], size=7)


def _tables(w: Any, head: list[str], rows: list[list[str]], per_page: int = 9) -> None:
    # Long period series are split into column blocks that fit the page width.
    inner = len(head) - 2
    if inner <= per_page:
        w.table(head, rows, widths(len(head)), "-")
        return
    for start in range(0, inner, per_page):
        cols = list(range(1, 1 + inner))[start : start + per_page]
        last = start + per_page >= inner
        pick = [0, *cols, *([len(head) - 1] if last else [])]
        w.table([head[i] for i in pick], [[r[i] for i in pick] for r in rows], widths(len(pick)), "-")
