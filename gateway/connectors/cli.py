"""Commands: `gateway import csv FILE ...`, `gateway connectors status`, `gateway connectors jwks`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.connectors.csv_import import ImportResult
    from gateway.container import Container
    from gateway.policies.model import PolicyConfig


@contextmanager
def _container() -> Iterator[Container]:
    from gateway.cli import load_settings
    from gateway.container import build

    container = build(load_settings())
    try:
        yield container
    finally:
        container.close()


def writer_roles(config: PolicyConfig, organisation: str, category: str) -> list[tuple[str, str]]:
    """Return the (purpose, role) pairs under which `organisation` may write `category`, by the rules."""
    from gateway.policies.model import Operation

    org = next((o for o in config.organisations if o.id == organisation), None)
    if org is None:
        return []
    pairs: dict[tuple[str, str], None] = {}
    for rule in config.rules:
        names = rule.recipient.organisations
        if Operation.WRITE not in rule.operations or not (org.id in names or org.kind in rule.recipient.kinds):
            continue
        if any(g.category == category for g in rule.grants):
            for role in rule.recipient.roles:
                if role in org.roles:
                    pairs[(rule.purpose, role)] = None
    return list(pairs)


def progress_bar(done: int, total: int) -> None:
    """Draw a one-line progress bar on stderr."""
    share = done / total if total else 1.0
    bar = "#" * int(share * 30)
    sys.stderr.write(f"\r  [{bar:<30}] {share:6.1%}  {done / 1e6:8.1f} MB")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def summary(result: ImportResult) -> str:
    """Return the human summary of an import."""
    lines = [
        f"{result.status}: {result.rows_imported} of {result.rows_total} rows imported, "
        f"{result.rows_rejected} rejected",
        f"file sha256 {result.content_sha256}",
    ]
    if result.audit_seq is not None:
        lines.append(f"audit entry {result.audit_seq}")
    for code, n in sorted(result.reasons.items()):
        lines.append(f"  rejected {code}: {n}")
    return "\n".join(lines)


def cmd_import_csv(args: argparse.Namespace) -> int:
    from gateway.connectors.csv_import import CsvImport, FileRefused
    from gateway.exchange.context import Principal, RequestContext, TraceContext

    path = Path(args.file)
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 2
    with _container() as c:
        config = c.policy.config
        pairs = writer_roles(config, args.source, args.category)
        chosen = [(p, r) for p, r in pairs if args.purpose in (None, p) and args.role in (None, r)]
        if len(chosen) != 1:
            known = ", ".join(f"--purpose {p} --role {r}" for p, r in pairs) or "none: no rule lets it write this"
            print(f"{args.source} writes {args.category} under: {known}; choose one", file=sys.stderr)
            return 2
        purpose, role = chosen[0]
        ctx = RequestContext(
            Principal(args.source, "operator-cli:import", "", 0),
            args.acting_user or getpass.getuser(),
            role,
            purpose,
            TraceContext.from_header(None),
        )
        report_path = Path(args.report) if args.report else path.with_name(path.name + ".rejected.csv")
        show = progress_bar if (args.progress or sys.stderr.isatty()) else None
        partial_report = report_path.with_name(report_path.name + ".part")
        try:
            with partial_report.open("w", encoding="utf-8", newline="") as report:
                importer = CsvImport(
                    c.exchange.authorizer, c.store, ctx, args.category, path, None, args.partial, report, show
                )
                result = importer.run()
        except FileRefused as exc:
            partial_report.unlink(missing_ok=True)
            print(f"refused: {exc.text}", file=sys.stderr)
            return 1
    if result.status == "already_imported":
        partial_report.unlink(missing_ok=True)  # the earlier run's report stays as it was
        print(summary(result))
        print("the same file was imported before by this source into this category; nothing was written")
        return 0
    partial_report.replace(report_path)
    if result.file_problem is not None:
        print(f"refused: {result.file_problem.text} (audit entry {result.audit_seq})", file=sys.stderr)
        return 1
    print(summary(result))
    if result.rows_rejected or result.status == "refused":
        print(f"rejected rows: {report_path}")
    if result.status == "refused" and not args.partial and result.rows_rejected:
        print("nothing imported (all or nothing); fix the rows, or import the others with --partial")
    return 0 if result.status in ("imported", "already_imported") else 1


def cmd_connectors_status(args: argparse.Namespace) -> int:
    with _container() as c:
        assert c.exchange.sources is not None
        for state in c.exchange.sources.states(c.clock.now()):
            where = "brokered" if state.connected else ("not connected" if state.kind == "rest" else state.kind)
            paused = f"PAUSED since {state.paused_since.isoformat()}" if state.paused_since else "active"
            print(f"{state.source:28} {state.organisation:22} {where:14} {paused:40} {', '.join(state.categories)}")
    return 0


def cmd_connectors_jwks(args: argparse.Namespace) -> int:
    from gateway.cli import load_settings
    from gateway.connectors.client_auth import connector_key, public_jwks

    print(json.dumps(public_jwks(connector_key(load_settings().key_dir)), indent=2))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imp = sub.add_parser("import", help="Import a partner's file delivery").add_subparsers(dest="what", required=True)
    csv_cmd = imp.add_parser("csv", help="Import a CSV into one category for one source organisation")
    csv_cmd.add_argument("file")
    csv_cmd.add_argument("--category", required=True)
    csv_cmd.add_argument("--source", required=True, help="The organisation that delivered the file (bronhouder)")
    csv_cmd.add_argument("--purpose", help="Default: the one purpose under which the source writes the category")
    csv_cmd.add_argument("--role", help="Default: the one role under which the source writes the category")
    csv_cmd.add_argument("--partial", action="store_true", help="Import the valid rows even when others are rejected")
    csv_cmd.add_argument("--report", help="Where rejected rows are written (default FILE.rejected.csv)")
    csv_cmd.add_argument("--acting-user", help="Who imports (default: the login name)")
    csv_cmd.add_argument("--progress", action="store_true", help="Show progress even when stderr is no terminal")
    csv_cmd.set_defaults(func=cmd_import_csv)
    con = sub.add_parser("connectors", help="Brokered source systems").add_subparsers(dest="what", required=True)
    con.add_parser("status", help="Each source system: brokered or not, paused or active").set_defaults(
        func=cmd_connectors_status
    )
    con.add_parser("jwks", help="The gateway's public client key, for sources using private_key_jwt").set_defaults(
        func=cmd_connectors_jwks
    )
