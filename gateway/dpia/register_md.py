"""The processing register as a readable document, made from the same data as `register.json`."""

from __future__ import annotations

from typing import Any

from gateway.dpia.document import Code, Document, Section, Text, document, para, table, text
from gateway.dpia.facts import trigger_label
from gateway.dpia.lang import _


def _basis_cell(bases: list[dict[str, Any]]) -> Text:
    spans: list[str | Code] = []
    for i, b in enumerate(bases):
        spans += ["; " if i else "", f"{b['scope']}: ", Code(b["term"])]
    return tuple(spans)


def _system(system: dict[str, Any]) -> str:
    """Return a source system as 'cvs-amsterdam (rest)', or the hosted store by its name."""
    return str(system["name"]) if system["kind"] == "hosted" else f"{system['id']} ({system['kind']})"


def _sources_cell(categories: list[dict[str, Any]]) -> str:
    """Return where each category's records live: its source systems (kind), or the hosted store."""
    parts = [f"{c['id']}: " + ", ".join(_system(s) for s in c.get("sourceSystems", ())) for c in categories]
    return "; ".join(parts) or _("none")


def _art30(letter: str, field: str) -> str:
    """Return the label of an art. 30(1) field as a jurist cites it (Dutch: art. 30 lid 1 sub a)."""
    return _("Art. 30(1)({letter}): {field}", letter=letter, field=field)


def _activity(entry: dict[str, Any], art30: dict[str, Any]) -> Section:
    valid = (
        _("{start} to {end}", start=entry["validFrom"], end=entry["validUntil"])
        if entry["validFrom"]
        else _("no covenant (no rule)")
    )
    rows: list[tuple[Text | str, ...]] = [
        (_("Processing activity"), text(Code(entry["id"]))),
        (_("Version"), text(Code(entry["versionId"]), " (", Code(entry["versionUri"]), ")")),
        (_("In force under its covenants"), valid),
        (_art30("a", art30["a"]["field"]), entry["controllers"]["summary"]),
        (_art30("b", art30["b"]["field"]), text(entry["purpose"]["summary"], " DPV: ", Code(entry["purpose"]["dpv"]))),
        (_art30("b", _("legal bases")), _basis_cell(entry["legalBasis"])),
        (_art30("c", _("categories of data subjects")), entry["dataSubjects"]["summary"]),
        (_art30("c", _("categories of personal data")), entry["personalData"]["summary"]),
        (_("Source of each category"), _sources_cell(entry["personalData"]["categories"])),
        (_art30("d", art30["d"]["field"]), entry["recipients"]["summary"]),
        (_art30("e", art30["e"]["field"]), entry["thirdCountryTransfers"]["summary"]),
        (_art30("f", art30["f"]["field"]), entry["retention"]["summary"]),
        (_art30("g", art30["g"]["field"]), entry["measures"]["summary"]),
        (_("Processing operations (DPV)"), ", ".join(entry["processingOperations"]) or _("none")),
        (_("Rules"), ", ".join(entry["rules"]) or _("none")),
    ]
    return Section(
        f"activity-{entry['purposeId']}",
        f"{entry['name']} ({entry['purposeId']})",
        (para(entry["description"]), table((_("Field"), _("Content")), rows)),
    )


def build_register_document(register: dict[str, Any], twin: str = "register.json") -> Document:
    """Return the register (as built by `build_register`) as a document to render."""
    meta = register["register"]
    art30 = register["art30Fields"]
    own: list[tuple[Text | str, ...]] = [
        (
            r["appliesTo"],
            r["inWords"],
            trigger_label(r["trigger"]) if r.get("trigger") else "",
            r.get("legalSource", ""),
            _("suggestion")
            if r.get("suggestion")
            else (_("missing") if r.get("missing") else _("law / selection list")),
        )
        for r in register["gatewayRecords"]
    ]
    measures: list[tuple[Text | str, ...]] = [
        (text(Code(m["id"])), m["measure"], m["description"], ", ".join(m["provedBy"])) for m in register["measures"]
    ]
    return document(
        title=_("Processing register (GDPR art. 30): {title}", title=meta["title"]),
        subtitle=_(
            "Generated from the configuration '{name}'; machine-readable twin: {file}",
            name=meta["config"],
            file=twin,
        ),
        facts=(
            (_("Configuration"), text(Code(meta["config"]))),
            (_("Policy version"), text(Code(meta["policyVersion"]))),
            (_("Status"), text(meta["status"])),
        ),
        sections=(
            Section(
                "about",
                _("About this register"),
                (
                    para(
                        _(
                            "One entry per processing activity (a purpose of the configuration) with every field of "
                            "GDPR art. 30(1). Each activity has a version id that changes with every relevant change "
                            "of its facts; an audit entry records the policy version and the processing activity, "
                            "and versions.json maps them to the version in force."
                        )
                    ),
                    para(meta["disclaimer"]),
                ),
            ),
            *(_activity(e, art30) for e in register["processingActivities"]),
            Section(
                "own-records",
                _("Records the gateway keeps about its own working"),
                (table((_("Record"), _("Retention"), _("Trigger"), _("Legal source"), _("Status")), own),),
            ),
            Section(
                "measures",
                _("Technical measures"),
                (table(("ID", _("Measure"), _("What it does"), _("Proved by")), measures),),
            ),
        ),
    )
