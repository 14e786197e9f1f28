"""Insurance-fund plumbing: the frozen fund state, input validation, journal posting and records.

This module decides nothing about numbers: every amount, balance, window and acceptance decision
comes from the rule functions of :mod:`backstop.reference.fund` (INS-*) and
:mod:`backstop.reference.journal` (JRN-*), which the Z3 obligations prove.  Here we only check the
*shape* of concrete inputs (ints, known funds, matching currencies, instruments of the fund),
refuse an event whose rule checks fail -- before anything is built, so a refused event changes
nothing -- post the entries to the :class:`~backstop.reference.journal.Ledger`, keep each fund's
balance history, and emit :class:`~backstop.reference.events.Record` values.

Public API (all functions are pure; they return a new :class:`FundState`)::

    new_state(profile, funds=None, start_ms=0)
    apply_liquidation_result(state, fund, amount_units, time_ms, *, account="", instrument="", currency=None)
        -> (state, records, uncovered_units)
    apply_adl_result(...)                       same shape, ADL results
    apply_fee(state, fund, fee_units, time_ms, receiver=None, *, account="", instrument="", currency=None)
        -> (state, records)
    top_up(state, fund, amount, time_ms, *, currency=None) -> (state, records)
    withdraw(state, fund, amount, time_ms, *, currency=None) -> (state, records)   refused above withdrawable()
    settle(state, now_ms) -> (state, records)
    settled_balance / pending_balance / available_balance(state, fund, view=None) / withdrawable
    balance_history(state, fund, view=None) -> tuple[BalancePoint, ...]
    (the drawdown trigger's peak or average over a window is ADL-001's rule, reference/adl.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from backstop.reference import fund as F
from backstop.reference import journal as J
from backstop.reference.errors import CurrencyMismatch, InvalidInput
from backstop.reference.events import BalancePoint, FundKey, Record, fund_key_of
from backstop.reference.profile import BalanceView, FeeReceiver, FundRules, Profile
from backstop.reference.rules import RULES, Rules

__all__ = [
    "FundState", "HistoryPoint", "new_state", "apply_liquidation_result", "apply_adl_result",
    "apply_fee", "top_up", "withdraw", "settle", "settled_balance", "pending_balance",
    "available_balance", "withdrawable", "balance_history",
    "check_entry", "book_entry", "SETTLEMENT_KINDS",
]

SETTLEMENT_KINDS = {1: "forced liquidation injection", -1: "overloss loss"}


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """A fund's settled and available (settled + pending) balances as of ``time_ms``."""

    time_ms: int
    settled: int
    available: int


@dataclass(frozen=True)
class FundState:
    """Every fund of a profile: the journal (with its balances), each fund's clock and peaks, each
    fund's balance history, and every record emitted so far.  Never mutated."""

    profile: Profile
    ledger: J.Ledger
    funds: Mapping[FundKey, F.FundTerms]
    history: Mapping[FundKey, tuple[HistoryPoint, ...]]
    records: tuple[Record, ...] = ()

    @property
    def book(self) -> F.Book:
        return F.Book(self.ledger.balances, self.funds)

    @property
    def rules(self) -> FundRules:
        return self.profile.fund


# ---------------------------------------------------------------- validation helpers

def _int(field_: str, value: Any, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field_, value, "must be an int (smallest units, or ms since the epoch)", rule)
    return value  # type: ignore[no-any-return]  # value is an int here (checked above); the checker does not narrow Any


def check_entry(entry: Any, R: Rules = RULES) -> None:
    """JRN-001: refuse a malformed entry, or one whose legs do not sum to zero per currency."""
    if not isinstance(entry, J.Entry):
        raise InvalidInput("entry", entry, "must be a journal Entry", "JRN-001")
    _int("entry.time_ms", entry.time_ms, "JRN-001")
    if not isinstance(entry.legs, tuple) or not entry.legs:
        raise InvalidInput("entry.legs", entry.legs, "a non-empty tuple of legs", "JRN-001")
    for i, leg in enumerate(entry.legs):
        if not isinstance(leg, J.Leg):
            raise InvalidInput(f"entry.legs[{i}]", leg, "must be a Leg", "JRN-001")
        if not isinstance(leg.account, str) or not leg.account:
            raise InvalidInput(f"entry.legs[{i}].account", leg.account, "a non-empty account name", "JRN-001")
        if not isinstance(leg.currency, str) or not leg.currency:
            raise InvalidInput(f"entry.legs[{i}].currency", leg.currency, "a currency code", "JRN-001")
        _int(f"entry.legs[{i}].amount", leg.amount, "JRN-001")
    for c in R.J.currencies_of(entry):
        if R.J.entry_imbalance(entry, c) != 0:
            raise InvalidInput(f"entry.legs[{c}]", R.J.entry_imbalance(entry, c),
                               f"the legs in {c} do not sum to zero", "JRN-001")
    if not R.J.entry_balances(entry):  # the rule function decides; the loop above names the currency
        raise InvalidInput("entry.legs", entry.legs, "the entry does not balance per currency", "JRN-001")


