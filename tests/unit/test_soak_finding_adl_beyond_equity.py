"""A defect the seeded soak found (bench/bench_soak.py --seed 13, global episode 1554, event 3;
spec/99-sources.md C71, resolved by the fill rule of ADL-006): ADL at a stale remainder's bankruptcy price drives a cross
counterparty's balance below zero, the re-check then takes it over under water with negative engine
cash, the fund is empty, and the uncovered deficit is lost -- the venue's books change by more than
the fills against the book explain (INV-022), and INV-013 reports the deficit not covered.

By hand, from the records: remainder 14 (u0101, short 999.45 contracts of 0.01 BTC, bankruptcy price
31,322,953,250 / 1,297,993 = 24,131.5) has waited while the mark rose to 30,480.  u0025 (cross: long
205.59 at 29,700 and short 36.63 at 29,100, balance 717.1956 USDT; at 30,480 its cross equity is
1,815.30 USDT, healthy) is deleveraged on its whole long at 24,131.5: realized
2.0559 x (24,131.5 - 29,700) = -11,447.59 USDT, so its balance becomes -10,730.39 USDT; its short is
then taken over at the mark with -11,235.89 USDT of engine cash, of which the empty fund pays 9,946
units: 11,235,878,335 units are covered by no one.

The fix (C71, ADL-006): a ranked candidate is filled only if it is in profit at the mark and, when
part of the remainder executes at the bankruptcy price, not at a loss there.  u0025's long at 29,700
is at a loss at 24,131.5, so it is not filled: no fill realizes a loss (INV-026), its balance stays
>= 0, and nothing is left uncovered.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest

from backstop.reference import step as S

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from soak_replay import replay  # noqa: E402
from valuation import check_transition  # noqa: E402

EPISODE, EVENT = 1554, 3


def _replay():
    return replay(EPISODE, EVENT)


@pytest.mark.rules("ADL-006", "INV-026")
def test_ADL_006_the_cross_counterparty_at_a_loss_at_the_bankruptcy_price_is_not_filled():
    before, ev, after, recs = _replay()
    assert before.account("u0025").balance("USDT") == 717_195_600
    rem = [r for r in before.remainders if r.id == 14]
    assert rem and rem[0].price == Fraction(31_322_953_250, 1_297_993) and rem[0].sign == -1
    (long_,) = [q for q in before.account("u0025").positions if q.instrument == "BTC-USDT-SWAP" and q.sign == 1]
    assert long_.entry_price == 29_700 and long_.entry_price > rem[0].price     # at a loss at the remainder's bankruptcy price
    assert [r for r in recs if r.kind == "adl" and r.account == "u0025"] == []
    assert [r for r in recs if r.kind == "uncovered deficit"] == []
    # every fill of this event realizes a gain or nothing (INV-026)
    assert all(r.get("realized_pnl") >= 0 for r in recs if r.kind == "adl")
    assert after.account("u0025").balance("USDT") >= 0


@pytest.mark.rules("INV-022", "INV-013", "ADL-008")
def test_INV_022_no_money_is_lost_when_adl_hits_a_cross_counterparty_at_a_stale_bankruptcy_price():
    before, ev, after, recs = _replay()
    assert S.check_invariants(before, after, recs) == []
    assert [str(v) for v in check_transition(before, ev, after, recs)] == []
