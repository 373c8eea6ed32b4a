"""W3C DPV terms for the machine-readable register (indicative where DPV has no exact term)."""

from __future__ import annotations

from gateway.i18n import N_
from gateway.policies.model import GdprRole, Operation, Sensitivity

PREFIXES = {
    "dpv": "https://w3id.org/dpv#",
    "pd": "https://w3id.org/dpv/pd#",
    "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
    "sector-public": "https://w3id.org/dpv/sector/public#",
    "sector-law": "https://w3id.org/dpv/sector/law#",
}

# DPV legal-basis classes for GDPR art. 6(1); the eu-gdpr term itself is kept next to it.
LEGAL_BASIS_CLASS = {
    "eu-gdpr:A6-1-a": ("dpv:Consent",),
    "eu-gdpr:A6-1-b": ("dpv:Contract",),
    "eu-gdpr:A6-1-c": ("dpv:LegalObligation",),
    "eu-gdpr:A6-1-d": ("dpv:VitalInterest",),
    "eu-gdpr:A6-1-e": ("dpv:PublicInterest", "dpv:OfficialAuthorityOfController"),
    "eu-gdpr:A6-1-f": ("dpv:LegitimateInterest",),
}

LEGAL_ROLE = {
    GdprRole.JOINT_CONTROLLER: "dpv:JointDataControllers",
    GdprRole.CONTROLLER: "dpv:DataController",
    GdprRole.PROCESSOR: "dpv:DataProcessor",
    GdprRole.RECIPIENT: "dpv:Recipient",
}

DATA_TYPE = {
    Sensitivity.ORDINARY: "dpv:PersonalData",
    Sensitivity.SPECIAL: "dpv:SpecialCategoryPersonalData",
    Sensitivity.CRIMINAL: "dpv:SensitivePersonalData",
    Sensitivity.NATIONAL_ID: "pd:OfficialID",
}

# What the gateway does per operation, as DPV processing operations (the LDV register's enum).
PROCESSING = {
    Operation.READ: ("dpv:Disclose", "dpv:Transform"),  # disclosed with a per-recipient pseudonym
    Operation.WRITE: ("dpv:Obtain", "dpv:Store"),
    Operation.LIST: ("dpv:Disclose",),
    Operation.REGISTER: ("dpv:Obtain", "dpv:Store"),
}
REMOVE = "dpv:Remove"

# The configuration has no data-subject field: the records are about the participants.
DATA_SUBJECT_NAME = N_("participants")
DATA_SUBJECT = {"name": DATA_SUBJECT_NAME, "dpv": ["dpv:DataSubject"]}
