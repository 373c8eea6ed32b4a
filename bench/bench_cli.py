"""Start-up time of common `gateway` commands, as an operator's shell starts them (a new process each).

    .venv/bin/python bench/bench_cli.py            # 7 runs of each command after one warm-up
    .venv/bin/python bench/bench_cli.py --runs 15

Commands that need data run in a temporary directory prepared with `gateway demo init --per-city 1`.
Prints the median, min and max wall time per command; the baseline is `python -c pass` with the same
interpreter, measured in the same run. Targets: `gateway --help` and `gateway --version` < 0.5 s
(lazy imports: argparse only). The others open the database and build the gateway's parts; they say
so on stderr when that takes more than a second. A benchmark, not a test: it never fails on a timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GATEWAY = str(BIN / "gateway")
TARGET_S = 0.5
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"], None),
    ("gateway --help", [GATEWAY, "--help"], TARGET_S),
    ("gateway --version", [GATEWAY, "--version"], TARGET_S),
    ("gateway config check", [GATEWAY, "config", "check"], None),
    ("gateway covenant list", [GATEWAY, "covenant", "list"], None),
    ("gateway covenant list --json", [GATEWAY, "covenant", "list", "--json"], None),
    ("gateway clients list", [GATEWAY, "clients", "list"], None),
    ("gateway audit verify-chain", [GATEWAY, "audit", "verify-chain"], None),
]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=300)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_CONFIG_DIR"] = str(ROOT / "config" / "lvv")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as home:
        cwd = Path(home)
        print("preparing: gateway demo init --per-city 1 ...", file=sys.stderr, flush=True)
        timed([GATEWAY, "demo", "init", "--per-city", "1"], cwd, env)
        print(f"{'command':34} {'median':>8} {'min':>8} {'max':>8}  target")
        for label, command, target in COMMANDS:
            timed(command, cwd, env)  # warm-up: the file cache, .pyc files
            times = [timed(command, cwd, env) for _ in range(args.runs)]
            median = statistics.median(times)
            verdict = "" if target is None else f"< {target:.1f} s {'MET' if median < target else 'NOT MET'}"
            print(f"{label:34} {median:8.3f} {min(times):8.3f} {max(times):8.3f}  {verdict}")
    print(f"\n{args.runs} runs each, wall time in seconds, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
