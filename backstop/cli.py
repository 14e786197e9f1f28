"""The ``backstop`` command line: ``prove``, ``eval``, ``audit``, ``profiles``.

Exit codes: 0 success; 1 a proof obligation is not ok (counterexample, unknown, vacuous, error)
or the audit found a traceability gap; 2 a refused input (malformed request, bad profile,
unknown obligation, unreadable file) -- reported as ``error: <message>`` on stderr, never as a
traceback.
"""

from __future__ import annotations

import re
import sys
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

if TYPE_CHECKING:  # imported where used: a plain `backstop eval FILE` reads its arguments without argparse,
    import argparse  # and its file and a cached profile without pathlib (issue 14, start-up)
    from pathlib import Path

from backstop import __version__
from backstop.reference.errors import BackstopError, InvalidInput, ProfileError

__all__ = ["main", "build_parser", "evaluate_request", "run_proofs"]

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2


def _z3_version() -> str:
    import z3
    version: str = z3.get_version_string()  # z3 is untyped (Any)
    return version


def _version_action() -> type[argparse.Action]:
    """The action of ``--version`` (a class made when the parser is built: argparse is imported then)."""
    import argparse

    class _VersionAction(argparse.Action):
        """``--version``: like argparse's, but asks z3 for its version only when the option is given
        (building the parser must not import z3)."""

        def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                     default: Any = argparse.SUPPRESS, help: str | None = None) -> None:
            super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

        def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any,
                     option_string: str | None = None) -> None:
            parser._print_message(f"backstop {__version__} (z3 {_z3_version()})\n", sys.stdout)
            parser.exit()

    return _VersionAction


