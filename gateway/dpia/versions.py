"""Versions of processing activities: an id per relevant change, and the policy-version index.

A processing activity's version id is a hash of exactly the configuration facts that define it: the
purpose, the rules for it, the categories and fields they grant, the covenants (parties, roles,
regions, period) and recipients they name, the mandates that carry those rules, the retention of
those categories, and the controller's contact. An audit entry records the policy version and the
processing-activity id; the index (`versions.json`) maps every policy version ever generated to the
activity versions in force under it, so that each entry points at exactly one register version.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gateway.dpia.facts import (
    by_id,
    categories_of,
    covenants_of,
    mandates_carrying,
    retention_for,
    rules_for,
    served_recipients,
)
from gateway.policies.loader import policy_version
from gateway.policies.model import PolicyConfig, Purpose

INDEX_FORMAT = 1


def activity_facts(config: PolicyConfig, purpose: Purpose) -> dict[str, Any]:
    """Return the facts that define one processing activity (the input of its version id)."""
    _, categories, _ = by_id(config)
    rules = rules_for(config, purpose.id)
    granted = categories_of(config, purpose.id)
    recipients = {o.id: o for r in rules for o in served_recipients(config, r)}
    return {
        "purpose": purpose.model_dump(mode="json"),
        "rules": [r.model_dump(mode="json") for r in rules],
        "categories": {
            cid: {
                "name": categories[cid].name,
                "dpv_category": categories[cid].dpv_category,
                "sources": list(categories[cid].sources),
                "fields": {
                    f: {
                        "sensitivity": categories[cid].field_sensitivity(f).value,
                        "description": next(x.description for x in categories[cid].fields if x.name == f),
                    }
                    for f in fields
                },
            }
            for cid, fields in granted.items()
        },
        "covenants": [c.model_dump(mode="json") for c in covenants_of(config, purpose.id)],
        "recipients": [o.model_dump(mode="json") for o in recipients.values()],
        "retention": [r.model_dump(mode="json") for cid in granted if (r := retention_for(config, cid)) is not None],
        "mandates": [m.model_dump(mode="json") for m in mandates_carrying(config, {r.id for r in rules})],
        "controller_contact": config.meta.controller_contact,
    }


def activity_version(config: PolicyConfig, purpose: Purpose) -> str:
    """Return the version id of one activity: 16 hex digits of the SHA-256 of its facts."""
    canonical = orjson.dumps(activity_facts(config, purpose), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def versioned_uri(purpose: Purpose, version: str) -> str:
    """Return the URI of one version of an activity: its processing-activity id with the version as fragment."""
    return f"{purpose.processing_activity_id}#{version}"


def register_versions(config: PolicyConfig) -> dict[str, str]:
    """Return {processing-activity id: version id} for every activity of this configuration."""
    from gateway.dpia.oversight import oversight_version

    versions = {p.processing_activity_id: activity_version(config, p) for p in config.purposes}
    versions.update({a.processing_activity_id: oversight_version(config, a) for a in config.oversight})
    return versions


def empty_index(config_name: str) -> dict[str, Any]:
    """Return an index with no policy versions yet."""
    return {
        "format": INDEX_FORMAT,
        "config": config_name,
        "about": "Maps every policy version (recorded in each audit entry) to the version of each processing "
        "activity in force under it. Accumulates across regenerations; never remove entries.",
        "policyVersions": {},
        "activityVersions": {},
    }


def merged_index(existing: dict[str, Any] | None, config: PolicyConfig) -> dict[str, Any]:
    """Return the index with this configuration's policy version and activity versions added.

    Earlier policy versions stay, so that an old audit entry still maps to the activity version it was
    made under (the register text of that version is in the history of `register.json`).
    """
    index = existing if existing and existing.get("format") == INDEX_FORMAT else empty_index(config.meta.name)
    index = {
        **index,
        "policyVersions": dict(index["policyVersions"]),
        "activityVersions": dict(index["activityVersions"]),
    }
    index["policyVersions"][policy_version(config)] = register_versions(config)
    for purpose in config.purposes:
        index["activityVersions"].setdefault(
            activity_version(config, purpose),
            {"activity": purpose.processing_activity_id, "purpose": purpose.id, "name": purpose.name},
        )
    for activity in config.oversight:
        index["activityVersions"].setdefault(
            register_versions(config)[activity.processing_activity_id],
            {"activity": activity.processing_activity_id, "purpose": activity.id, "name": activity.name},
        )
    return index


def versions_for(index: dict[str, Any], version_of_policy: str) -> dict[str, str] | None:
    """Return {processing-activity id: version id} in force under a policy version, or None if unknown."""
    found = index.get("policyVersions", {}).get(version_of_policy)
    return dict(found) if found is not None else None


def version_for_audit_entry(index: dict[str, Any], version_of_policy: str, activity_id: str) -> str | None:
    """Return the activity version an audit entry (policy version, processing-activity id) points at."""
    versions = versions_for(index, version_of_policy)
    return None if versions is None else versions.get(activity_id)
