"""Forced liquidation of isolated positions and cross-margin accounts (LIQ-004 .. LIQ-009).

Rule functions over :mod:`backstop.reference.num` only (they run on exact numbers and on Z3
terms).  The decisions:

* LIQ-004 -- what happens to a position at a mark price: nothing (healthy), a partial reduction
  (tier 3 and above, still above tier 1's requirement, the profile allows partial liquidation),
  or a full liquidation;
* LIQ-005 -- one partial step: the new size is the largest size on the lot grid whose tier is at
  most the target tier (two below, or tier 1 under ``to_tier_one``); the reduced part is closed at
  the mark price and handed to the engine there; the user's realized PnL (rounded down) and the
  close-position fee (rounded up, never beyond the reduced part's margin share) settle into the
  isolated margin, which stays with the rest;
* LIQ-006 -- the bounded loop of partial steps, ending healthy or in a full liquidation;
* LIQ-007 -- full liquidation: the engine takes the position over at its exact bankruptcy
  price; the user's loss is exactly the margin;
* LIQ-008 / LIQ-009 -- the same for an account's cross positions in one settlement currency,
  which share the balance of that currency.

Actions are numbers (so that they can be Z3 terms): :data:`NONE`, :data:`PARTIAL`, :data:`FULL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.profile import LiquidationRules, MarginRules, PartialRule, PriceBasis, TriggerRule
from backstop.reference.types import Instrument, PositionTerms, TierBasis, TierTable

Number = Any

NONE, PARTIAL, FULL = 0, 1, 2
ACTION_NAMES = {NONE: "none", PARTIAL: "partial", FULL: "full"}
PARTIAL_MIN_TIER = 3  # seed 003 §2: partial liquidation "when a user's position tier is at level 3 or above"


# ---------------------------------------------------------------- LIQ-004 the decision

def compute_tier_one_requirement(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Number:
    """LIQ-004: the requirement the whole position would have at tier 1's rates: value x (tier-1 MMR)
    - tier-1 deduction + close fee (exact; zero under the ``zero_equity`` trigger)."""
    price = num.ite(rules.mm_price_basis is PriceBasis.MARK, mark, pos.entry)
    t1 = inst.tier_table.tiers[0]
    value = M.compute_position_value(inst, pos.size, price)
    full = value * t1.mmr - t1.mm_deduction + M.compute_close_fee(inst, rules, pos, mark)
    return num.ite(rules.trigger is TriggerRule.ZERO_EQUITY, 0, full)


def is_partial_eligible(inst: Instrument, rules: MarginRules, lrules: LiquidationRules,
                        pos: PositionTerms, mark: Number) -> Any:
    """LIQ-004: partial liquidation applies when the profile allows it, the position's tier is 3 or
    above, and its equity is still strictly above the tier-1 requirement."""
    price = num.ite(rules.mm_price_basis is PriceBasis.MARK, mark, pos.entry)
    tier = M.compute_tier_index(inst, pos.size, price)
    return num.and_(lrules.partial is not PartialRule.NONE, tier >= PARTIAL_MIN_TIER,
                    M.compute_equity(inst, pos, mark) > compute_tier_one_requirement(inst, rules, pos, mark))


def decide_action(inst: Instrument, rules: MarginRules, lrules: LiquidationRules,
                  pos: PositionTerms, mark: Number) -> Number:
    """LIQ-004: NONE when the position is not liquidatable (LIQ-001); PARTIAL when it is and a partial
    reduction applies; FULL otherwise (tier 1 or 2, or at or below tier 1's requirement)."""
    liq = M.is_liquidatable(inst, rules, pos, mark)
    partial = is_partial_eligible(inst, rules, lrules, pos, mark)
    return num.ite(num.not_(liq), NONE, num.ite(partial, PARTIAL, FULL))


# ---------------------------------------------------------------- LIQ-005 one partial step

def _cap_of(table: TierTable, index: Number) -> Number:
    # The cap of tier ``index`` (the last, unbounded tier is never a target: 0 stands in).
    result: Number = 0
    for tier in table.tiers[:-1]:
        result = num.ite(index == tier.index, tier.cap, result)
    return result


def compute_partial_target_tier(lrules: LiquidationRules, tier: Number) -> Number:
    """LIQ-005: the tier a partial step aims at: two below the current one (seed 003's loop), or
    tier 1 under the ``to_tier_one`` reading; never below tier 1."""
    return num.ite(lrules.partial is PartialRule.TO_TIER_ONE, 1, num.max_(1, tier - 2))


def compute_max_size_in_tier(inst: Instrument, index: Number, price: Number) -> Number:
    """LIQ-005, NUM-002: the largest size on the lot grid whose tier basis at ``price`` is at most the
    cap of tier ``index`` -- rounded DOWN to the lot, so that the position never stays above it."""
    cap = _cap_of(inst.tier_table, index)
    k = inst.contract_value
    notional = num.ite(inst.is_linear, num.div(cap, k * price), num.div(cap * price, k))
    limit = num.ite(inst.tier_table.basis is TierBasis.SIZE, cap, notional)
    return num.floor_to_step(limit, inst.lot_size)


@dataclass(frozen=True, slots=True)
class PartialStep:
    """One partial reduction.  ``position`` is what remains; ``reduced`` is handed to the engine at
    ``price`` (the mark) as a position with entry ``price`` and no margin."""

    position: PositionTerms
    reduced: Number
    price: Number
    realized_units: Number
    fee_units: Number
    tier_before: Number
    tier_after: Number
    margin_share_units: Number


def compute_partial_step(inst: Instrument, rules: MarginRules, lrules: LiquidationRules,
                         pos: PositionTerms, mark: Number) -> PartialStep:
    """LIQ-005: reduce the position to the largest lot-grid size in the target tier.

    The reduced part closes at the mark: the user's realized PnL on it is rounded DOWN (MRG-008);
    the close-position fee on it (MRG-006) is rounded UP but never charged beyond the reduced part's
    margin share ``ceil(margin * reduced / size)`` (at most the margin) plus that PnL, so the user never loses more than the
    margin of what was liquidated.  Both settle into the isolated margin of the remaining position.
    """
    price = num.ite(rules.mm_price_basis is PriceBasis.MARK, mark, pos.entry)
    tier = M.compute_tier_index(inst, pos.size, price)
    target = compute_partial_target_tier(lrules, tier)
    new_size = num.min_(pos.size, compute_max_size_in_tier(inst, target, price))
    reduced = pos.size - new_size
    part = PositionTerms(pos.sign, reduced, pos.entry, 0)
    realized = M.compute_realized_pnl_units(inst, part, mark)
    share = num.min_(pos.margin, num.ceil(num.div(pos.margin * reduced, pos.size)))
    fee = num.min_(M.compute_close_fee_units(inst, rules, part, mark), num.max_(0, share + realized))
    rest = PositionTerms(pos.sign, new_size, pos.entry, pos.margin + realized - fee)
    return PartialStep(rest, reduced, mark, realized, fee, tier,
                       M.compute_tier_index(inst, new_size, price), share)


# ---------------------------------------------------------------- LIQ-006 the loop

def max_partial_steps(inst: Instrument) -> int:
    """LIQ-006: the bound of the partial loop: each step lowers the tier by two, from at most the
    last tier down to tier 1 or 2, so ``n // 2`` steps for ``n`` tiers (at least 1)."""
    return int(num.max_(1, num.div_floor(len(inst.tier_table.tiers), 2)))


@dataclass(frozen=True, slots=True)
class LiquidationOutcome:
    """The end of the loop: the action taken at the end (NONE: healthy; FULL: hand over the rest),
    the remaining position, and the partial steps taken (each with an ``active`` flag)."""

    action: Number
    position: PositionTerms
    steps: tuple[tuple[Any, PartialStep], ...]
    step_count: Number


def run_liquidation(inst: Instrument, rules: MarginRules, lrules: LiquidationRules,
                    pos: PositionTerms, mark: Number) -> LiquidationOutcome:
    """LIQ-006: repeat LIQ-004/LIQ-005 at the same mark, at most :func:`max_partial_steps` times: while
    the decision is PARTIAL, take a step; the loop ends when the position is healthy (NONE) or the
    decision is FULL.  After the last allowed step the decision is final (PARTIAL cannot remain:
    proved in OBL-LIQ-006)."""
    cur = pos
    done: Any = False
    final: Number = NONE
    steps: list[tuple[Any, PartialStep]] = []
    count: Number = 0
    for _ in range(max_partial_steps(inst)):
        action = decide_action(inst, rules, lrules, cur, mark)
        active = num.and_(num.not_(done), action == PARTIAL)
        final = num.ite(num.and_(num.not_(done), action != PARTIAL), action, final)  # the loop stops here
        step = compute_partial_step(inst, rules, lrules, cur, mark)
        steps.append((active, step))
        count = count + num.ite(active, 1, 0)
        cur = PositionTerms(cur.sign, num.ite(active, step.position.size, cur.size), cur.entry,
                            num.ite(active, step.position.margin, cur.margin))
        done = num.or_(done, num.not_(active))
    final = num.ite(done, final, decide_action(inst, rules, lrules, cur, mark))
    return LiquidationOutcome(final, cur, tuple(steps), count)


# ---------------------------------------------------------------- LIQ-007 full liquidation

@dataclass(frozen=True, slots=True)
class Takeover:
    """What the engine takes over: a position of ``size`` on ``sign`` entered at ``price`` with no
    margin, and ``cash`` (the user's loss minus the value of that position at ``price`` and minus
    the fee to close, which is 0 when the price is the exact bankruptcy price).
    ``user_loss_units`` leaves the user.  ``close_fee`` is the fee to close that the bankruptcy
    price leaves (``margin.bankruptcy_includes_close_fee``; 0 without it), valued at ``price``: it
    goes to the close-fee receiver as ``close_fee_units`` (rounded DOWN), the rest to the venue as
    dust (ENG-005)."""

    sign: Number
    size: Number
    price: Number
    cash: Number
    user_loss_units: Number
    defined: Any
    cash_units: Number = 0  # the cash as money, rounded DOWN (a payout to the fund); the rest is dust
    close_fee: Number = 0  # exact: value(size, price) x close_fee_rate with the option, else 0
    close_fee_units: Number = 0  # the fee as money, rounded DOWN (a payout to the receiver); the rest is dust


def compute_full_takeover(inst: Instrument, rules: MarginRules, pos: PositionTerms, mark: Number) -> Takeover:
    """LIQ-007: the engine takes the whole isolated position over at its exact bankruptcy price
    (LIQ-002, not tick-rounded: an internal transfer, not an order); the user loses exactly the
    margin.  A liquidatable position always has a bankruptcy price (OBL-LIQ-007); should it not,
    the takeover is at the mark and the engine starts with the position's equity there as cash.

    With ``margin.bankruptcy_includes_close_fee`` the user is also charged the fee to close valued
    at the takeover price (``value x close_fee_rate``): at the bankruptcy price that is exactly the
    equity left there (LIQ-002), so the loss is still exactly the margin; at the mark (no
    bankruptcy price) it comes out of the equity before the cash.  The fee is rounded DOWN to
    whole units for its receiver (a payout never creates money); the fraction is the venue's
    dust (ENG-005, TRN: :func:`~backstop.reference.transition.compute_takeover_fee_dust`)."""
    bp = M.compute_bankruptcy_price(inst, rules, pos)
    price = num.ite(bp.defined, bp.value, mark)
    fee = M.compute_bankruptcy_close_fee(inst, rules, pos.size, price)
    cash = num.ite(bp.defined, 0, M.compute_equity(inst, pos, mark) - fee)
    return Takeover(pos.sign, pos.size, price, cash, pos.margin, bp.defined, num.floor(cash), fee, num.floor(fee))


def compute_user_loss_units(inst: Instrument, pos: PositionTerms, price: Number, fee_units: Number = 0) -> Number:
    """LIQ-007: the user's loss when the engine takes over at ``price``: minus the realized PnL
    there (rounded down, MRG-008) plus the fee to close charged there (``fee_units``: a full
    takeover's ``close_fee_units``, 0 without ``margin.bankruptcy_includes_close_fee``), never
    more than the margin."""
    return num.min_(pos.margin, fee_units - M.compute_realized_pnl_units(inst, pos, price))


# ---------------------------------------------------------------- LIQ-008 / LIQ-009 cross margin

def compute_cross_equity(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], balance: Number,
                         marks: tuple[Number, ...]) -> Number:
    """LIQ-008: the cross equity of one settlement currency: the balance plus the unrealized PnL of
    every cross position settled in it (exact)."""
    return balance + num.sum_(M.compute_unrealized_pnl(i, p, m) for (i, p), m in zip(inst_pos, marks))


