"""The liquidation engine (ENG-001 .. ENG-005): it holds what liquidation handed over and closes it
against a given order book; each close yields a surplus or a deficit for the insurance fund.

Rule functions over :mod:`backstop.reference.num` only.  The engine's position is the one it took
over: ``sign``, ``size`` and the takeover ``price`` as its entry (the exact bankruptcy price for a
full liquidation, the mark for a partial step), with no margin.  Closing ``q`` contracts at a fill
price ``p`` therefore yields exactly that position's PnL from the takeover price to ``p``: positive
(a surplus) when filled better than the takeover price, negative (a deficit) when worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.profile import FeeReceiver, FundShare, LiquidationRules
from backstop.reference.types import Instrument, PositionTerms

Number = Any


@dataclass(frozen=True, slots=True)
class Level:
    """One price level of the book on the side the engine trades against (bids when it sells,
    asks when it buys), best first.  ``size`` in contracts (>= 0), ``price`` on the tick grid."""

    price: Number
    size: Number


@dataclass(frozen=True, slots=True)
class Fill:
    size: Number
    price: Number


def walk_book(inst: Instrument, size: Number, levels: tuple[Level, ...]) -> tuple[tuple[Fill, ...], Number]:
    """ENG-001: fill ``size`` against the levels, best first: at each level take the smaller of what
    is left and the level's size rounded DOWN to the lot (never more than the book offers); what no
    level absorbs is the remainder, which stays with the engine."""
    remaining = size
    fills = []
    for level in levels:
        q = num.min_(remaining, num.floor_to_step(level.size, inst.lot_size))
        fills.append(Fill(q, level.price))
        remaining = remaining - q
    return tuple(fills), remaining


def walk_book_within(inst: Instrument, sign: Number, takeover_price: Number, size: Number,
                     levels: tuple[Level, ...], budget: Number) -> tuple[tuple[Fill, ...], Number]:
    """ENG-006: walk the book as ENG-001, but never take a deficit the fund cannot pay: at a level
    worse than the takeover price, fill at most the lots whose loss the budget left covers (the
    fund's available balance plus the surplus of the better levels already filled), rounded DOWN
    to the lot.  What is not filled is the remainder, for ADL."""
    remaining = size
    left = budget
    fills = []
    for level in levels:
        unit = M.compute_unrealized_pnl(inst, PositionTerms(sign, 1, takeover_price, 0), level.price)  # per contract
        worse = unit < 0
        affordable = num.floor_to_step(num.div_or(left, -unit, 0), inst.lot_size)
        cap = num.ite(worse, num.max_(0, affordable), remaining)
        q = num.min_(num.min_(remaining, num.floor_to_step(level.size, inst.lot_size)), cap)
        fills.append(Fill(q, level.price))
        remaining = remaining - q
        left = left + q * unit
    return tuple(fills), remaining


def compute_close_pnl(inst: Instrument, sign: Number, takeover_price: Number, fills: tuple[Fill, ...]) -> Number:
    """ENG-002: the exact PnL of the engine's fills: each fill closes ``size`` contracts of the
    engine's position (entered at the takeover price) at the fill's price (MRG-002)."""
    return num.sum_(M.compute_unrealized_pnl(inst, PositionTerms(sign, f.size, takeover_price, 0), f.price)
                    for f in fills)


def compute_close_result_units(inst: Instrument, sign: Number, takeover_price: Number, fills: tuple[Fill, ...]) -> Number:
    """ENG-002, NUM-002: the engine's result of one close as money: the exact PnL of all its fills,
    rounded DOWN once (a surplus is never overpaid to the fund, a deficit never under-counted); the
    fraction left over is rounding dust booked to the venue (ENG-005)."""
    return num.floor(compute_close_pnl(inst, sign, takeover_price, fills))


def compute_filled_value(inst: Instrument, fills: tuple[Fill, ...]) -> Number:
    """ENG-003: the value of the fills at their prices (MRG-001), the base of the liquidation fee."""
    return num.sum_(M.compute_position_value(inst, f.size, f.price) for f in fills)


def compute_liquidation_fee_units(inst: Instrument, lrules: LiquidationRules, fills: tuple[Fill, ...],
                                  result_units: Number) -> Number:
    """ENG-003, NUM-002: the liquidation fee of one close: the filled value times the profile's rate,
    rounded UP, but paid only out of a surplus (never more than the result, never from a deficit):
    the user has already lost the whole margin and nobody else owes it."""
    fee = num.ceil(compute_filled_value(inst, fills) * lrules.liquidation_fee_rate)
    return num.min_(fee, num.max_(0, result_units))


def compute_fund_share_units(inst: Instrument, lrules: LiquidationRules, fills: tuple[Fill, ...],
                             share_units: Number) -> Number:
    """ENG-004, NUM-002: the part of the fund's share of a close that the fund keeps.  Under
    ``fund_share = "all"`` the whole share; under ``"capped_by_fee_rate"`` (dYdX v4,
    ``GetLiquidationInsuranceFundDelta``) a surplus is capped at the filled value times
    ``fund_share_rate``, rounded DOWN (dYdX's ``BigIntMulPpm`` truncates: the fund never keeps more
    than the cap; the unit that rounding removes stays with the user, so nothing is created); a
    deficit (share <= 0) is never capped."""
    cap = num.floor(compute_filled_value(inst, fills) * lrules.fund_share_rate)
    capped = lrules.fund_share is FundShare.CAPPED_BY_FEE_RATE
    return num.ite(capped, num.ite(share_units > 0, num.min_(share_units, cap), share_units), share_units)


@dataclass(frozen=True, slots=True)
class CloseResult:
    """The money of one engine close: ``fund_units`` (signed: + surplus, - deficit) goes to the fund's
    pending ledger; ``fee_units`` to the fee receiver; ``user_units`` (>= 0; 0 unless the profile caps
    the fund's share, ENG-004) back to the liquidated user's account; ``dust`` (exact, in [0, 1)) to
    the venue.  ``fund_units + venue_units + user_units = result_units``."""

    fills: tuple[Fill, ...]
    remainder: Number
    pnl: Number
    result_units: Number
    fee_units: Number
    fee_to_fund: Any
    fund_units: Number
    venue_units: Number
    dust: Number
    user_units: Number = 0


def settle_close(inst: Instrument, lrules: LiquidationRules, sign: Number, takeover_price: Number,
                 fills: tuple[Fill, ...], remainder: Number) -> CloseResult:
    """ENG-004: the money of one close: the result (ENG-002) and the fee (ENG-003); the fund receives
    the result less the fee when the venue receives fees, or the whole result when the fund does
    (the "clawback" of seed 004).  Of the result less the fee, the fund keeps the share that
    :func:`compute_fund_share_units` allows (all of it by default); the rest goes back to the user
    (``user_units``, dYdX v4).  The fee itself is never capped."""
    pnl = compute_close_pnl(inst, sign, takeover_price, fills)
    result = num.floor(pnl)
    fee = compute_liquidation_fee_units(inst, lrules, fills, result)
    to_fund = lrules.fee_receiver is FeeReceiver.FUND
    kept = compute_fund_share_units(inst, lrules, fills, result - fee)
    user = result - fee - kept
    fund = num.ite(to_fund, kept + fee, kept)
    venue = num.ite(to_fund, 0, fee)
    return CloseResult(fills, remainder, pnl, result, fee, to_fund, fund, venue, pnl - result, user)


def close_position(inst: Instrument, lrules: LiquidationRules, sign: Number, size: Number,
                   takeover_price: Number, levels: tuple[Level, ...]) -> CloseResult:
    """ENG-004: one close against the whole book (ENG-001), settled by :func:`settle_close`."""
    fills, remainder = walk_book(inst, size, levels)
    return settle_close(inst, lrules, sign, takeover_price, fills, remainder)


def close_position_within(inst: Instrument, lrules: LiquidationRules, sign: Number, size: Number,
                          takeover_price: Number, levels: tuple[Level, ...], budget: Number) -> CloseResult:
    """ENG-006: one close within the fund's ``budget`` (ENG-006's walk), settled by :func:`settle_close`."""
    fills, remainder = walk_book_within(inst, sign, takeover_price, size, levels, budget)
    return settle_close(inst, lrules, sign, takeover_price, fills, remainder)


def compute_counterparty_pnl(inst: Instrument, sign: Number, entry: Number, fills: tuple[Fill, ...]) -> Number:
    """ENG-005: what the other side of the liquidated position gains by the fills: minus the
    liquidated position's PnL from its entry to each fill price (futures are zero-sum), exact."""
    return -num.sum_(M.compute_unrealized_pnl(inst, PositionTerms(sign, f.size, entry, 0), f.price) for f in fills)
