"""Regions of the eval ``adl`` operation (issue 11; proofs/regions_adl.py, spec/99-sources.md C79).

The default suite enumerates one instrument per shipped profile (okx BTC-USDT-SWAP, binance and
bybit BTCUSDT) for the fast specs; binance's score (ADL-004, one part per tier: about 2 minutes a
side) and ranking (ADL-005, about 1-2 minutes a side) are run by hand
(``backstop vectors --check DIR --profile binance --rule ADL-004 ...``).  The witnesses are checked
against numbers derived here by hand from okx.toml: BTC-USDT-SWAP has contract value 0.01 BTC and
USDT with 6 decimals, so one contract moves ``k = 0.01 * 10^6 = 10^4`` units per USDT of price;
lot 0.01; okx's ADL executes at the mark (seed 003), binance's and bybit's at the bankruptcy price.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from backstop.inputs import evaluate
from backstop.proofs import regions as RG
from backstop.proofs import regions_adl as RA
from backstop.reference.profile import load_profile

INST = "BTC-USDT-SWAP"
K = Fraction(10 ** 4)          # units per USDT of price, per contract (okx BTC-USDT-SWAP)
LOT = Fraction(1, 100)
FAST = {"is_adl_fillable", "is_adl_filled_at_bankruptcy", "allocate_adl", "compute_adl_mark_quantity",
        "compute_adl_mark_part", "settle_adl_counterparty", "compute_adl_fund_result"}


def _spec(function: str):
    (s,) = [s for s in RA.SPECS if s.function == function]
    return s


_CACHE: dict = {}


def _regions(function: str, profile: str = "okx", inst: str = INST):
    key = (function, profile, inst)
    if key not in _CACHE:
        p = load_profile(profile)
        _CACHE[key] = [RG.enumerate_regions(_spec(function), p, p.instruments[inst], s) for s in (1, -1)]
    return _CACHE[key]


def _q(resp, name):
    return Fraction(resp["quantities"][name]["value"])


def _hand_mark_quantity(sl: int, size, bp, mark, avail):
    # ADL-007 by hand: deficit per contract c = -(s_L k (mark - bp)); c <= 0: all at the mark;
    # else the most lots whose deficit the fund pays: floor(avail / c / lot) * lot, at most the size
    c = -sl * K * (mark - bp)
    if c <= 0:
        return size
    return min(size, math.floor(Fraction(avail) / c / LOT) * LOT)


def _remainder(req):
    r = req["remainder"]
    sl = 1 if r["side"] == "long" else -1
    p = req["positions"][0]
    return (sl, Fraction(r["size"]), Fraction(r["bankruptcy_price"]), Fraction(req["mark_price"]), req["fund_available"],
            -sl, Fraction(p["size"]), Fraction(p["entry_price"]))


@pytest.mark.rules("ADL-004", "ADL-005", "ADL-006", "ADL-007", "ADL-008", "ADL-009")
@pytest.mark.parametrize("profile,inst", [("okx", INST), ("binance", "BTCUSDT"), ("bybit", "BTCUSDT")])
def test_adl_enumerations_complete_and_every_witness_accepted(profile, inst):
    p = load_profile(profile)
    specs = [s for s in RA.SPECS if s.function in FAST or profile == "okx" or
             (profile == "bybit" and s.function in ("compute_adl_score", "is_ranked_before"))]
    n = 0
    for spec in specs:
        if not spec.applies(p, p.instruments[inst]):
            continue
        for rr in _regions(spec.function, profile, inst):
            assert rr.complete, (spec.function, rr.side, rr.note)
            assert rr.regions, (spec.function, rr.side)
            assert len({g.id for g in rr.regions}) == len(rr.regions)
            for g in rr.regions:
                resp = evaluate(g.request)          # eval accepts every witness (a refusal raises)
                assert resp["operation"] == "adl" and resp["instrument"] == inst
                n += 1
    assert n >= 20


@pytest.mark.rules("ADL-005")
def test_ADL_005_two_positions_every_pairwise_outcome_and_the_tie_broken_by_the_account():
    # By hand: ADL-004's pnl_times_leverage score of (s, n, e, m) at mark M: upl = s k n (M - e),
    # V(x) = k n x, E = m + upl; upl > 0: (upl / V(e)) (V(M) / E); else (upl / V(e)) max(E, 0) / V(M).
    # ADL-005: higher score first, equal scores: the smaller account id first; indicators of 2:
    # 5 - floor(5 * 0 / 2) = 5 and 5 - floor(5 * 1 / 2) = 3.
    def score(s, n, e, m, M):
        upl = s * K * n * (M - e)
        ve, vm, eq = K * n * e, K * n * M, m + s * K * n * (M - e)
        return upl / ve * vm / eq if upl > 0 else upl / ve * max(eq, 0) / vm
    seen = set()
    for rr in _regions("is_ranked_before"):
        assert len(rr.regions) == 6       # score0 <, =, > score1, times key0 < or > key1
        for g in rr.regions:
            req = g.request
            M = Fraction(req["mark_price"])
            s = 1 if rr.side == "long" else -1
            ps = [(q["account"], score(s, Fraction(q["size"]), Fraction(q["entry_price"]), q["margin"], M))
                  for q in req["positions"]]
            expect = sorted(ps, key=lambda a: (-a[1], a[0]))
            got = evaluate(req)["ranking"][rr.side]
            assert [x["account"] for x in got] == [a for a, _ in expect], g.id
            assert [x["quantities"]["indicator"]["value"] for x in got] == ["5", "3"]
            assert [Fraction(x["quantities"]["score"]["value"]) for x in got] == [sc for _, sc in expect]
            (a0, s0), (a1, s1) = ps
            seen.add(((s0 > s1) - (s0 < s1), a0 < a1))
    assert seen == {(c, k) for c in (-1, 0, 1) for k in (True, False)}   # incl. both ties, broken by the account


@pytest.mark.rules("ADL-006")
def test_ADL_006_fill_rule_regions_by_hand():
    # By hand: at_bp = (ADL-007's mark quantity of the whole remainder) < R; filled iff
    # s (M - e) > 0 and (not at_bp or s (bp - e) >= 0); filled with R, n > 0 => reduction min(n, R) > 0.
    seen = set()
    for rr in _regions("is_adl_fillable"):
        # 2 (at_bp) x 3 x 3 (PnL signs at M and bp) = 18, less 4 infeasible: at_bp on okx needs a deficit,
        # the mark worse than bp for the liquidated side, so bp lies beyond the mark for the counterparty:
        # s (bp - e) < s (M - e); with s (M - e) <= 0 the sign at bp is then negative (not 0, not +)
        assert len(rr.regions) == 14
        for g in rr.regions:
            sl, R, bp, M, avail, s, n, e = _remainder(g.request)
            at_bp = _hand_mark_quantity(sl, R, bp, M, avail) < R
            filled = s * (M - e) > 0 and (not at_bp or s * (bp - e) >= 0)
            resp = evaluate(g.request)
            red = _q(resp["counterparties"][0], "reduction")
            assert red == (min(n, R) if filled else 0), g.id
            seen.add((at_bp, filled, (s * (M - e) > 0) - (s * (M - e) < 0)))
    assert {(False, True, 1), (True, True, 1), (True, False, 1), (False, False, 0), (False, False, -1)} <= seen


@pytest.mark.rules("ADL-007", "ADL-009")
def test_ADL_007_mark_quantity_and_ADL_009_fund_result_by_hand():
    # By hand: q = ADL-007 on the total reduced T (T = min(n, R) when filled, else 0); the fund's
    # result floor(s_L k q (M - bp)) (ADL-009: a deficit charged in full).
    signs = set()
    for fn in ("compute_adl_mark_quantity", "compute_adl_fund_result"):
        for rr in _regions(fn):
            for g in rr.regions:
                sl, R, bp, M, avail, s, n, e = _remainder(g.request)
                at_bp = _hand_mark_quantity(sl, R, bp, M, avail) < R
                filled = s * (M - e) > 0 and (not at_bp or s * (bp - e) >= 0)
                T = min(n, R) if filled else 0
                q = _hand_mark_quantity(sl, T, bp, M, avail) if T else 0
                resp = evaluate(g.request)
                assert _q(resp, "mark_quantity") == q, g.id
                fund = math.floor(sl * K * q * (M - bp))
                assert _q(resp, "fund_result_units") == fund, g.id
                if fn == "compute_adl_fund_result":
                    signs.add((fund > 0) - (fund < 0))
    assert signs == {-1, 0, 1}        # the fund pays, nothing, receives


@pytest.mark.rules("ADL-007")
def test_ADL_007_bankruptcy_profile_has_one_region_nothing_at_the_mark():
    # binance executes at the bankruptcy price: q = 0 whatever the inputs, so compute_adl_mark_quantity
    # has no condition of its own there (one region a side) and the whole remainder is at bp
    for rr in _regions("compute_adl_mark_quantity", "binance", "BTCUSDT"):
        assert len(rr.regions) == 1 and rr.complete
        resp = evaluate(rr.regions[0].request)
        assert _q(resp, "mark_quantity") == 0


@pytest.mark.rules("ADL-006")
def test_ADL_006_allocation_one_counterparty_full_partial_none():
    # By hand: r = min(n, R) when filled, else 0; left = R - r.  Four regions a side: not filled;
    # filled with n < R (fully reduced, some left), n = R (fully, none left), n > R (partly, none left)
    for rr in _regions("allocate_adl"):
        kinds = set()
        for g in rr.regions:
            sl, R, bp, M, avail, s, n, e = _remainder(g.request)
            resp = evaluate(g.request)
            r = _q(resp["counterparties"][0], "reduction")
            assert _q(resp, "unallocated") == R - r
            kinds.add("none" if r == 0 else ("full, left" if n < R else "full" if n == R else "part"))
            if r:
                assert r == min(n, R)
        assert kinds == {"none", "full, left", "full", "part"}, rr.side


@pytest.mark.rules("ADL-005", "ADL-006", "ADL-007")
def test_adl_is_covered_with_its_bounds_stated():
    # C79: the operation is covered; its list lengths are stated in every region's description
    assert "adl" in RG.OPERATIONS_COVERED and "adl" not in RG.NOT_COVERED_WHY
    assert RA.RANK_LENGTHS == (2,) and RA.ALLOCATION_LENGTH == 1
    for g in _regions("is_ranked_before")[0].regions:
        assert "2 positions of one side ranked (the bound, C79)" in g.description
    for g in _regions("allocate_adl")[0].regions:
        assert "a remainder against 1 counterparty (the bound, C79)" in g.description
    # the 2-counterparty chain is built (not enumerated): its order is ADL-005's pairwise decision
    okx = load_profile("okx")
    run = RA._Run(okx, okx.instruments[INST], 1, 2)
    assert run.before is not None and len(run.slot_reduction) == 2