def compute_cross_requirement(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                              marks: tuple[Number, ...]) -> Number:
    """LIQ-008: the sum of each cross position's liquidation requirement (its own tier, LIQ-001)."""
    return num.sum_(M.compute_liquidation_requirement(i, rules, p, m) for (i, p), m in zip(inst_pos, marks))


def compute_cross_tier_one_requirement(inst_pos: tuple[tuple[Instrument, PositionTerms], ...],
                                       rules: MarginRules, marks: tuple[Number, ...]) -> Number:
    """LIQ-008: the sum of each cross position's requirement at tier 1's rates (LIQ-004)."""
    return num.sum_(compute_tier_one_requirement(i, rules, p, m) for (i, p), m in zip(inst_pos, marks))


def is_cross_liquidatable(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                          balance: Number, marks: tuple[Number, ...]) -> Any:
    """LIQ-008: the account's cross positions in one currency are liquidated together when the cross
    equity is at or below the sum of their requirements (seed 003's trigger, per account).  An
    account with no cross position in the currency has nothing to liquidate: never (so a cross round
    that closed every position ends with the decision NONE, TRN-004)."""
    held = len(inst_pos) > 0
    return num.and_(held, compute_cross_equity(inst_pos, balance, marks) <= compute_cross_requirement(inst_pos, rules, marks))


