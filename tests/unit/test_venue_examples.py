"""The binance and bybit profiles against the venues' own published worked examples
(research notes: /tmp/research/venues.md; each source URL is cited next to its example).

The profiles are data only: these tests show that the same rule code, given a venue's
parameters, reproduces that venue's published numbers.  Where a venue states the formula but
not the result, the expected value is evaluated here from that formula with Fractions.

Profile facts used:
  bybit BTCUSDT: linear, 1 BTC per contract, USDT with 8 decimals, tick 0.1, lot 0.001;
  bybit BTCUSD: inverse, 1 USD per contract, BTC with 8 decimals, tick 0.5, lot 1, MMR 0.5%;
  bybit values the maintenance margin at the ENTRY price and has no close fee in the trigger
  (the classic published formula);
  binance BTCUSDT: linear, 1 BTC per contract, USDT with 8 decimals, notional brackets of
  2021-03-18 with maintenance amounts, valued at the MARK price, no close fee.
"""

from __future__ import annotations

import math
from fractions import Fraction as F

import pytest

from backstop.reference import margin as M
from backstop.reference import evaluate as E
from backstop.reference.types import Currency, Instrument, Position, PositionTerms, Tier, TierTable

U = 10**8  # units per USDT and per BTC in both profiles


def T(sign, size, entry, margin):
    return PositionTerms(sign, F(size), F(entry), margin)


# ================================================================ Bybit

# https://testnet.bybit.com/en-US/help-center/s/article/Liquidation-Price-USDT-Contract  [official]
# "Trader A" long 1 BTC @ 20,000 USDT, 50x, MMR 0.5%, no extra margin:
#   IM = 1 x 20,000 / 50 = 400 USDT; MM = 1 x 20,000 x 0.5% - 0 = 100 USDT;
#   LP = 20,000 - (400 - 100) / 1 = 19,700 USDT.
@pytest.mark.rules("LIQ-003", "MRG-005")
def test_bybit_usdt_isolated_long_liquidation_price_19700(bybit):
    inst, rules = bybit.instruments["BTCUSDT"], bybit.margin
    pos = T(1, 1, 20000, 400 * U)  # margin = IM = 400 USDT
    assert M.compute_tier_index(inst, pos.size, pos.entry) == 1  # 20,000 USDT <= 2,000,000
    assert M.compute_maintenance_margin(inst, rules, pos, F(19000)) == 100 * U  # at entry, any mark
    assert M.compute_liquidation_price(inst, rules, pos).get() == 19700
    assert M.compute_liquidation_price_on_tick(inst, rules, pos).get() == 19700


# https://help.bybit.com/hc/en-us/articles/900000181046-Liquidation-Price-USDT-Contract-  [official]
# older formula LP(long) = Entry x (1 - IMR + MMR) - extra margin / size:
#   long 1 BTC @ 10,000, 50x: 10,000 x (1 - 2% + 0.5%) = 9,850 USDT (margin = IM = 200 USDT);
#   short 1 BTC @ 8,000, 40x: 8,000 x (1 + 2.5% - 0.5%) = 8,160 USDT (margin = IM = 200 USDT).
@pytest.mark.rules("LIQ-003")
@pytest.mark.parametrize("sign,entry,leverage,expected", [(1, 10000, 50, 9850), (-1, 8000, 40, 8160)])
def test_bybit_usdt_older_formula_examples(bybit, sign, entry, leverage, expected):
    inst, rules = bybit.instruments["BTCUSDT"], bybit.margin
    im = F(entry, leverage)  # USDT, whole here: 200
    pos = T(sign, 1, entry, int(im * U))
    assert M.compute_liquidation_price(inst, rules, pos).get() == expected
    assert M.compute_liquidation_price_on_tick(inst, rules, pos).get() == expected
    # the trigger agrees: liquidated at the LP, not one tick on the safe side
    assert M.is_liquidatable(inst, rules, pos, F(expected)) is True
    assert M.is_liquidatable(inst, rules, pos, F(expected) + sign * inst.tick_size) is False


# Bybit "Bankruptcy Price (USDT Contract)", search-result snippets on
# https://www.cbybitapp.com/ro-RO/help-center/search-result/?page=22&pageSize=10&query=trade and
# https://www.bybitx.global/fil-PH/help-center/search-result?page=46&pageSize=10&query=trade  [official-mirror]
# long 1 BTC @ 10,000, 50x: "Bankruptcy Price = 10,000 x (1 - 2%) = 9,800 USDT".
@pytest.mark.rules("LIQ-002")
def test_bybit_usdt_bankruptcy_price_9800(bybit):
    inst, rules = bybit.instruments["BTCUSDT"], bybit.margin
    pos = T(1, 1, 10000, 200 * U)  # IM = 10,000 / 50 = 200 USDT
    assert M.compute_bankruptcy_price(inst, rules, pos).get() == 9800
    # short mirror: 10,000 x (1 + 2%) = 10,200
    assert M.compute_bankruptcy_price(inst, rules, T(-1, 1, 10000, 200 * U)).get() == 10200


