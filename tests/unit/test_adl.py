"""Unit tests of the ADL rules: the worked examples of spec/40-adl.md, computed by hand there and
restated here as exact numbers, plus the edge cases (empty history, zero peak, disabled trigger,
no candidates, the liquidated account's own position, the fund that cannot pay the gap)."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from backstop.reference import adl as A
from backstop.reference import margin as M
from backstop.reference.events import BalancePoint as B
from backstop.reference.profile import AdlPrice, load_profile
from backstop.reference.types import PositionTerms as P

H = 3_600_000  # one hour in ms
USDT = 10 ** 6  # okx USDT scale


@pytest.fixture(scope="module")
def okx():
    return load_profile("okx")


@pytest.fixture(scope="module")
def binance():
    return load_profile("binance")


# the history of the worked example "D" (balances in USDT units)
HIST = (B(0, 1000 * USDT), B(1 * H, 1500 * USDT), B(5 * H, 1200 * USDT), B(9 * H, 1040 * USDT))


# ---------------------------------------------------------------- ADL-001

def test_ADL_001_worked_example_drawdown(okx):
    r = okx.adl
    assert A.compute_window_start(r, 9 * H) == 1 * H
    assert A.compute_balance_at(HIST, 9 * H) == (True, 1040 * USDT)
    # the 1h point is in force at the window's start (at or before it): it counts
    assert A.compute_window_peak(r, HIST, 9 * H) == (True, 1500 * USDT)
    assert A.compute_drawdown_threshold(r, 1500 * USDT) == 1050 * USDT
    assert A.is_drawdown_trigger(r, HIST, 9 * H) is True
    assert A.is_drawdown_trigger(r, HIST, 10 * H) is True            # 1h peak still in force at 2h
    assert A.is_drawdown_trigger(r, HIST, 13 * H - 1) is True
    assert A.compute_window_peak(r, HIST, 13 * H) == (True, 1200 * USDT)
    assert A.is_drawdown_trigger(r, HIST, 13 * H) is False            # 1,040 > 0.7 x 1,200 = 840
    assert A.is_drawdown_trigger(r, HIST, 8 * H) is False             # current 1,200 > 1,050


def test_ADL_001_exact_threshold_counts(okx):
    h = (B(0, 1000), B(1, 700))
    assert A.is_drawdown_trigger(okx.adl, h, 1) is True        # 700 <= 0.7 x 1000: "at or below"
    h2 = (B(0, 1000), B(1, 701))
    assert A.is_drawdown_trigger(okx.adl, h2, 1) is False


def test_ADL_001_empty_and_zero_histories(okx):
    assert A.is_drawdown_trigger(okx.adl, (), 5 * H) is False
    assert A.compute_window_peak(okx.adl, (), 5 * H) == (False, 0)
    assert A.is_drawdown_trigger(okx.adl, (B(0, 0), B(H, 0)), 2 * H) is False
    # a history that starts after now: no balance in force yet
    assert A.is_drawdown_trigger(okx.adl, (B(10 * H, 100),), 5 * H) is False
    # points after now are ignored
    assert A.is_drawdown_trigger(okx.adl, (B(0, 1000), B(2 * H, 100)), H) is False


def test_ADL_001_disabled_when_fraction_is_one(binance):
    assert binance.adl.drawdown_fraction == 1
    assert A.is_drawdown_trigger(binance.adl, (B(0, 1000), B(1, 0)), 1) is False


def test_ADL_001_old_peak_leaves_the_window(okx):
    # the peak at 0h leaves the window at 8h + 1ms only once a later point is in force at the start
    h = (B(0, 1000), B(1, 600))
    assert A.is_drawdown_trigger(okx.adl, h, 8 * H) is True       # start = 0: the 0h point is in force
    assert A.is_drawdown_trigger(okx.adl, h, 8 * H + 1) is False  # start = 1ms: 600 in force, peak 600


# ---------------------------------------------------------------- ADL-002 / ADL-003

def test_ADL_002_fund_insufficient():
    assert A.is_fund_insufficient(1, 0) is True
    assert A.is_fund_insufficient(0, F(1, 100)) is True
    assert A.is_fund_insufficient(0, 0) is False


def test_ADL_003_fires_only_with_a_trigger_and_a_remainder(okx):
    r = okx.adl
    assert A.adl_fires(r, HIST, 9 * H, 0, 0, F(120)) is True        # trigger (b)
    assert A.adl_fires(r, HIST, 9 * H, 0, 0, 0) is False            # nothing to settle
    assert A.adl_fires(r, HIST, 13 * H, 0, 0, F(120)) is False      # no trigger
    assert A.adl_fires(r, HIST, 13 * H, 5, 0, F(120)) is True       # trigger (a)


def test_ADL_003_state_ends_when_no_trigger_and_no_open_remainder():
    assert A.adl_state_continues(True, False, False, F(3)) is True
    assert A.adl_state_continues(True, False, False, 0) is False
    assert A.adl_state_continues(False, False, False, F(3)) is False
    assert A.adl_state_continues(False, False, True, 0) is True


# ---------------------------------------------------------------- ADL-004 / ADL-005

INST = "BTC-USDT-SWAP"
POS_A = P(-1, F(50), F(30000), 1500 * USDT)
POS_B = P(-1, F(100), F(32000), 3200 * USDT)
POS_C = P(-1, F(40), F(26000), 1040 * USDT)
POS_L = P(1, F(100), F(30000), 3000 * USDT)      # the liquidated account's own long
POS_D = P(1, F(10), F(27500), 500 * USDT)        # another long: same side as the remainder
MARK = F(27000)


def test_ADL_004_worked_scores(okx):
    inst = okx.instruments[INST]
    s = lambda pos: A.compute_adl_score(inst, okx.margin, okx.adl, pos, MARK)  # noqa: E731
    assert A.compute_pnl_fraction(inst, POS_A, MARK) == F(1, 10)
    assert A.compute_effective_leverage(inst, POS_A, MARK) == F(9, 2)
    assert s(POS_A) == F(9, 20)
    assert A.compute_pnl_fraction(inst, POS_B, MARK) == F(5, 32)
    assert A.compute_effective_leverage(inst, POS_B, MARK) == F(135, 41)
    assert s(POS_B) == F(675, 1312)
    assert s(POS_C) == F(-4, 1755)                 # losing: PnL% / leverage


def test_ADL_004_binance_score(binance):
    inst = binance.instruments["BTCUSDT"]
    pos = P(-1, F(1, 2), F(30000), 1500 * 10 ** 8)
    assert M.compute_maintenance_margin(inst, binance.margin, pos, MARK) == 54 * 10 ** 8
    assert A.compute_adl_score(inst, binance.margin, binance.adl, pos, MARK) == F(9, 500)
    losing = P(1, F(1, 2), F(30000), 1500 * 10 ** 8)
    assert A.compute_adl_score(inst, binance.margin, binance.adl, losing, MARK) == 0


def test_ADL_005_order_and_buckets():
    assert A.is_ranked_before(F(1), ("B", "X"), F(1, 2), ("A", "X")) is True
    assert A.is_ranked_before(F(1), ("A", "X"), F(1), ("B", "X")) is True
    assert A.is_ranked_before(F(1), ("B", "X"), F(1), ("A", "X")) is False
    assert A.is_ranked_before(F(1), ("A", "X"), F(1), ("A", "Y")) is True
    assert [A.compute_adl_bucket(i, 3) for i in range(3)] == [5, 4, 2]
    assert [A.compute_adl_bucket(i, 6) for i in range(6)] == [5, 5, 4, 3, 2, 1]
    assert [A.compute_adl_bucket(i, 10) for i in range(10)] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert A.compute_adl_bucket(0, 1) == 5


# ---------------------------------------------------------------- ADL-006

def test_ADL_006_allocation_greedy():
    assert A.allocate_adl(F(120), (F(100), F(50), F(40)), (True, True, True), F(1, 100)) == (F(100), F(20), 0)
    assert A.allocate_adl(F(500), (F(100), F(50), F(40)), (True, True, True), F(1, 100)) == (F(100), F(50), F(40))
    assert A.allocate_adl(F(120), (F(100), F(50), F(40)), (True, False, True), F(1, 100)) == (F(100), 0, F(20))
    assert A.compute_adl_prefixes((F(100), F(20), 0)) == (0, F(100), F(120))


def test_ADL_006_candidates():
    assert A.is_adl_candidate(1, "L", -1, F(5), "A") is True
    assert A.is_adl_candidate(1, "L", -1, F(5), "L") is False   # the liquidated account never
    assert A.is_adl_candidate(1, "L", 1, F(5), "A") is False    # same side
    assert A.is_adl_candidate(1, "L", -1, 0, "A") is False


# ---------------------------------------------------------------- ADL-007 .. ADL-009 and the plumbing

def _cands():
    return tuple(A.RankEntry(a, INST, p) for a, p in
                 (("A", POS_A), ("B", POS_B), ("C", POS_C), ("L", P(-1, F(7), F(31000), 700 * USDT)), ("D", POS_D)))


def test_ADL_007_execution_price(okx, binance):
    assert A.compute_adl_price(okx.adl, MARK, F(27300)) == MARK
    assert A.compute_adl_price(binance.adl, MARK, F(27300)) == F(27300)


def test_ADL_007_worked_example_fund_pays_the_whole_gap(okx):
    inst = okx.instruments[INST]
    assert A.compute_adl_gap(inst, 1, F(120), F(27300), MARK) == -360 * USDT
    out = A.execute_adl(inst, okx.margin, okx.adl, liquidated_account="L", liquidated_sign=1, remainder=F(120),
                        bankruptcy_price=F(27300), mark=MARK, fund_available=1000 * USDT, candidates=_cands(),
                        time_ms=9 * H, fund="perpetual_futures/BTC-USDT/USDT")
    assert [(r.account, r.rank, r.bucket, r.reduction) for r in out.results] == \
        [("B", 0, 5, F(100)), ("A", 1, 4, F(20)), ("C", 2, 2, 0)]
    b, a = out.results[0], out.results[1]
    assert (b.realized_units, b.released_units, b.new_position.size) == (5000 * USDT, 3200 * USDT, 0)
    assert (a.realized_units, a.released_units) == (600 * USDT, 600 * USDT)
    assert (a.new_position.size, a.new_position.margin) == (F(30), 900 * USDT)
    assert out.mark_quantity == F(120) and out.fund_result_units == -360 * USDT
    assert [r.account for r in out.records] == ["B", "A"]
    rec = out.records[1]
    assert rec.kind == "adl" and rec.get("type") == "Auto-Deleveraging"
    assert rec.get("reduced_size") == F(20) and rec.get("mark_price") == MARK
    assert "ADL-008" in rec.rules


def test_ADL_007_worked_example_fund_cannot_pay_it_all(okx):
    inst = okx.instruments[INST]
    q = A.compute_adl_mark_quantity(inst, okx.adl, 1, F(120), F(27300), MARK, 200 * USDT)
    assert q == F(6666, 100)
    out = A.execute_adl(inst, okx.margin, okx.adl, liquidated_account="L", liquidated_sign=1, remainder=F(120),
                        bankruptcy_price=F(27300), mark=MARK, fund_available=200 * USDT, candidates=_cands())
    b, a = out.results[0], out.results[1]
    assert (b.at_mark, b.reduction - b.at_mark) == (F(6666, 100), F(3334, 100))
    assert (a.at_mark, a.reduction - a.at_mark) == (0, F(20))
    assert b.realized_units == 4_899_980_000 and a.realized_units == 540 * USDT
    assert out.fund_result_units == -199_980_000
    cash = b.realized_units + a.realized_units + out.fund_result_units
    assert cash == 5240 * USDT          # the same as with the fund paying everything: nothing is created


def test_ADL_007_bankruptcy_profile_puts_nothing_at_mark(binance):
    inst = binance.instruments["BTCUSDT"]
    assert A.compute_adl_mark_quantity(inst, binance.adl, 1, F(3), F(27300), MARK, 10 ** 15) == 0


def test_ADL_007_no_deficit_everything_at_mark(okx):
    inst = okx.instruments[INST]
    # mark above the long remainder's bankruptcy price: a surplus for the fund
    assert A.compute_adl_mark_quantity(inst, okx.adl, 1, F(120), F(26000), MARK, 0) == F(120)
    assert A.compute_adl_fund_result(inst, 1, F(120), F(26000), MARK) == 1200 * USDT


def test_ADL_008_margin_release_rounds_down(okx):
    inst = okx.instruments[INST]
    realized, released, new = A.settle_adl_counterparty(inst, P(-1, F(3), F(30000), 1000), F(1), F(1), MARK, MARK)
    assert released == 333 and new.margin == 667      # 1000 / 3 = 333.33 -> 333 released
    assert realized == 30_000_000


def test_ADL_009_inverse_rounding_goes_to_the_venue(okx):
    inst = okx.instruments["BTC-USD-SWAP"]
    pos = P(-1, F(300), F(30000), 10_000_000)
    realized, _, _ = A.settle_adl_counterparty(inst, pos, F(7), F(7), F(28000), F(28100))
    exact = M.compute_unrealized_pnl(inst, P(-1, F(7), F(30000), 0), F(28000))
    assert exact == F(500_000, 3)                     # 7 * 100 * 10^8 * (1/28000 - 1/30000)
    assert realized == 166_666 == M.compute_realized_pnl_units(inst, P(-1, F(7), F(30000), 0), F(28000))
    assert realized <= exact < realized + 1
