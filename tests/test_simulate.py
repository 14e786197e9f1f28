"""``backstop simulate``: the scenario loader (errors name file, line and field), the three example
scenarios (each shows what it claims, checked against facts derived by hand in the scenario's
header comment, never against the simulator's own output), byte-identical reruns, ``--check``.

The expected line of an error is found here by searching the test's own text for the offending
line, independently of ``backstop.simulate.SourceMap``.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from backstop import simulate as SIM
from backstop.reference.errors import CurrencyMismatch, InvalidInput, UnknownInstrument

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PY = sys.executable
USDT = 10 ** 6
BTC_USDT_FUND = "perpetual_futures/BTC-USDT/USDT"

BASE = """\
name = "tiny"
profile = "okx"
start = "2026-01-05T00:00:00Z"

[funds]
"perpetual_futures/BTC-USDT/USDT" = "1000"

[marks]
BTC-USDT-SWAP = "30000"

[books.BTC-USDT-SWAP]
bids = [
  ["29990", "10"],
  ["29980", "10"],
]
asks = [["30010", "10"]]

[[accounts]]
id = "a"
balances = { USDT = "100" }
[[accounts.positions]]
instrument = "BTC-USDT-SWAP"
side = "long"
size = "10"
entry_price = "30000"
margin = "300"

[[accounts]]
id = "b"
[[accounts.positions]]
instrument = "BTC-USDT-SWAP"
side = "short"
size = "10"
entry_price = "30000"
margin = "300"

[[events]]
time = "2026-01-05T01:00:00Z"
type = "mark"
instrument = "BTC-USDT-SWAP"
price = "29900"

[[events]]
time = "2026-01-05T02:00:00Z"
type = "mark"
instrument = "BTC-USDT-SWAP"
price = "29800"
"""


def _nth_line(text: str, needle: str, nth: int = 0) -> int:
    """1-based number of the ``nth`` line containing ``needle`` (found by hand, not by SourceMap)."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth]


def _replace(old: str, new: str, nth: int = 0) -> str:
    parts = BASE.split(old)
    assert len(parts) > nth + 1, old
    return old.join(parts[:nth + 1]) + new + old.join(parts[nth + 1:])


def _load_bad(tmp_path: Path, text: str) -> tuple[InvalidInput, Path]:
    f = tmp_path / "bad.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        SIM.load_scenario(f)
    return info.value, f


# ---------------------------------------------------------------- the loader

def test_base_scenario_loads():
    scn = SIM.load_scenario_text(BASE, "base.toml")
    assert scn.name == "tiny" and scn.profile.name == "okx"
    assert scn.start_ms == 1_767_571_200_000  # 2026-01-05T00:00:00Z: 20,458 days after the epoch
    assert scn.fund_balances == {BTC_USDT_FUND: 1000 * USDT}
    assert [a.id for a in scn.accounts] == ["a", "b"]
    assert scn.accounts[0].positions[0].margin == 300 * USDT
    assert scn.accounts[0].balances == (("USDT", 100 * USDT),)
    assert scn.books["BTC-USDT-SWAP"][0] == ((Fraction(29990), Fraction(10)), (Fraction(29980), Fraction(10)))
    assert [e.time_ms - scn.start_ms for e in scn.events] == [3_600_000, 7_200_000]
    assert scn.events[1].price == 29800


def test_time_forms_agree():
    iso = SIM.load_scenario_text(BASE.replace('start = "2026-01-05T00:00:00Z"', 'start = "2026-01-05T08:00:00+08:00"'), "x")
    ms = SIM.load_scenario_text(BASE.replace('start = "2026-01-05T00:00:00Z"', "start = 1767571200000"), "x")
    native = SIM.load_scenario_text(BASE.replace('start = "2026-01-05T00:00:00Z"', "start = 2026-01-05T00:00:00Z"), "x")
    assert iso.start_ms == ms.start_ms == native.start_ms == 1_767_571_200_000


