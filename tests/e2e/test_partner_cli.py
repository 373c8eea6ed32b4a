"""The CLI as an operator's shell uses it (real processes: stdout, stderr, pipes, a fresh shell), and
`gateway demo token` from a shell that does not share the server's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway import __version__
from tests.conftest import LVV_CONFIG
from tests.support.server import free_port, wait_healthy

GATEWAY = str(Path(sys.executable).parent / "gateway")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_CONFIG_DIR"] = str(LVV_CONFIG)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GATEWAY, *args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli")
    init = run(["demo", "init", "--per-city", "1"], home)
    assert init.returncode == 0, init.stderr
    return home


def test_version() -> None:
    done = subprocess.run([GATEWAY, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == f"gateway {__version__}"


def test_results_go_to_stdout_and_log_lines_to_stderr(home: Path) -> None:
    env = {**_env(), "GATEWAY_CLI_LOG_LEVEL": "info"}  # make the command log, to see where it goes
    listed = run(["covenant", "list"], home, env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("covenants as of")
    for line in listed.stdout.splitlines()[1:]:
        assert line.startswith("  "), line  # a covenant row, never a log line
    assert "gateway.built" in listed.stderr  # the log went to stderr


def test_json_output_is_one_parseable_document(home: Path) -> None:
    listed = run(["covenant", "list", "--json"], home)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    ids = {c["id"] for c in document["covenants"]}
    assert ids, document
    assert all(isinstance(c["effective_end"], str) for c in document["covenants"])
    mandates = json.loads(run(["mandate", "list", "--json"], home).stdout)
    assert "mandates" in mandates


def test_a_closed_pipe_ends_the_command_quietly(home: Path) -> None:
    # The reader goes away before the command writes (as `| head` does once it has its lines).
    proc = subprocess.Popen(
        [GATEWAY, "covenant", "list", "--json"], cwd=home, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=300)
    assert b"Traceback" not in stderr, stderr.decode()
    assert b"BrokenPipeError" not in stderr
    assert proc.returncode == 141


def test_piped_into_head_shows_no_log_lines_and_no_traceback(home: Path) -> None:
    shell = subprocess.run(
        f"{GATEWAY} covenant list | head -3",
        shell=True,
        cwd=home,
        env={**_env(), "GATEWAY_CLI_LOG_LEVEL": "info"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = shell.stdout.splitlines()
    assert lines[0].startswith("covenants as of")
    assert all(line.startswith("  ") for line in lines[1:])
    assert "Traceback" not in shell.stderr


@pytest.fixture
def server_with_its_own_issuer(home: Path) -> Iterator[tuple[str, str]]:
    """A demo server on another port, started with an issuer that only its own shell knows."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    issuer = f"http://localhost:{port}"
    log = home / f"serve-{port}.out"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [GATEWAY, "serve", "--port", str(port)],
            cwd=home,
            env={**_env(), "GATEWAY_TOKEN_ISSUER": issuer},
            stdout=out,
            stderr=out,
        )
        try:
            wait_healthy(proc, base, log)
            yield base, issuer
        finally:
            proc.terminate()
            proc.wait(30)


def test_demo_token_works_from_a_fresh_shell_against_a_server_on_another_port(
    home: Path, server_with_its_own_issuer: tuple[str, str]
) -> None:
    base, issuer = server_with_its_own_issuer
    token = run(["demo", "token", "--org", "amsterdam"], home)  # no GATEWAY_TOKEN_ISSUER, no --url
    assert token.returncode == 0, token.stderr
    headers = {
        "Authorization": f"Bearer {token.stdout.strip()}",
        "Acting-User": "demo.user",
        "Acting-Role": "case_manager",
        "Processing-Purpose": "lso_case_discussion",
    }
    listed = httpx.get(f"{base}/v1/participants", headers=headers, timeout=30)
    assert listed.status_code == 200, listed.text
    assert httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=30).json()["issuer"] == issuer
    # Demo mode: the policy clock stands in 2024; every response says so beside the real Date.
    assert listed.headers["Gateway-Policy-Time"].startswith("2024-11-15")
    assert listed.headers["Date"]
    health = httpx.get(f"{base}/health", timeout=30).json()
    assert health["clock"] == "simulated"
    assert health["policy_time"].startswith("2024-11-15")
