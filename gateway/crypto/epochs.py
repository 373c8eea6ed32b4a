"""Key epochs: the keys that wrap data keys, kept as files in the key store and never in the database.

A data key is wrapped by the key of its epoch (one epoch per month in which data falls due, a hold
epoch per legal hold, and an `open` epoch for data without a known due date); each epoch key is sealed
with the KEK. Destroying an epoch's file makes every data key wrapped by it unreadable wherever a copy
of the wrapped key survives, database backups included: the KEK alone no longer opens them. Rows from
before key epochs (no epoch id) stay wrapped by the KEK directly and are read as before.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto.envelope import DecryptionError, Envelope

EPOCH_DIR = "epochs"
OPEN_EPOCH = "open"
_EPOCH_ID = re.compile(r"^(open|due-\d{4}-\d{2}|hold-[A-Za-z0-9-]{1,40})$")


class EpochDestroyed(DecryptionError):
    """The epoch key is gone: data keys wrapped by it can no longer be opened."""


def valid_epoch_id(epoch_id: str) -> bool:
    """Return whether `epoch_id` is a well-formed epoch id (it also names a file, so it is checked)."""
    return bool(_EPOCH_ID.match(epoch_id))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EpochKeyStore:
    """Epoch keys as files `<key_dir>/epochs/<epoch id>.key`: base64 of the key sealed with the KEK."""

    def __init__(self, directory: Path, kek: bytes) -> None:
        self.directory = directory
        self._kek = AESGCM(kek)
        self._cache: dict[str, bytes] = {}
        self._paths: dict[str, str] = {}  # epoch id -> its key file, for the one stat per use
        self._lock = threading.Lock()

    def _path(self, epoch_id: str) -> Path:
        if not valid_epoch_id(epoch_id):
            raise ValueError(f"not an epoch id: {epoch_id!r}")
        return self.directory / f"{epoch_id}.key"

    @staticmethod
    def _aad(epoch_id: str) -> bytes:
        # Binds the sealed key to its id: a file renamed to another epoch does not open.
        return f"epoch|{epoch_id}".encode()

    def exists(self, epoch_id: str) -> bool:
        """Return whether the epoch's key file exists."""
        return self._path(epoch_id).exists()

    def key(self, epoch_id: str, create: bool = False) -> bytes:
        """Return the epoch key (creating it when `create`); raise EpochDestroyed when it is gone."""
        cached = self._cache.get(epoch_id)
        if cached is not None and os.path.exists(self._paths[epoch_id]):
            # The file is checked on every use (one stat, no lock): a process's cached key must not
            # outlive its destruction. A key returned here had its file at the moment of the check, so
            # this use is ordered before any destruction, as it would be under the lock.
            return cached
        path = self._path(epoch_id)
        with self._lock:
            if path.exists() and epoch_id in self._cache:
                return self._cache[epoch_id]
            if not path.exists():
                if not create:
                    self._cache.pop(epoch_id, None)
                    raise EpochDestroyed(f"epoch key {epoch_id} does not exist (destroyed or never created)")
                self._create(epoch_id, path)
            sealed = base64.b64decode(path.read_bytes().strip())
            try:
                key = self._kek.decrypt(sealed[:12], sealed[12:], self._aad(epoch_id))
            except Exception as exc:  # InvalidTag: wrong KEK or a file of another epoch
                raise DecryptionError(f"epoch key {epoch_id} does not open with this KEK") from exc
            self._paths[epoch_id] = str(path)
            self._cache[epoch_id] = key
            return key

    def _create(self, epoch_id: str, path: Path) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        data = base64.b64encode(nonce + self._kek.encrypt(nonce, key, self._aad(epoch_id))) + b"\n"
        tmp = self.directory / f".{epoch_id}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            # link, not rename: when another process created the epoch first, its key wins and stays.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def destroy(self, epoch_id: str) -> bool:
        """Overwrite and remove the epoch's key file; return whether there was one."""
        path = self._path(epoch_id)
        with self._lock:
            self._cache.pop(epoch_id, None)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return False
            # Overwritten before unlinking, so the sealed key is not left in freed blocks (best effort:
            # journaling and copy-on-write file systems may keep old blocks; the KEK still seals it).
            with open(path, "r+b") as fh:
                fh.write(os.urandom(size))
                fh.flush()
                os.fsync(fh.fileno())
            path.unlink()
            _fsync_dir(self.directory)
            return True

    def epoch_ids(self) -> list[str]:
        """Return the ids of the epoch key files present."""
        if not self.directory.exists():
            return []
        return sorted(p.stem for p in self.directory.glob("*.key") if valid_epoch_id(p.stem))


