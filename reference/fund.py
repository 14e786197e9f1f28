"""Insurance-fund accounting rules (INS-*): separate funds, the pending ledger, the daily 16:00 HKT
settlement, deficits paid up to the balance, fees, top-ups, withdrawals, and the running peak.

These are the rule functions: written over :mod:`backstop.reference.num` only, so that the
obligations of ``backstop.proofs.fund`` call them with Z3 amounts and times.  A :class:`Book` is
the numeric state of every fund -- the ledger balances (the fold of the journal, JRN-002) and, per
fund, its clock and running peaks -- and each ``step_*`` function returns a :class:`Step`: the new
book, the journal entries it booked, the checks the event must pass (a refused event changes
nothing), and the amounts the records report.  The plumbing in :mod:`backstop.reference.fundbook`
validates concrete inputs, refuses an event whose checks fail, posts the entries to the journal
and emits the records.

Money is an ``int`` of the fund currency's smallest unit; times are ``int`` milliseconds since the
Unix epoch (UTC).  Nothing here rounds: every amount is a sum or difference of whole units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from backstop.reference import journal as J
from backstop.reference import num
from backstop.reference.events import FundKey
from backstop.reference.profile import BalanceView, FeeReceiver, FundRules

__all__ = [
    "DAY_MS", "VENUE", "PLATFORM", "FundTerms", "Book", "Settlement", "Step",
    "fund_account", "pending_account", "engine_account", "user_account", "fund_accounts",
    "window_index", "window_start", "settled_balance", "pending_balance", "available_balance",
    "balance_in_view", "direction", "cover_deficit", "result_flows", "withdrawable",
    "withdraw_allowed", "time_in_order", "running_peak", "mark_peaks", "settle_fund",
    "step_result", "step_fee", "step_top_up", "step_withdraw", "step_settle_all",
]

DAY_MS = 86_400_000
VENUE = "venue"
PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class FundTerms:
    """A fund's own numbers besides its balances (fields may be Z3 terms): ``clock`` is the time
    of the last event or settlement seen for the fund (the open window is the one holding it);
    ``peak_settled`` and ``peak_available`` are the highest settled and settled + pending balances
    ever booked."""

    clock: Any
    peak_settled: Any
    peak_available: Any


@dataclass(frozen=True, slots=True)
class Book:
    """Ledger balances ``(account, currency) -> units`` and each fund's :class:`FundTerms`."""

    balances: Mapping[tuple[str, str], Any]
    funds: Mapping[FundKey, FundTerms]


@dataclass(frozen=True, slots=True)
class Settlement:
    """The settlement a step ran first: ``due`` when a window was completed, ``window`` the index
    of the window that closed, ``time_ms`` its end instant, ``moved`` the units moved from pending
    into the settled balance (negative: out of it)."""

    due: Any
    window: Any
    time_ms: Any
    moved: Any


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one event.  ``checks`` are ``(field, condition, rule, reason)``; the event is
    accepted only when every condition holds.  ``inflow`` is what the fund received, ``paid`` what
    it paid out, ``uncovered`` the part of a deficit it could not pay (handed on to ADL)."""

    book: Book
    entries: tuple[J.Entry, ...]
    checks: tuple[tuple[str, Any, str, str], ...]
    settlement: Settlement
    inflow: Any = 0
    paid: Any = 0
    uncovered: Any = 0


# ---------------------------------------------------------------- funds and their accounts

def fund_account(key: FundKey) -> str:
    """INS-001: the account of a fund's settled balance."""
    return f"fund:{key.id}"


def pending_account(key: FundKey) -> str:
    """INS-001: the account of a fund's results accrued since the last settlement."""
    return f"pending:{key.id}"


def engine_account(key: FundKey) -> str:
    """INS-001: the liquidation engine's cash for the contracts of one fund."""
    return f"engine:{key.id}"


def user_account(account_id: str) -> str:
    """INS-001: a user's account in the ledger."""
    return f"user:{account_id}"


def fund_accounts(key: FundKey) -> tuple[tuple[str, str], ...]:
    """INS-001: the ledger keys that belong to one fund; all in the fund's one currency."""
    return tuple((a, key.currency) for a in (fund_account(key), pending_account(key), engine_account(key)))


# ---------------------------------------------------------------- windows

def window_index(rules: FundRules, time_ms: Any) -> Any:
    """INS-002: the settlement window holding ``time_ms``: window k is the half-open interval
    [settlement time of local day k, settlement time of local day k + 1); an instant exactly at
    16:00:00.000 HKT opens a new window."""
    shift = rules.utc_offset_minutes * 60_000 - rules.settlement_time_seconds * 1000
    return num.div_floor(time_ms + shift, DAY_MS)


