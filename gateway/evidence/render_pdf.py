"""PDF renditions of evidence documents (fpdf2): the same facts as the signed JSON, for print and archive.

The PDF carries the signed JSON as an embedded file (`evidence.json`), and is signed as a whole by the
caller (a signature comment after `%%EOF`, see `envelope.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import FontFace

from gateway.evidence.envelope import SignedDocument

# The built-in PDF fonts cover Latin-1 only; map the typographic characters in use and replace anything
# else visibly, so that no fact is silently dropped and no font file is needed.
_PLAIN = str.maketrans(
    {"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."}
)
_HEAD = FontFace(emphasis="BOLD", fill_color=(232, 236, 242))
_BOLD = FontFace(emphasis="BOLD")


def _t(value: object) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


class _EvidencePDF(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, _t(f"{self.footer_text} - page {self.page_no()}/{{nb}}"), align="C")


class _Writer:
    def __init__(self, pdf: FPDF, timezone: str) -> None:
        self.pdf = pdf
        self.zone = ZoneInfo(timezone)

    def when(self, value: str | None) -> str:
        if not value:
            return "-"
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def heading(self, text: str, size: int = 12) -> None:
        self.pdf.ln(3)
        self.pdf.set_font("Helvetica", "B", size)
        self.pdf.multi_cell(0, 7, _t(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", size=9)

    def para(self, text: str, size: int = 9, style: str = "") -> None:
        self.pdf.set_font("Helvetica", style, size)
        self.pdf.multi_cell(0, 5, _t(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", size=9)

    def facts(self, rows: Sequence[tuple[str, object]]) -> None:
        self.pdf.set_font("Helvetica", size=9)
        with self.pdf.table(
            col_widths=(45, 133), first_row_as_headings=False, borders_layout="NONE", text_align="LEFT"
        ) as table:
            for label, value in rows:
                row = table.row()
                row.cell(_t(label), style=_BOLD)
                row.cell(_t(value))

    def table(self, head: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[int]) -> None:
        if not rows:
            self.para("(none)")
            return
        self.pdf.set_font("Helvetica", size=8)
        with self.pdf.table(col_widths=tuple(widths), headings_style=_HEAD, text_align="LEFT") as table:
            header = table.row()
            for cell in head:
                header.cell(_t(cell))
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(_t(value))
        self.pdf.set_font("Helvetica", size=9)


def _revocation(w: _Writer, d: dict[str, Any]) -> None:
    cov, end, rev = d["covenant"], d["end"], d["end"]["revocation"]
    w.heading(f"Revocation report: {cov['title']}", 15)
    rows: list[tuple[str, object]] = [
        ("Covenant", cov["id"]),
        ("How it ended", "revoked early" if end["kind"] == "revoked" else "ended at its configured end"),
        ("End moment", f"{end['moment']} (UTC {end['moment_utc']})"),
        ("Configured end", w.when(cov["configured_end"])),
    ]
    if rev:
        rows += [
            ("Revocation", f"effective {w.when(rev['effective_at'])}; reason: {rev['reason']}"),
            ("On whose authority", rev["authority_reference"]),
            ("Recorded by", f"{rev['recorded_by']} ({rev['recorded_by_organisation']}), entry {rev['audit_seq']}"),
        ]
    rows += [("Mandate decision", cov["mandate_reference"]), ("Regions", ", ".join(cov["regions"]))]
    w.facts(rows)
    w.heading("What was in force until the end")
    w.table(
        ("Organisation", "Name", "GDPR role"),
        [(p["organisation"], p["name"], p["gdpr_role"]) for p in cov["parties"]],
        (40, 100, 38),
    )
    w.table(
        ("Rule", "Purpose", "Recipients", "Categories", "Legal basis"),
        [
            (
                r["id"] + (" *" if r["applies_after_end_under_legal_hold"] else ""),
                r["purpose"],
                ", ".join(r["recipients"]),
                ", ".join(r["categories"]),
                r["legal_basis"],
            )
            for r in d["in_force_until_end"]["rules"]
        ],
        (38, 32, 36, 46, 26),
    )
    w.table(
        ("Mandate", "Reference", "Mandator", "Ends / withdrawn"),
        [
            (
                m["id"],
                m["reference"],
                m["mandator"],
                f"withdrawn {w.when(m['withdrawal']['effective_at'])} ({m['withdrawal']['authority_reference']})"
                if m["withdrawal"]
                else (f"ends {w.when(m['effective_end'])}" if m["effective_end"] else "open-ended"),
            )
            for m in d["in_force_until_end"]["mandates"]
        ],
        (36, 60, 30, 52),
    )
    w.heading("Clients disabled")
    if d["clients_disabled"]:
        w.table(
            ("Client", "Organisation", "Disabled at", "Reason"),
            [(c["client_id"], c["organisation"], w.when(c["disabled_at"]), c["reason"]) for c in d["clients_disabled"]],
            (44, 36, 38, 60),
        )
    else:
        w.para("No registered client was disabled for this covenant's end.")
    w.heading("Connectors to source systems")
    if d.get("connectors"):
        w.table(
            ("Source system", "Organisation", "Kind", "State"),
            [
                (
                    c["source"],
                    c["organisation"],
                    c["kind"],
                    f"paused since {w.when(c['paused_since'])}"
                    if c["paused"]
                    else f"active for {', '.join(c['still_serving'])}",
                )
                for c in d["connectors"]
            ],
            (44, 36, 20, 78),
        )
    else:
        w.para("No source system serves under this covenant: its records were hosted.")
    w.heading("Recipients notified to delete their copies")
    acks = d["acknowledgements"]
    missing = f"Missing acknowledgements: {', '.join(acks['missing'])}." if acks["missing"] else "None missing."
    w.para(f"Acknowledged: {len(acks['acknowledged'])} of {len(d['recipients_notified'])}. {missing}")
    rows_n = []
    for r in d["recipients_notified"]:
        delivery = (
            f"delivered {w.when(r['delivered_at'])}"
            if r["status"] == "delivered"
            else f"{r['status']}: {r['last_error'] or ''}"
        )
        acked = "; ".join(
            f"{a['outcome']} {w.when(a['acknowledged_at'])} by {a['acting_user']}" for a in r["acknowledgements"]
        )
        rows_n.append((f"{r['name']} ({r['organisation']})", delivery, r["attempts"], acked or "none"))
    w.table(("Recipient", "Delivery", "Attempts", "Acknowledgement"), rows_n, (50, 52, 16, 60))
    a = d["attempts_after_end"]
    w.heading("Every attempt after the end")
    verdict = (
        "None was served under this covenant."
        if a["none_served_under_this_covenant"]
        else f"{a['served_under_this_covenant']} served under this covenant after its end."
    )
    w.para(
        f"{a['total']} requests by the parties concerning its regions from the end on: {a['denied']} denied, "
        f"{a['served_under_other_covenants']} served under another covenant, {a['for_legal_hold_procedure']} for a "
        f"legal-hold procedure. {verdict}"
    )
    w.table(
        ("Entry", "Time", "Organisation", "Purpose", "Outcome", "Reason"),
        [
            (e["seq"], w.when(e["time"]), e["organisation"], e["purpose"], e["outcome"], e["reason"])
            for e in a["entries"]
        ],
        (16, 32, 32, 32, 34, 32),
    )
    w.heading("Legal holds kept, and why")
    w.table(
        ("Case reference", "Reason", "Region", "Categories kept", "Why kept"),
        [
            (h["case_reference"], h["reason"], h["region"], ", ".join(h["categories_kept"]), h["why_kept"])
            for h in d["legal_holds"]
        ],
        (34, 22, 22, 34, 66),
    )
    w.heading("The audit log at the end moment")
    audit = d["audit"]
    w.para(f"Last entry before the end: {audit['last_entry_before_end']}.")
    for label in ("checkpoint_at_end", "checkpoint_before_end", "checkpoint_at_issue"):
        cp = audit[label]
        title = label.replace("_", " ").capitalize()
        if cp is None:
            w.para(f"{title}: none signed.")
        else:
            w.para(f"{title}: tree size {cp['tree_size']}, signed {w.when(cp['signed_at'])}, root {cp['root_hash']}")
            w.para(cp["signed_note"], size=7)


def _destruction(w: _Writer, d: dict[str, Any]) -> None:
    w.heading("Vernietigingsverklaring (destruction record)", 15)
    w.para(f"Per {d['legal_basis']}.", size=8)
    batch, period, totals = d["batch"], d["period_covered"], d["totals"]
    w.facts(
        [
            (
                "What",
                f"{totals['records']} records in {len(d['categories'])} categories, of {totals['participants']} "
                f"participants ({totals['data_keys_destroyed']} data keys destroyed)",
            ),
            ("Period covered", f"{w.when(period['from'])} to {w.when(period['until'])}"),
            ("How", f"{d['method']}. {d['method_explained']}"),
            ("When", f"{w.when(batch['executed_at'])} (run as of {w.when(batch['as_of'])}, {batch['status']})"),
            ("By whose authority", batch["authority"]),
            ("Executed by", batch["executed_by"]),
            ("Run", batch["id"]),
        ]
    )
    w.heading("Categories destroyed, and on which ground")
    w.table(
        ("Category", "Records", "Keys", "Period", "Ground"),
        [
            (
                f"{c['name']} ({c['category']})",
                c["records"],
                c["data_keys_destroyed"],
                f"{w.when(c['period']['from'])} - {w.when(c['period']['until'])}",
                f"{c['ground']['legal_source']}; rule {c['ground']['retention_rule']}: "
                f"{c['ground']['duration'] or ''} after {c['ground']['trigger']}"
                + (" (suggestion, not law)" if c["ground"]["suggestion"] else ""),
            )
            for c in d["categories"]
        ],
        (40, 16, 14, 44, 64),
    )
    w.heading("The database and its backups")
    for sentence in d["backups"]["statements"]:
        w.para(sentence, size=8)
    if d["kept"]:
        w.heading("Kept, not destroyed, and why")
        w.table(
            ("Category", "Why kept", "Keys", "Participants", "Next due"),
            [(k["category"], k["reason"], k["data_keys"], k["participants"], w.when(k["next_due"])) for k in d["kept"]],
            (40, 50, 20, 28, 40),
        )
    audit = d["audit"]
    w.heading("In the audit log")
    w.para(f"Audit entries {audit['first_entry']} to {audit['last_entry']}.")
    if audit["checkpoint"]:
        w.para(audit["checkpoint"]["signed_note"], size=7)


_TITLES = {
    "revocation_report": "Revocation report",
    "destruction_record": "Vernietigingsverklaring",
    "last_results_measurement": "Laatste resultaatmeting",
}


def document_pdf(signed: SignedDocument, timezone: str, verify_hint: str) -> bytes:
    """Return the PDF rendition of a signed document (without its signature line)."""
    d = signed.document
    issued = datetime.fromisoformat(d["issued_at"].replace("Z", "+00:00"))
    pdf = _EvidencePDF(format="A4")
    title = _TITLES[d["type"]]
    pdf.footer_text = f"{title} {d['id']} (version {d['version']})"
    pdf.set_title(_t(title))
    pdf.set_author("lvv-exchange-gateway")
    pdf.set_creation_date(issued)
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(16, 16, 16)
    pdf.add_page()
    w = _Writer(pdf, timezone)
    if d.get("rehearsal"):
        w.para("REHEARSAL - produced on a copy of the database with a simulated clock; not evidence.", 11, "B")
    if d["type"] == "revocation_report":
        _revocation(w, d)
    elif d["type"] == "last_results_measurement":
        from gateway.monitor.pdf import measurement_section

        measurement_section(w, d)
    else:
        _destruction(w, d)
    w.heading("How to check this document")
    w.para(
        f"This PDF is signed with the gateway's evidence key {signed.kid}; any changed character makes the check "
        f"fail. It embeds the signed JSON document (evidence.json). Check it offline with the published keys:"
    )
    w.para(verify_hint, size=8)
    w.para(f"Document {d['id']}, issued {w.when(d['issued_at'])} ({timezone}); SHA-256 {signed.sha256}.", size=8)
    pdf.embed_file(
        bytes=signed.file_bytes,
        basename="evidence.json",
        desc="The signed evidence document (lvv-gateway-evidence/1)",
        mime_type="application/json",
        creation_date=issued,
        modification_date=issued,
    )
    return bytes(pdf.output())
