"""`gateway clients ...` (the partner-client registry), `gateway signing-keys ...` (the gateway's own
token-signing keys) and `gateway demo token` (the real client-credentials flow with a demo client)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.auth.model import RegistryError, Status
from gateway.cli_output import add_json_flag, jsonable, print_json

if TYPE_CHECKING:  # the server is imported only when a command runs
    from gateway.auth.server import AuthorizationServer
    from gateway.settings import Settings


def _settings() -> Settings:
    from gateway.cli import load_settings

    return load_settings()


@contextmanager
def _server(settings: Settings | None = None) -> Iterator[AuthorizationServer]:
    """Yield the authorization server over the configured database (no HTTP, no audit writer)."""
    from gateway.auth.server import AuthorizationServer
    from gateway.clock import SimulatedClock, SystemClock
    from gateway.crypto.keys import load_keys
    from gateway.policies.compiled import compile_policy
    from gateway.policies.loader import load_config
    from gateway.store.db import connect

    settings = settings or _settings()
    clock = SimulatedClock(settings.clock_start, settings.clock_anchor) if settings.clock_start else SystemClock()
    policy = compile_policy(load_config(settings.config_dir))
    db = connect(settings.database_url)
    try:
        # Key rotation and the registry's own times: real time for tokens, the demo clock for records.
        yield AuthorizationServer(settings, clock, policy, db, load_keys(settings).kek, token_clock=SystemClock())
    finally:
        db.dispose()


def read_public_keys(path: Path) -> dict[str, Any]:
    """Return a JWKS from a file holding a JWKS, a single JWK, or a PEM public key."""
    from joserfc.jwk import ECKey, RSAKey

    text = path.read_text()
    if text.lstrip().startswith("-----BEGIN"):
        for key_type in (RSAKey, ECKey):
            try:
                key = key_type.import_key(text.encode(), parameters={"use": "sig"})
            except (ValueError, TypeError):
                continue
            if key.is_private:
                raise RegistryError(f"{path} holds a private key; register the public key only")
            key.ensure_kid()
            return {"keys": [key.as_dict(private=False)]}
        raise RegistryError(f"{path} holds no RSA or EC public key")
    data = json.loads(text)
    return data if isinstance(data, dict) and "keys" in data else {"keys": [data]}


def _keys(args: argparse.Namespace) -> dict[str, Any]:
    if args.jwks is not None:
        return {"jwks": read_public_keys(Path(args.jwks))}
    return {"jwks_uri": args.jwks_uri}


def cmd_register(args: argparse.Namespace) -> int:
    roles = tuple(r.strip() for r in args.roles.split(",") if r.strip())
    with _server() as server:
        client = server.registry.register(
            args.client_id,
            args.organisation,
            roles,
            name=args.name,
            certificate_bound=args.certificate_bound,
            rate_limit_per_minute=args.rate_limit,
            **_keys(args),
        )
    granted = ", ".join(client.roles)
    print(f"registered {client.client_id} for {client.organisation} (roles: {granted}; {_key_text(client)})")
    return 0


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    with _server() as server:
        client = server.registry.rotate_keys(args.client_id, keep_current=args.keep_current, **_keys(args))
    print(f"keys of {client.client_id} are now: {_key_text(client)}")
    return 0


def _set_status(args: argparse.Namespace, status: Status) -> int:
    if (args.client_id is None) == (args.organisation is None):
        raise RegistryError("name a client, or an organisation with --org")
    with _server() as server:
        if args.client_id is not None:
            server.registry.set_client_status(args.client_id, status, args.reason)
            what = f"client {args.client_id}"
        else:
            server.registry.set_organisation_status(args.organisation, status, args.reason)
            what = f"organisation {args.organisation}"
    done = "enabled" if status is Status.ACTIVE else "disabled; its tokens stop working at once"
    print(f"{what} {done}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    return _set_status(args, Status.DISABLED)


def cmd_enable(args: argparse.Namespace) -> int:
    return _set_status(args, Status.ACTIVE)


def _key_text(client: Any) -> str:
    if client.jwks_uri:
        return f"keys from {client.jwks_uri}"
    kids = [str(k.get("kid", "?")) for k in (client.jwks or {}).get("keys", [])]
    return f"keys {', '.join(kids)}"


def cmd_list(args: argparse.Namespace) -> int:
    with _server() as server:
        clients = server.registry.clients(args.organisation)
        disabled = server.registry.disabled_organisations()
    if args.json:
        rows = [
            {
                "client_id": c.client_id,
                "organisation": c.organisation,
                "name": c.name,
                "roles": list(c.roles),
                "status": c.status.value,
                "organisation_disabled": c.organisation in disabled,
                "jwks_uri": c.jwks_uri,
                "kids": [k.get("kid") for k in (c.jwks or {}).get("keys", [])],
                "demo": c.demo,
                "certificate_bound": c.certificate_bound,
                "rate_limit_per_minute": c.rate_limit_per_minute,
            }
            for c in clients
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for c in clients:
        flags = [f for f, on in (("DEMO", c.demo), ("cert-bound", c.certificate_bound)) if on]
        status = c.status.value + (" (organisation disabled)" if c.organisation in disabled else "")
        print(f"{c.client_id}\t{c.organisation}\t{status}\t{','.join(c.roles)}\t{_key_text(c)}\t{' '.join(flags)}")
    for org, reason in sorted(disabled.items()):
        print(f"organisation {org} is disabled" + (f": {reason}" if reason else ""))
    if not clients:
        print("no clients registered", file=sys.stderr)
    return 0


def cmd_signing_keys_list(args: argparse.Namespace) -> int:
    with _server() as server:
        rows = server.keyring.describe()
        published = {str(k["kid"]) for k in server.keyring.published()}
    if args.json:
        print_json([{**jsonable(row), "published": row.kid in published} for row in rows])
        return 0
    for row in rows:
        until = row.publish_until.isoformat(timespec="seconds") if row.publish_until else "-"
        state = "published" if row.kid in published else "withdrawn"
        print(
            f"{row.kid}\t{row.alg}\t{row.status}\t{state}\tcreated {row.created_at.isoformat(timespec='seconds')}\t"
            f"published until {until}"
        )
    if not rows:
        print("no signing key yet (one is created with the first token)", file=sys.stderr)
    return 0


def cmd_signing_keys_rotate(args: argparse.Namespace) -> int:
    with _server() as server:
        kid, retired = server.rotate_signing_key(revoke_previous=args.revoke_previous)
    print(f"new signing key {kid}")
    for old in retired:
        if args.revoke_previous:
            print(f"withdrew {old}: tokens it signed stop working at once")
        else:
            print(f"retired {old}: published until the last token it signed has expired")
    return 0


def cmd_demo_token(args: argparse.Namespace) -> int:
    """Print an access token from the running demo gateway for ORG's demo client."""
    from gateway.auth.demo import DemoError, demo_token, recorded_server
    from gateway.clock import SystemClock

    settings = _settings()
    url, issuer = recorded_server(settings)  # where `gateway serve` listens, with the issuer it serves with
    if args.url:
        url, issuer = args.url, args.issuer or settings.token_issuer
    try:
        # Real time, as a partner system signs: the gateway checks assertions on real time, also
        # when its policy clock is simulated (demo) or a rehearsal's.
        print(demo_token(settings, SystemClock(), args.org, args.role, url, args.issuer or issuer))
    except DemoError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def register_demo(settings: Settings) -> str:
    """Register the DEMO ONLY clients (demo init); return a line saying what was done."""
    from gateway.auth.demo import register_demo_clients

    with _server(settings) as server:
        new = register_demo_clients(server)
    return f"registered {len(new)} demo clients (DEMO ONLY keys in gateway/demo/clients)" if new else ""