def decide_cross_action(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                        lrules: LiquidationRules, balance: Number, marks: tuple[Number, ...]) -> Number:
    """LIQ-008: NONE when not liquidatable; PARTIAL when partial liquidation is allowed, some cross
    position is at tier 3 or above and the cross equity is above the tier-1 requirement of all of
    them; FULL otherwise."""
    liq = is_cross_liquidatable(inst_pos, rules, balance, marks)
    high = num.any_(M.compute_tier_index(i, p.size, num.ite(rules.mm_price_basis is PriceBasis.MARK, m, p.entry)) >= PARTIAL_MIN_TIER
                    for (i, p), m in zip(inst_pos, marks))
    above = compute_cross_equity(inst_pos, balance, marks) > compute_cross_tier_one_requirement(inst_pos, rules, marks)
    partial = num.and_(lrules.partial is not PartialRule.NONE, high, above)
    return num.ite(num.not_(liq), NONE, num.ite(partial, PARTIAL, FULL))


def compute_cross_shares(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], balance: Number,
                         marks: tuple[Number, ...]) -> tuple[Number, ...]:
    """LIQ-009: the cross balance split into one exact margin share per position so that each
    position's equity at its mark is the cross equity in proportion to its value at mark:
    ``share_i = E * V_i / sum V - upl_i``; the shares sum to the balance exactly."""
    equity = compute_cross_equity(inst_pos, balance, marks)
    values = [M.compute_position_value(i, p.size, m) for (i, p), m in zip(inst_pos, marks)]
    total = num.sum_(values)
    return tuple(num.div(equity * v, total) - M.compute_unrealized_pnl(i, p, m)
                 for v, (i, p), m in zip(values, inst_pos, marks))


