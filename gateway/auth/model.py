"""Partner authentication, the domain: registered clients, their status, and what a request's check reads.

Pure data; no framework, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_CREDENTIALS = "client_credentials"
# Client assertions: RS256 is what the NL GOV Assurance profile requires; PS256 and ES256 are accepted.
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")
SIGNING_ALGORITHMS = ("ES256", "RS256", "PS256")
# Header parameters that point at keys elsewhere or demand extensions: never honoured, always refused.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
MIN_JTI_LENGTH = 22  # 128 bits as base64url; 32 hex characters also qualify


class Status(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Client:
    """A registered partner system."""

    client_id: str
    organisation: str
    name: str
    roles: tuple[str, ...]
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    status: Status
    status_reason: str | None
    demo: bool
    certificate_bound: bool
    rate_limit_per_minute: int | None

    @property
    def active(self) -> bool:
        """Return whether the client may authenticate."""
        return self.status is Status.ACTIVE


@dataclass(frozen=True, slots=True)
class PartyStatus:
    """What one request's revocation check reads: the client's and the organisation's status, and the epoch.

    `client` is None when the client is not in the registry (a token from an external issuer).
    """

    epoch: int
    client: Status | None
    organisation_disabled: bool
    rate_limit_per_minute: int | None


class RegistryError(Exception):
    """A registration or key change was refused; the message says why."""
