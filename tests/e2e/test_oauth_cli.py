"""The operator's commands (in-process) against a running gateway process: `gateway clients ...` and
`gateway signing-keys ...` change what the server (another process) accepts on its very next request;
`gateway demo token` performs the real client-credentials flow with a shipped demo client."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.clock import SimulatedClock
from tests.conftest import LVV_CONFIG
from tests.support.cli import GATEWAY, run_cli
from tests.support.server import free_port

pytestmark = pytest.mark.slow  # `gateway serve` processes

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Demo:
    home: Path
    env: dict[str, str]
    base: str
    clock: SimulatedClock
    example: dict[str, str]  # organisation -> its pseudonym of one Amsterdam participant

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, self.home, self.env)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("oauth-demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_CONFIG_DIR"] = str(LVV_CONFIG)
    init = run_cli(["demo", "init", "--per-city", "1"], home, env)
    assert init.returncode == 0, init.stderr
    assert "registered 14 demo clients" in init.stdout
    settings = dict(
        line.split("=", 1) for line in (home / "var" / "gateway.env").read_text().splitlines() if "=" in line
    )
    clock = SimulatedClock(
        datetime.fromisoformat(settings["GATEWAY_CLOCK_START"]), float(settings["GATEWAY_CLOCK_ANCHOR"])
    )
    port = free_port()
    log = (home / "serve.out").open("w")
    server = subprocess.Popen([GATEWAY, "serve", "--port", str(port)], cwd=home, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (home / "serve.out").read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        example = json.loads((home / "var" / "demo.json").read_text())["example"]
        yield Demo(home, env, base, clock, example)
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@dataclass
class Client:
    client_id: str
    key: ECKey


def registered(demo: Demo, org: str = "amsterdam", roles: str = "case_manager") -> Client:
    """Register a new partner system with the CLI, from a public-key file; return it."""
    client_id = f"partner-{org}-{secrets.token_hex(3)}"
    key = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig", "kid": f"{client_id}-1"})
    public = demo.home / f"{client_id}.jwks.json"
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    result = demo.run("clients", "register", client_id, "--org", org, "--roles", roles, "--jwks", str(public))
    assert result.returncode == 0, result.stderr
    return Client(client_id, key)


def token(demo: Demo, client: Client, base: str | None = None) -> httpx.Response:
    now = int(time.time())  # a partner signs on real time, whatever the demo clock shows
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": "http://127.0.0.1:8000/oauth/token",  # the issuer's advertised token endpoint
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(24),
    }
    signed = jwt.encode({"alg": "ES256", "kid": client.key.kid}, claims, client.key, algorithms=["ES256"])
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}
    return httpx.post(f"{base or demo.base}/oauth/token", data=form, timeout=60)


def access(demo: Demo, client: Client) -> str:
    response = token(demo, client)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def read(demo: Demo, access_token: str, org: str = "amsterdam", base: str | None = None) -> int:
    headers = {
        "Authorization": f"Bearer {access_token}",
        "Acting-User": "tester.1",
        "Acting-Role": "case_manager",
        "Processing-Purpose": "lso_case_discussion",
    }
    url = f"{base or demo.base}/v1/participants/{demo.example[org]}"
    return httpx.get(url, headers=headers, timeout=60).status_code


def kid(access_token: str) -> str:
    return str(json.loads(base64.urlsafe_b64decode(access_token.split(".")[0] + "=="))["kid"])


def test_a_client_registered_with_the_cli_gets_a_token_from_the_running_server_and_reads(demo: Demo) -> None:
    assert read(demo, access(demo, registered(demo))) == 200


def test_disabling_a_client_with_the_cli_stops_its_token_on_the_servers_next_request(demo: Demo) -> None:
    client = registered(demo)
    access_token = access(demo, client)
    assert read(demo, access_token) == 200
    assert demo.run("clients", "disable", client.client_id, "--reason", "test").returncode == 0
    assert read(demo, access_token) == 401
    assert token(demo, client).json()["error"] == "invalid_client"
    assert demo.run("clients", "enable", client.client_id).returncode == 0
    assert read(demo, access_token) == 200


def test_disabling_an_organisation_with_the_cli_stops_every_token_of_it(demo: Demo) -> None:
    client = registered(demo, "rotterdam")
    access_token = access(demo, client)
    demo_token = demo.run("demo", "token", "--org", "rotterdam").stdout.strip()
    assert read(demo, access_token, "rotterdam") == 404  # authenticated; Rotterdam may not see Amsterdam's
    assert demo.run("clients", "disable", "--org", "rotterdam").returncode == 0
    try:
        assert read(demo, access_token, "rotterdam") == 401
        assert read(demo, demo_token, "rotterdam") == 401
        listed = json.loads(demo.run("clients", "list", "--org", "rotterdam", "--json").stdout)
        assert {c["client_id"] for c in listed} >= {client.client_id, "demo-rotterdam"}
        assert all(c["organisation_disabled"] for c in listed)
    finally:
        assert demo.run("clients", "enable", "--org", "rotterdam").returncode == 0
    assert read(demo, access_token, "rotterdam") == 404


def test_rotating_client_keys_with_the_cli_retires_the_old_key(demo: Demo) -> None:
    client = registered(demo)
    new_key = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig", "kid": f"{client.client_id}-2"})
    public = demo.home / f"{client.client_id}-2.jwks.json"
    public.write_text(json.dumps(new_key.as_dict(private=False)))  # a single JWK is accepted too
    result = demo.run("clients", "rotate-keys", client.client_id, "--jwks", str(public))
    assert result.returncode == 0, result.stderr
    assert token(demo, client).status_code == 401
    assert token(demo, Client(client.client_id, new_key)).status_code == 200


def test_rotating_the_signing_key_with_the_cli_keeps_old_tokens_until_an_emergency_rotation(demo: Demo) -> None:
    client = registered(demo)
    old = access(demo, client)
    rotated = demo.run("signing-keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = access(demo, client)
    assert kid(new) != kid(old)
    assert read(demo, old) == 200
    published = {k["kid"] for k in httpx.get(f"{demo.base}/.well-known/jwks.json", timeout=60).json()["keys"]}
    assert {kid(old), kid(new)} <= published
    listed = demo.run("signing-keys", "list").stdout
    assert kid(old) in listed
    assert kid(new) in listed
    emergency = demo.run("signing-keys", "rotate", "--revoke-previous")
    assert emergency.returncode == 0, emergency.stderr
    assert read(demo, old) == 401
    assert read(demo, new) == 401
    assert read(demo, access(demo, client)) == 200


def test_the_registry_refuses_what_does_not_fit_the_configuration(demo: Demo) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "k"})
    public, private = demo.home / "refused.pub.json", demo.home / "refused.key.json"
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    private.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    cases = [
        (["--org", "atlantis", "--roles", "case_manager", "--jwks", str(public)], "atlantis"),
        (["--org", "amsterdam", "--roles", "ind_officer", "--jwks", str(public)], "not roles of amsterdam"),
        (["--org", "amsterdam", "--roles", "case_manager", "--jwks", str(private)], "private"),
        (["--org", "amsterdam", "--roles", "case_manager", "--jwks-uri", "http://partner.example/k"], "https"),
    ]
    for args, complaint in cases:
        result = demo.run("clients", "register", f"refused-{secrets.token_hex(2)}", *args)
        assert result.returncode == 1, args
        assert complaint in result.stderr, result.stderr


def test_demo_token_with_a_role_asks_for_that_scope_only(demo: Demo) -> None:
    result = demo.run("demo", "token", "--org", "amsterdam", "--role", "intake_officer")
    assert result.returncode == 0, result.stderr
    claims = json.loads(base64.urlsafe_b64decode(result.stdout.strip().split(".")[1] + "=="))
    assert claims["scope"] == "intake_officer"
    assert claims["client_id"] == "demo-amsterdam"
    assert read(demo, result.stdout.strip()) == 403  # acting as case manager is outside that scope


def test_demo_token_names_the_organisations_it_knows_when_asked_for_another(demo: Demo) -> None:
    result = demo.run("demo", "token", "--org", "atlantis")
    assert result.returncode == 2
    assert "amsterdam" in result.stderr


def test_demo_token_says_how_to_start_the_server_when_none_answers(demo: Demo) -> None:
    result = demo.run("demo", "token", "--org", "amsterdam", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "make run" in result.stderr


def test_an_assertion_timed_by_the_simulated_demo_clock_is_refused_naming_the_real_time(demo: Demo) -> None:
    client = registered(demo)
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": "http://127.0.0.1:8000/oauth/token",
        "iat": int(demo.clock.timestamp()),
        "exp": int(demo.clock.timestamp()) + 60,
        "jti": secrets.token_urlsafe(24),
    }
    signed = jwt.encode({"alg": "ES256", "kid": client.key.kid}, claims, client.key, algorithms=["ES256"])
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}
    refused = httpx.post(f"{demo.base}/oauth/token", data=form, timeout=60)
    assert refused.status_code == 401
    assert "checked against the gateway's real time 20" in refused.json()["error_description"]


def test_demo_token_works_against_a_rehearsal_server_of_the_demo_database(demo: Demo) -> None:
    copy_url = f"sqlite:///{demo.home}/var/rehearsal-demo.db"
    made = demo.run(
        "rehearsal", "copy", "--from", "sqlite:///var/gateway.db", "--to", copy_url,
        "--start", "2024-12-31T23:59:58+01:00", "--stand",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    env = {**demo.env, "GATEWAY_DATABASE_URL": copy_url, "GATEWAY_REHEARSAL": "true"}
    recorded = (demo.home / "var" / "demo-server.json").read_text()
    port = free_port()
    with (demo.home / "rehearsal-serve.out").open("w") as log:
        server = subprocess.Popen(
            [GATEWAY, "serve", "--port", str(port)], cwd=demo.home, env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (demo.home / "rehearsal-serve.out").read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        assert "REHEARSAL" in httpx.get(f"{base}/health", timeout=60).headers["gateway-rehearsal"]
        result = run_cli(["demo", "token", "--org", "amsterdam", "--url", base], demo.home, env)
        assert result.returncode == 0, result.stderr
        assert read(demo, result.stdout.strip(), base=base) == 200  # 23:59:58 on the rehearsal clock
    finally:
        server.terminate()
        server.wait(10)
        (demo.home / "var" / "demo-server.json").write_text(recorded)
