"""The transition's own rules (TRN-001 .. TRN-008, spec/50-transition.md).

:func:`backstop.reference.step.process_event` composes the rule modules; every number it books and
every decision it takes beyond iterating in a fixed order is one of the functions below (or a rule
function of margin, liquidation, engine, fund, journal and adl).  They are written over
:mod:`backstop.reference.num` only, so the same function runs on exact numbers and on Z3 terms:
the obligations of ``backstop.proofs.transition`` prove them one by one, and OBL-INV-024 proves
their composition by running ``process_event`` itself on shadowed numbers.

Sign conventions: amounts are in the settlement currency's smallest unit; a *posting* is positive
when it flows into the account named.  No function here rounds: every amount it combines was
rounded by the rule that produced it (MRG-008, LIQ-005, ENG-002, ENG-003, ADL-009), and the exact
residues go to the venue as dust (ENG-005), so the sums below create no money.
"""

from __future__ import annotations

from typing import Any, Iterable

from backstop.reference import adl as A
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.engine import Level
from backstop.reference.profile import LiquidationRules, MarginRules, PartialRule, PriceBasis
from backstop.reference.types import Instrument, PositionTerms

__all__ = ["account_order_key", "is_market_open", "is_cross_partial_candidate", "decide_cross_round",
           "max_cross_rounds", "compute_balance_after_step", "compute_balance_after_adl",
           "compute_partial_dust", "compute_takeover_dust", "compute_takeover_fee_dust", "compute_dust_total",
           "compute_fund_posting",
           "compute_filled", "compute_size_left", "compute_open_remainder", "compute_adl_state",
           "is_any", "is_retry_allowed", "compute_levels_after", "compute_adl_dust"]

Number = Any


# ---------------------------------------------------------------- TRN-002 who goes first

def account_order_key(account_id: str) -> tuple[str]:
    """TRN-002: accounts compete for the same book and the same fund budget in ascending order of
    their id (byte order of the UTF-8 text).  The sources say nothing on this; the order is fixed
    so that a run is reproducible (spec/99 C37)."""
    return (account_id,)


# ---------------------------------------------------------------- TRN-005 the market is closed in the ADL state

def is_market_open(in_adl_state: Any) -> Any:
    """TRN-005: the engine may place a liquidation order on the market for a fund's contracts only
    while that fund is not in the ADL state (ADL-003; seed 003 §1: once ADL is triggered no
    liquidation order is placed on the market)."""
    return num.not_(in_adl_state)


# ---------------------------------------------------------------- TRN-003 / TRN-004 cross partial rounds

def is_cross_partial_candidate(inst: Instrument, rules: MarginRules, lrules: LiquidationRules,
                               pos: PositionTerms, mark: Number) -> Any:
    """TRN-003: in a PARTIAL round of a cross account (LIQ-008), a position takes one LIQ-005 step
    iff partial liquidation is allowed and its tier -- at the price the margin is valued at
    (MRG-004) -- is at least :data:`liquidation.PARTIAL_MIN_TIER` (seed 003: "level 3 or above");
    the other positions are left as they are in that round."""
    price = num.ite(rules.mm_price_basis is PriceBasis.MARK, mark, pos.entry)
    return num.and_(lrules.partial is not PartialRule.NONE,
                    M.compute_tier_index(inst, pos.size, price) >= L.PARTIAL_MIN_TIER)


def decide_cross_round(action: Number, funded: Any, last_round: Any) -> Number:
    """TRN-004: the action of one cross round.  A PARTIAL decision (LIQ-008) becomes FULL when the
    round's steps would take the balance below zero (LIQ-008: the balance never goes negative) or
    when it is the last round allowed (:func:`max_cross_rounds`; PARTIAL cannot be reached there,
    so this is a bound, proved); NONE and FULL stand."""
    return num.ite(num.and_(action == L.PARTIAL, num.or_(num.not_(funded), last_round)), L.FULL, action)


def max_cross_rounds(instruments: Iterable[Instrument]) -> int:
    """TRN-004: the rounds of one cross account at one mark: one more than the longest partial
    loop of its instruments (LIQ-006), since every round lowers each candidate by two tiers."""
    longest: Number = 0
    for i in instruments:
        longest = num.max_(longest, L.max_partial_steps(i))
    return 1 + longest  # type: ignore[no-any-return]  # num.max_ returns Number (Any); concretely an int


# ---------------------------------------------------------------- money moved by the plumbing

def compute_balance_after_step(balance: Number, realized_units: Number, fee_units: Number) -> Number:
    """LIQ-009 / TRN-004: a cross balance after one partial step: plus the step's realized PnL
    (rounded down, LIQ-005) minus its close fee (rounded up, LIQ-005)."""
    return balance + realized_units - fee_units


def compute_balance_after_adl(balance: Number, realized_units: Number, released_units: Number) -> Number:
    """ADL-008: a counterparty's balance after its ADL fill: plus the realized PnL of the reduced
    part and the margin it released (both from ADL-008/ADL-009)."""
    return balance + realized_units + released_units


