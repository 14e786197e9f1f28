"""Simulation at scale (issue 14): the stress scenario of ``bench/gen_stress.py`` through the
reference step function for 100, 1,000 and 10,000 accounts, with and without the invariant check
after every event (``backstop simulate --check``: ``step.check_invariants``, which checks
incrementally once the state before the event is known clean, C64).

Each (size, check) run is its own child process, so its peak RSS (``resource.getrusage``) is its
own; the child loads the scenario, builds the initial state (both untimed), then feeds every event
to ``step.process_event`` as ``simulate.run_scenario`` does, timing only the transition (and the
check).  Times are CPU seconds of the child (``time.process_time``: the machine is shared, wall
time is shown apart).  A *position check* is one open position on the instrument of a mark event,
which steps 3 and 4 of TRN-001 examine (counted outside the timed part).

The ratio column is CPU time / (accounts x events), normalized to the smallest size run with the
same marks (the same timeline: a shorter one has a larger share of crash events, each dearer):
1.00 everywhere means the cost grows linearly with accounts x events.  Memory (plain run):
the RSS once the scenario is loaded and the initial state built ("at start": it holds the
accounts), the peak RSS of the run itself (the peak is reset after loading, Linux
``/proc/self/clear_refs``), and their difference, which is what the run adds -- the records it
emits, the journal and the fund histories -- also per 1,000 records: flat means a constant.

    python bench/bench_scale.py [--sizes 100:600,1000:600,100:60,1000:60,10000:60] [--seed 14]

``SIZE:MARKS``: the accounts and the mark events of that size (the crash is at 40 % of the marks
whatever their number; book events, settlements and top-ups come on top).  Rows with fewer marks
than the first are marked in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# 100 and 1,000 accounts on one timeline of 600 marks; 10,000 on a shorter one (60 marks, the crash a
# larger share of it), with 100 and 1,000 accounts on that timeline too as its ratio's base
DEFAULT_SIZES = "100:600,1000:600,100:60,1000:60,10000:60"


def _status_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (the peak) of this process, KiB (Linux); the rusage peak elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux ``clear_refs`` 5), so that the peak measured
    after the run is the run's, not the TOML loading's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(path: str, check: bool) -> dict:
    from backstop import simulate as SIM
    from backstop.reference import step as S

    scn = SIM.load_scenario(path)
    state = SIM.initial_state(scn)
    events = [SIM.step_event(ev) for ev in scn.events]
    load_peak = _status_kib("VmHWM")
    reset = _reset_peak()
    rss0 = _status_kib("VmRSS")
    cpu = wall = 0.0
    checks = records = liq = partial = adl = 0
    processed = 0
    for ev in events:
        if isinstance(ev, S.MarkEvent):
            checks += sum(1 for a in state.accounts for q in a.positions if q.instrument == ev.instrument)
        before = state
        c0, w0 = time.process_time(), time.perf_counter()
        state, recs = S.process_event(state, ev)
        if check:
            bad = S.check_invariants(before, state, recs)
        c1, w1 = time.process_time(), time.perf_counter()
        cpu += c1 - c0
        wall += w1 - w0
        processed += 1
        if check and bad:
            raise SystemExit(f"{path}: event {processed}: invariant violated: {bad[0]}")
        records += len(recs)
        for r in recs:
            liq += r.kind in ("partial liquidation", "full liquidation")
            partial += r.kind == "partial liquidation"
            adl += r.kind == "adl"
    return {"events": processed, "marks": sum(1 for e in events if isinstance(e, S.MarkEvent)),
            "accounts": len(state.accounts), "positions": sum(len(a.positions) for a in scn.accounts),
            "cross": sum(q.margin_mode.value == "cross" for a in scn.accounts for q in a.positions),
            "inverse": sum(q.instrument == "BTC-USD-SWAP" for a in scn.accounts for q in a.positions),
            "checks": checks, "records": records, "liquidations": liq, "partial": partial, "adl": adl,
            "cpu": cpu, "wall": wall, "rss0_kib": rss0, "load_peak_kib": load_peak, "reset": reset,
            "peak_kib": _status_kib("VmHWM"), "end_kib": _status_kib("VmRSS")}


def _run_child(path: str, check: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", path] + (["--check"] if check else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child failed: {' '.join(cmd)}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help=f"ACCOUNTS:MARKS,... (default {DEFAULT_SIZES})")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--keep", metavar="DIR", help="keep the generated scenarios in DIR")
    ap.add_argument("--child", metavar="FILE", help=argparse.SUPPRESS)
    ap.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.check)))
        return 0
    sys.path.insert(0, str(HERE))
    import gen_stress

    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",") if s]
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="backstop-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    for accounts, marks in sizes:
        path = tmp / f"stress-{accounts}-{marks}.toml"
        path.write_text(gen_stress.generate(accounts, marks, args.seed), encoding="utf-8")
        plain = _run_child(str(path), False)
        checked = _run_child(str(path), True)
        rows.append((accounts, marks, plain, checked))
        print(f"  {accounts} accounts x {marks} marks: {plain['cpu']:.1f} s, --check {checked['cpu']:.1f} s",
              file=sys.stderr, flush=True)
    if not args.keep:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    # the ratio's base: the smallest size run with the same marks (the same timeline, so the same
    # share of crash events); a size run alone with its marks is its own base
    base: dict[int, tuple[float, float]] = {}
    for accounts, marks, p, c in sorted(rows, key=lambda r: r[0]):
        base.setdefault(marks, (p["cpu"] / (accounts * p["events"]), c["cpu"] / (accounts * c["events"])))
    first_marks = rows[0][1]
    print(f"\nsimulation at scale: bench/gen_stress.py seed {args.seed}, okx profile; CPU seconds of the transition "
          f"(and the check), one child process per run")
    print()
    print("| accounts | events (marks) | positions (cross, inverse) | liquidations (partial) | ADL fills | position checks "
          "| CPU s | events/s | checks/s | CPU s --check | events/s --check | checks/s --check | ratio | ratio --check "
          "| RSS at start MiB | run peak MiB | peak - start MiB | KiB per 1k records |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for accounts, marks, p, c in rows:
        ev = p["events"]
        note = " (fewer marks)" if marks < first_marks else ""
        r_p = p["cpu"] / (accounts * ev) / base[marks][0]
        r_c = c["cpu"] / (accounts * c["events"]) / base[marks][1]
        print(f"| {accounts:,} | {ev:,} ({p['marks']:,}){note} | {p['positions']:,} ({p['cross']:,}, {p['inverse']:,}) "
              f"| {p['liquidations']:,} ({p['partial']:,}) | {p['adl']:,} | {p['checks']:,} "
              f"| {p['cpu']:.1f} | {ev / p['cpu']:.1f} | {p['checks'] / p['cpu']:,.0f} "
              f"| {c['cpu']:.1f} | {c['events'] / c['cpu']:.1f} | {c['checks'] / c['cpu']:,.0f} "
              f"| {r_p:.2f} | {r_c:.2f} | {p['rss0_kib'] / 1024:.0f} | {p['peak_kib'] / 1024:.0f} "
              f"| {(p['peak_kib'] - p['rss0_kib']) / 1024:.1f} | {(p['peak_kib'] - p['rss0_kib']) / max(1, p['records']) * 1000:.0f} |")
    print("\nratio: CPU s / (accounts x events), 1.00 = the smallest row of this run with the same marks (the same "
          "timeline); wall s (plain): " + ", ".join(f"{r[2]['wall']:.1f}" for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
