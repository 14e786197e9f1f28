"""The domain of the wide whole-loop obligation (INV-025, proofs/loop_wide.py) really exercises what
it claims to: a partial step at tier 3, a full cross liquidation on two instruments, ADL by trigger
(a), ADL by trigger (b), and the claim holds on each of those concrete runs.  The numbers are
derived by hand in each docstring (okx: BTC-USDT-SWAP P, ETH-USDT-SWAP Q; E = 20,000)."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from backstop.proofs.loop_wide import CrossOnlyScenario, WideScenario, wide_instruments
from backstop.reference.profile import load_profile

OKX = load_profile("okx")
U = 10**6


def _run(prices, fund_usdt, cash_x=0, entry_xq=WideScenario.ENTRY_XQ):
    sc = WideScenario(OKX, wide_instruments(OKX))
    row = WideScenario.GRID.index(WideScenario.PRICES[prices] + (fund_usdt, cash_x, entry_xq))
    values = {"price path": row, "cash H": 0, "cash S": 0, "cash D": 7 * U}
    out = sc.run(values)
    return sc, out, [[r.kind for r in recs] for recs in out["records"]], out["records"]


@pytest.mark.rules("INV-025", "TRN-003")
def test_INV_025_row_0_takes_a_partial_step_at_tier_3():
    """Price row 0, mark 19,800: H holds 3,000.01 contracts = 30.0001 BTC (notional 600,002 USDT,
    margin 2 %: 12,000.04); its equity 12,000.04 - 30.0001 x 200 = 6,000.02 is at or below its
    tier-3 requirement 1.05 % x 594,001.98 = 6,237.02 but above tier 1's 0.45 % x 594,001.98 =
    2,673.01: one partial step, to tier 1."""
    sc, out, kinds, recs = _run(0, 1_000)
    (step,) = [r for r in recs[0] if r.kind == "partial liquidation"]
    assert (step.account, step.get("tier_before"), step.get("tier_after")) == ("H", 3, 1)
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "TRN-004")
def test_INV_025_a_rise_takes_the_cross_account_through_a_partial_round():
    """Price row 3, second mark 21,000, X's cash 54,000: X is short 30.0001 BTC of P from 19,700
    (UPnL -30.0001 x 1,300 = -39,000.13) and long 100 ETH of Q from 1,100 marked 1,000 (-10,000):
    equity 4,999.87.  Requirements: P at tier 3, 1.05 % x 630,002.1 = 6,615.02, Q at tier 1, 0.45 %
    x 100,000 = 450: 7,065.02 >= 4,999.87; at tier-1 rates 2,835.01 + 450 = 3,285.01 < 4,999.87:
    PARTIAL, and only P (tier 3) is a candidate: cut to tier 1 (500 contracts)."""
    sc, out, kinds, recs = _run(3, 1_000, cash_x=54_000)
    parts = [r for r in recs[1] if r.kind == "partial liquidation" and r.account == "X"]
    assert [(r.instrument, r.get("tier_before"), r.get("new_size")) for r in parts] == [("BTC-USDT-SWAP", 3, 500)]
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "LIQ-008", "TRN-004")
def test_INV_025_a_refused_cross_partial_round_liquidates_the_cross_account_in_full():
    """OBL-INV-025f's rows: X long 100 ETH of Q bought at 550 (marked 1,000: +45,000), no cash.  Price
    row 3, second mark 21,000: P's UPnL -30.0001 x 1,300 = -39,000.13, equity 5,999.87; requirement
    6,615.02 + 450 = 7,065.02 (as the partial-round test above) >= 5,999.87 > 3,285.01 at tier-1 rates:
    PARTIAL.  The step cuts P to tier 1 (500 contracts): 25.0001 BTC reduced, realized
    -25.0001 x 1,300 = -32,500.13 and fee 25.0001 x 21,000 x 0.05 % = 262.50105, so the balance would
    be 0 - 32,500.13 - 262.50105 = -32,762.63105 < 0: the round is refused and X is liquidated in full
    on both instruments, its balance 0 (the Q profit was its margin)."""
    sc, out, kinds, recs = _run(3, 1_000, entry_xq=WideScenario.ENTRY_XQ_PROFIT)
    assert WideScenario.GRID.index(WideScenario.PRICES[3] + (1_000, 0, F(550))) in WideScenario.ROWS["f"]
    (trig,) = [r for r in recs[1] if r.kind == "liquidation trigger" and r.account == "X"]
    assert (trig.get("action"), trig.get("equity"), trig.get("balance")) == ("partial", 5_999_870_000, 0)
    (ref,) = [r for r in recs[1] if r.kind == "cross partial refused"]
    assert (ref.account, ref.get("balance"), ref.get("balance_after")) == ("X", 0, -32_762_631_050)
    assert sorted(r.instrument for r in recs[1] if r.kind == "full liquidation" and r.account == "X") == \
        ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    assert not [r for r in recs[1] if r.kind == "partial liquidation" and r.account == "X"]
    x = {a.id: a for a in out["states"][-1].accounts}["X"]
    assert (x.balance("USDT"), x.positions) == (0, ())
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "TRN-001", "LIQ-008")
def test_INV_025_a_cross_account_holding_only_P_is_picked_at_the_P_mark_and_liquidated():
    """OBL-INV-025g's row 52 (price row 3, fund 1,000 USDT, X's cash 0) with Y: cross short 500
    contracts = 5 BTC of P at 20,000, no cash.  Mark 21,000: equity 0 + 5 x (20,000 - 21,000) =
    -5,000 <= the tier-1 requirement 0.45 % x 105,000 = 472.50: full; with a zero balance the
    bankruptcy price is the entry, 20,000, and Y loses its (zero) balance."""
    sc = CrossOnlyScenario(OKX, wide_instruments(OKX))
    row = WideScenario.GRID.index(WideScenario.PRICES[3] + (1_000, 0, WideScenario.ENTRY_XQ))
    assert row in CrossOnlyScenario.G_ROWS
    out = sc.run({"price path": row, "cash H": 0, "cash S": 0, "cash D": 7 * U})
    (trig,) = [r for r in out["records"][1] if r.kind == "liquidation trigger" and r.account == "Y"]
    assert (trig.get("action"), trig.get("equity"), trig.get("requirement")) == ("full", -5_000 * U, 472_500_000)
    (full,) = [r for r in out["records"][1] if r.kind == "full liquidation" and r.account == "Y"]
    assert (full.get("size"), full.get("takeover_price")) == (500, 20_000)
    y = {a.id: a for a in out["states"][-1].accounts}["Y"]
    assert (y.balance("USDT"), y.positions) == (0, ())
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "LIQ-009")
def test_INV_025_row_4_liquidates_the_cross_account_on_both_instruments():
    """Price row 4, mark 24,000, X's cash 0: UPnL -30.0001 x 4,300 - 10,000 = -139,000.43: below
    any requirement: full, both instruments."""
    sc, out, kinds, recs = _run(4, 1_000)
    assert sorted(r.instrument for r in recs[0] if r.kind == "full liquidation" and r.account == "X") == \
        ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "TRN-008")
def test_INV_025_trigger_a_deleverages_X_at_the_bankruptcy_price_and_the_recheck_liquidates_it():
    """Price row 2, mark 18,000, bid 14,000, empty fund, X's cash 0.  H's bankruptcy price is
    20,000 - 12,000.04 / 30.0001 = 19,600; the empty fund pays no loss, so nothing fills, and
    closing the remainder at the mark would lose 30.0001 x 1,600 = 48,000.16 USDT it cannot cover:
    trigger (a).  X ranks before S (ADL-004: both shorts in profit; X's PnL% 1,700 / 19,700 =
    8.6 % times its leverage 540,001.8 / 51,000.17 = 10.6, S's 10 % times 90,000 / 30,000 = 3) and
    takes the whole remainder; with nothing available all of it executes at the bankruptcy price
    (ADL-007): X realizes 30.0001 x (19,700 - 19,600) = 3,000.01 USDT instead of 51,000.17 at the
    mark.  Its balance 3,000.01 against its Q leg's -10,000: the re-check (TRN-008) liquidates X."""
    sc, out, kinds, recs = _run(2, 0)
    trig = [r for r in recs[0] if r.kind == "adl trigger"][0]
    assert trig.get("uncovered") == 48_000_160_000 and trig.get("drawdown") is False
    assert [(r.account, r.get("reduced_size")) for r in recs[0] if r.kind == "adl"] == [("X", F("3000.01"))]
    assert [r.get("realized_pnl") for r in recs[0] if r.kind == "adl"] == [3_000_010_000]
    assert [r.instrument for r in recs[0] if r.kind == "full liquidation" and r.account == "X"] == ["ETH-USDT-SWAP"]
    assert out["states"][1].is_adl_active(sc.fund)
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "ADL-001")
def test_INV_025_row_2_with_a_mid_fund_deleverages_by_trigger_b_after_the_settlement():
    """Price row 2 with 80,000 USDT: at 18,000 the engine sells 500 contracts (5 BTC) into the bid at
    14,000, a loss of 5 x 5,600 = 28,000 USDT the fund pays from its pending balance; the rest,
    2,500.01 contracts, would lose 25.0001 x 1,600 = 40,000.16 at the mark, less than the 52,000
    left: no ADL.  The second mark falls after 16:00 HKT: the settlement moves the 28,000 into the
    settled balance, 52,000 <= 70 % of 80,000 = 56,000: the drawdown trigger (b) holds, and the
    remainder goes to ADL without another try in the market."""
    sc, out, kinds, recs = _run(2, 80_000)
    assert "adl trigger" not in kinds[0]
    trig = [r for r in recs[1] if r.kind == "adl trigger"][0]
    assert trig.get("drawdown") is True and trig.get("uncovered") == 0
    assert "engine fill" not in kinds[1]
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "TRN-005", "INS-006", "INS-007")
def test_INV_025_events_domain_a_book_event_refills_the_bids_the_remainder_retries_and_the_fund_events_move_the_settled_balance():
    """OBL-INV-025e's row 47 (price row 2, fund and X's cash 10,000,000 USDT).  Mark 18,000: H's
    3,000.01 contracts go to the engine at its bankruptcy price 19,600; 500 sell into the bid at
    14,000, a loss of 500 x 0.01 BTC x 5,600 = 28,000 USDT paid from the pending balance; 2,500.01
    stay open (the fund covers them: no ADL).  The book event refills the bid with 3,000.01 at
    14,000: the remainder is retried (TRN-005) and closes whole, 25.0001 BTC x 5,600 = 140,000.56
    more, pending -168,000.56.  The top-up adds 5,000 to the settled balance (10,005,000); the
    second mark settles the window: 10,005,000 - 168,000.56 = 9,836,999.44 settled, 0 pending;
    the withdrawal takes 1,000: 9,835,999.44."""
    from backstop.proofs.loop_wide import EventsScenario
    from backstop.reference import fundbook as FB

    sc = EventsScenario(OKX, wide_instruments(OKX))
    out = sc.run({"price path": 47, "cash H": 0, "cash S": 0, "cash D": 0})
    fills = [[(r.get("size"), r.get("price")) for r in recs if r.kind == "engine fill"] for recs in out["records"]]
    assert fills == [[(500, 14_000)], [(F("2500.01"), 14_000)], [], [], []]
    assert [r.get("why") for r in out["records"][1] if r.kind == "engine close"] == ["retry"]
    assert [[x.size for x in st.remainders] for st in out["states"][1:3]] == [[F("2500.01")], []]
    settled = [FB.settled_balance(st.funds, sc.fund) for st in out["states"][1:]]
    pending = [FB.pending_balance(st.funds, sc.fund) for st in out["states"][1:]]
    assert settled == [10_000_000 * U, 10_000_000 * U, 10_005_000 * U, 9_836_999_440_000, 9_835_999_440_000]
    assert pending == [-28_000 * U, -168_000_560_000, -168_000_560_000, 0, 0]
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025")
def test_INV_025_the_plumbing_claims_fail_on_a_book_that_keeps_an_emptied_level():
    """Claim item 8 is not vacuous: the run of row 47 with an empty bid level left in the book
    after the first mark (what the planted `lv.size >= 0` in _consume does) breaks the claim."""
    import dataclasses

    from backstop.reference import step as S
    from backstop.reference.engine import Level

    sc = WideScenario(OKX, wide_instruments(OKX))
    out = sc.run({"price path": 47, "cash H": 0, "cash S": 0, "cash D": 0})
    assert sc.claim(out, symbolic=False) is True
    st = out["states"][1]
    book = st.book(sc.p.id)
    bad = dataclasses.replace(st, books=((sc.p.id, S.Book((Level(F(14_000), F(0)),), book.asks)),))
    out["states"][1] = bad
    assert sc.claim(out, symbolic=False) is False


