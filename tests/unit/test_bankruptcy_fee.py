"""LIQ-007 with ``margin.bankruptcy_includes_close_fee`` (LIQ-002's Bybit option): a full liquidation
taken over at the bankruptcy price that leaves the fee to close charges that fee -- valued at that
price -- to the user and books it to the close-fee receiver (rounded DOWN, the fraction to the venue
as dust); the user still loses exactly the margin, and the ledger balances to the last unit.

Expected numbers are derived by hand in the comments (never from the code's output), from the
closed form of the Bybit-style page help.mcs.io/hc/en-us/articles/360040683032 (spec LIQ-002, C42):
long BP = 1.00075 x Qty / (Qty / Entry + balance).  The ledger is checked twice: by hand, and by the
independent valuation of tests/valuation.py (which calls no rule function).
"""

from __future__ import annotations

import json
from fractions import Fraction as F

import pytest

from backstop.cli import evaluate_request
from backstop.jsonio import loads
from backstop.reference import fundbook as FB
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference import step as S
from backstop.reference.engine import Level
from backstop.reference.profile import BalanceView, load_profile_text
from backstop.reference.types import Account, Position, PositionTerms

from valuation import check_transition

BYBIT_FEE_TOML = ('extends = "bybit"\nname = "bybit+bpfee"\n[margin]\nclose_fee_rate = "0.00075"\n'
                  'bankruptcy_includes_close_fee = true\n')
OKX_FEE_TOML = 'extends = "okx"\nname = "okx+bpfee"\n[margin]\nbankruptcy_includes_close_fee = true\n'
BYBIT_FEE = load_profile_text(BYBIT_FEE_TOML)
OKX_FEE = load_profile_text(OKX_FEE_TOML)
BTC_FUND = "perpetual_futures/BTC-USD/BTC"
USDT_FUND = "perpetual_futures/BTC-USDT/USDT"
U6 = 10**6

# ---- the Bybit-style inverse example (spec LIQ-002, LIQ-007), by hand
# long 1,000 BTCUSD (1 USD each) at 8,000, margin 0.0025 BTC = 250,000 units (BTC has 8 decimals), r = 0.00075.
# BP_fee = 1.00075 x 1,000 / (1,000/8,000 + 0.0025) = 1,000.75 / 0.1275 = 400,300/51.
INV_BP = F(400_300, 51)
# value at BP_fee: 1,000 / (400,300/51) = 51,000/400,300 = 510/4,003 BTC = 51,000,000,000/4,003 units;
# the fee to close there: x 0.00075 = 38,250,000/4,003 units = 9,555.3335...: 9,555 to the receiver,
# the fraction 38,250,000 - 9,555 x 4,003 = 38,250,000 - 38,248,665 = 1,335 -> 1,335/4,003 unit of dust.
INV_FEE = F(38_250_000, 4_003)
INV_FEE_UNITS = 9_555
INV_FEE_DUST = F(1_335, 4_003)
# the loss at BP_fee: 1,000 x (1/8,000 - 51/400,300) BTC = 1,000 x 7,700/3,202,400,000 = 962,500,000/4,003 units,
# and loss + fee = 1,000,750,000/4,003 = 250,000 (4,003 x 250,000 = 1,000,750,000): exactly the margin.
INV_LOSS_AT_BP = F(962_500_000, 4_003)
# the engine sells the 1,000 contracts into one bid at 7,850.0: its PnL from BP_fee is
# 10^11 x (51/400,300 - 1/7,850) = 10^11 x (400,350 - 400,300)/(400,300 x 7,850) = 10^11/62,847,100
# = 1,591.1633...: result 1,591 (rounded down, ENG-002), dust 10,263,900/62,847,100 = 102,639/628,471.
INV_RESULT = 1_591
INV_ENGINE_DUST = F(102_639, 628_471)


def _inverse_state(margin_mode="isolated", balance=0, margin=250_000):
    acct = Account("alice", (("BTC", balance),), (Position("BTCUSD", "long", F(1_000), F(8_000), margin_mode, margin),))
    book = S.Book((Level(F(7_850), F(1_000)),), (Level(F(8_100), F(10)),))
    return S.initial_state(BYBIT_FEE, [acct], {"BTCUSD": F(8_000)}, {"BTCUSD": book}, {BTC_FUND: 0}, 0)


def test_the_hand_numbers_of_the_inverse_example_agree():
    # a check of the derivation above, not of the code: loss at BP + fee = the margin, exactly
    assert INV_LOSS_AT_BP + INV_FEE == 250_000
    assert INV_FEE_UNITS + INV_FEE_DUST == INV_FEE
    assert INV_RESULT + INV_ENGINE_DUST == F(10**11, 62_847_100)


