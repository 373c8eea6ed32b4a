"""Risks the configuration itself reveals (DPIA part C), each with where it shows and what mitigates it."""

from __future__ import annotations

from gateway.dpia.risk_arrangements import (
    after_end_under_hold,
    category_without_retention,
    indicative_legal_bases,
    long_covenant,
    open_mandates,
    processors,
    purpose_without_rules,
    recipient_outside_covenant,
    retention_suggestions,
    rules_under_ended_covenants,
    wpg_bases,
)
from gateway.dpia.risk_data import (
    criminal_to_ngo,
    free_text_fields,
    national_id_released,
    never_written,
    sensitive_beyond_source,
    special_to_ngo,
)
from gateway.dpia.risk_model import Check, Finding, level, severity
from gateway.policies.model import PolicyConfig

__all__ = ["CHECKS", "Finding", "findings", "level"]

CHECKS: tuple[Check, ...] = (
    special_to_ngo,
    criminal_to_ngo,
    sensitive_beyond_source,
    national_id_released,
    category_without_retention,
    purpose_without_rules,
    long_covenant,
    recipient_outside_covenant,
    rules_under_ended_covenants,
    retention_suggestions,
    indicative_legal_bases,
    wpg_bases,
    free_text_fields,
    processors,
    never_written,
    after_end_under_hold,
    open_mandates,
)


def findings(config: PolicyConfig) -> list[Finding]:
    """Return the risks the configuration reveals, most severe first (stable order)."""
    found = [f for check in CHECKS if (f := check(config)) is not None]
    return sorted(found, key=lambda f: severity(f.level))
