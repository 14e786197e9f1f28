"""The reusable strategies of tests/strategies.py draw what they promise: exact numbers only,
prices on and off the tick grid, sizes that are lot multiples within the tier table, whole money."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.reference import margin as M

from strategies import (
    INSTRUMENT_KEYS, PROFILES, examples, margins, max_size_within, off_tick_prices, on_tick_prices,
    prices, scenarios, signed_fractions, sizes, tier_crossing_scenarios, value_units,
)

INSTRUMENTS = [PROFILES[p].instruments[i] for p, i in INSTRUMENT_KEYS]


@pytest.mark.rules("NUM-001")
@settings(max_examples=examples(60))
@given(st.sampled_from(INSTRUMENTS).flatmap(
    lambda inst: st.tuples(st.just(inst), on_tick_prices(inst, inst.tick_size, 10**6),
                           off_tick_prices(inst, inst.tick_size, 10**6), prices(inst),
                           sizes(inst, Fraction(1000)), margins(Fraction(10**9)), signed_fractions())))
def test_number_strategies_are_exact_and_on_their_grids(drawn):
    inst, on, off, any_price, size, margin, x = drawn
    for v in (on, off, any_price, size, x):
        assert isinstance(v, Fraction)
    assert (on / inst.tick_size).denominator == 1 and on >= inst.tick_size
    assert (off / inst.tick_size).denominator != 1 and off > 0
    assert any_price >= inst.tick_size
    assert (size / inst.lot_size).denominator == 1 and inst.lot_size <= size <= 1000
    assert type(margin) is int and margin >= 0


@pytest.mark.rules("MRG-004")
@settings(max_examples=examples(100))
@given(st.one_of(scenarios(), tier_crossing_scenarios()))
def test_scenarios_are_within_the_tier_table(sc):
    """MRG-004: the strategies' own bound (from the definition of the tier basis) agrees with
    is_within_tiers, at the entry and at the mark."""
    p = sc.pos
    assert p.sign in (1, -1) and p.size > 0 and p.entry > 0 and sc.mark > 0
    assert type(p.margin) is int and p.margin >= 0
    assert (p.size / sc.inst.lot_size).denominator == 1
    for price in (p.entry, sc.mark):
        cap = max_size_within(sc.inst, price)
        assert cap is None or p.size <= cap
        assert M.is_within_tiers(sc.inst, p.size, price) is True
    assert M.compute_position_value(sc.inst, p.size, p.entry) == value_units(sc.inst, p.size, p.entry)
