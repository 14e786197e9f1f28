"""Fuzz every input boundary of the command line (issue 12): generated malformed and valid inputs
across ``backstop eval`` (single and ``--jsonl``), ``simulate``, ``profiles show``, ``fund-history``
and ``check-trace`` (``tests/fuzz/fuzzcases.py``), run in-process through ``backstop.cli.main``.

    python bench/bench_fuzz.py [--cases 100000] [--seed 12] [--only COMMAND] [--show 5]

Prints a Markdown table per command: cases, answered, refused, crashes, silent accepts, false
refusals, bad refusals (not one line naming the field), wrong answers, leftovers (a refusal that
left a file behind), cases/s; then the first ``--show`` problems of each kind.  Exit 1 if any
problem count is not 0.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))

import fuzzcases as FZ  # noqa: E402

PROBLEMS = ("crash", "silent accept", "false refusal", "bad refusal", "wrong answer", "leftover")


def _run(job: tuple[int, int, int, str | None, int]) -> tuple[dict, dict, dict]:
    """One worker: the cases ``i % jobs == part`` of the run, in-process, in its own temp folder."""
    seed, n, part, only, jobs = job
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    seconds: dict[str, float] = collections.defaultdict(float)
    shown: dict[str, list[str]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench-fuzz") as tmp:
        corpus = FZ.Corpus(Path(tmp))
        for k, case in enumerate(FZ.generate(seed, n, corpus, only, (part, jobs)), start=1):
            if k % 2000 == 0:  # progress on stderr: worker, cases, problems so far
                bad = sum(c_[p] for c_ in counts.values() for p in PROBLEMS)
                print(f"[worker {part}] {k} cases, {bad} problem(s)", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            v = FZ.run_case(case, Path(tmp))
            seconds[case.command] += time.perf_counter() - t0
            c = counts[case.command]
            c["cases"] += 1
            c[v.outcome] += 1
            if v.problem:
                kind = next(p for p in PROBLEMS if v.problem.startswith(p))
                c[kind] += 1
                if len(shown[kind]) < 5:
                    shown[kind].append(str(v))
    return dict(counts), dict(seconds), dict(shown)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--only", choices=FZ.COMMANDS)
    ap.add_argument("--show", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (each runs its share in-process)")
    args = ap.parse_args(argv)
    t_all = time.perf_counter()
    jobs = [(args.seed, args.cases, j, args.only, args.jobs) for j in range(args.jobs)]
    if args.jobs > 1:
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            parts = pool.map(_run, jobs)
    else:
        parts = [_run(jobs[0])]
    wall = time.perf_counter() - t_all
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    seconds: dict[str, float] = collections.defaultdict(float)
    shown: dict[str, list[str]] = collections.defaultdict(list)
    for c_, s_, sh_ in parts:
        for k, v in c_.items():
            counts[k].update(v)
        for k, v in s_.items():
            seconds[k] += v
        for k, v in sh_.items():
            shown[k].extend(v)
    cols = ["command", "cases", "answered", "refused", "differs", *PROBLEMS, "cases/s"]
    print(f"fuzz run: {args.cases} cases, seed {args.seed}, {args.jobs} worker(s), {wall:.1f} s wall "
          f"(cases/s per command: in one worker's time)\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|")
    total: collections.Counter = collections.Counter()
    for cmd in FZ.COMMANDS:
        if cmd not in counts:
            continue
        c = counts[cmd]
        total.update(c)
        rate = c["cases"] / seconds[cmd] if seconds[cmd] else 0.0
        print("| " + " | ".join([f"`{cmd}`", *(str(c[k]) for k in ["cases", "answered", "refused", "differs", *PROBLEMS]),
                                 f"{rate:,.0f}"]) + " |")
    print("| **all** | " + " | ".join(str(total[k]) for k in ["cases", "answered", "refused", "differs", *PROBLEMS])
          + f" | {total['cases'] / wall:,.0f} (wall) |")
    bad = sum(total[k] for k in PROBLEMS)
    for kind, items in shown.items():
        print(f"\n{kind}:")
        for s in items[: args.show]:
            print("  " + s.replace("\n", "\n  "))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
