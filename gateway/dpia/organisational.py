"""Organisational measures per inherent risk, stated from what the configuration knows (DPIA part D).

The gateway enforces the technical measures; the organisational ones are the parties' arrangements.
Where the configuration records such an arrangement (a covenant's end, a mandate decision, an oversight
activity, a retention rule with its legal source, the source of a category), this names it, so the column
is filled with facts rather than left empty. What the configuration cannot know stays for people to add.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gateway.dpia.lang import _
from gateway.policies.model import OversightAction, PolicyConfig


def _names(values: Iterable[str], limit: int = 3) -> str:
    items = list(values)
    shown = ", ".join(items[:limit])
    return shown + (" " + _("and {more} more", more=len(items) - limit) if len(items) > limit else "")


def _oversight(config: PolicyConfig, action: OversightAction) -> str:
    names = [a.name for a in config.oversight if action in a.actions]
    return _names(names) if names else _("none configured")


def _after_the_end(config: PolicyConfig) -> str:
    ends = sorted({c.valid_until.strftime("%d-%m-%Y %H:%M:%S") for c in config.covenants})
    return _(
        "{covenants} covenants with a fixed end (last second in force: {ends}); oversight after the end: "
        "{evidence} (signed revocation report for the parties' jurists); recipients acknowledge deletion notices "
        "({notices}).",
        covenants=len(config.covenants),
        ends=_names(ends),
        evidence=_oversight(config, OversightAction.EVIDENCE_ISSUE),
        notices=_oversight(config, OversightAction.NOTICE_ACKNOWLEDGE),
    )


def _unauthorised(config: PolicyConfig) -> str:
    roles = sorted({role for rule in config.rules for role in rule.recipient.roles})
    return _(
        "Access only for the roles the sharing rules name ({roles} roles, {rules} rules); periodic log review by "
        "each party's privacy officer: {review}.",
        roles=len(roles),
        rules=len(config.rules),
        review=_oversight(config, OversightAction.AUDIT_REVIEW),
    )


def _purpose_creep(config: PolicyConfig) -> str:
    return _(
        "{purposes} purposes, each a processing activity of the register with its legal basis; the covenant binds "
        "every party to these purposes (doelbinding); misuse shows in the log review.",
        purposes=len(config.purposes),
    )


def _excess(config: PolicyConfig) -> str:
    fields = sum(len(c.fields) for c in config.categories)
    return _(
        "The covenant's parties agreed {categories} categories ({fields} fields); each sharing rule names the "
        "categories its purpose needs, and a change to them is a configuration change with a new DPIA version.",
        categories=len(config.categories),
        fields=fields,
    )


def _after_covenant(config: PolicyConfig) -> str:
    return _(
        "{mandates} mandate decisions (mandaatbesluiten) carry the rules of mandataries; a jurist records a "
        "revocation or withdrawal ({revoke}).",
        mandates=len(config.mandates),
        revoke=_oversight(config, OversightAction.COVENANT_REVOKE),
    )


def _accountability(config: PolicyConfig) -> str:
    return _(
        "Access requests (art. 15) answered by: {access}; contact for data subjects: {contact}.",
        access=_oversight(config, OversightAction.SUBJECT_ACCESS),
        contact=config.meta.controller_contact,
    )


def _storage(config: PolicyConfig) -> str:
    sources = sorted({r.legal_source.split(";")[0] for r in config.retention})
    return _(
        "{rules} retention rules with their legal source ({sources}); destruction records "
        "(vernietigingsverklaring) issued for each run; legal holds set by {holds}.",
        rules=len(config.retention),
        sources=_names(sources, 2),
        holds=_oversight(config, OversightAction.LEGAL_HOLD),
    )


def _wrong_source(config: PolicyConfig) -> str:
    sourced = [c for c in config.categories if c.sources]
    return _(
        "{sourced} of {categories} categories name their source (bronhouder) in the covenant; corrections go to "
        "the source, which answers for the data.",
        sourced=len(sourced),
        categories=len(config.categories),
    )


def _drift(config: PolicyConfig) -> str:
    return _(
        "DPIA and register generated from the configuration '{name}' and checked in CI (gateway dpia check); a "
        "change needs a new DPIA version adopted by the parties.",
        name=config.meta.name,
    )


_BY_RISK: dict[str, Callable[[PolicyConfig], str]] = {
    "R-after-the-end": _after_the_end,
    "R-unauthorised-access": _unauthorised,
    "R-purpose-creep": _purpose_creep,
    "R-excess-data": _excess,
    "R-after-covenant": _after_covenant,
    "R-no-accountability": _accountability,
    "R-storage-breach": _storage,
    "R-wrong-source": _wrong_source,
    "R-drift": _drift,
}


def organisational_measure(config: PolicyConfig, risk_id: str) -> str:
    """Return the organisational measure the configuration records against an inherent risk ("" if none)."""
    describe = _BY_RISK.get(risk_id)
    return describe(config) if describe else ""
