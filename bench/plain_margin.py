"""A plain exact-Python implementation of the margin slice, for the speed benchmark (issue 14).

Written from the spec (spec/10-margin.md MRG-001..MRG-009, spec/20-liquidation.md LIQ-001..LIQ-003,
LIQ-005's largest size in a tier) and seed 003, NOT from ``reference/``: plain ``Fraction``s,
Python ``if`` and loops, every quantity computed once.  It answers the quantities ``backstop eval``
answers for one isolated position in a ``margin`` request (``margin_quantities``), so that
``bench/bench_eval_speed.py`` can time the reference against it and check the two equal.

It reads the profile's data objects (instrument, tier table, margin rules) only as data.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from backstop.reference.profile import PriceBasis, TriggerRule
from backstop.reference.types import TierBasis

__all__ = ["margin_quantities", "tier_of"]


def tier_of(tiers: tuple[Any, ...], basis: Fraction) -> Any:
    """MRG-004: the first tier whose cap is at or above the basis (a cap belongs to the lower tier);
    above the last cap the last tier (LIQ-003's lookup, C55; positions beyond it are refused before)."""
    for t in tiers:
        if t.cap is None or basis <= t.cap:
            return t
    return tiers[-1]


def _on_tick(p: Fraction, tick: Fraction, sign: int) -> Fraction:
    # LIQ-002/LIQ-003: toward the entry: up (ceil) for a long, down (floor) for a short
    q = p / tick
    return (math.ceil(q) if sign > 0 else math.floor(q)) * tick


def margin_quantities(profile: Any, pos: Any, mark: Fraction, leverage: Any = None) -> dict[str, Any]:
    """Every value of a ``margin`` answer for one validated isolated position at ``mark``
    (``None`` where a quantity does not exist), keyed by the answer's names."""
    inst = profile.instrument(pos.instrument)
    rules = profile.margin
    table = inst.tier_table
    tiers = table.tiers
    s, n, e, m = pos.sign, pos.size, pos.entry_price, pos.margin
    linear = inst.is_linear
    S = inst.scale
    cv = inst.contract_value
    k = n * cv * S                                  # MRG-001: k = n * cv * S
    at_mark = rules.mm_price_basis is PriceBasis.MARK
    by_size = table.basis is TierBasis.SIZE
    zero = rules.trigger is TriggerRule.ZERO_EQUITY
    cfr = rules.close_fee_rate

    def value(p: Fraction) -> Fraction:             # MRG-001
        return k * p if linear else k / p

    def tier_at(p: Fraction, v: Fraction | None = None) -> Any:   # MRG-004 (basis: size or V/S)
        if by_size:
            return tier_of(tiers, n)
        return tier_of(tiers, (value(p) if v is None else v) / S)

    v_mark = value(mark)
    if linear:                                      # MRG-002
        pnl = s * k * (mark - e)
    else:
        pnl = s * k * (Fraction(1) / e - Fraction(1) / mark)
    equity = m + pnl                                # MRG-003
    t_mark = tier_at(mark, v_mark)
    q = mark if at_mark else e                      # MRG-005: the MM price
    v_q = v_mark if at_mark else value(e)
    t_q = t_mark if at_mark else tier_at(e, v_q)
    mm = v_q * t_q.mmr - t_q.mm_deduction           # MRG-005
    fee = v_q * cfr                                 # MRG-006
    req = 0 if zero else mm + fee                   # LIQ-001

    # LIQ-002: equity (less the fee to close there, with the option) is zero
    r_bp = cfr if rules.bankruptcy_includes_close_fee else 0
    if linear:
        den = k * (r_bp - s)
        bp = (m - s * k * e) / den if den != 0 else None
    else:
        den = m + s * k / e
        bp = k * (r_bp + s) / den if den != 0 else None
    if bp is not None and bp <= 0:
        bp = None

    # LIQ-003: each tier's closed form; the lowest tier whose candidate falls back in it
    lp = None
    for t in tiers:
        r = 0 if zero else t.mmr + cfr
        d = 0 if zero else t.mm_deduction
        if linear and at_mark:
            den = k * (r - s)
            p = (m - s * k * e + d) / den if den != 0 else None
        elif linear:
            p = e + s * (k * e * r - d - m) / k
        elif at_mark:
            den = m + s * k / e + d
            p = k * (r + s) / den if den != 0 else None
        else:
            den = 1 / e - s * (k * r / e - d - m) / k
            p = 1 / den if den != 0 else None
        if p is None or p <= 0:
            continue
        if tier_at(p if at_mark else e) is t:
            lp = p
            break

    # MRG-009
    cap = t_q.cap
    if cap is None:
        max_size = None
    else:
        limit = cap if by_size else (cap / (cv * q) if linear else cap * q / cv)
        max_size = math.floor(limit / inst.lot_size) * inst.lot_size   # LIQ-005: down to the lot
    v_entry = value(e)
    im = v_q * t_q.imr
    eff = v_mark / equity if equity > 0 else None
    if lp is None:
        t_lp = None
    else:
        t_lp = tier_at(lp if at_mark else e)
    return {
        "position_value": v_mark,
        "unrealized_pnl": pnl,
        "equity": equity,
        "tier": t_mark.index,
        "tier_mmr": t_mark.mmr,
        "maintenance_margin": mm,
        "maintenance_margin_units": math.ceil(mm),
        "close_fee": fee,
        "close_fee_units": math.ceil(fee),
        "liquidation_requirement": req,
        "margin_ratio": equity / v_mark,
        "required_margin_ratio": req / v_mark,
        "liquidatable": equity <= req,
        "realized_pnl_at_mark_units": math.floor(pnl),
        "bankruptcy_price": bp,
        "bankruptcy_price_on_tick": None if bp is None else _on_tick(bp, inst.tick_size, s),
        "liquidation_price": lp,
        "liquidation_price_on_tick": None if lp is None else _on_tick(lp, inst.tick_size, s),
        "margin": m,
        "requested_leverage": leverage,
        "mm_price": q,
        "tier_used": t_q.index,
        "mmr_used": t_q.mmr,
        "deduction_used": t_q.mm_deduction,
        "tier_imr": t_q.imr,
        "tier_max_leverage": t_q.max_leverage,
        "tier_cap": cap,
        "tier_max_size": max_size,
        "initial_margin": im,
        "initial_margin_units": math.ceil(im),
        "leverage": v_entry / m if m > 0 else None,
        "within_max_leverage": m > 0 and v_entry <= m * tier_at(e, v_entry).max_leverage,
        "effective_leverage": eff,
        "tier_at_liquidation_price": None if t_lp is None else t_lp.index,
        "mmr_at_liquidation_price": None if t_lp is None else t_lp.mmr,
        "deduction_at_liquidation_price": None if t_lp is None else t_lp.mm_deduction,
    }