# https://help.bybit.com/hc/en-us/articles/900000031623-What-is-Auto-Deleveraging-ADL-  [official]
# 5,000 BTCUSD contracts long @ 7,890.08, 50x: LP 7,773.50; Bankruptcy = Entry x L / (L + 1)
#   = 7,890.08 x 50 / 51 = 7,735.372549... shown as 7,735.50 (the 0.5 tick, rounded toward entry).
#
# Margin = IM = 5,000 / 7,890.08 / 50 BTC = 62,500,000,000 / 49,313 units = 1,267,414.27 units,
# which is not a whole unit.  We round it UP to 1,267,415: the initial margin is a requirement
# the trader must post (NUM-002: requirements round up); rounding down would open the position
# below its initial margin.  One more hundred-millionth of a BTC moves the bankruptcy price
# DOWN (further from the entry) by about bp^2/5,000 x 1e-8 = 0.00012 USD, so the exact result is
# a hair below 7,735.372549 and still shows as 7,735.50.
BYBIT_INV_ENTRY = F("7890.08")
BYBIT_INV_IM = 62_500_000_000 / F(49_313)       # 5,000 x 1e8 / (7,890.08 x 50), exact
BYBIT_INV_MARGIN = math.ceil(BYBIT_INV_IM)      # 1,267,415 units


@pytest.mark.rules("LIQ-002", "NUM-002")
def test_bybit_inverse_bankruptcy_price_7735_50(bybit):
    inst, rules = bybit.instruments["BTCUSD"], bybit.margin
    assert BYBIT_INV_IM == F(5000 * U) / (BYBIT_INV_ENTRY * 50)
    assert BYBIT_INV_MARGIN == 1_267_415
    pos = T(1, 5000, BYBIT_INV_ENTRY, BYBIT_INV_MARGIN)
    bp = M.compute_bankruptcy_price(inst, rules, pos).get()
    # defining equation: margin + 5,000 x (1/e - 1/p) = 0  ->  p = 5,000 / (5,000/e + margin)
    assert bp == F(5000) / (F(5000) / BYBIT_INV_ENTRY + F(BYBIT_INV_MARGIN, U))
    published = BYBIT_INV_ENTRY * 50 / 51            # 7,735.372549...
    assert abs(bp - F("7735.372549")) < F("0.001")
    assert bp < published                            # margin rounded up -> further from entry
    assert M.compute_bankruptcy_price_on_tick(inst, rules, pos).get() == F("7735.50")
    # with the exact (unrounded) IM the formula Entry x L/(L+1) holds exactly
    k = F(5000)
    assert k / (k / BYBIT_INV_ENTRY + BYBIT_INV_IM / U) == published


@pytest.mark.rules("LIQ-003")
def test_bybit_inverse_liquidation_price_7773_50(bybit):
    # same page: LP 7,773.50.  UTA 2024 inverse formula (bybit.nl, see next test):
    # LP = qty / (PV + IM - MM), PV = 5,000/7,890.08, IM = PV/50, MM = PV x 0.5%
    #    = 7,890.08 / (1 + 0.02 - 0.005) = 7,890.08 / 1.015 = 7,773.4778...; on the 0.5 tick
    #    toward the entry (up): 7,773.50.
    inst, rules = bybit.instruments["BTCUSD"], bybit.margin
    pos = T(1, 5000, BYBIT_INV_ENTRY, BYBIT_INV_MARGIN)
    lp = M.compute_liquidation_price(inst, rules, pos).get()
    assert abs(lp - BYBIT_INV_ENTRY / F("1.015")) < F("0.001")
    assert M.compute_liquidation_price_on_tick(inst, rules, pos).get() == F("7773.50")


