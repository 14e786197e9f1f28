"""Benchmark of ``backstop simulate``: the example scenarios run end to end through the reference
step function (loading excluded), with and without the invariant check after every event.
Prints a table; asserts nothing (the issue's closing note quotes the crash scenario's events/s).

    python bench/bench_simulate.py [--n 20] [--scenarios crash,calm,drawdown]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from pathlib import Path

from backstop import simulate as SIM

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _time_runs(scn: SIM.Scenario, n: int, check: bool) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        SIM.run_scenario(scn, check=check)
        out.append(time.perf_counter() - t0)
    return out


def _peak_kib(scn: SIM.Scenario) -> float:
    tracemalloc.start()  # a separate pass: tracing slows the timed ones
    SIM.run_scenario(scn, check=False)
    peak = tracemalloc.get_traced_memory()[1] / 1024
    tracemalloc.stop()
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="runs per scenario (default 20)")
    ap.add_argument("--scenarios", default="crash,calm,drawdown", help="example names, comma-separated")
    args = ap.parse_args()
    names = [s for s in args.scenarios.split(",") if s]
    rows = []
    for name in names:
        scn = SIM.load_scenario(EXAMPLES / f"{name}.toml")
        res = SIM.run_scenario(scn, check=True)
        if res.violation:
            raise SystemExit(f"{name}: invariant violated: {res.violation}")
        plain = statistics.median(_time_runs(scn, args.n, False))
        checked = statistics.median(_time_runs(scn, args.n, True))
        events = len(scn.events)
        rows.append((name, events, len(res.records), plain, events / plain, events / checked, _peak_kib(scn)))
    calm = next((r for r in rows if r[0] == "calm"), None)
    print(f"\nbackstop simulate: median of {args.n} runs per scenario (loading excluded)")
    print(f"{'scenario':10} {'events':>6} {'records':>7} {'s/run':>8} {'events/s':>9} {'--check ev/s':>12} "
          f"{'peak KiB':>9} {'ev/s vs calm':>12}")
    for name, events, records, secs, eps, eps_checked, peak in rows:
        ratio = f"{eps / calm[4]:11.2f}x" if calm else f"{'-':>12}"
        print(f"{name:10} {events:6d} {records:7d} {secs:8.4f} {eps:9.0f} {eps_checked:12.0f} {peak:9.0f} {ratio}")


if __name__ == "__main__":
    main()
