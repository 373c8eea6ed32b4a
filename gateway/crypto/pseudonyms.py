"""Per-recipient pseudonyms: each organisation sees its own stable identifier for a participant.

HMAC-SHA-256 keyed with a gateway secret over (organisation, participant id): stable for one
organisation, unlinkable between two organisations without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the pseudonym key must be at least 32 bytes")
        self._key = key

    def pseudonym(self, organisation: str, participant_id: str) -> str:
        """Return the pseudonym `organisation` knows `participant_id` by (26 base32 chars, 130 bits)."""
        mac = hmac.new(self._key, f"{organisation}\x00{participant_id}".encode(), hashlib.sha256).digest()
        return "p" + base64.b32encode(mac).decode().lower()[:26]
