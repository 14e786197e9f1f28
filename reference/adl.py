"""Auto-deleveraging (ADL-001..ADL-009): the two triggers, the ranking, the allocation of a
bankrupt remainder to opposite-side counterparties, the execution price and who bears the gap.

Every function that computes a number or a decision is a rule function over
:mod:`backstop.reference.num` only, so that it runs on exact numbers and on Z3 terms alike
(``tests/test_kernel_lint.py``).  Loops run only over concrete tuples: a balance history or a
candidate list is a fixed-length tuple whose *entries* may be symbolic.  Structural choices (the
profile's ADL options, linear or inverse) are concrete.

The few helpers at the end (:func:`rank_entries`, :func:`execute_adl`, :func:`adl_record`) are
concrete plumbing for the step function: they sort, loop and build records, but every number
and every decision they use comes from a rule function above them.

Units and signs are those of ``spec/00-conventions.md``; the rules are ``spec/40-adl.md``.
Money is ``int`` units of the instrument's settlement currency; sizes are contracts; a
position's ``sign`` is +1 long, -1 short; the *liquidated side* is the side of the bankrupt
remainder, and counterparties hold the opposite sign.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.events import BalancePoint, Record
from backstop.reference.profile import AdlPrice, AdlRanking, AdlRules, DrawdownReference, MarginRules
from backstop.reference.types import Instrument, PositionTerms

__all__ = [
    "MS_PER_SECOND", "BUCKETS", "ADL_RECORD_TYPE",
    "compute_window_start", "compute_balance_at", "compute_window_peak", "compute_window_average",
    "compute_drawdown_reference", "compute_drawdown_threshold",
    "is_drawdown_trigger", "is_fund_insufficient", "compute_remainder_uncovered", "adl_fires", "adl_state_continues",
    "compute_pnl_fraction", "compute_effective_leverage", "compute_adl_score", "is_ranked_before",
    "compute_adl_bucket", "is_adl_candidate", "is_adl_filled_at_bankruptcy", "is_adl_fillable",
    "compute_adl_reduction", "allocate_adl", "compute_adl_prefixes",
    "compute_adl_price", "compute_adl_gap", "compute_adl_mark_quantity", "compute_adl_mark_part",
    "settle_adl_counterparty", "compute_adl_fund_result",
    "RankEntry", "rank_entries", "CounterpartyResult", "AdlOutcome", "execute_adl", "adl_record",
]

Number = Any

MS_PER_SECOND = 1000
BUCKETS = 5  # the 1..5 indicator venues show (BitMEX: "20% increments")
ADL_RECORD_TYPE = "Auto-Deleveraging"  # seed 003: the position-history record type


# ---------------------------------------------------------------- ADL-001 drawdown trigger

def compute_window_start(rules: AdlRules, now_ms: Number) -> Number:
    """ADL-001: the start of the drawdown window, ``now - drawdown_window_seconds`` in ms."""
    return now_ms - rules.drawdown_window_seconds * MS_PER_SECOND


def compute_balance_at(history: tuple[BalancePoint, ...], t: Number) -> tuple[Any, Number]:
    """ADL-001: the balance in force at time ``t``: that of the last point at or before ``t``.

    Returns ``(exists, balance)``; ``exists`` is false when no point is at or before ``t`` (the
    balance is then 0 and must not be read).  The history is in non-decreasing time order.
    """
    exists: Any = False
    balance: Number = 0
    for p in history:
        exists = num.or_(exists, p.time_ms <= t)
        balance = num.ite(p.time_ms <= t, p.balance, balance)
    return exists, balance


def compute_window_peak(rules: AdlRules, history: tuple[BalancePoint, ...], now_ms: Number) -> tuple[Any, Number]:
    """ADL-001: the highest balance in the window ``[now - window, now]``.

    The window's balances are: the balance in force at the window's start (the last point at or
    before the start), and every point with ``start < time <= now``.  Returns ``(exists, peak)``;
    ``exists`` is false when the history has no point at or before ``now``.
    """
    start = compute_window_start(rules, now_ms)
    exists, peak = compute_balance_at(history, start)
    for p in history:
        inside = num.and_(p.time_ms > start, p.time_ms <= now_ms)
        peak = num.ite(inside, num.ite(exists, num.max_(peak, p.balance), p.balance), peak)
        exists = num.or_(exists, inside)
    return exists, peak


def compute_window_average(rules: AdlRules, history: tuple[BalancePoint, ...], now_ms: Number) -> tuple[Any, Number]:
    """ADL-001 (``adl.drawdown_reference = "average"``): the time-weighted average, over the window
    ``[now - window, now]``, of the balance in force (exact rational, not rounded).

    Each point's balance counts for the time it is in force inside the window: from
    ``max(its time, start)`` to ``min(the next point's time, now)`` (zero when that is empty: a point
    after ``now``, one replaced before ``start``, or one replaced at the same instant).  The average
    is over the part of the window in which a balance is in force (from the first point when the
    history starts inside the window).  Returns ``(exists, average)``; ``exists`` is false when no
    balance is in force at ``now``; when the window holds no time with a balance in force (the
    first point is at ``now``) the average is the balance at ``now``.
    """
    start = compute_window_start(rules, now_ms)
    ends = (*(q.time_ms for q in history[1:]), now_ms)  # each point is in force until the next one, the last until now
    weighted: Number = 0
    covered: Number = 0
    for p, end in zip(history, ends):
        length = num.max_(0, num.min_(end, now_ms) - num.max_(p.time_ms, start))
        weighted = weighted + p.balance * length
        covered = covered + length
    exists, current = compute_balance_at(history, now_ms)
    return exists, num.div_or(weighted, covered, current)


_DRAWDOWN_REFERENCES = {DrawdownReference.PEAK: compute_window_peak, DrawdownReference.AVERAGE: compute_window_average}


def compute_drawdown_reference(rules: AdlRules, history: tuple[BalancePoint, ...], now_ms: Number) -> tuple[Any, Number]:
    """ADL-001: the balance the drawdown is measured from: the window's peak (default) or its
    time-weighted average (``adl.drawdown_reference``).  Returns ``(exists, value)``."""
    return _DRAWDOWN_REFERENCES[rules.drawdown_reference](rules, history, now_ms)


def compute_drawdown_threshold(rules: AdlRules, peak: Number) -> Number:
    """ADL-001: the balance at or below which the drawdown trigger holds: ``(1 - f) * peak`` (exact)."""
    return (1 - rules.drawdown_fraction) * peak


def is_drawdown_trigger(rules: AdlRules, history: tuple[BalancePoint, ...], now_ms: Number) -> Any:
    """ADL-001: trigger (b): the fund's balance at ``now`` is at or below ``(1 - f)`` times the
    highest balance of the window ``[now - window, now]``, that peak being positive (or, with
    ``adl.drawdown_reference = "average"``, its time-weighted average balance).

    It never holds on an empty history (no balance at ``now``), on a zero peak, or when the
    profile's ``drawdown_fraction`` is 1 (the trigger is disabled).  Exact comparison.
    """
    has_now, current = compute_balance_at(history, now_ms)
    has_peak, peak = compute_drawdown_reference(rules, history, now_ms)
    return num.and_(rules.drawdown_fraction < 1, has_now, has_peak, peak > 0,
                    current <= compute_drawdown_threshold(rules, peak))


# ---------------------------------------------------------------- ADL-002 fund insufficient

def is_fund_insufficient(uncovered_units: Number, unplaced_size: Number) -> Any:
    """ADL-002: trigger (a): the fund cannot cover what the liquidation engine must settle --
    a deficit it could not pay (``uncovered_units > 0``, from the fund ledger) or a bankrupt
    remainder the engine could not place (``unplaced_size > 0`` contracts)."""
    return num.or_(uncovered_units > 0, unplaced_size > 0)


def compute_remainder_uncovered(inst: Instrument, liquidated_sign: Number, remainder: Number,
                                bankruptcy_price: Number, mark: Number, fund_available: Number) -> Number:
    """ADL-002: what the fund could not cover if the open remainder were closed at the mark: the
    deficit of that close (rounded UP, a requirement) beyond the fund's available balance, or 0.
    The step function reads trigger (a) from it: while the fund could cover the remainder, the
    engine keeps it and waits for liquidity in the book."""
    deficit = num.ceil(-compute_adl_gap(inst, liquidated_sign, remainder, bankruptcy_price, mark))
    return num.max_(0, deficit - fund_available)


# ---------------------------------------------------------------- ADL-003 firing and the ADL state

def adl_fires(rules: AdlRules, history: tuple[BalancePoint, ...], now_ms: Number,
              uncovered_units: Number, unplaced_size: Number, remainder_size: Number) -> Any:
    """ADL-003: ADL fires for a fund at ``now`` iff (trigger (a) or trigger (b)) holds and there
    is a bankrupt remainder (``remainder_size > 0`` contracts) to settle."""
    trigger = num.or_(is_fund_insufficient(uncovered_units, unplaced_size),
                      is_drawdown_trigger(rules, history, now_ms))
    return num.and_(trigger, remainder_size > 0)


def adl_state_continues(was_active: Any, trigger_a: Any, trigger_b: Any, open_remainder: Number) -> Any:
    """ADL-003: whether the fund is in the ADL state after a check: it is entered when a trigger
    holds and ends at the first check where neither trigger holds and no remainder is open."""
    return num.or_(trigger_a, trigger_b, num.and_(was_active, open_remainder > 0))


# ---------------------------------------------------------------- ADL-004 ranking score

def compute_pnl_fraction(inst: Instrument, pos: PositionTerms, mark: Number) -> Number:
    """ADL-004: BitMEX's "PNL percentage": unrealized PnL at ``mark`` over the position's value
    at its entry price (exact; the value at entry is positive)."""
    return num.div(M.compute_unrealized_pnl(inst, pos, mark), M.compute_position_value(inst, pos.size, pos.entry))


def compute_effective_leverage(inst: Instrument, pos: PositionTerms, mark: Number) -> Number:
    """ADL-004: effective leverage: position value at ``mark`` over equity at ``mark`` (exact);
    0 when the equity is zero or negative (a bankrupt position has no finite leverage)."""
    eq = M.compute_equity(inst, pos, mark)
    return num.div_or(M.compute_position_value(inst, pos.size, mark), num.max_(eq, 0), 0)


def compute_adl_score(inst: Instrument, margin_rules: MarginRules, rules: AdlRules,
                      pos: PositionTerms, mark: Number) -> Number:
    """ADL-004: the ranking score; higher is deleveraged first.

    ``pnl_times_leverage`` (OKX 2025, BitMEX): PnL% x effective leverage when the PnL is
    positive, PnL% / effective leverage otherwise (= PnL% x max(equity, 0) / value at mark).
    ``pnl_times_margin_ratio`` (Binance): max(0, PnL) / max(1 coin, margin) x Binance's margin
    ratio MM / equity (0 when equity <= 0).  Exact rationals, no rounding.
    """
    upl = M.compute_unrealized_pnl(inst, pos, mark)
    value = M.compute_position_value(inst, pos.size, mark)
    eq = M.compute_equity(inst, pos, mark)
    pct = compute_pnl_fraction(inst, pos, mark)
    profit = pct * compute_effective_leverage(inst, pos, mark)
    loss = num.div(pct * num.max_(eq, 0), value)
    leverage_score = num.ite(upl > 0, profit, loss)
    mm = M.compute_maintenance_margin(inst, margin_rules, pos, mark)
    ratio = num.div_or(mm, num.max_(eq, 0), 0)
    binance_score = num.div(num.max_(upl, 0), num.max_(pos.margin, inst.scale)) * ratio
    return num.ite(rules.ranking is AdlRanking.PNL_TIMES_LEVERAGE, leverage_score, binance_score)


# ---------------------------------------------------------------- ADL-005 order and bucket

def is_ranked_before(score_a: Number, key_a: Any, score_b: Number, key_b: Any) -> Any:
    """ADL-005: entry ``a`` is deleveraged before entry ``b``: a higher score first; on equal
    scores the smaller key (account id, then instrument id) first.  Keys are concrete tuples of
    strings, or symbolic integers in proofs."""
    return num.or_(score_a > score_b, num.and_(score_a == score_b, key_a < key_b))


def compute_adl_bucket(index: Number, count: Number) -> Number:
    """ADL-005: the 1..5 indicator of the candidate at 0-based rank ``index`` among ``count``
    candidates of its side: ``5 - floor(5 * index / count)``; 5 = first to be deleveraged."""
    return BUCKETS - num.div_floor(BUCKETS * index, count)


# ---------------------------------------------------------------- ADL-006 allocation

def is_adl_candidate(liquidated_sign: Number, liquidated_account: Any,
                     sign: Number, size: Number, account: Any) -> Any:
    """ADL-006: a position may be deleveraged against the remainder iff it is on the opposite
    side, has a positive size and does not belong to the liquidated account."""
    return num.and_(sign == -liquidated_sign, size > 0, account != liquidated_account)


def is_adl_filled_at_bankruptcy(inst: Instrument, rules: AdlRules, liquidated_sign: Number, remainder: Number,
                                bankruptcy_price: Number, mark: Number, fund_available: Number) -> Any:
    """ADL-006, ADL-007: whether part of the remainder may execute at its bankruptcy price: the
    part the fund's available balance lets execute at the mark (:func:`compute_adl_mark_quantity`
    of the whole remainder) is less than the remainder.  Always on a ``"bankruptcy"`` profile."""
    at_mark = compute_adl_mark_quantity(inst, rules, liquidated_sign, remainder, bankruptcy_price, mark, fund_available)
    return at_mark < remainder


def is_adl_fillable(inst: Instrument, sign: Number, entry: Number, mark: Number, bankruptcy_price: Number,
                    at_bankruptcy: Any) -> Any:
    """ADL-006 (C71): a ranked candidate is filled only if it is in profit at the mark (seeds 000
    and 004: ADL closes *profitable* positions) and, when part of the remainder executes at the
    bankruptcy price (``at_bankruptcy``, :func:`is_adl_filled_at_bankruptcy`), not at a loss
    there.  So no fill realizes a loss: ADL never lowers a counterparty's balance (INV-026)."""
    one_at_mark = M.compute_unrealized_pnl(inst, PositionTerms(sign, 1, entry, 0), mark)
    one_at_bp = M.compute_unrealized_pnl(inst, PositionTerms(sign, 1, entry, 0), bankruptcy_price)
    return num.and_(one_at_mark > 0, num.or_(num.not_(at_bankruptcy), one_at_bp >= 0))


