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

__all__ = ["Quantity", "evaluate_position", "validate_position"]


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
    mark_f = validate_position(profile, pos, mark)
    inst = profile.instrument(pos.instrument)
    rules = profile.margin
    t = pos.terms()
    ccy = inst.settle_currency.code
    money = f"smallest units of {ccy} (10^-{inst.settle_currency.decimals})"
    price = "quote currency per base unit"
    q = [
        Quantity("position_value", M.compute_position_value(inst, pos.size, mark_f), money, ("MRG-001",)),
        Quantity("unrealized_pnl", M.compute_unrealized_pnl(inst, t, mark_f), money, ("MRG-002",)),
        Quantity("equity", M.compute_equity(inst, t, mark_f), money, ("MRG-003",)),
        Quantity("tier", M.compute_tier_index(inst, pos.size, mark_f), "tier", ("MRG-004",)),
        Quantity("tier_mmr", M.compute_tier_mmr(inst, pos.size, mark_f), "ratio", ("MRG-004",)),
        Quantity("maintenance_margin", M.compute_maintenance_margin(inst, rules, t, mark_f), money, ("MRG-005",)),
        Quantity("maintenance_margin_units", M.compute_maintenance_margin_units(inst, rules, t, mark_f), money, ("MRG-005", "NUM-002")),
        Quantity("close_fee", M.compute_close_fee(inst, rules, t, mark_f), money, ("MRG-006",)),
        Quantity("close_fee_units", M.compute_close_fee_units(inst, rules, t, mark_f), money, ("MRG-006", "NUM-002")),
        Quantity("liquidation_requirement", M.compute_liquidation_requirement(inst, rules, t, mark_f), money, ("LIQ-001",)),
        Quantity("margin_ratio", M.compute_margin_ratio(inst, t, mark_f), "ratio", ("MRG-007",)),
        Quantity("required_margin_ratio", M.compute_required_margin_ratio(inst, rules, t, mark_f), "ratio", ("MRG-007", "LIQ-001")),
        Quantity("liquidatable", M.is_liquidatable(inst, rules, t, mark_f), "bool", ("LIQ-001",)),
        Quantity("realized_pnl_at_mark_units", M.compute_realized_pnl_units(inst, t, mark_f), money, ("MRG-008", "NUM-002")),
        Quantity("bankruptcy_price", M.compute_bankruptcy_price(inst, rules, t).get(), price, ("LIQ-002",)),
        Quantity("bankruptcy_price_on_tick", M.compute_bankruptcy_price_on_tick(inst, rules, t).get(), price, ("LIQ-002", "NUM-002")),
        Quantity("liquidation_price", M.compute_liquidation_price(inst, rules, t).get(), price, ("LIQ-003",)),
        Quantity("liquidation_price_on_tick", M.compute_liquidation_price_on_tick(inst, rules, t).get(), price, ("LIQ-003", "NUM-002")),
    ]
    return q


def present(defined: Any, value: Any) -> Any:
    """``value`` where ``defined`` is true, ``None`` (does not exist) otherwise: how a query reports
    a quantity that exists only sometimes (a tier at a price that does not exist)."""
    return value if defined is True else None


def require(condition: Any, field: str, value: Any, reason: str, rule: str = "") -> None:
    """Refuse an input (``InvalidInput`` naming the field and rule) unless ``condition`` is true:
    the check a query hands back to its caller, written once here so that queries stay pure."""
    if condition is not True:
        raise InvalidInput(field, value, reason, rule)
