"""ENG-004 (where a close's money goes) and ENG-006 (the engine never takes a deficit the fund
cannot pay), spec/20-liquidation.md, on the rule functions of ``reference/engine.py``.

Expected figures are worked by hand in the comments (BTC-USDT-SWAP: 0.01 BTC per contract, lot
0.01 contract, 1 USDT = 10^6 units); the properties check the rules' statements directly, with
the PnL of a fill written out here (``sign · size · 0.01 · (price − takeover) · 10^6``), not read
from ``compute_unrealized_pnl``.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction as F

from hypothesis import given, settings, strategies as st

from backstop.reference import engine as E
from backstop.reference.profile import FeeReceiver, load_profile

OKX = load_profile("okx")
BTC = OKX.instruments["BTC-USDT-SWAP"]
U = 10 ** 6
LOT = F(1, 100)


def rules(rate: F, receiver: str):
    return dataclasses.replace(OKX.liquidation, liquidation_fee_rate=rate, fee_receiver=FeeReceiver(receiver))


def pnl_units(sign: int, size: F, takeover: F, price: F) -> F:
    """A BTC-USDT-SWAP fill's exact PnL for the engine holding ``sign`` from the takeover price."""
    return sign * size * F(1, 100) * (price - takeover) * U


# ---------------------------------------------------------------- ENG-004

def test_ENG_004_with_the_fund_as_receiver_the_fund_gets_the_whole_result():
    # long 100 contracts taken over at 27,000, one bid of 100 at 27,050: result 1 BTC x 50 = 50 USDT;
    # fee 0.1 % of the filled value 100 x 0.01 x 27,050 = 27,050 USDT -> 27.05 USDT (ENG-003)
    c = E.close_position(BTC, rules(F(1, 1000), "fund"), 1, F(100), F(27_000), (E.Level(F(27_050), F(100)),))
    assert (c.result_units, c.fee_units) == (50 * U, 27_050_000)
    assert (c.fund_units, c.venue_units) == (50 * U, 0)  # the fee is a labelled part of the inflow
    assert c.fee_to_fund is True


def test_ENG_004_with_the_venue_as_receiver_the_fund_gets_the_result_less_the_fee():
    c = E.close_position(BTC, rules(F(1, 1000), "venue"), 1, F(100), F(27_000), (E.Level(F(27_050), F(100)),))
    assert (c.fund_units, c.venue_units) == (50 * U - 27_050_000, 27_050_000)  # 22.95 + 27.05 = 50 USDT
    assert c.fee_to_fund is False


def test_ENG_004_a_deficit_goes_to_the_fund_whole_whoever_receives_fees():
    # short 10 contracts taken over at 27,000, one ask of 10 at 27,100: result -0.1 x 100 = -10 USDT,
    # no fee out of a deficit (ENG-003): the fund bears the whole -10 USDT, the venue nothing
    for receiver in ("fund", "venue"):
        c = E.close_position(BTC, rules(F(1, 1000), receiver), -1, F(10), F(27_000), (E.Level(F(27_100), F(10)),))
        assert (c.result_units, c.fee_units, c.fund_units, c.venue_units) == (-10 * U, 0, -10 * U, 0)


