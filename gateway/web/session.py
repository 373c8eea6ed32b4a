"""Signed officer sessions and CSRF tokens for the review pages.

The cookie holds who the officer is (organisation, client, token id, acting user, role), when the
session ends, a random nonce, and the access token sealed with AES-256-GCM; all of it is
HMAC-SHA-256 signed. Both keys derive from `officer-session.key` in the key dir. The token is never
in the cookie in clear and is stored nowhere else; it is unsealed and verified again on every page,
so a revoked token or a disabled client ends the session at once, not when the cookie expires.
A session ends at the earlier of `officer_session_minutes` after login and the token's expiry.
The cookie is HttpOnly, SameSite=Strict, Secure when served over https, and scoped to /officer.
CSRF: every state-changing form POSTs a token derived from the session nonce (HMAC with a label);
the login form, before there is a session, uses a nonce in a short-lived pre-login cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SESSION_COOKIE = "officer_session"
LOGIN_COOKIE = "officer_login"
COOKIE_PATH = "/officer"
_SESSION_LABEL = b"officer-session-v1."
_CSRF_LABEL = b"officer-csrf-v1."
_LOGIN_LABEL = b"officer-login-csrf-v1."
_TOKEN_AD = b"officer-session-token-v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class OfficerSession:
    organisation: str
    client_id: str
    token_id: str
    acting_user: str
    role: str
    expires_at: int  # POSIX seconds on the gateway's clock
    nonce: str
    sealed_token: str = ""  # base64url(nonce || AES-GCM(token)); see SessionCodec.seal


class SessionCodec:
    """Issues and checks signed session cookies and CSRF tokens."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the session key must be at least 32 bytes")
        # Separate keys for the MAC and the token seal, derived from the one key file.
        self._key = hmac.new(key, b"officer-session-mac", hashlib.sha256).digest()
        self._seal = AESGCM(hmac.new(key, b"officer-session-seal", hashlib.sha256).digest())

    def _mac(self, label: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, label + data, hashlib.sha256).digest()

    def seal(self, token: str) -> str:
        """Return the access token encrypted for the cookie."""
        nonce = os.urandom(12)
        return _b64(nonce + self._seal.encrypt(nonce, token.encode(), _TOKEN_AD))

    def unseal(self, session: OfficerSession) -> str | None:
        """Return the access token sealed in a session, or None when it does not decrypt."""
        try:
            raw = _unb64(session.sealed_token)
            return self._seal.decrypt(raw[:12], raw[12:], _TOKEN_AD).decode()
        except (InvalidTag, ValueError):
            return None

    def issue(self, session: OfficerSession) -> str:
        """Return the cookie value for `session`."""
        body = _b64(
            orjson.dumps(
                {
                    "o": session.organisation,
                    "c": session.client_id,
                    "t": session.token_id,
                    "u": session.acting_user,
                    "r": session.role,
                    "e": session.expires_at,
                    "n": session.nonce,
                    "k": session.sealed_token,
                }
            )
        )
        return f"{body}.{_b64(self._mac(_SESSION_LABEL, body.encode()))}"

    def read(self, value: str | None, now: float) -> OfficerSession | None:
        """Return the session in a cookie value, or None when it is absent, forged or expired."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        try:
            given = _unb64(mac)
            if not hmac.compare_digest(given, self._mac(_SESSION_LABEL, body.encode())):
                return None
            data = orjson.loads(_unb64(body))
            session = OfficerSession(
                str(data["o"]),
                str(data["c"]),
                str(data["t"]),
                str(data["u"]),
                str(data["r"]),
                int(data["e"]),
                str(data["n"]),
                str(data["k"]),
            )
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None
        return session if now < session.expires_at else None

    def csrf(self, session: OfficerSession) -> str:
        """Return the CSRF token for forms of this session."""
        return _b64(self._mac(_CSRF_LABEL, session.nonce.encode()))

    def csrf_ok(self, session: OfficerSession, token: str | None) -> bool:
        """Return whether a submitted CSRF token belongs to this session."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    @staticmethod
    def new_nonce() -> str:
        """Return a fresh random nonce (128 bits)."""
        return _b64(os.urandom(16))

    def login_csrf(self, nonce: str) -> str:
        """Return the CSRF token for the login form bound to the pre-login cookie's nonce."""
        return _b64(self._mac(_LOGIN_LABEL, nonce.encode()))

    def login_csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        """Return whether the login form's token matches the pre-login cookie."""
        return bool(nonce) and bool(token) and hmac.compare_digest(str(token), self.login_csrf(str(nonce)))
