"""Benchmark of start-up (issue 14, "Start-up"): one ``backstop eval`` of one position, end to end
in a fresh process, next to ``python -c pass`` and ``python -c "import z3"`` measured in the same
run (interleaved, so that a busy machine slows all three alike); then ``backstop eval --jsonl``
requests per second.  Prints Markdown tables; asserts nothing (the target lives in the issue).

    python bench/bench_startup.py [--runs 21] [--lines 2000]

The request is the first position of examples/eval-okx-long.json.  The target: the median of
one ``backstop eval`` <= 80 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 80.0


def _backstop() -> list[str]:
    """The installed console script beside this Python (what a user runs), else ``-m backstop``."""
    script = Path(sys.executable).with_name("backstop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "backstop"]


def _request() -> dict:
    req = json.loads((ROOT / "examples" / "eval-okx-long.json").read_text(encoding="utf-8"))
    req["positions"] = req["positions"][:1]
    return req


def _time(cmd: list[str], stdin: bytes | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
    return dt * 1000


def bench_startup(runs: int, request_file: Path) -> float:
    py = sys.executable
    cases = [("`python -c pass`", [py, "-c", "pass"]),
             ("`python -c \"import z3\"`", [py, "-c", "import z3"]),
             ("`backstop eval` (one position)", _backstop() + ["eval", str(request_file)])]
    for _, cmd in cases:          # warm the bytecode cache and the page cache; not timed
        _time(cmd)
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(runs):         # interleaved
        for name, cmd in cases:
            times[name].append(_time(cmd))
    base = statistics.median(times[cases[0][0]])
    print(f"\n### Start-up: median of {runs} runs per command, interleaved, same run\n")
    print("| command | median ms | min ms | max ms | minus `python -c pass` ms | vs `python -c pass` |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _ in cases:
        t = times[name]
        med = statistics.median(t)
        print(f"| {name} | {med:.1f} | {min(t):.1f} | {max(t):.1f} | {med - base:.1f} | {med / base:.2f}x |")
    ev = statistics.median(times[cases[2][0]])
    z3 = statistics.median(times[cases[1][0]])
    verdict = "PASS" if ev <= TARGET_MS else "FAIL"
    print(f"\n| target | measured | verdict |\n|---|---:|---|\n"
          f"| one `backstop eval` <= {TARGET_MS:.0f} ms (median) | {ev:.1f} ms | {verdict} |")
    print(f"\n(`import z3` alone costs {z3 - base:.1f} ms over a bare interpreter; the eval "
          f"{'pays' if ev - base > z3 - base else 'does not need to pay'} for it.)")
    return ev


def bench_jsonl(lines: int, request: dict, runs: int = 3) -> None:
    body = (json.dumps(request) + "\n").encode() * lines
    one = (json.dumps(request) + "\n").encode()
    cmd = _backstop() + ["eval", "--jsonl", "-"]
    _time(cmd, one)
    walls = [_time(cmd, body) for _ in range(runs)]
    starts = [_time(cmd, one) for _ in range(runs)]
    wall, start = statistics.median(walls), statistics.median(starts)
    print(f"\n### `backstop eval --jsonl`: {lines} one-position requests on stdin (median of {runs})\n")
    print("| measurement | value |\n|---|---:|")
    print(f"| wall, {lines} requests | {wall:.0f} ms |")
    print(f"| wall, 1 request (start-up) | {start:.0f} ms |")
    print(f"| requests/s, end to end | {lines / (wall / 1000):.0f} |")
    per = (wall - start) / max(lines - 1, 1)
    print(f"| requests/s after start-up | {1000 / per:.0f} ({per:.2f} ms/request) |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21, help="runs per command (>= 20 for the issue's median)")
    ap.add_argument("--lines", type=int, default=2000, help="requests in the --jsonl run")
    a = ap.parse_args(argv)
    req = _request()
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        f = tmp / "eval-one.json"
        f.write_text(json.dumps(req), encoding="utf-8")
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; backstop: {' '.join(_backstop())}")
        bench_startup(a.runs, f)
        bench_jsonl(a.lines, req)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
