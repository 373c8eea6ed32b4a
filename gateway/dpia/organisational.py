"""Organisational measures per inherent risk, stated from what the configuration knows (DPIA part D).

The gateway enforces the technical measures; the organisational ones are the parties' arrangements.
Where the configuration records such an arrangement (a covenant's end, a mandate decision, an oversight
activity, a retention rule with its legal source, the source of a category), this names it, so the column
is filled with facts rather than left empty. What the configuration cannot know stays for people to add.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gateway.policies.model import OversightAction, PolicyConfig


def _names(values: Iterable[str], limit: int = 3) -> str:
    items = list(values)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _oversight(config: PolicyConfig, action: OversightAction) -> str:
    names = [a.name for a in config.oversight if action in a.actions]
    return _names(names) if names else "none configured"


def _after_the_end(config: PolicyConfig) -> str:
    ends = sorted({c.valid_until.strftime("%d-%m-%Y %H:%M:%S") for c in config.covenants})
    return (
        f"{len(config.covenants)} covenants with a fixed end (last second in force: {_names(ends)}); "
        f"oversight after the end: {_oversight(config, OversightAction.EVIDENCE_ISSUE)} "
        "(signed revocation report for the parties' jurists); recipients acknowledge deletion notices "
        f"({_oversight(config, OversightAction.NOTICE_ACKNOWLEDGE)})."
    )


def _unauthorised(config: PolicyConfig) -> str:
    roles = sorted({role for rule in config.rules for role in rule.recipient.roles})
    return (
        f"Access only for the roles the sharing rules name ({len(roles)} roles, {len(config.rules)} rules); "
        f"periodic log review by each party's privacy officer: {_oversight(config, OversightAction.AUDIT_REVIEW)}."
    )


def _purpose_creep(config: PolicyConfig) -> str:
    return (
        f"{len(config.purposes)} purposes, each a processing activity of the register with its legal basis; "
        "the covenant binds every party to these purposes (doelbinding); misuse shows in the log review."
    )


def _excess(config: PolicyConfig) -> str:
    fields = sum(len(c.fields) for c in config.categories)
    return (
        f"The covenant's parties agreed {len(config.categories)} categories ({fields} fields); each sharing rule "
        "names the categories its purpose needs, and a change to them is a configuration change with a new "
        "DPIA version."
    )


def _after_covenant(config: PolicyConfig) -> str:
    return (
        f"{len(config.mandates)} mandate decisions (mandaatbesluiten) carry the rules of mandataries; a jurist "
        f"records a revocation or withdrawal ({_oversight(config, OversightAction.COVENANT_REVOKE)})."
    )


def _accountability(config: PolicyConfig) -> str:
    return (
        f"Access requests (art. 15) answered by: {_oversight(config, OversightAction.SUBJECT_ACCESS)}; "
        f"contact for data subjects: {config.meta.controller_contact}."
    )


def _storage(config: PolicyConfig) -> str:
    sources = sorted({r.legal_source.split(";")[0] for r in config.retention})
    return (
        f"{len(config.retention)} retention rules with their legal source ({_names(sources, 2)}); destruction "
        "records (vernietigingsverklaring) issued for each run; legal holds set by "
        f"{_oversight(config, OversightAction.LEGAL_HOLD)}."
    )


def _wrong_source(config: PolicyConfig) -> str:
    sourced = [c for c in config.categories if c.sources]
    return (
        f"{len(sourced)} of {len(config.categories)} categories name their source (bronhouder) in the covenant; "
        "corrections go to the source, which answers for the data."
    )


def _drift(config: PolicyConfig) -> str:
    return (
        f"DPIA and register generated from the configuration '{config.meta.name}' and checked in CI "
        "(gateway dpia check); a change needs a new DPIA version adopted by the parties."
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
