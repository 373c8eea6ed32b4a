"""Oversight and aftercare activities in the register and the DPIA (from `oversight.yaml`).

They are processing activities like the purposes of the exchange: log review, art. 15, evidence,
legal holds, notices, rehearsals. What they process is the audit log and the gateway's own records,
never a participant's record contents; how long each outlives the exchange is its aftercare.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from gateway.dpia.document import Code, Section, Text, para, table, text
from gateway.dpia.durations import in_words
from gateway.dpia.facts import basis_text
from gateway.dpia.lang import _, tr, written
from gateway.dpia.measures import MEASURES
from gateway.dpia.vocab import DATA_SUBJECT, DATA_SUBJECT_NAME, LEGAL_BASIS_CLASS
from gateway.policies.compiled import compile_policy
from gateway.policies.model import OversightAction, OversightActivity, PolicyConfig


def _aftercare_words(activity: OversightActivity) -> str:
    care = activity.aftercare
    period = "" if care.period == "P0D" else f"{in_words(care.period)}"
    if care.after_retention:
        if period:
            return _(
                "until the last retention period of the data shared under the covenant has run out, then {period} more",
                period=period,
            )
        return _("until the last retention period of the data shared under the covenant has run out")
    return _("{period} after the covenant's end", period=period) if period else _("ends with the covenant")


def _window(config: PolicyConfig, activity: OversightActivity) -> tuple[str | None, str | None]:
    policy = compile_policy(config)
    windows = policy.oversight[activity.id].windows.values()
    if not windows:
        return None, None
    zone = ZoneInfo("Europe/Amsterdam")
    start = datetime.fromtimestamp(min(w[0] for w in windows), zone)
    end = datetime.fromtimestamp(max(w[1] for w in windows) - 1, zone)
    return start.isoformat(), end.isoformat()


def oversight_facts(config: PolicyConfig, activity: OversightActivity) -> dict[str, Any]:
    """Return the facts whose change makes a new version of an oversight activity."""
    return {"activity": activity.model_dump(mode="json"), "window": _window(config, activity)}


def oversight_version(config: PolicyConfig, activity: OversightActivity) -> str:
    """Return the version id of one oversight activity: 16 hex digits of the SHA-256 of its facts."""
    canonical = orjson.dumps(oversight_facts(config, activity), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def _served(config: PolicyConfig, activity: OversightActivity) -> list[dict[str, Any]]:
    kinds = {k.value for k in activity.recipient.kinds}
    return [
        {
            "entity": o.id,
            "name": o.name,
            "kind": o.kind.value,
            "roles": [r for r in activity.recipient.roles if r in o.roles],
        }
        for o in config.organisations
        if (o.id in activity.recipient.organisations or o.kind.value in kinds)
        and any(r in o.roles for r in activity.recipient.roles)
    ]


_COUNTING = {OversightAction.MONITOR_VIEW, OversightAction.MONITOR_MEASURE}


def _personal_data_words(activity: OversightActivity) -> str:
    if _COUNTING & set(activity.actions):
        # The monitor reads the fields its indicators count from, inside the gateway; only counts leave.
        return _(
            "Inside the gateway only: the fields the monitor's indicators count from (monitor.yaml) and each "
            "participant's region and registration date; what leaves are counts per region and period with small "
            "cells suppressed (docs/monitor.md), never a record or a pseudonym. Audit log entries of each "
            "computation."
        )
    return _(
        "Audit log entries and the gateway's own records (who, what categories, why, when); "
        "never the contents of a participant's record."
    )


def oversight_entry(
    config: PolicyConfig, activity: OversightActivity, record_retention: dict[str, Any]
) -> dict[str, Any]:
    """Return the register entry of one oversight activity, in the shape of an exchange activity."""
    version = oversight_version(config, activity)
    valid_from, valid_until = _window(config, activity)
    served = _served(config, activity)
    actions = [a.value for a in activity.actions]
    return {
        "id": activity.processing_activity_id,
        "purposeId": activity.id,
        "kind": "oversight",
        "versionId": version,
        "versionUri": f"{activity.processing_activity_id}#{version}",
        "name": activity.name,
        "description": written(activity.description, activity.description_en),
        "validFrom": valid_from,
        "validUntil": valid_until,
        "aftercare": {**activity.aftercare.model_dump(mode="json"), "inWords": _aftercare_words(activity)},
        "aggregateOnly": False,
        "controllers": {
            "summary": _("Each organisation for its own oversight; the gateway's operator for the log.")
            + " "
            + _("Contact (DPO / privacy): {contact}.", contact=config.meta.controller_contact),
            "controllers": [],
            "dpoContact": config.meta.controller_contact,
        },
        "purpose": {
            "summary": f"{activity.name}: {written(activity.description, activity.description_en)}",
            "dpv": activity.dpv_purpose,
        },
        "legalBasis": [
            {
                "term": activity.legal_basis.dpv,
                "dpvClass": list(LEGAL_BASIS_CLASS.get(activity.legal_basis.dpv, ())),
                "text": basis_text(activity.legal_basis),
                "scope": _("oversight activity (art. 6)"),
            }
        ],
        "dataSubjects": {
            "summary": _("Participants (as named in the audit log, by reference only) and the partners' acting staff."),
            "categories": [{**DATA_SUBJECT, "name": tr(DATA_SUBJECT_NAME)}],
        },
        "personalData": {"summary": _personal_data_words(activity), "categories": []},
        "recipients": {
            "summary": "; ".join(f"{r['name']} ({', '.join(r['roles'])})" for r in served) or _("None."),
            "recipients": served,
        },
        "thirdCountryTransfers": {
            "summary": _(
                "None: the configuration defines no transfer to a third country or international organisation."
            ),
            "transfers": [],
        },
        "retention": {
            "summary": _("Audit log: {retention}.", retention=record_retention.get("phrase") or _("no retention rule")),
            "rules": [record_retention],
        },
        "measures": {
            "summary": _(
                "Decided by the same gate as the exchange and logged before anything is shown (measures {measures}).",
                measures=", ".join(m.id for m in MEASURES),
            ),
            "measures": [m.id for m in MEASURES],
        },
        "operations": actions,
        "processingOperations": ["dpv:Consult", "dpv:Use"],
        "rules": [activity.id],
        "covenants": [{"id": c} for c in activity.covenants] or [{"id": "*"}],
    }


def oversight_section(config: PolicyConfig) -> Section:
    """Return the DPIA section on oversight and aftercare (part A)."""
    rows: list[tuple[Text | str, ...]] = [
        (
            text(a.name, " (", Code(a.id), ")"),
            ", ".join(a.recipient.roles),
            text(*(x for action in a.actions for x in (Code(action.value), " "))),
            text(Code(a.legal_basis.dpv), " ", basis_text(a.legal_basis)),
            _aftercare_words(a),
        )
        for a in config.oversight
    ]
    return Section(
        "s5a",
        _("5a. Oversight and aftercare"),
        (
            para(
                _(
                    "Checking that the exchange stopped does not stop with it. These processing activities are "
                    "decided by the same gate and logged the same way as the exchange; none releases a "
                    "participant's record (the steering monitor counts inside the gateway and releases suppressed "
                    "counts only). After a covenant ends, a party's access tokens carry only these roles, until the "
                    "aftercare ends."
                )
            ),
            table((_("Activity"), _("Roles"), _("Actions"), _("Legal basis"), _("After the end")), rows),
        ),
    )
