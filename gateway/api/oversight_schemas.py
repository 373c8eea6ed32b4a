"""Response bodies of the oversight, audit-log, notice and evidence APIs (what /docs shows officers).

Documentation only: the handlers build these bodies themselves, and schemathesis' response check holds
the two together (tests/integration/test_openapi_conformance.py). Entries and reports stay open objects:
their members are those of the audit log's own entry format.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema


class SeqRef(BaseModel):
    seq: int = Field(description="Sequence number of the audit entry recording this access")


class EntryPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null on the last page")
    scope: str
    audit: SeqRef


class AnomaliesOut(BaseModel):
    items: list[dict[str, Any]]
    thresholds: dict[str, Any]
    scope: str
    audit: SeqRef


class LogStatusOut(BaseModel):
    verified: bool
    headline: str
    detail: str
    entries: int
    checked_at: str
    indexed_through: int = Field(
        description="The search index holds entries 1..this; searches read the log itself beyond it (complete answers)"
    )


class VerifierKey(BaseModel):
    verifier_key: str = Field(description="C2SP signed-note verifier key")
    key_id: str
    public_key: str = Field(description="Ed25519 public key, base64")
    status: str = Field(description="current or retired")


class CheckpointKeysOut(BaseModel):
    origin: str
    algorithm: str
    keys: list[VerifierKey]


class InclusionProofOut(BaseModel):
    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    inclusion_path: list[str]


class ConsistencyProofOut(BaseModel):
    first: int
    second: int
    consistency_path: list[str]


class OwnEntry(BaseModel):
    seq: int
    leaf_hash: str
    entry: dict[str, Any]


class OwnEntriesOut(BaseModel):
    organisation: str
    entries: list[OwnEntry]
    next_after: int | None
    checkpoint_size: int
    audit: SeqRef


class NoticeOut(BaseModel):
    id: str
    kind: str
    reference: str | None
    status: str
    created_at: str
    delivered_at: str | None
    attempts: int
    notice: dict[str, Any]
    acknowledged: bool
    acknowledgements: list[dict[str, Any]]


class NoticeListOut(BaseModel):
    organisation: str
    items: list[NoticeOut]


class DocumentOut(BaseModel):
    id: str
    type: str
    subject: str
    version: int
    issued_at: str
    key_id: str
    sha256: str
    files: dict[str, str] = Field(description="Download address per format (json, html, pdf)")


class DocumentListOut(BaseModel):
    items: list[DocumentOut]


class AckOut(BaseModel):
    notice_id: str
    organisation: str
    client_id: str
    acting_user: str
    outcome: str
    reference: str | None
    acknowledged_at: str
    audit_seq: int = Field(description="Sequence number of the audit entry recording the acknowledgement")


class Jwk(BaseModel, extra="allow"):
    kty: str
    kid: str | None = None


class JwksOut(BaseModel):
    keys: list[Jwk]


class TokenOut(BaseModel):
    """RFC 6749 section 5.1: an access token (a signed JWT, RFC 9068); never a refresh token."""

    access_token: str
    token_type: str = Field(description="Always Bearer")
    expires_in: int
    scope: str = Field(description="Space-separated roles the token grants")


class IntrospectionOut(BaseModel, extra="allow"):
    """RFC 7662: `active` false for any token the caller may not learn about; more members when active."""

    active: bool


class AuthServerMetadataOut(BaseModel, extra="allow"):
    """RFC 8414 authorization server metadata."""

    issuer: str
    token_endpoint: str
    jwks_uri: str


class HealthOut(BaseModel):
    status: str = Field(description="ok: the process serves")
    version: str = Field(description="The gateway's version")
    policy_version: str
    config: str
    time: str = Field(description="Real time (UTC), RFC 3339")
    policy_time: str = Field(description="The policy clock's time: simulated in demo and rehearsal mode")
    clock: str = Field(description="real, or simulated (demo, rehearsal)")


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, ReadinessCheck] = Field(description="database, audit_writer, sealer")


# Success bodies of operations whose handlers build a Response themselves (gateway.api.openapi adds them).
SUCCESS_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("post", "/oauth/token"): TokenOut,
    ("post", "/oauth/introspect"): IntrospectionOut,
    ("get", "/.well-known/jwks.json"): JwksOut,
    ("get", "/.well-known/oauth-authorization-server"): AuthServerMetadataOut,
    ("get", "/.well-known/evidence-keys.json"): JwksOut,
    ("post", "/v1/notices/{notice_id}/ack"): AckOut,
}


class SubjectLookupIn(BaseModel):
    """What an access request gives to find its participant: a V-number, or family name and date of birth."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": ["v_number"]}, {"required": ["family_name", "birth_date"]}]},
    )

    v_number: str | SkipJsonSchema[None] = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The V-number as the requester gave it (spaces, dots and dashes are ignored)",
    )
    family_name: str | SkipJsonSchema[None] = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Family name, with birth_date (case, accents, spaces and hyphens are ignored)",
    )
    birth_date: date | SkipJsonSchema[None] = Field(default=None, description="Date of birth, with family_name")

    @model_validator(mode="after")
    def _enough(self) -> SubjectLookupIn:
        if self.v_number is None and (self.family_name is None or self.birth_date is None):
            raise ValueError("give v_number, or family_name together with birth_date")
        return self


class SubjectLookupOut(BaseModel):
    """Your organisation's pseudonyms of the participants that match (none outside your regions)."""

    pseudonyms: list[str]
    matched_by: list[str] = Field(description="Which identifiers were matched: v_number and/or name_birth")
    audit_seq: int = Field(description="The audit entry that records the lookup")
