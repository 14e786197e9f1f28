"""A defect the seeded soak found (bench/bench_soak.py --seed 13, global episode 1554, event 3;
spec/99-sources.md C71, open): ADL at a stale remainder's bankruptcy price drives a cross
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
"""

from __future__ import annotations

import sys
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


@pytest.mark.rules("ADL-008", "INV-013")
def test_the_soak_case_is_the_one_described():
    before, ev, after, recs = _replay()
    adl = [r for r in recs if r.kind == "adl" and r.account == "u0025"]
    assert [r.get("realized_pnl") for r in adl] == [-11_447_589_881]
    assert [r.get("uncovered") for r in recs if r.kind == "uncovered deficit"] == [11_235_878_335]
    assert before.account("u0025").balance("USDT") == 717_195_600


@pytest.mark.xfail(strict=True, reason="C71 (open): ADL at a stale remainder's bankruptcy price can take a cross "
                                       "counterparty below zero; the deficit is then lost")
@pytest.mark.rules("INV-022", "INV-013", "ADL-008")
def test_INV_022_no_money_is_lost_when_adl_hits_a_cross_counterparty_at_a_stale_bankruptcy_price():
    before, ev, after, recs = _replay()
    assert S.check_invariants(before, after, recs) == []
    assert [str(v) for v in check_transition(before, ev, after, recs)] == []
