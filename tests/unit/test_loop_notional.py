"""OBL-INV-025j's domain (proofs/loop_wide.py NotionalScenario, spec/99-sources.md C74): on a notional
tier table with partial liquidation (binance+partial, no shipped profile), a cross partial step that
closes the whole position.

By hand, on binance BTCUSDT (lot 0.001 BTC, contract value 1, tier caps 50,000 / 250,000 / 1,000,000
USDT; tier 1: MMR 0.4 %, tier 3: MMR 1 % less 1,300 USDT): one lot worth 1.2 x 50,000 = 60,000 USDT puts
the entry at E = 60,000 / 0.001 = 60,000,000; the fewest lots in tier 3 are floor(250,000 / 60,000) + 1
= 5 (300,000 USDT).  At the first mark 0.99 x E = 59,400,000 X's 0.005 BTC is worth 297,000 USDT
(tier 3): requirement 1 % x 297,000 - 1,300 = 1,670, tier-1 requirement 0.4 % x 297,000 = 1,188, equity
c + 0.005 x (59,400,000 - 60,000,000) = c - 3,000.  So the decision is PARTIAL for c - 3,000 in (1,188,
1,670], c in (4,188, 4,670]; on the scan's grid of 300,000 / 20,000 = 15 USDT that is 4,200 .. 4,665.
The step's target is tier 1, whose cap 50,000 is under one lot (59,400 USDT): 0 lots, the step closes
the position at the mark and realizes 0.005 x (-600,000) = -3,000 USDT.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from backstop.proofs.loop_wide import NotionalScenario, notional_partial_instrument
from backstop.reference import liquidation as L
from backstop.reference.profile import PartialRule, load_profile

U = 10 ** 8  # binance's USDT scale


def _variant(name: str):
    p = load_profile(name)
    return dataclasses.replace(p, name=f"{name}+partial",
                               liquidation=dataclasses.replace(p.liquidation, partial=PartialRule.TWO_TIERS))


@pytest.mark.rules("LIQ-005", "INV-025", "TRN-004")
def test_LIQ_005_a_notional_cross_step_closes_the_whole_position_and_the_loop_keeps_INV_025():
    prof = _variant("binance")
    inst = notional_partial_instrument(prof)
    assert inst is not None and inst.id == "BTCUSDT"
    sc = NotionalScenario(prof, inst)
    assert sc.ENTRY_P == 60_000_000 and sc.x_size_p == Fraction(5, 1000)
    cash = sorted({row[2] for row in sc.GRID})
    assert cash[0] == 4_200 and cash[-1] == 4_665 and 4_200 < cash[1] < 4_665
    for g in sc.J_ROWS:
        out = sc.run({"price path": g, "cash S": 0, "cash D": 7})
        recs = out["records"][0]
        (step,) = [r for r in recs if r.kind == "partial liquidation" and r.account == "X"]
        assert step.get("new_size") == 0 and step.get("reduced") == Fraction(5, 1000)
        assert step.get("realized_pnl") == -3_000 * U
        x = next(a for a in out["states"][1].accounts if a.id == "X")
        assert x.positions == ()                        # removed, not kept at size 0
        assert sc.claim(out, symbolic=False) is True, g


@pytest.mark.rules("LIQ-008", "TRN-004")
def test_LIQ_008_the_decision_on_the_scan_grid_edges():
    prof = _variant("binance")
    sc = NotionalScenario(prof, notional_partial_instrument(prof))  # type: ignore[arg-type]
    assert sc._decision(4_185 * U) == L.FULL       # equity 1,185 <= the tier-1 requirement 1,188
    assert sc._decision(4_200 * U) == L.PARTIAL
    assert sc._decision(4_665 * U) == L.PARTIAL
    assert sc._decision(4_680 * U) == L.NONE       # equity 1,680 > 1,670


@pytest.mark.rules("LIQ-008")
def test_LIQ_008_no_notional_scenario_on_the_shipped_profiles():
    for name in ("okx", "binance", "bybit"):
        assert notional_partial_instrument(load_profile(name)) is None
