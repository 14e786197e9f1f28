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
import resource
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


# Bytecode as a user has it: cached (this bench's own environment may say PYTHONDONTWRITEBYTECODE,
# under which every start compiles every module again); the "no bytecode cache" row forces that.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}


CPU: dict[str, list[float]] = {}   # command label -> CPU ms (user + sys) of each timed run


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * 1000


def _time(cmd: list[str], stdin: bytes | None = None, env: dict[str, str] | None = None,
          label: str | None = None) -> float:
    """Wall ms of one run (and, with ``label``, its CPU ms in :data:`CPU`: the runs are one at a
    time, so the children's rusage grows by this one's)."""
    c0, t0 = _cpu(), time.perf_counter()
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or ENV)
    dt = time.perf_counter() - t0
    if label is not None:
        CPU.setdefault(label, []).append(_cpu() - c0)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
    return dt * 1000


def _imports_z3(request_file: Path) -> bool:
    code = ("import sys, contextlib, io\nfrom backstop.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    main(['eval', {str(request_file)!r}])\n"
            "print('z3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    return out.stdout.strip() == "True"


def bench_startup(runs: int, request_file: Path, empty_cache: Path) -> float:
    py = sys.executable
    eval_cmd = _backstop() + ["eval", str(request_file)]
    no_cache = {**ENV, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(empty_cache)}
    cases = [("`python -c pass`", [py, "-c", "pass"], ENV),
             ("`python -c \"import z3\"`", [py, "-c", "import z3"], ENV),
             ("`backstop eval` (one position)", eval_cmd, ENV),
             ("`backstop eval`, no bytecode cache (every module compiled)", eval_cmd, no_cache)]
    for _, cmd, env in cases:     # warm the bytecode cache and the page cache; not timed
        _time(cmd, env=env)
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(runs):         # interleaved
        for name, cmd, env in cases:
            times[name].append(_time(cmd, env=env, label=name))
    base = statistics.median(times[cases[0][0]])
    cbase = statistics.median(CPU[cases[0][0]])
    print(f"\n### Start-up: median of {runs} runs per command, interleaved, same run\n")
    print(f"(load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          "on a busy machine the wall times stretch, the CPU times much less)\n")
    print("| command | wall median ms | wall min ms | wall max ms | minus `python -c pass` | vs `python -c pass` "
          "| CPU median ms | CPU minus `python -c pass` |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, _, _ in cases:
        t, c = times[name], statistics.median(CPU[name])
        med = statistics.median(t)
        print(f"| {name} | {med:.1f} | {min(t):.1f} | {max(t):.1f} | {med - base:.1f} | {med / base:.2f}x "
              f"| {c:.1f} | {c - cbase:.1f} |")
    ev = statistics.median(times[cases[2][0]])
    cev = statistics.median(CPU[cases[2][0]])
    verdict = "PASS" if ev <= TARGET_MS else "FAIL"
    cverdict = "PASS" if cev <= TARGET_MS else "FAIL"
    print(f"\n| target | measured | verdict |\n|---|---:|---|\n"
          f"| one `backstop eval` <= {TARGET_MS:.0f} ms, wall median | {ev:.1f} ms | {verdict} |\n"
          f"| one `backstop eval` <= {TARGET_MS:.0f} ms, CPU median (user + sys) | {cev:.1f} ms | {cverdict} |\n"
          f"| z3 not imported by a concrete eval | {'imported' if _imports_z3(request_file) else 'not imported'} "
          f"| {'FAIL' if _imports_z3(request_file) else 'PASS'} |")
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
        (tmp / "empty-pycache").mkdir()
        bench_startup(a.runs, f, tmp / "empty-pycache")
        bench_jsonl(a.lines, req)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
