"""INV-001..INV-008 as Hypothesis properties of the concrete reference, on random positions and
mark prices for every instrument of every shipped profile (and each profile's rule variants:
the seed-001 zero-equity trigger and the other maintenance-margin price basis).

The Z3 obligations in proofs/margin.py prove most of these for all values; these properties
check the same statements by execution, with independently written oracles for the defining
equations (value, PnL, tier lookup, requirement), so that a wrong obligation cannot hide a wrong
rule and vice versa.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from backstop.reference import margin as M
from backstop.reference.profile import PriceBasis, TriggerRule
from backstop.reference.types import ContractKind, PositionTerms, TierBasis

from strategies import (
    PROFILES, VARIANTS, Scenario, any_scenarios, examples, max_size_within, rules_variant, scenarios,
    value_units,
)

N = examples(100)


# ---------------------------------------------------------------- independent oracles

def upl_units(sc: Scenario, price: Fraction) -> Fraction:
    """MRG-002 by definition: linear s*q*cv*(p - e), inverse s*q*cv*(1/e - 1/p), in units."""
    inst, p = sc.inst, sc.pos
    per = (price - p.entry) if inst.kind is ContractKind.LINEAR else (1 / p.entry - 1 / price)
    return p.sign * p.size * inst.contract_value * per * inst.scale


def tier_of(sc: Scenario, size: Fraction, price: Fraction):
    """MRG-004 by definition: the first tier whose cap is at or above the basis (the last tier
    above the table; callers check is_within_tiers separately)."""
    table = sc.inst.tier_table
    basis = size if table.basis is TierBasis.SIZE else value_units(sc.inst, size, price) / sc.inst.scale
    for t in table.tiers:
        if t.cap is None or basis <= t.cap:
            return t
    return table.tiers[-1]


def mm_price(sc: Scenario, mark: Fraction) -> Fraction:
    return mark if sc.rules.mm_price_basis is PriceBasis.MARK else sc.pos.entry


def requirement_units(sc: Scenario, mark: Fraction) -> Fraction:
    """LIQ-001 by definition: value(mm price) x (tier MMR + close fee rate) - deduction, or 0."""
    if sc.rules.trigger is TriggerRule.ZERO_EQUITY:
        return Fraction(0)
    price = mm_price(sc, mark)
    t = tier_of(sc, sc.pos.size, price)
    return value_units(sc.inst, sc.pos.size, price) * (t.mmr + sc.rules.close_fee_rate) - t.mm_deduction


def liquidatable(sc: Scenario, mark: Fraction, pos: PositionTerms | None = None) -> bool:
    return M.is_liquidatable(sc.inst, sc.rules, pos or sc.pos, mark)


def within(sc: Scenario, price: Fraction, size: Fraction | None = None) -> bool:
    cap = max_size_within(sc.inst, price)
    return cap is None or (size if size is not None else sc.pos.size) <= cap


# ---------------------------------------------------------------- the defining equations

@settings(max_examples=N)
@given(any_scenarios())
def test_MRG_001_MRG_002_MRG_003_value_pnl_equity_match_their_definitions(sc):
    inst, p, mark = sc.inst, sc.pos, sc.mark
    assert M.compute_position_value(inst, p.size, mark) == value_units(inst, p.size, mark)
    # positive, additive in size, rising (linear) or falling (inverse) with the price
    v, v_entry = M.compute_position_value(inst, p.size, mark), M.compute_position_value(inst, p.size, p.entry)
    assert v > 0
    assert M.compute_position_value(inst, 2 * p.size, mark) == 2 * v
    if mark != p.entry:
        rises = (v > v_entry) == (mark > p.entry)
        assert rises if inst.kind is ContractKind.LINEAR else not rises
    assert M.compute_unrealized_pnl(inst, p, mark) == upl_units(sc, mark)
    assert M.compute_equity(inst, p, mark) == p.margin + upl_units(sc, mark)


@settings(max_examples=N)
@given(scenarios(within_tiers=False))
def test_MRG_004_tier_is_the_first_whose_cap_covers_the_basis(sc):
    inst, p, mark = sc.inst, sc.pos, sc.mark
    t = tier_of(sc, p.size, mark)
    assert M.compute_tier_index(inst, p.size, mark) == t.index
    assert M.compute_tier_mmr(inst, p.size, mark) == t.mmr
    assert M.compute_tier_deduction(inst, p.size, mark) == t.mm_deduction
    assert M.is_within_tiers(inst, p.size, mark) == within(sc, mark)


@settings(max_examples=N)
@given(any_scenarios())
def test_MRG_005_MRG_006_MRG_007_requirement_and_ratios_match_their_definitions(sc):
    inst, rules, p, mark = sc.inst, sc.rules, sc.pos, sc.mark
    price = mm_price(sc, mark)
    t = tier_of(sc, p.size, price)
    v = value_units(inst, p.size, price)
    assert M.compute_maintenance_margin(inst, rules, p, mark) == v * t.mmr - t.mm_deduction
    assert M.compute_close_fee(inst, rules, p, mark) == v * rules.close_fee_rate
    assert M.compute_liquidation_requirement(inst, rules, p, mark) == requirement_units(sc, mark)
    v_mark = value_units(inst, p.size, mark)
    assert M.compute_margin_ratio(inst, p, mark) == (p.margin + upl_units(sc, mark)) / v_mark
    assert M.compute_required_margin_ratio(inst, rules, p, mark) == requirement_units(sc, mark) / v_mark


@settings(max_examples=N)
@given(any_scenarios())
def test_LIQ_002_LIQ_003_prices_solve_their_defining_equations(sc):
    inst, rules, p = sc.inst, sc.rules, sc.pos
    bp = M.compute_bankruptcy_price(inst, rules, p).get()
    if bp is not None:
        assert bp > 0 and p.margin + upl_units(sc, bp) == 0  # equity is exactly zero at bp
    # the bankruptcy price depends on the margin only, not on the trigger, tiers or fee rate
    for variant in VARIANTS:
        assert M.compute_bankruptcy_price(inst, rules_variant(PROFILES[sc.profile], variant), p).get() == bp
    lp = M.compute_liquidation_price(inst, rules, p).get()
    if lp is not None:
        assert lp > 0
        assert p.margin + upl_units(sc, lp) == requirement_units(sc, lp)  # equity == requirement at lp
    if sc.profile == "okx" and sc.variant == "shipped":
        # LIQ-003: with r < 1 and no deductions the liquidation price exists exactly when the
        # bankruptcy price does
        assert (lp is None) == (bp is None)


# ---------------------------------------------------------------- INV-001

@settings(max_examples=N)
@given(any_scenarios())
def test_INV_001_a_healthy_position_is_strictly_on_the_safe_side_of_its_bankruptcy_price(sc):
    inst, rules, p, mark = sc.inst, sc.rules, sc.pos, sc.mark
    bp = M.compute_bankruptcy_price(inst, rules, p).get()
    if bp is not None and not liquidatable(sc, mark):
        assert p.sign * (mark - bp) > 0
    # premise: the requirement is never negative (no deduction, or continuous deductions)
    assert M.compute_liquidation_requirement(inst, rules, p, mark) >= 0
    if bp is not None:
        # at the bankruptcy price itself equity is 0 <= requirement: always liquidatable
        assert liquidatable(sc, bp)


# ---------------------------------------------------------------- INV-002

@settings(max_examples=N)
@given(any_scenarios())
def test_INV_002_liquidation_price_lies_between_entry_and_bankruptcy_price(sc):
    inst, rules, p = sc.inst, sc.rules, sc.pos
    bp = M.compute_bankruptcy_price(inst, rules, p).get()
    assume(bp is not None and not liquidatable(sc, p.entry))
    lp = M.compute_liquidation_price(inst, rules, p).get()
    assert lp is not None, sc
    assert p.sign * (p.entry - lp) > 0, (sc, lp)
    assert p.sign * (lp - bp) >= 0, (sc, lp, bp)
    if lp == bp:  # only where the requirement is zero (the zero_equity trigger)
        assert requirement_units(sc, bp) == 0 and sc.rules.trigger is TriggerRule.ZERO_EQUITY
    # on the tick grid (both rounded toward the entry by the same monotone step function)
    lpt = M.compute_liquidation_price_on_tick(inst, rules, p).get()
    bpt = M.compute_bankruptcy_price_on_tick(inst, rules, p).get()
    assert p.sign * (lpt - bpt) >= 0
    if (p.entry / inst.tick_size).denominator == 1:
        assert p.sign * (p.entry - lpt) >= 0


# ---------------------------------------------------------------- INV-003

@settings(max_examples=N)
@given(any_scenarios())
def test_INV_003_closing_at_the_bankruptcy_price_loses_exactly_the_margin(sc):
    inst, rules, p = sc.inst, sc.rules, sc.pos
    bp = M.compute_bankruptcy_price(inst, rules, p).get()
    assume(bp is not None)
    assert M.compute_realized_pnl_units(inst, p, bp) == -p.margin
    bpt = M.compute_bankruptcy_price_on_tick(inst, rules, p).get()
    assert bpt is not None
    realized = M.compute_realized_pnl_units(inst, p, bpt)
    assert realized >= -p.margin  # the tick-rounded price never loses more than the margin
    assert realized == math.floor(upl_units(sc, bpt))


# ---------------------------------------------------------------- INV-004

@settings(max_examples=N)
@given(any_scenarios(), st.integers(0, 10**7), st.booleans())
def test_INV_004_maintenance_margin_is_monotone_in_size(sc, extra_lots, near):
    inst, rules, p, mark = sc.inst, sc.rules, sc.pos, sc.mark
    price = mm_price(sc, mark)
    caps = [c for c in (max_size_within(inst, p.entry), max_size_within(inst, mark)) if c is not None]
    lot = inst.lot_size
    room = math.floor((min(caps) - p.size) / lot) if caps else 10**7
    assume(room >= 0)
    k = min(extra_lots, room) if not near else min(extra_lots % 3, room)
    b = p.size + k * lot
    big = PositionTerms(p.sign, b, p.entry, p.margin)
    ta, tb = M.compute_tier_index(inst, p.size, price), M.compute_tier_index(inst, b, price)
    assert ta <= tb
    assert M.compute_tier_mmr(inst, p.size, price) <= M.compute_tier_mmr(inst, b, price)
    assert M.compute_maintenance_margin(inst, rules, p, mark) <= M.compute_maintenance_margin(inst, rules, big, mark)
    assert M.compute_maintenance_margin_units(inst, rules, p, mark) <= M.compute_maintenance_margin_units(inst, rules, big, mark)
    # never a lower tier's rate at a larger size: the rate is the one of b's own tier
    assert M.compute_tier_mmr(inst, b, price) == tier_of(sc, b, price).mmr


def test_INV_004_maintenance_margin_is_continuous_at_every_notional_cap():
    """INV-004: at a notional cap the requirement of the upper tier is never below the lower
    tier's, and for tables valued at the mark (where the tier moves with the price) the two are
    equal, so a position that grows across a cap never pays less (checked on every shipped table)."""
    for prof in PROFILES.values():
        for inst in prof.instruments.values():
            table = inst.tier_table
            if table.basis is not TierBasis.NOTIONAL:
                continue
            for a, b in zip(table.tiers, table.tiers[1:]):
                v = a.cap * inst.scale  # value exactly at the cap, in units
                assert v * a.mmr - a.mm_deduction <= v * b.mmr - b.mm_deduction
                if prof.margin.mm_price_basis is PriceBasis.MARK:
                    assert v * a.mmr - a.mm_deduction == v * b.mmr - b.mm_deduction


# ---------------------------------------------------------------- INV-005

@settings(max_examples=N)
@given(any_scenarios())
def test_INV_005_margin_ratio_and_trigger_agree_with_equity_versus_requirement(sc):
    inst, rules, p, mark = sc.inst, sc.rules, sc.pos, sc.mark
    eq = M.compute_equity(inst, p, mark)
    req = M.compute_liquidation_requirement(inst, rules, p, mark)
    liq = M.is_liquidatable(inst, rules, p, mark)
    assert liq is (eq <= req)
    assert liq is (p.margin + upl_units(sc, mark) <= requirement_units(sc, mark))
    ratio = M.compute_margin_ratio(inst, p, mark)
    required = M.compute_required_margin_ratio(inst, rules, p, mark)
    assert liq is (ratio <= required)
    if rules.trigger is TriggerRule.TIER_MMR_PLUS_CLOSE_FEE and rules.mm_price_basis is PriceBasis.MARK \
            and all(t.mm_deduction == 0 for t in inst.tier_table.tiers):
        # seed 003's reading: liquidated when margin ratio <= tier MMR + close-position fee rate
        assert required == tier_of(sc, p.size, mark).mmr + rules.close_fee_rate


# ---------------------------------------------------------------- INV-006

@settings(max_examples=N)
@given(any_scenarios())
def test_INV_006_every_rounding_goes_its_stated_way_by_less_than_one_step(sc):
    inst, rules, p, mark = sc.inst, sc.rules, sc.pos, sc.mark
    # requirements and fees round up
    mm, mmu = M.compute_maintenance_margin(inst, rules, p, mark), M.compute_maintenance_margin_units(inst, rules, p, mark)
    assert type(mmu) is int and mm <= mmu < mm + 1
    fee, feeu = M.compute_close_fee(inst, rules, p, mark), M.compute_close_fee_units(inst, rules, p, mark)
    assert type(feeu) is int and fee <= feeu < fee + 1
    # payouts round down: never creates money
    u, r = M.compute_unrealized_pnl(inst, p, mark), M.compute_realized_pnl_units(inst, p, mark)
    assert type(r) is int and u - 1 < r <= u
    # displayed prices round toward the entry (up for a long, down for a short), onto the grid
    tick = inst.tick_size
    for exact_fn, tick_fn in ((M.compute_bankruptcy_price, M.compute_bankruptcy_price_on_tick),
                              (M.compute_liquidation_price, M.compute_liquidation_price_on_tick)):
        x, t = exact_fn(inst, rules, p).get(), tick_fn(inst, rules, p).get()
        assert (x is None) == (t is None)
        if x is not None:
            assert (t / tick).denominator == 1
            assert 0 <= p.sign * (t - x) < tick


# ---------------------------------------------------------------- INV-007

@settings(max_examples=N)
@given(any_scenarios(), st.fractions(min_value=0, max_value=1, max_denominator=10**6))
def test_INV_007_trigger_fires_exactly_at_and_beyond_the_liquidation_price(sc, nudge):
    inst, rules, p, mark = sc.inst, sc.rules, sc.pos, sc.mark
    lp = M.compute_liquidation_price(inst, rules, p).get()
    if lp is None:
        assert not liquidatable(sc, mark), sc  # no liquidation price: never liquidated
        return
    assume(within(sc, lp))
    assert liquidatable(sc, mark) is (p.sign * (mark - lp) <= 0)
    assert liquidatable(sc, lp)                      # exactly at the price: fires
    beyond = lp - p.sign * nudge * inst.tick_size    # on the losing side
    if beyond > 0 and within(sc, beyond):
        assert liquidatable(sc, beyond)
    safe = lp + p.sign * max(nudge, Fraction(1, 10**9)) * inst.tick_size  # strictly on the safe side
    if safe > 0 and within(sc, safe):
        assert not liquidatable(sc, safe)


# ---------------------------------------------------------------- INV-008

@settings(max_examples=N)
@given(any_scenarios(), st.one_of(st.integers(0, 10), st.integers(0, 10**16)))
def test_INV_008_more_margin_never_makes_a_healthy_position_liquidatable(sc, extra):
    inst, rules, p, mark = sc.inst, sc.rules, sc.pos, sc.mark
    richer = PositionTerms(p.sign, p.size, p.entry, p.margin + extra)
    if not liquidatable(sc, mark):
        assert not liquidatable(sc, mark, richer)
    if liquidatable(sc, mark, richer):
        assert liquidatable(sc, mark)
    # and more margin moves the liquidation price away from the entry, never toward it
    lp, lp_rich = M.compute_liquidation_price(inst, rules, p).get(), M.compute_liquidation_price(inst, rules, richer).get()
    if lp is not None and lp_rich is not None and within(sc, lp) and within(sc, lp_rich):
        assert p.sign * (lp - lp_rich) >= 0
