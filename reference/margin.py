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

from fractions import Fraction
from typing import Any, NamedTuple

from backstop.reference import num
from backstop.reference.profile import MarginRules, PriceBasis, TriggerRule
from backstop.reference.types import Instrument, MaybePrice, PositionTerms, TierBasis, TierTable

Number = Any
_ONE = Fraction(1)  # 1 as a Fraction: num.div(1, x) would first make one of the int (the same term symbolically)


# ---------------------------------------------------------------- MRG-001 .. MRG-003

def compute_position_value(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-001: the value of ``size`` contracts at ``price``, in smallest settlement units (exact).

    Linear: ``size * contract_value * price``; inverse: ``size * contract_value / price``.
    """
    k = size * inst.contract_value * inst.scale
    return num.branch(inst.is_linear, lambda: k * price, lambda: num.div(k, price))


def compute_unrealized_pnl(inst: Instrument, pos: PositionTerms, mark: Number) -> Number:
    """MRG-002: the holder's PnL if the position were closed at ``mark`` (exact, not rounded).

    Linear: ``sign * size * cv * (mark - entry)``; inverse:
    ``sign * size * cv * (1/entry - 1/mark)`` (in the base currency).
    """
    k = pos.size * inst.contract_value * inst.scale
    return num.branch(inst.is_linear, lambda: pos.sign * k * (mark - pos.entry),
                      lambda: pos.sign * k * (num.div(_ONE, pos.entry) - num.div(_ONE, mark)))


def compute_equity(inst: Instrument, pos: PositionTerms, mark: Number) -> Number:
    """MRG-003: isolated equity = the position's margin + its unrealized PnL at ``mark``."""
    return _equity_of(pos, compute_unrealized_pnl(inst, pos, mark))


def _equity_of(pos: PositionTerms, pnl: Number) -> Number:
    """MRG-003: the isolated equity of ``pos`` given its unrealized PnL at the mark (MRG-002)."""
    return pos.margin + pnl


# ---------------------------------------------------------------- MRG-004 tiers

def compute_tier_basis(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-004 (input): what the tier table is indexed by -- the size in contracts, or the
    position value in whole settlement-currency units at ``price``."""
    return num.branch(inst.tier_table.basis is TierBasis.SIZE, lambda: size,
                      lambda: _tier_basis_of(inst, size, compute_position_value(inst, size, price)))


def _tier_basis_of(inst: Instrument, size: Number, value: Number) -> Number:
    """MRG-004: :func:`compute_tier_basis` of a position of ``size`` contracts whose value at the
    price in question is ``value`` (MRG-001): the size, or the value in whole settlement units."""
    return num.branch(inst.tier_table.basis is TierBasis.SIZE, lambda: size, lambda: num.div(value, inst.scale))


class _TierRow(NamedTuple):
    """The columns of one tier that the rules read (symbolically each may be an ``ite`` term)."""

    index: Number
    mmr: Number
    mm_deduction: Number
    imr: Number
    max_leverage: Number


def _row(tier: Any) -> _TierRow:
    return _TierRow(tier.index, tier.mmr, tier.mm_deduction, tier.imr, tier.max_leverage)


def _tier_field_of(inst: Instrument, basis: Number, field: str) -> Number:
    """MRG-004 / MRG-009: the column ``field`` (``index``, ``mmr``, ``mm_deduction``, ``imr``,
    ``max_leverage``) of the tier a position of tier basis ``basis`` (:func:`compute_tier_basis`) is
    in: the first tier whose cap is at or above the basis."""
    return getattr(_tier_row_of(inst, basis), field)


def _tier_row_of(inst: Instrument, basis: Number) -> _TierRow:
    """MRG-004: every column of the tier of tier basis ``basis``, looked up once.  Tier i covers
    (cap_{i-1}, cap_i]; the walk goes from the bottom up and stops at the first cap at or above
    the basis (the last tier takes everything above the cap below it)."""
    return _tier_row_from(inst.tier_table.tiers, basis)


def _tier_row_from(tiers: tuple[Any, ...], basis: Number) -> _TierRow:
    # the first of ``tiers`` unless the basis is above its cap; the last one takes everything above
    return {True: lambda: _row(tiers[0]),  # type: ignore[no-any-return, no-untyped-call]  # a dict of lambdas (the kernel's branch-free dispatch) and num.branch return Any
            False: lambda: num.branch(basis > tiers[0].cap, lambda: _tier_row_from(tiers[1:], basis),
                                      lambda: _row(tiers[0]))}[len(tiers) == 1]()


def compute_tier_index(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-004: the position's tier: the first tier whose cap is at or above the tier basis."""
    return _tier_field_of(inst, compute_tier_basis(inst, size, price), "index")


def compute_tier_mmr(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-004: the maintenance margin ratio of the position's tier."""
    return _tier_field_of(inst, compute_tier_basis(inst, size, price), "mmr")


def compute_tier_deduction(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-004: the maintenance deduction of the position's tier (0 for OKX-style tables)."""
    return _tier_field_of(inst, compute_tier_basis(inst, size, price), "mm_deduction")


def is_within_tiers(inst: Instrument, size: Number, price: Number) -> Any:
    """MRG-004: the tier basis is at or below the last tier's cap (a larger position is refused)."""
    table = inst.tier_table
    return num.branch(table.bounded, lambda: compute_tier_basis(inst, size, price) <= table.max_cap, lambda: True)


# ---------------------------------------------------------------- MRG-005 .. MRG-007

def _mm_price(rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    return _at_mm_price(rules, mark, pos.entry)


def _at_mm_price(rules: MarginRules, at_mark: Number, at_entry: Number) -> Number:
    """MRG-005: of a quantity valued at the mark and at the entry, the one at the MM price."""
    return num.ite(rules.mm_price_basis is PriceBasis.MARK, at_mark, at_entry)


def compute_maintenance_margin(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-005: maintenance margin = value * tier MMR - tier deduction, exact.

    The value is taken at the mark price or at the entry price as the profile says; the tier is
    looked up at that same price.
    """
    price = _mm_price(rules, pos, mark)
    value = compute_position_value(inst, pos.size, price)
    return _maintenance_margin_of(value, compute_tier_mmr(inst, pos.size, price), compute_tier_deduction(inst, pos.size, price))


def _maintenance_margin_of(value: Number, mmr: Number, deduction: Number) -> Number:
    """MRG-005: the maintenance margin of a position of ``value`` in a tier of ``mmr`` and
    ``deduction`` (all at the MM price): ``value * mmr - deduction``, exact."""
    return value * mmr - deduction


def _units_up(amount: Number) -> Number:
    """NUM-002: a requirement or a fee as money: rounded UP to a whole unit (never in the holder's
    favour).  MRG-005, MRG-006 and MRG-009 state their amounts as money with it."""
    return num.ceil(amount)


def compute_maintenance_margin_units(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-005, NUM-002: the maintenance margin as money: rounded UP to a whole unit (a requirement)."""
    return _units_up(compute_maintenance_margin(inst, rules, pos, mark))


def compute_close_fee(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-006: the close-position fee the trigger reserves: value * close_fee_rate, exact,
    valued at the same price as the maintenance margin."""
    price = _mm_price(rules, pos, mark)
    return _close_fee_of(rules, compute_position_value(inst, pos.size, price))


def _close_fee_of(rules: MarginRules, value: Number) -> Number:
    """MRG-006: the close-position fee on a position of ``value`` (at the MM price), exact."""
    return value * rules.close_fee_rate


def compute_close_fee_units(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-006, NUM-002: the close-position fee as money: rounded UP to a whole unit (a fee)."""
    return _units_up(compute_close_fee(inst, rules, pos, mark))


def compute_liquidation_requirement(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """LIQ-001: what equity is compared with: maintenance margin + close fee (seed 003), or zero
    under the ``zero_equity`` trigger (seed 001).  Exact: comparisons are never rounded."""
    return _requirement_of(rules, compute_maintenance_margin(inst, rules, pos, mark), compute_close_fee(inst, rules, pos, mark))


def _requirement_of(rules: MarginRules, maintenance_margin: Number, close_fee: Number) -> Number:
    """LIQ-001: the requirement from the exact maintenance margin and close fee (MRG-005, MRG-006):
    their sum, or zero under the ``zero_equity`` trigger."""
    return num.branch(rules.trigger is TriggerRule.ZERO_EQUITY, lambda: 0, lambda: maintenance_margin + close_fee)


def compute_margin_ratio(inst: Instrument, pos: PositionTerms, mark: Number) -> Number:
    """MRG-007: the position's margin ratio: equity / position value at mark (exact)."""
    return _ratio_of(compute_equity(inst, pos, mark), compute_position_value(inst, pos.size, mark))


def _ratio_of(amount: Number, value: Number) -> Number:
    """MRG-007: an amount (equity, requirement) over the position value at the mark, exact."""
    return num.div(amount, value)


def compute_required_margin_ratio(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-007: the ratio the trigger compares with: requirement / position value at mark.

    For the OKX profile this is exactly tier MMR + close-position fee rate (seed 003).
    """
    return _ratio_of(compute_liquidation_requirement(inst, rules, pos, mark), compute_position_value(inst, pos.size, mark))


# ---------------------------------------------------------------- LIQ-001 trigger

def is_liquidatable(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Any:
    """LIQ-001: the position is liquidated when its equity is at or below the requirement
    (equivalently: margin ratio <= tier MMR + close fee rate)."""
    return _is_liquidatable_of(compute_equity(inst, pos, mark), compute_liquidation_requirement(inst, rules, pos, mark))


def _is_liquidatable_of(equity: Number, requirement: Number) -> Any:
    """LIQ-001: the trigger from the equity and the requirement at one mark: equality triggers."""
    return equity <= requirement


# ---------------------------------------------------------------- MRG-008 realized PnL

def compute_realized_pnl_units(inst: Instrument, pos: PositionTerms, price: Number) -> Number:
    """MRG-008, NUM-002: the PnL booked when the whole position closes at ``price``, as money: rounded
    DOWN (toward minus infinity), so a gain is never overpaid and a loss never under-charged."""
    return _units_down(compute_unrealized_pnl(inst, pos, price))


def _units_down(amount: Number) -> Number:
    """NUM-002: a PnL booked as money: rounded DOWN (toward minus infinity), so a gain is never
    overpaid and a loss never under-charged (MRG-008)."""
    return num.floor(amount)


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
    return _liquidation_price_from(inst, rules, pos, inst.tier_table.tiers)


def _liquidation_price_from(inst: Instrument, rules: MarginRules, pos: PositionTerms, tiers: tuple[Any, ...]) -> MaybePrice:
    # The first of ``tiers``'s candidate when it exists and falls back in that tier, else the next
    # tier's: the lowest tier that qualifies wins; concretely the tiers above it are never solved.
    tier = tiers[0]
    zero = rules.trigger is TriggerRule.ZERO_EQUITY
    rate = num.branch(zero, lambda: 0, lambda: tier.mmr + rules.close_fee_rate)
    ded = num.branch(zero, lambda: 0, lambda: tier.mm_deduction)
    cand = _solve_price(inst, rules, pos, rate, ded)
    price_for_tier = num.ite(rules.mm_price_basis is PriceBasis.MARK, cand.value, pos.entry)
    ok = num.branch(cand.defined, lambda: compute_tier_index(inst, pos.size, price_for_tier) == tier.index,
                    lambda: False)
    return num.branch(ok, lambda: MaybePrice(True, cand.value),  # type: ignore[no-any-return]  # num.branch returns Any (a value or a Z3-branched one)
                      lambda: num.branch(len(tiers) == 1, lambda: MaybePrice(False, 0),
                                         lambda: _liquidation_price_from(inst, rules, pos, tiers[1:])))


def compute_bankruptcy_price_on_tick(inst: Instrument, rules: MarginRules, pos: PositionTerms) -> MaybePrice:
    """LIQ-002: the bankruptcy price on the tick grid, rounded toward the entry price (up for a
    long, down for a short), so that closing there never loses more than the margin."""
    return _price_on_tick(inst, pos, compute_bankruptcy_price(inst, rules, pos))


def compute_liquidation_price_on_tick(inst: Instrument, rules: MarginRules, pos: PositionTerms) -> MaybePrice:
    """LIQ-003: the liquidation price on the tick grid, rounded toward the entry price (up for
    a long, down for a short): a displayed warning level is never later than the real one."""
    return _price_on_tick(inst, pos, compute_liquidation_price(inst, rules, pos))


def _price_on_tick(inst: Instrument, pos: PositionTerms, price: MaybePrice) -> MaybePrice:
    """LIQ-002 / LIQ-003, NUM-002: a bankruptcy or liquidation price on the tick grid, rounded toward
    the entry price (up for a long, down for a short); it exists where the exact price does."""
    return MaybePrice(price.defined, num.round_to_step_toward(price.value, inst.tick_size, pos.sign))


# ---------------------------------------------------------------- MRG-009 initial margin, leverage, the tier's limits

def compute_tier_imr(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-009: the initial margin ratio of the position's tier (MRG-004's lookup at ``price``)."""
    return _tier_field_of(inst, compute_tier_basis(inst, size, price), "imr")


def compute_tier_max_leverage(inst: Instrument, size: Number, price: Number) -> Number:
    """MRG-009: the maximum leverage of the position's tier (MRG-004's lookup at ``price``)."""
    return _tier_field_of(inst, compute_tier_basis(inst, size, price), "max_leverage")


def compute_tier_cap(inst: Instrument, size: Number, price: Number) -> MaybePrice:
    """MRG-009: the cap of the position's tier (the largest tier basis it covers: contracts, or whole
    settlement-currency units); it does not exist for the last tier of an unbounded table."""
    return _tier_cap_of(inst, compute_tier_index(inst, size, price))


def _tier_cap_of(inst: Instrument, index: Number) -> MaybePrice:
    """MRG-009: the cap of tier ``index`` of the instrument's table (none for the last tier of an
    unbounded table)."""
    table = inst.tier_table
    cap: Number = table.max_cap
    for tier in table.tiers[:-1]:
        cap = num.ite(index == tier.index, tier.cap, cap)
    return MaybePrice(num.or_(table.bounded, index != len(table.tiers)), cap)


def compute_initial_margin(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-009: the initial margin of the position's tier: value x tier IMR, exact, valued (and the
    tier looked up) at the same price as the maintenance margin (MRG-005)."""
    price = _mm_price(rules, pos, mark)
    return _initial_margin_of(compute_position_value(inst, pos.size, price), compute_tier_imr(inst, pos.size, price))


def _initial_margin_of(value: Number, imr: Number) -> Number:
    """MRG-009: the initial margin of a position of ``value`` in a tier of ``imr`` (at the MM price)."""
    return value * imr


def compute_initial_margin_units(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """MRG-009, NUM-002: the initial margin as money: rounded UP to a whole unit (a requirement)."""
    return _units_up(compute_initial_margin(inst, rules, pos, mark))


def compute_margin_for_leverage(inst: Instrument, size: Number, entry: Number, leverage: Number) -> Number:
    """MRG-009, NUM-002: the isolated margin of a position opened at ``leverage``: its value at the entry
    divided by the leverage, rounded UP to a whole unit (a requirement the trader posts: rounding down
    would open the position below the margin its leverage asks)."""
    return num.ceil(num.div(compute_position_value(inst, size, entry), leverage))


def compute_leverage(inst: Instrument, pos: PositionTerms) -> Number:
    """MRG-009: the position's leverage: its value at the entry over its margin (exact; 0 stands for
    "none" when the margin is 0, which has no finite leverage)."""
    return _leverage_of(pos, compute_position_value(inst, pos.size, pos.entry))


def _leverage_of(pos: PositionTerms, value_at_entry: Number) -> Number:
    """MRG-009: the leverage of ``pos`` worth ``value_at_entry`` at its entry: that value over the
    margin (exact; 0 stands for "none" when the margin is 0)."""
    return num.div_or(value_at_entry, pos.margin, 0)


def is_within_max_leverage(inst: Instrument, pos: PositionTerms) -> Any:
    """MRG-009: the position's leverage is at most the maximum leverage of its tier at the entry:
    value at entry <= margin x max leverage (exact; a zero margin is never within, the value being
    positive)."""
    return _within_max_leverage_of(pos, compute_position_value(inst, pos.size, pos.entry),
                                  compute_tier_max_leverage(inst, pos.size, pos.entry))


def _within_max_leverage_of(pos: PositionTerms, value_at_entry: Number, max_leverage: Number) -> Any:
    """MRG-009: ``value_at_entry <= margin x max_leverage`` (the tier's, at the entry), exact."""
    return value_at_entry <= pos.margin * max_leverage