def window_start(rules: FundRules, k: Any) -> Any:
    """INS-002: the first instant (ms, UTC) of window ``k``; window ``k`` ends where ``k + 1`` starts."""
    return k * DAY_MS + rules.settlement_time_seconds * 1000 - rules.utc_offset_minutes * 60_000


# ---------------------------------------------------------------- balances and views

def settled_balance(book: Book, key: FundKey) -> Any:
    """INS-003: the fund's settled balance, read from the journal's fold."""
    return J.balance_of(book.balances, fund_account(key), key.currency)


def pending_balance(book: Book, key: FundKey) -> Any:
    """INS-003: the net of the open window's results, read from the journal's fold."""
    return J.balance_of(book.balances, pending_account(key), key.currency)


def available_balance(settled: Any, pending: Any) -> Any:
    """INS-003: what the fund can pay now (the real-time view): settled plus pending."""
    return settled + pending


def balance_in_view(view: BalanceView, settled: Any, pending: Any) -> Any:
    """INS-003: the balance a reader configured with ``view`` sees (profile ``adl.balance_view``)."""
    return {BalanceView.SETTLED: settled,
            BalanceView.SETTLED_PLUS_PENDING: available_balance(settled, pending)}[view]


def direction(x: Any) -> Any:
    """INS-008: +1 for a net inflow, -1 for a net outflow, 0 when nothing moves (record types)."""
    return num.ite(x > 0, 1, num.ite(x < 0, -1, 0))


# ---------------------------------------------------------------- results, fees, top-ups, withdrawals

def cover_deficit(need: Any, available: Any) -> tuple[Any, Any]:
    """INS-004: a deficit ``need >= 0`` is paid up to what the fund has; the rest is uncovered.
    Returns ``(paid, uncovered)`` with ``paid + uncovered = need``."""
    paid = num.min_(need, num.max_(available, 0))
    return paid, need - paid


def result_flows(amount: Any, available: Any) -> tuple[Any, Any, Any]:
    """INS-004: a liquidation or ADL result (``amount > 0`` surplus, ``< 0`` deficit) as
    ``(inflow, paid, uncovered)``: a surplus flows in whole; a deficit is paid up to the
    available balance and its rest is uncovered."""
    inflow = num.max_(amount, 0)
    paid, uncovered = cover_deficit(num.max_(-amount, 0), available)
    return inflow, paid, uncovered


def withdrawable(settled: Any, pending: Any) -> Any:
    """INS-007: the most the platform can withdraw: it comes out of the settled balance and must
    leave both the settled and the available balance at or above zero."""
    return num.min_(settled, available_balance(settled, pending))


def withdraw_allowed(amount: Any, settled: Any, pending: Any) -> Any:
    """INS-007: a withdrawal is accepted only up to :func:`withdrawable` (never capped silently)."""
    return amount <= withdrawable(settled, pending)


def time_in_order(clock: Any, time_ms: Any) -> Any:
    """INS-009: an event is accepted only at or after the last time seen for its fund."""
    return time_ms >= clock


# ---------------------------------------------------------------- peaks

def running_peak(peak: Any, balance: Any) -> Any:
    """INS-010: the running peak after a balance is booked: the larger of the two."""
    return num.max_(peak, balance)


def mark_peaks(book: Book, key: FundKey, clock: Any) -> Book:
    """INS-010: the book with the fund's clock set and its peaks raised to its current balances."""
    t = book.funds[key]
    s, p = settled_balance(book, key), pending_balance(book, key)
    terms = FundTerms(clock, running_peak(t.peak_settled, s), running_peak(t.peak_available, available_balance(s, p)))
    funds = dict(book.funds)
    funds[key] = terms
    return Book(book.balances, funds)


def _book(book: Book, key: FundKey, entry: J.Entry, clock: Any) -> Book:
    return mark_peaks(Book(J.apply_entry(book.balances, entry), book.funds), key, clock)


def _transfer(time_ms: Any, kind: str, rule: str, currency: str, source: str, target: str, amount: Any) -> J.Entry:
    return J.Entry(time_ms, kind, (J.Leg(source, currency, -amount), J.Leg(target, currency, amount)), (rule,))


# ---------------------------------------------------------------- settlement

def settle_fund(rules: FundRules, book: Book, key: FundKey, now: Any) -> tuple[Book, J.Entry, Settlement]:
    """INS-008: at ``now``, if the window holding the fund's clock has ended, move its pending net
    into the settled balance (an inflow is a "forced liquidation injection", an outflow an
    "overloss loss"), booked at the window's end instant; otherwise move nothing.  The clock
    becomes ``now``, so a second settlement at the same time moves nothing."""
    clock = book.funds[key].clock
    closed = window_index(rules, clock)
    due = window_index(rules, now) > closed
    moved = num.ite(due, pending_balance(book, key), 0)
    end = window_start(rules, closed + 1)
    entry = _transfer(end, "settlement", "INS-008", key.currency, pending_account(key), fund_account(key), moved)
    return _book(book, key, entry, now), entry, Settlement(due, closed, end, moved)


