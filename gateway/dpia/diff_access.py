"""Who may now (or no longer) read, write or list what, for which purpose: one sentence per change."""

from __future__ import annotations

from gateway.dpia.facts import OPERATION_VERB, TYPE_LABEL, effective_access, join_words, strongest_type
from gateway.policies.model import Operation, PolicyConfig, Sensitivity

# organisation, covenant, operation, purpose, category (None: listing)
Key = tuple[str, str, Operation, str, str | None]


def _access(config: PolicyConfig) -> dict[Key, set[str]]:
    out: dict[Key, set[str]] = {}
    for a in effective_access(config):
        for covenant in a.covenants:
            out.setdefault((a.organisation, covenant, a.operation, a.purpose, a.category), set()).update(a.fields)
    return out


def _what(config: PolicyConfig, category: str | None, fields: tuple[str, ...] | None = None) -> str:
    if category is None:
        return "participants"
    found = next((c for c in config.categories if c.id == category), None)
    if found is None:
        return f"{category} data"
    kind = strongest_type(found, fields or tuple(f.name for f in found.fields))
    label = "" if kind is Sensitivity.ORDINARY else f", {TYPE_LABEL[kind]}"
    return f"{category} data ('{found.name}'{label})"


def _purpose(config: PolicyConfig, purpose_id: str) -> str:
    found = next((p for p in config.purposes if p.id == purpose_id), None)
    return f"purpose '{found.name}' ({purpose_id})" if found else f"purpose {purpose_id}"


def _verb(op: Operation) -> str:
    return OPERATION_VERB[op]


def access_changes(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    """Return one sentence per change in effective access, organisations with the same change together."""
    before, after = _access(old), _access(new)
    names = {o.id: o.name for o in (*old.organisations, *new.organisations)}
    grouped: dict[tuple[str, Operation, str, str | None, tuple[str, ...]], list[tuple[str, str]]] = {}

    def add(change: str, key: Key, fields: set[str], config: PolicyConfig) -> None:
        org, covenant, op, purpose, category = key
        order = [f.name for c in config.categories if c.id == category for f in c.fields]
        ordered = tuple(sorted(fields, key=lambda f: order.index(f) if f in order else len(order)))
        grouped.setdefault((change, op, purpose, category, ordered), []).append((org, covenant))

    for key in after.keys() - before.keys():
        add("now", key, after[key], new)
    for key in before.keys() - after.keys():
        add("no longer", key, before[key], old)
    for key in after.keys() & before.keys():
        if gained := after[key] - before[key]:
            add("now also", key, gained, new)
        if lost := before[key] - after[key]:
            add("no longer (fields)", key, lost, old)

    org_order = list(names)
    cov_order = [c.id for c in (*old.covenants, *new.covenants)]
    sentences = []
    for (change, op, purpose, category, fields), pairs in grouped.items():
        config = old if change.startswith("no longer") else new
        orgs = sorted({o for o, _ in pairs}, key=org_order.index)
        covenants = sorted({c for _, c in pairs}, key=cov_order.index)
        who = join_words([names.get(o, o) for o in orgs])
        where = _purpose(config, purpose) + f" under covenant{'s' if len(covenants) > 1 else ''} {', '.join(covenants)}"
        if change == "now":
            listed = f" ({', '.join(fields)})" if category is not None else ""
            sentences.append(f"{who} may now {_verb(op)} {_what(config, category, fields)}{listed} for {where}.")
        elif change == "no longer":
            sentences.append(f"{who} may no longer {_verb(op)} {_what(config, category, fields)} for {where}.")
        elif change == "now also":
            sentences.append(
                f"{who} may now also {_verb(op)} {', '.join(fields)} of {_what(config, category, fields)} for {where}."
            )
        else:
            sentences.append(
                f"{who} may no longer {_verb(op)} {', '.join(fields)} of {_what(config, category, fields)} for {where}."
            )
    return sorted(sentences)
