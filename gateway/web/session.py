"""Session cookies and CSRF tokens of the web pages (officer and jurist), one codec per page family.

The cookie holds a random session id (256 bits; the server keeps only its SHA-256, in `web_sessions`)
and the access token sealed with AES-256-GCM (bound to the session id), all HMAC-SHA-256 signed:
`<session id>.<sealed token>.<mac>`. The token is never in the cookie in clear and stored nowhere
else; it is unsealed and verified again on every page. Each page family has keys of its own, derived
from `officer-session.key` in the key dir, so a cookie of one family is nothing to the other.
CSRF: every state-changing form POSTs a token derived from the session id (HMAC with a label); the
sign-in form, before there is a session, uses a nonce in a short-lived pre-login cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_hash(session_id: str) -> str:
    """Return the hex SHA-256 under which a session id is stored."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """What a valid cookie holds: the session id and the access token it was signed in with."""

    session_id: str
    token: str


class SessionCodec:
    """Issues and checks the signed session cookies and CSRF tokens of one page family."""

    def __init__(self, key: bytes, family: str) -> None:
        if len(key) < 32:
            raise ValueError("the session key must be at least 32 bytes")
        label = f"web-session-v2.{family}.".encode()
        self._label = label
        # Separate keys for the MAC and the token seal, for this page family only.
        self._key = hmac.new(key, label + b"mac", hashlib.sha256).digest()
        self._seal = AESGCM(hmac.new(key, label + b"seal", hashlib.sha256).digest())

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, self._label + purpose + data, hashlib.sha256).digest()

    @staticmethod
    def new_session_id() -> str:
        """Return a fresh random session id (256 bits)."""
        return _b64(os.urandom(32))

    @staticmethod
    def new_nonce() -> str:
        """Return a fresh random nonce (128 bits)."""
        return _b64(os.urandom(16))

    def issue(self, session_id: str, token: str) -> str:
        """Return the cookie value for a session signed in with `token`."""
        nonce = os.urandom(12)
        sealed = _b64(nonce + self._seal.encrypt(nonce, token.encode(), self._label + session_id.encode()))
        body = f"{session_id}.{sealed}"
        return f"{body}.{_b64(self._mac(b'cookie.', body.encode()))}"

    def read(self, value: str | None) -> SessionCookie | None:
        """Return what a cookie holds, or None when it is absent or forged."""
        if not value or value.count(".") != 2:
            return None
        session_id, sealed, mac = value.split(".")
        try:
            if not hmac.compare_digest(_unb64(mac), self._mac(b"cookie.", f"{session_id}.{sealed}".encode())):
                return None
            raw = _unb64(sealed)
            token = self._seal.decrypt(raw[:12], raw[12:], self._label + session_id.encode()).decode()
        except (InvalidTag, ValueError):
            return None
        return SessionCookie(session_id, token)

    def csrf(self, session_id: str) -> str:
        """Return the CSRF token for forms of this session."""
        return _b64(self._mac(b"csrf.", session_id.encode()))

    def csrf_ok(self, session_id: str, token: str | None) -> bool:
        """Return whether a submitted CSRF token belongs to this session."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session_id))

    def login_csrf(self, nonce: str) -> str:
        """Return the CSRF token for the sign-in form bound to the pre-login cookie's nonce."""
        return _b64(self._mac(b"login-csrf.", nonce.encode()))

    def login_csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        """Return whether the sign-in form's token matches the pre-login cookie."""
        return bool(nonce) and bool(token) and hmac.compare_digest(str(token), self.login_csrf(str(nonce)))