def compute_adl_reduction(remainder: Number, prefix: Number, size: Number, eligible: Any, lot: Number) -> Number:
    """ADL-006: the reduction of one candidate, given what the candidates ranked before it
    already took (``prefix``): ``min(size, remainder - prefix)`` (never negative), rounded down
    to the lot; 0 for a position that is not a candidate."""
    want = num.max_(num.min_(size, remainder - prefix), 0)
    return num.ite(eligible, want, 0)


def allocate_adl(remainder: Number, sizes: tuple[Number, ...], eligible: tuple[Any, ...], lot: Number) -> tuple[Number, ...]:
    """ADL-006: greedy allocation of the remainder in rank order: ``sizes`` and ``eligible`` are
    the positions in ADL order; each candidate's reduction is :func:`compute_adl_reduction`."""
    out: list[Number] = []
    prefix: Number = 0
    for size, ok in zip(sizes, eligible):
        r = compute_adl_reduction(remainder, prefix, size, ok, lot)
        out.append(r)
        prefix = prefix + r
    return tuple(out)


def compute_adl_prefixes(reductions: tuple[Number, ...]) -> tuple[Number, ...]:
    """ADL-006: for each entry, the contracts of the remainder taken by the entries before it."""
    out: list[Number] = []
    prefix: Number = 0
    for r in reductions:
        out.append(prefix)
        prefix = prefix + r
    return tuple(out)


