"""Worked examples of spec/20-liquidation.md (LIQ-004..LIQ-009, ENG-001..ENG-005), with the
expected figures computed by hand in the spec, not read from the code."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from backstop.reference import engine as E
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference.profile import load_profile
from backstop.reference.types import PositionTerms

OKX = load_profile("okx")
BTC = OKX.instruments["BTC-USDT-SWAP"]
ETH = OKX.instruments["ETH-USDT-SWAP"]
INV = OKX.instruments["BTC-USD-SWAP"]
U = 10**6  # USDT units


def p5(margin_usdt=250_000):
    return PositionTerms(1, F(30_000), F(30_000), margin_usdt * U)


@pytest.mark.rules("LIQ-004")
def test_LIQ_004_decision_at_three_marks():
    assert L.decide_action(BTC, OKX.margin, OKX.liquidation, p5(), F(29_500)) == L.PARTIAL
    assert L.decide_action(BTC, OKX.margin, OKX.liquidation, p5(), F(29_300)) == L.PARTIAL
    assert L.decide_action(BTC, OKX.margin, OKX.liquidation, p5(), F(29_290)) == L.FULL
    assert L.decide_action(BTC, OKX.margin, OKX.liquidation, p5(), F(30_000)) == L.NONE
    assert L.compute_tier_one_requirement(BTC, OKX.margin, p5(), F(29_500)) == 39_825 * U


def test_LIQ_004_tier_two_or_below_is_always_full():
    # 2,000 contracts (20 BTC) at tier 2, barely liquidatable: no partial below tier 3.
    pos = PositionTerms(1, F(2_000), F(30_000), 20 * 1_000 * U)  # margin 20,000 USDT
    mark = F(29_050)  # equity 20,000 - 19,000 = 1,000 <= 581,000 * 0.0055 = 3,195.5
    assert M.compute_tier_index(BTC, pos.size, mark) == 2
    assert L.decide_action(BTC, OKX.margin, OKX.liquidation, pos, mark) == L.FULL


@pytest.mark.rules("LIQ-005")
def test_LIQ_005_first_step_of_p5():
    s = L.compute_partial_step(BTC, OKX.margin, OKX.liquidation, p5(), F(29_500))
    assert (s.tier_before, s.tier_after) == (5, 3)
    assert s.position.size == 12_000 and s.reduced == 18_000
    assert s.realized_units == -90_000 * U
    assert s.fee_units == 2_655 * U
    assert s.position.margin == 157_345 * U
    assert s.price == 29_500


def test_LIQ_005_to_tier_one_reading_goes_straight_to_tier_one():
    import dataclasses
    lr = dataclasses.replace(OKX.liquidation, partial=type(OKX.liquidation.partial)("to_tier_one"))
    s = L.compute_partial_step(BTC, OKX.margin, lr, p5(), F(29_500))
    assert (s.tier_before, s.tier_after, s.position.size) == (5, 1, 500)


@pytest.mark.rules("LIQ-006")
def test_LIQ_006_tier_five_reduced_in_two_steps_then_healthy():
    first = L.run_liquidation(BTC, OKX.margin, OKX.liquidation, p5(), F(29_500))
    assert first.action == L.NONE and first.step_count == 1
    pos = first.position
    assert (pos.size, pos.margin) == (12_000, 157_345 * U)
    second = L.run_liquidation(BTC, OKX.margin, OKX.liquidation, pos, F(28_900))
    assert second.action == L.NONE and second.step_count == 1
    (active, step), *rest = second.steps
    assert active is True and (step.tier_before, step.tier_after) == (3, 1)
    assert step.reduced == 11_500 and step.realized_units == -126_500 * U
    assert step.fee_units == 1_661_750_000  # 1,661.75 USDT
    assert step.margin_share_units == 150_788_958_334  # ceil(157,345e6 * 23 / 24) = ceil(6,556,041,666.67 * 23)
    assert second.position.size == 500 and second.position.margin == 29_183_250_000
    assert all(a is False for a, _ in rest)


def test_LIQ_006_bound_is_half_the_tiers():
    assert L.max_partial_steps(BTC) == 3 and L.max_partial_steps(ETH) == 2


@pytest.mark.rules("LIQ-007", "INV-021")
def test_LIQ_007_full_liquidation_of_p1_at_the_bankruptcy_price():
    p1 = PositionTerms(1, F(100), F(30_000), 3_000 * U)
    assert L.decide_action(BTC, OKX.margin, OKX.liquidation, p1, F(27_100)) == L.FULL
    t = L.compute_full_takeover(BTC, OKX.margin, p1, F(27_100))
    assert t.defined is True and t.price == 27_000 and t.cash == 0
    assert L.compute_user_loss_units(BTC, p1, t.price) == 3_000 * U


@pytest.mark.rules("LIQ-008")
def test_LIQ_008_cross_two_instruments_healthy_then_full():
    ips = ((BTC, PositionTerms(1, F(100), F(30_000), 0)), (ETH, PositionTerms(-1, F(100), F(2_000), 0)))
    bal = 10_000 * U
    assert L.compute_cross_equity(ips, bal, (F(25_000), F(2_300))) == 2_000 * U
    assert L.compute_cross_requirement(ips, OKX.margin, (F(25_000), F(2_300))) == 216 * U
    assert L.decide_cross_action(ips, OKX.margin, OKX.liquidation, bal, (F(25_000), F(2_300))) == L.NONE
    marks = (F(23_200), F(2_300))
    assert L.compute_cross_requirement(ips, OKX.margin, marks) == F(207_900_000)
    assert L.decide_cross_action(ips, OKX.margin, OKX.liquidation, bal, marks) == L.FULL


@pytest.mark.rules("LIQ-009", "INV-023")
def test_LIQ_009_cross_shares_and_bankruptcy_prices():
    ips = ((BTC, PositionTerms(1, F(100), F(30_000), 0)), (ETH, PositionTerms(-1, F(100), F(2_000), 0)))
    marks = (F(23_200), F(2_300))
    bal = 10_000 * U
    shares = L.compute_cross_shares(ips, bal, marks)
    assert shares == ((6_800 + F(23_200, 231)) * U, (3_000 + F(23_000, 231)) * U)
    assert sum(shares) == bal
    t_btc, t_eth = L.compute_cross_takeovers(ips, OKX.margin, bal, marks)
    assert t_btc.price == F(23_200) * F(230, 231) and t_eth.price == F(2_300) * F(232, 231)
    after = L.apply_cross_liquidation((("BTC", 5), ("USDT", bal), ("ETH", 7)), "USDT")
    assert after == (("BTC", 5), ("USDT", 0), ("ETH", 7))


@pytest.mark.rules("LIQ-009", "LIQ-007", "LIQ-002")
def test_LIQ_009_under_water_the_down_side_leg_is_taken_at_its_mark_and_the_up_side_leg_carries_the_loss():
    # C51, by hand: long 100 BTC-USDT-SWAP (1 BTC) at 30,000 marked 1,000: upl -29,000, V 1,000; short
    # 100 ETH-USDT-SWAP (10 ETH) at 2,000 marked 4,000: upl -20,000, V 40,000; balance 1,000.
    # E = 1,000 - 49,000 = -48,000 <= -(1,000 + 40,000): under water.  The proportional ETH share
    # would give it equity -48,000 x 40/41 < -40,000 = -V: no bankruptcy price (the defect).
    ips = ((BTC, PositionTerms(1, F(100), F(30_000), 0)), (ETH, PositionTerms(-1, F(100), F(2_000), 0)))
    marks = (F(1_000), F(4_000))
    bal = 1_000 * U
    assert L.is_cross_under_water(ips, bal, marks) is True
    prop = L.compute_cross_shares(ips, bal, marks)
    assert not L.compute_full_takeover(ETH, OKX.margin, PositionTerms(-1, F(100), F(2_000), prop[1]), marks[1]).defined
    # ETH (down-side) equity 0 at its mark: share = 20,000; BTC (up-side) equity E: share = -48,000 + 29,000
    assert L.compute_cross_full_shares(ips, OKX.margin, bal, marks) == (-19_000 * U, 20_000 * U)
    t_btc, t_eth = L.compute_cross_takeovers(ips, OKX.margin, bal, marks)
    assert (t_eth.defined, t_eth.price, t_eth.cash) == (True, 4_000, 0)
    # BTC's bankruptcy price: -48,000 + 1 x (p - 1,000) = 0, p = 49,000, past its mark
    assert (t_btc.defined, t_btc.price, t_btc.cash) == (True, 49_000, 0)
    assert t_btc.user_loss_units + t_eth.user_loss_units == bal


@pytest.mark.rules("LIQ-009", "LIQ-002")
def test_LIQ_009_under_water_with_the_bankruptcy_fee_the_down_side_leg_keeps_its_fee_at_the_mark():
    # The same account with margin.bankruptcy_includes_close_fee (r = 0.0005): ETH's equity at its mark
    # is its fee there, 40,000 x r = 20, so ETH's share is 20,020 and its bankruptcy price is the
    # mark; BTC carries E - 20 = -48,020: share -19,020; its price solves -48,020 + (p - 1,000) = p r:
    # p = 49,020 / 0.9995.
    import dataclasses
    rules = dataclasses.replace(OKX.margin, bankruptcy_includes_close_fee=True)
    ips = ((BTC, PositionTerms(1, F(100), F(30_000), 0)), (ETH, PositionTerms(-1, F(100), F(2_000), 0)))
    marks = (F(1_000), F(4_000))
    assert L.compute_cross_full_shares(ips, rules, 1_000 * U, marks) == (-19_020 * U, 20_020 * U)
    t_btc, t_eth = L.compute_cross_takeovers(ips, rules, 1_000 * U, marks)
    assert (t_eth.price, t_eth.cash, t_eth.close_fee) == (4_000, 0, 20 * U)
    assert (t_btc.price, t_btc.cash) == (F(49_020) / F("0.9995"), 0)


@pytest.mark.rules("LIQ-009")
def test_LIQ_009_not_under_water_the_full_shares_are_the_proportional_ones():
    # LIQ-009's worked example (E = 200 > -46,200): the full shares are the proportional ones
    ips = ((BTC, PositionTerms(1, F(100), F(30_000), 0)), (ETH, PositionTerms(-1, F(100), F(2_000), 0)))
    marks = (F(23_200), F(2_300))
    assert L.is_cross_under_water(ips, 10_000 * U, marks) is False
    assert L.compute_cross_full_shares(ips, OKX.margin, 10_000 * U, marks) == (
        (6_800 + F(23_200, 231)) * U, (3_000 + F(23_000, 231)) * U)


@pytest.mark.rules("ENG-001")
def test_ENG_001_walk_rounds_levels_down_to_the_lot_and_keeps_a_remainder():
    levels = (E.Level(F(29_000), F("100.005")), E.Level(F(28_990), F(100)), E.Level(F(28_900), F(30)))
    fills, rem = E.walk_book(BTC, F(250), levels)
    assert [f.size for f in fills] == [100, 100, 30] and rem == 20


@pytest.mark.rules("ENG-002", "ENG-004")
def test_ENG_002_surplus_of_p1s_engine_close():
    levels = (E.Level(F(27_050), F(60)), E.Level(F(26_990), F(40)))
    c = E.close_position(BTC, OKX.liquidation, 1, F(100), F(27_000), levels)
    assert c.result_units == 26 * U and c.remainder == 0 and c.fund_units == 26 * U and c.venue_units == 0


def test_ENG_002_one_close_at_exactly_the_bankruptcy_price_is_not_a_deficit():
    # An inverse position whose bankruptcy price is not a tick value: per-fill rounding would lose units.
    pos = PositionTerms(1, F(7), F(30_000), 3_000_000)
    bp = M.compute_bankruptcy_price(INV, OKX.margin, pos).get()
    fills = (E.Fill(F(3), bp), E.Fill(F(4), bp))
    assert E.compute_close_result_units(INV, 1, bp, fills) == 0


@pytest.mark.rules("ENG-003")
def test_ENG_003_fee_only_out_of_a_surplus():
    import dataclasses
    lr = dataclasses.replace(OKX.liquidation, liquidation_fee_rate=F(1, 1000), fee_receiver=type(OKX.liquidation.fee_receiver)("venue"))
    fills = (E.Fill(F(100), F(27_050)),)
    # value 27,050 USDT -> fee 27.05 USDT, but the surplus is 50 USDT: paid in full
    assert E.compute_liquidation_fee_units(BTC, lr, fills, 50 * U) == 27_050_000
    # surplus 10 USDT: the fee is capped at it; a deficit pays none
    assert E.compute_liquidation_fee_units(BTC, lr, fills, 10 * U) == 10 * U
    assert E.compute_liquidation_fee_units(BTC, lr, fills, -5 * U) == 0
    c = E.close_position(BTC, lr, 1, F(100), F(27_000), (E.Level(F(27_050), F(100)),))
    assert (c.fund_units, c.venue_units) == (50 * U - 27_050_000, 27_050_000)


@pytest.mark.rules("ENG-005", "INV-022")
def test_ENG_005_full_liquidation_balances_to_the_unit():
    p1 = PositionTerms(1, F(100), F(30_000), 3_000 * U)
    t = L.compute_full_takeover(BTC, OKX.margin, p1, F(27_100))
    c = E.close_position(BTC, OKX.liquidation, 1, p1.size, t.price,
                         (E.Level(F("26990.3"), F("33.33")), E.Level(F(26_900), F(50))))
    # fills 33.33 + 50 contracts; 16.67 contracts stay open
    assert c.remainder == F("16.67")
    cp = E.compute_counterparty_pnl(BTC, 1, F(30_000), c.fills)
    carried = M.compute_unrealized_pnl(BTC, PositionTerms(1, c.remainder, F(30_000), 0), t.price)
    assert -3_000 * U + cp + c.fund_units + c.venue_units + c.dust - carried == 0
    # by hand: engine PnL 0.3333 * (-9.7) + 0.5 * (-100) = -53.23301 USDT -> -53.233010 (exact)
    assert c.pnl == F("-53.23301") * U and c.result_units == -53_233_010
