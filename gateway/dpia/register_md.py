"""The processing register as a readable document, made from the same data as `register.json`."""

from __future__ import annotations

from typing import Any

from gateway.dpia.document import Code, Document, Section, Text, para, table, text


def _basis_cell(bases: list[dict[str, Any]]) -> Text:
    spans: list[str | Code] = []
    for i, b in enumerate(bases):
        spans += ["; " if i else "", f"{b['scope']}: ", Code(b["term"])]
    return tuple(spans)


def _sources_cell(categories: list[dict[str, Any]]) -> str:
    """Return where each category's records live: its source systems (kind), or the hosted store."""
    parts = [
        f"{c['id']}: " + ", ".join(f"{s['id']} ({s['kind']})" for s in c.get("sourceSystems", ())) for c in categories
    ]
    return "; ".join(parts) or "none"


def _activity(entry: dict[str, Any], art30: dict[str, Any]) -> Section:
    valid = f"{entry['validFrom']} to {entry['validUntil']}" if entry["validFrom"] else "no covenant (no rule)"
    rows: list[tuple[Text | str, ...]] = [
        ("Processing activity", text(Code(entry["id"]))),
        ("Version", text(Code(entry["versionId"]), " (", Code(entry["versionUri"]), ")")),
        ("In force under its covenants", valid),
        (f"(a) {art30['a']['field']}", entry["controllers"]["summary"]),
        (f"(b) {art30['b']['field']}", text(entry["purpose"]["summary"], " DPV: ", Code(entry["purpose"]["dpv"]))),
        ("(b) legal bases", _basis_cell(entry["legalBasis"])),
        ("(c) categories of data subjects", entry["dataSubjects"]["summary"]),
        ("(c) categories of personal data", entry["personalData"]["summary"]),
        ("Source of each category", _sources_cell(entry["personalData"]["categories"])),
        (f"(d) {art30['d']['field']}", entry["recipients"]["summary"]),
        (f"(e) {art30['e']['field']}", entry["thirdCountryTransfers"]["summary"]),
        (f"(f) {art30['f']['field']}", entry["retention"]["summary"]),
        (f"(g) {art30['g']['field']}", entry["measures"]["summary"]),
        ("Processing operations (DPV)", ", ".join(entry["processingOperations"]) or "none"),
        ("Rules", ", ".join(entry["rules"]) or "none"),
    ]
    return Section(
        f"activity-{entry['purposeId']}",
        f"{entry['name']} ({entry['purposeId']})",
        (para(entry["description"]), table(("Field", "Content"), rows)),
    )


def build_register_document(register: dict[str, Any]) -> Document:
    """Return the register (as built by `build_register`) as a document to render."""
    meta = register["register"]
    art30 = register["art30Fields"]
    own: list[tuple[Text | str, ...]] = [
        (
            r["appliesTo"],
            r["inWords"],
            r.get("trigger", ""),
            r.get("legalSource", ""),
            "suggestion" if r.get("suggestion") else ("missing" if r.get("missing") else "law / selection list"),
        )
        for r in register["gatewayRecords"]
    ]
    measures: list[tuple[Text | str, ...]] = [
        (text(Code(m["id"])), m["measure"], m["description"], ", ".join(m["provedBy"])) for m in register["measures"]
    ]
    return Document(
        title=f"Processing register (GDPR art. 30): {meta['title']}",
        subtitle=f"Generated from the configuration '{meta['config']}'; machine-readable twin: register.json",
        facts=(
            ("Configuration", text(Code(meta["config"]))),
            ("Policy version", text(Code(meta["policyVersion"]))),
            ("Status", text(meta["status"])),
        ),
        sections=(
            Section(
                "about",
                "About this register",
                (
                    para(
                        "One entry per processing activity (a purpose of the configuration) with every field of GDPR "
                        "art. 30(1). Each activity has a version id that changes with every relevant change of its "
                        "facts; an audit entry records the policy version and the processing activity, and "
                        "versions.json maps them to the version in force."
                    ),
                    para(meta["disclaimer"]),
                ),
            ),
            *(_activity(e, art30) for e in register["processingActivities"]),
            Section(
                "own-records",
                "Records the gateway keeps about its own working",
                (table(("Record", "Retention", "Trigger", "Legal source", "Status"), own),),
            ),
            Section(
                "measures", "Technical measures", (table(("ID", "Measure", "What it does", "Proved by"), measures),)
            ),
        ),
    )