def is_cross_up_side(inst: Instrument, pos: PositionTerms) -> Any:
    """LIQ-009 (C51): an "up-side" leg, a linear long or an inverse short: its bankruptcy price
    exists for any negative equity at its mark (it lies above the mark for a linear long, below it
    for an inverse short, in 1/price).  The other legs (linear shorts, inverse longs) are "down-side":
    their bankruptcy price needs an equity above minus their value at the mark."""
    return num.or_(num.and_(inst.is_linear, pos.sign > 0), num.and_(num.not_(inst.is_linear), pos.sign < 0))


def is_cross_under_water(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], balance: Number,
                         marks: tuple[Number, ...]) -> Any:
    """LIQ-009 (C51): the cross equity is at or below minus the summed value at the marks (possible
    after a gap) and some leg is up-side: the proportional shares would leave every down-side leg
    without a bankruptcy price, so the full liquidation's shares are reallocated
    (:func:`compute_cross_full_shares`)."""
    values = [M.compute_position_value(i, p.size, m) for (i, p), m in zip(inst_pos, marks)]
    up = num.any_(is_cross_up_side(i, p) for i, p in inst_pos)
    return num.and_(up, compute_cross_equity(inst_pos, balance, marks) <= -num.sum_(values))


def compute_cross_full_shares(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                              balance: Number, marks: tuple[Number, ...]) -> tuple[Number, ...]:
    """LIQ-009: the margin shares a full cross liquidation takes over at.  Normally the proportional
    shares (:func:`compute_cross_shares`).  Under water (:func:`is_cross_under_water`, C51) each
    down-side leg instead gets the equity at its mark that makes the mark its bankruptcy price: the
    fee to close there (``V_i x close_fee_rate`` with ``margin.bankruptcy_includes_close_fee``, else
    0), so it is taken over at the mark with no engine cash; the rest of the cross equity, all of
    its loss, is shared among the up-side legs in proportion to their values at the marks
    (``E_i = (E - sum of the down-side fees) x V_i / sum of up-side V``), whose bankruptcy prices
    then lie past their marks: the engine's close against the book produces the deficit through the
    normal path (ENG-004, ENG-006, a remainder, ADL).  Exact, no rounding; the shares sum to the
    balance exactly."""
    equity = compute_cross_equity(inst_pos, balance, marks)
    values = [M.compute_position_value(i, p.size, m) for (i, p), m in zip(inst_pos, marks)]
    total = num.sum_(values)
    ups = [is_cross_up_side(i, p) for i, p in inst_pos]
    fees = [M.compute_bankruptcy_close_fee(i, rules, p.size, m) for (i, p), m in zip(inst_pos, marks)]
    up_total = num.sum_(num.ite(u, v, 0) for u, v in zip(ups, values))
    down_fees = num.sum_(num.ite(u, 0, f) for u, f in zip(ups, fees))
    deep = is_cross_under_water(inst_pos, balance, marks)
    return tuple(num.ite(deep, num.ite(u, num.div_or((equity - down_fees) * v, up_total, 0), f), num.div(equity * v, total))
                 - M.compute_unrealized_pnl(i, p, m)
                 for u, v, f, (i, p), m in zip(ups, values, fees, inst_pos, marks))


