"""Commands for jurists and operators: covenants, mandates, legal holds, retention, rehearsal.

`add_commands(subparsers)` adds them to the `gateway` command.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from datetime import date, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gateway.cli_output import add_json_flag, open_container, print_json

if TYPE_CHECKING:
    from gateway.container import Container
    from gateway.lifecycle.rehearsal import RehearsalClock
    from gateway.retention.model import RetentionPlan
    from gateway.store.db import Database

LOCAL = ZoneInfo("Europe/Amsterdam")


def moment(text: str) -> datetime:
    """Parse a moment: ISO-8601 with an offset; without one, Amsterdam time; a bare date is its first second."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0, 0), LOCAL)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or moment: {text}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=LOCAL)


def _local(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(LOCAL).isoformat(timespec="seconds")


def _container() -> AbstractContextManager[Container]:
    return open_container()


def _refused(exc: Exception) -> int:
    print(f"refused: {getattr(exc, 'text', str(exc))}", file=sys.stderr)
    return 2


# -- covenants and mandates ------------------------------------------------------------------------------


def cmd_covenant_list(args: argparse.Namespace) -> int:
    from gateway.lifecycle.facts import covenant_states

    with _container() as c:
        at = args.at or c.clock.now()
        assert c.lifecycle is not None
        if args.json:
            print_json({"as_of": at, "covenants": list(covenant_states(c.lifecycle.holder.current, at))})
            return 0
        print(f"covenants as of {_local(at)}")
        for s in covenant_states(c.lifecycle.holder.current, at):
            revoked = f"  revoked from {_local(s.revocation.effective_at)}" if s.revocation else ""
            print(f"  {s.id:24} {s.state:19} {_local(s.valid_from)} .. {_local(s.effective_end)}{revoked}")
    return 0


def cmd_covenant_revoke(args: argparse.Namespace) -> int:
    from gateway.lifecycle.events import Actor
    from gateway.lifecycle.service import LifecycleRefused

    with _container() as c:
        assert c.lifecycle is not None
        try:
            fact = c.lifecycle.service.revoke_covenant(
                Actor.jurist(args.org, args.by), args.covenant, args.effective, args.reason, args.authority
            )
        except LifecycleRefused as exc:
            return _refused(exc)
        print(f"covenant {fact.covenant_id} revoked from {_local(fact.effective_at)} (audit entry {fact.audit_seq})")
    return 0


def cmd_mandate_list(args: argparse.Namespace) -> int:
    from gateway.lifecycle.facts import mandate_facts

    with _container() as c:
        assert c.lifecycle is not None
        at = args.at or c.clock.now()
        if args.json:
            print_json({"as_of": at, "mandates": list(mandate_facts(c.lifecycle.holder.current, at))})
            return 0
        print(f"mandates as of {_local(at)}")
        for m in mandate_facts(c.lifecycle.holder.current, at):
            state = "in force" if m.in_force else "not in force"
            end = f" .. {_local(m.effective_end)}" if m.effective_end else " (until withdrawn)"
            print(f"  {m.id:28} {state:13} {_local(m.granted_at)}{end}  {m.mandator} -> {', '.join(m.mandataries)}")
            print(f"  {'':28} carries {', '.join(m.rules)} under {', '.join(m.covenants)}")
    return 0


def cmd_mandate_withdraw(args: argparse.Namespace) -> int:
    from gateway.lifecycle.events import Actor
    from gateway.lifecycle.service import LifecycleRefused

    with _container() as c:
        assert c.lifecycle is not None
        try:
            fact = c.lifecycle.service.withdraw_mandate(
                Actor.jurist(args.org, args.by), args.mandate, args.effective, args.reason, args.authority
            )
        except LifecycleRefused as exc:
            return _refused(exc)
        print(f"mandate {fact.mandate_id} withdrawn from {_local(fact.effective_at)} (audit entry {fact.audit_seq})")
    return 0


# -- legal holds -----------------------------------------------------------------------------------------


def cmd_hold_set(args: argparse.Namespace) -> int:
    from gateway.lifecycle.events import Actor
    from gateway.lifecycle.service import LifecycleRefused

    with _container() as c:
        assert c.lifecycle is not None
        ref = c.store.resolve(args.org, args.participant)
        if ref is None:
            print("refused: no such participant for your organisation", file=sys.stderr)
            return 2
        try:
            hold = c.lifecycle.service.set_hold(Actor.jurist(args.org, args.by), ref.id, args.reason, args.case)
        except LifecycleRefused as exc:
            return _refused(exc)
        print(
            f"legal hold {hold.id} set ({hold.reason.value}, {hold.case_reference}; audit entry {hold.set_audit_seq})"
        )
    return 0


def cmd_hold_lift(args: argparse.Namespace) -> int:
    from gateway.lifecycle.events import Actor
    from gateway.lifecycle.service import LifecycleRefused

    with _container() as c:
        assert c.lifecycle is not None
        try:
            hold = c.lifecycle.service.lift_hold(Actor.jurist(args.org, args.by), args.hold, args.reason)
        except LifecycleRefused as exc:
            return _refused(exc)
        print(f"legal hold {hold.id} lifted at {_local(hold.lifted_at)}; the retention period restarts then")
    return 0


def cmd_hold_list(args: argparse.Namespace) -> int:
    from gateway.lifecycle.facts import legal_holds

    with _container() as c:
        if args.json:
            print_json(list(legal_holds(c.db, active_only=not args.all)))
            return 0
        for h in legal_holds(c.db, active_only=not args.all):
            state = "active" if h.active else f"lifted {_local(h.lifted_at)}"
            print(f"  {h.id}  {h.region:10} {h.reason.value:14} {h.case_reference:24} set {_local(h.set_at)}  {state}")
    return 0


# -- retention -------------------------------------------------------------------------------------------


def print_plan(plan: RetentionPlan, dry_run: bool) -> None:
    """Print what is due and why, and what is kept and why (counts only, never a participant)."""
    head = "dry run: nothing is destroyed" if dry_run else "destroying"
    print(f"retention as of {_local(plan.as_of)} ({head})")
    keys = len(plan.due)
    print(f"due: {keys} data keys of {plan.participants_due} participants")
    if plan.due_groups:
        print(
            f"  {'category':22} {'keys':>7} {'particip.':>9}  {'rule':36} {'trigger':13} {'after':6} "
            "due (first .. last)"
        )
        for g in plan.due_groups:
            print(
                f"  {g.category:22} {g.keys:>7} {g.participants:>9}  {g.rule_id:36} {g.trigger:13} {g.duration:6} "
                f"{g.earliest_due.astimezone(LOCAL):%Y-%m-%d} .. {g.latest_due.astimezone(LOCAL):%Y-%m-%d}"
            )
            label = " [suggestion, not law]" if g.suggestion else ""
            print(f"  {'':22} ground: {g.legal_source}{label}")
    if plan.kept_groups:
        print("kept:")
        for k in plan.kept_groups:
            nxt = f", next due {k.next_due.astimezone(LOCAL):%Y-%m-%d}" if k.next_due else ""
            rule = f" (rule {k.rule_id})" if k.rule_id else ""
            print(f"  {k.category:22} {k.reason.value:22} {k.keys:>7} keys, {k.participants} participants{rule}{nxt}")


def plan_json(plan: RetentionPlan) -> dict[str, object]:
    """Return a retention plan as JSON data: counts per group, never a participant."""
    return {
        "as_of": plan.as_of,
        "dry_run": True,
        "keys_due": len(plan.due),
        "participants_due": plan.participants_due,
        "due_groups": list(plan.due_groups),
        "kept_groups": list(plan.kept_groups),
    }


def cmd_retention_run(args: argparse.Namespace) -> int:
    from gateway.lifecycle.events import Actor
    from gateway.retention.progress import TextProgress
    from gateway.retention.run import RetentionBusy
    from gateway.retention.schedule import default_authority

    if args.at is not None and not args.dry_run:
        print("refused: --at lists what would be destroyed at that moment; use it with --dry-run", file=sys.stderr)
        return 2
    with _container() as c:
        assert c.lifecycle is not None
        runner = c.lifecycle.retention
        if args.dry_run:
            if args.json:
                print_json(plan_json(runner.plan(args.at)))
            else:
                print_plan(runner.plan(args.at), dry_run=True)
            return 0
        if args.json:
            print("refused: --json goes with --dry-run (a run reports as it goes)", file=sys.stderr)
            return 2
        authority = (
            args.authority
            or c.settings.retention_authority
            or default_authority(c.policy.config.meta.name, c.policy.version)
        )
        actor = Actor(args.org, args.by, "jurist" if args.org else "operator")
        print_plan(runner.plan(), dry_run=False)
        progress = None if args.quiet else TextProgress("destroying")
        try:
            outcome = runner.run(actor, authority, progress=progress)
        except RetentionBusy as exc:
            return _refused(exc)
        except KeyboardInterrupt:
            print(
                "\ninterrupted: what was destroyed stays destroyed and logged; run again to continue", file=sys.stderr
            )
            return 130
        finally:
            if progress is not None:
                progress.close()
        wal = {True: "; SQLite WAL truncated", False: "; SQLite WAL busy, truncate it later", None: ""}
        print(
            f"run {outcome.run_id} {outcome.status}: {outcome.keys_destroyed} data keys destroyed, "
            f"{outcome.records_deleted} records deleted, {outcome.participants} participants"
            f"{f', {outcome.skipped_on_hold} kept under a hold set meanwhile' if outcome.skipped_on_hold else ''}"
            f"{wal[outcome.wal_checkpointed]}"
        )
        for epoch in outcome.epochs_destroyed:
            print(f"key epoch {epoch.epoch_id} destroyed ({epoch.keys_moved} live data keys moved out first)")
    return 0


def cmd_retention_runs(args: argparse.Namespace) -> int:
    from gateway.lifecycle.facts import retention_runs_list

    with _container() as c:
        runs = retention_runs_list(c.db)
        if args.json:
            print_json(runs)
            return 0
        for r in runs:
            print(
                f"  {r.run_id}  {r.status:11} as of {_local(r.as_of)}  {r.keys_destroyed} keys, "
                f"{r.records_deleted} records  by {r.acting_user}"
            )
    return 0


# -- rehearsal -------------------------------------------------------------------------------------------


def cmd_rehearsal_copy(args: argparse.Namespace) -> int:
    from gateway.lifecycle.rehearsal import copy_database

    def progress(table: str, rows: int) -> None:
        print(f"  copied {table} ({rows} rows so far)", file=sys.stderr)

    try:
        rows = copy_database(args.source, args.target, args.start, running=not args.stand, progress=progress)
    except ValueError as exc:
        return _refused(exc)
    mode = "standing" if args.stand else "running"
    print(f"rehearsal copy made: {rows} rows; simulated clock {mode} from {_local(args.start)}")
    print("run it with GATEWAY_REHEARSAL=true GATEWAY_DATABASE_URL=<the copy> gateway serve")
    return 0


def _rehearsal_clock() -> tuple[Database, RehearsalClock]:
    from gateway.cli import load_settings
    from gateway.lifecycle.rehearsal import open_rehearsal
    from gateway.store.db import connect

    db = connect(load_settings().database_url)
    return db, open_rehearsal(db)


def cmd_rehearsal_step(args: argparse.Namespace) -> int:
    from gateway.lifecycle.rehearsal import NotARehearsalCopy

    try:
        db, clock = _rehearsal_clock()
    except NotARehearsalCopy as exc:
        return _refused(exc)
    try:
        running = True if args.run else False if args.stand else None
        now = clock.step(args.to, running)
    except ValueError as exc:
        return _refused(exc)
    finally:
        db.dispose()
    print(f"rehearsal clock at {_local(now)} ({'running' if clock.running else 'standing'})")
    return 0


def cmd_rehearsal_status(args: argparse.Namespace) -> int:
    from gateway.lifecycle.rehearsal import NotARehearsalCopy

    try:
        db, clock = _rehearsal_clock()
    except NotARehearsalCopy as exc:
        return _refused(exc)
    db.dispose()
    print(clock.describe())
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the covenant, mandate, hold, retention and rehearsal commands."""

    def jurist(p: argparse.ArgumentParser) -> None:
        p.add_argument("--org", required=True, help="your organisation (it must have the jurist role)")
        p.add_argument("--by", required=True, help="your user name, as logged")

    cov = sub.add_parser("covenant", help="covenant lifecycle").add_subparsers(dest="sub", required=True)
    p = cov.add_parser("list", help="covenants with their configured and effective ends")
    p.add_argument("--at", type=moment, help="as of this moment (default: now)")
    add_json_flag(p)
    p.set_defaults(func=cmd_covenant_list)
    p = cov.add_parser("revoke", help="revoke a covenant early (jurists), effective at a stated moment")
    p.add_argument("covenant")
    p.add_argument("--effective", type=moment, required=True, help="first moment no longer in force (never past)")
    p.add_argument("--reason", required=True)
    p.add_argument("--authority", required=True, help="reference of the decision on whose authority it is revoked")
    jurist(p)
    p.set_defaults(func=cmd_covenant_revoke)

    man = sub.add_parser("mandate", help="mandate decisions").add_subparsers(dest="sub", required=True)
    p = man.add_parser("list", help="mandates, what they carry and whether they are in force")
    p.add_argument("--at", type=moment, help="as of this moment (default: now)")
    add_json_flag(p)
    p.set_defaults(func=cmd_mandate_list)
    p = man.add_parser("withdraw", help="record the withdrawal of a mandate (jurists of the mandator)")
    p.add_argument("mandate")
    p.add_argument("--effective", type=moment, required=True, help="first moment no longer in force (never past)")
    p.add_argument("--reason", required=True)
    p.add_argument("--authority", required=True, help="reference of the withdrawal decision")
    jurist(p)
    p.set_defaults(func=cmd_mandate_withdraw)

    hold = sub.add_parser("hold", help="legal holds").add_subparsers(dest="sub", required=True)
    p = hold.add_parser("set", help="put a participant under a legal hold (jurists)")
    p.add_argument("--participant", required=True, help="your organisation's pseudonym for the participant")
    p.add_argument("--reason", required=True, choices=["objection", "appeal", "complaint", "access_request"])
    p.add_argument("--case", required=True, help="case reference of the procedure")
    jurist(p)
    p.set_defaults(func=cmd_hold_set)
    p = hold.add_parser("lift", help="lift a legal hold: the decision is final (jurists)")
    p.add_argument("hold")
    p.add_argument("--reason", required=True)
    jurist(p)
    p.set_defaults(func=cmd_hold_lift)
    p = hold.add_parser("list", help="legal holds (active ones unless --all)")
    p.add_argument("--all", action="store_true")
    add_json_flag(p)
    p.set_defaults(func=cmd_hold_list)

    ret = sub.add_parser("retention", help="retention runs").add_subparsers(dest="sub", required=True)
    p = ret.add_parser("run", help="destroy what is due by crypto-shredding (or list it with --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="list what would be destroyed and why; change nothing")
    p.add_argument("--at", type=moment, help="with --dry-run: as of this moment instead of now")
    p.add_argument("--authority", help="the decision on whose authority (default: the retention rules)")
    p.add_argument("--by", default="operator", help="your user name, as logged")
    p.add_argument("--org", help="your organisation, as logged")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_json_flag(p)
    p.set_defaults(func=cmd_retention_run)
    p = ret.add_parser("runs", help="past retention runs")
    add_json_flag(p)
    p.set_defaults(func=cmd_retention_runs)

    reh = sub.add_parser("rehearsal", help="rehearse on a copy with a simulated clock").add_subparsers(
        dest="sub", required=True
    )
    p = reh.add_parser("copy", help="copy a database for a rehearsal and mark it as a copy")
    p.add_argument("--from", dest="source", required=True, help="database URL to copy")
    p.add_argument("--to", dest="target", required=True, help="database URL of the copy (emptied first)")
    p.add_argument("--start", type=moment, required=True, help="the simulated clock's first moment")
    p.add_argument("--stand", action="store_true", help="the clock stands until stepped (default: runs on)")
    p.set_defaults(func=cmd_rehearsal_copy)
    p = reh.add_parser("step", help="step the rehearsal clock forward (GATEWAY_DATABASE_URL is the copy)")
    p.add_argument("--to", type=moment, required=True)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--run", action="store_true", help="run on from there")
    mode.add_argument("--stand", action="store_true", help="stand there until stepped again")
    p.set_defaults(func=cmd_rehearsal_step)
    reh.add_parser("status", help="the rehearsal clock").set_defaults(func=cmd_rehearsal_status)