# ---------------------------------------------------------------- ADL-007 execution price and the gap

def compute_adl_price(rules: AdlRules, mark: Number, bankruptcy_price: Number) -> Number:
    """ADL-007: the profile's execution price: the mark price (seed 003) or the bankruptcy price
    of the liquidated remainder (Binance, Bybit, BitMEX)."""
    return num.ite(rules.execution_price is AdlPrice.MARK, mark, bankruptcy_price)


def compute_adl_gap(inst: Instrument, liquidated_sign: Number, size: Number,
                    bankruptcy_price: Number, price: Number) -> Number:
    """ADL-007: the result, for the holder of the remainder taken over at the bankruptcy price,
    of closing ``size`` contracts of it at ``price`` (exact): negative when ``price`` is worse
    than the bankruptcy price for the liquidated side (a deficit), positive when better."""
    return M.compute_unrealized_pnl(inst, PositionTerms(liquidated_sign, size, bankruptcy_price, 0), price)


def compute_adl_mark_quantity(inst: Instrument, rules: AdlRules, liquidated_sign: Number, remainder: Number,
                              bankruptcy_price: Number, mark: Number, fund_available: Number) -> Number:
    """ADL-007: how many contracts of the remainder execute at the mark price; the rest execute
    at the bankruptcy price.

    With ``execution_price = "bankruptcy"``: none.  With ``"mark"``: all of them when the mark is
    at or better than the bankruptcy price for the liquidated side (no deficit); otherwise the
    largest lot multiple whose deficit the fund's available balance covers, at most the
    remainder -- so the fund never pays more than it holds.
    """
    unit_cost = -compute_adl_gap(inst, liquidated_sign, 1, bankruptcy_price, mark)
    affordable = num.floor_to_step(num.div_or(fund_available, unit_cost, 0), inst.lot_size)
    at_mark = num.ite(unit_cost > 0, num.min_(remainder, affordable), remainder)
    return num.ite(rules.execution_price is AdlPrice.MARK, at_mark, 0)


