"""The subject access report as PDF (fpdf2): the same facts as the HTML and JSON, to send to the person.

Dutch unless the person asks for English; times in one zone, said once.
"""

from __future__ import annotations

from gateway.audit.report import SubjectAccessReport, describe_retention
from gateway.i18n import DEFAULT_LOCALE, Moments, legal_basis_text, translations
from gateway.pdfdoc import Writer, new_document


def report_pdf(report: SubjectAccessReport, timezone: str, locale: str = DEFAULT_LOCALE) -> bytes:
    """Return the report as a PDF document in `locale`."""
    tr = translations(locale)
    _ = tr.gettext
    at = Moments(timezone, locale)
    title = _("Subject access report (GDPR art. 15)")
    pdf = new_document(
        title,
        report.issued_by_name,
        report.generated_at,
        locale,
        _("Subject access report") + f", {report.issued_by_name}, {at.when(report.generated_at)}",
        _("page"),
    )
    w = Writer(pdf)
    w.heading(title, 16)
    scope = (
        _("This report covers every organisation that received data about you through the gateway.")
        if report.complete
        else _(
            "This report covers the processing by %(org)s only; the municipality of your region answers for the "
            "exchange as a whole."
        )
        % {"org": report.issued_by_name}
    )
    facts = [
        (_("Participant"), f"{report.reference} " + _("(the reference %(org)s uses)") % {"org": report.issued_by_name}),
        (_("Issued by"), report.issued_by_name),
        (_("Date"), at.when(report.generated_at)),
        (_("Scope"), scope),
        (_("Contact"), report.controller_contact),
        (_("Policy version"), report.policy_version),
    ]
    if report.audit_seq:
        facts.append((_("Recorded as"), _("audit log entry %(seq)s") % {"seq": report.audit_seq}))
    w.facts(facts, 34)

    w.heading(_("Who received your data, for which purpose, on which legal basis"))
    w.table(
        (_("Organisation"), _("Purpose"), _("Categories"), _("Legal basis"), _("Times"), _("Period")),
        [
            (
                s.organisation_name,
                _(s.purpose_name),
                ", ".join(s.categories),
                "\n".join(legal_basis_text(b.term, b.text) for b in s.legal_bases),
                s.count,
                at.when(s.first) if s.first == s.last else f"{at.when(s.first)} - {at.when(s.last)}",
            )
            for s in report.summary
        ],
        (30, 26, 34, 50, 12, 26),
        _("The log records no release of data about this participant."),
    )

    if report.disclosures:
        w.heading(_("Every release, in order"))
        w.para(
            _(
                "The log records the categories and fields each request was permitted to receive. Where no record "
                "existed in a category at that moment, nothing was sent for it."
            )
        )
        w.table(
            (_("When"), _("Organisation"), _("Purpose"), _("Categories (fields)"), _("Log entry")),
            [
                (
                    at.when(d.time),
                    d.organisation_name,
                    _(d.purpose_name),
                    _("listed (pseudonym and region only)")
                    if d.operation == "list"
                    else "\n".join(f"{c.name} ({', '.join(c.fields)})" for c in d.categories),
                    d.audit_seq,
                )
                for d in report.disclosures
            ],
            (28, 38, 36, 62, 14),
            "",
        )

    w.heading(_("How long your data is kept"))
    rows = []
    for line in report.retention:
        period = (
            describe_retention(line.action, line.duration, line.trigger, tr.gettext)
            if line.trigger or line.duration or line.action
            else _(line.period)
        )
        period += f" ({line.duration})" if line.duration else ""
        period += f"\n{line.note}" if line.note else ""
        source = line.legal_source + ("\n" + _("Suggestion: a design choice, not law.") if line.suggestion else "")
        rows.append((_(line.name), period, source))
    w.table((_("Category"), _("Retention"), _("Legal source")), rows, (40, 60, 78), "")

    w.heading(_("Where your data came from"))
    w.table(
        (_("Category"), _("Source by the covenant (bronhouder)"), _("Provided by"), _("Last written")),
        [
            (s.name, "; ".join(_(x) for x in s.sources_by_config), "; ".join(s.provided_by), at.when(s.last_written))
            for s in report.sources
        ],
        (38, 60, 52, 28),
        _("No categories to report."),
    )
    pdf.ln(4)
    w.para(_("Times are Dutch time (%(tz)s).") % {"tz": timezone}, size=8)
    w.para(report.disclaimer, size=8)
    return bytes(pdf.output())
