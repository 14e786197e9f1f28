"""``backstop conform``: the adapter protocol, the comparison, hunting and shrinking, the reports,
the exit codes, the vector layout of layout.md, and the README's Conformance section.

The foreign implementations are ``examples/conform/binance_float.py`` (Binance's published
liquidation price in floats, written from Binance's FAQ) and its copy with a planted mistake
(``binance_float_planted.py``: the bracket looked up by the wallet balance instead of the notional
at the liquidation price).  Expected numbers are derived by hand in the comments.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from fractions import Fraction as F
from pathlib import Path

import pytest

from backstop import conform as C
from backstop.cli import main
from backstop.inputs import evaluate

ROOT = Path(__file__).resolve().parents[2]
PY = shlex.quote(sys.executable)
HONEST = f"{PY} examples/conform/binance_float.py"
PLANTED = f"{PY} examples/conform/binance_float_planted.py"


def run(command, **kw):
    kw.setdefault("cwd", str(ROOT))
    return C.run_conform(command, **kw)


def ask(script, req):
    """One request straight through an example adapter."""
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "conform" / script)], input=json.dumps(req) + "\n",
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def by_id(report, cid):
    return next(o for o in report.outcomes if o.case.id == cid)


# Hand derivation (Binance FAQ, one-way, isolated: LP = (WB + cum - side*qty*EP) / (qty*MMR - side*qty)):
# short 2 BTCUSDT at 30,000 with 1 USDT: bracket 1 (0.4%, 0): 60,001 / 2.008 = 29,881.47, notional 59,762.9
# > 50,000 -> not bracket 1; bracket 2 (0.5%, 50): 60,051 / 2.01 = 6,005,100/201 = 2,001,700/67 =
# 29,876.119..., notional 59,752.2 in (50,000, 250,000] -> bracket 2 is taken.  The planted copy looks
# the bracket up by the wallet balance 1 USDT -> bracket 1 -> 60,001 / 2.008.
SHORT2 = {"profile": "binance", "positions": [{"instrument": "BTCUSDT", "side": "short", "size": "2",
                                               "entry_price": "30000", "margin": "1 USDT"}],
          "mark_prices": {"BTCUSDT": "1"}}


# ---------------------------------------------------------------- the example implementations

def test_the_honest_example_gives_binance_numbers_by_hand():
    # spec/20-liquidation.md LIQ-003's binance table: long 5 at 60,000 with 30,000 USDT takes bracket 3
    # (1%, 1,300): (300,000 - 30,000 - 1,300) / (5 * 0.99) = 268,700 / 4.95 = 54,282.8282...
    r = ask("binance_float.py", C._iso("binance", "BTCUSDT", "long", "5", "60000", "60000", margin="30000 USDT"))
    q = r["results"][0]["quantities"]
    assert q["tier_at_liquidation_price"]["value"] == 3
    assert abs(q["liquidation_price"]["value"] - 268_700 / 4.95) < 1e-9
    assert q["deduction_at_liquidation_price"]["value"] == 1_300 * 10**8  # in 10^-8 USDT
    h, p = ask("binance_float.py", SHORT2), ask("binance_float_planted.py", SHORT2)
    assert h["results"][0]["quantities"]["tier_at_liquidation_price"]["value"] == 2
    assert abs(h["results"][0]["quantities"]["liquidation_price"]["value"] - 60_051 / 2.01) < 1e-9
    assert p["results"][0]["quantities"]["tier_at_liquidation_price"]["value"] == 1
    assert abs(p["results"][0]["quantities"]["liquidation_price"]["value"] - 60_001 / 2.008) < 1e-9
    # backstop's exact answer for the same request (the same hand numbers, exactly)
    b = evaluate(SHORT2)["results"][0]["quantities"]
    assert b["liquidation_price"]["value"] == "2001700/67" and b["tier_at_liquidation_price"]["value"] == "2"


def test_the_planted_copy_differs_from_the_honest_one_only_in_the_bracket_lookup():
    honest = (ROOT / "examples/conform/binance_float.py").read_text(encoding="utf-8").splitlines()
    planted = (ROOT / "examples/conform/binance_float_planted.py").read_text(encoding="utf-8").splitlines()
    import difflib
    changed = [ln for ln in difflib.unified_diff(honest, planted, lineterm="", n=0)
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert any("bracket_of(sym[\"brackets\"], min(max(wb" in ln for ln in changed)
    assert len(changed) < 30, changed


# ---------------------------------------------------------------- comparison

def test_compare_exact_numbers_and_tolerance():
    # "0.5" and "1/2" are one number; a float 0.01 is not exactly 1/100 (binary), but is within 1e-9
    assert C.compare({"x": {"value": "0.5"}}, {"x": {"value": "1/2"}})[0] == []
    assert C.compare({"x": {"value": "0.01"}}, {"x": {"value": 0.01}})[0] != []
    assert C.compare({"x": {"value": "0.01"}}, {"x": {"value": 0.01}}, 1e-9)[0] == []
    # |100 - 100.1| = 0.1 > 1e-4 * 100.1: differs; within 1e-3
    assert C.compare({"x": "100"}, {"x": 100.1}, 1e-4)[0] and not C.compare({"x": "100"}, {"x": 100.1}, 1e-3)[0]
    # a tier is compared exactly whatever the tolerance; null and booleans exactly
    assert C.compare({"tier": "3"}, {"tier": 3.0000001}, 0.5)[0]
    assert C.compare({"p": None}, {"p": 0}, 1.0)[0] and C.compare({"b": False}, {"b": 0}, 1.0)[0]
    # fields the implementation leaves out are not compared; fields backstop lacks are listed
    diffs, extra = C.compare({"a": "1", "b": "2"}, {"a": 1, "zz": 5})
    assert diffs == [] and extra == ["zz"]


def test_compare_names_the_first_intermediate_tier_before_rate_before_price():
    exp = {"quantities": {"liquidation_price": {"value": "5"}, "mmr_at_liquidation_price": {"value": "0.01"},
                          "tier_at_liquidation_price": {"value": "3"}}}
    got = {"quantities": {"liquidation_price": {"value": 6}, "mmr_at_liquidation_price": {"value": "0.004"},
                          "tier_at_liquidation_price": {"value": 1}}}
    diffs, _ = C.compare(exp, got)
    assert [d.name for d in diffs] == ["tier_at_liquidation_price", "mmr_at_liquidation_price", "liquidation_price"]


# ---------------------------------------------------------------- the runs

def test_conform_agrees_with_the_honest_example_within_tolerance():
    r = run(HONEST, rel_tol=1e-9)
    assert r.exit_code == C.EXIT_AGREE, C.report_markdown(r)
    c = r.counts()
    assert c["differs"] == c["refused"] == c["answered"] == c["error"] == 0
    # it did compare Binance's numbers: isolated, cross with two instruments, and refusals on both sides
    for cid in ("binance/margin/bracket-3", "binance/margin/faq-isolated", "binance-eth/cross/faq",
                "binance-eth/cross/long-short", "binance/margin/invalid-lot"):
        assert by_id(r, cid).klass == "agrees", cid
    assert by_id(r, "binance/cross/hedge").klass == "unsupported"  # hedge mode is not implemented
    assert by_id(r, "okx/margin/long").klass == "unsupported"


def test_the_float_example_is_not_exact():
    # without a tolerance the float MMR 0.01 is not backstop's 1/100: a disagreement at the rate
    r = run(HONEST, rel_tol=0.0, hunt=0)
    assert r.exit_code == C.EXIT_DISAGREE
    o = by_id(r, "binance/margin/bracket-3")
    assert o.klass == "differs" and o.field == "mmr_at_liquidation_price"


def test_backstop_eval_jsonl_is_an_adapter_that_agrees_exactly():
    r = run(f"{PY} -m backstop eval --jsonl", rel_tol=0.0)
    assert r.exit_code == C.EXIT_AGREE and r.counts()["agrees"] == len(C.seed_requests())


def test_conform_finds_the_planted_mistake_and_shrinks_it():
    r = run(PLANTED, rel_tol=1e-9)
    assert r.exit_code == C.EXIT_DISAGREE
    # the first seed case it gets wrong: long 5 at 60,000 with 30,000 USDT: bracket by the balance 30,000
    # -> 1; by the notional at the liquidation price (271,414 USDT, spec LIQ-003's table) -> 3
    o = by_id(r, "binance/margin/bracket-3")
    assert (o.klass, o.field, o.expected, o.got) == ("differs", "tier_at_liquidation_price", "3", 1)
    assert by_id(r, "binance/margin/faq-isolated").klass == "agrees"  # 1,535,443 and 2.06M: both bracket 4
    causes = {c["cause"]: c for c in r.causes}
    assert "margin: differs at tier_at_liquidation_price" in causes
    c = causes["margin: differs at tier_at_liquidation_price"]
    first = c["first"].case.request
    assert C.size_of(c["shrunk"]) < C.size_of(first)
    assert len(c["shrunk"]["positions"]) == 1
    digits = lambda req: C.size_of(req)[1]
    assert digits(c["shrunk"]) < digits(first)
    # the shrunk request still disagrees at the tier: backstop in-process against the planted adapter
    b = evaluate(c["shrunk"])["results"][0]["quantities"]["tier_at_liquidation_price"]["value"]
    p = ask("binance_float_planted.py", c["shrunk"])["results"][0]["quantities"]["tier_at_liquidation_price"]["value"]
    assert str(p) != b
    assert c["shrunk_outcome"].klass == "differs" and c["shrunk_outcome"].field == "tier_at_liquidation_price"
    assert r.hunted and any(h.klass == "differs" for h in r.hunted)


def test_shrink_reaches_the_smallest_request_that_keeps_the_property():
    req = {"profile": "binance", "positions": [
        {"instrument": "BTCUSDT", "side": "long", "size": "17.5", "entry_price": "30000", "margin": "100 USDT"},
        {"instrument": "BTCUSDT", "side": "long", "size": "2", "entry_price": "30000", "margin": "100 USDT"}],
        "mark_prices": {"BTCUSDT": "30000"}}
    small, _ = C.shrink(req, lambda q: F(q["positions"][0]["size"]) >= 3, C.Grids())
    # one position; the size 3 (the smallest whole number >= 3); every other number 1
    assert small["positions"] == [{"instrument": "BTCUSDT", "side": "long", "size": "3", "entry_price": "1",
                                   "margin": "1 USDT"}]
    assert small["mark_prices"] == {"BTCUSDT": "1"}


# ---------------------------------------------------------------- could not run

def _script(tmp_path, name, body):
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return f"{PY} {shlex.quote(str(p))}"


def test_a_crashing_implementation_gives_exit_2_with_its_stderr(tmp_path):
    cmd = _script(tmp_path, "crash.py", "import sys\nsys.stdin.readline()\n"
                  "sys.stderr.write('adapter exploded: KeyError tier\\n')\nsys.exit(3)\n")
    r = run(cmd)
    assert r.exit_code == C.EXIT_CANNOT_RUN
    assert "adapter exploded: KeyError tier" in r.stderr
    assert r.outcomes[0].klass == "error" and "exited (code 3)" in r.outcomes[0].detail
    # after three failures in a row the rest is not run
    assert r.starts == C.MAX_CONSECUTIVE_FAILURES and "not run" in r.outcomes[-1].detail
    md = C.report_markdown(r)
    assert "adapter exploded: KeyError tier" in md
    assert "adapter exploded" in json.loads(json.dumps(C.report_json(r)))["stderr"]


def test_a_hanging_implementation_gives_exit_2_after_the_timeout(tmp_path):
    cmd = _script(tmp_path, "hang.py", "import sys, time\nsys.stderr.write('thinking...\\n'); sys.stderr.flush()\n"
                  "sys.stdin.readline()\ntime.sleep(120)\n")
    t0 = time.monotonic()
    r = run(cmd, timeout=0.5)
    assert time.monotonic() - t0 < 30
    assert r.exit_code == C.EXIT_CANNOT_RUN
    assert "timeout" in r.outcomes[0].detail and "thinking..." in r.stderr


def test_a_command_that_cannot_start_or_breaks_the_protocol_gives_exit_2(tmp_path):
    r = run("/nonexistent/adapter --flag")
    assert r.exit_code == C.EXIT_CANNOT_RUN and "cannot start" in r.message
    r = run(_script(tmp_path, "chatty.py", "import sys\nfor line in sys.stdin:\n    print('hello', flush=True)\n"))
    assert r.exit_code == C.EXIT_CANNOT_RUN and "not a JSON line" in r.outcomes[0].detail
    r = run(_script(tmp_path, "none.py", "import sys, json\nfor line in sys.stdin:\n"
                    "    print(json.dumps({'unsupported': 'nothing'}), flush=True)\n"))
    assert r.exit_code == C.EXIT_CANNOT_RUN and "no case could be compared" in r.message


# ---------------------------------------------------------------- reports and the CLI

def test_the_reports_parse(tmp_path):
    r = run(PLANTED, rel_tol=1e-9)
    paths = C.write_reports(r, tmp_path / "rep")
    assert [p.suffix for p in paths] == [".md", ".html", ".json", ".xml"]
    data = json.loads((tmp_path / "rep.json").read_text(encoding="utf-8"))
    assert data["exit_code"] == 1 and data["counts"]["differs"] == r.counts()["differs"] > 0
    assert {c["cause"] for c in data["causes"]} == {c["cause"] for c in r.causes}
    suite = ET.parse(tmp_path / "rep.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "backstop.conform"
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases) == len(r.outcomes) + len(r.causes)
    assert int(suite.get("failures")) == len([t for t in cases if t.find("failure") is not None]) > 0
    assert int(suite.get("skipped")) == r.counts()["unsupported"]
    html = (tmp_path / "rep.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "margin: differs at tier_at_liquidation_price" in html
    md = (tmp_path / "rep.md").read_text(encoding="utf-8")
    assert "## Disagreements by cause" in md and "### margin: differs at tier_at_liquidation_price" in md


def test_cli_exit_codes(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    args = ["conform", "--impl", HONEST, "--rel-tol", "1e-9", "--report", str(tmp_path / "h")]
    from backstop.cli import build_parser
    ns = build_parser().parse_args(args)
    assert C.cmd_conform(ns, out) == 0
    assert out.getvalue().splitlines()[-1] == "conform PASSED: no disagreement (exit 0)"
    assert main(["conform", "--impl", PLANTED, "--rel-tol", "1e-9", "--hunt", "5", "--report", str(tmp_path / "p")]) == 1
    assert main(["conform", "--impl", HONEST, "--vectors", str(tmp_path / "nothing"), "--report", str(tmp_path / "n")]) == 2


# ---------------------------------------------------------------- the vector layout (layout.md)

def _vector(root, profile, op, rule, region, case, body):
    p = root / "v1" / profile / op / rule / region / f"{case}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(body, indent=1), encoding="utf-8")
    return p.relative_to(root / "v1").as_posix()


def _fixture(tmp_path):
    root = tmp_path / "vectors"
    paths = [
        # long 5 at 60,000 with 30,000 USDT (spec LIQ-003's table): bracket 3, LP 268,700/4.95 = 5,374,000/99
        _vector(root, "binance", "margin", "LIQ-003", "long-bracket-3", "case-0", {
            "format": "backstop-vector/1", "profile": "binance", "operation": "margin", "rules": ["LIQ-003"],
            "region": {"id": "long-bracket-3", "description": "long, bracket 3 at the liquidation price",
                       "constraints": ["250000 < 5 LP <= 1000000"]},
            "request": C._iso("binance", "BTCUSDT", "long", "5", "60000", "60000", margin="30000 USDT"),
            "response": {"profile": "binance", "results": [{"position": 0, "instrument": "BTCUSDT", "quantities": {
                "liquidation_price": {"value": "5374000/99"}, "tier_at_liquidation_price": {"value": "3"},
                "mmr_at_liquidation_price": {"value": "0.01"},
                "deduction_at_liquidation_price": {"value": "130000000000"}}}]}}),
        # SHORT2 (derived above): bracket 2, LP 2,001,700/67, 50 USDT = 5,000,000,000 units
        _vector(root, "binance", "margin", "LIQ-003", "short-bracket-2", "case-0", {
            "format": "backstop-vector/1", "profile": "binance", "operation": "margin", "rules": ["LIQ-003"],
            "region": {"id": "short-bracket-2", "description": "short, bracket 2", "constraints": []},
            "request": SHORT2,
            "response": {"profile": "binance", "results": [{"position": 0, "instrument": "BTCUSDT", "quantities": {
                "liquidation_price": {"value": "2001700/67"}, "tier_at_liquidation_price": {"value": "2"},
                "mmr_at_liquidation_price": {"value": "0.005"},
                "deduction_at_liquidation_price": {"value": "5000000000"}}}]}}),
        # an invalid input: size 0 is refused (MRG-001), no response
        _vector(root, "binance", "margin", "MRG-001", "size-not-positive", "case-0", {
            "format": "backstop-vector/1", "profile": "binance", "operation": "margin", "rules": ["MRG-001"],
            "region": {"id": "size-not-positive", "description": "size 0", "constraints": ["size <= 0"]},
            "request": C._iso("binance", "BTCUSDT", "long", "0", "60000", "60000", margin="30000 USDT"),
            "error": {"field": "positions[0].size", "rule": "MRG-001", "type": "InvalidInput"}}),
    ]
    index = {"format": "backstop-vector/1",
             "cases": [{"path": p, "operation": "margin", "rules": [p.split("/")[2]], "region": p.split("/")[3]}
                       for p in paths]}
    (root / "v1" / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return root


def test_vectors_in_the_layout_are_read_and_run(tmp_path):
    root = _fixture(tmp_path)
    cases = C.load_vectors(root)
    assert [c.id for c in cases] == ["binance/margin/LIQ-003/long-bracket-3/case-0.json",
                                     "binance/margin/LIQ-003/short-bracket-2/case-0.json",
                                     "binance/margin/MRG-001/size-not-positive/case-0.json"]
    assert cases[2].expected[0] == "error" and cases[0].rules == ("LIQ-003",) and cases[1].region == "short-bracket-2"
    r = run(HONEST, vectors=str(root), rel_tol=1e-9)
    assert r.exit_code == 0 and [o.klass for o in r.outcomes] == ["agrees"] * 3
    r = run(PLANTED, vectors=str(root), rel_tol=1e-9, hunt=10)
    assert r.exit_code == 1
    assert [o.klass for o in r.outcomes] == ["differs", "differs", "agrees"]
    o = r.outcomes[1]  # compared with the vector's hand-written response: tier 2, the planted copy 1
    assert (o.field, o.expected, o.got) == ("tier_at_liquidation_price", "2", 1)


def test_a_vector_directory_that_does_not_follow_the_layout_is_refused(tmp_path):
    root = _fixture(tmp_path)
    (root / "v1" / "index.json").write_text(json.dumps({"cases": [{"path": "binance/margin/x/y/z.json"}]}))
    with pytest.raises(C.VectorError, match="does not match"):
        C.load_vectors(root)
    assert run(HONEST, vectors=str(root)).exit_code == C.EXIT_CANNOT_RUN
    with pytest.raises(C.VectorError, match="no v1/"):
        C.load_vectors(tmp_path / "empty")
    bad = tmp_path / "bad"
    _vector(bad, "okx", "margin", "LIQ-003", "r", "c", {"format": "something-else", "request": {}})
    with pytest.raises(C.VectorError, match="not a backstop-vector/1 vector"):
        C.load_vectors(bad)


# ---------------------------------------------------------------- README

def _readme_section():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Conformance\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README has no '## Conformance' section"
    return m.group(1)


def test_the_readme_conformance_commands_print_what_the_readme_shows():
    blocks = re.findall(r"```\n(\$ .*?)```", _readme_section(), re.S)
    assert blocks
    ran = 0
    for block in blocks:
        last = None
        for cmd, shown in re.findall(r"^\$ (.*)\n((?:(?!\$ ).*\n)*)", block, re.M):
            if cmd == "echo $?":
                assert last is not None and shown.strip() == str(last.returncode)
                continue
            argv = shlex.split(cmd)
            assert argv[0] == "backstop"
            argv = [sys.executable, "-m", "backstop"] + argv[1:]  # the adapters run under the README's python3
            last = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert last.stdout == shown, f"$ {cmd}\n--- README\n{shown}--- printed\n{last.stdout}{last.stderr}"
            ran += 1
    assert ran >= 2


def test_an_implementation_that_answers_twice_is_out_of_step(tmp_path):
    cmd = _script(tmp_path, "twice.py", "import sys, json\nfor line in sys.stdin:\n"
                  "    print(json.dumps({'unsupported': 'a'}), flush=True)\n"
                  "    print(json.dumps({'unsupported': 'b'}), flush=True)\n")
    r = run(cmd)
    assert r.exit_code == C.EXIT_CANNOT_RUN
    assert "more than it was asked for" in r.message or any("more than one line" in o.detail for o in r.outcomes)