def compute_adl_mark_part(mark_quantity: Number, prefix: Number, reduction: Number) -> Number:
    """ADL-007: the part of one counterparty's reduction executed at the mark price: the first
    ``mark_quantity`` contracts of the remainder, in rank order, execute at the mark price, so a
    counterparty holding contracts ``(prefix, prefix + reduction]`` gets
    ``min(reduction, max(mark_quantity - prefix, 0))`` of them at the mark."""
    return num.min_(reduction, num.max_(mark_quantity - prefix, 0))


# ---------------------------------------------------------------- ADL-008 counterparty settlement

def compute_adl_counterparty_pnl(inst: Instrument, sign: Number, entry: Number, reduction: Number, at_mark: Number,
                                 mark: Number, bankruptcy_price: Number) -> Number:
    """ADL-008: the exact realized PnL of a counterparty's reduction: ``at_mark`` contracts closed at
    the mark, the rest at the bankruptcy price (exact; :func:`settle_adl_counterparty` rounds it)."""
    return (M.compute_unrealized_pnl(inst, PositionTerms(sign, at_mark, entry, 0), mark)
            + M.compute_unrealized_pnl(inst, PositionTerms(sign, reduction - at_mark, entry, 0), bankruptcy_price))


def settle_adl_counterparty(inst: Instrument, pos: PositionTerms, reduction: Number, at_mark: Number,
                            mark: Number, bankruptcy_price: Number) -> tuple[Number, Number, PositionTerms]:
    """ADL-008: reduce one counterparty's position by ``reduction`` contracts, ``at_mark`` of
    them at the mark price and the rest at the bankruptcy price.

    Returns ``(realized_units, released_units, new_position)``: the realized PnL of the reduced
    part, rounded DOWN once (MRG-008: a payout never creates money); the isolated margin
    released in proportion, ``floor(margin * reduction / size)``, rounded DOWN so the remaining
    position keeps at least its proportional share (all of it when the whole position closes);
    and the remaining position (same side and entry, size minus the reduction, the rest of the
    margin).  Both amounts are credited to the account's balance.
    """
    exact = compute_adl_counterparty_pnl(inst, pos.sign, pos.entry, reduction, at_mark, mark, bankruptcy_price)
    realized = num.floor(exact)
    released = num.floor(num.div_or(pos.margin * reduction, pos.size, 0))  # a closed (size 0) position releases nothing more
    new_pos = PositionTerms(pos.sign, pos.size - reduction, pos.entry, pos.margin - released)
    return realized, released, new_pos


