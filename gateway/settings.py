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
        default=None, description="Public keys that sign access tokens (default: key_dir/issuer.jwks.json)"
    )
    token_algorithms: tuple[str, ...] = ("ES256", "RS256")
    token_leeway_seconds: int = Field(default=30, ge=0, le=120)
    audit_flush_timeout_seconds: float = Field(default=5.0, gt=0)
    demo: bool = Field(default=False, description="Demo mode: allows the synthetic demo keys and seed")
    clock_start: datetime | None = Field(
        default=None, description="Demo only: the simulated moment the clock showed at `clock_anchor`"
    )
    clock_anchor: float | None = Field(default=None, description="Demo only: real POSIX time of clock_start")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

    @model_validator(mode="after")
    def _safe_algorithms(self) -> Settings:
        allowed = {"ES256", "RS256", "PS256", "ES384", "RS384", "PS384", "EdDSA"}
        bad = set(self.token_algorithms) - allowed
        if bad:
            raise ValueError(f"token_algorithms may only hold asymmetric algorithms, not {sorted(bad)}")
        if self.clock_start is not None and not self.demo:
            raise ValueError("a simulated clock (clock_start) is allowed only in demo mode")
        if self.clock_start is not None and self.clock_start.tzinfo is None:
            raise ValueError("clock_start needs a time zone offset")
        return self

    @property
    def jwks_path(self) -> Path:
        """Return the file of public keys trusted for access tokens."""
        return self.token_jwks_file or self.key_dir / "issuer.jwks.json"
