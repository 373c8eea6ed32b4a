"""Micro-benchmark of the policy decision point, `decide()`, on the shipped LVV configuration.

Runs a realistic, fixed mix of access requests (permits and denials of several kinds) through
`gateway.policies.decision.decide` and times every call with `time.perf_counter_ns`. The baseline,
timed the same way in the same run, is a dict lookup: the floor of this interpreter plus the timer.

    .venv/bin/python bench/bench_policy.py               # 200k timed calls after 20k warm-up
    .venv/bin/python bench/bench_policy.py --calls 50000

Target: decide() p99 <= 10 us per call.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.policies.compiled import CompiledPolicy, compile_policy
from gateway.policies.decision import AccessRequest, Reason, decide
from gateway.policies.loader import load_config
from gateway.policies.model import Operation

ROOT = Path(__file__).resolve().parent.parent
AMS = ZoneInfo("Europe/Amsterdam")
IN_FORCE = datetime(2024, 11, 15, 10, 0, tzinfo=AMS).timestamp()
AFTER_END = datetime(2025, 3, 1, 10, 0, tzinfo=AMS).timestamp()  # national covenants ended; Utrecht local
TARGET_P99_US = 10.0

R, W, L = Operation.READ, Operation.WRITE, Operation.LIST


@dataclass(frozen=True)
class Scenario:
    name: str
    weight: int  # relative frequency in the mix
    request: AccessRequest
    now_ts: float
    expect: Reason


# A working day's mix: mostly permitted reads by cities and rijkspartners, some writes and lists, and
# the denials a real gateway sees (wrong purpose, wrong region, category not permitted, after the end).
SCENARIOS = [
    Scenario("read  lso, city case manager, all cats", 20, AccessRequest("amsterdam", "case_manager", "lso_case_discussion", R, "amsterdam"), IN_FORCE, Reason.PERMITTED),  # noqa: E501
    Scenario("read  lso, IND, 2 categories", 8, AccessRequest("ind", "ind_officer", "lso_case_discussion", R, "rotterdam", ("identity", "immigration_procedure")), IN_FORCE, Reason.PERMITTED),  # noqa: E501
    Scenario("read  return, DT&V", 6, AccessRequest("dtv", "return_officer", "return_support", R, "utrecht"), IN_FORCE, Reason.PERMITTED),  # noqa: E501
    Scenario("read  shelter, NGO counsellor", 10, AccessRequest("ngo-opvang-amsterdam", "counsellor", "shelter_counselling", R, "amsterdam"), IN_FORCE, Reason.PERMITTED),  # noqa: E501
    Scenario("read  shelter, city, 1 of 2 cats withheld", 4, AccessRequest("rotterdam", "case_manager", "shelter_counselling", R, "rotterdam", ("contact", "screening")), IN_FORCE, Reason.PERMITTED),  # noqa: E501
    Scenario("read  shelter, Utrecht 2025 local covenant", 4, AccessRequest("ngo-opvang-utrecht", "counsellor", "shelter_counselling", R, "utrecht"), AFTER_END, Reason.PERMITTED),  # noqa: E501
    Scenario("write idnat, IND, 2 fields", 5, AccessRequest("ind", "ind_officer", "identity_nationality", W, "groningen", ("immigration_procedure",), (("immigration_procedure", "procedure_type"), ("immigration_procedure", "procedure_status"))), IN_FORCE, Reason.PERMITTED),  # noqa: E501
    Scenario("write intake, city, 3 categories", 3, AccessRequest("eindhoven", "intake_officer", "intake", W, "eindhoven", ("identity", "contact", "case_plan"), (("identity", "family_name"), ("identity", "birth_date"), ("contact", "phone"), ("case_plan", "phase"))), IN_FORCE, Reason.PERMITTED),  # noqa: E501
    Scenario("list  lso, city case manager", 5, AccessRequest("amsterdam", "case_manager", "lso_case_discussion", L), IN_FORCE, Reason.PERMITTED),  # noqa: E501
    Scenario("list  lso, IND (all regions)", 2, AccessRequest("ind", "ind_officer", "lso_case_discussion", L), IN_FORCE, Reason.NO_RULE),  # noqa: E501
    Scenario("deny  unknown purpose", 3, AccessRequest("amsterdam", "case_manager", "marketing", R, "amsterdam"), IN_FORCE, Reason.UNKNOWN_PURPOSE),  # noqa: E501
    Scenario("deny  unknown organisation", 1, AccessRequest("gemeente-x", "case_manager", "lso_case_discussion", R, "amsterdam"), IN_FORCE, Reason.UNKNOWN_ORGANISATION),  # noqa: E501
    Scenario("deny  role not of organisation", 2, AccessRequest("amsterdam", "counsellor", "shelter_counselling", R, "amsterdam"), IN_FORCE, Reason.ROLE_NOT_ALLOWED),  # noqa: E501
    Scenario("deny  aggregate-only purpose", 2, AccessRequest("amsterdam", "case_manager", "monitoring", R, "amsterdam"), IN_FORCE, Reason.AGGREGATE_PURPOSE),  # noqa: E501
    Scenario("deny  after covenant end", 5, AccessRequest("amsterdam", "case_manager", "lso_case_discussion", R, "amsterdam"), AFTER_END, Reason.NO_COVENANT_IN_FORCE),  # noqa: E501
    Scenario("deny  other city's participant", 5, AccessRequest("rotterdam", "case_manager", "lso_case_discussion", R, "amsterdam"), IN_FORCE, Reason.OUTSIDE_COVENANT_REGION),  # noqa: E501
    Scenario("deny  NGO asks police screening", 4, AccessRequest("ngo-opvang-amsterdam", "counsellor", "police_screening", R, "amsterdam"), IN_FORCE, Reason.NO_RULE),  # noqa: E501
    Scenario("deny  category not permitted", 4, AccessRequest("ngo-opvang-amsterdam", "counsellor", "shelter_counselling", R, "amsterdam", ("screening", "medical")), IN_FORCE, Reason.CATEGORY_NOT_PERMITTED),  # noqa: E501
    Scenario("deny  write of a category not its own", 2, AccessRequest("dtv", "return_officer", "identity_nationality", W, "amsterdam", ("immigration_procedure",), (("immigration_procedure", "procedure_status"),)), IN_FORCE, Reason.CATEGORY_NOT_PERMITTED),  # noqa: E501
]  # fmt: skip


def percentile(sorted_values: list[int], q: float) -> int:
    """Return the q-quantile (0..1) of an ascending list (nearest rank)."""
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def check_mix(policy: CompiledPolicy) -> list[str]:
    """Return the scenarios whose decision is not the expected one (the mix must be what it says)."""
    wrong = []
    for s in SCENARIOS:
        got = decide(policy, s.request, s.now_ts).reason
        if got is not s.expect:
            wrong.append(f"{s.name}: expected {s.expect.value}, got {got.value}")
    return wrong


def build_mix(count: int, seed: int = 7) -> list[int]:
    """Return a shuffled sequence of scenario indexes, weighted, `count` long."""
    rng = random.Random(seed)
    population = [i for i, s in enumerate(SCENARIOS) for _ in range(s.weight)]
    return [rng.choice(population) for _ in range(count)]


def timed_calls(call: Callable[[int], object], mix: list[int]) -> tuple[list[int], float, float]:
    """Call `call(index)` for every index in `mix`; return each call's ns, the wall and the CPU seconds."""
    clock = time.perf_counter_ns
    out = [0] * len(mix)
    w0, c0 = time.perf_counter(), time.process_time()
    for n, i in enumerate(mix):
        t0 = clock()
        call(i)
        out[n] = clock() - t0
    return out, time.perf_counter() - w0, time.process_time() - c0