@pytest.mark.rules("LIQ-007", "LIQ-002", "INV-021", "INV-022", "ENG-005")
def test_LIQ_007_full_isolated_liquidation_books_the_fee_the_bybit_bankruptcy_price_leaves():
    # at mark 7,800 the equity 250,000 - 10^11 x (1/7,800 - 1/8,000) = 250,000 - 320,512.8... < 0 is
    # below the entry-valued requirement 0.125 x 0.00575 BTC = 71,875 units: FULL (bybit has no partial).
    st0 = _inverse_state()
    ev = S.MarkEvent(1_000, "BTCUSD", F(7_800))
    st1, recs = S.process_event(st0, ev)
    full = next(r for r in recs if r.kind == "full liquidation")
    assert full.get("takeover_price") == INV_BP and full.get("user_loss") == 250_000
    (fee,) = [r for r in recs if r.kind == "liquidation fee"]
    assert (fee.account, fee.get("amount"), fee.get("receiver")) == ("alice", INV_FEE_UNITS, "fund")
    close = next(r for r in recs if r.kind == "engine close")
    assert close.get("result") == INV_RESULT
    # the user loses exactly the margin: the position is gone and the balance untouched
    assert st1.account("alice").positions == () and st1.account("alice").balance("BTC") == 0
    # the fund: the fee and the engine's surplus; the venue: both fractions
    assert FB.available_balance(st1.funds, BTC_FUND, BalanceView.SETTLED_PLUS_PENDING) == INV_FEE_UNITS + INV_RESULT
    assert dict(st1.dust)["BTC"] == INV_FEE_DUST + INV_ENGINE_DUST
    # the ledger to the last unit, by hand: margin = fee units + fee dust + (loss at BP, which the
    # engine's position carries and the outside bid pays back as PnL from BP: result + engine dust
    # is the part the fill recovered)
    assert FB.available_balance(st1.funds, BTC_FUND, BalanceView.SETTLED_PLUS_PENDING) + dict(st1.dust)["BTC"] \
        == INV_FEE + F(10**11, 62_847_100)
    # and by the independent valuation (conservation per currency, loss bound, no socialization)
    assert check_transition(st0, ev, st1, recs) == []
    assert S.check_invariants(st0, st1, recs) == []


@pytest.mark.rules("LIQ-007", "LIQ-002", "INV-021")
def test_LIQ_007_takeover_rule_function_charges_the_fee_at_the_bankruptcy_price():
    inst = BYBIT_FEE.instruments["BTCUSD"]
    pos = PositionTerms(1, F(1_000), F(8_000), 250_000)
    tk = L.compute_full_takeover(inst, BYBIT_FEE.margin, pos, F(7_800))
    assert (tk.price, tk.cash, tk.user_loss_units) == (INV_BP, 0, 250_000)
    assert (tk.close_fee, tk.close_fee_units) == (INV_FEE, INV_FEE_UNITS)
    # INV-021 restated: the realized loss at the takeover price plus the fee charged is the margin:
    # realized = floor(-962,500,000/4,003) = floor(-240,444.666...) = -240,445; 240,445 + 9,555 = 250,000
    assert M.compute_realized_pnl_units(inst, pos, tk.price) == -240_445
    assert L.compute_user_loss_units(inst, pos, tk.price, tk.close_fee_units) == 250_000
    # without the option no fee: the zero-equity price 1,000/0.1275 = 400,000/51
    off = load_profile_text('extends = "bybit"\nname = "bybit+fee"\n[margin]\nclose_fee_rate = "0.00075"\n')
    tk0 = L.compute_full_takeover(inst, off.margin, pos, F(7_800))
    assert (tk0.price, tk0.close_fee, tk0.close_fee_units) == (F(400_000, 51), 0, 0)


