"""`gateway audit witness`: keep a gateway's checkpoints, and refuse any that does not extend the last.

A partner runs it on a schedule. Each run fetches the latest signed checkpoint, checks its signature
with keys the witness keeps, fetches a consistency proof from the last checkpoint it kept to the new
one, verifies the proof itself, and only then keeps the new checkpoint. A log that was rewritten, rolled
back or shows two histories fails the run (non-zero exit) and the offending checkpoint is kept under
`rejected/` as evidence. The kept checkpoints feed `gateway audit verify --checkpoint`.

State directory: `keys.txt` (trusted verifier keys), `checkpoint.txt` (the last kept checkpoint),
`checkpoints/<size>.txt` (every kept checkpoint), `rejected/` (what failed, with the reason).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.audit.checkpoint import CheckpointError, SignedCheckpoint, VerifierKey, parse, parse_verifier_keys
from gateway.audit.export import checkpoint_name
from gateway.audit.merkle import verify_consistency

KEYS_FILE = "keys.txt"
LATEST_FILE = "checkpoint.txt"


class WitnessError(Exception):
    """The gateway's checkpoint could not be fetched or does not extend the last one kept."""


@dataclass(frozen=True, slots=True)
class Witnessed:
    checkpoint: SignedCheckpoint
    previous_size: int | None
    pinned_keys: bool  # the keys were fetched from the gateway on this first run (trust on first use)


def _get(url: str, timeout: float) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise WitnessError(f"only http(s) URLs are fetched, not {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read(1 << 20)
            return body
    except urllib.error.HTTPError as exc:
        raise WitnessError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise WitnessError(f"{url}: {exc}") from None


def _get_json(url: str, timeout: float) -> Any:
    try:
        return json.loads(_get(url, timeout))
    except ValueError as exc:
        raise WitnessError(f"{url}: not JSON ({exc})") from None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _reject(state: Path, signed: SignedCheckpoint | None, text: str, reason: str) -> WitnessError:
    folder = state / "rejected"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    size = signed.checkpoint.size if signed is not None else "unparsed"
    (folder / f"{stamp}-{size}.txt").write_text(text)
    (folder / f"{stamp}-{size}.reason").write_text(reason + "\n")
    return WitnessError(reason)


def witness(base_url: str, state: Path, keys: Sequence[VerifierKey] | None = None, timeout: float = 10.0) -> Witnessed:
    """Fetch, check and keep the gateway's latest checkpoint; raise WitnessError when it must not be kept."""
    base = base_url.rstrip("/")
    state.mkdir(parents=True, exist_ok=True)
    pinned = False
    if keys is None:
        keys_file = state / KEYS_FILE
        if not keys_file.exists():
            published = _get_json(f"{base}/v1/audit/keys", timeout)
            lines = [k["verifier_key"] for k in published.get("keys", [])]
            parse_verifier_keys(lines)
            _atomic_write(keys_file, "".join(line + "\n" for line in lines))
            pinned = True
        keys = parse_verifier_keys(keys_file.read_text().splitlines())
    text = _get(f"{base}/v1/audit/checkpoint", timeout).decode("utf-8", errors="replace")
    try:
        signed = parse(text)
        signed.verify(keys)
    except CheckpointError as exc:
        raise _reject(state, None, text, f"the gateway's checkpoint does not verify: {exc}") from None
    new = signed.checkpoint
    latest_file = state / LATEST_FILE
    previous = parse(latest_file.read_text()) if latest_file.exists() else None
    if previous is not None:
        old = previous.checkpoint
        if old.origin != new.origin:
            raise _reject(state, signed, text, f"the checkpoint is of another log ({new.origin}, kept: {old.origin})")
        if new.size < old.size:
            raise _reject(
                state, signed, text, f"the log shrank from {old.size} to {new.size} entries (rolled back or truncated)"
            )
        if new.size == old.size and new.root != old.root:
            raise _reject(state, signed, text, f"split view: two different trees of size {new.size} are signed")
        if new.size > old.size:
            query = urllib.parse.urlencode({"first": old.size, "second": new.size})
            body = _get_json(f"{base}/v1/audit/proofs/consistency?{query}", timeout)
            try:
                proof = [base64.b64decode(h, validate=True) for h in body["consistency_path"]]
            except (KeyError, TypeError, ValueError):
                raise _reject(state, signed, text, "the consistency proof is malformed") from None
            if not verify_consistency(old.size, new.size, old.root, new.root, proof):
                raise _reject(
                    state,
                    signed,
                    text,
                    f"the checkpoint of size {new.size} does not extend the one kept of size {old.size}: "
                    "the log was rewritten",
                )
    history = state / "checkpoints"
    history.mkdir(exist_ok=True)
    (history / checkpoint_name(new.size)).write_text(signed.text)
    _atomic_write(latest_file, signed.text)
    return Witnessed(signed, previous.checkpoint.size if previous is not None else None, pinned)
