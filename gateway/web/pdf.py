"""The subject access report as PDF (fpdf2): the same facts as the HTML and JSON, to send to the person."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import FontFace

from gateway.audit.report import SubjectAccessReport

# The built-in PDF fonts cover Latin-1 only; map the few typographic characters the config uses and
# replace anything else visibly, so that no fact is silently dropped and no font file is needed.
_PLAIN = str.maketrans(
    {"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."}
)
_HEAD = FontFace(emphasis="BOLD", fill_color=(232, 236, 242))


def _t(text: object) -> str:
    return str(text).translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


class _ReportPDF(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, _t(f"{self.footer_text} - page {self.page_no()}/{{nb}}"), align="C")


def report_pdf(report: SubjectAccessReport, timezone: str) -> bytes:
    """Return the report as a PDF document."""
    zone = ZoneInfo(timezone)

    def when(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""

    pdf = _ReportPDF(format="A4")
    pdf.footer_text = f"Subject access report, {report.issued_by_name}, {when(report.generated_at)}"
    pdf.set_title(_t("Subject access report (GDPR art. 15)"))
    pdf.set_author(_t(report.issued_by_name))
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(16, 16, 16)
    pdf.add_page()

    def heading(text: str, size: int = 13) -> None:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", size)
        pdf.multi_cell(0, 7, _t(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)

    def para(text: str, size: int = 9) -> None:
        pdf.set_font("Helvetica", size=size)
        pdf.multi_cell(0, 5, _t(text), new_x="LMARGIN", new_y="NEXT")

    heading("Subject access report (GDPR art. 15)", 16)
    facts = [
        ("Participant", f"{report.reference} (the reference {report.issued_by_name} uses)"),
        ("Issued by", report.issued_by_name),
        ("Date", f"{when(report.generated_at)} ({timezone})"),
        ("Scope", report.scope_text),
        ("Contact", report.controller_contact),
        ("Policy version", report.policy_version),
    ]
    if report.audit_seq:
        facts.append(("Recorded as", f"audit log entry {report.audit_seq}"))
    pdf.set_font("Helvetica", size=9)
    with pdf.table(col_widths=(30, 148), first_row_as_headings=False, borders_layout="NONE", text_align="LEFT") as t:
        for label, value in facts:
            row = t.row()
            row.cell(_t(label), style=FontFace(emphasis="BOLD"))
            row.cell(_t(value))

    heading("Who received your data, for which purpose, on which legal basis")
    if report.summary:
        with pdf.table(col_widths=(30, 26, 40, 42, 12, 28), headings_style=_HEAD, text_align="LEFT") as t:
            t.row([_t(h) for h in ("Organisation", "Purpose", "Categories", "Legal basis", "Times", "Period")])
            for summary in report.summary:
                bases = "\n".join(f"{b.term}: {b.text}" for b in summary.legal_bases)
                first, last = when(summary.first), when(summary.last)
                period = first if first == last else f"{first} to {last}"
                cells = (summary.organisation_name, summary.purpose_name, ", ".join(summary.categories), bases)
                t.row([*(_t(v) for v in cells), _t(summary.count), _t(period)])
    else:
        para("The log records no release of data about this participant.")

    if report.disclosures:
        heading("Every release, in order")
        para(
            "The log records the categories and fields each request was permitted to receive. Where no record "
            "existed in a category at that moment, nothing was sent for it."
        )
        with pdf.table(col_widths=(28, 40, 36, 60, 14), headings_style=_HEAD, text_align="LEFT") as t:
            t.row([_t(h) for h in ("When", "Organisation", "Purpose", "Categories (fields)", "Entry")])
            for d in report.disclosures:
                cats = (
                    "listed (pseudonym and region only)"
                    if d.operation == "list"
                    else "\n".join(f"{c.name} ({', '.join(c.fields)})" for c in d.categories)
                )
                t.row([_t(v) for v in (when(d.time), d.organisation_name, d.purpose_name, cats, d.audit_seq)])

    heading("How long your data is kept")
    with pdf.table(col_widths=(40, 60, 78), headings_style=_HEAD, text_align="LEFT") as t:
        t.row([_t(h) for h in ("Category", "Retention", "Legal source")])
        for line in report.retention:
            period = line.period + (f" ({line.duration})" if line.duration else "")
            if line.note:
                period += f"\n{line.note}"
            source = line.legal_source + ("\nSuggestion: a design choice, not law." if line.suggestion else "")
            t.row([_t(line.name), _t(period), _t(source)])

    heading("Where your data came from")
    if report.sources:
        with pdf.table(col_widths=(38, 60, 52, 28), headings_style=_HEAD, text_align="LEFT") as t:
            t.row([_t(h) for h in ("Category", "Source by the covenant (bronhouder)", "Provided by", "Last written")])
            for s in report.sources:
                t.row(
                    [
                        _t(s.name),
                        _t("; ".join(s.sources_by_config)),
                        _t("; ".join(s.provided_by)),
                        _t(when(s.last_written)),
                    ]
                )
    else:
        para("No categories to report.")
    pdf.ln(4)
    para(report.disclaimer, size=8)
    return bytes(pdf.output())
