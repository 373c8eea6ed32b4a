"""Envelope encryption at rest: AES-256-GCM data keys, wrapped by a key-encryption key (KEK).

One data key per participant and category. Destroying the wrapped data key (crypto-shredding) makes
every ciphertext under it unrecoverable from the database. A backup still holds the wrapped key: new
data keys are therefore wrapped by key-epoch keys (`gateway.crypto.epochs`), whose destruction reaches
backups; wrapping directly by the KEK is kept for rows from before key epochs. Associated data binds
each ciphertext and each wrapped key to its row, so a ciphertext moved to another participant or
category does not decrypt.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext or wrapped key did not authenticate (tampered, moved, or wrong key)."""


def _seal(key: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + key.encrypt(nonce, plaintext, aad)


def _open(key: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    try:
        return key.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except Exception as exc:  # cryptography raises InvalidTag; any failure means "does not open"
        raise DecryptionError("ciphertext does not authenticate") from exc


def _dek_aad(participant_id: str, category: str) -> bytes:
    return f"dek|{participant_id}|{category}".encode()


def _record_aad(participant_id: str, category: str, record_id: str) -> bytes:
    return f"rec|{participant_id}|{category}|{record_id}".encode()


class Envelope:
    """Wraps and unwraps data keys with the KEK; seals and opens records with data keys."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (AES-256)")
        self._kek = AESGCM(kek)
        self.kek_id = hashlib.sha256(b"kek-id|" + kek).hexdigest()[:16]

    def new_data_key(self, participant_id: str, category: str) -> tuple[bytes, bytes]:
        """Return a fresh data key and its wrapped form (the only form ever stored)."""
        dek = AESGCM.generate_key(bit_length=256)
        return dek, _seal(self._kek, dek, _dek_aad(participant_id, category))

    def unwrap(self, wrapped: bytes, participant_id: str, category: str) -> bytes:
        """Return the data key inside `wrapped`."""
        return _open(self._kek, wrapped, _dek_aad(participant_id, category))

    @staticmethod
    def seal_record(dek: bytes, plaintext: bytes, participant_id: str, category: str, record_id: str) -> bytes:
        """Return nonce || ciphertext || tag of one record."""
        return _seal(AESGCM(dek), plaintext, _record_aad(participant_id, category, record_id))

    @staticmethod
    def open_record(dek: bytes, sealed: bytes, participant_id: str, category: str, record_id: str) -> bytes:
        """Return the plaintext of one sealed record."""
        return _open(AESGCM(dek), sealed, _record_aad(participant_id, category, record_id))