def _order_check(book: Book, key: FundKey, time_ms: Any) -> tuple[str, Any, str, str]:
    return ("time_ms", time_in_order(book.funds[key].clock, time_ms), "INS-009",
            "earlier than the last event or settlement of this fund")


def _magnitude_check(amount: Any) -> tuple[str, Any, str, str]:
    return ("amount", amount >= 0, "INS-009", "a magnitude must be >= 0")


def step_result(rules: FundRules, book: Book, key: FundKey, amount: Any, time_ms: Any,
                kind: str = "liquidation result", rule: str = "INS-004") -> Step:
    """INS-004: book a liquidation (or ADL) result at ``time_ms`` after settling any completed
    window: a surplus accrues to pending; a deficit is paid from the available balance (settled +
    pending) into the engine's account, never beyond it; the rest is returned as uncovered."""
    book1, settle_entry, st = settle_fund(rules, book, key, time_ms)
    s, p = settled_balance(book1, key), pending_balance(book1, key)
    inflow, paid, uncovered = result_flows(amount, available_balance(s, p))
    entry = _transfer(time_ms, kind, rule, key.currency, engine_account(key), pending_account(key), inflow - paid)
    return Step(_book(book1, key, entry, time_ms), (settle_entry, entry), (_order_check(book, key, time_ms),),
                st, inflow, paid, uncovered)


def step_fee(rules: FundRules, book: Book, key: FundKey, fee: Any, time_ms: Any,
             receiver: FeeReceiver, payer: str) -> Step:
    """INS-005: a liquidation fee paid by ``payer``: to the fund's pending ledger when the profile's
    ``liquidation.fee_receiver`` is ``fund``, to the venue when it is ``venue``."""
    book1, settle_entry, st = settle_fund(rules, book, key, time_ms)
    target = {FeeReceiver.FUND: pending_account(key), FeeReceiver.VENUE: VENUE}[receiver]
    entry = _transfer(time_ms, "liquidation fee", "INS-005", key.currency, payer, target, fee)
    inflow = {FeeReceiver.FUND: fee, FeeReceiver.VENUE: 0}[receiver]
    return Step(_book(book1, key, entry, time_ms), (settle_entry, entry),
                (_order_check(book, key, time_ms), _magnitude_check(fee)), st, inflow)


def step_top_up(rules: FundRules, book: Book, key: FundKey, amount: Any, time_ms: Any) -> Step:
    """INS-006: the platform injects ``amount`` into the fund's settled balance at once."""
    book1, settle_entry, st = settle_fund(rules, book, key, time_ms)
    entry = _transfer(time_ms, "top-up", "INS-006", key.currency, PLATFORM, fund_account(key), amount)
    return Step(_book(book1, key, entry, time_ms), (settle_entry, entry),
                (_order_check(book, key, time_ms), _magnitude_check(amount)), st, amount)


def step_withdraw(rules: FundRules, book: Book, key: FundKey, amount: Any, time_ms: Any) -> Step:
    """INS-007: the platform withdraws ``amount`` from the settled balance; refused (not capped)
    when it exceeds what is withdrawable after settling any completed window."""
    book1, settle_entry, st = settle_fund(rules, book, key, time_ms)
    s, p = settled_balance(book1, key), pending_balance(book1, key)
    entry = _transfer(time_ms, "withdrawal", "INS-007", key.currency, fund_account(key), PLATFORM, amount)
    allowed = ("amount", withdraw_allowed(amount, s, p), "INS-007", "more than the fund can release")
    return Step(_book(book1, key, entry, time_ms), (settle_entry, entry),
                (_order_check(book, key, time_ms), _magnitude_check(amount), allowed), st, 0, amount)


def step_settle_all(rules: FundRules, book: Book, now: Any) -> tuple[Book, tuple[tuple[FundKey, J.Entry, Settlement], ...], tuple[tuple[str, Any, str, str], ...]]:
    """INS-008: the daily settlement of every fund at ``now`` (funds in key order)."""
    done = []
    checks = []
    for key in sorted(book.funds, key=lambda k: k.id):
        checks.append(_order_check(book, key, now))
        book, entry, st = settle_fund(rules, book, key, now)
        done.append((key, entry, st))
    return book, tuple(done), tuple(checks)
