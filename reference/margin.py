"""Margin of a single position: value, PnL, equity, tier, requirement, ratio (MRG-*),
and the liquidation trigger, bankruptcy price and liquidation price (LIQ-001..LIQ-003).

Every function here is a rule function: it is written over :mod:`backstop.reference.num` only,
so it runs on exact numbers and on Z3 terms alike.  Structural choices (linear or inverse, the
profile's options, the tier table) are concrete; numbers (sign, size, prices, margin) may be
symbolic.

Units and signs (spec/00-conventions.md):

* money and "value" are in the smallest unit of the instrument's settlement currency;
  amounts that are not rounded are exact rationals of that unit;
* ``sign`` is +1 for a long and -1 for a short; PnL is positive when the holder gains;
* prices are in quote currency per one base unit.
"""

from __future__ import annotations

from typing import Any

from backstop.reference import num
from backstop.reference.profile import MarginRules, PriceBasis, TriggerRule
from backstop.reference.types import Instrument, MaybePrice, PositionTerms, TierBasis, TierTable

Number = Any


# ---------------------------------------------------------------- MRG-001 .. MRG-003

def compute_position_value(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-001: the value of ``size`` contracts at ``price``, in smallest settlement units (exact).

    Linear: ``size * contract_value * price``; inverse: ``size * contract_value / price``.
    """
    k = size * inst.contract_value * inst.scale
    return num.ite(inst.is_linear, k * price, num.div(k, price))


def compute_unrealized_pnl(inst: Instrument, pos: PositionTerms, mark: Number) -> Number:
    """MRG-002: the holder's PnL if the position were closed at ``mark`` (exact, not rounded).

    Linear: ``sign * size * cv * (mark - entry)``; inverse:
    ``sign * size * cv * (1/entry - 1/mark)`` (in the base currency).
    """
    k = pos.size * inst.contract_value * inst.scale
    linear = pos.sign * k * (mark - pos.entry)
    inverse = pos.sign * k * (num.div(1, pos.entry) - num.div(1, mark))
    return num.ite(inst.is_linear, linear, inverse)


def compute_equity(inst: Instrument, pos: PositionTerms, mark: Number) -> Number:
    """MRG-003: isolated equity = the position's margin + its unrealized PnL at ``mark``."""
    return pos.margin + compute_unrealized_pnl(inst, pos, mark)


# ---------------------------------------------------------------- MRG-004 tiers

def compute_tier_basis(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-004 (input): what the tier table is indexed by -- the size in contracts, or the
    position value in whole settlement-currency units at ``price``."""
    table = inst.tier_table
    value = num.div(compute_position_value(inst, size, price), inst.scale)
    return num.ite(table.basis is TierBasis.SIZE, size, value)


def _tier_field(table: TierTable, basis: Number, field: str) -> Number:
    # Tier i covers (cap_{i-1}, cap_i]; walk the concrete table from the bottom up.
    result = getattr(table.tiers[0], field)
    for below, tier in zip(table.tiers, table.tiers[1:]):
        result = num.ite(basis > below.cap, getattr(tier, field), result)
    return result


def compute_tier_index(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-004: the position's tier: the first tier whose cap is at or above the tier basis."""
    return _tier_field(inst.tier_table, compute_tier_basis(inst, size, price), "index")


def compute_tier_mmr(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-004: the maintenance margin ratio of the position's tier."""
    return _tier_field(inst.tier_table, compute_tier_basis(inst, size, price), "mmr")


def compute_tier_deduction(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-004: the maintenance deduction of the position's tier (0 for OKX-style tables)."""
    return _tier_field(inst.tier_table, compute_tier_basis(inst, size, price), "mm_deduction")


def is_within_tiers(inst: Instrument, size: Number, price: Number) -> Any:
    """MRG-004: the tier basis is at or below the last tier's cap (a larger position is refused)."""
    table = inst.tier_table
    return num.ite(table.bounded, compute_tier_basis(inst, size, price) <= table.max_cap, True)


# ---------------------------------------------------------------- MRG-005 .. MRG-007

def _mm_price(rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    return num.ite(rules.mm_price_basis is PriceBasis.MARK, mark, pos.entry)


def compute_maintenance_margin(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-005: maintenance margin = value * tier MMR - tier deduction, exact.

    The value is taken at the mark price or at the entry price as the profile says; the tier is
    looked up at that same price.
    """
    price = _mm_price(rules, pos, mark)
    value = compute_position_value(inst, pos.size, price)
    return value * compute_tier_mmr(inst, pos.size, price) - compute_tier_deduction(inst, pos.size, price)


def compute_maintenance_margin_units(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-005, NUM-002: the maintenance margin as money: rounded UP to a whole unit (a requirement)."""
    return num.ceil(compute_maintenance_margin(inst, rules, pos, mark))


def compute_close_fee(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-006: the close-position fee the trigger reserves: value * close_fee_rate, exact,
    valued at the same price as the maintenance margin."""
    price = _mm_price(rules, pos, mark)
    return compute_position_value(inst, pos.size, price) * rules.close_fee_rate


def compute_close_fee_units(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-006, NUM-002: the close-position fee as money: rounded UP to a whole unit (a fee)."""
    return num.ceil(compute_close_fee(inst, rules, pos, mark))


def compute_liquidation_requirement(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """LIQ-001: what equity is compared with: maintenance margin + close fee (seed 003), or zero
    under the ``zero_equity`` trigger (seed 001).  Exact: comparisons are never rounded."""
    full = compute_maintenance_margin(inst, rules, pos, mark) + compute_close_fee(inst, rules, pos, mark)
    return num.ite(rules.trigger is TriggerRule.ZERO_EQUITY, 0, full)


def compute_margin_ratio(inst: Instrument, pos: PositionTerms, mark: Number) -> Number:
    """MRG-007: the position's margin ratio: equity / position value at mark (exact)."""
    return num.div(compute_equity(inst, pos, mark), compute_position_value(inst, pos.size, mark))


def compute_required_margin_ratio(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-007: the ratio the trigger compares with: requirement / position value at mark.

    For the OKX profile this is exactly tier MMR + close-position fee rate (seed 003).
    """
    return num.div(compute_liquidation_requirement(inst, rules, pos, mark),
                   compute_position_value(inst, pos.size, mark))


# ---------------------------------------------------------------- LIQ-001 trigger

def is_liquidatable(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Any:
    """LIQ-001: the position is liquidated when its equity is at or below the requirement
    (equivalently: margin ratio <= tier MMR + close fee rate)."""
    return compute_equity(inst, pos, mark) <= compute_liquidation_requirement(inst, rules, pos, mark)


# ---------------------------------------------------------------- MRG-008 realized PnL

def compute_realized_pnl_units(inst: Instrument, pos: PositionTerms, price: Number) -> Number:
    """MRG-008, NUM-002: the PnL booked when the whole position closes at ``price``, as money: rounded
    DOWN (toward minus infinity), so a gain is never overpaid and a loss never under-charged."""
    return num.floor(compute_unrealized_pnl(inst, pos, price))


# ---------------------------------------------------------------- LIQ-002 / LIQ-003 prices

def _price_linear_at_mark(s: Number, e: Number, m: Number, k: Number, r: Number, d: Number) -> tuple[Any, Number]:
    # m + s k (p - e) = k p r - d   =>   p = (m - s k e + d) / (k (r - s))
    den = k * (r - s)
    return den != 0, num.div_or(m - s * k * e + d, den, 0)


def _price_linear_at_entry(s: Number, e: Number, m: Number, k: Number, r: Number, d: Number) -> tuple[Any, Number]:
    # m + s k (p - e) = k e r - d   =>   p = e + s (k e r - d - m) / k
    return True, e + s * num.div(k * e * r - d - m, k)


def _price_inverse_at_mark(s: Number, e: Number, m: Number, k: Number, r: Number, d: Number) -> tuple[Any, Number]:
    # m + s k (1/e - 1/p) = k r / p - d   =>   p = k (r + s) / (m + s k / e + d)
    den = m + s * num.div(k, e) + d
    return den != 0, num.div_or(k * (r + s), den, 0)


def _price_inverse_at_entry(s: Number, e: Number, m: Number, k: Number, r: Number, d: Number) -> tuple[Any, Number]:
    # m + s k (1/e - 1/p) = k r / e - d   =>   1/p = 1/e - s (k r / e - d - m) / k
    den = num.div(1, e) - s * num.div(num.div(k * r, e) - d - m, k)
    return den != 0, num.div_or(1, den, 0)


# (linear?, requirement valued at mark?) -> closed form; a structural choice, made once.
_PRICE_SOLVERS = {
    (True, True): _price_linear_at_mark,
    (True, False): _price_linear_at_entry,
    (False, True): _price_inverse_at_mark,
    (False, False): _price_inverse_at_entry,
}


def _solve_price(inst: Instrument, rules: MarginRules, pos: PositionTerms, rate: Number, deduction: Number) -> MaybePrice:
    """The price at which equity equals ``value * rate - deduction`` (value at mark or entry).

    Linear, requirement at mark:  p = (m - s k e + d) / (k (r - s))
    Linear, requirement at entry: p = e + s (R - m) / k,       R = k e r - d
    Inverse, at mark:             p = k (r + s) / (m + s k / e + d)
    Inverse, at entry:            p = 1 / (1/e - s (R - m) / k), R = k r / e - d
    with k = size * contract_value * scale.  Derived in proofs/derivations (sympy).
    The price exists when the expression is a positive number.
    """
    k = pos.size * inst.contract_value * inst.scale
    solver = _PRICE_SOLVERS[(inst.is_linear, rules.mm_price_basis is PriceBasis.MARK)]
    den_ok, value = solver(pos.sign, pos.entry, pos.margin, k, rate, deduction)
    return MaybePrice(num.and_(den_ok, value > 0), value)


def compute_bankruptcy_price(inst: Instrument, rules: MarginRules, pos: PositionTerms) -> MaybePrice:
    """LIQ-002: the mark price at which the position's equity is exactly zero (exact).

    It does not exist for a linear long whose margin covers its whole value, nor for an inverse
    short whose margin covers ``size * contract_value / entry``: such positions cannot go bankrupt.

    With ``margin.bankruptcy_includes_close_fee`` (Bybit) it is instead the price at which the
    equity equals the fee to close valued at that same price, ``value(bp) * close_fee_rate``: a
    fixed point, solved in closed form (proofs/derivations/bankruptcy_fee.py) as the mark-basis
    price of ``E(p) = value(p) * r`` with ``r = close_fee_rate``, no deduction:
    linear ``(m - s k e) / (k (r - s))``, inverse ``k (r + s) / (m + s k / e)``.
    """
    zero_rules = MarginRules(PriceBasis.MARK, rules.trigger, rules.close_fee_rate)
    return _solve_price(inst, zero_rules, pos, _bankruptcy_fee_rate(rules), 0)


def _bankruptcy_fee_rate(rules: MarginRules) -> Number:
    """LIQ-002: the rate of the fee to close that the bankruptcy price leaves: ``close_fee_rate``
    with ``margin.bankruptcy_includes_close_fee`` (Bybit), else 0 (the zero-equity price)."""
    return num.ite(rules.bankruptcy_includes_close_fee, rules.close_fee_rate, 0)


def compute_bankruptcy_close_fee(inst: Instrument, rules: MarginRules, size: Number, price: Number) -> Number:
    """LIQ-002 / LIQ-007: the fee to close ``size`` contracts that the bankruptcy price leaves, valued
    at ``price`` (exact): ``value(size, price) x close_fee_rate`` with
    ``margin.bankruptcy_includes_close_fee``, else 0.  At the bankruptcy price it is the equity
    there (OBL-LIQ-002); LIQ-007 books it to the close-fee receiver."""
    return compute_position_value(inst, size, price) * _bankruptcy_fee_rate(rules)


def compute_liquidation_price(inst: Instrument, rules: MarginRules, pos: PositionTerms) -> MaybePrice:
    """LIQ-003: the mark price at which equity equals the liquidation requirement (exact).

    The tier of the requirement may depend on the price (notional-basis tables valued at mark):
    each tier's candidate is computed, and the one whose price falls back in that same tier is
    taken (a continuous table, which the profile loader enforces, has exactly one such price).
    """
    table = inst.tier_table
    zero = rules.trigger is TriggerRule.ZERO_EQUITY
    chosen = MaybePrice(False, 0)
    for tier in reversed(table.tiers):
        rate = num.ite(zero, 0, tier.mmr + rules.close_fee_rate)
        ded = num.ite(zero, 0, tier.mm_deduction)
        cand = _solve_price(inst, rules, pos, rate, ded)
        price_for_tier = num.ite(rules.mm_price_basis is PriceBasis.MARK, cand.value, pos.entry)
        in_tier = compute_tier_index(inst, pos.size, num.ite(cand.defined, price_for_tier, pos.entry)) == tier.index
        ok = num.and_(cand.defined, in_tier)
        chosen = MaybePrice(num.or_(ok, chosen.defined), num.ite(ok, cand.value, chosen.value))
    return chosen


def compute_bankruptcy_price_on_tick(inst: Instrument, rules: MarginRules, pos: PositionTerms) -> MaybePrice:
    """LIQ-002: the bankruptcy price on the tick grid, rounded toward the entry price (up for a
    long, down for a short), so that closing there never loses more than the margin."""
    bp = compute_bankruptcy_price(inst, rules, pos)
    return MaybePrice(bp.defined, num.round_to_step_toward(bp.value, inst.tick_size, pos.sign))


def compute_liquidation_price_on_tick(inst: Instrument, rules: MarginRules, pos: PositionTerms) -> MaybePrice:
    """LIQ-003: the liquidation price on the tick grid, rounded toward the entry price (up for
    a long, down for a short): a displayed warning level is never later than the real one."""
    lp = compute_liquidation_price(inst, rules, pos)
    return MaybePrice(lp.defined, num.round_to_step_toward(lp.value, inst.tick_size, pos.sign))


# ---------------------------------------------------------------- MRG-009 initial margin, leverage, the tier's limits

def compute_tier_imr(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-009: the initial margin ratio of the position's tier (MRG-004's lookup at ``price``)."""
    return _tier_field(inst.tier_table, compute_tier_basis(inst, size, price), "imr")


def compute_tier_max_leverage(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-009: the maximum leverage of the position's tier (MRG-004's lookup at ``price``)."""
    return _tier_field(inst.tier_table, compute_tier_basis(inst, size, price), "max_leverage")


def compute_tier_cap(inst: Instrument, size: Number, price: Number) -> MaybePrice:
    """MRG-009: the cap of the position's tier (the largest tier basis it covers: contracts, or whole
    settlement-currency units); it does not exist for the last tier of an unbounded table."""
    table = inst.tier_table
    index = compute_tier_index(inst, size, price)
    cap: Number = table.max_cap
    for tier in table.tiers[:-1]:
        cap = num.ite(index == tier.index, tier.cap, cap)
    return MaybePrice(num.or_(table.bounded, index != len(table.tiers)), cap)


def compute_initial_margin(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-009: the initial margin of the position's tier: value x tier IMR, exact, valued (and the
    tier looked up) at the same price as the maintenance margin (MRG-005)."""
    price = _mm_price(rules, pos, mark)
    return compute_position_value(inst, pos.size, price) * compute_tier_imr(inst, pos.size, price)


def compute_initial_margin_units(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-009, NUM-002: the initial margin as money: rounded UP to a whole unit (a requirement)."""
    return num.ceil(compute_initial_margin(inst, rules, pos, mark))


def compute_margin_for_leverage(inst: Instrument, size: Number, entry: Number, leverage: Number) -> Number:
    """MRG-009, NUM-002: the isolated margin of a position opened at ``leverage``: its value at the entry
    divided by the leverage, rounded UP to a whole unit (a requirement the trader posts: rounding down
    would open the position below the margin its leverage asks)."""
    return num.ceil(num.div(compute_position_value(inst, size, entry), leverage))


def compute_leverage(inst: Instrument, pos: PositionTerms) -> Number:
    """MRG-009: the position's leverage: its value at the entry over its margin (exact; 0 stands for
    "none" when the margin is 0, which has no finite leverage)."""
    return num.div_or(compute_position_value(inst, pos.size, pos.entry), pos.margin, 0)


def is_within_max_leverage(inst: Instrument, pos: PositionTerms) -> Any:
    """MRG-009: the position's leverage is at most the maximum leverage of its tier at the entry:
    value at entry <= margin x max leverage (exact; a zero margin is never within, the value being
    positive)."""
    value = compute_position_value(inst, pos.size, pos.entry)
    return value <= pos.margin * compute_tier_max_leverage(inst, pos.size, pos.entry)