@pytest.mark.parametrize("old,new,field,reason,cls,nth", [
    # a TOML float
    ('price = "29800"', "price = 29800.5", "events[1].price", "TOML floats are not exact", InvalidInput, 0),
    # a negative size
    ('size = "10"', 'size = "-10"', "accounts[1].positions[0].size", "must be > 0", InvalidInput, 1),
    # an unknown instrument in an event
    ('instrument = "BTC-USDT-SWAP"\nprice = "29900"', 'instrument = "DOGE-USDT-SWAP"\nprice = "29900"',
     "events[0].instrument", "not defined by profile 'okx'", UnknownInstrument, 0),
    # a currency the profile does not define
    ('balances = { USDT = "100" }', 'balances = { EUR = "100" }', "accounts[0].balances.EUR",
     "currency EUR is not defined", CurrencyMismatch, 0),
    # a fund in the wrong currency
    ('"perpetual_futures/BTC-USDT/USDT" = "1000"', '"perpetual_futures/BTC-USDT/BTC" = "1000"',
     "funds.perpetual_futures/BTC-USDT/BTC", "holds USDT, not BTC", CurrencyMismatch, 0),
    # events out of time order
    ('time = "2026-01-05T02:00:00Z"', 'time = "2026-01-05T00:30:00Z"', "events[1].time",
     "events must be in time order", InvalidInput, 0),
    # an unknown event type
    ('type = "mark"\ninstrument = "BTC-USDT-SWAP"\nprice = "29800"',
     'type = "liquidate"\ninstrument = "BTC-USDT-SWAP"\nprice = "29800"', "events[1].type",
     "unknown event type", InvalidInput, 0),
    # a negative price
    ('price = "29800"', 'price = "-5"', "events[1].price", "must be > 0", InvalidInput, 0),
    # a typo in a key
    ('entry_price = "30000"\nmargin = "300"\n\n[[accounts]]',
     'entry_price = "30000"\nmargn = "300"\n\n[[accounts]]', "accounts[0].positions[0].margn", "unknown key",
     InvalidInput, 0),
    # more decimals than USDT has
    ('margin = "300"', 'margin = "300.0000001"', "accounts[1].positions[0].margin", "USDT has 6 decimals",
     InvalidInput, 1),
    # a time without a zone
    ('time = "2026-01-05T01:00:00Z"', 'time = "2026-01-05T01:00:00"', "events[0].time", "needs a zone",
     InvalidInput, 0),
    # a size off the lot grid (0.01 contracts)
    ('size = "10"', 'size = "10.005"', "accounts[0].positions[0].size", "multiple of the lot size", InvalidInput, 0),
    # bids not best first: an element of a multi-line array
    ('  ["29980", "10"],', '  ["29995", "10"],', "books.BTC-USDT-SWAP.bids[1][0]", "strictly descending",
     InvalidInput, 0),
])
def test_bad_scenario_names_file_line_and_field(tmp_path, old, new, field, reason, cls, nth):
    text = _replace(old, new, nth)
    err, f = _load_bad(tmp_path, text)
    line = _nth_line(text, new.splitlines()[0] if "\n" not in new else
                     next(x for x in new.splitlines() if x not in old.splitlines()))
    assert isinstance(err, cls)
    assert err.field == f"{f}:{line}: {field}", str(err)
    assert reason in err.reason


def test_missing_key_points_at_its_table(tmp_path):
    text = BASE.replace('price = "29900"\n', "")
    err, f = _load_bad(tmp_path, text)
    assert err.field == f"{f}:{_nth_line(text, '[[events]]', 0)}: events[0].price"
    assert err.reason == "is required"


def test_missing_mark_for_a_position(tmp_path):
    text = BASE.replace('BTC-USDT-SWAP = "30000"\n', "")
    err, f = _load_bad(tmp_path, text)
    assert err.field == f"{f}:{_nth_line(text, '[marks]')}: marks" and "BTC-USDT-SWAP" in err.reason


def test_toml_syntax_error_names_the_line(tmp_path):
    text = BASE.replace('side = "short"', 'side = "short')
    err, f = _load_bad(tmp_path, text)
    assert err.field == f"{f}:{_nth_line(text, 'side = ' + chr(34) + 'short')}"
    assert "not valid TOML" in err.reason


