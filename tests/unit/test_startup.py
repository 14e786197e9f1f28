"""Start-up (issue 14): a concrete ``backstop eval`` never imports z3 nor the other subcommands'
modules, the symbolic interpretation still works (z3 imported when a term appears), ``eval
--jsonl`` loads a profile once per process, and bytecode goes to a user cache directory when the
package directory is read-only.  Times are measured in bench/bench_startup.py, never here.

The "not imported" checks run in a fresh interpreter (a subprocess): this test process has long
imported z3 for the proofs' tests."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import backstop
from backstop import profile_cache as PC
from backstop.cli import _eval_jsonl, evaluate_request
from backstop.jsonio import loads

ROOT = Path(__file__).resolve().parents[2]
# the transition requests last: they need backstop.simulate's scenario reader (checked below)
EXAMPLES = sorted((str(p) for p in (ROOT / "examples").glob("eval-okx-*.json")), key=lambda f: ("transition" in f, f))
# what a concrete eval must not import (z3, the proofs, the other subcommands and their output code)
HEAVY = ["z3", "backstop.proofs", "backstop.simulate", "backstop.report", "backstop.charts", "matplotlib",
         "backstop.conform", "backstop.vectors", "backstop.history", "backstop.checktrace", "backstop.trace"]


def _fresh(code: str, env: dict[str, str] | None = None, cwd: str | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON value as its last line."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, **(env or {})}, cwd=cwd or str(ROOT))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


_EVAL_ALL = """
import contextlib, io, json, sys
from backstop.cli import main
HEAVY = {heavy!r}
out = {{}}
for f in {files!r}:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["eval", f])
    out[f] = [rc, len(buf.getvalue()), sorted(m for m in HEAVY if m in sys.modules)]
lines = "".join(json.dumps(json.load(open(f))) + "\\n" for f in {files!r})
sys.stdin = io.StringIO(lines)
with contextlib.redirect_stdout(io.StringIO()) as buf:
    rc = main(["eval", "--jsonl", "-"])
out["--jsonl"] = [rc, len(buf.getvalue().splitlines()), sorted(m for m in HEAVY if m in sys.modules)]
print(json.dumps(out))
"""


def test_a_concrete_eval_of_every_example_imports_neither_z3_nor_other_subcommands():
    assert len(EXAMPLES) >= 10, EXAMPLES            # the examples exist (the glob is not empty)
    got = _fresh(_EVAL_ALL.format(heavy=HEAVY, files=EXAMPLES))
    for f in EXAMPLES:
        rc, size, loaded = got[f]
        assert rc == 0 and size > 50, (f, rc, size)  # answered, with a response
        # a transition request is a scenario: it is read by backstop.simulate's scenario reader
        allowed = ["backstop.simulate"] if "transition" in Path(f).name else []
        assert loaded == allowed, f"eval of {Path(f).name} imported {loaded}"
    rc, n, loaded = got["--jsonl"]
    assert (rc, n, loaded) == (0, len(EXAMPLES), ["backstop.simulate"])


def test_the_end_to_end_command_imports_no_z3():
    """``python -m backstop eval FILE`` (the console script runs the same main)."""
    code = ("import runpy, sys, json, contextlib, io\n"
            f"sys.argv = ['backstop', 'eval', {EXAMPLES[0]!r}]\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        runpy.run_module('backstop', run_name='__main__')\n"
            "    except SystemExit as e:\n        rc = e.code\n"
            "print(json.dumps([rc, 'z3' in sys.modules]))")
    assert _fresh(code) == [0, False]


def test_building_the_parser_for_a_core_command_imports_no_other_subcommand():
    code = ("import sys, json\nfrom backstop.cli import build_parser\n"
            "core = build_parser(core_only=True)\n"
            f"loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
            "full = build_parser()\n"
            "names = lambda p: sorted(p._subparsers._group_actions[0].choices)\n"
            "print(json.dumps([loaded, names(core), names(full)]))")
    loaded, core, full = _fresh(code)
    assert loaded == []
    assert core == ["audit", "eval", "profiles", "prove"]
    # the full parser still has every subcommand (those of the other modules among them)
    assert set(core) < set(full) and {"simulate", "conform", "vectors", "check-trace", "fund-history"} <= set(full)


def test_the_other_subcommands_still_run_through_main(capsys):
    from backstop.cli import main
    assert main(["simulate", "--help"]) == 0
    assert "usage: backstop simulate" in capsys.readouterr().out
    assert main(["--version"]) == 0
    import z3
    assert capsys.readouterr().out == f"backstop {backstop.__version__} (z3 {z3.get_version_string()})\n"


# ---------------------------------------------------------------- what a margin eval leaves out

# Imported by other operations or commands, never by a margin eval: the fund book and its journal
# (fund_window), the engine and the transition rules (engine, transition), the parser (argparse,
# whose help formatter imports shutil), importlib.resources (the profiles are found by path) and
# what it brings (tempfile, zipfile).
NOT_FOR_MARGIN = ["backstop.reference.fund", "backstop.reference.journal", "backstop.reference.engine",
                  "backstop.reference.transition", "backstop.reference.step", "argparse", "shutil",
                  "importlib.resources", "tempfile", "zipfile"]
MARGIN_EXAMPLES = [f for f in EXAMPLES if json.loads(Path(f).read_text()).get("operation", "margin") == "margin"]

_LOADED_AFTER = """
import contextlib, io, json, sys
from backstop.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
    rc = main({argv!r})
