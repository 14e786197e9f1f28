"""Test vectors by region (issue 11): backstop/vectors.py and proofs/regions.py.

The default suite runs a subset (profile okx, instrument BTC-USDT-SWAP, the rules MRG-004,
LIQ-001, LIQ-002 and ENG-001); ``backstop vectors --check`` runs the whole audit.  Every
vector's response must be ``backstop eval``'s own answer (that is what a vector is); the witnesses
are ALSO checked against numbers derived here by hand from the okx profile's published table
(spec/profiles/okx.toml: BTC tier caps 500 / 3,000 / 12,000 / 24,000 / 36,000 / 48,000 / 60,000
contracts, MMR 0.4 % / 0.5 % / 1 % / 1.5 % / 2 % / 2.5 % / 3 %, close fee rate 0.05 %; BTC-USDT-SWAP:
contract value 0.01 BTC, USDT with 6 decimals, lot 0.01).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from fractions import Fraction
from pathlib import Path

import pytest

from backstop import vectors as V
from backstop.cli import evaluate_request, main
from backstop.reference.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
INST = "BTC-USDT-SWAP"
RULES = {"MRG-004", "LIQ-001", "LIQ-002", "ENG-001", "ADL-002", "LIQ-009"}
CAPS = [500, 3000, 12000, 24000, 36000, 48000, 60000]          # okx.toml [tier_tables.BTC]
MMRS = [Fraction(x) for x in ("0.004", "0.005", "0.01", "0.015", "0.02", "0.025", "0.03")]
FEE = Fraction("0.0005")                                         # okx.toml close_fee_rate
K_PER_CONTRACT = Fraction("0.01") * 10 ** 6                      # contract value x 10^6 units per USDT


@pytest.fixture(scope="module")
def vec_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("vectors")
    V.generate(out, ["okx"], rules=RULES, instruments={INST})
    return out


def _vectors(d: Path, pattern: str = "**/*.json"):
    for p in sorted((d / "v1").glob(pattern)):
        if p.name != "index.json":
            yield p, json.loads(p.read_text(encoding="utf-8"))


def _q(v, name):
    return v["response"]["results"][0]["quantities"][name]["value"]


def _hand_tier(size: Fraction) -> int:
    # MRG-004: the first tier whose cap is at or above the size (tier i covers (cap_{i-1}, cap_i])
    return 1 + sum(1 for c in CAPS if size > c)


def _pos(v):
    p = v["request"]["positions"][0]
    return (Fraction(p["size"]), Fraction(p["entry_price"]), p["margin"],
            Fraction(v["request"]["mark_prices"][INST]), p["side"])


def test_every_vector_response_is_backstop_eval_on_its_request(vec_dir):
    n = 0
    for p, v in _vectors(vec_dir):
        assert v["format"] == "backstop-vector/1"
        assert set(v) >= {"profile", "operation", "rules", "region", "request"}
        if "response" in v:
            assert "error" not in v
            assert evaluate_request(v["request"]) == v["response"], p
        else:
            with pytest.raises(InvalidInput):
                evaluate_request(v["request"])
        n += 1
    assert n > 100
    # and one through the real command line
    p, v = next(_vectors(vec_dir, "okx/margin/MRG-004/*/witness.json"))
    req = vec_dir / "req.json"
    req.write_text(json.dumps(v["request"]))
    out = subprocess.run([sys.executable, "-m", "backstop", "eval", str(req)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == v["response"]


def test_layout_and_index(vec_dir):
    index = json.loads((vec_dir / "v1" / "index.json").read_text())
    paths = {c["path"] for c in index["cases"]}
    on_disk = {str(p.relative_to(vec_dir / "v1")) for p, _ in _vectors(vec_dir)}
    assert paths == on_disk
    for c in index["cases"]:
        prof, op, rule, rid, case = c["path"].split("/")
        v = json.loads((vec_dir / "v1" / c["path"]).read_text())
        assert (prof, op, rid) == (v["profile"], v["operation"], v["region"]["id"]) == (c["profile"], c["operation"], c["region"])
        assert rule in v["rules"] or rule == "INPUT"


@pytest.mark.rules("MRG-004")
def test_MRG_004_regions_are_the_tiers_and_their_boundaries(vec_dir):
    # By hand: 7 tiers give 7 open intervals and 6 boundaries (size exactly at caps 500 .. 48,000;
    # 60,000 is the last cap, where the table ends: a premise, not a branch) = 13 regions per side.
    found = {}
    for p, v in _vectors(vec_dir, "okx/margin/MRG-004/*/witness.json"):
        size, _, _, _, side = _pos(v)
        assert _q(v, "tier") == str(_hand_tier(size)), p
        assert Fraction(_q(v, "tier_mmr")) == MMRS[_hand_tier(size) - 1]
        found.setdefault(side, set()).add((_hand_tier(size), size in CAPS))
    for side in ("long", "short"):
        assert len(found[side]) == 13
        assert (1, True) in found[side]       # size exactly 500 contracts: still tier 1 (the cap is inclusive)
        assert (2, False) in found[side]      # 500 < size < 3,000: tier 2


@pytest.mark.rules("LIQ-001")
def test_LIQ_001_regions_cover_below_at_and_above_the_requirement(vec_dir):
    # By hand (okx, linear): k = size x 0.01 x 10^6; equity = margin + s k (mark - entry);
    # requirement = k mark (MMR(tier) + 0.0005); liquidatable iff equity <= requirement.
    outcomes = set()
    for p, v in _vectors(vec_dir, "okx/margin/LIQ-001/*/witness.json"):
        size, entry, margin, mark, side = _pos(v)
        s = 1 if side == "long" else -1
        k = size * K_PER_CONTRACT
        equity = margin + s * k * (mark - entry)
        req = k * mark * (MMRS[_hand_tier(size) - 1] + FEE)
        assert Fraction(_q(v, "liquidation_requirement")) == req, p
        assert _q(v, "liquidatable") is (equity <= req), p
        outcomes.add((side, _hand_tier(size), (equity > req) - (equity < req)))
    for side in ("long", "short"):
        for tier in range(1, 8):
            assert {(side, tier, c) for c in (-1, 0, 1)} <= outcomes, (side, tier)   # below, exactly at, above


@pytest.mark.rules("LIQ-002")
def test_LIQ_002_bankruptcy_price_regions(vec_dir):
    # By hand: a linear long is bankrupt at p = entry - margin / k, which exists only when margin < k entry
    # (three regions: margin below, equal to, above the value at entry); a short at entry + margin / k, always.
    seen = {"long": set(), "short": set()}
    for p, v in _vectors(vec_dir, "okx/margin/LIQ-002/*/witness.json"):
        size, entry, margin, _, side = _pos(v)
        k = size * K_PER_CONTRACT
        bp = entry - margin / k if side == "long" else entry + margin / k
        shown = _q(v, "bankruptcy_price")
        assert (shown is None) is (bp <= 0), p
        if shown is not None:
            assert Fraction(shown) == bp, p
        seen[side].add((margin > k * entry) - (margin < k * entry))
    assert seen["long"] == {-1, 0, 1}          # margin below, exactly at, above the value at entry
    assert len(list(_vectors(vec_dir, "okx/margin/LIQ-002/*short*/witness.json"))) == 1


@pytest.mark.rules("ENG-001")
def test_ENG_001_fills_follow_the_walk(vec_dir):
    # By hand: fill_i = min(what is left, level size rounded down to the lot 0.01); the remainder is what is left.
    regions = 0
    for p, v in _vectors(vec_dir, "okx/engine/ENG-001/*/witness.json"):
        left = Fraction(v["request"]["size"])
        for lv, fill in zip(v["request"]["book"], v["response"]["fills"]):
            q = min(left, (Fraction(lv["size"]) * 100).__floor__() / Fraction(100))
            assert Fraction(fill["quantities"]["size"]["value"]) == q, p
            left -= q
        assert Fraction(v["response"]["quantities"]["remainder"]["value"]) == left
        regions += 1
    assert regions >= 6  # per side at least: the size inside level 1, at it, beyond it into level 2, ...


@pytest.mark.rules("ADL-002")
def test_ADL_002_regions_are_the_four_combinations(vec_dir):
    # By hand: trigger (a) = uncovered > 0 or unplaced > 0, both >= 0 by the request domain: each is
    # either 0 or positive, so 2 x 2 = 4 regions, and the trigger fails only when both are 0.
    seen = set()
    for p, v in _vectors(vec_dir, "okx/fund_drawdown/ADL-002/*/witness.json"):
        unc, unplaced = v["request"]["uncovered"], Fraction(v["request"]["unplaced"])
        assert v["response"]["quantities"]["fund_insufficient"]["value"] is (unc > 0 or unplaced > 0), p
        seen.add((unc > 0, unplaced > 0))
    assert seen == {(False, False), (False, True), (True, False), (True, True)}


@pytest.mark.rules("LIQ-009")
def test_LIQ_009_one_leg_regions_are_under_water_or_not(vec_dir):
    # By hand (C51; okx linear, k = size x 0.01 x 10^6 units per USDT): the cross equity is
    # E = B + s k (mark - entry), the value V = k mark; an account of one leg is under water iff the leg is
    # up-side (a linear LONG) and E <= -V. A linear short is down-side: never under water (B >= 0).
    # One leg carries the whole balance as its share, so it is taken over at its bankruptcy price
    # entry - B / k (long) or entry + B / k (short).
    seen = set()
    for p, v in _vectors(vec_dir, "okx/cross_liquidation/LIQ-009/*/witness.json"):
        if len(v["request"]["positions"]) != 1:
            continue  # two-leg accounts: tests/unit/test_vectors_cross.py
        leg = v["request"]["positions"][0]
        size, entry = Fraction(leg["size"]), Fraction(leg["entry_price"])
        mark, bal = Fraction(v["request"]["mark_prices"][INST]), v["request"]["balances"]["USDT"]
        s = 1 if leg["side"] == "long" else -1
        k = size * K_PER_CONTRACT
        e, val = bal + s * k * (mark - entry), k * mark
        deep = s == 1 and e <= -val
        assert ("under water: yes" in v["region"]["description"]) is deep, p
        acct = v["response"]["accounts"][0]
        if acct["takeovers"] is None:
            # the region is one of compute_cross_takeovers' branches, not of the decision: a witness may be an
            # account that is not liquidated (the solver's model picks it), which an account under water never is
            assert not deep and acct["quantities"]["action"]["value"] != "full", p
        else:
            tk = acct["takeovers"][0]["quantities"]
            assert Fraction(tk["price"]["value"]) == entry - s * bal / k, p
        seen.add((leg["side"], (e > -val) - (e < -val) if s == 1 else None))
    assert seen == {("long", -1), ("long", 0), ("long", 1), ("short", None)}   # below, at, above -V; short once


@pytest.mark.rules("MRG-001", "MRG-002", "MRG-004", "ENG-001")
def test_invalid_vectors_are_refused_with_the_stated_field(vec_dir):
    want = {"invalid-float-size": ("positions[0].size", "MRG-001"),
            "invalid-bool-size": ("positions[0].size", "MRG-001"),
            "invalid-zero-size": ("positions[0].size", "MRG-001"),
            "invalid-zero-entry": ("positions[0].entry_price", "MRG-002"),
            "invalid-negative-mark": (f"mark_prices.{INST}", "MRG-002"),
            "invalid-above-last-tier": ("positions[0].size", "MRG-004"),
            "invalid-unknown-key-position": ("positions[0].lev", ""),
            "invalid-wrong-currency": ("positions[0].margin", None),
            "invalid-engine-zero-size": ("size", "ENG-001")}
    got = {}
    for p, v in _vectors(vec_dir, "okx/*/*/invalid-*/refused.json"):
        assert "response" not in v
        with pytest.raises(InvalidInput) as e:
            evaluate_request(v["request"])
        assert (e.value.field, e.value.rule, type(e.value).__name__) == \
            (v["error"]["field"], v["error"]["rule"], v["error"]["type"])
        got[v["region"]["id"]] = v["error"]
    for rid, (field, rule) in want.items():
        assert got[rid]["field"] == field, rid
        if rule is not None:
            assert got[rid]["rule"] == rule, rid
    assert got["invalid-wrong-currency"]["type"] == "CurrencyMismatch"


def test_generation_is_deterministic(tmp_path, vec_dir):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        V.generate(d, ["okx"], rules={"MRG-004", "LIQ-002"}, instruments={INST})
    fa = {p.relative_to(a): p.read_bytes() for p in sorted(a.rglob("*.json"))}
    fb = {p.relative_to(b): p.read_bytes() for p in sorted(b.rglob("*.json"))}
    assert fa == fb and len(fa) > 50
    # the same region files as in the larger run (same ids, same bytes)
    for rel, data in fa.items():
        if "/MRG-004/" in str(rel):
            assert (vec_dir / rel).read_bytes() == data


@pytest.mark.rules("MRG-004", "LIQ-002")
def test_coverage_check_fails_when_one_vector_is_deleted(tmp_path, vec_dir):
    d = tmp_path / "copy"
    shutil.copytree(vec_dir, d)
    ok, lines = V.check(d, ["okx"], rules={"MRG-004", "LIQ-002"}, instruments={INST})
    assert ok, lines
    assert any(re.match(r"okx\s+margin\s+MRG-004\s+26\s+26\s+0$", x) for x in lines), lines  # 13 per side, by hand
    victim = sorted((d / "v1" / "okx" / "margin" / "MRG-004").iterdir())[3]
    shutil.rmtree(victim)
    ok, lines = V.check(d, ["okx"], rules={"MRG-004", "LIQ-002"}, instruments={INST})
    assert not ok
    assert any(victim.name in x and x.startswith("no vector") for x in lines), lines


@pytest.mark.rules("MRG-004")
def test_out_and_check_in_one_run_audit_the_same_regions_as_a_second_enumeration(tmp_path, capsys):
    # `--out DIR --check DIR` audits the regions generate has just enumerated; a separate `--check`
    # enumerates them again from the code. Both must print the same table.
    d = tmp_path / "v"
    args = ["vectors", "--out", str(d), "--check", str(d), "--profile", "okx", "--rule", "MRG-004"]
    assert main(args) == 0
    one_run = capsys.readouterr().out.splitlines()
    assert one_run[0].startswith("wrote ") and one_run[-1].startswith("coverage PASSED")
    assert main(["vectors", "--check", str(d), "--profile", "okx", "--rule", "MRG-004"]) == 0
    again = capsys.readouterr().out.splitlines()
    assert one_run[1:-1] == again[:-1]
    row = [x.split() for x in again if x.startswith("okx ")]
    assert len(row) == 1 and row[0][3] == row[0][4] and row[0][5] == "0", again
    assert int(row[0][3]) >= 26, again  # BTC-USDT-SWAP's 26 alone (13 per side, by hand: above)


def test_coverage_check_fails_on_a_solver_unknown(tmp_path, vec_dir, monkeypatch):
    # C68/C69: an unknown is neither feasible nor infeasible. With a resource limit of one step every
    # check is unknown: the enumeration is incomplete, the audit fails and says why, even though
    # no region (none was found) lacks a vector.
    from backstop.proofs import regions as RG
    monkeypatch.setattr(RG, "CHECK_RLIMIT", 1)
    monkeypatch.setattr(RG, "RETRY_RLIMIT", 1)
    ok, lines = V.check(vec_dir, ["okx"], rules={"MRG-004"}, instruments={INST})
    assert not ok
    assert any(re.match(r"okx\s+margin\s+MRG-004\s+0\s+0\s+2$", x) for x in lines), lines  # long and short
    assert sum(x.startswith("enumeration incomplete: okx/MRG-004 compute_tier_index") and "unknown" in x
               for x in lines) == 2, lines


@pytest.mark.rules("LIQ-006", "LIQ-009")
def test_coverage_check_fails_on_what_is_not_enumerated(vec_dir):
    # C69: LIQ-006 and cross_liquidation's partial round have no region enumeration: each is a named
    # failure (cross, whose rules include LIQ-009, is enumerated since C75: not named).
    ok, lines = V.check(vec_dir, ["okx"], rules={"LIQ-006", "LIQ-009"}, instruments={INST})
    assert not ok
    named = {x.split(":")[1].strip() for x in lines if x.startswith("not enumerated:")}
    assert named == {"operation cross_liquidation on okx", "LIQ-006 on okx"}, lines


@pytest.mark.rules("LIQ-005", "ENG-006", "LIQ-003")
def test_parts_are_a_partition_of_the_domain():
    # C68: the tier parts of LIQ-005 / LIQ-003 and the level parts of ENG-006 are proved disjoint and
    # covering before they are used; a part list that leaves out one tier is rejected.
    import z3
    from backstop.proofs import regions as RG
    from backstop.reference.profile import load_profile
    okx = load_profile("okx")
    inst = okx.instruments[INST]
    by = {(s.rule, s.function): s for s in RG.specs()}
    b = by[("LIQ-005", "compute_partial_step")].build(okx, inst, 1)
    assert [w for w, _ in b.parts] == [f"tier {k} before, mark {o} entry" for k in range(1, 8) for o in "<=>"]  # 7 tiers x 3
    assert RG._partition_ok(b) == ""
    b.parts = b.parts[:-1]                      # tier 7 with mark > entry left out: uncovered
    assert "cover" in RG._partition_ok(b)
    b = by[("ENG-006", "walk_book_within")].build(okx, inst, -1)
    assert len(b.parts) == 4 and RG._partition_ok(b) == ""
    b.parts = b.parts + [("again", b.parts[0][1])]
    assert "overlap" in RG._partition_ok(b)
    assert isinstance(b.parts[0][1], z3.BoolRef)


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index("## Test vectors"):].split("\n## ", 1)[0]


def test_readme_test_vectors_commands_work_as_printed(tmp_path, monkeypatch):
    sec = _readme_section()
    block = re.search(r"```\n(\$ backstop vectors .*?)```", sec, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    cmds = re.split(r"^\$ ", block, flags=re.M)[1:]
    assert len(cmds) >= 2
    for chunk in cmds:
        cmd, _, shown = chunk.partition("\n")
        argv = cmd.split()[1:]
        buf = io.StringIO()
        with redirect_stdout(buf):
            assert main(argv) == 0, cmd
        mask = lambda s: re.sub(r"in \d+\.\d s", "in N s", s).rstrip()  # noqa: E731 - only the time varies
        assert mask(buf.getvalue()) == mask(shown), cmd