def test_cli_refuses_a_bad_file_with_exit_2(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    text = _replace('price = "29800"', 'price = "-5"')
    f.write_text(text, encoding="utf-8")
    code = SIM.main([str(f), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == SIM.EXIT_INPUT == 2
    assert err == (f"error: {f}:{_nth_line(text, 'price = ' + chr(34) + '-5')}: events[1].price: "
                   "must be > 0 (got '-5') [MRG-002]\n")
    assert not (tmp_path / "out").exists()  # nothing written for a refused file


def test_source_map_counts_nested_arrays_of_tables():
    text = ("[[a]]\nx = 1\n[[a.b]]\ny = 2\n[[a.b]]\ny = 3\n[[a]]\n[[a.b]]\ny = [\n  4,\n  [5, 6],\n]\n"
            "# [[a]] in a comment\nz = \"[[a]] in a string\"\n")
    m = SIM.SourceMap(text)
    assert m.line(("a", 0, "x")) == 2
    assert m.line(("a", 0, "b", 1, "y")) == 6
    assert m.line(("a", 1, "b", 0)) == 8
    assert m.line(("a", 1, "b", 0, "y", 1, 0)) == 11
    assert m.line(("a", 1, "b", 0, "z")) == 14
    assert ("a", 2) not in m.lines  # the [[a]] in a comment and in a string start no entry


def test_every_example_loads():
    for name in ("calm", "crash", "drawdown"):
        scn = SIM.load_scenario(EXAMPLES / f"{name}.toml")
        assert scn.profile.name == "okx" and scn.events


# ---------------------------------------------------------------- running the examples

def _need_step():
    return pytest.importorskip("backstop.reference.step")


_RUNS: dict[str, SIM.RunResult] = {}


def _run(name: str) -> SIM.RunResult:
    _need_step()
    if name not in _RUNS:
        _RUNS[name] = SIM.run_scenario(SIM.load_scenario(EXAMPLES / f"{name}.toml"), check=True)
    return _RUNS[name]


def _fund_fields_never_negative(res: SIM.RunResult) -> None:
    from backstop.reference import fundbook
    for r in res.records:
        for k in ("settled", "available"):
            v = r.get(k)
            if r.fund and v is not None:
                assert v >= 0, (r.kind, r.time_ms, k, v)
    for fid in SIM.fund_ids_of(res):
        for view in ("settled", "settled_plus_pending"):
            assert all(p.balance >= 0 for p in fundbook.balance_history(res.state.funds, fid, view)), (fid, view)


def _ms(iso: str) -> int:
    from datetime import datetime, timezone
    return int((datetime.fromisoformat(iso) - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 1000


@pytest.mark.parametrize("name", ["calm", "crash", "drawdown"])
def test_example_passes_every_invariant_check(name):
    res = _run(name)
    assert res.violation == "", res.violation
    assert res.processed == len(res.scenario.events)
    _fund_fields_never_negative(res)


def test_calm_day_has_no_adl_one_partial_and_one_full_liquidation():
    from backstop.reference import fundbook
    res = _run("calm")
    assert not [r for r in res.records if r.kind.startswith("adl")]
    liqs = [(r.kind, r.account, r.time_ms) for r in res.records if SIM.is_liquidation(r)]
    assert liqs == [("partial liquidation", "erin", _ms("2026-01-05T09:00:00+00:00")),
                    ("full liquidation", "alice", _ms("2026-01-05T10:00:00+00:00"))]
    # header of calm.toml: erin's tier-3 long goes down two tiers, to tier 1's cap of 500 contracts
    (p,) = [r for r in res.records if r.kind == "partial liquidation"]
    assert (p.get("tier_before"), p.get("tier_after"), p.get("reduced"), p.get("new_size")) == (3, 1, 3_000, 500)
    assert (p.get("realized_pnl"), p.get("close_fee"), p.get("new_margin")) == (-12_000 * USDT, 444 * USDT, 10_556 * USDT)
    # ... and the engine sells the 3,000 contracts at 29,590, 10 below the mark it took them at
    fills = [(r.account, r.get("size"), r.get("price")) for r in res.records if r.kind == "engine fill"]
    assert fills == [("erin", 3_000, 29_590), ("alice", 100, 29_510)]
    assert [(r.account, r.get("amount")) for r in res.records if r.kind == "liquidation deficit"] == [("erin", -300 * USDT)]
    # alice: takeover at 29,400, 1 BTC sold at 29,510 -> +110 USDT (no liquidation fee on okx)
    assert [(r.account, r.get("amount")) for r in res.records if r.kind == "liquidation surplus"] == [("alice", 110 * USDT)]
    st = res.state.funds
    assert fundbook.available_balance(st, BTC_USDT_FUND, "settled_plus_pending") == 5_254 * USDT
    assert fundbook.settled_balance(st, BTC_USDT_FUND) == 5_254 * USDT  # settled the next day at 16:00 HKT
    assert fundbook.settled_balance(st, "perpetual_futures/ETH-USDT/USDT") == 2_000 * USDT
    assert fundbook.settled_balance(st, "perpetual_futures/BTC-USD/BTC") == 150_000_000
    erin = res.state.account("erin").positions
    assert [(q.size, q.margin) for q in erin] == [(500, 10_556 * USDT)]


def test_crash_drains_the_fund_and_fires_trigger_a():
    from backstop.reference import fundbook
    res = _run("crash")
    t_gap = _ms("2026-01-06T01:05:00+00:00")
    # the engine sells only what the fund can pay (header of crash.toml): l1 66.66 contracts at
    # 27,500 (999.90 USDT of deficit), l2 0.02 (0.10 USDT); l3 and l4 nothing
    fills = [(r.account, r.get("size"), r.get("price")) for r in res.records if r.kind == "engine fill"]
    assert fills == [("l1", Fraction("66.66"), 27_500), ("l2", Fraction("0.02"), 27_500)]
    deficits = [(r.account, r.get("amount")) for r in res.records if r.kind == "liquidation deficit"]
    assert deficits == [("l1", -999_900_000), ("l2", -100_000)]
    # ... which drains the fund to exactly 0, and it never goes below
    hist = fundbook.balance_history(res.state.funds, BTC_USDT_FUND, "settled_plus_pending")
    assert [p.balance for p in hist if p.time_ms == t_gap][-1] == 0
    assert min(p.balance for p in hist) == 0
    # trigger (a), not (b): the fund cannot pay the gap to the mark
    triggers = [r for r in res.records if r.kind == "adl trigger"]
    assert {r.account for r in triggers} == {"l1", "l2", "l3", "l4"}
    assert all(r.get("drawdown") is False and r.get("uncovered") > 0 and r.get("available") == 0 for r in triggers)
    # only the profitable shorts are deleveraged, never beyond their opening size, all at the
    # bankruptcy prices (the fund affords no contract at the mark), 983.32 contracts in all
    adl = [r for r in res.records if r.kind == "adl"]
    assert adl and {r.account for r in adl} <= {"s1", "s2", "s3"}
    assert all(r.time_ms == t_gap and r.get("size_at_mark") == 0 for r in adl)
    opening = {a.id: a.positions[0].size for a in res.scenario.accounts}
    reduced: dict[str, Fraction] = {}
    for r in adl:
        assert r.get("reduced_size") > 0
        reduced[r.account] = reduced.get(r.account, 0) + r.get("reduced_size")
    assert all(reduced[a] <= opening[a] for a in reduced)
    assert sum(reduced.values()) == 1050 - Fraction("66.66") - Fraction("0.02")
    assert {r.account for r in res.records if SIM.is_liquidation(r)} == {"l1", "l2", "l3", "l4"}
    assert res.state.remainders == ()  # nothing left with the engine
    # the top-up after the crash is booked
    assert [r.get("amount") for r in res.records if r.kind == "top-up" and r.time_ms > res.scenario.start_ms] == [2_000 * USDT]


def test_drawdown_fires_trigger_b_while_the_fund_is_positive():
    from backstop.reference import fundbook
    res = _run("drawdown")
    st = res.state.funds
    t_settle, t_adl = _ms("2026-01-05T08:00:00+00:00"), _ms("2026-01-05T09:00:00+00:00")
    # 02:00: deficits of 3,000 and 500 USDT, fully covered (no trigger (a))
    deficits = sorted((r.account, r.get("amount"), r.get("uncovered")) for r in res.records if r.kind == "liquidation deficit")
    assert deficits == [("d1", -3_000 * USDT, 0), ("d2", -500 * USDT, 0)]
    # 08:00: the settled balance falls from 10,000 to 6,500 (<= 7,000 = 0.7 x peak)
    settled = fundbook.balance_history(st, BTC_USDT_FUND, "settled")
    at_settle = [p.balance for p in settled if p.time_ms == t_settle]
    assert at_settle and at_settle[-1] == 6_500 * USDT
    assert max(p.balance for p in settled if p.time_ms <= t_settle) == 10_000 * USDT
    # the first check after the settlement enters the ADL state (trigger (b))
    states = [(r.time_ms, r.get("active")) for r in res.records if r.kind == "adl state"]
    assert states and t_settle <= states[0][0] < t_adl and states[0][1] is True
    # 09:00: d3 goes to ADL, not to the book: s2 (ranked first) takes all 100 contracts at the mark
    trig = [r for r in res.records if r.kind == "adl trigger"]
    assert [(r.account, r.get("drawdown"), r.get("uncovered")) for r in trig] == [("d3", True, 0)]
    adl = [r for r in res.records if r.kind == "adl"]
    assert [(r.time_ms, r.account, r.get("reduced_size"), r.get("size_at_mark"), r.get("mark_price")) for r in adl] == [
        (t_adl, "s2", 100, 100, 27_100)]
    # s2's score, PnL% x leverage at 27,100 (header of drawdown.toml), beats s1's
    assert adl[0].get("score") == Fraction(3_800, 58_000) * Fraction(54_200, 6_700)
    assert Fraction(3_800, 58_000) * Fraction(54_200, 6_700) > Fraction(8_700, 90_000) * Fraction(81_300, 17_700)
    assert not [r for r in res.records if r.time_ms == t_adl and r.kind in ("engine fill", "liquidation surplus")]
    # the fund gains the gap between the mark and the bankruptcy price: 1 BTC x 100 = 100 USDT
    assert [(r.account, r.get("amount")) for r in res.records if r.kind == "adl surplus"] == [("d3", 100 * USDT)]
    # ... while the fund is positive: before and after the ADL
    avail = fundbook.balance_history(st, BTC_USDT_FUND, "settled_plus_pending")
    assert all(p.balance > 0 for p in avail)
    assert fundbook.available_balance(st, BTC_USDT_FUND, "settled_plus_pending") == 6_600 * USDT


# ---------------------------------------------------------------- outputs

def _simulate_cli(args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([PY, "-m", "backstop.simulate", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_an_event_refused_while_running_names_its_line(tmp_path, capsys):
    _need_step()
    # the fund holds 1,000 USDT: withdrawing 5,000 passes the loader but the fund refuses it
    extra = ('\n[[events]]\ntime = "2026-01-05T03:00:00Z"\ntype = "withdraw"\n'
             'fund = "perpetual_futures/BTC-USDT/USDT"\namount = "5000"\n')
    text = BASE + extra
    f = tmp_path / "withdraw.toml"
    f.write_text(text, encoding="utf-8")
    code = SIM.main([str(f), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"error: {f}:{_nth_line(text, 'amount = ' + chr(34) + '5000')}: events[2].amount: "
                   "more than the fund can release (got None) [INS-007]\n"), err


def test_same_scenario_gives_byte_identical_output(tmp_path):
    _need_step()
    a, b = tmp_path / "a", tmp_path / "b"
    # two fresh processes with different hash seeds (set and dict order must not leak into the bytes)
    ra = _simulate_cli([str(EXAMPLES / "crash.toml"), "--out", str(a), "--quiet"], {"PYTHONHASHSEED": "1"})
    rb = _simulate_cli([str(EXAMPLES / "crash.toml"), "--out", str(b), "--quiet"], {"PYTHONHASHSEED": "4242"})
    assert ra.returncode == 0 and rb.returncode == 0, ra.stderr + rb.stderr
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert {"events.jsonl", "final_state.json", "chart.svg", "fund_perpetual_futures_BTC-USDT_USDT.csv"} <= set(names)
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert mismatch == [] and errors == [] and sorted(match) == names


def test_outputs_are_exact_and_well_formed(tmp_path):
    import json
    import xml.etree.ElementTree as ET
    res = _run("calm")
    paths = SIM.write_outputs(res, tmp_path)
    lines = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(res.records) + 1  # the header (profile, decimals; C67), then every record
    assert json.loads(lines[0])["kind"] == "log" and json.loads(lines[0])["currencies"] == {"BTC": 8, "USDT": 6}
    for line in lines:
        obj = json.loads(line, parse_float=lambda s: pytest.fail(f"a float in the event log: {s}"))
        assert list(obj) == sorted(obj)
    final = json.loads((tmp_path / "final_state.json").read_text(encoding="utf-8"),
                       parse_float=lambda s: pytest.fail(f"a float in the final state: {s}"))
    assert final["profile"] == "okx" and final["summary"]["adl_fills"] == 0
    csv = (tmp_path / "fund_perpetual_futures_BTC-USDT_USDT.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0] == "time_ms,time,settled_USDT,available_USDT"
    assert csv[-1].endswith(",5254,5254")
    svg = ET.fromstring((tmp_path / "chart.svg").read_text(encoding="utf-8"))
    assert svg.tag.endswith("svg")
    assert [p.name for p in paths][-1] == "chart.svg"


def test_chart_marks_adl_fills(tmp_path):
    import xml.etree.ElementTree as ET
    res = _run("drawdown")
    root = ET.fromstring(SIM.chart_svg(res))
    ns = "{http://www.w3.org/2000/svg}"
    groups = {g.get("id"): g for g in root.iter(f"{ns}g") if g.get("id")}
    texts = [t.text for t in root.iter(f"{ns}text")]
    # one ADL marker per instant with ADL fills, on the mark panel and on the fund panel
    # (drawdown.toml: one fill, s2 reduced by 100 contracts, at 09:00 UTC)
    assert len(list(groups["adl1"].iter(f"{ns}use"))) == 1 and len(list(groups["adl2"].iter(f"{ns}use"))) == 1
    assert "ADL fills: 1 (100 contracts)" in texts
    assert "mark price BTC-USDT-SWAP" in texts and f"insurance fund {BTC_USDT_FUND}" in texts


def test_check_flag_reports_the_first_violation(monkeypatch, tmp_path, capsys):
    S = _need_step()
    calls = []

    def fake_check(before, after, records):
        calls.append(1)
        return ["INV-TEST: planted"] if len(calls) == 3 else []

    monkeypatch.setattr(S, "check_invariants", fake_check)
    f = EXAMPLES / "calm.toml"
    code = SIM.main([str(f), "--out", str(tmp_path), "--check", "--quiet"])
    err = capsys.readouterr().err
    scn = SIM.load_scenario(f)
    assert code == SIM.EXIT_FAIL == 1
    assert err.startswith(f"error: {f}:{scn.events[2].line}: events[2] (type mark): invariant violated: INV-TEST: planted")
    assert len(calls) == 3


def test_cli_summary_mentions_speed_and_counts(tmp_path, capsys):
    _need_step()
    code = SIM.main([str(EXAMPLES / "drawdown.toml"), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "ADL fills: 1" in out and "events/s" in out and "9 events" in out


def test_register_cli_adds_the_simulate_command():
    import argparse
    ap = argparse.ArgumentParser(prog="backstop")
    sub = ap.add_subparsers(dest="command")
    SIM.register_cli(sub)
    args = ap.parse_args(["simulate", "examples/calm.toml", "--out", "build/x", "--check"])
    assert args.func is SIM.cmd_simulate and args.check and not args.quiet and args.out == "build/x"
    with pytest.raises(SystemExit):
        ap.parse_args(["simulate", "examples/calm.toml"])  # --out is required