# https://bybit.nl/nl-NL/help-center/article/Liquidation-Price-Calculation-under-Isolated-Mode-Unified-Trading-Account
# (2024-09-10) and https://testnet.bybit.com/ar-SA/help-center/article/Liquidation-Price-Calculation-under-Isolated-Mode-Unified-Trading-Account
# [official / official-mirror]: inverse Long LP = Contract Quantity / [Position Value + (IM - MM)],
# PV = quantity / entry, IM = PV / leverage, MM = PV x MMR - deduction.  Example inputs (the
# page's result line was not captured): 60,000 USD long @ 50,000, 10x, MMR 0.5% ->
# PV = 1.2 BTC, IM = 0.12 BTC, MM = 0.006 BTC; LP = 60,000 / (1.2 + 0.12 - 0.006) = 60,000 / 1.314
# = 45,662.100456... (evaluated from the page's formula, not a Bybit-quoted number).
@pytest.mark.rules("LIQ-003", "MRG-005")
def test_bybit_inverse_uta_formula_example(bybit):
    inst, rules = bybit.instruments["BTCUSD"], bybit.margin
    pos = T(1, 60000, 50000, 12_000_000)  # IM = 0.12 BTC = 12,000,000 units, whole
    pv, im, mm = F(60000, 50000), F(12, 100), F(60000, 50000) * F("0.005")
    assert M.compute_maintenance_margin(inst, rules, pos, F(40000)) == mm * U
    expected = F(60000) / (pv + im - mm)
    assert M.compute_liquidation_price(inst, rules, pos).get() == expected
    assert abs(expected - F("45662.10")) < F("0.01")
    # short mirror from the same page: LP = qty / (PV - (IM - MM)) = 60,000 / 1.086
    short = T(-1, 60000, 50000, 12_000_000)
    assert M.compute_liquidation_price(inst, rules, short).get() == F(60000) / (pv - (im - mm))


# https://bybitx.global/pt-PT/announcement-info/margin-parameters (BTCUSDT)  [official-mirror]
# Tier: risk limit / MMR / MM deduction:  2,000,000 / 0.5% / 0;  2,600,000 / 0.56% / 1,200;
# 3,200,000 / 0.63% / 3,020;  3,800,000 / 0.67% / 4,300;  4,400,000 / 0.71% / 5,820.
# Deduction_n = RiskLimit_{n-1} x (MMR_n - MMR_{n-1}) + Deduction_{n-1}.
@pytest.mark.rules("MRG-004", "MRG-005")
def test_bybit_btcusdt_tiers_match_the_published_table(bybit):
    table = bybit.instruments["BTCUSDT"].tier_table
    published = [(2_000_000, "0.005", 0), (2_600_000, "0.0056", 1200), (3_200_000, "0.0063", 3020),
                 (3_800_000, "0.0067", 4300), (4_400_000, "0.0071", 5820)]
    assert [(t.cap, t.mmr, t.mm_deduction) for t in table.tiers] == [(F(c), F(m), d * U) for c, m, d in published]
    ded = 0
    for prev, cur in zip(published, published[1:]):
        ded = prev[0] * (F(cur[1]) - F(prev[1])) + ded
        assert ded == cur[2]


# ================================================================ Binance

BINANCE_FAQ = "https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93"

# https://www.binance.com/tr/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6 (2021-03-18)
# [official]: BTCUSDT brackets (notional cap, MMR); maintenance amounts from the FAQ recursion
# (BINANCE_FAQ, 2020-08-14 copy at https://www.binance.com/en-NG/support/faq/b3c689c1f50a44cabb3a84e663b81d93):
# "the Maintenance Amount on Level 3 = 250,000 * (1% - 0.5%) + 50 USDT = 1,300 USDT".
BINANCE_BRACKETS = [(50_000, "0.004", 0), (250_000, "0.005", 50), (1_000_000, "0.01", 1300),
                    (10_000_000, "0.025", 16_300), (20_000_000, "0.05", 266_300),
                    (50_000_000, "0.1", 1_266_300), (100_000_000, "0.125", 2_516_300)]


@pytest.mark.rules("MRG-004", "MRG-005")
def test_binance_maintenance_amount_recursion(binance):
    table = binance.instruments["BTCUSDT"].tier_table
    assert [(t.cap, t.mmr) for t in table.tiers] == [(F(c), F(m)) for c, m, _ in BINANCE_BRACKETS]
    # Level 3 by hand: 250,000 x (0.01 - 0.005) + 50 = 1,250 + 50 = 1,300 USDT = 130,000,000,000 units
    assert table.tier(3).mm_deduction == 130_000_000_000
    # every level: amount_n = cap_{n-1} x (mmr_n - mmr_{n-1}) + amount_{n-1}, in USDT, then units
    amount = F(0)
    assert table.tier(1).mm_deduction == 0
    for n in range(2, len(table.tiers) + 1):
        lo, hi = table.tier(n - 1), table.tier(n)
        amount = lo.cap * (hi.mmr - lo.mmr) + amount
        assert hi.mm_deduction == amount * U
        assert amount == BINANCE_BRACKETS[n - 1][2]  # the published cum column


