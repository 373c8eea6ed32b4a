"""Errors of the token and introspection endpoints, as RFC 6749 section 5.2 has them (JSON, never HTML)."""

from __future__ import annotations

from typing import Any

# RFC 6749 section 5.2, and the 429 of a rate limit (no OAuth error code exists for it).
INVALID_REQUEST = "invalid_request"
INVALID_CLIENT = "invalid_client"
UNAUTHORIZED_CLIENT = "unauthorized_client"
UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
INVALID_SCOPE = "invalid_scope"
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "temporarily_unavailable"  # the audit log cannot record a refusal (RFC 6749 section 4.1.2.1)

_STATUS = {INVALID_CLIENT: 401, RATE_LIMITED: 429, UNAVAILABLE: 503}


class OAuthError(Exception):
    """A refused token-endpoint request: `error` and `description` go to the client, `reason` to the log."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        reason: str | None = None,
        client_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.reason = reason or description
        self.client_id = client_id
        self.status = _STATUS.get(error, 400)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """Return the JSON error response body."""
        return {"error": self.error, "error_description": self.description}
