"""Commands: `gateway verify FILE`, `gateway outbox ...`, `gateway evidence ...`.

`add_commands(subparsers)` adds them to the `gateway` command. `gateway verify` needs nothing but the
file and the published keys: no database, no settings, no network unless a URL is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli_output import add_json_flag, jsonable, open_container, print_json, step

if TYPE_CHECKING:
    from gateway.container import Container
    from gateway.evidence.keys import EvidenceKey
    from gateway.evidence.repository import StoredDocument

EXIT_INVALID = 1
EXIT_CANNOT_CHECK = 2


def _container() -> AbstractContextManager[Container]:
    return open_container()


# -- gateway verify ----------------------------------------------------------------------------------------


def _trusted_keys(source: str | None) -> list[EvidenceKey]:
    from gateway.evidence.keys import EVIDENCE_KEYS_FILE, fetch_keys, parse_keys

    if source is None:
        from gateway.cli import load_settings

        path = load_settings().key_dir / EVIDENCE_KEYS_FILE
        if not path.exists():
            raise FileNotFoundError("no --keys given and no published evidence keys in the key dir")
        return parse_keys(path.read_bytes(), str(path))
    if source.startswith(("https://", "http://")):
        return fetch_keys(source)
    return parse_keys(Path(source).read_bytes(), source)


def cmd_verify(args: argparse.Namespace) -> int:
    from gateway.evidence.envelope import EvidenceInvalid, verify_bytes
    from gateway.evidence.keys import EvidenceKeyError

    try:
        keys = _trusted_keys(args.keys)
    except (OSError, EvidenceKeyError) as exc:
        print(f"cannot check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    status = 0
    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            status = max(status, EXIT_CANNOT_CHECK)
            continue
        try:
            verified = verify_bytes(data, keys)
        except EvidenceInvalid as exc:
            print(f"{name}: INVALID: {exc}", file=sys.stderr)
            status = max(status, EXIT_INVALID)
            continue
        print(f"{name}: {verified.summary()}")
        if args.show and verified.document is not None:
            print(json.dumps(verified.document, indent=2, ensure_ascii=False, sort_keys=True))
    return status


# -- gateway outbox ------------------------------------------------------------------------------------------


def cmd_outbox_deliver(args: argparse.Namespace) -> int:
    from gateway.evidence.parts import evidence_parts

    with _container() as c:
        worker = evidence_parts(c).worker
        if worker.paused is not None:
            print(f"not delivering: {worker.paused}", file=sys.stderr)
            return EXIT_CANNOT_CHECK

        async def run() -> int:
            total = 0
            while True:
                report = await worker.deliver_due()
                total += report.attempted
                print(f"delivered {len(report.delivered)}, retry later {len(report.retried)}, dead {len(report.dead)}")
                if not args.loop:
                    return total
                await asyncio.sleep(args.interval)

        try:
            asyncio.run(run())
        except KeyboardInterrupt:
            pass
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from gateway.evidence.parts import evidence_parts
    from gateway.outbox.model import NoticeStatus

    with _container() as c:
        outbox = evidence_parts(c).outbox
        with c.db.read.connect() as conn:
            notices = outbox.notices(
                conn, status=NoticeStatus(args.status) if args.status else None, reference=args.reference
            )
            acks = outbox.acks(conn, [n.id for n in notices])
    if args.json:
        print_json([{**jsonable(n), "acknowledgements": acks[n.id]} for n in notices])
        return 0
    for n in notices:
        acked = acks[n.id][-1].outcome.value if acks[n.id] else "-"
        print(
            f"{n.id}  {n.status.value:9} {n.recipient_org:24} {n.reference or '-':28} attempts={n.attempts} "
            f"ack={acked} {n.last_error or ''}".rstrip()
        )
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from gateway.evidence.parts import evidence_parts

    with _container() as c:
        outbox = evidence_parts(c).outbox
        with c.db.write.begin() as conn:
            moved = outbox.requeue(conn, args.notice_id, c.clock.now())
    if not moved:
        print(f"{args.notice_id} is not a dead-lettered notice", file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.notice_id} queued for delivery again")
    return 0


# -- gateway evidence ----------------------------------------------------------------------------------------


def _write(doc: StoredDocument, out: Path) -> list[Path]:
    from gateway.evidence.service import file_stem

    out.mkdir(parents=True, exist_ok=True)
    stem = file_stem(doc.type, doc.subject, doc.version)
    written = []
    for ext, data in (("json", doc.signed_json), ("html", doc.html), ("pdf", doc.pdf)):
        path = out / f"{stem}.{ext}"
        path.write_bytes(data)
        written.append(path)
    return written


def _issued(doc: StoredDocument, out: Path | None) -> int:
    print(f"issued {doc.type.replace('_', ' ')} {doc.id} version {doc.version} (sha256 {doc.sha256})")
    if out is not None:
        for path in _write(doc, out):
            print(f"  wrote {path}")
    return 0


def cmd_evidence_report(args: argparse.Namespace) -> int:
    from gateway.evidence.parts import evidence_parts
    from gateway.evidence.service import EvidenceUnavailable

    with _container() as c:
        try:
            with step(f"issuing the revocation report of {args.covenant} (reading the log, signing, rendering)"):
                doc = evidence_parts(c).service.issue_revocation_report(args.covenant, requested_by=args.requested_by)
        except EvidenceUnavailable as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return EXIT_CANNOT_CHECK
    return _issued(doc, Path(args.out) if args.out else None)


def cmd_evidence_record(args: argparse.Namespace) -> int:
    from gateway.evidence.parts import evidence_parts
    from gateway.evidence.service import EvidenceUnavailable

    with _container() as c:
        try:
            with step(f"issuing the destruction record of run {args.run_id} (signing, rendering)"):
                doc = evidence_parts(c).service.issue_destruction_record(args.run_id, requested_by=args.requested_by)
        except EvidenceUnavailable as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return EXIT_CANNOT_CHECK
    return _issued(doc, Path(args.out) if args.out else None)


def cmd_evidence_list(args: argparse.Namespace) -> int:
    from gateway.evidence import repository as repo

    with _container() as c, c.db.read.connect() as conn:
        docs = repo.listing(conn, args.type, args.subject)
    if args.json:
        print_json(list(docs))
        return 0
    for d in docs:
        print(f"{d.id}  {d.type:18} {d.subject:40} v{d.version}  {d.issued_at.isoformat()}  sha256 {d.sha256}")
    return 0


def cmd_evidence_export(args: argparse.Namespace) -> int:
    from gateway.evidence import repository as repo

    with _container() as c, c.db.read.connect() as conn:
        doc = repo.get(conn, args.document_id)
    if doc is None:
        print(f"no document {args.document_id}", file=sys.stderr)
        return EXIT_INVALID
    for path in _write(doc, Path(args.out)):
        print(f"wrote {path}")
    return 0


def cmd_evidence_keys(args: argparse.Namespace) -> int:
    from gateway.cli import load_settings
    from gateway.evidence.keys import jwks, published_keys

    text = json.dumps(jwks(published_keys(load_settings().key_dir)), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def cmd_evidence_rotate(args: argparse.Namespace) -> int:
    from gateway.cli import load_settings
    from gateway.evidence.keys import rotate_evidence_key

    old, new = rotate_evidence_key(load_settings().key_dir)
    print(f"evidence key rotated: {old or '(none)'} -> {new}; the old public key stays published as retired")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `verify`, `outbox` and `evidence` to the `gateway` command."""
    verify = sub.add_parser(
        "verify",
        help="check signed evidence files (JSON, HTML, PDF) offline against the published evidence keys",
        description="Exit 0 when every file is intact and signed by a trusted key; 1 when any is not; "
        "2 when a file or the keys cannot be read.",
    )
    verify.add_argument("files", nargs="+", metavar="FILE")
    verify.add_argument(
        "--keys",
        help="the published keys: a JWKS, JWK or PEM file, or an https URL (default: the key dir's evidence-keys.json)",
    )
    verify.add_argument("--show", action="store_true", help="print the verified document")
    verify.set_defaults(func=cmd_verify)

    outbox = sub.add_parser("outbox", help="notices to partner organisations").add_subparsers(dest="sub", required=True)
    deliver = outbox.add_parser("deliver", help="send the notices that are due (signed, with retries)")
    deliver.add_argument("--loop", action="store_true", help="keep delivering until interrupted")
    deliver.add_argument("--interval", type=float, default=5.0, help="seconds between runs with --loop")
    deliver.set_defaults(func=cmd_outbox_deliver)
    listing = outbox.add_parser("list", help="list notices, their delivery and acknowledgement")
    listing.add_argument("--status", choices=["pending", "delivered", "dead"])
    listing.add_argument("--reference", help="e.g. covenant:lvv-amsterdam")
    add_json_flag(listing)
    listing.set_defaults(func=cmd_outbox_list)
    retry = outbox.add_parser("retry", help="give a dead-lettered notice a fresh round of attempts")
    retry.add_argument("notice_id")
    retry.set_defaults(func=cmd_outbox_retry)

    evidence = sub.add_parser("evidence", help="signed evidence for jurists").add_subparsers(dest="sub", required=True)
    report = evidence.add_parser("revocation-report", help="issue a covenant's signed revocation report")
    report.add_argument("covenant")
    report.add_argument("--out", help="also write the JSON, HTML and PDF files to this directory")
    report.add_argument("--requested-by", default="operator (command line)")
    report.set_defaults(func=cmd_evidence_report)
    record = evidence.add_parser("destruction-record", help="issue a retention run's signed destruction record")
    record.add_argument("run_id")
    record.add_argument("--out", help="also write the JSON, HTML and PDF files to this directory")
    record.add_argument("--requested-by", default="operator (command line)")
    record.set_defaults(func=cmd_evidence_record)
    elist = evidence.add_parser("list", help="list issued documents")
    elist.add_argument("--type", choices=["revocation_report", "destruction_record"])
    elist.add_argument("--subject")
    add_json_flag(elist)
    elist.set_defaults(func=cmd_evidence_list)
    export = evidence.add_parser("export", help="write an issued document's JSON, HTML and PDF files")
    export.add_argument("document_id")
    export.add_argument("--out", default=".")
    export.set_defaults(func=cmd_evidence_export)
    keys = evidence.add_parser("keys", help="print (or write) the published evidence keys (JWKS)")
    keys.add_argument("--out")
    keys.set_defaults(func=cmd_evidence_keys)
    evidence.add_parser("rotate-key", help="replace the evidence signing key (old keys stay published)").set_defaults(
        func=cmd_evidence_rotate
    )