def book_entry(ledger: J.Ledger, entry: J.Entry, R: Rules = RULES) -> J.Ledger:
    """JRN-002: append a (checked) entry and fold it into the balances; an empty entry is skipped."""
    if R.J.entry_is_empty(entry):
        return ledger
    return J.Ledger(ledger.entries + (entry,), R.J.apply_entry(ledger.balances, entry))


def _fund(state: FundState, fund: Any) -> FundKey:
    if isinstance(fund, str):
        fund = FundKey.parse(fund)
    if not isinstance(fund, FundKey):
        raise InvalidInput("fund", fund, "a FundKey or 'LINE/UNDERLYING/CURRENCY'", "INS-001")
    if fund not in state.funds:
        known = ", ".join(k.id for k in sorted(state.funds, key=lambda k: k.id))
        raise InvalidInput("fund", fund.id, f"unknown fund (known: {known})", "INS-001")
    return fund


def _check_scope(state: FundState, key: FundKey, currency: Any, instrument: str) -> None:
    if currency is not None and currency != key.currency:
        raise CurrencyMismatch("currency", currency, f"fund {key.id} holds only {key.currency}", "INS-001")
    if instrument:
        inst = state.profile.instrument(instrument)
        if fund_key_of(inst) != key:
            raise InvalidInput("instrument", instrument,
                               f"belongs to fund {fund_key_of(inst).id}, not {key.id}: a movement never crosses funds",
                               "INS-001")


def _accept(step: F.Step) -> None:
    for field_, ok, rule, reason in step.checks:
        if not ok:
            raise InvalidInput(field_, None, reason, rule)


# ---------------------------------------------------------------- state

def new_state(profile: Profile, funds: Iterable[FundKey] | None = None, start_ms: int = 0) -> FundState:
    """Empty funds (balance 0) for every instrument's fund of ``profile``, plus ``funds``."""
    _int("start_ms", start_ms, "INS-009")
    keys = {fund_key_of(i) for i in profile.instruments.values()}
    for k in funds or ():
        if not isinstance(k, FundKey):
            k = FundKey.parse(k)
        if k.currency not in profile.currencies:
            raise CurrencyMismatch("fund", k.id, f"currency {k.currency} is not defined by profile {profile.name!r}", "INS-001")
        keys.add(k)
    terms = {k: F.FundTerms(start_ms, 0, 0) for k in sorted(keys, key=lambda k: k.id)}
    return FundState(profile, J.Ledger(), terms, {k: () for k in sorted(keys, key=lambda k: k.id)})


def _value(state: FundState, key: FundKey, name: str, R: Rules = RULES) -> int:
    return {"settled": R.F.settled_balance, "pending": R.F.pending_balance}[name](state.book, key)  # type: ignore[no-any-return]  # the fund rules return Number (Any): an int, or a Z3 term in the proofs


def _fields(book: F.Book, key: FundKey, R: Rules) -> tuple[tuple[str, Any], ...]:
    s, p = R.F.settled_balance(book, key), R.F.pending_balance(book, key)
    return (("settled", s), ("pending", p), ("available", R.F.available_balance(s, p)))


def _apply(state: FundState, key: FundKey, step: F.Step, event: Record | None, R: Rules) -> tuple[FundState, tuple[Record, ...]]:
    """Post the step's entries, extend the history, append the records."""
    _accept(step)
    ledger = state.ledger
    for e in step.entries:
        check_entry(e, R)
        ledger = book_entry(ledger, e, R)
    records: list[Record] = []
    history = dict(state.history)
    points = list(history[key])
    st = step.settlement
    settle_book = F.Book(R.J.apply_entry(state.ledger.balances, step.entries[0]), state.funds)
    kind = SETTLEMENT_KINDS.get(R.F.direction(st.moved))
    if kind:
        records.append(_settlement_record(key, st, kind, settle_book, R))
        points.append(_point(settle_book, key, st.time_ms, R))
    if event is not None:
        records.append(Record(event.kind, event.time_ms, event.rules, event.account, event.instrument, key.id,
                              event.fields + _fields(step.book, key, R)))
        points.append(_point(step.book, key, event.time_ms, R))
    history[key] = tuple(points)
    new = FundState(state.profile, ledger, step.book.funds, history, state.records + tuple(records))
    return new, tuple(records)