def compute_cross_takeovers(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                            balance: Number, marks: tuple[Number, ...]) -> tuple[Takeover, ...]:
    """LIQ-009: full cross liquidation: every cross position of the currency goes to the engine at the
    bankruptcy price of the position carrying its share (:func:`compute_cross_full_shares`; LIQ-007
    per position); the user loses the whole balance of that currency, and no other balance.  With a
    balance >= 0 and the equity below the summed value every takeover is at a bankruptcy price
    (OBL-LIQ-009d: with no up-side leg the account cannot be under water); should one not be,
    LIQ-007 takes it over at the mark with its equity as engine cash, and the part the fund cannot
    pay is recorded as an uncovered deficit (step.py; C51)."""
    shares = compute_cross_full_shares(inst_pos, rules, balance, marks)
    out = []
    for (i, p), m, share in zip(inst_pos, marks, shares):
        t = compute_full_takeover(i, rules, PositionTerms(p.sign, p.size, p.entry, share), m)
        out.append(Takeover(t.sign, t.size, t.price, t.cash, share, t.defined, t.cash_units, t.close_fee,
                            t.close_fee_units))
    return tuple(out)


def apply_cross_liquidation(balances: tuple[tuple[str, Number], ...], currency: str) -> tuple[tuple[str, Number], ...]:
    """LIQ-009: the account's balances after a full cross liquidation in ``currency``: that balance
    goes to zero (it was the margin of what was liquidated); every other currency is untouched."""
    return tuple((code, num.ite(code == currency, 0, amount)) for code, amount in balances)


