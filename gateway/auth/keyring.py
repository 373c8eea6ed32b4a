"""The gateway's own access-token signing keys: created, rotated, published and resolved for verification.

Keys live in the database, so every gateway process signs with the same key and trusts the same set.
The private key is sealed with the key-encryption key (AES-256-GCM, bound to its kid) and destroyed
when the key retires; the public key stays published until the last token it signed has expired.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey, Key, RSAKey, import_key

from gateway.auth.repository import AuthRepository, SigningKeyRow
from gateway.clock import Clock
from gateway.store.db import Database

ACTIVE, RETIRED = "active", "retired"
_NONCE = 12


class SigningKeyError(Exception):
    """A signing key cannot be used (sealed under another KEK, or tampered)."""


@dataclass(frozen=True, slots=True)
class Signer:
    kid: str
    alg: str
    key: Key


@dataclass(frozen=True, slots=True)
class _Published:
    key: Key
    active: bool
    publish_until: float | None

    def trusted_at(self, now: float) -> bool:
        return _published_at(self.active, self.publish_until, now)


def _published_at(active: bool, publish_until: float | None, now: float) -> bool:
    """Return whether a key is published (trusted) at `now`: active, or retired with tokens still alive."""
    return active or (publish_until is not None and now < publish_until)


def _generate(alg: str) -> Key:
    parameters = {"alg": alg, "use": "sig"}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters, auto_kid=True)  # type: ignore[arg-type]
    return RSAKey.generate_key(3072, parameters=parameters, auto_kid=True)  # type: ignore[arg-type]


class KeyRing:
    def __init__(self, db: Database, repo: AuthRepository, kek: bytes, clock: Clock, algorithm: str) -> None:
        self._db = db
        self._repo = repo
        self._kek = AESGCM(kek)
        self._kek_id = hashlib.sha256(b"auth-signing-kek|" + kek).hexdigest()[:16]
        self._clock = clock
        self._algorithm = algorithm
        self._lock = threading.Lock()
        self._published: dict[str, _Published] = {}
        self._signer: Signer | None = None

    # -- sealing ---------------------------------------------------------------------------------

    def _seal(self, kid: str, private: Key) -> bytes:
        nonce = os.urandom(_NONCE)
        plaintext = json.dumps(private.as_dict(private=True)).encode()
        return nonce + self._kek.encrypt(nonce, plaintext, f"auth-signing-key|{kid}".encode())

    def _unseal(self, row: SigningKeyRow) -> Key:
        if row.private_sealed is None:
            raise SigningKeyError(f"signing key {row.kid} is retired; its private part is destroyed")
        if row.kek_id != self._kek_id:
            raise SigningKeyError(f"signing key {row.kid} is sealed under another key-encryption key")
        sealed = row.private_sealed
        try:
            plaintext = self._kek.decrypt(sealed[:_NONCE], sealed[_NONCE:], f"auth-signing-key|{row.kid}".encode())
        except Exception as exc:  # InvalidTag: tampered, moved to another kid, or a different KEK
            raise SigningKeyError(f"signing key {row.kid} does not unseal") from exc
        return import_key(json.loads(plaintext))

    def _new_row(self, now: datetime) -> SigningKeyRow:
        key = _generate(self._algorithm)
        kid = str(key.kid)
        return SigningKeyRow(
            kid=kid,
            alg=self._algorithm,
            public_jwk=key.as_dict(private=False),
            private_sealed=self._seal(kid, key),
            kek_id=self._kek_id,
            status=ACTIVE,
            created_at=now,
            retired_at=None,
            publish_until=None,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def ensure_key(self) -> str:
        """Create the first signing key unless one is active; return the active kid."""
        with self._db.write.begin() as conn:
            self._repo.lock_state(conn)
            active = self._repo.active_signing_key(conn)
            if active is not None:
                return active.kid
            row = self._new_row(self._clock.now())
            self._repo.add_signing_key(conn, row)
            self._repo.bump_epoch(conn)
        return row.kid

    def rotate(self, keep_published: timedelta, revoke_previous: bool = False) -> tuple[str, list[str]]:
        """Activate a new key and retire the old ones; return (new kid, retired kids).

        A retired key stays published for `keep_published` (the longest a token it signed can still
        be valid), unless `revoke_previous`: then every earlier key is withdrawn at once (compromise).
        """
        now = self._clock.now()
        with self._db.write.begin() as conn:
            self._repo.lock_state(conn)
            retired = self._repo.retire_active_keys(conn, now, now if revoke_previous else now + keep_published)
            if revoke_previous:
                retired += [k for k in self._repo.withdraw_retired_keys(conn, now) if k not in retired]
            row = self._new_row(now)
            self._repo.add_signing_key(conn, row)
            self._repo.bump_epoch(conn)
        self.invalidate()
        return row.kid, retired

    def invalidate(self) -> None:
        """Forget what is held in memory; the next use reads the database."""
        with self._lock:
            self._published.clear()
            self._signer = None

    # -- signing ---------------------------------------------------------------------------------

    def signer(self) -> Signer:
        """Return the key to sign with now: the newest active key (created on first use)."""
        with self._db.read.connect() as conn:
            row = self._repo.active_signing_key(conn)
        if row is None:
            self.ensure_key()
            with self._db.read.connect() as conn:
                row = self._repo.active_signing_key(conn)
            assert row is not None
        with self._lock:
            if self._signer is not None and self._signer.kid == row.kid:
                return self._signer
        signer = Signer(row.kid, row.alg, self._unseal(row))
        with self._lock:
            self._signer = signer
        return signer

    # -- verification and publication ------------------------------------------------------------

    def resolve(self, kid: str, now: float) -> Key | None:
        """Return the public key `kid` if it is published at `now`, else None."""
        with self._lock:
            known = self._published.get(kid)
        if known is None:
            if len(kid) > 64:
                return None
            with self._db.read.connect() as conn:
                row = self._repo.signing_key(conn, kid)
            if row is None:
                return None
            known = _Published(
                import_key(row.public_jwk),
                row.status == ACTIVE,
                row.publish_until.timestamp() if row.publish_until else None,
            )
            with self._lock:
                self._published[kid] = known
        return known.key if known.trusted_at(now) else None

    def published(self) -> list[dict[str, object]]:
        """Return the public JWKs published now: the active key and retired keys whose tokens may live."""
        now = self._clock.timestamp()
        with self._db.read.connect() as conn:
            rows = self._repo.signing_keys(conn)
        out: list[dict[str, object]] = []
        for row in rows:
            until = row.publish_until.timestamp() if row.publish_until else None
            if _published_at(row.status == ACTIVE, until, now):
                out.append({**row.public_jwk, "kid": row.kid, "alg": row.alg, "use": "sig"})
        return out

    def describe(self) -> list[SigningKeyRow]:
        """Return every signing key (for `gateway signing-keys list`)."""
        with self._db.read.connect() as conn:
            return self._repo.signing_keys(conn)
