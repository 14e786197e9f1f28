"""The typed, concrete entry point of the margin slice: one position, one mark price, every
quantity with the rule IDs that produced it.  ``backstop eval`` and the test vectors use it.

Validation happens here, before any rule runs, so a refused request changes nothing and names
the field: the instrument must exist in the profile, the size must be a multiple of the lot
size, the position must fit the tier table, the mark price must be positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from backstop.reference import margin as M
from backstop.reference.errors import InvalidInput, OutOfTierRange
from backstop.reference.profile import Profile
from backstop.reference.types import MarginMode, Position, exact, format_exact

__all__ = ["Quantity", "evaluate_position", "evaluate_parts", "validate_position"]


@dataclass(frozen=True, slots=True)
class Quantity:
    name: str
    value: Any            # int (money units), Fraction, bool, or None (does not exist)
    unit: str             # "units of USDT", "USDT per BTC", "ratio", "tier", "bool"
    rules: tuple[str, ...]


def validate_position(profile: Profile, pos: Position, mark: Any, field: str = "position") -> Fraction:
    """Check a position against its profile; returns the exact mark price."""
    inst = profile.instrument(pos.instrument, f"{field}.instrument")
    mark_f = exact("mark_price", mark, "MRG-002", positive=True)
    if pos.margin_mode is not MarginMode.ISOLATED:
        raise InvalidInput(f"{field}.margin_mode", pos.margin_mode.value,
                           "this entry point evaluates isolated positions (cross margin: liquidation issue)", "MRG-003")
    if (pos.size / inst.lot_size).denominator != 1:
        raise InvalidInput(f"{field}.size", pos.size, f"must be a multiple of the lot size {format_exact(inst.lot_size)}", "MRG-001")
    for label, price in (("entry_price", pos.entry_price), ("mark_price", mark_f)):
        if not M.is_within_tiers(inst, pos.size, price):
            raise OutOfTierRange(f"{field}.size", pos.size,
                                 f"above the last tier's cap of table {inst.tier_table.name!r} at the {label.replace('_', ' ')}", "MRG-004")
    return mark_f


def evaluate_position(profile: Profile, pos: Position, mark: Any) -> list[Quantity]:
    """Every quantity of the margin slice for an isolated position at ``mark``."""
    return evaluate_parts(profile, pos, mark)[0]


def evaluate_parts(profile: Profile, pos: Position, mark: Any) -> tuple[list[Quantity], dict[str, Any]]:
    """:func:`evaluate_position`'s quantities and the parts they were computed from (the MM price,
    the bankruptcy and liquidation prices as ``MaybePrice``), so that a caller reads them instead of
    computing them again.  Every value is computed once, by the rule function that states it, from
    the values it depends on with margin's ``_*_of`` parts -- the very functions margin's public rule
    functions are written with, so the proofs and the dual-run tests cover them through those;
    ``tests/unit/test_eval_parts.py`` checks every value equal to its public rule function computed
    from scratch."""
    mark_f = validate_position(profile, pos, mark)
    inst = profile.instrument(pos.instrument)
    rules = profile.margin
    t = pos.terms()
    ccy = inst.settle_currency.code
    money = f"smallest units of {ccy} (10^-{inst.settle_currency.decimals})"
    price = "quote currency per base unit"
    value = M.compute_position_value(inst, pos.size, mark_f)
    pnl = M.compute_unrealized_pnl(inst, t, mark_f)
    equity = M._equity_of(t, pnl)
    mm_price = M._mm_price(rules, t, mark_f)
    at_entry = M.compute_position_value(inst, pos.size, pos.entry_price)
    mm_value = M._at_mm_price(rules, value, at_entry)
    basis = M._tier_basis_of(inst, pos.size, value)
    entry_basis = M._tier_basis_of(inst, pos.size, at_entry)
    row = M._tier_row_of(inst, basis)
    entry_row = M._tier_row_of(inst, entry_basis)
    mm_row = M._at_mm_price(rules, row, entry_row)
    mm = M._maintenance_margin_of(mm_value, mm_row.mmr, mm_row.mm_deduction)
    fee = M._close_fee_of(rules, mm_value)
    requirement = M._requirement_of(rules, mm, fee)
    bp = M.compute_bankruptcy_price(inst, rules, t)
    lp = M.compute_liquidation_price(inst, rules, t)
    q = [
        Quantity("position_value", value, money, ("MRG-001",)),
        Quantity("unrealized_pnl", pnl, money, ("MRG-002",)),
        Quantity("equity", equity, money, ("MRG-003",)),
        Quantity("tier", row.index, "tier", ("MRG-004",)),
        Quantity("tier_mmr", row.mmr, "ratio", ("MRG-004",)),
        Quantity("maintenance_margin", mm, money, ("MRG-005",)),
        Quantity("maintenance_margin_units", M._units_up(mm), money, ("MRG-005", "NUM-002")),
        Quantity("close_fee", fee, money, ("MRG-006",)),
        Quantity("close_fee_units", M._units_up(fee), money, ("MRG-006", "NUM-002")),
        Quantity("liquidation_requirement", requirement, money, ("LIQ-001",)),
        Quantity("margin_ratio", M._ratio_of(equity, value), "ratio", ("MRG-007",)),
        Quantity("required_margin_ratio", M._ratio_of(requirement, value), "ratio", ("MRG-007", "LIQ-001")),
        Quantity("liquidatable", M._is_liquidatable_of(equity, requirement), "bool", ("LIQ-001",)),
        Quantity("realized_pnl_at_mark_units", M._units_down(pnl), money, ("MRG-008", "NUM-002")),
        Quantity("bankruptcy_price", bp.get(), price, ("LIQ-002",)),
        Quantity("bankruptcy_price_on_tick", M._price_on_tick(inst, t, bp).get(), price, ("LIQ-002", "NUM-002")),
        Quantity("liquidation_price", lp.get(), price, ("LIQ-003",)),
        Quantity("liquidation_price_on_tick", M._price_on_tick(inst, t, lp).get(), price, ("LIQ-003", "NUM-002")),
    ]
    return q, {"mark": mark_f, "value": value, "equity": equity, "mm_price": mm_price, "mm_value": mm_value,
               "value_at_entry": at_entry, "mm_row": mm_row, "entry_row": entry_row,
               "bankruptcy_price": bp, "liquidation_price": lp}


def present(defined: Any, value: Any) -> Any:
    """``value`` where ``defined`` is true, ``None`` (does not exist) otherwise: how a query reports
    a quantity that exists only sometimes (a tier at a price that does not exist)."""
    return value if defined is True else None


def require(condition: Any, field: str, value: Any, reason: str, rule: str = "") -> None:
    """Refuse an input (``InvalidInput`` naming the field and rule) unless ``condition`` is true:
    the check a query hands back to its caller, written once here so that queries stay pure."""
    if condition is not True:
        raise InvalidInput(field, value, reason, rule)
