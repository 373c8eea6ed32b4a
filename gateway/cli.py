"""The `gateway` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import __version__

if TYPE_CHECKING:
    from gateway.settings import Settings

ENV_FILE = Path("var/gateway.env")
DEMO_FILE = Path("var/demo.json")
DEMO_CLOCK_START = "2024-11-15T10:00:00+01:00"


def load_settings(env_file: Path | None = None) -> Settings:
    """Return Settings from the environment and, when present, the env file (environment wins)."""
    from gateway.settings import Settings

    path = env_file if env_file is not None else ENV_FILE
    return Settings(_env_file=path if path.exists() else None)


def cmd_config_check(args: argparse.Namespace) -> int:
    from gateway.monitor.config import load_monitor
    from gateway.policies.compiled import compile_policy
    from gateway.policies.loader import ConfigError, load_config

    directory = Path(args.config) if args.config else load_settings().config_dir
    try:
        policy = compile_policy(load_config(directory))
        load_monitor(directory, policy.config)  # the monitor's indicators count from this policy's fields
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    cfg = policy.config
    print(
        f"{directory}: valid ({len(cfg.organisations)} organisations, {len(cfg.covenants)} covenants, "
        f"{len(cfg.purposes)} purposes, {len(cfg.categories)} categories, {len(cfg.rules)} rules, "
        f"{len(cfg.retention)} retention rules, {len(cfg.mandates)} mandates)"
    )
    print(f"policy version {policy.version}")
    from gateway.connectors.registry import unconnected

    urls = load_settings().connector_urls
    print(f"{len(cfg.sources)} source systems ({', '.join(s.id for s in cfg.sources) or 'none'})")
    for source in unconnected(cfg, urls):
        print(f"  source {source.id} (rest): no URL here; its categories are served from the hosted store")
    return 0


def cmd_keys_init(args: argparse.Namespace) -> int:
    from gateway.crypto.keys import init_keys

    key_dir = Path(args.key_dir) if args.key_dir else load_settings().key_dir
    for path in init_keys(key_dir):
        print(f"created {path}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade

    db = connect(load_settings().database_url)
    upgrade(db)
    db.dispose()
    print("database schema is up to date")
    return 0


def cmd_audit_verify_chain(args: argparse.Namespace) -> int:
    from gateway.audit.chain import verify_chain
    from gateway.store.db import connect

    db = connect(load_settings().database_url)
    report = verify_chain(db)
    db.dispose()
    if report.ok:
        print(f"audit chain intact: {report.entries} entries")
        return 0
    print(f"audit chain BROKEN at entry {report.first_bad_seq}: {report.problem}", file=sys.stderr)
    return 1


def cmd_demo_init(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.container import build
    from gateway.crypto.keys import init_keys
    from gateway.demo.seed import seed
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade

    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    # The simulated clock restarts at the same demo moment on every `make run`, so the demo always
    # stands while the LVV covenants were in force (they ended on 2024-12-31 23:59:59).
    ENV_FILE.write_text(
        "# Demo settings written by `gateway demo init` (synthetic data, simulated clock).\n"
        "GATEWAY_DEMO=true\n"
        f"GATEWAY_CLOCK_START={DEMO_CLOCK_START}\n"
        f"GATEWAY_CLOCK_ANCHOR={time.time():.0f}\n"
    )
    from gateway.cli_output import step

    settings = load_settings()
    with step(f"keys in {settings.key_dir}"):
        init_keys(settings.key_dir)
    with step("database schema (migrations)"):
        db = connect(settings.database_url)
        upgrade(db)
        db.dispose()
    from gateway.auth.cli import register_demo

    with step("demo clients (DEMO ONLY keys)"):
        registered = register_demo(settings)
    if registered:
        print(registered)
    if DEMO_FILE.exists():
        print(f"demo data already present ({DEMO_FILE})")
        return 0
    from gateway.connectors.demo import keep, start_cvs

    # Amsterdam's case plans go to its (simulated) client tracking system: the demo's brokered source.
    cvs, settings = start_cvs(settings)
    container = build(settings)

    async def seed_all() -> Any:
        try:
            return await seed(container, per_city=args.per_city)
        finally:
            assert container.exchange.sources is not None
            await container.exchange.sources.aclose()

    with step(f"synthetic participants ({args.per_city} per city, each logged in the audit log)"):
        try:
            seeded = asyncio.run(seed_all())
            keep(cvs)
        finally:
            container.close()
            cvs.__exit__(None, None, None)
    DEMO_FILE.write_text(json.dumps({"participants": seeded.participants, "example": seeded.example}, indent=2))
    print(f"seeded {seeded.participants} synthetic participants")
    return 0


def cmd_demo_token(args: argparse.Namespace) -> int:
    # The real flow (client assertion -> /oauth/token of the running demo gateway): gateway/auth/cli.py.
    from gateway.auth.cli import cmd_demo_token as demo_token

    return demo_token(args)


def examples(port: int) -> str:
    """Return the copy-paste commands that show a permitted, a cut-down and a denied read."""
    demo = json.loads(DEMO_FILE.read_text())["example"]
    base = f"http://127.0.0.1:{port}/v1/participants"
    h = '-H "Authorization: Bearer $TOKEN" -H "Acting-User: demo.user"'
    return f"""