def _point(book: F.Book, key: FundKey, time_ms: int, R: Rules) -> HistoryPoint:
    s, p = R.F.settled_balance(book, key), R.F.pending_balance(book, key)
    return HistoryPoint(time_ms, s, R.F.available_balance(s, p))


def _settlement_record(key: FundKey, st: F.Settlement, kind: str, book: F.Book, R: Rules) -> Record:
    return Record(kind, st.time_ms, ("INS-008", "INS-002"), fund=key.id,
                  fields=(("window", st.window), ("window_start_ms", st.time_ms - F.DAY_MS),
                          ("window_end_ms", st.time_ms), ("amount", R.F.direction(st.moved) * st.moved),
                          ("net", st.moved)) + _fields(book, key, R))


# ---------------------------------------------------------------- events

def _result(state: FundState, fund: Any, amount_units: Any, time_ms: Any, account: str, instrument: str,
            currency: Any, what: str, rule: str, R: Rules) -> tuple[FundState, tuple[Record, ...], int]:
    key = _fund(state, fund)
    _int("amount_units", amount_units, rule)
    _int("time_ms", time_ms, "INS-009")
    _check_scope(state, key, currency, instrument)
    step = R.F.step_result(state.rules, state.book, key, amount_units, time_ms, f"{what} result", rule)
    sign = {1: "surplus", 0: "surplus", -1: "deficit"}[R.F.direction(amount_units)]
    rec = Record(f"{what} {sign}", time_ms, (rule, "INS-003"), account, instrument, key.id,
                 (("amount", amount_units), ("inflow", step.inflow), ("paid", step.paid),
                  ("uncovered", step.uncovered)))
    new, records = _apply(state, key, step, rec, R)
    return new, records, step.uncovered


def apply_liquidation_result(state: FundState, fund: Any, amount_units: int, time_ms: int, *, account: str = "",
                             instrument: str = "", currency: str | None = None, R: Rules = RULES) -> tuple[FundState, tuple[Record, ...], int]:
    """Book a liquidation result (positive surplus, negative deficit) for ``fund`` at ``time_ms``.
    Returns the new state, the records, and the uncovered part of a deficit (an ADL obligation)."""
    return _result(state, fund, amount_units, time_ms, account, instrument, currency, "liquidation", "INS-004", R)


def apply_adl_result(state: FundState, fund: Any, amount_units: int, time_ms: int, *, account: str = "",
                     instrument: str = "", currency: str | None = None, R: Rules = RULES) -> tuple[FundState, tuple[Record, ...], int]:
    """Book an ADL result into the same pending ledger (same rules as a liquidation result)."""
    return _result(state, fund, amount_units, time_ms, account, instrument, currency, "adl", "INS-004", R)


def apply_fee(state: FundState, fund: Any, fee_units: int, time_ms: int, receiver: Any = None, *,
              account: str = "", instrument: str = "", currency: str | None = None, R: Rules = RULES) -> tuple[FundState, tuple[Record, ...]]:
    """A liquidation fee paid by ``user:<account>`` (or by the engine when no account is named),
    to the fund's pending ledger or to the venue (default: the profile's ``liquidation.fee_receiver``)."""
    key = _fund(state, fund)
    _int("fee_units", fee_units, "INS-005")
    _int("time_ms", time_ms, "INS-009")
    _check_scope(state, key, currency, instrument)
    if receiver is None:
        receiver = state.profile.liquidation.fee_receiver
    try:
        receiver = FeeReceiver(receiver)
    except ValueError:
        raise InvalidInput("receiver", receiver, "'fund' or 'venue'", "INS-005") from None
    if not isinstance(account, str):
        raise InvalidInput("account", account, "an account id", "INS-005")
    payer = R.F.user_account(account) if account else R.F.engine_account(key)
    step = R.F.step_fee(state.rules, state.book, key, fee_units, time_ms, receiver, payer)
    rec = Record("liquidation fee", time_ms, ("INS-005",), account, instrument, key.id,
                 (("amount", fee_units), ("receiver", receiver.value), ("inflow", step.inflow)))
    return _apply(state, key, step, rec, R)