@pytest.mark.rules("MRG-004", "MRG-005")
def test_binance_bracket_lookup_examples(binance):
    # BINANCE_FAQ: "a 264,000 USDT BTCUSDT position -> MMR 1%"; "a 500,000 USDT position ->
    # maintenance amount 1,300 USDT".  8.8 BTC at 30,000 = 264,000 USDT; 20 BTC at 25,000 = 500,000.
    inst = binance.instruments["BTCUSDT"]
    assert M.compute_tier_mmr(inst, F("8.8"), F(30000)) == F("0.01")
    assert M.compute_tier_deduction(inst, F(20), F(25000)) == 1300 * U
    # a bracket covers (previous cap, cap]: exactly 50,000 USDT is bracket 1 (MMR 0.4%)
    assert M.compute_tier_index(inst, F(1), F(50000)) == 1
    assert M.compute_tier_index(inst, F(1), F("50000.1")) == 2


# Binance cross-margin example (BINANCE_FAQ), transcribed by freqtrade
# (freqtrade/freqtrade tests/exchange/test_binance.py @ 1fc69ef11467186848e439441c9b3e9225bac79d)
# and quoted by https://midiamania.com/summer-of-lkfkp/binance-futures-liquidation-formula:
# "Maintenance Margin of BTCUSDT = 71200.81144 (3500032.458 * 2.50% - 16300)".
# By hand: 109.488 x 31,967.27 = 3,500,032.45776 USDT (bracket 4: 1M < notional <= 10M);
#          x 2.5% = 87,500.811444; - 16,300 = 71,200.811444 USDT (Binance shows 71,200.81144).
@pytest.mark.rules("MRG-005", "MRG-004")
def test_binance_maintenance_margin_71200_81144(binance):
    inst, rules = binance.instruments["BTCUSDT"], binance.margin
    pos = T(1, "109.488", "32481.98", 0)
    mark = F("31967.27")
    assert M.compute_position_value(inst, pos.size, mark) == F("3500032.45776") * U
    assert M.compute_tier_index(inst, pos.size, mark) == 4
    mm = M.compute_maintenance_margin(inst, rules, pos, mark)
    assert mm == (F("3500032.45776") * F("0.025") - 16300) * U == F("71200.811444") * U
    assert abs(mm / U - F("71200.81144")) < F("0.00001")
    # uPnL of that position (the example's UPNL1 = -56,354.57): 109.488 x (31,967.27 - 32,481.98)
    assert abs(M.compute_unrealized_pnl(inst, pos, mark) / U - F("-56354.57")) < F("0.01")


def binance_isolated_lp(wb, q, ep, mmr, cum, side):
    """BINANCE_FAQ's one-way formula with TMM1 = 0 and UPNL1 = 0 (isolated mode, quote:
    'WB is isolatedWalletBalance of the isolated position, TMM=0, UPNL=0'), as transcribed by
    https://www.orangex.com/support/help/articles/401-how-to-calculate-liquidation-price-of-usdt-margined-perpetual-contracts :
    LP = (WB - TMM + UPNL + cum - side x q x EP) / (q x MMR - side x q)."""
    return (wb + cum - side * q * ep) / (q * mmr - side * q)


# freqtrade's isolated reading of the same inputs: WB = 1,535,443.01, BTCUSDT long
# 109.488 @ 32,481.98, bracket 4 (MMR 2.5%, cum 16,300) -> 18,778.73.
@pytest.mark.rules("LIQ-003")
def test_binance_isolated_liquidation_price_18778_73(binance):
    inst, rules = binance.instruments["BTCUSDT"], binance.margin
    wb, q, ep = F("1535443.01"), F("109.488"), F("32481.98")
    expected = binance_isolated_lp(wb, q, ep, F("0.025"), 16300, 1)
    # by hand: (1,535,443.01 + 16,300 - 3,556,385.0...) / (109.488 x (0.025 - 1)) = 18,778.7259...
    assert abs(expected - F("18778.73")) < F("0.005")
    pos = T(1, q, ep, int(wb * U))  # WB = isolated wallet balance = 153,544,301,000,000 units
    lp = M.compute_liquidation_price(inst, rules, pos).get()
    assert lp == expected
    # and the notional at the LP is in bracket 4 (109.488 x 18,778.73 = 2,056,000 USDT), so the
    # bracket the formula assumed is the bracket the price falls in
    assert M.compute_tier_index(inst, q, lp) == 4
    assert M.compute_liquidation_price_on_tick(inst, rules, pos).get() == F("18778.8")  # up, toward entry


