"""Benchmark of the margin slice: concrete evaluation throughput, symbolic term building, and
proof times per profile.  Prints tables with ratios; asserts nothing (targets live in issues).

    python bench/bench_margin.py [--n 2000] [--profiles okx,binance,bybit] [--no-proofs]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import tracemalloc
from fractions import Fraction

from backstop.proofs.kernel import prove
from backstop.proofs.registry import instances
from backstop.reference.evaluate import evaluate_position
from backstop.reference.profile import load_profile
from backstop.reference.types import Position


def _positions(profile, inst, n: int, rng: random.Random):
    out = []
    for _ in range(n):
        size = inst.lot_size * rng.randint(1, 400)
        entry = inst.tick_size * rng.randint(100_000, 700_000)
        mark = entry * Fraction(rng.randint(90, 110), 100)
        value = size * inst.contract_value * (entry if inst.is_linear else 1 / entry) * inst.scale
        margin = int(value * Fraction(rng.randint(1, 50), 100))
        out.append((Position(inst.id, rng.choice(["long", "short"]), size, entry, "isolated", margin), mark))
    return out


def bench_concrete(profiles, n: int) -> None:
    print(f"\nConcrete evaluate_position (all 18 quantities), {n} random positions per instrument")
    print(f"{'profile':9} {'instrument':15} {'kind':8} {'pos/s':>9} {'us/pos':>8} {'peak KiB':>9} {'vs first':>9}")
    base = None
    rng = random.Random(7)
    for name in profiles:
        p = load_profile(name)
        for inst in p.instruments.values():
            cases = _positions(p, inst, n, rng)
            t0 = time.perf_counter()
            for pos, mark in cases:
                evaluate_position(p, pos, mark)
            dt = time.perf_counter() - t0
            tracemalloc.start()  # a separate pass: tracing slows the timed one
            for pos, mark in cases[:50]:
                evaluate_position(p, pos, mark)
            peak = tracemalloc.get_traced_memory()[1] / 1024
            tracemalloc.stop()
            per = dt / n * 1e6
            base = base or per
            print(f"{name:9} {inst.id:15} {inst.kind.value:8} {n / dt:9.0f} {per:8.1f} {peak:9.0f} {per / base:8.2f}x")


def bench_proofs(profiles) -> None:
    print("\nProofs (one fresh solver per instance, fixed seed)")
    print(f"{'profile':9} {'instances':>9} {'proved':>7} {'total s':>8} {'median s':>9} {'slowest':34} {'s':>7} {'of limit':>8}")
    for name in profiles:
        p = load_profile(name)
        rs = [prove(i) for i in instances(p)]
        secs = [r.seconds for r in rs]
        worst = max(rs, key=lambda r: r.seconds)
        print(f"{name:9} {len(rs):9d} {sum(r.ok for r in rs):7d} {sum(secs):8.2f} {statistics.median(secs):9.3f} "
              f"{worst.key:34} {worst.seconds:7.2f} {worst.seconds / worst.limit_seconds:7.1%}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--profiles", default="okx,binance,bybit")
    ap.add_argument("--no-proofs", action="store_true")
    a = ap.parse_args()
    profiles = a.profiles.split(",")
    bench_concrete(profiles, a.n)
    if not a.no_proofs:
        bench_proofs(profiles)


if __name__ == "__main__":
    main()