def compute_partial_dust(inst: Instrument, sign: Number, reduced: Number, entry: Number, mark: Number,
                         realized_units: Number) -> Number:
    """ENG-005: the residue of a partial step's realized PnL: the exact PnL of the reduced part at
    the mark less what was credited (rounded down), in [0, 1) units, to the venue."""
    return M.compute_unrealized_pnl(inst, PositionTerms(sign, reduced, entry, 0), mark) - realized_units


def compute_takeover_dust(cash: Number, cash_units: Number) -> Number:
    """ENG-005: the residue of a full takeover's engine cash (LIQ-007: exact cash less the whole
    units booked to the fund), to the venue."""
    return cash - cash_units


def compute_takeover_fee_dust(fee: Number, fee_units: Number) -> Number:
    """ENG-005 / LIQ-007: the residue of the fee to close a full takeover charges under
    ``margin.bankruptcy_includes_close_fee`` (the exact fee less the whole units paid to the
    close-fee receiver, rounded down), in [0, 1) unit, to the venue."""
    return fee - fee_units


def compute_dust_total(dust: Number, amount: Number) -> Number:
    """ENG-005: the venue's dust in one currency after one more residue (exact)."""
    return dust + amount


def compute_fund_posting(fund_units: Number, fee_units: Number, venue_units: Number) -> Number:
    """ENG-004: what one engine close posts to the fund's pending ledger as its *result*, given the
    ENG-004 split: the fund's whole share ``fund_units`` less the part of the fee that is posted
    apart as a fee to the fund (``fee_units - venue_units``: the whole fee when the fund receives
    fees, nothing when the venue does).  So result posting + fee to the fund = ``fund_units``."""
    return fund_units - (fee_units - venue_units)


def compute_filled(size: Number, remainder: Number) -> Number:
    """ENG-001: the contracts an engine close placed: the size handed over less what stays open."""
    return size - remainder


def compute_size_left(size: Number, reduced: Number) -> Number:
    """ADL-006: what stays open of a remainder after ADL reduced ``reduced`` of it."""
    return size - reduced


def compute_open_remainder(sizes: tuple[Number, ...]) -> Number:
    """ADL-003: the open remainder of a fund: the sum of its remainders' sizes (contracts)."""
    return num.sum_(sizes)


def is_any(flags: tuple[Any, ...]) -> Any:
    """TRN-006: one of the checks of this step held (an empty check holds none)."""
    return num.any_(flags)


def compute_adl_state(was_active: Any, trigger_a: tuple[Any, ...], trigger_b: Any, open_sizes: tuple[Number, ...]) -> Any:
    """TRN-006 / ADL-003: the fund's ADL state after its remainders were worked at one check:
    trigger (a) holds when the fund could not cover one of them (ADL-002, ``trigger_a`` per
    remainder), trigger (b) is the drawdown (ADL-001), and the state continues while a remainder
    is open."""
    return A.adl_state_continues(was_active, num.any_(trigger_a), trigger_b, compute_open_remainder(open_sizes))


def is_retry_allowed(in_adl_state: Any, trigger_b: Any) -> Any:
    """TRN-005: an open remainder is offered to the book again only while the market is open to
    the fund (not in the ADL state) and the drawdown trigger (b) does not hold -- under (b) the
    remainder goes straight to ADL (ADL-003)."""
    return num.and_(is_market_open(in_adl_state), num.not_(trigger_b))


def compute_levels_after(levels: tuple[Any, ...], fills: tuple[Any, ...]) -> tuple[Any, ...]:
    """ENG-001: the book side after an engine close: each level less what its fill took (the fills
    are best first, one per level, ENG-001's walk); the levels beyond the fills stay as they were.
    Empty levels are dropped by the plumbing when it builds the next book."""
    return tuple(Level(lv.price, lv.size - f.size) for lv, f in zip(levels, fills)) + tuple(levels[len(fills):])


def compute_adl_dust(inst: Instrument, liquidated_sign: Number, mark_quantity: Number, bankruptcy_price: Number,
                     mark: Number, fund_result_units: Number, results: tuple[Any, ...]) -> Number:
    """ENG-005 / ADL-008 / ADL-009: the residue of one ADL, to the venue: each counterparty's exact
    realized PnL less what was credited (rounded DOWN, ADL-008), plus the fund's exact gap on the
    part at the mark less its result (rounded DOWN, ADL-009).  Each term is in [0, 1) unit, so
    booking it creates no money and loses none (a remainder taken over at an off-grid bankruptcy
    price, as a cross liquidation's, leaves a fraction)."""
    cps = num.sum_(A.compute_adl_counterparty_pnl(inst, r.new_position.sign, r.new_position.entry, r.reduction, r.at_mark,
                                                  mark, bankruptcy_price) - r.realized_units for r in results)
    return cps + A.compute_adl_gap(inst, liquidated_sign, mark_quantity, bankruptcy_price, mark) - fund_result_units


# ---------------------------------------------------------------- ENG-004 the user's share of a surplus

def compute_balance_after_surplus_return(balance: Number, user_units: Number) -> Number:
    """ENG-004: the liquidated user's balance after an engine close returns ``user_units`` (>= 0) of
    its surplus to the user (``liquidation.fund_share = "capped_by_fee_rate"``; 0 otherwise)."""
    return balance + user_units


__all__ += ["compute_balance_after_surplus_return"]