@pytest.mark.rules("LIQ-003")
def test_binance_isolated_formula_short_side(binance):
    """LIQ-003: the same published formula with side = -1 (short); bracket 4 holds at the LP."""
    inst, rules = binance.instruments["BTCUSDT"], binance.margin
    wb, q, ep = F("1535443.01"), F("109.488"), F("32481.98")
    expected = binance_isolated_lp(wb, q, ep, F("0.025"), 16300, -1)  # = 45,516.78...
    assert 1_000_000 < q * expected <= 10_000_000  # notional at the LP: bracket 4
    pos = T(-1, q, ep, int(wb * U))
    assert M.compute_liquidation_price(inst, rules, pos).get() == expected


@pytest.mark.rules("LIQ-003", "MRG-005")
def test_binance_lp_across_brackets_matches_the_formula_in_the_bracket_it_lands_in(binance):
    """LIQ-003: BINANCE_FAQ note: if the notional at the computed price falls in another bracket,
    recompute with that bracket's MMR and amount.  Long 10 BTC @ 30,000 (300,000 USDT, bracket 3)
    with 30,000 USDT: with bracket 3 the formula gives (30,000 + 1,300 - 300,000)/(10 x (0.01 - 1))
    = 27,141.41, notional 271,414 -> bracket 3 holds; the reference must return that value."""
    inst, rules = binance.instruments["BTCUSDT"], binance.margin
    q, ep, wb = F(10), F(30000), F(30000)
    b3 = binance_isolated_lp(wb, q, ep, F("0.01"), 1300, 1)
    assert 250_000 < q * b3 <= 1_000_000
    assert M.compute_liquidation_price(inst, rules, T(1, q, ep, int(wb * U))).get() == b3
    # with 250,000 USDT of margin the bracket-3 formula gives a notional below 250,000, so the
    # bracket-2 formula applies: (250,000 + 50 - 300,000)/(10 x (0.005 - 1)) = 5,020.10
    wb = F(250000)
    b3 = binance_isolated_lp(wb, q, ep, F("0.01"), 1300, 1)
    b2 = binance_isolated_lp(wb, q, ep, F("0.005"), 50, 1)
    assert q * b3 <= 250_000 and 50_000 < q * b2 <= 250_000
    assert M.compute_liquidation_price(inst, rules, T(1, q, ep, int(wb * U))).get() == b2


# Binance COIN-M (https://www.binance.com/es-MX/support/faq/how-to-calculate-liquidation-price-of-coin-m-futures-contracts-ceccfcfb4e3a45e3b48b0b1bb1a8ae46)
# [official]: 100 BTCUSD contracts (100 USD each), mark 25,000 -> notional 100 x 100 / 25,000 =
# 0.4 BTC (level 1) -> "Maintenance Margin = 100 * 100 / 25,000 * 0.4% - 0 = 0.0016 BTC".
# No COIN-M instrument ships; the test builds one with Binance's level-1 parameters.
@pytest.mark.rules("MRG-001", "MRG-005")
def test_binance_coin_m_maintenance_margin_0_0016_btc(binance):
    table = TierTable("BTCUSD_PERP", "notional", (Tier(1, None, "0.004", "0.008", "125"),))
    inst = Instrument("BTCUSD_PERP", "perpetual_futures", "BTC-USD", "inverse", Currency("BTC", 8),
                      "100", "0.1", "1", table)
    pos = T(1, 100, 25000, 0)
    assert M.compute_position_value(inst, F(100), F(25000)) == F("0.4") * U
    assert M.compute_maintenance_margin(inst, binance.margin, pos, F(25000)) == F("0.0016") * U  # 160,000 units


@pytest.mark.rules("LIQ-003", "MRG-005")
def test_binance_example_through_evaluate_position(binance):
    pos = Position("BTCUSDT", "long", "109.488", "32481.98", margin=153_544_301_000_000)
    q = {x.name: x.value for x in E.evaluate_position(binance, pos, "31967.27")}
    assert q["maintenance_margin"] == F("71200.811444") * U
    assert q["maintenance_margin_units"] == 7_120_081_144_400  # already whole: 71,200.811444 x 1e8
    assert q["tier"] == 4
    assert q["liquidation_price"] == binance_isolated_lp(F("1535443.01"), F("109.488"), F("32481.98"), F("0.025"), 16300, 1)
