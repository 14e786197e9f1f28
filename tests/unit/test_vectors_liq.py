"""Region enumeration of the liquidation rule functions that did not finish before (issue 11, C81).

The solver is asked about a copy of each formula with its denominators cleared (regions._Cleared):
a floor of a quotient by a positive variable becomes an integer and its two bounds, a comparison of
a quotient a comparison of a polynomial.  The copy must have exactly the original's solutions on the
domain; these tests check that against floors computed here with Python's exact Fractions, and that
LIQ-005 on binance's notional table now ends in ``unsat`` (complete) where it ended ``unknown``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import z3

from backstop.proofs import regions as RG
from backstop.reference.profile import load_profile


def _cleared_value(term, fixed, clear):
    # the value the cleared copy forces for ``term`` once the variables are fixed (a fresh solver)
    out = z3.Real("out!")
    s = z3.Solver()
    s.add(*clear([out == term, *fixed]))
    assert s.check() == z3.sat
    v = s.model().eval(out, model_completion=True)
    return Fraction(v.numerator_as_long(), v.denominator_as_long())


@pytest.mark.rules("LIQ-005")
def test_cleared_floor_of_a_quotient_is_the_floor():
    # LIQ-005's max size in the target tier on binance: floor(1000 * (50,000 / mark)) lots of 0.001 BTC
    # (cap 50,000 USDT, linear, contract value 1).  By hand: mark 30,000,000 -> 50,000/30,000,000 BTC =
    # 1.67 lots -> 1; mark 7 -> 7,142,857.14 lots -> 7,142,857; mark 50,000/3 -> exactly 3,000 lots.
    mark = z3.Real("mark")
    clear = RG._Cleared([mark])
    t = z3.ToReal(z3.ToInt(1000 * (50000 / mark)))
    for m, lots in ((Fraction(30_000_000), 1), (Fraction(7), 7_142_857), (Fraction(50000, 3), 3000)):
        assert math.floor(1000 * (Fraction(50000) / m)) == lots          # the hand value, exactly
        assert _cleared_value(t, [mark == z3.RealVal(m)], clear) == lots
    # the copy holds no to_int and no division by a variable: polynomials only
    shown = " ".join(str(f) for f in clear([t > 0]))
    assert "ToInt" not in shown and "/mark" not in shown.replace(" ", "")


@pytest.mark.rules("LIQ-005")
def test_cleared_nested_floors_and_a_negative_quotient():
    # the reduced part's margin share ceil(margin * reduced / size) = -floor(-(margin * reduced) / size)
    # and an inverse PnL 100 * (1/entry - 1/mark) floored (OKX BTC-USD-SWAP: 100 USD a contract).
    # By hand: margin 7, reduced 3, size 4 -> ceil(21/4) = 6; entry 2, mark 3 -> 100 (1/2 - 1/3) = 16.67 -> 16;
    # entry 3, mark 2 -> 100 (1/3 - 1/2) = -16.67 -> -17 (toward minus infinity).
    size, entry, mark, margin = z3.Reals("size entry mark margin")
    clear = RG._Cleared([size, entry, mark])
    share = -z3.ToReal(z3.ToInt(-(margin * 3) / size))
    assert _cleared_value(share, [size == 4, margin == 7], clear) == 6
    pnl = z3.ToReal(z3.ToInt(100 * (1 / entry - 1 / mark)))
    assert _cleared_value(pnl, [entry == 2, mark == 3], clear) == 16
    assert _cleared_value(pnl, [entry == 3, mark == 2], clear) == -17
    # a comparison of quotients keeps its truth value: 1/entry - 1/mark < 0 iff entry > mark
    for e, m, want in ((2, 3, False), (3, 2, True), (5, 5, False)):
        s = z3.Solver()
        s.add(*clear([1 / entry - 1 / mark < 0, entry == e, mark == m]))
        assert (s.check() == z3.sat) is want, (e, m)


@pytest.mark.rules("LIQ-005")
def test_LIQ_005_binance_tier_1_regions_are_complete(monkeypatch):
    # Before C81 this part ended `unknown` after 3 regions.  By hand (binance BTCUSDT, linear, long,
    # cap of tier 1 = 50,000 USDT, lot 0.001, target tier 1): in tier 1 size x mark <= 50,000, so the
    # size is at most floor(50,000 / mark / 0.001) lots and the step keeps the whole position
    # (reduced 0, realized 0, fee 0); the margin share min(margin, 0) splits margin = 0 / margin > 0.
    # The cases: size x mark < 50,000 with size below that floor, or equal to it (possible below the
    # cap: 1 lot at a mark in (25,000,000, 50,000,000)), and size x mark = 50,000 (then equal): 3 x 2
    # = 6 regions, the same in each of the three mark-vs-entry parts.
    binance = load_profile("binance")
    inst = binance.instruments["BTCUSDT"]
    spec = next(s for s in RG.specs() if s.rule == "LIQ-005")

    def tier_one(profile, i, sign):
        b = spec.build(profile, i, sign)
        b.parts = [(w, f) for w, f in b.parts if w.startswith("tier 1 ")]
        return b
    monkeypatch.setattr(RG, "_partition_ok", lambda b: "")   # three parts of 21: not a partition (on purpose)
    one = RG.Spec(spec.operation, spec.rule, spec.function, tier_one)
    rr = RG.enumerate_regions(one, binance, inst, 1)
    assert rr.complete, rr.note
    assert len(rr.regions) == 6
    margins = {r.witness["margin"] == 0 for r in rr.regions}
    assert margins == {True, False}
    for r in rr.regions:
        size, mark = r.witness["size"], r.witness["mark"]
        assert size * mark <= 50000                                  # tier 1 (the part)
        lots = math.floor(Fraction(50000) / mark / Fraction(1, 1000))
        assert size <= lots * Fraction(1, 1000)                     # the whole position is kept