def untimed_rate(call: Callable[[int], object], mix: list[int]) -> float:
    """Return calls per second for the mix without per-call timing."""
    t0 = time.perf_counter()
    for i in mix:
        call(i)
    return len(mix) / (time.perf_counter() - t0)


def us(ns: int) -> float:
    return ns / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000, help="timed calls per subject (default 200000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the calls are split into (default 5)")
    parser.add_argument("--warmup", type=int, default=20_000, help="untimed calls first (default 20000)")
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC while timing")
    args = parser.parse_args()

    policy = compile_policy(load_config(ROOT / "config" / "lvv"))
    wrong = check_mix(policy)
    if wrong:
        print("the request mix does not decide as labelled:", *wrong, sep="\n  ", file=sys.stderr)
        return 1

    requests = [s.request for s in SCENARIOS]
    times = [s.now_ts for s in SCENARIOS]
    lookup_table = {s.request.organisation + "|" + s.request.purpose: s for s in SCENARIOS}
    keys = [s.request.organisation + "|" + s.request.purpose for s in SCENARIOS]

    def call_decide(i: int) -> object:
        return decide(policy, requests[i], times[i])

    def call_dict(i: int) -> object:
        return lookup_table.get(keys[i])

    per_round = max(1, args.calls // args.rounds)
    mix = build_mix(per_round * args.rounds)
    for i in build_mix(args.warmup, seed=8):
        call_decide(i)
        call_dict(i)

    load_before = os.getloadavg()[0]
    if args.no_gc:
        gc.disable()
    base_ns: list[int] = []
    dec_ns: list[int] = []
    round_p99: list[float] = []
    wall = cpu = 0.0
    for r in range(args.rounds):  # interleaved, so that baseline and subject see the same machine
        part = mix[r * per_round : (r + 1) * per_round]
        b, _, _ = timed_calls(call_dict, part)
        d, w, c = timed_calls(call_decide, part)
        base_ns += b
        dec_ns += d
        wall += w
        cpu += c
        round_p99.append(us(percentile(sorted(d), 0.99)))
    base_rate = untimed_rate(call_dict, mix)
    dec_rate = untimed_rate(call_decide, mix)
    gc.enable()
    load_after = os.getloadavg()[0]

    def row(label: str, ns: list[int], rate: float) -> str:
        s = sorted(ns)
        return (
            f"{label:<30}{us(percentile(s, 0.5)):>9.2f}{us(percentile(s, 0.99)):>9.2f}"
            f"{us(percentile(s, 0.999)):>10.2f}{us(s[-1]):>10.1f}{rate:>14,.0f}"
        )

    permits = sum(s.weight for s in SCENARIOS if s.expect is Reason.PERMITTED)
    total_w = sum(s.weight for s in SCENARIOS)
    print(
        f"decide() on config/lvv (policy {policy.version[:19]}), Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, GC {'off' if args.no_gc else 'on'}"
    )
    print(
        f"{len(mix):,} timed calls per subject in {args.rounds} rounds, {len(SCENARIOS)} request kinds, "
        f"{permits * 100 // total_w}% permits; load average {load_before:.2f} -> {load_after:.2f}"
    )
    print()
    header = f"{'':<30}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}{'max us':>10}{'calls/s':>14}"
    print(header)
    print("-" * len(header))
    print(row("baseline: dict lookup", base_ns, base_rate))
    print(row("decide(), whole mix", dec_ns, dec_rate))
    print()

    print(f"{'per request kind':<44}{'share':>6}{'p50 us':>9}{'p99 us':>9}  reason")
    by_kind: dict[int, list[int]] = {}
    for i, ns in zip(mix, dec_ns, strict=True):
        by_kind.setdefault(i, []).append(ns)
    for i, s in enumerate(SCENARIOS):
        ks = sorted(by_kind.get(i, [0]))
        share = 100 * len(by_kind.get(i, [])) / len(mix)
        print(
            f"  {s.name:<42}{share:>5.1f}%{us(percentile(ks, 0.5)):>9.2f}{us(percentile(ks, 0.99)):>9.2f}"
            f"  {s.expect.value}"
        )
    print()

    p50_b, p50_d = percentile(sorted(base_ns), 0.5), percentile(sorted(dec_ns), 0.5)
    p99_d = us(percentile(sorted(dec_ns), 0.99))
    print(f"ratio decide / dict lookup: p50 {p50_d / p50_b:.0f}x, throughput {base_rate / dec_rate:.0f}x lower")
    print(
        f"p99 per round: {' '.join(f'{v:.1f}' for v in round_p99)} us; "
        f"CPU/wall while timing decide(): {cpu / wall:.0%} (below ~95%: the process was descheduled, "
        "the tail is inflated by other load)"
    )
    verdict = "MET" if p99_d <= TARGET_P99_US else "NOT MET"
    print(f"target: decide() p99 <= {TARGET_P99_US:.0f} us per call -> measured {p99_d:.2f} us: {verdict}")
    print("(per-call figures include one perf_counter_ns pair and a closure call; the dict-lookup row is that floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