def _guarded(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except RegistryError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 1

    return run


def add_commands(sub: Any) -> None:
    """Add `clients` and `signing-keys` to the `gateway` command."""
    clients = sub.add_parser("clients", help="partner systems that get access tokens").add_subparsers(
        dest="sub", required=True
    )

    def keys_group(parser: argparse.ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--jwks", help="file with the client's public keys: a JWKS, one JWK, or a PEM public key")
        group.add_argument("--jwks-uri", help="https URL where the client publishes its JWKS")

    reg = clients.add_parser("register", help="register a partner system with its public keys")
    reg.add_argument("client_id")
    reg.add_argument("--org", dest="organisation", required=True, help="the organisation (from the configuration)")
    reg.add_argument("--roles", required=True, help="comma-separated roles it may act in (the token scope)")
    keys_group(reg)
    reg.add_argument("--name", help="a description of the system")
    reg.add_argument("--certificate-bound", action="store_true", help="bind its tokens to its TLS certificate")
    reg.add_argument("--rate-limit", type=int, help="API requests per minute (default: GATEWAY_RATE_LIMIT_PER_MINUTE)")
    reg.set_defaults(func=_guarded(cmd_register))

    rot = clients.add_parser("rotate-keys", help="replace a client's public keys")
    rot.add_argument("client_id")
    keys_group(rot)
    rot.add_argument("--keep-current", action="store_true", help="add the keys, keeping the current ones (overlap)")
    rot.set_defaults(func=_guarded(cmd_rotate_keys))

    for name, func, text in (
        ("disable", cmd_disable, "disable a client or organisation: its tokens stop working at once"),
        ("enable", cmd_enable, "enable a client or organisation again"),
    ):
        cmd = clients.add_parser(name, help=text)
        cmd.add_argument("client_id", nargs="?")
        cmd.add_argument("--org", dest="organisation", help="the whole organisation instead of one client")
        cmd.add_argument("--reason", help="why (kept with the status)")
        cmd.set_defaults(func=_guarded(func))

    lst = clients.add_parser("list", help="list registered clients and disabled organisations")
    lst.add_argument("--org", dest="organisation")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_guarded(cmd_list))

    keys = sub.add_parser("signing-keys", help="the gateway's access-token signing keys").add_subparsers(
        dest="sub", required=True
    )
    klist = keys.add_parser("list", help="list signing keys and whether they are published")
    add_json_flag(klist)
    klist.set_defaults(func=_guarded(cmd_signing_keys_list))
    rotate = keys.add_parser("rotate", help="activate a new signing key (the old one stays published until expiry)")
    rotate.add_argument(
        "--revoke-previous", action="store_true", help="withdraw the old keys at once (compromise): their tokens die"
    )
    rotate.set_defaults(func=_guarded(cmd_signing_keys_rotate))
