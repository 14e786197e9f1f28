"""Proofs in parallel, cached, and on a Dask cluster (issue 14): one Markdown table, every ratio
measured in this run.

Rows:
* okx, every obligation: ``backstop prove`` serial (``-j 1``) against ``-j 2``, both ``--no-cache``;
* okx ``-j 2`` with an empty cache (cold) against the same run again (warm);
* the generated profile (bench/gen_profile.py, 200 instruments, written to a temp dir) on a subset
  of obligations (``--only``, default OBL-MRG-001 and OBL-LIQ-001: one instance per instrument
  each), ``-j 1`` against ``-j 2``, and on a Dask ``LocalCluster`` with 1 and 2 workers (the
  cluster is started before the clock: it stands for an existing one).

Wall seconds are printed with the machine's 1-minute load average at the end of each run: on a
shared 2-core machine a load above 2 means the proofs got less than the cores, and the ratios
(both sides measured in this run, one after the other) are what to compare.  Every run must prove everything (0 unknown) or the bench
fails.

    .venv/bin/python bench/bench_prove.py [--instruments 200] [--only OBL-MRG-001 ...] [--skip-okx] [--skip-dask]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BACKSTOP = [sys.executable, "-m", "backstop.cli"]


def _cli(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, the 1-minute load average at the end (the machine is shared), the totals line."""
    t = time.perf_counter()
    p = subprocess.run(BACKSTOP + args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    cpu = os.getloadavg()[0]
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.stderr
    if p.returncode != 0 or not re.search(r" 0 failed, 0 unknown", last):
        raise SystemExit(f"backstop {' '.join(args)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return wall, cpu, last


def _count(last: str) -> str:
    m = re.match(r"(\d+) obligation instance", last)
    return m.group(1) if m else "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="prove: -j, the verdict cache, a Dask LocalCluster")
    ap.add_argument("--instruments", type=int, default=200)
    ap.add_argument("--only", nargs="+", default=["OBL-MRG-001", "OBL-LIQ-001"])
    ap.add_argument("--skip-okx", action="store_true")
    ap.add_argument("--okx-only", nargs="+", default=None, metavar="ID",
                    help="the okx rows on these obligations only (default: every obligation)")
    ap.add_argument("--skip-dask", action="store_true")
    a = ap.parse_args(argv)

    rows: list[tuple[str, str, str, str, str]] = []   # what, instances, wall, cpu, ratio
    tmp = Path(tempfile.mkdtemp(prefix="bench-prove-"))
    env = dict(os.environ, BACKSTOP_CACHE=str(tmp / "cache"))

    if not a.skip_okx:
        sel = ["--only", *a.okx_only] if a.okx_only else []
        ok = f"okx, {' '.join(a.okx_only)}" if a.okx_only else "okx, every obligation"
        base = ["prove", "--profile", "okx", "--quiet", *sel]
        w1, c1, l1 = _cli([*base, "--no-cache"], env)
        w2, c2, l2 = _cli([*base, "--no-cache", "-j", "2"], env)
        rows += [(f"{ok}, -j 1, no cache", _count(l1), f"{w1:.1f}", f"{c1:.1f}", "1.00x"),
                 (f"{ok}, -j 2, no cache", _count(l2), f"{w2:.1f}", f"{c2:.1f}", f"{w1 / w2:.2f}x faster")]
        wc, cc, lc = _cli([*base, "-j", "2"], env)       # the cache is empty
        ww, cw, lw = _cli([*base, "-j", "2"], env)       # warm
        rows += [(f"{ok}, -j 2, cold cache", _count(lc), f"{wc:.1f}", f"{cc:.1f}", "1.00x"),
                 (f"{ok}, -j 2, warm cache", _count(lw), f"{ww:.1f}", f"{cw:.1f}", f"{wc / ww:.2f}x faster")]

    from gen_profile import generate
    gen = tmp / f"venue{a.instruments}.toml"
    gen.write_text(generate(a.instruments), encoding="utf-8")
    only = ["--only", *a.only]
    what = f"{a.instruments} instruments, {' '.join(a.only)}"
    g1, gc1, gl1 = _cli(["prove", "--profile", str(gen), "--quiet", "--no-cache", *only], env)
    g2, gc2, gl2 = _cli(["prove", "--profile", str(gen), "--quiet", "--no-cache", "-j", "2", *only], env)
    rows += [(f"{what}, -j 1", _count(gl1), f"{g1:.1f}", f"{gc1:.1f}", "1.00x"),
             (f"{what}, -j 2", _count(gl2), f"{g2:.1f}", f"{gc2:.1f}", f"{g1 / g2:.2f}x faster ({g1 / g2 / 2:.2f} per worker)")]

    if not a.skip_dask:
        try:
            import distributed
        except ImportError:
            rows.append((f"{what}, Dask LocalCluster", "-", "-", "-", "skipped: pip install '.[dask]'"))
        else:
            import dask
            # the workers' statistical profiler samples every thread every 10 ms: measured 4x
            # slower proofs on a worker with it on, 3x with it off (GIL contention with the
            # worker's event loop; a LocalCluster's nannies pass this setting to their workers)
            dask.config.set({"distributed.worker.profile.enabled": False})
            from backstop.proofs import pool
            from backstop.proofs.registry import instances
            from backstop.reference.profile import load_profile
            os.environ["BACKSTOP_CACHE"] = str(tmp / "cache")
            insts = instances(load_profile(str(gen)), a.only)
            base = None
            for n in (1, 2):
                with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                              dashboard_address=None) as lc, distributed.Client(lc) as client:
                    client.run(lambda: None)   # the workers are up before the clock starts
                    t = time.perf_counter()
                    res = pool.prove_all(str(gen), insts, scheduler=client, cache=False)
                    wall = time.perf_counter() - t
                bad = [r.key for r in res if not r.ok]
                if bad:
                    raise SystemExit(f"Dask run: not ok: {bad[:5]}")
                base = base or wall
                rows.append((f"{what}, Dask LocalCluster, {n} worker(s)", str(len(res)), f"{wall:.1f}", f"{os.getloadavg()[0]:.1f}",
                             "1.00x" if n == 1 else f"{base / wall:.2f}x faster ({base / wall / n:.2f} per worker)"))

    print(f"proofs in parallel (issue 14); {os.cpu_count()} cores\n")
    print("| run | instances | wall s | load avg | ratio (same run) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