@pytest.mark.rules("LIQ-009", "LIQ-007", "LIQ-010", "LIQ-002", "INV-022")
def test_LIQ_009_cross_takeover_with_the_balance_as_margin_is_the_published_cross_form():
    # the page's formula is the cross one: the "Available Balance" is the margin.  One cross long of
    # 1,000 BTCUSD at 8,000 on a balance of 0.0025 BTC: the LIQ-009 share is the whole balance
    # (share = E x V/V - upl = E - upl = balance), so the takeover is at 400,300/51 with the same fee.
    st0 = _inverse_state(margin_mode="cross", balance=250_000, margin=0)
    ev = S.MarkEvent(1_000, "BTCUSD", F(7_800))
    st1, recs = S.process_event(st0, ev)
    full = next(r for r in recs if r.kind == "full liquidation")
    assert full.get("takeover_price") == INV_BP and full.get("margin_share") == 250_000
    (fee,) = [r for r in recs if r.kind == "liquidation fee"]
    assert fee.get("amount") == INV_FEE_UNITS
    assert st1.account("alice").balance("BTC") == 0 and st1.account("alice").positions == ()
    assert dict(st1.dust)["BTC"] == INV_FEE_DUST + INV_ENGINE_DUST
    assert check_transition(st0, ev, st1, recs) == []
    # LIQ-010: the cross bankruptcy price of the position (no other position) is the same price, where
    # the cross equity is the fee to close it: 250,000 - 962,500,000/4,003 = 38,250,000/4,003
    inst = BYBIT_FEE.instruments["BTCUSD"]
    ips = ((inst, PositionTerms(1, F(1_000), F(8_000), 0)),)
    bp = L.compute_cross_bankruptcy_price(ips, BYBIT_FEE.margin, 250_000, (F(7_800),), 0)
    assert bp.get() == INV_BP
    assert L.compute_cross_equity(ips, 250_000, (INV_BP,)) == INV_FEE


# ---- a linear example (okx P1, close fee 0.05%), by hand
# long 100 BTC-USDT-SWAP (1 BTC) at 30,000.0, margin 3,000 USDT; k = 10^6 units per USDT of price.
# BP_fee = (k e - m) / (k (1 - r)) = 27,000 / 0.9995 = 54,000,000/1,999 = 27,013.5067...
LIN_BP = F(54_000_000, 1_999)
# fee to close there: 1 BTC x 54,000,000/1,999 x 0.0005 = 27,000/1,999 USDT = 27,000,000,000/1,999 units
# = 13,506,753.37...: 13,506,753 to the fund (13,506,753 x 1,999 = 26,999,999,247), dust 753/1,999.
LIN_FEE_UNITS = 13_506_753
LIN_FEE_DUST = F(753, 1_999)
# the engine sells 100 contracts at 27,000.0 (the zero-equity bankruptcy price): its PnL from BP_fee is
# 27,000 - 54,000,000/1,999 = -27,000/1,999 USDT -- minus the fee exactly, since BP_fee x (1 - r) = 27,000.
# result floor(-27,000,000,000/1,999) = -13,506,754 (a deficit, rounded down); engine dust
# -27,000,000,000/1,999 + 13,506,754 = 1,246/1,999.  Fund: +13,506,753 - 13,506,754 = -1 unit; the venue's
# dust 753/1,999 + 1,246/1,999 = 1 unit: the fee paid for the loss of closing at 27,000, to the last unit.
LIN_RESULT = -13_506_754
LIN_ENGINE_DUST = F(1_246, 1_999)


@pytest.mark.rules("LIQ-007", "LIQ-002", "INV-021", "INV-022", "ENG-005")
def test_LIQ_007_full_linear_liquidation_books_the_fee_and_balances_to_the_last_unit():
    assert LIN_FEE_UNITS + LIN_FEE_DUST == F(27_000_000_000, 1_999) and LIN_RESULT + LIN_ENGINE_DUST == F(-27 * 10**9, 1_999)
    acct = Account("alice", (("USDT", 0),), (Position("BTC-USDT-SWAP", "long", F(100), F(30_000), "isolated", 3_000 * U6),))
    book = S.Book((Level(F(27_000), F(100)),), (Level(F(27_200), F(10)),))
    st0 = S.initial_state(OKX_FEE, [acct], {"BTC-USDT-SWAP": F(30_000)}, {"BTC-USDT-SWAP": book}, {USDT_FUND: 1_000 * U6}, 0)
    # mark 27,100: equity 3,000 - 2,900 = 100 <= requirement 27,100 x 0.45% = 121.95 USDT, tier 1: FULL
    ev = S.MarkEvent(1_000, "BTC-USDT-SWAP", F(27_100))
    st1, recs = S.process_event(st0, ev)
    full = next(r for r in recs if r.kind == "full liquidation")
    assert full.get("takeover_price") == LIN_BP and full.get("user_loss") == 3_000 * U6
    (fee,) = [r for r in recs if r.kind == "liquidation fee"]
    assert (fee.account, fee.get("amount")) == ("alice", LIN_FEE_UNITS)
    assert next(r for r in recs if r.kind == "engine close").get("result") == LIN_RESULT
    assert st1.account("alice").positions == () and st1.account("alice").balance("USDT") == 0
    assert FB.available_balance(st1.funds, USDT_FUND, BalanceView.SETTLED_PLUS_PENDING) == 1_000 * U6 - 1
    assert dict(st1.dust)["USDT"] == LIN_FEE_DUST + LIN_ENGINE_DUST == 1
    assert check_transition(st0, ev, st1, recs) == []
    assert S.check_invariants(st0, st1, recs) == []


