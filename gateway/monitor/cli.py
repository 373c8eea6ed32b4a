"""`gateway monitor show|last-measurement`: the operator's view of the monitor (whole programme) and the
signed last results measurement. Each computation is an audit entry (an operator access) before anything
is printed or written; only protected counts are printed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path


def cmd_monitor_show(args: argparse.Namespace) -> int:
    import orjson

    from gateway.evidence.cli import _container
    from gateway.monitor.compute import period_label
    from gateway.monitor.disclosure import PublishedTable
    from gateway.monitor.render import grid, region_labels
    from gateway.monitor.wiring import build_monitor

    with _container() as container:
        parts = build_monitor(container)
        if parts is None:
            print("this configuration has no monitor.yaml", file=sys.stderr)
            return 2
        from gateway.exchange.context import operator_context

        computed = parts.service.measure_as_operator(operator_context("steering_monitor"))
        pub = computed.publication
        if args.json:
            from gateway.monitor.compute import table_json

            body = {
                "audit_seq": computed.audit_seq,
                "monitor_version": pub.monitor_version,
                "series": table_json(pub.series),
                "indicators": {ind.id: table_json(t) for ind, t in pub.indicators},
            }
            print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
            return 0
        labels = region_labels({r: r.capitalize() for r in pub.regions})
        tables: list[tuple[str, PublishedTable, dict[str, str] | None]] = [
            (parts.config.intake_series_name, pub.series, {p: period_label(p) for p in pub.series.cols})
        ]
        tables += [(ind.name, t, None) for ind, t in pub.indicators]
        for name, table, cols in tables:
            head, rows = grid(table, labels, cols)
            print(f"\n{name}")
            width = max(len(v) for v in (*head, *(c for r in rows for c in r))) + 2
            print("".join(h.ljust(width) for h in head))
            for row in rows:
                print("".join(v.ljust(width) for v in row))
        print(f"\n(\u2013 = onderdrukt; audit entry {computed.audit_seq}; monitor {pub.monitor_version})")
    return 0


def cmd_monitor_measure(args: argparse.Namespace) -> int:
    from gateway.evidence.cli import _container, _issued
    from gateway.evidence.service import EvidenceUnavailable
    from gateway.monitor.measurement import issue_last_measurement
    from gateway.monitor.wiring import build_monitor

    with _container() as container:
        parts = build_monitor(container)
        if parts is None:
            print("this configuration has no monitor.yaml", file=sys.stderr)
            return 2
        from gateway.exchange.context import operator_context

        computed = parts.service.measure_as_operator(operator_context("steering_monitor"))
        try:
            doc = issue_last_measurement(parts.evidence.service, parts.config, computed, args.requested_by)
        except EvidenceUnavailable as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2
    return _issued(doc, Path(args.out) if args.out else None)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitor = sub.add_parser(
        "monitor", help="the steering monitor (suppressed counts) and the last results measurement"
    )
    msub = monitor.add_subparsers(dest="monitor_command", required=True)
    show = msub.add_parser("show", help="print the monitor's protected tables for the whole programme (logged)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_monitor_show)
    measure = msub.add_parser(
        "last-measurement", help="issue the signed last results measurement (laatste resultaatmeting)"
    )
    measure.add_argument("--out", help="also write the JSON, HTML and PDF files to this directory")
    measure.add_argument("--requested-by", default=getpass.getuser())
    measure.set_defaults(func=cmd_monitor_measure)
