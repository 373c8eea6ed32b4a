"""PDF renditions of evidence documents (fpdf2): the same facts as the signed JSON, for print and archive.

In Dutch, in the house style of `gateway.pdfdoc` (ragged right, no cut words, the verify command whole,
headings kept with what follows). The PDF carries the signed JSON as an embedded file (`evidence.json`),
is dated by the document's own issue time, and is signed as a whole by the caller (a signature comment
after `%%EOF`, see `envelope.py`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gateway.audit.report import describe_retention
from gateway.evidence.envelope import SignedDocument
from gateway.i18n import DEFAULT_LOCALE, Moments, legal_article, translations
from gateway.pdfdoc import Writer, new_document


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class _Text:
    """Translation and Dutch times for one document."""

    def __init__(self, timezone: str, locale: str) -> None:
        self.gettext = translations(locale).gettext
        self.moments = Moments(timezone, locale)

    def when(self, value: str | None) -> str:
        moment = _moment(value)
        return self.moments.when(moment) if moment else "-"

    def end(self, value: str | None, now: str | None) -> str:
        """Return an end moment as "until <last second>; ended at <end>" (or "ends at" while it is ahead)."""
        moment, at = _moment(value), _moment(now)
        if moment is None:
            return "-"
        last = self.moments.long(moment - timedelta(seconds=1))
        if at is not None and moment <= at:
            return self.gettext("until %(last)s; ended at %(ended)s") % {
                "last": last,
                "ended": self.moments.long_minute(moment),
            }
        return self.gettext("until %(last)s; ends at %(ends)s") % {
            "last": last,
            "ends": self.moments.long_minute(moment),
        }

    def word(self, value: object) -> str:
        return self.gettext(str(value).replace("_", " ")) if value else "-"


def _revocation(w: Writer, t: _Text, d: dict[str, Any]) -> None:
    _ = t.gettext
    cov, end, rev = d["covenant"], d["end"], d["end"]["revocation"]
    w.heading(_("Revocation report: %(title)s") % {"title": cov["title"]}, 15)
    rows: list[tuple[str, object]] = [
        (_("Covenant"), cov["id"]),
        (_("How it ended"), _("Revoked early") if end["kind"] == "revoked" else _("Ended at its configured end")),
        (_("End moment"), f"{end['moment']} (UTC {end['moment_utc']})"),
        (_("Configured end"), t.end(cov["configured_end"], d["facts_as_of"])),
    ]
    if rev:
        rows += [
            (
                _("Revocation"),
                _("effective %(at)s; reason: %(reason)s")
                % {"at": t.when(rev["effective_at"]), "reason": rev["reason"]},
            ),
            (_("On whose authority"), rev["authority_reference"]),
            (
                _("Recorded by"),
                f"{rev['recorded_by']} ({rev['recorded_by_organisation']}), "
                + _("audit entry %(seq)s") % {"seq": rev["audit_seq"]},
            ),
        ]
    rows += [(_("Mandate decision"), cov["mandate_reference"]), (_("Regions"), ", ".join(cov["regions"]))]
    w.facts(rows)
    w.heading(_("What was in force until the end"))
    w.table(
        (_("Organisation"), _("Name"), _("GDPR role")),
        [(p["organisation"], p["name"], t.word(p["gdpr_role"])) for p in cov["parties"]],
        (40, 100, 38),
        "",
    )
    w.table(
        (_("Rule"), _("Purpose"), _("Recipients"), _("Categories"), _("Legal basis")),
        [
            (
                r["id"] + (" *" if r["applies_after_end_under_legal_hold"] else ""),
                r["purpose"],
                ", ".join(r["recipients"]),
                ", ".join(r["categories"]),
                legal_article(r["legal_basis"]),
            )
            for r in d["in_force_until_end"]["rules"]
        ],
        (38, 32, 36, 46, 26),
        _("(none)"),
    )
    w.table(
        (_("Mandate"), _("Reference"), _("Mandator"), _("Ends / withdrawn")),
        [
            (
                m["id"],
                m["reference"],
                m["mandator"],
                _("withdrawn from %(at)s (%(ref)s; %(reason)s)")
                % {
                    "at": t.when(m["withdrawal"]["effective_at"]),
                    "ref": m["withdrawal"]["authority_reference"],
                    "reason": m["withdrawal"]["reason"],
                }
                if m["withdrawal"]
                else (t.end(m["effective_end"], d["facts_as_of"]) if m["effective_end"] else _("open-ended")),
            )
            for m in d["in_force_until_end"]["mandates"]
        ],
        (36, 60, 30, 52),
        _("No mandate decision is recorded in the configuration for this covenant."),
    )
    w.heading(_("Clients disabled"))
    w.table(
        (_("Client"), _("Organisation"), _("Disabled at"), _("Reason")),
        [(c["client_id"], c["organisation"], t.when(c["disabled_at"]), c["reason"]) for c in d["clients_disabled"]],
        (44, 36, 38, 60),
        _(
            "No registered client was disabled for this covenant's end. Access under it is refused on every "
            "request from the end moment regardless of the client."
        ),
    )
    w.heading(_("Connectors to source systems"))
    w.table(
        (_("Source system"), _("Organisation"), _("Kind"), _("State")),
        [
            (
                c["source"],
                c["organisation"],
                c["kind"],
                _("paused since %(at)s") % {"at": t.when(c["paused_since"])}
                if c["paused"]
                else _("active for %(categories)s") % {"categories": ", ".join(c["still_serving"])},
            )
            for c in d.get("connectors", [])
        ],
        (44, 36, 20, 78),
        _("No source system serves under this covenant: its records were hosted."),
    )
    w.heading(_("Recipients notified to delete their copies"))
    acks = d["acknowledgements"]
    counted = _("Acknowledged: %(acked)s of %(total)s.") % {
        "acked": len(acks["acknowledged"]),
        "total": len(d["recipients_notified"]),
    }
    missing = (
        _("Missing acknowledgements: %(missing)s.") % {"missing": ", ".join(acks["missing"])}
        if acks["missing"]
        else _("Every recipient acknowledged.")
    )
    w.para(f"{counted} {missing}")
    rows_n = []
    for r in d["recipients_notified"]:
        delivery = (
            _("delivered") + f" {t.when(r['delivered_at'])}"
            if r["status"] == "delivered"
            else f"{t.word(r['status'])}: {r['last_error'] or ''}"
        )
        acked = "; ".join(
            f"{t.word(a['outcome'])} "
            + _("%(at)s by %(user)s") % {"at": t.when(a["acknowledged_at"]), "user": a["acting_user"]}
            for a in r["acknowledgements"]
        )
        rows_n.append((f"{r['name']} ({r['organisation']})", delivery, r["attempts"], acked or _("none")))
    w.table(
        (_("Recipient"), _("Delivery"), _("Attempts"), _("Acknowledgement")),
        rows_n,
        (50, 52, 16, 60),
        _("No deletion notice was queued for this covenant."),
    )
    a = d["attempts_after_end"]
    w.heading(_("Every attempt after the end"))
    verdict = (
        _("None was served under this covenant.")
        if a["none_served_under_this_covenant"]
        else _("%(n)s served under this covenant after its end.") % {"n": a["served_under_this_covenant"]}
    )
    summary = _(
        "%(total)s requests by the parties concerning its regions from the end on: %(denied)s denied, %(other)s "
        "served under another covenant, %(hold)s for a legal-hold procedure."
    ) % {
        "total": a["total"],
        "denied": a["denied"],
        "other": a["served_under_other_covenants"],
        "hold": a["for_legal_hold_procedure"],
    }
    w.para(f"{summary} {verdict}")
    w.table(
        (_("Entry"), _("Time"), _("Organisation"), _("Purpose"), _("Outcome"), _("Reason")),
        [
            (e["seq"], t.when(e["time"]), e["organisation"], e["purpose"], t.word(e["outcome"]), e["reason"])
            for e in a["entries"]
        ],
        (16, 32, 32, 32, 34, 32),
        _("(none)"),
    )
    w.heading(_("Legal holds kept, and why"))
    w.table(
        (_("Case reference"), _("Reason"), _("Region"), _("Categories kept"), _("Why the data is kept")),
        [
            (h["case_reference"], t.word(h["reason"]), h["region"], ", ".join(h["categories_kept"]), h["why_kept"])
            for h in d["legal_holds"]
        ],
        (34, 22, 22, 34, 66),
        _("No legal hold keeps data of participants in this covenant's regions."),
    )
    w.heading(_("The audit log at the end moment"))
    audit = d["audit"]
    w.para(_("Last entry before the end: %(seq)s.") % {"seq": audit["last_entry_before_end"]})
    for key, title in (
        ("checkpoint_at_end", _("Checkpoint at the end")),
        ("checkpoint_before_end", _("Last checkpoint before the end")),
        ("checkpoint_at_issue", _("Checkpoint at issue")),
    ):
        cp = audit[key]
        if cp is None:
            w.para(f"{title}: " + _("none signed") + ".")
        else:
            size = _("tree size %(size)s, signed %(at)s") % {"size": cp["tree_size"], "at": t.when(cp["signed_at"])}
            w.para(f"{title}: {size}, " + _("root") + f" {cp['root_hash']}")
            w.para(cp["signed_note"], size=7)


def _destruction(w: Writer, t: _Text, d: dict[str, Any]) -> None:
    _ = t.gettext
    w.heading("Vernietigingsverklaring", 15)
    w.para(_("Destruction record per %(basis)s.") % {"basis": d["legal_basis"]}, size=8)
    batch, period, totals = d["batch"], d["period_covered"], d["totals"]
    w.facts(
        [
            (
                _("What"),
                _(
                    "%(records)s records in %(count)s categories, of %(participants)s participants "
                    "(%(keys)s data keys destroyed)"
                )
                % {
                    "records": totals["records"],
                    "count": len(d["categories"]),
                    "participants": totals["participants"],
                    "keys": totals["data_keys_destroyed"],
                },
            ),
            (
                _("Period the records cover"),
                _("%(start)s to %(end)s") % {"start": t.when(period["from"]), "end": t.when(period["until"])},
            ),
            (_("How"), f"{d['method']}. {d['method_explained']}"),
            (
                _("When"),
                _("%(at)s (retention run as of %(as_of)s; status %(status)s)")
                % {
                    "at": t.when(batch["executed_at"]),
                    "as_of": t.when(batch["as_of"]),
                    "status": t.word(batch["status"]),
                },
            ),
            (_("By whose authority"), batch["authority"]),
            (_("Executed by"), batch["executed_by"]),
            (_("Run"), batch["id"]),
        ]
    )
    w.heading(_("Categories destroyed, and on which ground"))
    w.table(
        (_("Category"), _("Records"), _("Keys"), _("Period"), _("Ground")),
        [
            (
                f"{c['name']} ({c['category']})",
                c["records"],
                c["data_keys_destroyed"],
                f"{t.when(c['period']['from'])} - {t.when(c['period']['until'])}",
                f"{c['ground']['legal_source']}; "
                + _("rule")
                + f" {c['ground']['retention_rule']}: "
                + (
                    describe_retention("destroy", c["ground"]["duration"], c["ground"]["trigger"], _)
                    if c["ground"]["duration"]
                    else "-"
                )
                + (" (" + _("a suggestion, not law") + ")" if c["ground"]["suggestion"] else ""),
            )
            for c in d["categories"]
        ],
        (40, 16, 14, 44, 64),
        _("Nothing was destroyed in this run."),
    )
    w.heading(_("The database and its backups"))
    for sentence in d["backups"]["statements"]:
        w.para(sentence, size=8)
    if d["kept"]:
        w.heading(_("Kept, not destroyed, and why"))
        w.table(
            (_("Category"), _("Why kept"), _("Data keys"), _("Participants"), _("Next due")),
            [
                (k["category"], t.word(k["reason"]), k["data_keys"], k["participants"], t.when(k["next_due"]))
                for k in d["kept"]
            ],
            (40, 50, 20, 28, 40),
            "",
        )
    audit = d["audit"]
    w.heading(_("In the audit log"))
    w.para(
        _("Audit entries of the destructions: %(first)s to %(last)s.")
        % {"first": audit["first_entry"], "last": audit["last_entry"]}
    )
    if audit["checkpoint"]:
        w.para(audit["checkpoint"]["signed_note"], size=7)


def _title(d: dict[str, Any], _: Any) -> str:
    if d["type"] == "revocation_report":
        return str(_("Revocation report"))
    return "Laatste resultaatmeting" if d["type"] == "last_results_measurement" else "Vernietigingsverklaring"


def document_pdf(
    signed: SignedDocument, timezone: str, verify_hint: str, keys_url: str = "", locale: str = DEFAULT_LOCALE
) -> bytes:
    """Return the PDF rendition of a signed document (without its signature line)."""
    d = signed.document
    t = _Text(timezone, locale)
    _ = t.gettext
    issued = datetime.fromisoformat(d["issued_at"].replace("Z", "+00:00"))
    title = _title(d, _)
    footer = f"{title} {d['id']} (" + _("version") + f" {d['version']})"
    pdf = new_document(title, "lvv-exchange-gateway", issued, locale, footer, _("page"))
    w = Writer(pdf)
    if d.get("rehearsal"):
        w.para(_("REHEARSAL - produced on a copy of the database with a simulated clock; not evidence."), 11, "B")
    if d["type"] == "revocation_report":
        _revocation(w, t, d)
    elif d["type"] == "last_results_measurement":
        from gateway.monitor.pdf import measurement_section

        measurement_section(w, t.when, d)
    else:
        _destruction(w, t, d)
    w.heading(_("How to check this document"))
    w.para(
        _(
            "This PDF is signed with the gateway's evidence key %(kid)s; any changed character makes the check "
            "fail. It embeds the signed JSON document (evidence.json). Check it offline with the published keys:"
        )
        % {"kid": signed.kid}
    )
    w.command(verify_hint)
    if keys_url:
        w.para(_("The keys are published at %(url)s; save them as evidence-keys.json.") % {"url": keys_url}, size=8)
    w.para(
        _("Document %(id)s, issued %(at)s; SHA-256 %(sha)s.")
        % {"id": d["id"], "at": t.when(d["issued_at"]), "sha": signed.sha256},
        size=8,
    )
    w.para(_("Times are Dutch time (%(tz)s).") % {"tz": timezone}, size=8)
    pdf.embed_file(
        bytes=signed.file_bytes,
        basename="evidence.json",
        desc="The signed evidence document (lvv-gateway-evidence/1)",
        mime_type="application/json",
        creation_date=issued,
        modification_date=issued,
    )
    return bytes(pdf.output())
