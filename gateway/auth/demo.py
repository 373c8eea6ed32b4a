"""Demo clients (DEMO ONLY): synthetic partner systems whose private keys ship in gateway/demo/clients/.

`gateway demo token` performs the real client-credentials flow with them: it signs a client assertion
(authlib's `private_key_jwt_sign`) and posts it to the running gateway's token endpoint, exactly as a
partner system would. Demo clients are registered with `demo = true`, which the token endpoint
refuses outside demo mode, and this module refuses to run outside demo mode too.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc.jwk import Key, import_key

from gateway.auth.model import ASSERTION_TYPE, CLIENT_CREDENTIALS
from gateway.auth.server import TOKEN_PATH, AuthorizationServer
from gateway.clock import Clock
from gateway.settings import Settings

DEMO_CLIENTS = Path(__file__).resolve().parent.parent / "demo" / "clients"
SERVER_FILE = Path("var/demo-server.json")  # written by `gateway serve` in demo mode


class DemoError(Exception):
    """The demo flow cannot run; the message says what to do."""


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    organisation: str
    key: Key

    def public_jwks(self) -> dict[str, Any]:
        """Return the public half of the demo key as a JWKS."""
        return {"keys": [self.key.as_dict(private=False)]}


def demo_clients(directory: Path = DEMO_CLIENTS) -> dict[str, DemoClient]:
    """Return the shipped demo clients by organisation."""
    out: dict[str, DemoClient] = {}
    for path in sorted(directory.glob("demo-*.json")):
        doc = json.loads(path.read_text())
        if "DEMO_ONLY" not in doc:
            raise DemoError(f"{path} is not marked DEMO_ONLY; refusing to use it")
        out[doc["organisation"]] = DemoClient(doc["client_id"], doc["organisation"], import_key(doc["private_jwk"]))
    return out


def register_demo_clients(server: AuthorizationServer) -> list[str]:
    """Register every demo client of an organisation in the configuration (idempotent); return new ids."""
    if not server.settings.demo:
        raise DemoError("demo clients are registered only in demo mode (GATEWAY_DEMO=true)")
    registered = []
    for org, demo in demo_clients().items():
        organisation = server.policy.organisations.get(org)
        if organisation is None or server.registry.client(demo.client_id) is not None:
            continue
        server.registry.register(
            demo.client_id,
            org,
            tuple(organisation.roles),
            jwks=demo.public_jwks(),
            name=f"DEMO ONLY synthetic client of {org}",
            demo=True,
        )
        registered.append(demo.client_id)
    server.keyring.ensure_key()
    return registered


def record_server(url: str, issuer: str, path: Path = SERVER_FILE) -> None:
    """Remember where the demo gateway listens and the issuer it serves with, so that `gateway demo token`
    in another shell (without the server's environment) asks there and addresses its assertion to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": url, "issuer": issuer}) + "\n")


def recorded_server(settings: Settings, path: Path = SERVER_FILE) -> tuple[str, str]:
    """Return the URL and token issuer of the running demo gateway (as `gateway serve` recorded them)."""
    if path.exists():
        served = json.loads(path.read_text())
        return str(served["url"]), str(served.get("issuer") or settings.token_issuer)
    return f"http://{settings.host}:{settings.port}", settings.token_issuer


def server_url(settings: Settings, path: Path = SERVER_FILE) -> str:
    """Return the URL of the running demo gateway."""
    return recorded_server(settings, path)[0]


def client_assertion(demo: DemoClient, token_endpoint: str, clock: Clock, lifetime: int = 60) -> str:
    """Return a fresh client assertion (RFC 7523) for the demo client, timed by `clock` (real time:
    the gateway checks assertions on real time, whatever its policy clock shows)."""
    alg = str(demo.key.get("alg") or ("RS256" if demo.key.key_type == "RSA" else "ES256"))
    assertion: str = private_key_jwt_sign(
        demo.key,
        client_id=demo.client_id,
        token_endpoint=token_endpoint,
        alg=alg,
        header={"kid": demo.key.kid},
        issued_at=int(clock.timestamp()),
        expires_in=lifetime,
    )
    return assertion


def demo_token(
    settings: Settings, clock: Clock, organisation: str, role: str | None, url: str, issuer: str | None = None
) -> str:
    """Return an access token from the gateway at `url` (whose token issuer is `issuer`, by default the
    settings') for `organisation`'s demo client (in demo mode, also against a rehearsal server of a demo
    database)."""
    if not settings.demo:
        raise DemoError("refused: demo clients are used only in demo mode (GATEWAY_DEMO=true)")
    clients = demo_clients()
    demo = clients.get(organisation)
    if demo is None:
        raise DemoError(f"no demo client for {organisation!r}; there is one for: {', '.join(sorted(clients))}")
    form = {
        "grant_type": CLIENT_CREDENTIALS,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(demo, (issuer or settings.token_issuer).rstrip("/") + TOKEN_PATH, clock),
    }
    if role:
        form["scope"] = role
    request = urllib.request.Request(
        url.rstrip("/") + TOKEN_PATH,
        data=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
        except ValueError:
            error = {}
        raise DemoError(
            f"the token endpoint refused: {error.get('error', exc.code)}: {error.get('error_description', '')}"
        ) from None
    except OSError as exc:
        raise DemoError(f"no gateway answers at {url} ({exc}); start it with `make run`") from None
    return str(body["access_token"])
