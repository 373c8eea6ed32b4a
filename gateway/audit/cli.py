"""The `gateway audit ...` commands for the log as evidence (checkpoint, export, verify, witness, keys)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.cli_output import add_json_flag


def _settings() -> Any:
    from gateway.cli import load_settings

    return load_settings()


def _clock(settings: Any) -> Any:
    """Return the clock the gateway itself would use (the simulated one in demo mode)."""
    from gateway.clock import SimulatedClock, SystemClock

    return SimulatedClock(settings.clock_start, settings.clock_anchor) if settings.clock_start else SystemClock()


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from gateway.audit.sealer import InconsistentCheckpoint, SealingRefused
    from gateway.container import build_sealer
    from gateway.store.db import connect

    settings = _settings()
    db = connect(settings.database_url)
    try:
        sealer = build_sealer(settings, db, _clock(settings))
        if sealer is None:
            print(f"no checkpoint signing key in {settings.key_dir}; run `gateway keys init`", file=sys.stderr)
            return 2
        signed = None
        try:
            while (step := sealer.seal()) is not None:
                signed = step  # a long backlog is sealed in steps of audit_checkpoint_max_entries
        except (InconsistentCheckpoint, SealingRefused) as exc:
            print(f"refused to sign: {exc}", file=sys.stderr)
            return 1
        from gateway.audit.repository import latest_checkpoint

        latest = signed or latest_checkpoint(db)
        if latest is not None:
            print(latest.text, end="")
        if signed is None:
            print("(no new entries since this checkpoint)", file=sys.stderr)
        return 0
    finally:
        db.dispose()


def cmd_reindex(args: argparse.Namespace) -> int:
    from gateway.audit import index
    from gateway.store.db import connect

    settings = _settings()
    db = connect(settings.database_url)
    try:
        if args.catch_up:
            done = index.catch_up(db)
        else:
            done = index.rebuild(db)
        now = index.progress(db)
        print(f"indexed {done} entries; the index holds entries 1..{now.indexed_through} of {now.head}")
        return 0
    finally:
        db.dispose()


def cmd_export(args: argparse.Namespace) -> int:
    from gateway.audit.export import ExportError, export_log
    from gateway.audit.sealer import InconsistentCheckpoint, SealingRefused
    from gateway.container import build_sealer
    from gateway.store.db import connect

    settings = _settings()
    db = connect(settings.database_url)
    try:
        if not args.no_seal:
            sealer = build_sealer(settings, db, _clock(settings))
            try:
                while sealer is not None and sealer.seal() is not None:
                    pass  # a long backlog is sealed in steps of audit_checkpoint_max_entries
            except (InconsistentCheckpoint, SealingRefused) as exc:
                print(f"warning: could not sign a fresh checkpoint: {exc}", file=sys.stderr)
        try:
            summary = export_log(db, Path(args.out), settings.key_dir, settings.audit_origin, args.segment_entries)
        except ExportError as exc:
            print(f"export failed: {exc}", file=sys.stderr)
            return 1
    finally:
        db.dispose()
    print(
        f"exported {summary.entries} entries in {summary.segments} segments with {summary.checkpoints} "
        f"checkpoints to {summary.directory}"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from gateway.audit.checkpoint import CheckpointError, parse_verifier_keys
    from gateway.audit.verify import verify_export

    directory = Path(args.dir)
    if not directory.is_dir():
        print(f"{directory} is not a directory", file=sys.stderr)
        return 2
    keys = None
    if args.keys:
        try:
            keys = parse_verifier_keys(Path(args.keys).read_text().splitlines())
        except (OSError, CheckpointError) as exc:
            print(f"cannot read trusted keys: {exc}", file=sys.stderr)
            return 2
    report = verify_export(directory, keys, [Path(p) for p in args.checkpoint or []], args.jobs)
    if report.keys_from_export:
        print("note: the keys were taken from the export itself; pass --keys with keys you hold to pin them")
    rate = report.entries / report.seconds if report.seconds else 0.0
    if report.ok:
        print(
            f"log verified: {report.entries} entries, {report.checkpoints} signed checkpoints"
            f"{f', consistent with {report.external} kept elsewhere' if report.external else ''} "
            f"({report.seconds:.2f} s, {rate:,.0f} entries/s)"
        )
        return 0
    first = report.first
    assert first is not None
    where = f"at entry {first.seq}" if first.seq else "in the export"
    print(f"log verification FAILED {where}: {first.text}", file=sys.stderr)
    for finding in sorted(report.findings)[1:10]:
        print(f"  also: {finding.text}", file=sys.stderr)
    return 1


def cmd_witness(args: argparse.Namespace) -> int:
    from gateway.audit.checkpoint import parse_verifier_keys
    from gateway.audit.witness import WitnessError, witness

    keys = parse_verifier_keys(Path(args.keys).read_text().splitlines()) if args.keys else None
    try:
        result = witness(args.url, Path(args.state), keys, args.timeout)
    except WitnessError as exc:
        print(f"witness REFUSED the gateway's checkpoint: {exc}", file=sys.stderr)
        return 1
    cp = result.checkpoint.checkpoint
    if result.pinned_keys:
        print(f"pinned the gateway's keys in {Path(args.state) / 'keys.txt'} (trust on first use: check them)")
    since = f", extends the one kept at size {result.previous_size}" if result.previous_size is not None else ""
    print(f"kept checkpoint of size {cp.size}, root {cp.root_hex}{since}")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from gateway.audit.checkpoint import VerifierKey
    from gateway.audit.signing_keys import rotate_checkpoint_key

    settings = _settings()
    old, new = rotate_checkpoint_key(settings.key_dir)
    if old is not None:
        print(f"retired {VerifierKey(settings.audit_origin, old).encode()} (still published)")
    print(f"new checkpoint key {VerifierKey(settings.audit_origin, new).encode()}")
    print("restart the sealing gateway process to sign with it; give the new key to witnesses")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from gateway.audit.repository import verifier_keys
    from gateway.store.db import connect

    settings = _settings()
    db = connect(settings.database_url)
    try:
        for published in verifier_keys(db, settings.key_dir, settings.audit_origin):
            print(published.key.encode())
    finally:
        db.dispose()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from gateway.audit.status import log_status
    from gateway.store.db import connect

    settings = _settings()
    db = connect(settings.database_url)
    try:
        status = log_status(db)
    finally:
        db.dispose()
    cp = status.checkpoint
    if getattr(args, "json", False):
        from gateway.cli_output import print_json

        print_json(status)
        return 0 if status.verified else 1
    latest = f"size {cp.size}, root {cp.root_hex}, signed {cp.time.isoformat()}" if cp else "none"
    print(f"entries: {status.entries}\nlatest checkpoint: {latest}")
    print(f"verified: {'yes' if status.verified else 'NO'}{f' ({status.problem})' if status.problem else ''}")
    return 0 if status.verified else 1


def add_commands(audit: Any) -> None:
    """Add the evidence commands to the `gateway audit` subparsers."""
    checkpoint = audit.add_parser("checkpoint", help="sign a checkpoint over the entries committed so far")
    checkpoint.set_defaults(func=cmd_checkpoint)

    export = audit.add_parser("export", help="write entries, checkpoints and keys for offline verification")
    export.add_argument("--out", required=True, help="a new or empty directory")
    export.add_argument("--segment-entries", type=int, default=65_536, help="entries per segment file")
    export.add_argument("--no-seal", action="store_true", help="do not sign a fresh checkpoint first")
    export.set_defaults(func=cmd_export)

    verify = audit.add_parser("verify", help="verify an export offline; names the first bad entry")
    verify.add_argument("dir", help="the export directory")
    verify.add_argument(
        "--checkpoint", action="append", help="a checkpoint kept elsewhere (a witness's); may be repeated"
    )
    verify.add_argument("--keys", help="trusted verifier keys, one per line (default: the export's keys.txt)")
    verify.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per CPU)")
    verify.set_defaults(func=cmd_verify)

    witness = audit.add_parser("witness", help="fetch the latest checkpoint and keep it if it extends the last")
    witness.add_argument("--url", required=True, help="the gateway's base URL")
    witness.add_argument("--state", required=True, help="the witness's directory")
    witness.add_argument("--keys", help="trusted verifier keys (default: pinned in the state dir on first run)")
    witness.add_argument("--timeout", type=float, default=10.0)
    witness.set_defaults(func=cmd_witness)

    reindex = audit.add_parser(
        "reindex", help="rebuild the officer's search index from the log (derived data; safe at any time)"
    )
    reindex.add_argument("--catch-up", action="store_true", help="only index entries the index does not hold yet")
    reindex.set_defaults(func=cmd_reindex)
    audit.add_parser("rotate-key", help="replace the checkpoint signing key").set_defaults(func=cmd_rotate_key)
    audit.add_parser("keys", help="print the checkpoint verifier keys").set_defaults(func=cmd_keys)
    status = audit.add_parser("status", help="entries, latest checkpoint, and whether it all verifies")
    add_json_flag(status)
    status.set_defaults(func=cmd_status)
