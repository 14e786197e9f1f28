"""Regions of the ``fund_window`` operation (issue 11, C77): proofs/regions_fund.py.

The default suite enumerates the one-event lists of every shipped profile and one two-event list
(a result then a settle) of okx; the other two-event lists are run in full by
``backstop vectors --out DIR --rule INS-004 ... --rule INS-008`` and ``--check DIR`` (C77).  The
witnesses are checked against numbers derived here by hand from INS-002..INS-008
(spec/30-fund.md): okx settles at 16:00:00 HKT = 08:00 UTC, so window(t) = floor((t - 28,800,000) /
86,400,000) and window k starts at k * 86,400,000 + 28,800,000; binance and bybit settle at 00:00 UTC,
window(t) = floor(t / 86,400,000).  The opening state is the request's settled balance, pending 0.
"""

from __future__ import annotations

import pytest

from backstop.inputs import evaluate
from backstop.proofs import regions as RG
from backstop.proofs import regions_fund as RF
from backstop.reference.errors import InvalidInput
from backstop.reference.profile import load_profile

DAY = 86_400_000
SHIFT = {"okx": 28_800_000, "binance": 0, "bybit": 0}   # settlement instant after 00:00 UTC, in ms
PROFILES = ("okx", "binance", "bybit")
ONE_EVENT = ("step_result", "step_fee", "step_top_up", "step_withdraw", "settle_fund")


def _window(profile: str, t: int) -> int:
    return (t - SHIFT[profile]) // DAY                   # INS-002, Python's floor division


def _spec(function: str) -> RG.Spec:
    return next(s for s in RF.SPECS if s.function == function)


_CACHE: dict[tuple[str, str], RG.RuleRegions] = {}


def _regions(profile: str, function: str) -> RG.RuleRegions:
    if (profile, function) not in _CACHE:
        p = load_profile(profile)
        _CACHE[(profile, function)] = RG.enumerate_regions(_spec(function), p, next(iter(p.instruments.values())), 1)
    return _CACHE[(profile, function)]


def _q(resp: dict, n: int, name: str):
    v = resp["events"][n]["quantities"][name]["value"]
    return int(v) if isinstance(v, str) else v


def _pick(rr: RG.RuleRegions, *, refused: bool = False, desc: tuple[str, ...] = (), cons: tuple[str, ...] = ()) -> RG.Region:
    got = [g for g in rr.regions if g.refused == refused and all(d in g.description for d in desc)
           and all(c in g.constraints for c in cons)]
    assert got, (desc, cons, [g.description for g in rr.regions])
    return got[0]


# ---------------------------------------------------------------- (1) complete, and the spec list

def test_INS_002_fund_window_specs_are_the_stated_bound():
    # C77: one event of each kind; a result followed by one event of each kind
    assert [s.function for s in RF.SPECS] == list(ONE_EVENT) + [f"step_result+{f}" for f in ONE_EVENT]
    assert [s.rule for s in RF.SPECS] == ["INS-004", "INS-005", "INS-006", "INS-007", "INS-008"] * 2
    assert all(s.operation == "fund_window" and not s.sided for s in RF.SPECS)
    assert "fund_window" in RG.OPERATIONS_COVERED and "fund_window" not in RG.NOT_COVERED_WHY


@pytest.mark.rules("INS-004", "INS-005", "INS-006", "INS-007", "INS-008", "INS-009")
@pytest.mark.parametrize("profile", PROFILES)
def test_one_event_enumerations_are_complete_on_every_profile(profile):
    for f in ONE_EVENT:
        rr = _regions(profile, f)
        assert rr.complete, (f, rr.note)
        assert rr.regions and any(g.refused for g in rr.regions) and any(not g.refused for g in rr.regions), f
        assert len({g.id for g in rr.regions}) == len(rr.regions)


@pytest.mark.rules("INS-004", "INS-008")
def test_result_then_settle_enumeration_is_complete_on_okx():
    rr = _regions("okx", "step_result+settle_fund")
    assert rr.complete, rr.note
    assert len(rr.regions) > 20


# ---------------------------------------------------------------- (3) every witness: eval answers or refuses as stated

@pytest.mark.rules("INS-007", "INS-009")
@pytest.mark.parametrize("profile", PROFILES)
def test_every_witness_is_answered_unless_its_region_is_a_refusal(profile):
    for f in ONE_EVENT + (("step_result+settle_fund",) if profile == "okx" else ()):
        for g in _regions(profile, f).regions:
            if not g.refused:
                resp = evaluate(dict(g.request))
                assert len(resp["events"]) == len(g.request["events"]), g.id
                continue
            with pytest.raises(InvalidInput) as e:
                evaluate(dict(g.request))
            last = len(g.request["events"]) - 1     # the two-event lists' first event is accepted
            assert e.value.field in (f"events[{last}].time_ms", f"events[{last}].amount"), (g.id, e.value)
            assert e.value.rule in ("INS-009", "INS-007"), (g.id, e.value)
            if e.value.rule == "INS-009":           # earlier than the clock (the start or the first event)
                ev = g.request["events"]
                clock = ev[last - 1]["time_ms"] if last else g.request["start_ms"]
                assert ev[last]["time_ms"] < clock, g.id