def _platform(state: FundState, fund: Any, amount: Any, time_ms: Any, currency: Any, rule: str, kind: str,
              step_name: str, R: Rules) -> tuple[FundState, tuple[Record, ...]]:
    """A platform top-up (INS-006) or withdrawal (INS-007): check the shape, let the rule function
    decide, post and record."""
    key = _fund(state, fund)
    _int("amount", amount, rule)
    _int("time_ms", time_ms, "INS-009")
    _check_scope(state, key, currency, "")
    step = getattr(R.F, step_name)(state.rules, state.book, key, amount, time_ms)
    rec = Record(kind, time_ms, (rule,), fund=key.id, fields=(("amount", amount),))
    return _apply(state, key, step, rec, R)


def top_up(state: FundState, fund: Any, amount: int, time_ms: int, *, currency: str | None = None, R: Rules = RULES) -> tuple[FundState, tuple[Record, ...]]:
    """The platform injects ``amount`` into the fund's settled balance (an explicit, recorded event)."""
    return _platform(state, fund, amount, time_ms, currency, "INS-006", "top-up", "step_top_up", R)


def withdraw(state: FundState, fund: Any, amount: int, time_ms: int, *, currency: str | None = None, R: Rules = RULES) -> tuple[FundState, tuple[Record, ...]]:
    """The platform withdraws ``amount`` from the settled balance; refused beyond :func:`withdrawable`."""
    return _platform(state, fund, amount, time_ms, currency, "INS-007", "withdrawal", "step_withdraw", R)


def settle(state: FundState, now_ms: int, R: Rules = RULES) -> tuple[FundState, tuple[Record, ...]]:
    """Settle every fund at ``now_ms``: each completed window's pending net moves into the settled
    balance.  Refused when ``now_ms`` is earlier than any fund's last event; idempotent."""
    _int("now_ms", now_ms, "INS-009")
    book, done, checks = R.F.step_settle_all(state.rules, state.book, now_ms)
    for field_, ok, rule, reason in checks:
        if not ok:
            raise InvalidInput("now_ms", now_ms, reason, rule)
    ledger = state.ledger
    history = dict(state.history)
    records: list[Record] = []
    for key, entry, st in done:
        check_entry(entry, R)
        ledger = book_entry(ledger, entry, R)
        kind = SETTLEMENT_KINDS.get(R.F.direction(st.moved))
        if kind:
            after = F.Book(ledger.balances, state.funds)
            records.append(_settlement_record(key, st, kind, after, R))
            history[key] = history[key] + (_point(after, key, st.time_ms, R),)
    new = FundState(state.profile, ledger, book.funds, history, state.records + tuple(records))
    return new, tuple(records)


# ---------------------------------------------------------------- views

def settled_balance(state: FundState, fund: Any, R: Rules = RULES) -> int:
    return R.F.settled_balance(state.book, _fund(state, fund))  # type: ignore[no-any-return]  # the fund rules return Number (Any): an int, or a Z3 term in the proofs


def pending_balance(state: FundState, fund: Any, R: Rules = RULES) -> int:
    return R.F.pending_balance(state.book, _fund(state, fund))  # type: ignore[no-any-return]  # the fund rules return Number (Any): an int, or a Z3 term in the proofs


def available_balance(state: FundState, fund: Any, view: Any = None, R: Rules = RULES) -> int:
    """The balance in ``view`` (default: the profile's ``adl.balance_view``)."""
    key = _fund(state, fund)
    view = BalanceView(view) if view is not None else state.profile.adl.balance_view
    return R.F.balance_in_view(view, R.F.settled_balance(state.book, key), R.F.pending_balance(state.book, key))  # type: ignore[no-any-return]  # the fund rules return Number (Any): an int, or a Z3 term in the proofs


def withdrawable(state: FundState, fund: Any, R: Rules = RULES) -> int:
    key = _fund(state, fund)
    return R.F.withdrawable(R.F.settled_balance(state.book, key), R.F.pending_balance(state.book, key))  # type: ignore[no-any-return]  # the fund rules return Number (Any): an int, or a Z3 term in the proofs


def balance_history(state: FundState, fund: Any, view: Any = None, R: Rules = RULES) -> tuple[BalancePoint, ...]:
    """The fund's balance after every change, in ``view`` (default: the profile's ``adl.balance_view``)."""
    key = _fund(state, fund)
    view = BalanceView(view) if view is not None else state.profile.adl.balance_view
    return tuple(BalancePoint(p.time_ms, R.F.balance_in_view(view, p.settled, p.available - p.settled))
                 for p in state.history[key])
