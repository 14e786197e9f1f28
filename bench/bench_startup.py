"""Benchmark of start-up (issue 14, "Start-up"): one ``backstop eval`` of one position, end to end
in a fresh process, next to ``python -c pass`` and ``python -c "import z3"`` measured in the same
run (interleaved, so that a busy machine slows all three alike); then ``backstop eval --jsonl``
requests per second.  Prints Markdown tables, the machine's load average and PASS/FAIL against
the target; asserts nothing (the target lives in the issue).

    python bench/bench_startup.py [--runs 21] [--lines 2000] [--no-wheel] [--baseline GITREF]

Two installs are timed: this environment's (an editable install: ``pip install -e``, whose finder
runs inside ``site`` at every start) and the package installed from a wheel into a temporary venv,
as a user has it (``pip wheel`` + ``python -m venv`` + ``pip install --no-deps``; bytecode compiled
at install, no editable finder).  The temporary venv borrows this one's dependencies (z3, ...)
through a ``.pth`` file, so nothing is downloaded but pip's build backend.  ``--baseline GITREF``
adds the same two rows for the tree of a git commit (``git archive``), for a before/after in one run.

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
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 80.0


def _backstop() -> list[str]:
    """The installed console script beside this Python (what a user runs), else ``-m backstop``."""
    script = Path(sys.executable).with_name("backstop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "backstop"]


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"{what}: {' '.join(cmd)} exited {r.returncode}:\n{r.stderr[-3000:]}")


def install_env(tmp: Path, source: Path, editable: bool = False) -> Path:
    """A temporary venv under ``tmp`` with the package of ``source`` installed: from a wheel (what a
    user installs), or ``editable`` (``pip install -e``, as this checkout's venv).  Its dependencies
    are this venv's site-packages, added to its path by a ``.pth`` file (a path line of a ``.pth``
    file is appended to sys.path; that folder's own ``.pth`` files -- this checkout's editable
    finder among them -- are not run).  Returns the venv's ``backstop`` console script."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "venv")
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "_bench_startup_deps.pth").write_text("".join(d + "\n" for d in deps), encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q"]
    if editable:
        _run(pip + ["-e", str(source)], "pip install -e")
    else:
        out = tmp / "wheel"
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)], "pip wheel")
        [whl] = out.glob("backstop-*.whl")
        _run(pip + [str(whl)], "pip install")
    script = venv / "bin" / "backstop"
    if not script.exists():
        raise SystemExit(f"no console script {script}")
    return script


def _tree_of(ref: str, tmp: Path) -> Path:
    """The files of git commit ``ref`` of this checkout, in a folder of ``tmp``."""
    dest = tmp / "src"
    dest.mkdir(parents=True)
    arch = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    return dest


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


def bench_startup(runs: int, request_file: Path, empty_cache: Path,
                  installs: list[tuple[str, list[str]]]) -> float:
    """``installs``: (label, console command) of every install to time, this environment's first."""
    py = sys.executable
    no_cache = {**ENV, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(empty_cache)}
    cases = [("`python -c pass`", [py, "-c", "pass"], ENV),
             ("`python -c \"import z3\"`", [py, "-c", "import z3"], ENV)]
    evals: list[str] = []
    for label, cmd in installs:
        name = f"`backstop eval` (one position), {label}"
        evals.append(name)
        cases.append((name, cmd + ["eval", str(request_file)], ENV))
    cases.append(("`backstop eval`, editable, no profile cache (`BACKSTOP_PROFILE_CACHE=0`: TOML read and checked)",
                  installs[0][1] + ["eval", str(request_file)], {**ENV, "BACKSTOP_PROFILE_CACHE": "0"}))
    cases.append(("`backstop eval`, editable, no bytecode cache (every module compiled)",
                  installs[0][1] + ["eval", str(request_file)], no_cache))
    # warm the bytecode cache, the page cache and each install's profile cache (as a user's first
    # eval leaves them); not timed
    for _, cmd, env in cases:
        _time(cmd, env=env)
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    load0 = os.getloadavg()
    for _ in range(runs):         # interleaved
        for name, cmd, env in cases:
            times[name].append(_time(cmd, env=env, label=name))
    load1 = os.getloadavg()
    base = statistics.median(times[cases[0][0]])
    cbase = statistics.median(CPU[cases[0][0]])
    print(f"\n### Start-up: median of {runs} runs per command, interleaved, same run\n")
    print(f"(load average {', '.join(f'{x:.2f}' for x in load0)} at the start, "
          f"{', '.join(f'{x:.2f}' for x in load1)} at the end (1, 5, 15 min) on {os.cpu_count()} CPUs; "
          "on a busy machine the wall times stretch, the CPU times much less)\n")
    print("| command | wall median ms | wall min ms | wall max ms | minus `python -c pass` | vs `python -c pass` "
          "| CPU median ms | CPU min ms | CPU minus `python -c pass` |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _, _ in cases:
        t, c = times[name], statistics.median(CPU[name])
        med = statistics.median(t)
        print(f"| {name} | {med:.1f} | {min(t):.1f} | {max(t):.1f} | {med - base:.1f} | {med / base:.2f}x "
              f"| {c:.1f} | {min(CPU[name]):.1f} | {c - cbase:.1f} |")
    print("\n| target | measured | verdict |\n|---|---:|---|")
    for name in evals:
        ev, cev = statistics.median(times[name]), statistics.median(CPU[name])
        print(f"| {name} <= {TARGET_MS:.0f} ms, wall median | {ev:.1f} ms | {'PASS' if ev <= TARGET_MS else 'FAIL'} |")
        print(f"| {name} <= {TARGET_MS:.0f} ms, CPU median (user + sys) | {cev:.1f} ms "
              f"| {'PASS' if cev <= TARGET_MS else 'FAIL'} |")
    z3_in = _imports_z3(request_file)
    print(f"| z3 not imported by a concrete eval | {'imported' if z3_in else 'not imported'} "
          f"| {'FAIL' if z3_in else 'PASS'} |")
    return statistics.median(times[evals[0]])


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
    ap.add_argument("--no-wheel", action="store_true", help="time this environment's install only")
    ap.add_argument("--baseline", metavar="GITREF",
                    help="also time the tree of this git commit (wheel and editable), for a before/after")
    a = ap.parse_args(argv)
    req = _request()
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        f = tmp / "eval-one.json"
        f.write_text(json.dumps(req), encoding="utf-8")
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; backstop: {' '.join(_backstop())}")
        (tmp / "empty-pycache").mkdir()
        installs = [("editable (this venv)", _backstop())]

        def add(label: str, where: Path, src: Path, editable: bool = False) -> None:
            try:
                installs.append((label, [str(install_env(where, src, editable=editable))]))
            except SystemExit as e:   # no package index for the build backend: the row is left out, said so
                print(f"({label}: not timed, the install failed: {str(e).splitlines()[0]})")

        if not a.no_wheel:
            add("wheel in a venv", tmp / "wheel", ROOT)
        if a.baseline:
            src = _tree_of(a.baseline, tmp / "baseline")
            add(f"editable, {a.baseline}", tmp / "base-editable", src, editable=True)
            if not a.no_wheel:
                add(f"wheel, {a.baseline}", tmp / "base-wheel", src)
        bench_startup(a.runs, f, tmp / "empty-pycache", installs)
        bench_jsonl(a.lines, req)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