# ---------------------------------------------------------------- (2) regions checked by hand

@pytest.mark.rules("INS-002", "INS-008")
@pytest.mark.parametrize("profile", PROFILES)
def test_INS_008_settle_exactly_at_the_settlement_instant(profile):
    rr = _regions(profile, "settle_fund")
    g = _pick(rr, desc=("at a settlement instant: yes", "settlement due: yes"))
    start, t = g.request["start_ms"], g.request["events"][0]["time_ms"]
    # by hand: t is a window's first instant (16:00:00.000 HKT on okx, 00:00 UTC otherwise), in a
    # later window than the start; the settlement closes the start's window at its end instant
    assert (t - SHIFT[profile]) % DAY == 0
    w0 = _window(profile, start)
    assert _window(profile, t) > w0
    resp = evaluate(dict(g.request))
    assert _q(resp, 0, "window") == _window(profile, t)
    assert _q(resp, 0, "settlement_due") is True
    assert _q(resp, 0, "settled_window") == w0
    assert _q(resp, 0, "settlement_time_ms") == (w0 + 1) * DAY + SHIFT[profile]
    assert _q(resp, 0, "settlement_moved") == 0              # the opening pending is 0
    # the same instant one ms earlier is the last instant of the previous window (INS-002)
    assert _window(profile, t - 1) == _window(profile, t) - 1


@pytest.mark.rules("INS-002", "INS-008")
def test_INS_008_settle_in_the_start_window_is_not_due():
    rr = _regions("okx", "settle_fund")
    g = _pick(rr, desc=("settlement due: no", "time_ms accepted (INS-009): yes"))
    start, t = g.request["start_ms"], g.request["events"][0]["time_ms"]
    assert start <= t and _window("okx", t) == _window("okx", start)     # by hand: same window
    resp = evaluate(dict(g.request))
    assert _q(resp, 0, "settlement_due") is False
    assert resp["events"][0]["quantities"]["settled_window"]["value"] is None


@pytest.mark.rules("INS-004")
@pytest.mark.parametrize("profile", PROFILES)
def test_INS_004_deficit_above_the_balance_is_paid_in_part(profile):
    rr = _regions(profile, "step_result")
    g = _pick(rr, desc=("uncovered > 0: yes",))
    settled, amount = g.request["settled"], g.request["events"][0]["amount"]
    d = -amount
    assert d > settled                               # the region: a deficit beyond the available balance
    resp = evaluate(dict(g.request))
    # by hand (INS-004): available = settled + 0; paid = min(d, max(available, 0)) = settled
    assert _q(resp, 0, "inflow") == 0
    assert _q(resp, 0, "paid") == settled
    assert _q(resp, 0, "uncovered") == d - settled
    assert _q(resp, 0, "pending") == -settled        # paid from pending into the engine
    assert _q(resp, 0, "settled") == settled         # settled changes only at a settlement
    assert _q(resp, 0, "available") == 0 and _q(resp, 0, "withdrawable") == 0


@pytest.mark.rules("INS-004")
def test_INS_004_deficit_exactly_the_balance_is_covered():
    rr = _regions("okx", "step_result")
    g = _pick(rr, desc=("uncovered > 0: no",), cons=("-1*amount0 = settled",))
    settled, amount = g.request["settled"], g.request["events"][0]["amount"]
    assert -amount == settled                        # the boundary region: the deficit equals the balance
    resp = evaluate(dict(g.request))
    assert _q(resp, 0, "paid") == settled and _q(resp, 0, "uncovered") == 0 and _q(resp, 0, "available") == 0


@pytest.mark.rules("INS-007")
def test_INS_007_withdrawal_above_the_settled_balance_is_refused():
    rr = _regions("okx", "step_withdraw")
    g = _pick(rr, refused=True, cons=("time0 > start", "amount0 > settled"))
    settled, amount = g.request["settled"], g.request["events"][0]["amount"]
    assert g.request["events"][0]["time_ms"] >= g.request["start_ms"]
    assert amount > settled                          # by hand: withdrawable = min(settled, settled + 0) = settled
    with pytest.raises(InvalidInput) as e:
        evaluate(dict(g.request))
    assert (e.value.field, e.value.rule) == ("events[0].amount", "INS-007")
    # its neighbour on the boundary (amount = settled) is answered and empties the fund
    ok = _pick(rr, cons=("amount0 = settled",))
    s = ok.request["settled"]
    assert ok.request["events"][0]["amount"] == s
    resp = evaluate(dict(ok.request))
    assert _q(resp, 0, "settled") == 0 and _q(resp, 0, "paid") == s and _q(resp, 0, "withdrawable") == 0