# ---------------------------------------------------------------- ADL-009 the fund's result

def compute_adl_fund_result(inst: Instrument, liquidated_sign: Number, mark_quantity: Number,
                            bankruptcy_price: Number, mark: Number) -> Number:
    """ADL-009: the fund's result of an ADL (signed units; negative = the fund pays): the gap
    between the bankruptcy price and the mark on the part executed at the mark, rounded DOWN
    (a deficit is charged in full, a surplus never overpaid).  The part executed at the
    bankruptcy price has no gap: its counterparties bear it."""
    return num.floor(compute_adl_gap(inst, liquidated_sign, mark_quantity, bankruptcy_price, mark))


# ================================================================ concrete plumbing (no numbers decided here)

@dataclass(frozen=True, slots=True)
class RankEntry:
    """One opposite-side position as the ranking sees it (concrete)."""

    account: str
    instrument: str
    position: PositionTerms
    score: Any = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.account, self.instrument)


def _compare(a: RankEntry, b: RankEntry) -> int:
    return num.ite(is_ranked_before(a.score, a.key, b.score, b.key), -1,  # type: ignore[no-any-return]  # num.ite returns Number (Any); concretely an int
                   num.ite(is_ranked_before(b.score, b.key, a.score, a.key), 1, 0))


def rank_entries(entries: tuple[RankEntry, ...]) -> tuple[RankEntry, ...]:
    """ADL-005: the entries in ADL order (concrete): sorted by :func:`is_ranked_before`."""
    return tuple(sorted(entries, key=functools.cmp_to_key(_compare)))