def _commit() -> str:
    """The git commit of the source tree (with ``+dirty`` when it has local changes), or ""."""
    import subprocess
    from backstop.trace import repo_root
    root = repo_root()
    if not (root / ".git").exists():
        return ""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def _load_profile(name: str) -> Any:
    from backstop.reference.profile import load_profile
    try:
        return load_profile(name)
    except OSError as e:
        raise ProfileError("profile", str(name), f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ProfileError("profile", str(name), "not UTF-8 text") from None


def _profile_files(name_or_path: str) -> list[tuple[str, bytes]]:
    """The profile's file and, for an overlay (``extends``), the shipped files it lays itself on:
    ``(label, bytes)``, the profile first.  Called after the profile loaded, so the files exist."""
    import tomllib
    from pathlib import Path
    from backstop.reference.profile import _profiles_dir
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        files = [(str(p), p.read_bytes())]
    else:
        files = [(f"backstop.spec/profiles/{name_or_path}.toml",
                  _profiles_dir().joinpath(f"{name_or_path}.toml").read_bytes())]
    while True:
        try:
            base = tomllib.loads(files[-1][1].decode("utf-8")).get("extends")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            break
        if not isinstance(base, str) or any(lbl.endswith(f"/{base}.toml") for lbl, _ in files[1:]):
            break
        files.append((f"backstop.spec/profiles/{base}.toml", _profiles_dir().joinpath(f"{base}.toml").read_bytes()))
    return files


def _meta(profile: Any, profile_arg: str | None = None, only: Sequence[str] | None = None) -> Any:
    """What identifies a run; with ``profile_arg`` (the --profile given) also the date (UTC),
    Python, OS and the SHA-256 of the profile's file (for an overlay: of its text, with the hash
    of the shipped profile it extends)."""
    from backstop.proofs.kernel import SEED
    from backstop.report import Meta, sha256_hex
    if profile_arg is None:
        return Meta(profile.name, profile.title, tuple(profile.sources), _z3_version(), SEED, __version__, _commit())
    import datetime
    import platform
    files = _profile_files(profile_arg)
    base = ", ".join(f"{lbl.rsplit('/', 1)[-1][:-5]} ({lbl}, SHA-256 {sha256_hex(b)})" for lbl, b in files[1:])
    return Meta(profile.name, profile.title, tuple(profile.sources), _z3_version(), SEED, __version__, _commit(),
                date_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                python=f"{platform.python_version()} ({platform.python_implementation()})",
                os=platform.platform(), profile_file=files[0][0], profile_sha256=sha256_hex(files[0][1]),
                profile_base=base, only=tuple(only or ()))


_DASH_OUT: list[TextIO] = []  # where `-` writes while the human lines are redirected to stderr


def _write(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``; ``-`` is standard output (the human lines went to stderr)."""
    from pathlib import Path
    if str(path) == "-":
        out = _DASH_OUT[-1] if _DASH_OUT else sys.stdout
        out.write(text if text.endswith("\n") else text + "\n")
        out.flush()
        return Path("-")
    p = Path(path)
    try:
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InvalidInput(str(path), str(path), f"cannot write: {e.strerror or e}") from None
    return p


# ---------------------------------------------------------------- proofs

def run_proofs(profile: Any, only: Sequence[str] | None = None, smt_dir: Path | None = None,
               on_result: Callable[[Any], None] | None = None, *, profile_ref: str | None = None,
               jobs: int = 1, scheduler: str | None = None, use_cache: bool = True,
               on_total: Callable[[int], None] | None = None) -> list[tuple[Any, Any]]:
    """Prove every obligation instance of ``profile`` (or those ``only`` selects), in registry
    order; returns (instance, result) pairs.  ``only`` items are obligation IDs, instance keys or
    rule IDs; an item that selects nothing is refused.  With ``jobs`` > 1 the instances are proved
    in that many processes, with ``scheduler`` on a Dask cluster (both rebuild the profile from
    ``profile_ref``, its name or path); the results are in registry order either way."""
    from backstop.proofs import cache
    from backstop.proofs.kernel import prove
    from backstop.proofs.registry import instances

    cache.set_enabled(use_cache)
    if jobs < 1:
        raise InvalidInput("-j", jobs, "the number of processes is at least 1")

    if only:
        for item in only:
            if not instances(profile, [item]):
                raise InvalidInput("--only", item, f"selects no obligation instance of profile {profile.name!r} "
                                   "(give an obligation ID, an instance key such as OBL-MRG-001[BTC-USDT-SWAP], or a rule ID)")
    selected = instances(profile, list(only) if only else None)
    if on_total is not None:
        on_total(len(selected))
    if jobs > 1 or scheduler:
        from backstop.proofs.pool import prove_all
        results = prove_all(profile_ref or profile.name, selected, jobs=jobs, scheduler=scheduler,
                            cache=use_cache, smt_dir=smt_dir, on_result=on_result)
        return list(zip(selected, results))
    runs = []
    for inst in selected:
        r = prove(inst, smt_dir)
        runs.append((inst, r))
        if on_result is not None:
            on_result(r)
    return runs


def _run_and_print(args: argparse.Namespace, out: TextIO, only: Sequence[str] | None = None) -> tuple[Any, list[Any]]:
    from backstop import report

    profile = _load_profile(args.profile)
    quiet = getattr(args, "quiet", False)
    if not quiet:
        print(f"proving profile {profile.name!r} ({profile.title})", file=out, flush=True)

    count = {"done": 0, "total": 0}

    def total(n: int) -> None:
        count["total"] = n

    def progress(r: Any) -> None:
        count["done"] += 1
        if not quiet:
            print(report.progress_line(r, count["done"], count["total"]), file=out, flush=True)

    from pathlib import Path
    smt_dir = Path(args.smt_dir) if getattr(args, "smt_dir", None) else None
    runs = run_proofs(profile, only, smt_dir, progress, profile_ref=args.profile,
                      jobs=getattr(args, "jobs", 1), scheduler=getattr(args, "scheduler", None),
                      use_cache=not getattr(args, "no_cache", False), on_total=total)
    results = [r for _, r in runs]
    if not quiet:
        print(file=out)
        print(report.summary_table(results), file=out)
        print(file=out)
    print(report.totals_line(report.totals(results)), file=out)
    fails = [(i, r) for i, r in runs if not r.ok]
    if fails:
        print(file=out)
        print(f"{len(fails)} obligation instance(s) not ok:", file=out)
        for inst, r in fails:
            print(file=out)
            print(report.failure_text(inst, r), file=out)
    return profile, runs


def _write_records(args: argparse.Namespace, profile: Any, runs: list[Any], meta: Any = None) -> None:
    from backstop import report
    from backstop.jsonio import dumps
    meta = meta or _meta(profile)
    if getattr(args, "json", None):
        _write(args.json, dumps(report.proof_records(runs, meta)))
    if getattr(args, "junit", None):
        _write(args.junit, report.junit_xml(runs, meta))


def _to_stdout(args: argparse.Namespace) -> bool:
    """``--json -`` or ``--junit -``: that record goes to stdout, so the human lines go to stderr."""
    return "-" in (getattr(args, "json", None), getattr(args, "junit", None))


def _human_lines_to_stderr(run: Callable[[], int]) -> int:
    """Run ``run`` with its printed lines on stderr; ``-`` (see :func:`_write`) stays stdout."""
    import contextlib
    _DASH_OUT.append(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return run()
    finally:
        _DASH_OUT.pop()


def cmd_prove(args: argparse.Namespace) -> int:
    if args.json == "-" and args.junit == "-":
        raise InvalidInput("--junit", "-", "only one of --json and --junit can be written to stdout")
    if _to_stdout(args):
        return _human_lines_to_stderr(lambda: _cmd_prove(args))
    return _cmd_prove(args)


def _cmd_prove(args: argparse.Namespace) -> int:
    profile, runs = _run_and_print(args, sys.stdout, args.only)
    _write_records(args, profile, runs)
    return EXIT_OK if all(r.ok for _, r in runs) else EXIT_FAIL


_GAPS_SHOWN = 25


def _source_tree() -> Path:
    """The source tree the traceability reads (spec/, reference/, proofs/, tests/ beside backstop/).
    An installed package ships the spec, the reference and the proofs, but not the tests, so the
    traceability cannot be built from it: refused, before any proof runs."""
    from backstop.trace import repo_root
    root = repo_root()
    missing = [d for d in ("spec", "reference", "proofs", "tests") if not (root / d).is_dir()]
    if missing:
        raise BackstopError(
            f"audit: the traceability reads the source tree (spec/, reference/, proofs/ and tests/ beside "
            f"backstop/), and this backstop is an installed package without it ({root} has no "
            f"{', '.join(m + '/' for m in missing)}); run the audit from a source checkout "
            f"(`make audit` there), or `backstop prove` for the proofs alone")
    return root


def _audit_inputs(args: argparse.Namespace, profile: Any) -> tuple[list[tuple[Path, Any]], list[str]]:
    """Validate every input of an audit before any proof runs: the output paths and every
    scenario file of ``--scenarios`` (loaded in full, so a bad file is refused at once).
    Returns the scenarios written for this profile and the names of those skipped."""
    from pathlib import Path
    from backstop import simulate as SIM
    from backstop.proofs.registry import instances
    for item in args.only or ():
        if not instances(profile, [item]):
            raise InvalidInput("--only", item, f"selects no obligation instance of profile {profile.name!r}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidInput("--out", args.out, "an existing file, not a folder")
    for opt in ("json", "junit"):
        val = getattr(args, opt, None)
        if val and Path(val).is_dir():
            raise InvalidInput(f"--{opt}", val, "a folder; give a file name")
        if val:
            above = next((a for a in Path(val).absolute().parents if a.exists()), None)
            if above is not None and not above.is_dir():
                raise InvalidInput(f"--{opt}", val, f"cannot be created: {above} is a file")
    if args.scenarios is None:      # the default: examples/ when there is one
        folder = Path("examples") if Path("examples").is_dir() else None
    elif args.scenarios == "":
        folder = None
    else:
        folder = Path(args.scenarios)
        if not folder.is_dir():
            raise InvalidInput("--scenarios", args.scenarios, "not a folder ('' runs no scenario)")
    chosen, skipped = [], []
    for f in sorted(folder.glob("*.toml")) if folder else []:
        scn = SIM.load_scenario(f)
        if scn.profile.name == profile.name:
            chosen.append((f, scn))
        else:
            skipped.append(f"{f.stem} (profile {scn.profile.name})")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInput("--out", args.out, f"cannot create: {e.strerror or e}") from None
    return chosen, skipped


def cmd_audit(args: argparse.Namespace) -> int:
    """Validate every input, prove, build the traceability, run the scenarios, and only then write
    the reports (Markdown, HTML, and --json/--junit, ``-`` for stdout), whose verdict covers all of it."""
    if _to_stdout(args):
        if args.json == "-" and args.junit == "-":
            raise InvalidInput("--junit", "-", "only one of --json and --junit can be written to stdout")
        return _human_lines_to_stderr(lambda: _cmd_audit(args))
    return _cmd_audit(args)


def _cmd_audit(args: argparse.Namespace) -> int:
    from backstop import report
    from backstop.jsonio import dumps
    from backstop.proofs.registry import REGISTRY
    from backstop.trace import build_trace

    # 1. inputs, before any proof
    profile = _load_profile(args.profile)
    root = _source_tree()
    try:
        trace = build_trace(root)
    except (ValueError, SyntaxError) as e:  # a rule defined twice, a test file that does not parse
        raise BackstopError(f"traceability: {e}") from None
    scenarios, skipped = _audit_inputs(args, profile)
    meta = _meta(profile, args.profile, args.only)
    scope = _audit_scope(args.profile, profile)
    from pathlib import Path
    out = Path(args.out)
    # a report on disk is always the report of a finished run
    for opt, stale in (("--out", out / "audit.md"), ("--out", out / "audit.html"),
                       ("--json", args.json), ("--junit", args.junit)):
        try:
            if stale and str(stale) != "-":
                Path(stale).unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise InvalidInput(opt, str(stale), f"cannot replace: {e.strerror or e}") from None

    # 2. proofs; 3. scenarios
    profile, runs = _run_and_print(args, sys.stdout, args.only)
    gaps = trace.gaps()
    print()
    if gaps:
        print(f"{len(gaps)} traceability gap(s):")
        for g in gaps[:_GAPS_SHOWN]:
            print(f"  {g}")
        if len(gaps) > _GAPS_SHOWN:
            print(f"  ... and {len(gaps) - _GAPS_SHOWN} more (all of them in {out / 'audit.md'})")
    else:
        print("traceability: no gaps")
    errors: list[str] = []
    outcomes = _audit_scenarios(scenarios, out, errors)
    for name in skipped:
        print(f"scenario {name}: skipped (written for another profile)")

    # 4. the reports, last.  A report that cannot be written is an error of the run: the others are
    # (re)written with it, so no report on disk says PASSED for a run that exits 2.
    kw = dict(scenarios=outcomes, errors=errors, scope=scope, skipped=skipped)
    targets: list[tuple[Any, Callable[[], str]]] = [(out / "audit.md", lambda: report.audit_markdown(meta, runs, trace, REGISTRY, **kw)),
               (out / "audit.html", lambda: report.audit_html(meta, runs, trace, REGISTRY, **kw)),
               (args.json, lambda: dumps(report.audit_json(meta, runs, trace, REGISTRY, **kw))),
               (args.junit, lambda: report.audit_junit(meta, runs, trace, scenarios=outcomes, errors=errors))]
    unwritable: set[Any] = set()
    for _ in range(2):
        written, new_error = [], False
        for path, text in targets:
            if not path or path in unwritable or (str(path) == "-" and "-" in written):
                continue
            try:
                written.append(str(_write(path, text())))
            except InvalidInput as e:
                errors.append(f"cannot write the report: {e}")
                unwritable.add(path)
                new_error = True
        if not new_error:
            break
    problems = report.audit_problems(runs, trace, outcomes, errors)
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    verdict = "FAILED: " + ", ".join(problems) if problems else "PASSED"
    partial = f" (partial run: --only {' '.join(args.only)})" if args.only else ""
    print(f"audit {verdict}{partial}; wrote {', '.join(written)}")
    if errors:
        return EXIT_INPUT
    return EXIT_FAIL if problems else EXIT_OK


def _audit_scope(profile_arg: str, profile: Any) -> Any:
    """The report's "Assumptions and scope": assumed profile values, out-of-scope source sentences."""
    from importlib import resources
    from backstop import report
    files = [(lbl, b.decode("utf-8", "replace")) for lbl, b in _profile_files(profile_arg)]
    sources = resources.files("backstop.spec").joinpath("99-sources.md").read_text(encoding="utf-8")
    return report.AuditScope(tuple(report.profile_assumptions(files)), tuple(report.out_of_scope_rows(sources)))


def _audit_scenarios(scenarios: Sequence[tuple[Path, Any]], out: Path, errors: list[str]) -> list[Any]:
    """Run every (already validated) scenario with every invariant checked after every event and
    write its outputs (event log, final state, fund histories, chart) under ``out/scenarios/NAME/``.
    A refused event or a failed write stops that scenario and is recorded in ``errors``."""
    import time
    from backstop import report
    from backstop import simulate as SIM
    outcomes = []
    for f, scn in scenarios:
        t0 = time.perf_counter()
        dest = out / "scenarios" / f.stem
        try:
            res = SIM.run_scenario(scn, check=True)
            paths = SIM.write_outputs(res, dest)
            summ = SIM.summary(res)
            chart = SIM.chart_svg(res)
        except (BackstopError, OSError) as e:
            msg = f"scenario {f.stem}: {e.strerror if isinstance(e, OSError) and e.strerror else e}"
            errors.append(msg)
            outcomes.append(report.ScenarioOutcome(f.stem, str(f), len(scn.events), error=str(e),
                                                   seconds=time.perf_counter() - t0))
            print(f"scenario {f.stem}: ERROR")
            continue
        o = report.ScenarioOutcome(
            f.stem, str(f), len(scn.events), res.processed, summ["liquidations"], summ["adl_fills"],
            res.violation, "", summ["funds"], chart,
            tuple(str(p.relative_to(out)) if p.is_relative_to(out) else str(p) for p in paths),
            time.perf_counter() - t0)
        outcomes.append(o)
        print(f"scenario {f.stem}: {o.processed} events, {o.liquidations} liquidations, "
              f"{o.adl_fills} ADL fills; invariants {o.verdict}")
    return outcomes


# ---------------------------------------------------------------- eval

def evaluate_request(req: Any, profiles: dict[Any, Any] | None = None) -> dict[str, Any]:
    """Validate a whole ``eval`` request, then answer the operation it names (``margin`` by
    default); returns the response (JSON-ready, exact values as strings).  Raises
    :class:`InvalidInput` naming the field.  The request formats are in ``backstop/inputs.py``
    and README.md ("JSON formats for eval")."""
    from backstop.inputs import evaluate
    return evaluate(req, profiles)


def _error_object(e: BackstopError) -> dict[str, Any]:
    from backstop.jsonio import to_json
    if isinstance(e, InvalidInput):
        from backstop.reference.read import shorten
        value = e.value if isinstance(e.value, (bool, type(None))) or (
            isinstance(e.value, (str, int)) and len(str(e.value)) <= 60) else shorten(e.value)
        return {"error": {"field": e.field, "reason": e.reason, "value": to_json(value), "rule": e.rule,
                          "message": f"error: {error_line(e)}"}}
    return {"error": {"field": "", "reason": str(e), "value": None, "rule": "", "message": f"error: {error_line(e)}"}}


def _eval_jsonl(stream: Any, out: Any) -> int:
    """One request per line in, one response per line out (compact JSON); a refused line answers
    ``{"line": n, "error": {...}}`` and the run goes on; blank lines are skipped.  Profiles are
    loaded once per process (:mod:`backstop.profile_cache`, again when a shipped profile file
    changes).  Exit 0 when every line was answered, 2 when some line was refused."""
    import json as _json
    from backstop.jsonio import loads
    from backstop.profile_cache import PROCESS_PROFILES as profiles
    refused = 0
    for n, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            resp = evaluate_request(loads(line, f"line {n}"), profiles)
        except BackstopError as e:
            refused += 1
            resp = {"line": n, **_error_object(e)}
        out.write(_json.dumps(resp, ensure_ascii=False, separators=(",", ":")) + "\n")
    return EXIT_INPUT if refused else EXIT_OK


def _read_text(name: str) -> str:
    """``Path(name).read_text(encoding="utf-8")``, without importing pathlib for a plain name (not
    empty, no trailing slash: the names Path would turn into another file, ``.`` or ``x``)."""
    if name and not name.endswith("/"):
        with open(name, encoding="utf-8") as fh:
            return fh.read()
    from pathlib import Path
    return Path(name).read_text(encoding="utf-8")


def cmd_eval(args: argparse.Namespace) -> int:
    from backstop.jsonio import dumps, loads
    if getattr(args, "jsonl", False):
        if args.file == "-":
            return _eval_jsonl(sys.stdin, sys.stdout)
        try:
            with open(args.file, encoding="utf-8") as fh:
                return _eval_jsonl(fh, sys.stdout)
        except OSError as e:
            raise InvalidInput(args.file, args.file, f"cannot read: {e.strerror or e}") from None
    if args.file == "-":
        text, source = sys.stdin.read(), "<stdin>"
    else:
        try:
            text = _read_text(args.file)
        except OSError as e:
            raise InvalidInput(args.file, args.file, f"cannot read: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise InvalidInput(args.file, args.file, "not UTF-8 text") from None
        source = args.file
    from backstop.profile_cache import DiskProfiles   # a shipped profile from the disk cache (start-up)
    resp = evaluate_request(loads(text, source), DiskProfiles())
    sys.stdout.write(dumps(resp))
    return EXIT_OK


# ---------------------------------------------------------------- profiles

def _profile_lines(p: Any) -> list[str]:
    from backstop.proofs.kernel import format_value as fv

    def row(cells: Sequence[str], widths: Sequence[int]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    f = p.fund
    hh, mm, ss = f.settlement_time_seconds // 3600, f.settlement_time_seconds // 60 % 60, f.settlement_time_seconds % 60
    lines = [f"name: {p.name}", f"title: {p.title}", "sources:"] + [f"  - {s}" for s in p.sources]
    lines += ["", "[margin]",
              f"  mm_price_basis = {p.margin.mm_price_basis.value}",
              f"  trigger = {p.margin.trigger.value}",
              f"  close_fee_rate = {fv(p.margin.close_fee_rate)}",
              "[liquidation]",
              f"  partial = {p.liquidation.partial.value}",
              f"  liquidation_fee_rate = {fv(p.liquidation.liquidation_fee_rate)}",
              f"  fee_receiver = {p.liquidation.fee_receiver.value}",
              "[fund]",
              f"  settlement_time = {hh:02d}:{mm:02d}:{ss:02d} (local; {f.settlement_time_seconds} s after midnight)",
              f"  utc_offset_minutes = {f.utc_offset_minutes}",
              f"  realtime_view = {fv(f.realtime_view)}",
              "[adl]",
              f"  drawdown_fraction = {fv(p.adl.drawdown_fraction)}",
              f"  drawdown_window_seconds = {p.adl.drawdown_window_seconds}",
              f"  execution_price = {p.adl.execution_price.value}",
              f"  ranking = {p.adl.ranking.value}",
              f"  balance_view = {p.adl.balance_view.value}",
              "", "currencies:"]
    lines += [f"  {c.code}: {c.decimals} decimals (1 unit = 10^-{c.decimals} {c.code})" for c in p.currencies.values()]
    for t in p.tier_tables.values():
        lines += ["", f"tier table {t.name} (basis: {t.basis.value}):"]
        head = ["tier", "cap", "mmr", "imr", "max_leverage", "mm_deduction"]
        body = [[str(x.index), "unbounded" if x.cap is None else fv(x.cap), fv(x.mmr), fv(x.imr),
                 fv(x.max_leverage), str(x.mm_deduction)] for x in t.tiers]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        lines += ["  " + row(head, widths)] + ["  " + row(r, widths) for r in body]
    lines += ["", "instruments:"]
    for i in p.instruments.values():
        lines.append(f"  {i.id}: {i.business_line.value}, {i.kind.value} on {i.underlying}, settles in "
                     f"{i.settle_currency.code}; contract value {fv(i.contract_value)}, tick {fv(i.tick_size)}, "
                     f"lot {fv(i.lot_size)}, tier table {i.tier_table.name}")
    return lines


def cmd_profiles(args: argparse.Namespace) -> int:
    from backstop.reference.profile import DEFAULT_PROFILE, profile_names
    if getattr(args, "profiles_cmd", None) == "show":
        print("\n".join(_profile_lines(_load_profile(args.name))))
        return EXIT_OK
    names = profile_names()
    width = max(len(n) for n in names) if names else 0
    for n in names:
        p = _load_profile(n)
        mark = " (default)" if n == DEFAULT_PROFILE else ""
        print(f"{n.ljust(width)}  {p.title}{mark}")
    return EXIT_OK


# ---------------------------------------------------------------- parser

def _parallel_args(p: argparse.ArgumentParser) -> None:
    """-j, --scheduler and --no-cache of prove and audit (issue 14)."""
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="prove in N processes, slowest first (default 1: one after another)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="prove on the Dask cluster at ADDRESS (needs the [dask] extra)")
    p.add_argument("--no-cache", action="store_true",
                   help="ask the solver every question (the verdict cache is $BACKSTOP_CACHE, else "
                        "$XDG_CACHE_HOME/backstop/proofs)")



# The subcommands defined in this module.  Their handlers import what they need when they run;
# the other subcommands are defined (register_cli) by their own modules, imported only when the
# command line names none of these (so `backstop eval` never imports simulate, conform, ...).
CORE_COMMANDS = ("prove", "eval", "audit", "profiles")


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand the arguments name (the first one that is not an option), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(core_only: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with ``core_only``, only :data:`CORE_COMMANDS` (start-up)."""
    import argparse
    from backstop.reference.profile import DEFAULT_PROFILE
    ap = argparse.ArgumentParser(
        prog="backstop",
        description="Exchange liquidation rules: exact reference evaluation, Z3 proofs, audit report.")
    ap.add_argument("--version", action=_version_action(), help="show program's version number and exit")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    pr = sub.add_parser("prove", help="prove every obligation of a venue profile",
                        description="Prove every obligation instance of a profile; exit 1 if any is not ok.")
    pr.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME|PATH",
                    help=f"shipped profile name or a TOML file (default: {DEFAULT_PROFILE})")
    pr.add_argument("--only", nargs="+", metavar="ID",
                    help="only these obligation IDs (OBL-...), instance keys (OBL-...[INSTRUMENT]) or rule IDs")
    pr.add_argument("--json", metavar="FILE", help="write one JSON record per obligation instance (- for stdout)")
    pr.add_argument("--junit", metavar="FILE", help="write JUnit XML (one testcase per instance; - for stdout)")
    pr.add_argument("--smt-dir", metavar="DIR", help="write the SMT-LIB query of every unknown verdict here")
    pr.add_argument("--quiet", action="store_true", help="print only the totals and the failures")
    _parallel_args(pr)
    pr.set_defaults(func=cmd_prove)

    ev = sub.add_parser("eval", help="answer an oracle request (margin, cross, liquidation, engine, fund, ADL)",
                        description="Read one JSON request (a file, or - for stdin) and print the answer of the "
                                    "operation it names (\"operation\", default \"margin\") as exact JSON; with "
                                    "--jsonl, one request per line in and one response per line out.")
    ev.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="request file (default: stdin)")
    ev.add_argument("--jsonl", action="store_true",
                    help="one request per line; a refused line answers with an error object and the run goes on")
    ev.set_defaults(func=cmd_eval)

    au = sub.add_parser("audit", help="prove everything and write the audit report",
                        description="Validate every input (profile, scenario files, output paths), prove every "
                                    "obligation, build the traceability, run the scenarios, then write DIR/audit.md "
                                    "and DIR/audit.html; exit 1 if an obligation is not ok, a gap exists or a "
                                    "scenario is not ok, 2 on a refused input or an error.")
    au.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME|PATH",
                    help=f"shipped profile name or a TOML file (default: {DEFAULT_PROFILE})")
    au.add_argument("--out", default="build/audit", metavar="DIR", help="output folder (default: build/audit)")
    au.add_argument("--json", metavar="FILE",
                    help="also write the whole audit as one JSON object (verdict, proofs, rules, gaps, scenarios)")
    au.add_argument("--junit", metavar="FILE", help="also write JUnit XML (proofs, traceability, scenarios; - for stdout)")
    au.add_argument("--only", nargs="+", metavar="ID",
                    help="a partial run: only these obligations (as for prove); the report says so")
    au.add_argument("--quiet", action="store_true", help="do not print progress and the table")
    au.add_argument("--scenarios", default=None, metavar="DIR",
                    help="run the scenarios of DIR (*.toml) with every invariant checked, and add their charts and "
                         "fund histories to the report (default: examples/ when it exists; '' to skip)")
    _parallel_args(au)
    au.set_defaults(func=cmd_audit)

    pf = sub.add_parser("profiles", help="list shipped venue profiles, or show one",
                        description="List the shipped profiles; 'profiles show NAME' prints the validated parameters.")
    pfs = pf.add_subparsers(dest="profiles_cmd", metavar="show")
    show = pfs.add_parser("show", help="print a profile's validated parameters")
    show.add_argument("name", metavar="NAME|PATH")
    pf.set_defaults(func=cmd_profiles)

    if core_only:   # the command is one of the above: the other modules' parsers are not needed
        return ap
    from backstop.history import register_cli as register_fund_history
    from backstop.conform import register_cli as register_conform
    from backstop.simulate import register_cli as register_simulate
    register_fund_history(sub)
    register_simulate(sub)
    register_conform(sub)
    from backstop.checktrace import register_cli as register_check_trace
    from backstop.vectors import register_cli as register_vectors
    register_check_trace(sub)
    register_vectors(sub)
    return ap


def error_line(e: BaseException) -> str:
    """A refusal as one line: ``<field>: <reason> (got <value>) [<rule>]``, the field and the value
    shortened (a 5,000-digit number or a 100,000-deep list is not printed whole)."""
    from backstop.reference.read import shorten
    if isinstance(e, InvalidInput):
        field = e.field if len(e.field) <= 160 else e.field[:140] + "..." + e.field[-12:]
        where = f" [{e.rule}]" if e.rule else ""
        text = f"{field}: {e.reason} (got {shorten(e.value)}){where}"
    else:
        text = str(e)
    text = re.sub(r"\s*[\r\n]\s*", " ", text)  # one line
    return text if len(text) <= 380 else text[:360] + "..." + text[-12:]


def _plain_eval_args(argv: Sequence[str]) -> Any:
    """The arguments of ``backstop eval [FILE|-] [--jsonl]`` in exactly these plain forms, read
    without building the parser (issue 14, start-up: building it costs a few ms, and its help
    formatter imports shutil); the namespace the parser would give.  None for anything else
    (another command, an option before ``eval``, ``--help``, an abbreviated or repeated option, a
    FILE that starts with ``-`` or is empty): the parser reads those.  (A SimpleNamespace: argparse
    is not imported either.)"""
    if not argv or argv[0] != "eval" or len(argv) > 3:
        return None
    rest = [a for a in argv[1:] if a != "--jsonl"]
    if len(argv) - 1 - len(rest) > 1 or len(rest) > 1 or any(a != "-" and (a[:1] in ("", "-")) for a in rest):
        return None
    from types import SimpleNamespace
    return SimpleNamespace(command="eval", file=rest[0] if rest else "-", jsonl=len(rest) < len(argv) - 1,
                              func=cmd_eval)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _plain_eval_args(argv)
    if args is None:
        parser = build_parser(core_only=_command_word(argv) in CORE_COMMANDS)
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, usage errors (argparse already printed them)
            return e.code if isinstance(e.code, int) else EXIT_INPUT
    try:
        code: int = args.func(args)  # the command's exit status (argparse's Namespace is untyped)
        return code
    except BackstopError as e:
        print(f"error: {error_line(e)}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:  # a path that cannot be read or written (a folder where a file goes, ...)
        if isinstance(e, BrokenPipeError):
            return EXIT_FAIL
        where = e.filename if e.filename is not None else "path"
        print(f"error: {error_line(InvalidInput(str(where), str(where), f'cannot use: {e.strerror or e}'))}",
              file=sys.stderr)
        return EXIT_INPUT
    except RecursionError:  # a document nested too deeply for a reader that does not catch it itself
        print("error: input: nested too deeply to read (the input bound, README \"Input bounds\")", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
