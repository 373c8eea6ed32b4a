"""`gateway audit export`: the log up to its latest checkpoint, in files anyone can verify offline.

Layout of the export directory (format `lvv-gateway-audit-export/1`):

    manifest.json                      origin, entry count, files (for people; the verifier derives
                                       everything it checks from the files themselves)
    keys.txt                           the checkpoint verifier keys, `name+keyid+base64(0x01||key)`
    checkpoints/<size>.txt             every signed checkpoint up to the latest, C2SP text
    segments/<first>-<last>.jsonl      the entries first..last, one per line: the exact canonical
                                       bytes that were hashed (leaf = SHA-256(0x00 || line))
    segments/<first>-<last>.leaves     the leaf hashes the gateway recorded for those entries,
                                       32 bytes each; they let the verifier name an edited entry

Segments hold at most `segment_entries` entries, so the verifier can hash them in parallel.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from gateway.audit import repository
from gateway.store.db import Database

FORMAT = "lvv-gateway-audit-export/1"
SEGMENT_ENTRIES = 65_536


class ExportError(Exception):
    """The export cannot be written (no checkpoint yet, or the target is not empty)."""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    entries: int
    checkpoints: int
    segments: int
    directory: Path


def segment_name(first: int, last: int) -> str:
    """Return the file stem of the segment holding entries first..last."""
    return f"{first:012d}-{last:012d}"


def checkpoint_name(size: int) -> str:
    """Return the file name of the checkpoint of a tree size."""
    return f"{size:012d}.txt"


def export_log(
    db: Database, out: Path, key_dir: Path | None, origin: str, segment_entries: int = SEGMENT_ENTRIES
) -> ExportSummary:
    """Write entries, checkpoints and keys up to the latest checkpoint into `out` (new or empty)."""
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty")
    latest = repository.latest_checkpoint(db)
    if latest is None:
        raise ExportError("no checkpoint has been signed yet; run `gateway audit checkpoint` first")
    size = latest.checkpoint.size
    (out / "segments").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    keys = repository.verifier_keys(db, key_dir, origin)
    (out / "keys.txt").write_text("".join(k.key.encode() + "\n" for k in keys))
    checkpoint_files = []
    for signed in repository.checkpoints(db, upto=size):
        name = checkpoint_name(signed.checkpoint.size)
        (out / "checkpoints" / name).write_text(signed.text)
        checkpoint_files.append(f"checkpoints/{name}")
    segments = []
    for first in range(1, size + 1, segment_entries):
        last = min(size, first + segment_entries - 1)
        stem = segment_name(first, last)
        lines: list[bytes] = []
        leaves: list[bytes] = []
        for stored in repository.entries(db, first - 1, last):
            lines.append(stored.entry.encode())
            leaves.append(stored.leaf_hash)
        if len(lines) != last - first + 1:
            raise ExportError(f"the database lacks entries between {first} and {last}")
        _write(out / "segments" / f"{stem}.jsonl", b"\n".join(lines) + b"\n")
        _write(out / "segments" / f"{stem}.leaves", b"".join(leaves))
        segments.append({"entries": f"segments/{stem}.jsonl", "first_seq": first, "last_seq": last})
    manifest = {
        "format": FORMAT,
        "origin": latest.checkpoint.origin,
        "entries": size,
        "latest_checkpoint": f"checkpoints/{checkpoint_name(size)}",
        "checkpoints": checkpoint_files,
        "segments": segments,
        "keys": "keys.txt",
        "verify": "gateway audit verify DIR --keys KEYS --checkpoint CHECKPOINT_KEPT_ELSEWHERE",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return ExportSummary(size, len(checkpoint_files), len(segments), out)


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