print(json.dumps([rc, len(out.getvalue()), sorted(m for m in {names!r} if m in sys.modules)]))
"""


def _loaded_after(argv: list[str], names: list[str]) -> tuple[int, int, list[str]]:
    rc, size, loaded = _fresh(_LOADED_AFTER.format(argv=argv, names=names))
    return rc, size, loaded


@pytest.mark.parametrize("form", [[], ["--jsonl"]])
def test_a_margin_eval_imports_nothing_the_margin_operation_does_not_use(form, tmp_path):
    assert len(MARGIN_EXAMPLES) >= 3, MARGIN_EXAMPLES   # long, leverage, inverse-short
    for f in MARGIN_EXAMPLES:
        request = f
        if form:   # the request as one line of a --jsonl file
            request = str(tmp_path / (Path(f).stem + ".jsonl"))
            Path(request).write_text(json.dumps(json.loads(Path(f).read_text(encoding="utf-8"))) + "\n", encoding="utf-8")
        rc, size, loaded = _loaded_after(["eval", *form, request], NOT_FOR_MARGIN)
        assert rc == 0 and size > 50, (f, rc, size)
        assert loaded == [], f"a margin eval of {Path(f).name} imported {loaded}"


@pytest.mark.parametrize("argv, brings", [
    (["eval", str(ROOT / "examples" / "eval-okx-fund-window.json")], ["backstop.reference.fund", "backstop.reference.journal"]),
    (["eval", str(ROOT / "examples" / "eval-okx-engine.json")], ["backstop.reference.engine"]),
    (["eval", str(ROOT / "examples" / "eval-okx-fund-drawdown.json")], ["backstop.reference.transition"]),
    (["eval", "-h"], ["argparse", "shutil"]),
    (["eval", "--", str(ROOT / "examples" / "eval-okx-long.json")], ["argparse"]),   # not a plain form: the parser reads it
    (["profiles"], ["argparse"]),
])
def test_the_other_operations_import_what_they_use_when_they_run(argv, brings):
    """The names above are the real modules (the check cannot pass by a misspelt name): the other
    operations and the parser import them, and answer."""
    rc, size, loaded = _loaded_after(argv, NOT_FOR_MARGIN)
    assert rc == 0 and size > 50, (argv, rc, size)
    assert set(brings) <= set(loaded), (argv, loaded)


def test_importlib_resources_is_the_fallback_of_a_package_off_the_file_system(monkeypatch, tmp_path):
    """The profiles are found beside the package; where they are not (a zipped install, simulated
    by pointing the path elsewhere) importlib.resources finds the same files."""
    from importlib import resources

    from backstop.reference import profile as P
    shipped = resources.files("backstop.spec").joinpath("profiles")
    assert Path(os.fspath(P._profiles_dir())).resolve() == Path(os.fspath(shipped)).resolve()
    names = P.profile_names()
    assert {"okx", "binance", "bybit"} <= set(names)
    monkeypatch.setattr(P, "_SHIPPED", tmp_path / "absent")
    assert P._profiles_dir() == shipped
    assert P.profile_names() == names and P.load_profile("okx").name == "okx"


PLAIN_EVAL_FORMS = [["eval"], ["eval", "req.json"], ["eval", "-"], ["eval", "--jsonl"], ["eval", "--jsonl", "-"],
                    ["eval", "req.json", "--jsonl"], ["eval", "--jsonl", "a b.json"]]
PARSER_FORMS = [["eval", "-h"], ["eval", "--help"], ["eval", "--json", "x"], ["eval", "--jsonl", "--jsonl"],
                ["eval", ""], ["eval", "-x"], ["eval", "a", "b"], ["eval", "--", "x"], ["prove"], ["--version"],
                [], ["-h", "eval"], ["Eval", "x"]]


def test_the_plain_eval_forms_read_as_the_parser_reads_them():
    from backstop.cli import _plain_eval_args, build_parser
    parser = build_parser()
    for argv in PLAIN_EVAL_FORMS:
        fast = _plain_eval_args(argv)
        assert fast is not None, argv
        assert vars(fast) == vars(parser.parse_args(argv)), argv
    for argv in PARSER_FORMS:
        assert _plain_eval_args(argv) is None, argv


LAZY_NAMES = {"Path", "argparse", "tomllib", "resources"}   # imported where used (typing sees them under TYPE_CHECKING)


def _runtime_uses_without_import(path: Path) -> list[str]:
    """Every function of ``path`` that uses one of LAZY_NAMES outside an annotation without importing
    it itself (or at the module's top level): a NameError at run time that the type checker, which
    reads the TYPE_CHECKING imports, does not see."""
    import ast
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def imported(node: ast.AST) -> set[str]:
        out: set[str] = set()
        for n in ast.walk(node):
            if isinstance(n, ast.ImportFrom):
                out |= {a.asname or a.name for a in n.names}
            elif isinstance(n, ast.Import):
                out |= {(a.asname or a.name).split(".")[0] for a in n.names}
        return out

    def annotations(node: ast.AST) -> set[int]:
        ids: set[int] = set()
        for n in ast.walk(node):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = n.args.posonlyargs + n.args.args + n.args.kwonlyargs + [a for a in (n.args.vararg, n.args.kwarg) if a]
                for ann in [a.annotation for a in args] + [n.returns]:
                    ids |= {id(x) for x in ast.walk(ann)} if ann is not None else set()
            elif isinstance(n, ast.AnnAssign):
                ids |= {id(x) for x in ast.walk(n.annotation)}
        return ids

    top = set().union(*(imported(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))))
    bad = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.If)):   # the imports, TYPE_CHECKING's among them
            continue
        have, skip = top | imported(node), annotations(node)
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and n.id in LAZY_NAMES and id(n) not in skip and n.id not in have:
                bad.append(f"{path.name}:{n.lineno}: {n.id}")
    return bad


def test_the_lazily_imported_names_are_imported_where_they_are_used():
    for f in (ROOT / "backstop" / "cli.py", ROOT / "reference" / "profile.py"):
        assert _runtime_uses_without_import(f) == []
    # the check sees a use without its import
    probe = ROOT / "backstop" / "cli.py"
    bad = probe.read_text(encoding="utf-8") + "\n\ndef _probe():\n    return Path('x')\n"
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "cli.py").write_text(bad, encoding="utf-8")
        assert [x.split(": ")[1] for x in _runtime_uses_without_import(Path(d) / "cli.py")] == ["Path"]


def test_eval_help_and_usage_errors_still_come_from_the_parser(capsys):
    from backstop.cli import main
    assert main(["eval", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: backstop eval [-h] [--jsonl] [FILE|-]")
    assert main(["eval", "a.json", "b.json"]) == 2
    assert "unrecognized arguments: b.json" in capsys.readouterr().err


# ---------------------------------------------------------------- the symbolic interpretation

def test_symbolic_values_still_work_after_z3_is_imported_late():
    """num is imported (without z3) first; z3 comes later, as the proofs bring it: the kernel sees
    its terms.  max_(x, 3) at x = 5 is 5 and at x = 1 is 3 (by hand)."""
    code = ("import sys, json\nfrom fractions import Fraction\nfrom backstop.reference import num\n"
            "before = 'z3' in sys.modules\n"
            "concrete = [num.is_symbolic(1, Fraction(1, 3)), str(num.max_(1, Fraction(3, 2)))]\n"
            "import z3\nx = z3.Real('x')\nt = num.max_(x, 3)\n"
            "at = lambda v: str(z3.simplify(z3.substitute(t, (x, z3.RealVal(v)))))\n"
            "print(json.dumps([before, concrete, num.z3 is z3, num.is_symbolic(x), num.is_symbolic(1, x), at(5), at(1),"
            " str(num.value_of(num.div(z3.RealVal(1), 3)))]))")
    before, concrete, bound, sym, sym_mixed, at5, at1, third = _fresh(code)
    assert before is False
    assert bound is True        # the real module took the stand-in's place when z3 was imported
    assert concrete == [False, "3/2"]
    assert sym is True and sym_mixed is True
    assert (at5, at1) == ("5", "3")
    assert third == "1/3"


def test_z3_imported_before_the_kernel_is_bound_at_once():
    code = ("import json, z3\nfrom backstop.reference import num\n"
            "print(json.dumps([num.z3 is z3, num.is_symbolic(z3.Int('n')), num.is_symbolic(3)]))")
    assert _fresh(code) == [True, True, False]


def test_a_z3_import_the_hook_cannot_bind_is_still_seen():
    """If z3's loader could not be extended, the stand-in asks sys.modules at every check."""
    code = ("import json, sys\nfrom backstop.reference import num\n"
            "sys.meta_path.remove(num._BindZ3WhenImported)\n"
            "num._Z3NotImported.ExprRef = num._AskSysModules.ExprRef\n"
            "before = num.is_symbolic(3)\nimport z3\n"
            "print(json.dumps([before, num.z3 is z3, num.is_symbolic(z3.Real('x')), num.is_symbolic(3),"
            " str(num.value_of(num.div(z3.RealVal(2), 3)))]))")
    assert _fresh(code) == [False, False, True, False, "2/3"]


def test_a_copy_of_the_kernel_globals_taken_before_z3_sees_terms_after():
    """tests/mutation.py runs mutants in a copy of num's globals: one taken before z3 was imported
    still holds the stand-in, which sees terms once z3 is imported."""
    code = ("import json\nfrom backstop.reference import num\n"
            "g = dict(vars(num))\nimport z3\n"
            "print(json.dumps([g['z3'] is z3, isinstance(z3.Real('x'), g['z3'].ExprRef),"
            " isinstance(3, g['z3'].ExprRef), str(g['z3'].RealVal(5))]))")
    assert _fresh(code) == [False, True, False, "5"]


def test_lift_of_a_concrete_number_imports_z3_on_demand():
    """``lift`` returns a term, so it imports z3 itself; 1/3 lifted reads back as 1/3."""
    code = ("import sys, json\nfrom fractions import Fraction\nfrom backstop.reference import num\n"
            "before = 'z3' in sys.modules\nt = num.lift(Fraction(1, 3))\n"
            "print(json.dumps([before, 'z3' in sys.modules, num.is_symbolic(t), str(num.value_of(t))]))")
    assert _fresh(code) == [False, True, True, "1/3"]


def test_the_kernel_works_on_terms_in_this_process():
    import z3
    from backstop.reference import num
    x, y = z3.Reals("x y")
    s = z3.Solver()
    s.add(num.abs_(x) < 0)                 # |x| < 0 has no solution
    assert s.check() == z3.unsat
    s = z3.Solver()
    s.add(num.floor(y) != num.div_floor(y, 1))
    assert s.check() == z3.unsat


# ---------------------------------------------------------------- eval --jsonl: profiles once

REQ = json.loads((ROOT / "examples" / "eval-okx-long.json").read_text(encoding="utf-8"))


def _jsonl(lines: list[str]) -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = _eval_jsonl(io.StringIO("".join(lines)), out)
    return rc, [json.loads(x) for x in out.getvalue().splitlines()]


def test_eval_jsonl_loads_a_profile_once_per_process(monkeypatch):
    from backstop.reference import profile as P
    calls = []
    real = P.load_profile
    monkeypatch.setattr(P, "load_profile", lambda *a, **k: calls.append(a) or real(*a, **k))
    PC.PROCESS_PROFILES.clear()
    line = json.dumps(REQ) + "\n"
    rc, answers = _jsonl([line] * 5)
    rc2, again = _jsonl([line] * 3)           # a second stream in the same process
    assert (rc, rc2) == (0, 0) and len(answers) == 5 and len(again) == 3
    assert calls == [("okx",)]                # one load for eight requests
    fresh = evaluate_request(loads(line))     # uncached: the same answer
    assert all(a == fresh for a in answers + again)


def test_a_changed_shipped_profile_file_is_loaded_again(monkeypatch):
    stamps = iter([("a",), ("a",), ("b",), ("b",)])
    monkeypatch.setattr(PC, "shipped_stamp", lambda: next(stamps))
    cache = PC.ProfileCache()
    assert "okx" not in cache                 # stamp a
    cache["okx"] = "profile-1"
    assert "okx" in cache                     # still stamp a: cached
    assert "okx" not in cache                 # stamp b: the files changed, the entry is dropped
    cache["okx"] = "profile-2"
    assert "okx" in cache and cache["okx"] == "profile-2" and cache.loads == 2


def test_the_real_stamp_sees_every_shipped_profile():
    from backstop.reference.profile import profile_names
    stamp = PC.shipped_stamp()
    assert stamp is not None and sorted(n[:-5] for n, _, _ in stamp) == profile_names()


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(PC, "MAX_ENTRIES", 3)
    cache = PC.ProfileCache()
    for k in "abcd":
        assert k not in cache
        cache[k] = k.upper()
    assert sorted(cache) == ["b", "c", "d"]   # the oldest went first


def test_inline_profiles_are_cached_by_their_text_and_an_unhashable_one_is_refused():
    PC.PROCESS_PROFILES.clear()
    loads_before = PC.PROCESS_PROFILES.loads
    okx = (ROOT / "spec" / "profiles" / "okx.toml").read_text(encoding="utf-8")
    inline = {**REQ, "profile": {"toml": okx}}
    bad = {**REQ, "profile": {"toml": ["not", "text"]}}
    rc, answers = _jsonl([json.dumps(inline) + "\n"] * 2 + [json.dumps(bad) + "\n"])
    assert rc == 2
    assert answers[0] == answers[1] and answers[0]["results"] == evaluate_request(loads(json.dumps(REQ)))["results"]
    assert answers[2]["line"] == 3 and answers[2]["error"]["field"] == "profile.toml"
    assert PC.PROCESS_PROFILES.loads - loads_before == 1


# ---------------------------------------------------------------- shipped profiles cached on disk (one eval per process)

_EVAL_ONCE = """
import contextlib, io, json, sys
from backstop.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    rc = main(["eval", {f!r}])
print(json.dumps([rc, out.getvalue(), "tomllib" in sys.modules]))
"""


def test_a_second_eval_takes_the_profile_from_the_disk_cache_and_answers_the_same(tmp_path):
    """First process: the profile is read (tomllib) and written to the cache; second: read from
    the cache, no tomllib; both answers byte for byte those of a run without the cache."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    for f in [f for f in EXAMPLES if "transition" not in Path(f).name]:   # (a transition reads a scenario too)
        off = _fresh(_EVAL_ONCE.format(f=f), env={**env, "BACKSTOP_PROFILE_CACHE": "0"})
        first = _fresh(_EVAL_ONCE.format(f=f), env=env)
        second = _fresh(_EVAL_ONCE.format(f=f), env=env)
        assert off[0] == first[0] == second[0] == 0, f
        assert off[1] == first[1] == second[1] and len(off[1]) > 50, f
        assert second[2] is False, f"{Path(f).name}: tomllib imported although the profile was cached"
    assert off[2] is True                        # without the cache the profile is read as TOML
    assert [p.name.split(".")[0] for p in (tmp_path / "xdg" / "backstop" / "profiles").iterdir()] == ["okx"]


def _okx_entry(tmp_path, monkeypatch) -> tuple[PC.DiskProfiles, Path]:
    from backstop.reference.profile import load_profile
    folder = tmp_path / "profiles"
    c = PC.DiskProfiles(str(folder))
    assert "okx" not in c
    c["okx"] = load_profile("okx")
    assert c.writes == 1 and [p.name.split(".")[0] for p in folder.iterdir()] == ["okx"]
    return c, folder


def test_the_cached_profile_is_the_loaded_one(tmp_path, monkeypatch):
    from backstop.reference.profile import load_profile
    _, folder = _okx_entry(tmp_path, monkeypatch)
    c = PC.DiskProfiles(str(folder))
    assert "okx" in c and c.hits == 1
    got, fresh = c["okx"], load_profile("okx")
    assert got == fresh and got is not fresh
    for inst in got.instruments.values():        # the tier tables are shared, as loading makes them
        assert inst.tier_table is got.tier_tables[inst.tier_table.name]


@pytest.mark.parametrize("change", ["shipped", "code", "key", "corrupt", "version", "writable by others"])
def test_an_entry_is_used_only_while_what_it_was_made_from_is_unchanged(tmp_path, monkeypatch, change):
    _, folder = _okx_entry(tmp_path, monkeypatch)
    [entry] = folder.iterdir()
    if change == "shipped":     # a shipped profile file edited (another mtime or size)
        real = PC.shipped_stamp()
        monkeypatch.setattr(PC, "shipped_stamp", lambda: tuple((n, t + 1, s) for n, t, s in real))
    elif change == "code":      # a module of backstop.reference edited
        real_c = PC.code_stamp()
        monkeypatch.setattr(PC, "code_stamp", lambda: real_c[:-1] + (real_c[-1][1:],))
    elif change == "key":       # the entry of another name copied over this one
        import pickle
        fmt, _, stamp, prof = pickle.loads(entry.read_bytes())
        entry.write_bytes(pickle.dumps((fmt, "binance", stamp, prof)))
    elif change == "corrupt":
        entry.write_bytes(entry.read_bytes()[:40])
    elif change == "writable by others":   # a pickle runs code: an entry others may have written is not read
        assert entry.stat().st_mode & 0o777 == 0o600
        entry.chmod(0o666)
    else:
        monkeypatch.setattr(PC, "DISK_FORMAT", PC.DISK_FORMAT + 1)
    c = PC.DiskProfiles(str(folder))
    assert "okx" not in c and c.hits == 0


def test_two_installs_keep_separate_entries(tmp_path, monkeypatch):
    """A checkout and a wheel (their own backstop.reference folders) do not replace each other's
    entry at every start: each finds its own."""
    from backstop.reference.profile import load_profile
    okx = load_profile("okx")
    for tag in ("install-a", "install-b"):
        monkeypatch.setattr(PC, "_install_tag", lambda: tag)
        c = PC.DiskProfiles(str(tmp_path))
        assert "okx" not in c
        c["okx"] = okx
    for tag in ("install-a", "install-b"):
        monkeypatch.setattr(PC, "_install_tag", lambda: tag)
        assert "okx" in PC.DiskProfiles(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["okx.install-a.pickle", "okx.install-b.pickle"]


def test_no_cache_is_no_error(tmp_path, monkeypatch):
    """A cache folder that cannot be made (a file in its place), an inline profile (not kept on
    disk), BACKSTOP_PROFILE_CACHE=0: the eval answers as always."""
    (tmp_path / "xdg").write_text("a file where the cache folder would be")
    f = str(ROOT / "examples" / "eval-okx-long.json")
    rc, out, _ = _fresh(_EVAL_ONCE.format(f=f), env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert rc == 0 and out == evaluate_json(f)
    assert PC.disk_cache_dir({"BACKSTOP_PROFILE_CACHE": "0", "XDG_CACHE_HOME": str(tmp_path)}) is None
    assert PC.disk_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "backstop" / "profiles")
    c = PC.DiskProfiles(str(tmp_path / "cache"))
    c[("toml", "name = 'x'")] = "an inline profile"
    c["../escape"] = "a name that is no file name"
    assert c.writes == 0 and not (tmp_path / "cache").exists()


def evaluate_json(f: str) -> str:
    from backstop.jsonio import dumps
    return dumps(evaluate_request(loads(Path(f).read_text(encoding="utf-8"))))


# ---------------------------------------------------------------- bytecode outside a read-only checkout

def _package(tmp_path: Path, pyc: bool = False) -> Path:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "cli.py").write_text("x = 1\n")
    if pyc:
        (pkg / "__pycache__").mkdir()
        (pkg / "__pycache__" / f"cli.{sys.implementation.cache_tag}.pyc").write_bytes(b"")
    return pkg


def _read_only(monkeypatch):
    """Root may write anywhere, so a read-only directory is simulated where the check asks."""
    monkeypatch.setattr(backstop._os, "access", lambda p, mode: mode != os.W_OK)
    monkeypatch.setattr(backstop._sys, "pycache_prefix", None)
    monkeypatch.setattr(backstop._sys, "dont_write_bytecode", False)


def test_a_writable_package_keeps_its_bytecode_beside_the_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(backstop._sys, "pycache_prefix", None)
    monkeypatch.setattr(backstop._sys, "dont_write_bytecode", False)
    assert backstop._bytecode_prefix(str(_package(tmp_path)), {}) is None


def test_a_read_only_package_caches_bytecode_in_the_user_cache(tmp_path, monkeypatch):
    _read_only(monkeypatch)
    pkg = _package(tmp_path)
    xdg = str(tmp_path / "xdg")
    assert backstop._bytecode_prefix(str(pkg), {"XDG_CACHE_HOME": xdg}) == os.path.join(xdg, "backstop", "pycache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert backstop._bytecode_prefix(str(pkg), {}) == str(tmp_path / "home" / ".cache" / "backstop" / "pycache")
    # a relative XDG_CACHE_HOME is ignored (the XDG base directory spec says so)
    assert backstop._bytecode_prefix(str(pkg), {"XDG_CACHE_HOME": "relative"}) == \
        str(tmp_path / "home" / ".cache" / "backstop" / "pycache")


def test_the_user_choice_and_shipped_bytecode_are_respected(tmp_path, monkeypatch):
    _read_only(monkeypatch)
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert backstop._bytecode_prefix(str(_package(tmp_path, pyc=True)), xdg) is None   # compiled at install
    other = tmp_path / "other"
    other.mkdir()
    pkg = _package(other)
    monkeypatch.setattr(backstop._sys, "pycache_prefix", "/somewhere/else")
    assert backstop._bytecode_prefix(str(pkg), xdg) is None
    monkeypatch.setattr(backstop._sys, "pycache_prefix", None)
    monkeypatch.setattr(backstop._sys, "dont_write_bytecode", True)
    assert backstop._bytecode_prefix(str(pkg), xdg) is None


def test_a_read_only_copy_of_the_package_writes_its_bytecode_to_the_cache(tmp_path):
    """End to end: the package copied without bytecode, writes refused (simulated: root may write
    anywhere), one eval run: the bytecode is under $XDG_CACHE_HOME/backstop/pycache, none beside
    the sources."""
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "backstop", site / "backstop", ignore=ignore)
    for sub in ("reference", "proofs", "spec"):
        shutil.copytree(ROOT / sub, site / "backstop" / sub, ignore=ignore)
    xdg = tmp_path / "xdg"
    code = ("import os, sys, json, contextlib, io\n"
            "real = os.access\n"
            "os.access = lambda p, m, **k: False if m == os.W_OK else real(p, m, **k)\n"
            "from backstop.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main(['eval', {EXAMPLES[0]!r}])\n"
            "import backstop\n"
            "print(json.dumps([rc, sys.pycache_prefix, backstop.__file__]))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(xdg))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    rc, prefix, where = json.loads(r.stdout.strip().splitlines()[-1])
    assert rc == 0 and where.startswith(str(site))          # the copy ran, not the checkout
    assert prefix == str(xdg / "backstop" / "pycache")
    cached = list(Path(prefix).rglob(f"cli.{sys.implementation.cache_tag}.pyc"))
    assert cached and all(str(site) in str(p) for p in cached)
    assert list(Path(prefix).rglob(f"num.{sys.implementation.cache_tag}.pyc"))  # the reference too
    # beside the sources only backstop/__init__ (it runs before the prefix is set; in a really
    # read-only folder Python skips that write)
    beside = [p.relative_to(site) for p in site.rglob("*.pyc")]
    assert beside == [Path("backstop", "__pycache__", f"__init__.{sys.implementation.cache_tag}.pyc")]


def _copy_installed_layout(tmp_path: Path) -> Path:
    """The package as a wheel lays it out (backstop/, backstop/reference/, backstop/spec/, ...)."""
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "backstop", site / "backstop", ignore=ignore)
    for sub in ("reference", "proofs", "spec"):
        shutil.copytree(ROOT / sub, site / "backstop" / sub, ignore=ignore)
    return site


def test_an_installed_package_starts_a_margin_eval_without_pathlib(tmp_path):
    """Without the editable install's finder (``python -S``: no site, the copy on PYTHONPATH, as a
    wheel install starts): the second margin eval (its profile from the disk cache) imports neither
    pathlib, tomllib nor argparse, and answers as the checkout does."""
    site = _copy_installed_layout(tmp_path)
    f = str(ROOT / "examples" / "eval-okx-long.json")
    code = ("import sys, json, contextlib, io\nfrom backstop.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    rc = main(['eval', {f!r}])\n"
            "import backstop\n"
            "print(json.dumps([rc, out.getvalue(), backstop.__file__,"
            " sorted(m for m in ('pathlib', 'tomllib', 'argparse', 'importlib.resources') if m in sys.modules)]))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    runs = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=300,
                           env=env, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    (rc1, out1, where, loaded1), (rc2, out2, _, loaded2) = runs
    assert where.startswith(str(site)) and rc1 == rc2 == 0
    assert out1 == out2 == evaluate_json(f)
    assert "tomllib" in loaded1 and "pathlib" in loaded1    # the first reads the profile's TOML
    assert loaded2 == []


def test_the_eval_file_is_read_as_pathlib_reads_it(tmp_path, monkeypatch):
    """cmd_eval reads its file without pathlib; every name gives what ``Path(name).read_text``
    gives: the same text, or the same error (an empty name is ``.``, a trailing slash is dropped)."""
    from backstop.cli import _read_text
    (tmp_path / "req.json").write_text("{}\r\n", encoding="utf-8")
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path)
    for name in ["req.json", "./req.json", "d//../req.json", "req.json/", "", "d", "missing.json", "d/", "."]:
        def outcome(read):
            try:
                return read(name)
            except OSError as e:
                return type(e).__name__
        assert outcome(_read_text) == outcome(lambda n: Path(n).read_text(encoding="utf-8")), name


def test_the_readme_states_the_cache_directory():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Start-up", 1)[1].split("\n## ", 1)[0]
    assert "$XDG_CACHE_HOME/backstop/pycache" in section and "~/.cache/backstop/pycache" in section
    assert "bench/bench_startup.py" in section and (ROOT / "bench" / "bench_startup.py").is_file()
