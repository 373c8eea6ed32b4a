"""The database schema (SQLAlchemy Core). Migrations in gateway/migrations mirror it exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are never stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

participants = Table(
    "participants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("region", String(64), nullable=False, index=True),
    Column("registered_by", String(64), nullable=False),
    Column("registered_at", UTCDateTime(), nullable=False),
)

pseudonyms = Table(
    "pseudonyms",
    metadata,
    Column("organisation", String(64), primary_key=True),
    Column("pseudonym", String(32), primary_key=True),
    Column("participant_id", String(36), ForeignKey("participants.id"), nullable=False),
    UniqueConstraint("organisation", "participant_id", name="uq_pseudonyms_organisation_participant"),
)

# A blind index for finding a participant from what an access request gives (V-number; family name and
# date of birth): keyed HMACs of normalised values, never the values. See gateway/store/subject_index.py.
subject_index = Table(
    "subject_index",
    metadata,
    Column("participant_id", String(36), ForeignKey("participants.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("category", String(64), nullable=False),
    Column("digest", String(64), nullable=False, index=True),
)

data_keys = Table(
    "data_keys",
    metadata,
    Column("participant_id", String(36), ForeignKey("participants.id"), primary_key=True),
    Column("category", String(64), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL once destroyed (crypto-shredded)
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("destroyed_at", UTCDateTime(), nullable=True),
    # The key epoch whose key wraps this data key (migration 0006); NULL: a legacy row wrapped by the KEK.
    Column("epoch_id", String(48), nullable=True, index=True),
)

records = Table(
    "records",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("participant_id", String(36), ForeignKey("participants.id"), nullable=False),
    Column("category", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("source_organisation", String(64), nullable=False),
    Column("written_at", UTCDateTime(), nullable=False),
    Column("audit_seq", BigInteger, nullable=False),
    UniqueConstraint("participant_id", "category", "version", name="uq_records_participant_category_version"),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("entry", Text, nullable=False),  # canonical JSON: the exact bytes that are hashed
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("chain_hash", LargeBinary(32), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("organisation", String(64), nullable=True),
    Column("participant_id", String(36), nullable=True),
    Column("decision", String(8), nullable=False),
)
# No secondary indexes: appends pay only for the primary key. Searches go through `audit_index`
# (migration 0011 dropped the trace id, participant and organisation indexes the log had).

# The officer's search index over the log: derived, rebuildable (`gateway audit reindex`), filled in
# batches behind the log by the sealer (gateway/audit/index.py), so appends never pay for it. One row
# per entry, in order, without gaps: max(seq) is how far it has caught up. `at` is recorded_at in
# microseconds since the epoch (UTC), one spelling on every database.
audit_index = Table(
    "audit_index",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("organisation", String(64), nullable=True),
    Column("participant_id", String(36), nullable=True),
    # The participant's region (participants never move or go away): a city's scope in one index range.
    Column("participant_region", String(64), nullable=True),
    Column("purpose", String(64), nullable=True),
    Column("decision", String(8), nullable=False),
    Column("event", String(64), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("region", String(64), nullable=True),
    Column("trace_id", String(32), nullable=False),
)
Index("ix_audit_index_organisation_seq", audit_index.c.organisation, audit_index.c.seq)
Index("ix_audit_index_participant_seq", audit_index.c.participant_id, audit_index.c.seq)
Index("ix_audit_index_participant_region_seq", audit_index.c.participant_region, audit_index.c.seq)
Index("ix_audit_index_purpose_seq", audit_index.c.purpose, audit_index.c.seq)
Index("ix_audit_index_event_seq", audit_index.c.event, audit_index.c.seq)
Index("ix_audit_index_region_seq", audit_index.c.region, audit_index.c.seq)
Index("ix_audit_index_at", audit_index.c.at)
Index("ix_audit_index_trace_id", audit_index.c.trace_id)

# Multi-valued members of an entry: `kind` "region" for each of its `regions`, "participant" for each
# of its listed `participants`.
audit_index_terms = Table(
    "audit_index_terms",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("value", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
)

# Counts of indexed entries per time block and "signature" (the values of the columns that scopes and
# filters test), so an officer's count is a sum over a few blocks, not a scan: derived like the index,
# filled in the same transaction, rebuilt with it (gateway/audit/counts.py). `level` L, `block` b cover
# the UTC days [b * 8**L, (b + 1) * 8**L) since the epoch; `regions` is the entry's region terms as
# "|hex|hex|"; `sig` digests the columns. A block holds at most a fixed number of signatures; entries
# beyond them are counted in its row with `sig` "*" only, and a count reads the block's parts instead.
audit_index_counts = Table(
    "audit_index_counts",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("sig", String(32), primary_key=True),
    Column("organisation", String(64), nullable=True),
    Column("participant_region", String(64), nullable=True),
    Column("region", String(64), nullable=True),
    Column("regions", Text, nullable=False),
    Column("purpose", String(64), nullable=True),
    Column("decision", String(8), nullable=False),
    Column("event", String(64), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("n", BigInteger, nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("chain_hash", LargeBinary(32), nullable=False),
)

db_meta = Table(
    "gateway_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Signed checkpoints of the audit Merkle tree (one per tree size: the signer never signs two roots
# for one size) and the sealer's incremental tree state, so a restart does not rehash the log.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("signed_at", UTCDateTime(), nullable=False),
    Column("key_id", String(8), nullable=False),  # hex of the signed-note key ID
    Column("note", Text, nullable=False),  # the signed checkpoint text, exactly as published
    Column("sealer", String(128), nullable=False),  # which process signed it (pid@host)
)

audit_sealer = Table(
    "audit_sealer",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("peaks", LargeBinary, nullable=False),  # the perfect-subtree roots, 32 bytes each, largest first
    Column("updated_at", UTCDateTime(), nullable=True),
)

audit_signing_keys = Table(
    "audit_signing_keys",
    metadata,
    Column("public_key", LargeBinary(32), primary_key=True),  # raw Ed25519 public key
    Column("first_used_at", UTCDateTime(), nullable=False),
)

# -- partner authentication (OAuth 2.0 client credentials with private_key_jwt) ---------------------

# Registered partner systems: organisation, roles they may act in (the token's scope), public keys
# (inline JWKS or a jwks_uri) and status. Disabling a client makes its tokens useless at once.
auth_clients = Table(
    "auth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("organisation", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("roles", Text, nullable=False),  # JSON array of role ids
    Column("jwks", Text, nullable=True),  # public JWKS (JSON), or NULL when jwks_uri is set
    Column("jwks_uri", String(500), nullable=True),
    Column("status", String(16), nullable=False),  # active | disabled
    Column("status_reason", String(200), nullable=True),
    Column("demo", Boolean, nullable=False),  # shipped synthetic demo client: refused outside demo mode
    Column("certificate_bound", Boolean, nullable=False),  # RFC 8705 certificate-bound tokens required
    Column("rate_limit_per_minute", Integer, nullable=True),  # NULL: the gateway default
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Organisations an operator disabled (absent or 'active': enabled).
auth_organisation_status = Table(
    "auth_organisation_status",
    metadata,
    Column("organisation", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # active | disabled
    Column("reason", String(200), nullable=True),
    Column("changed_at", UTCDateTime(), nullable=False),
)

# Client-assertion jti replay cache: a (client, jti) pair is accepted once; rows expire with the assertion.
auth_assertion_jtis = Table(
    "auth_assertion_jtis",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(256), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# The gateway's own access-token signing keys. The private key is sealed with the KEK and destroyed at
# retirement; the public key stays published until `publish_until` (the last token it signed expired).
auth_signing_keys = Table(
    "auth_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("private_sealed", LargeBinary, nullable=True),  # NULL once retired
    Column("kek_id", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # active | retired
    Column("created_at", UTCDateTime(), nullable=False),
    Column("retired_at", UTCDateTime(), nullable=True),
    Column("publish_until", UTCDateTime(), nullable=True),
)

# One row: a counter bumped by every revocation and key rotation, read with each request's status check,
# so every gateway process drops its verified-token cache at once; its row lock serialises key changes.
auth_state = Table(
    "auth_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
)

# -- outbox: notices to partner organisations, delivered at least once (migration 0005) --------------

# One row per notice. `body` holds the exact bytes every attempt sends; `idempotency_key` makes
# enqueueing the same notice twice a no-op. A worker leases a due notice (lease_until) before sending,
# so several gateway processes never send one notice at the same time.
outbox_notices = Table(
    "outbox_notices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("recipient_org", String(64), nullable=False, index=True),
    Column("reference", String(200), nullable=True, index=True),  # what it is about, e.g. covenant:lvv-amsterdam
    Column("idempotency_key", String(200), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("round_offset", Integer, nullable=False),  # attempts before the current round (a requeued dead letter)
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("leased_by", String(128), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("dead_at", UTCDateTime(), nullable=True),
    Column("last_error", String(300), nullable=True),
    UniqueConstraint("idempotency_key", name="uq_outbox_notices_idempotency_key"),
)
Index("ix_outbox_notices_status_next_attempt_at", outbox_notices.c.status, outbox_notices.c.next_attempt_at)

# Every delivery attempt and its outcome: the evidence that a notice was sent, retried or given up.
outbox_attempts = Table(
    "outbox_attempts",
    metadata,
    Column("notice_id", String(36), ForeignKey("outbox_notices.id"), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("attempted_at", UTCDateTime(), nullable=False),
    Column("url", String(500), nullable=True),
    Column("status_code", Integer, nullable=True),
    Column("error", String(300), nullable=True),
    Column("outcome", String(16), nullable=False),  # delivered | retry | dead
    Column("next_attempt_at", UTCDateTime(), nullable=True),
)

# Acknowledgements by the recipient organisation (each one also an audit entry, `audit_seq`).
outbox_acks = Table(
    "outbox_acks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("notice_id", String(36), ForeignKey("outbox_notices.id"), nullable=False, index=True),
    Column("organisation", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("acting_user", String(128), nullable=False),
    Column("outcome", String(32), nullable=False),  # received | deleted | kept_own_basis
    Column("reference", String(120), nullable=True),
    Column("acknowledged_at", UTCDateTime(), nullable=False),
    Column("audit_seq", BigInteger, nullable=False),
)

# -- signed evidence for jurists: revocation reports and destruction records (migration 0005) -------

# Every issued document, immutable: the signed JSON file and its signed HTML and PDF renditions,
# byte for byte as downloaded. A later version for the same subject supersedes, never overwrites.
evidence_documents = Table(
    "evidence_documents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(32), nullable=False),  # revocation_report | destruction_record
    Column("subject", String(128), nullable=False),  # the covenant id, or the destruction batch id
    Column("version", Integer, nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the canonical document
    Column("signed_json", Text, nullable=False),
    Column("html", LargeBinary, nullable=False),
    Column("pdf", LargeBinary, nullable=False),
    Column("audit_seq", BigInteger, nullable=True),  # the audit entry that records the issue
    UniqueConstraint("type", "subject", "version", name="uq_evidence_documents_type_subject_version"),
)

# -- web page sessions ------------------------------------------------------------------------------

# Signed-in sessions of the web pages (officer and jurist), shared by every gateway process: the
# cookie carries only the session id, stored here as its SHA-256. Sign-out, or a token that no longer
# verifies, sets ended_at, and the session is refused from then on. No access token is stored. Rows
# are deleted a day after they expire (at a later sign-in).
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("page_family", String(16), nullable=False),
    Column("organisation", String(64), nullable=False),
    Column("client_id", String(200), nullable=False, index=True),
    Column("token_id", String(256), nullable=False),
    Column("acting_user", String(128), nullable=False),
    Column("role", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("end_reason", String(64), nullable=True),
)

# -- covenant lifecycle, legal holds and retention ----------------------------------------------------

# One row: a counter bumped by every lifecycle change (revocation, mandate withdrawal, hold set or
# lifted); every gateway process polls it and swaps in a new effective policy when it moves. The lease
# keeps two retention runs (two processes on one PostgreSQL) from working at the same time.
lifecycle_state = Table(
    "lifecycle_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
    Column("retention_holder", String(128), nullable=True),
    Column("retention_lease_until", UTCDateTime(), nullable=True),
    # Wall-clock time the holder last said it lives (renewed while it runs): a stale one is taken over.
    Column("retention_heartbeat_at", UTCDateTime(), nullable=True),
)

# A jurist's early revocation of a covenant: effective at a stated moment, never in the past.
covenant_revocations = Table(
    "covenant_revocations",
    metadata,
    Column("covenant_id", String(64), primary_key=True),
    Column("effective_at", UTCDateTime(), nullable=False),  # first instant no longer in force
    Column("reason", Text, nullable=False),
    Column("authority_reference", String(300), nullable=False),
    Column("organisation", String(64), nullable=False),
    Column("acting_user", String(128), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("audit_seq", BigInteger, nullable=True),
)

# A jurist's recorded withdrawal of a mandate decision (its permissions end at effective_at).
mandate_withdrawals = Table(
    "mandate_withdrawals",
    metadata,
    Column("mandate_id", String(64), primary_key=True),
    Column("effective_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("authority_reference", String(300), nullable=False),
    Column("organisation", String(64), nullable=False),
    Column("acting_user", String(128), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("audit_seq", BigInteger, nullable=True),
)

# Legal holds per participant: destruction suspended, access for the legal procedure only.
legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("participant_id", String(36), ForeignKey("participants.id"), nullable=False, index=True),
    Column("region", String(64), nullable=False),
    Column("reason", String(32), nullable=False),  # objection | appeal | complaint | access_request
    Column("case_reference", String(200), nullable=False),
    Column("organisation", String(64), nullable=False),
    Column("set_by", String(128), nullable=False),
    Column("set_at", UTCDateTime(), nullable=False),
    Column("set_audit_seq", BigInteger, nullable=True),
    Column("lifted_at", UTCDateTime(), nullable=True),  # the decision is final: the retention clock restarts
    Column("lifted_by", String(128), nullable=True),
    Column("lift_reason", Text, nullable=True),
    Column("lifted_audit_seq", BigInteger, nullable=True),
)

# One retention run (or a run's resumption): when, as of which moment, on whose authority, how far.
retention_runs = Table(
    "retention_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("as_of", UTCDateTime(), nullable=False),  # the moment whose due items the run destroys
    Column("authority", Text, nullable=False),
    Column("acting_user", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # running | completed | interrupted
    Column("summary", Text, nullable=False),  # JSON: rules applied (legal sources), what was kept and why, policy
    Column("destroyed_keys", BigInteger, nullable=False),
    Column("deleted_records", BigInteger, nullable=False),
)

# What one run destroyed: one row per destroyed data key (participant and category), with the ground
# and the period the destroyed records covered. Holds no record content.
retention_destructions = Table(
    "retention_destructions",
    metadata,
    Column("participant_id", String(36), primary_key=True),
    Column("category", String(64), primary_key=True),
    Column("run_id", String(36), nullable=False),
    Column("region", String(64), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("trigger_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("destroyed_at", UTCDateTime(), nullable=False),
    Column("records_deleted", Integer, nullable=False),
    Column("period_from", UTCDateTime(), nullable=True),
    Column("period_until", UTCDateTime(), nullable=True),
    Column("audit_seq", BigInteger, nullable=True),  # NULL until the audit entry is committed
    Column("epoch_id", String(48), nullable=True),  # the key's epoch when destroyed (NULL: legacy, KEK-wrapped)
    # (run, participant): a run records each participant's audit entry by these two (migration 0013);
    # an index on the run alone made that a scan of the run's rows, and a run quadratic in its size.
    Index("ix_retention_destructions_run_participant", "run_id", "participant_id"),
)

# Key epochs being or having been destroyed (migration 0006). The epoch keys themselves live only in
# the key store; this row is the durable fact that one is gone. `destroying`: the database no longer
# references the epoch and its file is being destroyed (a rerun finishes it); `destroyed`: the file is gone.
key_epochs = Table(
    "key_epochs",
    metadata,
    Column("epoch_id", String(48), primary_key=True),
    Column("state", String(16), nullable=False),  # destroying | destroyed
    Column("run_id", String(36), nullable=True),  # the retention run that destroyed it
    Column("keys_moved", Integer, nullable=False),  # live data keys re-wrapped into other epochs first
    Column("marked_at", UTCDateTime(), nullable=False),
    Column("destroyed_at", UTCDateTime(), nullable=True),
)

# -- connectors: file imports ------------------------------------------------------------------------

# One row per imported file: a re-run of the same file (same content hash) for the same source and
# category finds it and writes nothing again. Written in the import's own transaction, with its rows.
source_imports = Table(
    "source_imports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source_organisation", String(64), nullable=False),
    Column("category", String(64), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("rows_total", Integer, nullable=False),
    Column("rows_imported", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
    Column("audit_seq", BigInteger, nullable=False),
    Column("imported_at", UTCDateTime(), nullable=False),
    UniqueConstraint("source_organisation", "category", "content_sha256", name="uq_source_imports_content"),
)