def _ev(req):
    return evaluate_request(loads(json.dumps(req)))


@pytest.mark.rules("LIQ-007", "LIQ-002")
def test_LIQ_007_eval_liquidation_shows_the_fee_with_an_inline_overlay_profile():
    r = _ev({"operation": "liquidation", "profile": {"toml": BYBIT_FEE_TOML},
             "positions": [{"instrument": "BTCUSD", "side": "long", "size": "1000", "entry_price": "8000",
                            "margin": "250000"}],
             "mark_prices": {"BTCUSD": "7800"}})
    tk = r["results"][0]["takeover"]
    assert tk["price"]["value"] == "400300/51"
    assert tk["close_fee"]["value"] == "38250000/4003" and tk["close_fee_units"]["value"] == "9555"
    assert tk["user_loss"]["value"] == "250000"
    # the shipped profile: no fee, the zero-equity price 400,000/51 (close fee rate 0 on bybit)
    r0 = _ev({"operation": "liquidation", "profile": "bybit",
              "positions": [{"instrument": "BTCUSD", "side": "long", "size": "1000", "entry_price": "8000",
                             "margin": "250000"}],
              "mark_prices": {"BTCUSD": "7800"}})
    tk0 = r0["results"][0]["takeover"]
    assert tk0["price"]["value"] == "400000/51" and tk0["close_fee_units"]["value"] == "0"


@pytest.mark.rules("INV-001", "INV-002", "LIQ-002", "LIQ-003")
def test_INV_001_INV_002_with_an_entry_valued_requirement_need_the_fee_premise():
    # spec LIQ-002 "the option with the requirement valued at the entry": bybit (MM at the entry, MMR 0.5%),
    # r = 0.00075; long 1,000 BTCUSD at 8,000 with 1 BTC (10^8 units) of margin.
    # BP_fee = 1,000 x 1.00075 / (1,000/8,000 + 1) = 1,000.75/1.125 = 8,006/9 = 889.55...; the requirement is fixed
    # at 0.125 x (0.005 + 0.00075) = 0.00071875 BTC = 71,875 units, below the fee at BP_fee
    # (1,000/(8,006/9) = 9,000/8,006 BTC) x 0.00075 = 6.75/8,006 BTC = 84,311.7... units, so
    # LP = 1,000/(1.125 - 0.00071875) = 1,000/1.12428125 = 32,000,000/35,977 = 889.457... < BP_fee (INV-002's order
    # fails), and at the mark 889.5 the equity 1.125 - 1,000/889.5 BTC = 77,290.61... units > 71,875:
    # healthy, yet below BP_fee (INV-001's order fails).  Both premises (requirement >= the fee valued there)
    # are false here, as the spec says.
    inst = BYBIT_FEE.instruments["BTCUSD"]
    rules = BYBIT_FEE.margin
    pos = PositionTerms(1, F(1_000), F(8_000), 10**8)
    bp = M.compute_bankruptcy_price(inst, rules, pos).get()
    lp = M.compute_liquidation_price(inst, rules, pos).get()
    assert bp == F(8_006, 9) and lp == F(32_000_000, 35_977) and lp < bp
    mark = F(8_895, 10)
    assert not M.is_liquidatable(inst, rules, pos, mark) and mark < bp
    assert M.compute_liquidation_requirement(inst, rules, pos, mark) == 71_875
    fee_at_mark = F(10**11) / mark * F(75, 100_000)   # value(889.5) x r = 112,422,709.4... x 0.00075 units
    assert M.compute_liquidation_requirement(inst, rules, pos, mark) < fee_at_mark
    # with the requirement valued at the mark (okx: requirement = MM + the fee at the mark) the order holds:
    # the same position shape on okx's inverse BTC-USD-SWAP (100 USD per contract) has LP on the safe side
    okx_inst = OKX_FEE.instruments["BTC-USD-SWAP"]
    okx_pos = PositionTerms(1, F(10), F(8_000), 10**8)
    assert M.compute_liquidation_price(okx_inst, OKX_FEE.margin, okx_pos).get() \
        > M.compute_bankruptcy_price(okx_inst, OKX_FEE.margin, okx_pos).get()