Try it (synthetic data; the demo clock stands in November 2024, while the LVV covenants were in force):

  # 1. A permitted read: Amsterdam's case manager, for the LSO case discussion
  TOKEN=$(.venv/bin/gateway demo token --org amsterdam)
  curl -s {base}/{demo["amsterdam"]} {h} -H "Acting-Role: case_manager" \\
       -H "Processing-Purpose: lso_case_discussion" | python3 -m json.tool

  # 2. The same participant, same person, another purpose: cut down to what shelter counselling needs
  curl -s {base}/{demo["amsterdam"]} {h} -H "Acting-Role: case_manager" \\
       -H "Processing-Purpose: shelter_counselling" | python3 -m json.tool

  # 3. A denied read: a shelter NGO asking for police screening (403, logged)
  TOKEN=$(.venv/bin/gateway demo token --org ngo-opvang-amsterdam)
  curl -s {base}/{demo["ngo-opvang-amsterdam"]} {h} -H "Acting-Role: counsellor" \\
       -H "Processing-Purpose: police_screening" | python3 -m json.tool

  # ... and Rotterdam asking about an Amsterdam participant gets 404: it may not learn they exist
  TOKEN=$(.venv/bin/gateway demo token --org rotterdam)
  curl -s {base}/{demo["rotterdam"]} {h} -H "Acting-Role: case_manager" \\
       -H "Processing-Purpose: lso_case_discussion" | python3 -m json.tool

  # Every one of those decisions is in the hash-chained audit log:
  .venv/bin/gateway audit verify-chain

API documentation: http://127.0.0.1:{port}/docs
"""


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.api.app import create_app
    from gateway.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    host = args.host or settings.host
    port = args.port or settings.port
    url = f"http://{host}:{port}"
    cvs = None
    if settings.demo and DEMO_FILE.exists():
        from gateway.connectors.demo import DEMO_CVS_FILE, example, start_cvs

        if DEMO_CVS_FILE.exists():
            cvs, settings = start_cvs(settings, DEMO_CVS_FILE)
    app = create_app(settings)
    if settings.demo and DEMO_FILE.exists():
        print(examples(port), flush=True)
        if cvs is not None:
            print(example(port, cvs.url, json.loads(DEMO_FILE.read_text())["example"]["amsterdam"]), flush=True)
    if settings.demo:
        from gateway.auth.demo import record_server

        record_server(url, settings.token_issuer)  # where `gateway demo token` asks, and whom it addresses
        print(f"serving on {url} (token issuer {settings.token_issuer}; recorded for `gateway demo token`)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Purpose-bound exchange gateway (LVV). Results go to stdout, log lines and progress to "
        "stderr (GATEWAY_CLI_LOG_LEVEL, default warning); list commands take --json.",
    )
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    config = sub.add_parser("config", help="configuration").add_subparsers(dest="sub", required=True)
    check = config.add_parser("check", help="validate a configuration directory, listing every error")
    check.add_argument("--config", help="directory (default: GATEWAY_CONFIG_DIR or config/lvv)")
    check.set_defaults(func=cmd_config_check)

    keys = sub.add_parser("keys", help="key material").add_subparsers(dest="sub", required=True)
    kinit = keys.add_parser("init", help="create missing key files (never overwrites)")
    kinit.add_argument("--key-dir")
    kinit.set_defaults(func=cmd_keys_init)

    db = sub.add_parser("db", help="database").add_subparsers(dest="sub", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    audit = sub.add_parser("audit", help="audit log").add_subparsers(dest="sub", required=True)
    audit.add_parser("verify-chain", help="recompute the audit hash chain").set_defaults(func=cmd_audit_verify_chain)
    from gateway.audit.cli import add_commands as add_audit_commands

    add_audit_commands(audit)
    from gateway.audit.ldv import add_commands as add_ldv_commands

    add_ldv_commands(audit)  # gateway audit ldv-export

    demo = sub.add_parser("demo", help="demo mode (synthetic data only)").add_subparsers(dest="sub", required=True)
    dinit = demo.add_parser("init", help="keys, schema and synthetic participants for the demo")
    dinit.add_argument("--per-city", type=int, default=4)
    dinit.set_defaults(func=cmd_demo_init)
    token = demo.add_parser("token", help="get an access token with a demo client's key (demo mode only)")
    token.add_argument("--org", required=True)
    token.add_argument("--role", help="the role to act in (the token's scope; default: all of the client's)")
    token.add_argument("--url", help="the running gateway (default: where `gateway serve` last listened)")
    token.add_argument("--issuer", help="the gateway's token issuer (default: the one `gateway serve` recorded)")
    token.set_defaults(func=cmd_demo_token)
    from gateway.auth.cli import add_commands as add_auth_commands

    add_auth_commands(sub)  # gateway clients ..., gateway signing-keys ...

    from gateway.dpia.cli import add_commands as add_dpia_commands

    add_dpia_commands(sub)

    from gateway.lifecycle.cli import add_commands as add_lifecycle_commands

    add_lifecycle_commands(sub)  # covenant, mandate, hold, retention, rehearsal
    from gateway.evidence.cli import add_commands as add_evidence_commands

    add_evidence_commands(sub)  # verify FILE, outbox ..., evidence ...
    from gateway.connectors.cli import add_commands as add_connector_commands

    add_connector_commands(sub)  # import csv ..., connectors status|jwks
    from gateway.monitor.cli import add_commands as add_monitor_commands

    add_monitor_commands(sub)  # monitor show, monitor last-measurement
    from gateway.store.subject_cli import add_commands as add_subject_commands

    add_subject_commands(sub)  # subjects reindex
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command: its result on stdout, its log lines and progress on stderr."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if argv is None and args.func is not cmd_serve:  # a process of its own (the server logs JSON lines)
        from gateway.cli_output import configure_cli_logging

        configure_cli_logging(os.environ.get("GATEWAY_CLI_LOG_LEVEL", "warning"))
    try:
        code = int(args.func(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped reading (`gateway ... | head`): stop quietly, as Unix tools do on SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
