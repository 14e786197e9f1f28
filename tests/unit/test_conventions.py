"""Conventions the shipped profiles could not express (issue 10), each a profile option whose
default is the shipped behaviour:

1. ENG-004 ``liquidation.fund_share``: the fund keeps at most ``fund_share_rate`` x the fill's value
   of a surplus, the rest goes back to the user (dYdX v4, ``GetLiquidationInsuranceFundDelta``).

Expected numbers are derived by hand in the comments, from the cited source's worked example where
there is one.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction as F

import pytest

from backstop.cli import evaluate_request
from backstop.jsonio import loads
from backstop.reference import engine as E
from backstop.reference import adl as A
from backstop.reference import margin as M
from backstop.reference import step as S
from backstop.reference.engine import Level
from backstop.reference.errors import ProfileError
from backstop.reference.events import BalancePoint
from backstop.reference.profile import DrawdownReference, FundShare, load_profile, load_profile_text
from backstop.reference.types import Account, Position, PositionTerms

U6 = 10**6


def _overlay(base: str, body: str) -> str:
    return f'extends = "{base}"\nname = "{base}+variant"\n{body}'


def ev(req):
    return evaluate_request(loads(json.dumps(req)))


# ================================================================ 1. ENG-004 fund_share (dYdX v4)

# dYdX v4 protocol/x/clob/keeper/liquidations_test.go, TestGetLiquidationInsuranceFundDelta (commit
# 84d4664b), "Fully closing one long position above the bankruptcy price and pays max liquidation fee":
# a 0.1 BTC long whose bankruptcy value is 5,100,000,000 quote quantums (USDC, 6 decimals: $5,100, so
# the bankruptcy price is $51,000) is closed at $56,100 ("10% above bankruptcy price"): quote received
# 0.1 x 56,100 = $5,610 = 5,610,000,000 quantums; the surplus is 510,000,000.  The fund's delta is
# min(5,610,000,000 x 0.5%, 510,000,000) = 28,050,000; with MaxLiquidationFeePpm 25,000 it is
# 5,610,000,000 x 2.5% = 140,250,000; with 1,000,000 (100%) the whole 510,000,000.
DYDX = """[liquidation]
liquidation_fee_rate = "0"
fee_receiver = "fund"
fund_share = "capped_by_fee_rate"
fund_share_rate = "{rate}"
[currencies.USDC]
decimals = 6
[tier_tables.BTC-USDC]
basis = "notional"
tiers = [{{ mmr = "0.1", imr = "0.2", max_leverage = "5" }}]
[instruments.BTC-USDC]
business_line = "perpetual_futures"
underlying = "BTC-USDC"
kind = "linear"
settle_currency = "USDC"
contract_value = "1"
tick_size = "1"
lot_size = "0.0000000001"
tier_table = "BTC-USDC"
"""


def _dydx(rate: str):
    return load_profile_text(_overlay("binance", DYDX.format(rate=rate)))


@pytest.mark.rules("ENG-004")
@pytest.mark.parametrize("rate, kept", [("0.005", 28_050_000), ("0.025", 140_250_000), ("1", None)])
def test_ENG_004_capped_fund_share_matches_dydx_insurance_fund_delta(rate, kept):
    if rate == "1":  # a rate must be < 1: 0.999999 still exceeds the surplus (5,609,994,390 > 510,000,000)
        rate, kept = "0.999999", 510_000_000
    p = _dydx(rate)
    inst = p.instruments["BTC-USDC"]
    c = E.close_position(inst, p.liquidation, 1, F(1, 10), F(51_000), (Level(F(56_100), F(1)),))
    assert c.result_units == 510_000_000 and c.fee_units == 0
    assert c.fund_units == kept
    assert c.user_units == 510_000_000 - kept          # what dYdX leaves in the subaccount
    assert c.fund_units + c.venue_units + c.user_units == c.result_units


@pytest.mark.rules("ENG-004")
def test_ENG_004_cap_rounds_down_and_never_caps_a_deficit():
    p = _dydx("0.005")
    inst = p.instruments["BTC-USDC"]
    # 0.0000001 BTC closed at 56,100: value 0.00561 USDC = 5,610 quantums; x 0.005 = 28.05 -> the fund
    # keeps 28 (rounded down); the surplus is 0.0000001 x 5,100 = 510 quantums, the user gets 482.
    c = E.close_position(inst, p.liquidation, 1, F(1, 10**7), F(51_000), (Level(F(56_100), F(1)),))
    assert (c.result_units, c.fund_units, c.user_units) == (510, 28, 482)
    # a deficit: closed at 50,000, 0.1 x -1,000 = -$100: the fund pays it all, the user gets nothing
    d = E.close_position(inst, p.liquidation, 1, F(1, 10), F(51_000), (Level(F(50_000), F(1)),))
    assert (d.result_units, d.fund_units, d.user_units) == (-100 * U6, -100 * U6, 0)


@pytest.mark.rules("ENG-004", "ENG-003")
def test_ENG_004_cap_applies_after_the_venue_fee():
    # binance's fee 0.3% to the venue: fee = 5,610 x 0.003 = $16.83; share = 510 - 16.83 = $493.17;
    # the fund keeps min(493.17, 28.05) = $28.05, the user 493.17 - 28.05 = $465.12.
    p = load_profile_text(_overlay("binance", DYDX.format(rate="0.005").replace(
        'liquidation_fee_rate = "0"\nfee_receiver = "fund"', 'liquidation_fee_rate = "0.003"\nfee_receiver = "venue"')))
    c = E.close_position(p.instruments["BTC-USDC"], p.liquidation, 1, F(1, 10), F(51_000), (Level(F(56_100), F(1)),))
    assert (c.fee_units, c.venue_units, c.fund_units, c.user_units) == (16_830_000, 16_830_000, 28_050_000, 465_120_000)


@pytest.mark.rules("ENG-004")
def test_ENG_004_default_keeps_the_whole_surplus_on_every_shipped_profile():
    for name in ("okx", "binance", "bybit"):
        assert load_profile(name).liquidation.fund_share is FundShare.ALL
    p = load_profile_text(_overlay("binance", DYDX.format(rate="0.005").replace(
        'fund_share = "capped_by_fee_rate"\nfund_share_rate = "0.005"\n', "")))
    c = E.close_position(p.instruments["BTC-USDC"], p.liquidation, 1, F(1, 10), F(51_000), (Level(F(56_100), F(1)),))
    assert (c.fund_units, c.user_units) == (510_000_000, 0)


@pytest.mark.rules("ENG-004")
@pytest.mark.parametrize("body, field", [
    ('[liquidation]\nfund_share = "capped_by_fee_rate"\n', "liquidation.fund_share_rate"),
    ('[liquidation]\nfund_share_rate = "0.005"\n', "liquidation.fund_share_rate"),
    ('[liquidation]\nfund_share = "some"\n', "liquidation.fund_share"),
    ('[liquidation]\nfund_share = "capped_by_fee_rate"\nfund_share_rate = "1"\n', "liquidation.fund_share_rate"),
    ('[liquidation]\nfund_share = "capped_by_fee_rate"\nfund_share_rate = 0.005\n', "liquidation.fund_share_rate"),
])
def test_ENG_004_fund_share_refused_values_name_the_field(body, field):
    with pytest.raises(ProfileError) as e:
        load_profile_text(_overlay("okx", body))
    assert e.value.field == field


OKX = load_profile("okx")
OKX_CAPPED = load_profile_text(_overlay("okx", '[liquidation]\nfund_share = "capped_by_fee_rate"\nfund_share_rate = "0.005"\n'))


def _state(profile):
    # alice: long 100 BTC-USDT-SWAP contracts (0.01 BTC each: 1 BTC) at 30,000 with 3,000 USDT isolated
    # margin, balance 0: bankruptcy price 27,000 (LIQ-002).  The bids take all 100 contracts at 27,500.
    accts = [Account("alice", (("USDT", 0),), (Position("BTC-USDT-SWAP", "long", F(100), F(30_000), "isolated", 3_000 * U6),))]
    book = S.Book((Level(F(27_500), F(200)),), (Level(F(27_600), F(50)),))
    return S.initial_state(profile, accts, {"BTC-USDT-SWAP": F(30_000)}, {"BTC-USDT-SWAP": book},
                           {"perpetual_futures/BTC-USDT/USDT": 200 * U6}, 0)


@pytest.mark.rules("ENG-004", "LIQ-007")
def test_ENG_004_the_step_credits_the_users_share_of_the_surplus():
    # at mark 27,100 the position is liquidated in full at 27,000 (as in tests/unit/test_step.py); the
    # engine sells 1 BTC at 27,500: surplus 500 USDT, okx's fee 0.  Capped at 0.5% of the fill value
    # 27,500 = 137.5 USDT: the fund's pending result is 137.5 USDT, alice's balance 0 + 362.5 USDT.
    # Under okx (fund_share "all") the fund gets the 500 USDT and alice nothing.
    for profile, to_user, to_fund in ((OKX_CAPPED, 362_500_000, 137_500_000), (OKX, 0, 500 * U6)):
        st0 = _state(profile)
        st, recs = S.process_event(st0, S.MarkEvent(1_000, "BTC-USDT-SWAP", F(27_100)))
        close = next(r for r in recs if r.kind == "engine close")
        assert close.get("result") == 500 * U6 and close.get("to_fund") == to_fund
        assert st.account("alice").balance("USDT") == to_user
        assert [r.get("to_user") for r in recs if r.kind == "surplus to user"] == ([to_user] if to_user else [])
        assert S.check_invariants(st0, st, recs) == []


@pytest.mark.rules("ENG-004")
def test_ENG_004_eval_engine_reports_the_users_share():
    toml = _overlay("binance", DYDX.format(rate="0.005"))
    e = ev({"operation": "engine", "profile": {"toml": toml}, "instrument": "BTC-USDC", "side": "long", "size": "0.1",
            "takeover_price": "51000", "fill_price": "56100"})
    qs = e["quantities"]
    assert (qs["fund_units"]["value"], qs["user_units"]["value"]) == ("28050000", "481950000")


# ================================================================ 2. LIQ-002 bankruptcy price with the fee to close

BYBIT = load_profile("bybit")
BTCUSD = BYBIT.instruments["BTCUSD"]  # inverse, 1 USD per contract, settled in BTC (8 decimals)
U8 = 10**8


def _with_fee(rules, on=True, rate="0.00075"):
    return dataclasses.replace(rules, close_fee_rate=F(rate), bankruptcy_includes_close_fee=on)


@pytest.mark.rules("LIQ-002")
def test_LIQ_002_bankruptcy_price_with_the_fee_to_close_matches_the_published_inverse_form():
    # help.mcs.io 360040683032 (Bybit-style): long BP = 1.00075 x Qty / (Qty/Entry + balance),
    # short BP = 0.99925 x Qty / (Qty/Entry - balance).  Qty 1,000 USD, entry 8,000, margin 0.0025 BTC:
    # long 1,000.75 / (0.125 + 0.0025) = 1,000.75 / 0.1275 = 400,300/51; short 999.25 / 0.1225 = 399,700/49.
    rules = _with_fee(BYBIT.margin)
    long_ = PositionTerms(1, F(1_000), F(8_000), 250_000)
    short = PositionTerms(-1, F(1_000), F(8_000), 250_000)
    assert M.compute_bankruptcy_price(BTCUSD, rules, long_).get() == F(400_300, 51)
    assert M.compute_bankruptcy_price(BTCUSD, rules, short).get() == F(399_700, 49)
    # without the fee: 1,000 / 0.1275 = 400,000/51 and 1,000 / 0.1225 = 400,000/49 (Bybit's classic form)
    off = _with_fee(BYBIT.margin, on=False)
    assert M.compute_bankruptcy_price(BTCUSD, off, long_).get() == F(400_000, 51)
    assert M.compute_bankruptcy_price(BTCUSD, off, short).get() == F(400_000, 49)


@pytest.mark.rules("LIQ-002")
def test_LIQ_002_equity_at_the_fee_bankruptcy_price_is_the_fee_to_close_there():
    # linear (okx BTC-USDT-SWAP, 0.01 BTC per contract, USDT 6 decimals, close fee 0.05%): a long of 100
    # contracts (1 BTC) at 30,000 with 3,000 USDT: m + k (p - e) = r k p with k = 10^6 units per USDT
    # -> p = (k e - m) / (k (1 - r)) = (30,000 - 3,000) / 0.9995 = 27,000 / 0.9995 = 54,000,000/1,999.
    okx = load_profile("okx")
    inst = okx.instruments["BTC-USDT-SWAP"]
    rules = dataclasses.replace(okx.margin, bankruptcy_includes_close_fee=True)
    pos = PositionTerms(1, F(100), F(30_000), 3_000 * U6)
    bp = M.compute_bankruptcy_price(inst, rules, pos).get()
    assert bp == F(54_000_000, 1_999)
    fee_at_bp = M.compute_position_value(inst, pos.size, bp) * F(5, 10_000)
    assert M.compute_equity(inst, pos, bp) == fee_at_bp > 0   # 1 BTC x 27,013.5068... x 0.05% = 13.5068... USDT


@pytest.mark.rules("LIQ-002", "LIQ-007")
def test_LIQ_002_option_is_off_on_the_shipped_profiles_and_accepted_on_load_only_as_a_bool():
    for name in ("okx", "binance", "bybit"):
        assert load_profile(name).margin.bankruptcy_includes_close_fee is False
    on = load_profile_text(_overlay("bybit", "[margin]\nbankruptcy_includes_close_fee = true\n"))
    assert on.margin.bankruptcy_includes_close_fee is True
    with pytest.raises(ProfileError) as e:
        load_profile_text(_overlay("bybit", '[margin]\nbankruptcy_includes_close_fee = "yes"\n'))
    assert e.value.field == "margin.bankruptcy_includes_close_fee"
    with pytest.raises(ProfileError) as e:
        load_profile_text(_overlay("bybit", "[margin]\nbankruptcy_includes_close_fee = 1\n"))
    assert e.value.field == "margin.bankruptcy_includes_close_fee"
    # with the zero-equity trigger the option is refused: that trigger fires only at equity <= 0, past a
    # bankruptcy price that leaves a positive fee (INV-001 could not hold)
    with pytest.raises(ProfileError) as e:
        load_profile_text(_overlay("okx", '[margin]\ntrigger = "zero_equity"\nbankruptcy_includes_close_fee = true\n'))
    assert e.value.field == "margin.bankruptcy_includes_close_fee" and e.value.rule == "LIQ-002"


# ================================================================ 3. ADL-001 drawdown from the window's average

H = 3_600_000  # ms per hour
OKX_AVG = load_profile_text(_overlay("okx", '[adl]\ndrawdown_reference = "average"\n'))


def _example_d(last=1_040):
    # spec/40-adl.md worked example D (okx, f = 0.30, W = 8 h), balances in USDT (6 decimals)
    return (BalancePoint(0, 1_000 * U6), BalancePoint(1 * H, 1_500 * U6), BalancePoint(5 * H, 1_200 * U6),
            BalancePoint(9 * H, last * U6))


@pytest.mark.rules("ADL-001")
def test_ADL_001_window_average_worked_example_d():
    rules = OKX_AVG.adl
    hist = _example_d()
    # 09:00, start 01:00: 1,500 for 4 h, 1,200 for 4 h, 1,040 for 0 h -> (6,000 + 4,800)/8 = 1,350 USDT
    assert A.compute_window_average(rules, hist, 9 * H) == (True, 1_350 * U6)
    # 10:00, start 02:00: 1,500 x 3 + 1,200 x 4 + 1,040 x 1 = 10,340 / 8 = 1,292.5 USDT
    assert A.compute_window_average(rules, hist, 10 * H) == (True, F(2_585, 2) * U6)
    # 08:00, start 00:00: 1,000 x 1 + 1,500 x 4 + 1,200 x 3 = 10,600 / 8 = 1,325 USDT
    assert A.compute_window_average(rules, hist, 8 * H) == (True, 1_325 * U6)
    # the peak reading triggers at 09:00 (1,040 <= 0.7 x 1,500 = 1,050); the average one does not
    # (1,040 > 0.7 x 1,350 = 945), nor at 10:00 (1,040 > 904.75)
    assert A.is_drawdown_trigger(load_profile("okx").adl, hist, 9 * H) is True
    assert A.is_drawdown_trigger(rules, hist, 9 * H) is False
    assert A.is_drawdown_trigger(rules, hist, 10 * H) is False
    # with 900 at 09:00: 900 <= 945 -> triggers
    assert A.is_drawdown_trigger(rules, _example_d(900), 9 * H) is True
    # exactly at the threshold: 945 <= 945 -> triggers (at or below)
    assert A.is_drawdown_trigger(rules, _example_d(945), 9 * H) is True


@pytest.mark.rules("ADL-001")
def test_ADL_001_window_average_edge_cases():
    rules = OKX_AVG.adl
    # history starting inside the window: 1,000 from 06:00, 400 from 07:00, now 08:00 -> covered 2 h,
    # (1,000 + 400)/2 = 700; 400 <= 0.7 x 700 = 490 -> trigger
    h = (BalancePoint(6 * H, 1_000 * U6), BalancePoint(7 * H, 400 * U6))
    assert A.compute_window_average(rules, h, 8 * H) == (True, 700 * U6)
    assert A.is_drawdown_trigger(rules, h, 8 * H) is True
    # the only point at now: no time covered, the average is the balance at now; never a trigger
    one = (BalancePoint(8 * H, 500 * U6),)
    assert A.compute_window_average(rules, one, 8 * H) == (True, 500 * U6)
    assert A.is_drawdown_trigger(rules, one, 8 * H) is False
    # no balance in force at now (history after now); an empty history
    assert A.compute_window_average(rules, one, 8 * H - 1)[0] is False
    assert A.is_drawdown_trigger(rules, (), 8 * H) is False
    # two points at the same instant: the later one is in force, the earlier counts for 0 h
    same = (BalancePoint(0, 2_000 * U6), BalancePoint(0, 1_000 * U6))
    assert A.compute_window_average(rules, same, 8 * H) == (True, 1_000 * U6)


@pytest.mark.rules("ADL-001")
def test_ADL_001_drawdown_reference_default_and_refusal():
    for name in ("okx", "binance", "bybit"):
        assert load_profile(name).adl.drawdown_reference is DrawdownReference.PEAK
    with pytest.raises(ProfileError) as e:
        load_profile_text(_overlay("okx", '[adl]\ndrawdown_reference = "mean"\n'))
    assert e.value.field == "adl.drawdown_reference"


@pytest.mark.rules("ADL-001")
def test_ADL_001_eval_fund_drawdown_reports_the_average():
    hist = [{"time_ms": p.time_ms, "balance": str(p.balance)} for p in _example_d()]
    toml = _overlay("okx", '[adl]\ndrawdown_reference = "average"\n')
    r = ev({"operation": "fund_drawdown", "profile": {"toml": toml}, "history": hist, "now_ms": 9 * H})["quantities"]
    assert r["window_average"]["value"] == str(1_350 * U6) and r["window_peak"]["value"] == str(1_500 * U6)
    assert r["drawdown_reference"]["value"] == "average"
    assert r["drawdown_threshold"]["value"] == str(945 * U6) and r["drawdown_trigger"]["value"] is False
    p = ev({"operation": "fund_drawdown", "history": hist, "now_ms": 9 * H})["quantities"]   # okx: the peak
    assert p["drawdown_threshold"]["value"] == str(1_050 * U6) and p["drawdown_trigger"]["value"] is True