@pytest.mark.rules("INV-025", "LIQ-007", "LIQ-009")
def test_INV_025_a_cross_account_under_water_by_more_than_its_value_keeps_the_books():
    """Issue 13, LIQ-009 (C51): X's Q leg (ETH-USDT-SWAP, long, 100 ETH) bought at 10,000 and marked
    1,000: UPnL 100 x -9,000 = -900,000; no cash; price row 0, mark 19,800: the short P leg's UPnL
    30.0001 x -100 = -3,000.01, so the cross equity is E = -903,000.01, below minus the positions'
    value (594,001.98 + 100,000).  The proportional share would leave the short (down-side) P leg
    without a bankruptcy price.  Under C51 the P leg gets equity 0 at its mark: share = -UPnL =
    3,000.01 USDT, taken over at the mark 19,800 with engine cash 0; the up-side Q leg carries all
    of E: share = balance - 3,000.01 = -3,000.01 USDT, and its bankruptcy price solves
    -903,000.01 + 100 x (p - 1,000) = 0: p = 10,030.0001, past its mark.  No takeover books
    engine cash, so no deficit is left uncovered outside the engine's normal path (the engine's
    closes, the fund, the remainders) and the books balance (INV-022 / INV-025 item 1)."""
    class Deep(WideScenario):
        GRID = (WideScenario.PRICES[0] + (1_000, 0, F(10_000)),)
    sc = Deep(OKX, wide_instruments(OKX))
    out = sc.run({"price path": 0, "cash H": 0, "cash S": 0, "cash D": 0})
    usdt = 10 ** 6  # smallest units per USDT
    legs = {r.instrument: r for r in out["records"][0] if r.kind == "full liquidation" and r.account == "X"}
    p_leg, q_leg = legs["BTC-USDT-SWAP"], legs["ETH-USDT-SWAP"]
    assert (p_leg.get("takeover_price"), p_leg.get("engine_cash"), p_leg.get("margin_share")) == (19_800, 0, F("3000.01") * usdt)
    assert (q_leg.get("takeover_price"), q_leg.get("engine_cash"), q_leg.get("margin_share")) == (F("10030.0001"), 0, F("-3000.01") * usdt)
    assert not [r for r in out["records"][0] if r.kind == "uncovered deficit"]
    assert [r for r in out["records"][0] if r.kind == "bankrupt remainder" and r.account == "X"]  # the loss goes on (ADL's path)
    assert sc.claim(out, symbolic=False) is True
