"""The domain of the wide whole-loop obligation (INV-025, proofs/loop_wide.py) really exercises what
it claims to: a partial step at tier 3, a full cross liquidation on two instruments, ADL by trigger
(a), ADL by trigger (b), and the claim holds on each of those concrete runs.  The numbers are
derived by hand in each docstring (okx: BTC-USDT-SWAP P, ETH-USDT-SWAP Q; E = 20,000)."""

from __future__ import annotations

import pytest

from backstop.proofs.loop_wide import WideScenario, wide_instruments
from backstop.reference.profile import load_profile

OKX = load_profile("okx")
U = 10**6


def _run(prices, fund_usdt, cash_x=0):
    sc = WideScenario(OKX, wide_instruments(OKX))
    row = WideScenario.GRID.index(WideScenario.PRICES[prices] + (fund_usdt,))
    values = {"price path": row, "cash H": 0, "cash S": 0, "cash X": cash_x * U, "cash D": 7 * U}
    out = sc.run(values)
    return sc, out, [[r.kind for r in recs] for recs in out["records"]], out["records"]


@pytest.mark.rules("INV-025", "TRN-003")
def test_INV_025_row_0_takes_a_partial_step_at_tier_3():
    """Row 0, mark 19,800: H (3,000.01 contracts = 30.0001 BTC, margin 2 % of 600,000.2 = 12,000.004
    USDT) has equity 12,000.004 - 30.0001 x 200 = 6,000.002 <= its tier-3 requirement 1.05 % x
    594,001.98 = 6,237.02 but above tier 1's 0.45 % x 594,001.98 = 2,673.01: one partial step, to
    tier 1."""
    sc, out, kinds, recs = _run(0, 1_000)
    (step,) = [r for r in recs[0] if r.kind == "partial liquidation"]
    assert (step.account, step.get("tier_before"), step.get("tier_after")) == ("H", 3, 1)
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "LIQ-009")
def test_INV_025_row_4_liquidates_the_cross_account_on_both_instruments():
    """Row 4, mark 24,000: X (cross, cash 0) is short 1 contract of P (0.01 BTC): UPnL 0.01 x -4,000
    = -40 USDT, so its equity -40 is below any requirement: full, both instruments (its ETH long
    too)."""
    sc, out, kinds, recs = _run(4, 1_000)
    assert sorted(r.instrument for r in recs[0] if r.kind == "full liquidation" and r.account == "X") == \
        ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "ADL-002")
def test_INV_025_row_2_with_an_empty_fund_deleverages_by_trigger_a():
    """Row 2, mark 18,000 with the bid at 14,000: H's bankruptcy price is 20,000 - 12,000.004 /
    30.0001 = 19,600 (to the cent); the empty fund pays no loss, so nothing fills, and closing the
    remainder at the mark would lose 30.0001 x 1,600 = 48,000.16 USDT it cannot cover: trigger (a);
    the shorts are deleveraged and the fund enters the ADL state.  Both shorts entered at 20,000, so
    both have PnL% 10 % at 18,000; X's cross short carries no margin of its own (equity = its UPnL,
    0.01 x 2,000 = 20 USDT on a value of 180: leverage 9), S's has 20,000 + 10,000 = 30,000 on 90,000
    (leverage 3): X ranks first (ADL-004: PnL% x leverage), then S."""
    sc, out, kinds, recs = _run(2, 0, cash_x=10_000)
    trig = [r for r in recs[0] if r.kind == "adl trigger"][0]   # (the re-check after S's fill checks again)
    assert trig.get("uncovered") == 48_000_160_000 and trig.get("drawdown") is False
    assert [r.account for r in recs[0] if r.kind == "adl"][:2] == ["X", "S"]
    assert out["states"][1].is_adl_active(sc.fund)
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "ADL-001")
def test_INV_025_row_2_with_a_mid_fund_deleverages_by_trigger_b_after_the_settlement():
    """Row 2 with 80,000 USDT: at 18,000 the engine sells 500 contracts (5 BTC) into the bid at 14,000,
    a loss of 5 x 5,600 = 28,000 USDT the fund pays from its pending balance; the rest, 2,500.01
    contracts, would lose 25.0001 x 1,600 = 40,000.16 at the mark, less than the 52,000 left: no
    ADL.  The second mark falls after 16:00 HKT: the settlement moves the 28,000 into the settled
    balance, 52,000 <= 70 % of 80,000 = 56,000: the drawdown trigger (b) holds, and the remainder
    goes to ADL without another try in the market."""
    sc, out, kinds, recs = _run(2, 80_000, cash_x=10_000)
    assert "adl trigger" not in kinds[0]
    trig = [r for r in recs[1] if r.kind == "adl trigger"][0]
    assert trig.get("drawdown") is True and trig.get("uncovered") == 0
    assert "engine fill" not in kinds[1]
    assert sc.claim(out, symbolic=False) is True