@dataclass(frozen=True, slots=True)
class CounterpartyResult:
    account: str
    instrument: str
    rank: int            # 0-based, among the candidates of this side
    bucket: int          # ADL-005 indicator, 1..5
    score: Any
    reduction: Any       # contracts
    at_mark: Any         # of which executed at the mark price
    realized_units: int
    released_units: int
    new_position: PositionTerms


@dataclass(frozen=True, slots=True)
class AdlOutcome:
    results: tuple[CounterpartyResult, ...]   # every candidate, in ADL order (reduction may be 0)
    reduced: Any                              # total contracts deleveraged
    mark_quantity: Any                        # of which at the mark price
    fund_result_units: int                    # ADL-009, signed
    records: tuple[Record, ...]               # one "adl" record per reduced counterparty


# compute_adl_score of exact positions, remembered across the ADLs of a run (C64): while ADL fires,
# every remainder ranks the same opposite positions at the same mark again.  A pure function's
# value for the same arguments: keyed by the function object itself (a planted bug replaces it), the
# profile objects by identity (the cache holds them), the numbers by value and type.  Written
# without Python branches, as the rest of this module (tests/test_kernel_lint.py).
_EXACT = frozenset((int, Fraction))


class _Same:
    """A key part that is equal only to the very same object (hashed by identity)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: Any) -> bool:
        return self.obj is getattr(other, "obj", None)


@functools.lru_cache(maxsize=1 << 16)
def _remembered_score(fn: _Same, inst: _Same, margin_rules: _Same, rules: _Same, types: tuple[type, ...],
                      sign: Any, size: Any, entry: Any, margin: Any, mark: Any) -> Any:
    return fn.obj(inst.obj, margin_rules.obj, rules.obj, PositionTerms(sign, size, entry, margin), mark)


def _score_remembered(fn: Any, inst: Instrument, margin_rules: MarginRules, rules: AdlRules,
                      pos: PositionTerms, mark: Any, vals: tuple[Any, ...]) -> Any:
    return _remembered_score(_Same(fn), _Same(inst), _Same(margin_rules), _Same(rules), tuple(map(type, vals)), *vals)


def _score_now(fn: Any, inst: Instrument, margin_rules: MarginRules, rules: AdlRules,
               pos: PositionTerms, mark: Any, vals: tuple[Any, ...]) -> Any:
    return fn(inst, margin_rules, rules, pos, mark)


_SCORERS = {True: _score_remembered, False: _score_now}


def _score(inst: Instrument, margin_rules: MarginRules, rules: AdlRules, pos: PositionTerms, mark: Any) -> Any:
    """:func:`compute_adl_score`, remembered for exact numbers (a symbolic one is computed each time)."""
    vals = (pos.sign, pos.size, pos.entry, pos.margin, mark)
    return _SCORERS[_EXACT.issuperset(map(type, vals))](compute_adl_score, inst, margin_rules, rules, pos, mark, vals)


def execute_adl(inst: Instrument, margin_rules: MarginRules, rules: AdlRules, *,
                liquidated_account: str, liquidated_sign: int, remainder: Any, bankruptcy_price: Any,
                mark: Any, fund_available: int, candidates: tuple[RankEntry, ...],
                time_ms: int = 0, fund: str = "") -> AdlOutcome:
    """ADL-003..ADL-009 on concrete inputs: score, rank, allocate, split mark/bankruptcy, settle.

    ``candidates`` are the positions of the instrument (any side, any account); the rule
    :func:`is_adl_candidate` masks the ineligible ones, which get reduction 0 and no record.
    """
    eligible_flags = tuple(is_adl_candidate(liquidated_sign, liquidated_account, c.position.sign,
                                            c.position.size, c.account) for c in candidates)
    # only the eligible entries are ranked, so only they are scored (the others' scores were never read)
    pool = tuple(RankEntry(c.account, c.instrument, c.position, _score(inst, margin_rules, rules, c.position, mark))
                 for c in itertools.compress(candidates, eligible_flags))
    ranked = rank_entries(pool)
    sizes = tuple(c.position.size for c in ranked)
    at_bp = is_adl_filled_at_bankruptcy(inst, rules, liquidated_sign, remainder, bankruptcy_price, mark, fund_available)
    flags = tuple(is_adl_fillable(inst, c.position.sign, c.position.entry, mark, bankruptcy_price, at_bp)
                  for c in ranked)
    reductions = allocate_adl(remainder, sizes, flags, inst.lot_size)
    prefixes = compute_adl_prefixes(reductions)
    q = compute_adl_mark_quantity(inst, rules, liquidated_sign, num.sum_(reductions), bankruptcy_price, mark, fund_available)
    results: list[CounterpartyResult] = []
    for i, (c, r, pre) in enumerate(zip(ranked, reductions, prefixes)):
        part = compute_adl_mark_part(q, pre, r)
        realized, released, new_pos = settle_adl_counterparty(inst, c.position, r, part, mark, bankruptcy_price)
        results.append(CounterpartyResult(c.account, c.instrument, i, compute_adl_bucket(i, len(ranked)), c.score,
                                          r, part, realized, released, new_pos))
    fund_result = compute_adl_fund_result(inst, liquidated_sign, q, bankruptcy_price, mark)
    recs = tuple(adl_record(time_ms, r, mark, bankruptcy_price, fund) for r in results)
    keep = tuple(r.reduction > 0 for r in results)
    return AdlOutcome(tuple(results), num.sum_(reductions), q, fund_result, tuple(itertools.compress(recs, keep)))


def adl_record(time_ms: int, r: CounterpartyResult, mark: Any, bankruptcy_price: Any, fund: str = "") -> Record:
    """The position-history record of one deleveraged counterparty (seed 003: type
    "Auto-Deleveraging", the reduced size and the price)."""
    at_bp = r.reduction - r.at_mark
    return Record(
        kind="adl", time_ms=time_ms,
        rules=("ADL-005", "ADL-006", "ADL-007", "ADL-008", "MRG-008"),
        account=r.account, instrument=r.instrument, fund=fund,
        fields=(("type", ADL_RECORD_TYPE), ("rank", r.rank), ("bucket", r.bucket), ("score", r.score),
                ("reduced_size", r.reduction), ("size_at_mark", r.at_mark), ("mark_price", mark),
                ("size_at_bankruptcy_price", at_bp), ("bankruptcy_price", bankruptcy_price),
                ("realized_pnl", r.realized_units), ("released_margin", r.released_units),
                ("new_size", r.new_position.size), ("new_margin", r.new_position.margin)),
    )
