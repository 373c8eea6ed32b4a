"""Settings: one class, `GATEWAY_` prefix, read when the application is built (never at import)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=None, extra="ignore")

    config_dir: Path = Field(default=Path("config/lvv"), description="Policy configuration directory")
    database_url: str = "sqlite:///var/gateway.db"
    key_dir: Path = Field(default=Path("var/keys"), description="Key material (KEK, pseudonym key, signer)")
    kek: SecretStr | None = Field(default=None, description="Key-encryption key, base64 (overrides key file)")
    pseudonym_key: SecretStr | None = Field(default=None, description="Pseudonym HMAC key, base64")
    token_issuer: str = "http://127.0.0.1:8000"
    token_audience: str = "lvv-exchange-gateway"
    token_jwks_file: Path | None = Field(
        default=None, description="Additional public keys trusted for access tokens (unset: the gateway's own only)"
    )
    token_algorithms: tuple[str, ...] = ("ES256", "RS256")
    token_leeway_seconds: int = Field(default=30, ge=0, le=120)
    # Partner authentication: the token endpoint (OAuth 2.0 client credentials with private_key_jwt).
    access_token_lifetime_seconds: int = Field(
        default=900, ge=60, le=3600, description="Lifetime of issued access tokens (at most one hour)"
    )
    token_signing_algorithm: str = Field(
        default="ES256", pattern=r"^(ES256|RS256|PS256)$", description="Algorithm of the gateway's signing keys"
    )
    client_assertion_max_lifetime_seconds: int = Field(
        default=300, ge=30, le=3600, description="Longest a client assertion may live (exp - iat)"
    )
    rate_limit_per_minute: int = Field(
        default=1200, ge=1, description="API requests per minute per registered client (its registration may differ)"
    )
    token_rate_limit_per_minute: int = Field(
        default=60, ge=1, description="Token and introspection requests per minute per client"
    )
    external_rate_limit_per_minute: int | None = Field(
        default=None, ge=1, description="API requests per minute per client of an external issuer (None: no limit)"
    )
    jwks_uri_cache_seconds: int = Field(default=300, ge=0, description="How long a client's fetched jwks_uri is used")
    mtls_certificate_header: str | None = Field(
        default=None, description="Header in which the TLS terminator passes the verified client certificate"
    )
    mtls_trusted_proxies: tuple[str, ...] = Field(
        default=(), description="Addresses (or CIDR ranges) of the TLS terminators whose certificate header is believed"
    )
    audit_flush_timeout_seconds: float = Field(default=5.0, gt=0)
    audit_origin: str = Field(
        default="lvv-exchange-gateway.example/audit",
        pattern=r"^[^\s+]{1,200}$",
        description="The log's origin line in signed checkpoints (and the key name of its signatures)",
    )
    audit_checkpoint_interval_seconds: float = Field(
        default=10.0, ge=0, description="Seconds between checkpoints while entries arrive (0: on demand only)"
    )
    audit_checkpoint_max_entries: int = Field(
        default=100_000, ge=1, description="At most this many new entries per checkpoint (bounds a catch-up's memory)"
    )
    demo: bool = Field(default=False, description="Demo mode: allows the synthetic demo keys and seed")
    clock_start: datetime | None = Field(
        default=None, description="Demo only: the simulated moment the clock showed at `clock_anchor`"
    )
    clock_anchor: float | None = Field(default=None, description="Demo only: real POSIX time of clock_start")
    # Bounds on what a request may carry: checked before a body is buffered whole or a value is decided on.
    max_request_body_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Largest request body accepted (bytes); larger ones get 413"
    )
    max_json_depth: int = Field(
        default=32, ge=2, le=256, description="Deepest nesting of objects and arrays in a JSON request body"
    )
    max_string_length: int = Field(
        default=10_000, ge=1, description="Longest string (characters) in a JSON request body, keys included"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # Privacy-officer review (pages, query API, anomaly list). Thresholds are suggestions: tune them.
    officer_session_minutes: int = Field(
        default=30, ge=1, le=480, description="Web session lifetime; never longer than the access token"
    )
    officer_timezone: str = Field(default="Europe/Amsterdam", description="Time zone the review pages show")
    officer_status_cache_seconds: float = Field(
        default=60, ge=0, description="How long a recomputed log verification status is reused by the pages"
    )
    anomaly_denial_burst_count: int = Field(
        default=5, ge=2, description="Denials of one client within the window that make a burst"
    )
    anomaly_denial_burst_window_seconds: int = Field(default=300, ge=1, description="Window for denial bursts")
    anomaly_volume_factor: float = Field(
        default=5.0, gt=1, description="A client's day is unusual above this multiple of its usual daily volume"
    )
    anomaly_volume_min_requests: int = Field(
        default=50, ge=1, description="Days with fewer requests than this are never flagged for volume"
    )
    anomaly_volume_baseline_days: int = Field(
        default=28, ge=1, le=366, description="Days before the reviewed day that set a client's usual volume"
    )
    # Outbox (signed notices to partners) and evidence for jurists.
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="The gateway's public base URL: in notices (where to acknowledge) and the verification command",
    )
    outbox_poll_seconds: float = Field(
        default=5.0, ge=0, description="Seconds between outbox delivery runs in the server (0: no delivery worker)"
    )
    outbox_max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts before a notice is dead-lettered")
    outbox_backoff_base_seconds: float = Field(default=30.0, ge=0, description="Wait after the first failed attempt")
    outbox_backoff_max_seconds: float = Field(default=6 * 3600.0, ge=0, description="Longest wait between attempts")
    outbox_request_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one delivery request")
    outbox_lease_seconds: float = Field(default=120.0, gt=0, description="How long a worker holds a notice it sends")
    covenant_end_notices: bool = Field(
        default=True,
        description="With every outbox run, queue the deletion notices of each ended covenant that has none yet",
    )
    evidence_timezone: str = Field(default="Europe/Amsterdam", description="Time zone evidence documents show")
    # Covenant lifecycle, legal holds, retention, rehearsal.
    lifecycle_poll_seconds: float = Field(
        default=2.0, ge=0, description="Seconds between checks for new revocations, withdrawals and holds (0: never)"
    )
    lifecycle_propagation_margin_seconds: float = Field(
        default=60.0,
        ge=1,
        description="A revocation or withdrawal takes effect at least this long after it is recorded",
    )
    retention_interval_seconds: float = Field(
        default=3600.0, ge=0, description="Seconds between scheduled retention runs in the server (0: none)"
    )
    retention_heartbeat_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between a running retention run's heartbeats (it holds the lease)"
    )
    retention_heartbeat_grace_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A run whose heartbeat is older than this is dead and taken over (hosts' clocks must agree)",
    )
    retention_authority: str | None = Field(
        default=None,
        description="The decision on whose authority scheduled runs destroy (default: the retention rules)",
    )
    # Brokered source systems (config/<name>/sources.yaml): where each is reached in this deployment, and how.
    connector_urls: dict[str, str] = Field(
        default_factory=dict, description='Base URL per REST source id, JSON: {"cvs-amsterdam": "https://..."}'
    )
    connector_client_id: str = Field(
        default="lvv-gateway", description="The gateway's client id at the sources (private_key_jwt)"
    )
    connector_tls_cert: Path | None = Field(default=None, description="Client certificate (PEM) for mTLS sources")
    connector_tls_key: Path | None = Field(default=None, description="Its private key (PEM)")
    max_import_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, description="Largest CSV upload accepted (bytes; streamed to disk)"
    )
    connector_tls_ca: Path | None = Field(default=None, description="CA bundle the sources' certificates chain to")
    rehearsal: bool = Field(
        default=False, description="Rehearsal mode: a copy of the database, a simulated clock, said on every response"
    )

    @model_validator(mode="after")
    def _safe_algorithms(self) -> Settings:
        allowed = {"ES256", "RS256", "PS256", "ES384", "RS384", "PS384", "EdDSA"}
        bad = set(self.token_algorithms) - allowed
        if bad:
            raise ValueError(f"token_algorithms may only hold asymmetric algorithms, not {sorted(bad)}")
        if self.retention_heartbeat_grace_seconds < 2 * self.retention_heartbeat_seconds:
            raise ValueError("retention_heartbeat_grace_seconds must be at least twice retention_heartbeat_seconds")
        if self.clock_start is not None and not self.demo:
            raise ValueError("a simulated clock (clock_start) is allowed only in demo mode")
        if self.clock_start is not None and self.clock_start.tzinfo is None:
            raise ValueError("clock_start needs a time zone offset")
        return self

    @model_validator(mode="after")
    def _lifecycle_propagates_in_time(self) -> Settings:
        # Every process must have polled the lifecycle version a few times before a revocation takes effect.
        if (
            self.lifecycle_poll_seconds > 0
            and self.lifecycle_propagation_margin_seconds < 3 * self.lifecycle_poll_seconds
        ):
            raise ValueError("lifecycle_propagation_margin_seconds must be at least three lifecycle poll intervals")
        return self

    @model_validator(mode="after")
    def _verifiable_signing_algorithm(self) -> Settings:
        if self.token_signing_algorithm not in self.token_algorithms:
            raise ValueError("token_signing_algorithm must be one of token_algorithms, or no issued token verifies")
        return self

    @property
    def jwks_path(self) -> Path:
        """Return the file of public keys trusted for access tokens."""
        return self.token_jwks_file or self.key_dir / "issuer.jwks.json"