def _epoch_aad(participant_id: str, category: str, epoch_id: str) -> bytes:
    return f"dek|{participant_id}|{category}|{epoch_id}".encode()


class DataKeyWrapper:
    """Wraps data keys with their epoch's key; unwraps legacy rows (no epoch) with the KEK."""

    def __init__(self, envelope: Envelope, epochs: EpochKeyStore) -> None:
        self.envelope = envelope
        self.epochs = epochs
        self.kek_id = envelope.kek_id

    def new_data_key(self, participant_id: str, category: str, epoch_id: str) -> tuple[bytes, bytes]:
        """Return a fresh data key and its form wrapped by the epoch key (the only form ever stored)."""
        dek = AESGCM.generate_key(bit_length=256)
        return dek, self.wrap(dek, participant_id, category, epoch_id)

    def wrap(self, dek: bytes, participant_id: str, category: str, epoch_id: str) -> bytes:
        """Return `dek` wrapped by the epoch key of `epoch_id` (created when missing)."""
        key = AESGCM(self.epochs.key(epoch_id, create=True))
        nonce = os.urandom(12)
        return nonce + key.encrypt(nonce, dek, _epoch_aad(participant_id, category, epoch_id))

    def unwrap(self, wrapped: bytes, participant_id: str, category: str, epoch_id: str | None) -> bytes:
        """Return the data key inside `wrapped`; a row without epoch id is a legacy row wrapped by the KEK."""
        if epoch_id is None:
            return self.envelope.unwrap(wrapped, participant_id, category)
        key = AESGCM(self.epochs.key(epoch_id))
        try:
            return key.decrypt(wrapped[:12], wrapped[12:], _epoch_aad(participant_id, category, epoch_id))
        except Exception as exc:
            raise DecryptionError("wrapped data key does not authenticate") from exc

    def unwrap_many(self, items: Sequence[tuple[bytes | None, str, str, str | None]]) -> list[bytes | None]:
        """Return the data key of each (wrapped, participant id, category, epoch id), None where `wrapped` is
        None (destroyed); raise EpochDestroyed when an epoch's key is gone.

        The keys of one read: each epoch's key is looked up (its file checked) once for all of them, at the
        moment of this call, as `unwrap` would for each.
        """
        ciphers: dict[str, AESGCM] = {}
        out: list[bytes | None] = []
        for wrapped, participant_id, category, epoch_id in items:
            if wrapped is None:
                out.append(None)
            elif epoch_id is None:
                out.append(self.envelope.unwrap(wrapped, participant_id, category))
            else:
                cipher = ciphers.get(epoch_id)
                if cipher is None:
                    cipher = ciphers[epoch_id] = AESGCM(self.epochs.key(epoch_id))
                try:
                    aad = _epoch_aad(participant_id, category, epoch_id)
                    out.append(cipher.decrypt(wrapped[:12], wrapped[12:], aad))
                except Exception as exc:
                    raise DecryptionError("wrapped data key does not authenticate") from exc
        return out

    def rewrap(
        self, wrapped: bytes, participant_id: str, category: str, from_epoch: str | None, to_epoch: str
    ) -> bytes:
        """Return the data key in `wrapped` wrapped again by the key of `to_epoch`."""
        return self.wrap(self.unwrap(wrapped, participant_id, category, from_epoch), participant_id, category, to_epoch)