def is_cross_partial_funded(balance: Number, steps: tuple[PartialStep, ...], active: tuple[Any, ...]) -> Any:
    """LIQ-008: a round of cross partial steps is taken only when the balance stays >= 0 after their
    realized PnL and fees (the balance is the account's cash; it never goes negative); otherwise the
    account is liquidated in full."""
    return compute_cross_partial_balance(balance, steps, active) >= 0


def compute_cross_partial_balance(balance: Number, steps: tuple[PartialStep, ...], active: tuple[Any, ...]) -> Number:
    """LIQ-009: the cross balance after one round of partial steps: plus each active step's realized
    PnL (rounded down) minus its fee (rounded up)."""
    return balance + num.sum_(num.ite(a, st.realized_units - st.fee_units, 0) for st, a in zip(steps, active))



# ---------------------------------------------------------------- LIQ-008 cross ratios; LIQ-010 cross prices

def compute_cross_margin_ratio(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], balance: Number,
                               marks: tuple[Number, ...]) -> Number:
    """LIQ-008: the account's cross margin ratio in one currency: cross equity over the summed value
    of its cross positions at their marks (MRG-007 for an account; exact)."""
    values = num.sum_(M.compute_position_value(i, p.size, m) for (i, p), m in zip(inst_pos, marks))
    return num.div(compute_cross_equity(inst_pos, balance, marks), values)


def compute_cross_required_margin_ratio(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                                        marks: tuple[Number, ...]) -> Number:
    """LIQ-008: the ratio the cross trigger compares with: the summed requirements over the summed
    value at the marks (exact)."""
    values = num.sum_(M.compute_position_value(i, p.size, m) for (i, p), m in zip(inst_pos, marks))
    return num.div(compute_cross_requirement(inst_pos, rules, marks), values)


def _others(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], marks: tuple[Number, ...],
            j: int) -> tuple[tuple[tuple[Instrument, PositionTerms], ...], tuple[Number, ...]]:
    from itertools import compress  # (local: the module's imports are shared with concurrent edits)
    keep = [n != j for n in range(len(inst_pos))]  # j is a concrete index: a structural choice
    return tuple(compress(inst_pos, keep)), tuple(compress(marks, keep))


def compute_cross_margin_of(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                            balance: Number, marks: tuple[Number, ...], j: int) -> Number:
    """LIQ-010: the margin cross position ``j`` stands on with the other positions' marks held fixed:
    the balance plus the others' unrealized PnL less their requirements (LIQ-008), exact; it may
    be negative (the others' losses are then carried by position ``j``)."""
    others, om = _others(inst_pos, marks, j)
    return compute_cross_equity(others, balance, om) - compute_cross_requirement(others, rules, om)


def compute_cross_liquidation_price(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                                    balance: Number, marks: tuple[Number, ...], j: int) -> Any:
    """LIQ-010: the mark price of cross position ``j`` at which the account's cross trigger (LIQ-008)
    holds with equality, the other positions' marks held fixed: the liquidation price (LIQ-003) of
    position ``j`` carrying :func:`compute_cross_margin_of` as its isolated margin (exact; the tier
    is the one at that price, as LIQ-003 chooses it).  It may not exist, as LIQ-003's."""
    inst, p = inst_pos[j]
    m = compute_cross_margin_of(inst_pos, rules, balance, marks, j)
    return M.compute_liquidation_price(inst, rules, PositionTerms(p.sign, p.size, p.entry, m))


def compute_cross_bankruptcy_price(inst_pos: tuple[tuple[Instrument, PositionTerms], ...], rules: MarginRules,
                                   balance: Number, marks: tuple[Number, ...], j: int) -> Any:
    """LIQ-010: the mark price of cross position ``j`` at which the cross equity is zero, the others'
    marks held fixed: the bankruptcy price (LIQ-002) of position ``j`` carrying the balance plus the
    others' unrealized PnL as its margin (exact; it may not exist)."""
    inst, p = inst_pos[j]
    others, om = _others(inst_pos, marks, j)
    m = compute_cross_equity(others, balance, om)
    return M.compute_bankruptcy_price(inst, rules, PositionTerms(p.sign, p.size, p.entry, m))