@pytest.mark.rules("INS-004", "INS-008")
def test_INS_008_a_result_then_a_settle_in_a_later_window_moves_its_net():
    rr = _regions("okx", "step_result+settle_fund")
    g = _pick(rr, desc=("event 2 settlement due: yes",), cons=("amount0 > 0",))
    r = g.request
    settled, amount = r["settled"], r["events"][0]["amount"]
    t0, t1 = r["events"][0]["time_ms"], r["events"][1]["time_ms"]
    assert amount > 0 and _window("okx", t1) > _window("okx", t0)
    resp = evaluate(dict(r))
    # by hand: the surplus accrues to pending (INS-004), the settle moves it whole into settled at
    # the end instant of the result's window (INS-008): a "forced liquidation injection"
    assert _q(resp, 0, "pending") == amount
    assert _q(resp, 1, "settlement_moved") == amount
    assert _q(resp, 1, "settled_window") == _window("okx", t0)
    assert _q(resp, 1, "settlement_time_ms") == (_window("okx", t0) + 1) * DAY + SHIFT["okx"]
    assert _q(resp, 1, "settled") == settled + amount and _q(resp, 1, "pending") == 0
    assert _q(resp, 1, "peak_settled") == settled + amount


@pytest.mark.rules("INS-004", "INS-008")
def test_INS_008_a_deficit_settled_later_is_an_outflow_of_the_settled_balance():
    rr = _regions("okx", "step_result+settle_fund")
    g = _pick(rr, desc=("event 2 settlement due: yes",), cons=("amount0 < 0",))
    r = g.request
    settled, amount = r["settled"], r["events"][0]["amount"]
    paid = min(-amount, settled)                    # INS-004 on the opening state (pending 0)
    resp = evaluate(dict(r))
    assert _q(resp, 1, "settlement_moved") == -paid  # an "overloss loss" of what was paid
    assert _q(resp, 1, "settled") == settled - paid and _q(resp, 1, "pending") == 0
    assert _q(resp, 1, "peak_settled") == settled   # the peak never falls (INS-010)


def test_fund_window_regions_are_deterministic():
    # the same words, ids and witnesses from a second enumeration in the same process (after other
    # specs built their terms: the words must not depend on term ids)
    p = load_profile("okx")
    inst = next(iter(p.instruments.values()))
    a = RG.enumerate_regions(_spec("step_withdraw"), p, inst, 1)
    RG.enumerate_regions(_spec("step_fee"), p, inst, 1)
    b = RG.enumerate_regions(_spec("step_withdraw"), p, inst, 1)
    assert [(g.id, g.constraints, g.request) for g in a.regions] == [(g.id, g.constraints, g.request) for g in b.regions]


@pytest.mark.rules("INS-008", "INS-009")
@pytest.mark.parametrize("profile", PROFILES)
def test_INS_008_one_settle_has_six_regions_counted_by_hand(profile):
    # by hand: accepted (t >= start): t = start, the instant a window start or not (2); t > start in the
    # start's window, never a window start (a window start after start would be a later window) (1);
    # t in a later window, a window start or not (2); refused: t < start, the check's one comparison (1)
    rr = _regions(profile, "settle_fund")
    assert len(rr.regions) == 6 and sum(g.refused for g in rr.regions) == 1
    (r,) = [g for g in rr.regions if g.refused]
    assert r.constraints == ("time0 < start",) and r.description == "any, refused by eval: time0 < start"


@pytest.mark.rules("INS-008")
def test_refusal_regions_are_written_as_invalid_vectors_and_audited(tmp_path):
    from backstop import vectors as V
    V.generate(tmp_path, ["okx"], rules={"INS-008"}, examples=False, invalid=False)
    root = tmp_path / "v1" / "okx" / "fund_window" / "INS-008"
    files = sorted(root.glob("*/witness.json"))
    import json
    vs = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    refused = [v for v in vs if "error" in v]
    assert refused and all("response" not in v for v in refused)
    assert {(v["error"]["field"], v["error"]["rule"], v["error"]["type"]) for v in refused} == \
        {("events[0].time_ms", "INS-009", "InvalidInput"), ("events[1].time_ms", "INS-009", "InvalidInput")}
    assert all(evaluate(dict(v["request"])) == v["response"] for v in vs if "response" in v)
    ok, lines = V.check(tmp_path, ["okx"], rules={"INS-008"})
    assert ok, lines
    assert not any("fund_window" in x for x in lines if x.startswith("not enumerated"))
    (row,) = [x.split() for x in lines if x.startswith("okx ")]
    assert row[:2] == ["okx", "fund_window"] and row[3] == row[4] == str(len(files)) and row[5] == "0"