levels_st = st.lists(st.tuples(st.integers(20_000, 34_000), st.integers(0, 5_000)), min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(sign=st.sampled_from([1, -1]), size=st.integers(1, 10_000), takeover=st.integers(20_000, 34_000),
       levels=levels_st, rate=st.sampled_from([F(0), F(1, 2000), F(1, 1000), F(3, 1000)]),
       receiver=st.sampled_from(["fund", "venue"]))
def test_ENG_004_fund_part_plus_venue_part_is_the_result(sign, size, takeover, levels, rate, receiver):
    book = tuple(E.Level(F(p), F(q)) for p, q in sorted(levels, reverse=(sign == 1)))
    c = E.close_position(BTC, rules(rate, receiver), sign, F(size), F(takeover), book)
    assert c.fund_units + c.venue_units == c.result_units
    if receiver == "fund":
        assert (c.fund_units, c.venue_units) == (c.result_units, 0)
    else:
        assert (c.fund_units, c.venue_units) == (c.result_units - c.fee_units, c.fee_units)
    # the result is the fills' PnL rounded down once (ENG-002), computed here apart from the code
    exact = sum((pnl_units(sign, f.size, F(takeover), f.price) for f in c.fills), F(0))
    assert c.result_units == math.floor(exact)


# ---------------------------------------------------------------- ENG-006

def test_ENG_006_the_worked_example_fills_20_of_the_worse_level_with_200_usdt():
    # long 100 taken over at 27,000; bids 30 at 27,000 (no loss) and 20 at 26,000 (10 USDT lost per
    # contract: 0.01 x 1,000); a fund of 200 USDT affords 200 / 10 = 20 contracts; 50 stay open
    levels = (E.Level(F(27_000), F(30)), E.Level(F(26_000), F(20)), E.Level(F(25_000), F(100)))
    c = E.close_position_within(BTC, OKX.liquidation, 1, F(100), F(27_000), levels, 200 * U)
    assert [f.size for f in c.fills] == [30, 20, 0]
    assert c.remainder == 50 and c.result_units == -200 * U and c.fund_units == -200 * U


def test_ENG_006_the_affordable_size_rounds_down_to_the_lot():
    # at 26,000 one lot (0.01 contract) loses 0.1 USDT: 199.95 USDT affords 1,999.5 lots -> 1,999
    # lots = 19.99 contracts (a loss of 199.9 USDT), never the lot that would cost 200
    levels = (E.Level(F(26_000), F(50)),)
    c = E.close_position_within(BTC, OKX.liquidation, 1, F(50), F(27_000), levels, 199_950_000)
    assert c.fills[0].size == F(1_999, 100) and c.remainder == 50 - F(1_999, 100)
    assert c.result_units == -199_900_000


def test_ENG_006_the_surplus_of_a_better_level_funds_a_worse_one():
    # short 40 taken over at 27,000 (the engine buys): asks 10 at 26,900 (+1 USDT per contract ->
    # +10 USDT) then 30 at 27,500 (-5 USDT per contract). Fund 0: the 10 USDT surplus affords 2.
    levels = (E.Level(F(26_900), F(10)), E.Level(F(27_500), F(30)))
    c = E.close_position_within(BTC, OKX.liquidation, -1, F(40), F(27_000), levels, 0)
    assert [f.size for f in c.fills] == [10, 2] and c.remainder == 28
    assert c.result_units == 0  # +10 - 2 x 5


def test_ENG_006_an_empty_fund_takes_no_worse_level_at_all():
    levels = (E.Level(F(26_999), F(1_000)),)
    c = E.close_position_within(BTC, OKX.liquidation, 1, F(5), F(27_000), levels, 0)
    assert c.fills[0].size == 0 and c.remainder == 5 and c.result_units == 0


@settings(max_examples=200, deadline=None)
@given(sign=st.sampled_from([1, -1]), size=st.integers(1, 100_000), takeover=st.integers(20_000, 34_000),
       levels=st.lists(st.tuples(st.integers(20_000, 34_000), st.integers(0, 50_000)), min_size=1, max_size=4),
       budget=st.one_of(st.just(0), st.integers(0, 10 ** 10)))
def test_ENG_006_never_a_deficit_beyond_the_budget_and_no_affordable_lot_left(sign, size, takeover, levels, budget):
    """Sizes in lots (1 lot = 0.01 contract).  The close's loss never exceeds the budget; every fill
    is on the lot grid and within its level; and where a level was not taken in full while size
    remained, one more lot would have cost more than the budget left."""
    size_c, tk = F(size, 100), F(takeover)
    book = tuple(E.Level(F(p), F(q, 100)) for p, q in sorted(levels, reverse=(sign == 1)))
    c = E.close_position_within(BTC, OKX.liquidation, sign, size_c, tk, book, budget)
    assert sum(f.size for f in c.fills) + c.remainder == size_c and c.remainder >= 0
    left = F(budget)
    remaining = size_c
    for f, lv in zip(c.fills, book):
        assert f.price == lv.price and 0 <= f.size <= lv.size and (f.size / LOT).denominator == 1
        per_lot = pnl_units(sign, LOT, tk, lv.price)
        left += pnl_units(sign, f.size, tk, lv.price)
        assert left >= 0  # the budget left never goes below zero: no deficit the fund cannot pay
        remaining -= f.size
        if f.size < lv.size and remaining > 0:
            assert per_lot < 0 and left + per_lot < 0, (f, lv, left)  # one more lot is not affordable
    assert c.result_units >= -budget
