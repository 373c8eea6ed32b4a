"""`gateway subjects reindex`: index the records written before the blind index existed (after migration 0010)."""

from __future__ import annotations

import argparse
import sys


def cmd_reindex(args: argparse.Namespace) -> int:
    from gateway.cli import load_settings
    from gateway.container import build

    container = build(load_settings())
    try:
        if container.store.subject_index is None:
            print("subject-lookup.key is missing from the key dir; run `gateway keys init` first", file=sys.stderr)
            return 2
        from gateway.exchange.context import operator_context

        # No log, no access: the records are opened (only to compute digests) after this entry is durable.
        seq = container.exchange.authorizer.record_operator_access(
            operator_context("subject_access_request"), "audit.subject_reindex", "operator_reindex"
        )
        count = container.store.reindex_subjects()
        print(f"indexed {count} records for finding participants of access requests (audit entry {seq})")
        return 0
    finally:
        container.close()


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `gateway subjects ...` command group."""
    subjects = sub.add_parser("subjects", help="finding participants of access requests").add_subparsers(
        dest="sub", required=True
    )
    subjects.add_parser(
        "reindex", help="index identifying fields of records written before the index existed"
    ).set_defaults(func=cmd_reindex)
