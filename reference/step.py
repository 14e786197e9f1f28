"""The one transition of the whole process: ``process_event(state, event, R) -> (state, records)``.

Plumbing, not rules (spec/50-transition.md).  This module validates concrete events (TRN-007),
dispatches by event type, iterates in the fixed orders of TRN-002, and builds the next frozen
:class:`SimState`.  Every number it books and every decision it takes comes from a rule function
reached through ``R`` (:class:`~backstop.reference.rules.Rules`: margin, liquidation, engine,
adl, fund, journal and the transition's own rules in :mod:`~backstop.reference.transition`);
this module imports none of them, so the whole-loop proof (OBL-INV-024) sees every rule call
through that one visible argument.

A mark-price event is the ordered list of its steps (TRN-001), as ethereum/consensus-specs'
``process_epoch`` is the list of its own:

1. :func:`process_settlement` -- every fund window that has closed is settled (INS-002, INS-008);
2. :func:`process_mark` -- the new mark is recorded (MRG-002);
3. :func:`process_isolated_positions` -- each isolated position on the instrument, in account
   order: the decision and loop (LIQ-004..LIQ-007); partial reductions at the mark, full
   liquidations at the bankruptcy price, each handed to the engine (ENG-001..ENG-006), which
   places no order while the fund is in the ADL state (TRN-005);
4. :func:`process_cross_accounts` -- each account's cross positions in the instrument's
   settlement currency, in account order, round by round (LIQ-008, LIQ-009, TRN-003, TRN-004);
5. :func:`process_remainders` -- the instrument's open bankrupt remainders, in the order they
   were opened: retried against the book, or deleveraged when ADL fires (ADL-001..ADL-009);
   then the fund's ADL state (TRN-006, ADL-003);
6. :func:`process_recheck` -- the accounts ADL touched are checked once more, and a liquidation
   this causes goes through steps 3-5 again (TRN-008).

A book event is steps 1, :func:`process_book` and 5; top-ups, withdrawals and settlements are
step 1 and their fund movement.  A refused event raises
:class:`~backstop.reference.errors.InvalidInput` before anything is built, so it changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Mapping

from backstop.reference import fundbook as FB
from backstop.reference.engine import Fill, Level
from backstop.reference.errors import InvalidInput, OutOfTierRange, UnknownInstrument
from backstop.reference.events import FundKey, Record, fund_key_of
from backstop.reference.profile import BalanceView, Profile
from backstop.reference.rules import RULES, Rules
from backstop.reference.types import (Account, Instrument, MarginMode, Position, PositionTerms, exact,
                                      format_exact)

__all__ = ["Book", "Remainder", "AccountIndex", "SimState", "MarkEvent", "BookEvent", "TopUpEvent", "WithdrawEvent", "SettleEvent",
           "initial_state", "process_event", "process_mark_event", "process_book_event", "process_settlement",
           "process_mark", "process_book", "process_isolated_positions", "process_cross_accounts",
           "process_remainders", "process_recheck", "check_book", "check_account", "check_invariants",
           "check_invariants_full", "check_invariants_incremental", "state_json"]


# ---------------------------------------------------------------- state

@dataclass(frozen=True, slots=True)
class Book:
    """The order book of one instrument: bids (best = highest first) and asks (lowest first)."""

    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()


@dataclass(frozen=True, slots=True)
class Remainder:
    """An open bankrupt remainder held by the engine: ``size`` contracts on ``sign``, taken over at
    ``price`` (the engine's entry) from ``account`` at ``time_ms``."""

    id: int
    account: str
    instrument: str
    sign: int
    size: Fraction
    price: Fraction
    time_ms: int


class AccountIndex:
    """Account id -> its place in :attr:`SimState.accounts` (plumbing, C64).  Deliberately not a
    dict, tuple or dataclass: the proofs' traversals of a state (``proofs/concolic.py``: its
    numbers, its symbolic values) pass over it, as it holds no number of the state."""

    __slots__ = ("places",)

    def __init__(self, accounts: Iterable[Account]) -> None:
        self.places = {a.id: k for k, a in enumerate(accounts)}   # the last of a repeated id, as a dict of them

    def get(self, acct: str) -> int | None:
        return self.places.get(acct)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AccountIndex) and self.places == other.places

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AccountIndex({len(self.places)} accounts)"


@dataclass(frozen=True)
class SimState:
    profile: Profile
    time_ms: int
    accounts: tuple[Account, ...]
    marks: tuple[tuple[str, Fraction], ...]
    books: tuple[tuple[str, Book], ...]
    funds: FB.FundState
    remainders: tuple[Remainder, ...] = ()
    adl_active: tuple[tuple[str, bool], ...] = ()
    dust: tuple[tuple[str, Fraction], ...] = ()   # rounding residue per currency, booked to the venue (ENG-005)
    next_id: int = 1
    # an index, not state: account id -> its place in ``accounts``.  The transition never adds,
    # removes or reorders accounts (``_with_account`` replaces one in place), so the index of the
    # initial state serves every state derived from it by ``dataclasses.replace``; every lookup
    # checks the id it finds and rebuilds the index when it is stale (C64).
    account_index: AccountIndex | None = dataclasses.field(default=None, compare=False, repr=False)

    # The accessors below read the state through per-instance lookup tables (plumbing, C64): each
    # state builds its marks / books / ADL-state dicts once, on first use, instead of once per call.

    def _table(self, name: str) -> dict[str, Any]:
        d = self.__dict__.get("_t_" + name)
        if d is None:
            d = dict(getattr(self, name))
            object.__setattr__(self, "_t_" + name, d)
        return d

    def mark(self, inst: str) -> Fraction:
        m = self._table("marks")
        if inst not in m:
            raise InvalidInput(f"marks.{inst}", None, "no mark price has been given for this instrument yet", "MRG-002")
        return m[inst]  # type: ignore[no-any-return]  # the state's tables are dict[str, Any] (values may be shadowed or Z3 terms in the proofs)

    def has_mark(self, inst: str) -> bool:
        return inst in self._table("marks")

    def account_ids(self) -> tuple[str, ...]:
        """The account ids in TRN-002 order (the state keeps its accounts sorted so)."""
        return tuple(a.id for a in self.accounts)

    def book(self, inst: str) -> Book:
        return self._table("books").get(inst, Book())  # type: ignore[no-any-return]  # the state's tables are dict[str, Any]

    def account(self, acct: str) -> Account:
        idx = self.account_index
        i = idx.get(acct) if idx is not None else None
        if i is None or i >= len(self.accounts) or self.accounts[i].id != acct:
            idx = AccountIndex(self.accounts)
            object.__setattr__(self, "account_index", idx)
            i = idx.places[acct]                                    # KeyError for an unknown id, as before
        return self.accounts[i]

    def is_adl_active(self, fund: FundKey) -> bool:
        return self._table("adl_active").get(fund.id, False)  # type: ignore[no-any-return]  # the state's tables are dict[str, Any] (a Z3 term in the proofs)


@dataclass(frozen=True, slots=True)
class MarkEvent:
    time_ms: int
    instrument: str
    price: Fraction


@dataclass(frozen=True, slots=True)
class BookEvent:
    time_ms: int
    instrument: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class TopUpEvent:
    time_ms: int
    fund: str
    amount: int


@dataclass(frozen=True, slots=True)
class WithdrawEvent:
    time_ms: int
    fund: str
    amount: int


@dataclass(frozen=True, slots=True)
class SettleEvent:
    time_ms: int


# ---------------------------------------------------------------- validation (TRN-007): one set of checks for every entry point

def _instrument(profile: Profile, inst_id: Any, field_: str) -> Instrument:
    if not isinstance(inst_id, str) or inst_id not in profile.instruments:
        raise UnknownInstrument(field_, inst_id, f"not an instrument of profile {profile.name!r}", "MRG-001")
    return profile.instruments[inst_id]


def _time(state_time: int, t: Any) -> int:
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise InvalidInput("time_ms", t, "an int >= 0 (ms since the epoch, UTC)", "INS-009")
    if t < state_time:
        raise InvalidInput("time_ms", t, f"events must not go back in time (last event at {state_time})", "INS-009")
    return t  # type: ignore[no-any-return]  # t is an int here (checked above); the checker does not narrow Any


def _levels(inst: Instrument, levels: Iterable[Any], field_: str, descending: bool) -> tuple[Level, ...]:
    out: list[Level] = []
    for i, lv in enumerate(levels):
        price, size = (lv.price, lv.size) if isinstance(lv, Level) else lv
        p = exact(f"{field_}[{i}].price", price, "ENG-001", positive=True)
        q = exact(f"{field_}[{i}].size", size, "ENG-001")
        if q < 0:
            raise InvalidInput(f"{field_}[{i}].size", size, "must be >= 0", "ENG-001")
        if (p / inst.tick_size).denominator != 1:
            raise InvalidInput(f"{field_}[{i}].price", price, f"not on the tick grid of {inst.id} ({inst.tick_size})", "ENG-001")
        if out and ((p >= out[-1].price) if descending else (p <= out[-1].price)):
            raise InvalidInput(f"{field_}[{i}].price", price,
                               "levels must be best first (bids strictly descending, asks strictly ascending)", "ENG-001")
        out.append(Level(p, q))
    return tuple(out)


def check_book(inst: Instrument, bids: Iterable[Any], asks: Iterable[Any], field_: str) -> Book:
    """TRN-007: a book of ``inst``: prices > 0 on the tick grid, sizes >= 0, each side best first,
    and not crossed (the best ask above the best bid).  Returns the checked :class:`Book`."""
    b = Book(_levels(inst, bids, f"{field_}.bids", True), _levels(inst, asks, f"{field_}.asks", False))
    if b.bids and b.asks and b.bids[0].price >= b.asks[0].price:
        raise InvalidInput(f"{field_}.asks[0].price", format_exact(b.asks[0].price),
                           f"crossed book: the best ask must be above the best bid {format_exact(b.bids[0].price)}",
                           "TRN-007")
    return b


def check_account(profile: Profile, a: Account, marks: Mapping[str, Fraction], R: Rules = RULES) -> None:
    """TRN-007: an account of ``profile``: positions on the lot grid, within the last tier of their
    table at the entry and at the mark (MRG-004), cross positions without a margin of their own,
    balances in the profile's currencies and >= 0, a mark for every position's instrument."""
    for i, p in enumerate(a.positions):
        where = f"account.{a.id}.positions[{i}]"
        inst = _instrument(profile, p.instrument, f"{where}.instrument")
        if (p.size / inst.lot_size).denominator != 1:
            raise InvalidInput(f"{where}.size", p.size, f"not on the lot grid of {inst.id} ({inst.lot_size})", "LIQ-005")
        if p.margin_mode is MarginMode.CROSS and p.margin != 0:
            raise InvalidInput(f"{where}.margin", p.margin,
                               "a cross position has no margin of its own (it uses the balance)", "LIQ-008")
        if p.instrument not in marks:
            raise InvalidInput(f"marks.{p.instrument}", None, f"a mark price is needed for account {a.id}'s position", "MRG-002")
        for label, price in (("entry price", p.entry_price), ("mark price", marks[p.instrument])):
            if not R.M.is_within_tiers(inst, p.size, price):
                raise OutOfTierRange(f"{where}.size", p.size, f"above the last tier's cap of table "
                                     f"{inst.tier_table.name!r} at the {label}", "MRG-004")
    for code, amount in a.balances:
        if code not in profile.currencies:
            raise InvalidInput(f"account.{a.id}.balances.{code}", code, "a currency of the profile", "MRG-003")
        if amount < 0:
            raise InvalidInput(f"account.{a.id}.balances.{code}", amount, "an initial balance must be >= 0", "MRG-003")


def initial_state(profile: Profile, accounts: Iterable[Account], marks: Mapping[str, Any],
                  books: Mapping[str, Book] | None = None, fund_balances: Mapping[str, int] | None = None,
                  start_ms: int = 0, R: Rules = RULES) -> SimState:
    """A state at ``start_ms``: accounts (in TRN-002 order), a mark for every instrument that has a
    position, books, and the funds (empty, then topped up by ``fund_balances`` as recorded
    platform top-ups).  Every input goes through the checks of TRN-007."""
    accts = tuple(sorted(accounts, key=lambda a: R.T.account_order_key(a.id)))
    if len({a.id for a in accts}) != len(accts):
        raise InvalidInput("accounts", [a.id for a in accts], "account ids must be unique", "LIQ-008")
    mk = {}
    for k, v in sorted(marks.items()):
        _instrument(profile, k, f"marks.{k}")
        mk[k] = exact(f"marks.{k}", v, "MRG-002", positive=True)
    for a in accts:
        check_account(profile, a, mk, R)
    bk = []
    for k, b in sorted((books or {}).items()):
        inst = _instrument(profile, k, f"books.{k}")
        bk.append((k, check_book(inst, b.bids, b.asks, f"books.{k}")))
    funds = FB.new_state(profile, start_ms=start_ms)
    for fid, amount in sorted((fund_balances or {}).items()):
        if amount:
            funds, _ = FB.top_up(funds, fid, amount, start_ms, R=R)
    return SimState(profile, start_ms, accts, tuple(mk.items()), tuple(bk), funds,
                    account_index=AccountIndex(accts))


def _check_event(state: SimState, event: Any) -> Any:
    """TRN-007: the event, checked against the state, before anything is built."""
    t = _time(state.time_ms, getattr(event, "time_ms", None))
    p = state.profile
    if isinstance(event, MarkEvent):
        inst = _instrument(p, event.instrument, "event.instrument")
        return MarkEvent(t, inst.id, exact("event.price", event.price, "MRG-002", positive=True))
    if isinstance(event, BookEvent):
        inst = _instrument(p, event.instrument, "event.instrument")
        b = check_book(inst, event.bids, event.asks, "event")
        return BookEvent(t, inst.id, b.bids, b.asks)
    if isinstance(event, (TopUpEvent, WithdrawEvent)):
        FB._fund(state.funds, event.fund)  # refuse an unknown fund before anything changes
        return event
    if isinstance(event, SettleEvent):
        return event
    raise InvalidInput("event", type(event).__name__, "mark, book, top_up, withdraw or settle", "INS-009")


# ---------------------------------------------------------------- the transition (TRN-001)

def process_event(state: SimState, event: Any, R: Rules = RULES) -> tuple[SimState, tuple[Record, ...]]:
    """Apply one event; return the new state and the records it emitted (in order).  ``R`` is the
    namespace of rule functions (default: the reference's own)."""
    event = _check_event(state, event)
    if isinstance(event, MarkEvent):
        return process_mark_event(state, event, R)
    if isinstance(event, BookEvent):
        return process_book_event(state, event, R)
    state, recs = process_settlement(state, event.time_ms, R)
    if isinstance(event, TopUpEvent):
        funds, r = FB.top_up(state.funds, event.fund, event.amount, event.time_ms, R=R)
        return dataclasses.replace(state, funds=funds), recs + r
    if isinstance(event, WithdrawEvent):
        funds, r = FB.withdraw(state.funds, event.fund, event.amount, event.time_ms, R=R)
        return dataclasses.replace(state, funds=funds), recs + r
    return state, recs


def process_mark_event(state: SimState, event: MarkEvent, R: Rules = RULES) -> tuple[SimState, tuple[Record, ...]]:
    """TRN-001: the steps of one mark-price event, in order."""
    t, inst = event.time_ms, state.profile.instruments[event.instrument]
    state, recs = process_settlement(state, t, R)
    state, r = process_mark(state, t, inst, event.price)
    recs += r
    state, r = process_isolated_positions(state, t, inst, state.account_ids(), R)
    recs += r
    state, r = process_cross_accounts(state, t, inst, state.account_ids(), R)
    recs += r
    state, r = process_remainders(state, t, inst, R)
    recs += r
    state, r = process_recheck(state, t, inst, r, R)
    return state, recs + r


def process_book_event(state: SimState, event: BookEvent, R: Rules = RULES) -> tuple[SimState, tuple[Record, ...]]:
    """TRN-001: a new book: settlement, the book, then the instrument's open remainders."""
    t, inst = event.time_ms, state.profile.instruments[event.instrument]
    state, recs = process_settlement(state, t, R)
    state = process_book(state, inst, Book(event.bids, event.asks))
    state, r = process_remainders(state, t, inst, R)
    return state, recs + r


# ---------------------------------------------------------------- step 1, 2: settlement, the mark, the book

def process_settlement(state: SimState, t: int, R: Rules) -> tuple[SimState, tuple[Record, ...]]:
    """INS-002 / INS-008: settle every fund window closed by ``t`` (first, at every event)."""
    funds, recs = FB.settle(state.funds, t, R=R)
    return dataclasses.replace(state, funds=funds, time_ms=t), recs


def process_mark(state: SimState, t: int, inst: Instrument, price: Fraction) -> tuple[SimState, tuple[Record, ...]]:
    """MRG-002: the instrument's mark is now ``price``."""
    state = dataclasses.replace(state, marks=tuple(sorted({**dict(state.marks), inst.id: price}.items())))
    return state, (Record("mark", t, ("MRG-002",), instrument=inst.id, fields=(("price", price),)),)


def process_book(state: SimState, inst: Instrument, book: Book) -> SimState:
    """ENG-001: the instrument's book is now ``book`` (checked by TRN-007)."""
    return dataclasses.replace(state, books=tuple(sorted({**dict(state.books), inst.id: book}.items())))


# ---------------------------------------------------------------- helpers that build the next state

def _with_account(state: SimState, acct: Account) -> SimState:
    return dataclasses.replace(state, accounts=tuple(acct if a.id == acct.id else a for a in state.accounts))


def _set_balance(acct: Account, code: str, amount: Any) -> Account:
    bal = dict(acct.balances)
    bal[code] = amount
    return dataclasses.replace(acct, balances=tuple(sorted(bal.items())))


def _replace_position(acct: Account, old: Position, new: Position | None) -> Account:
    ps = [p for p in acct.positions if p is not old] if new is None else [new if p is old else p for p in acct.positions]
    return dataclasses.replace(acct, positions=tuple(ps))


def _add_dust(state: SimState, code: str, amount: Any, R: Rules) -> SimState:
    if amount == 0:
        return state
    d = dict(state.dust)
    d[code] = R.T.compute_dust_total(d.get(code, 0), amount)
    return dataclasses.replace(state, dust=tuple(sorted(d.items())))


def _available(state: SimState, fund: FundKey, R: Rules) -> Any:
    return FB.available_balance(state.funds, fund, BalanceView.SETTLED_PLUS_PENDING, R=R)


def _fund_result(state: SimState, fund: FundKey, amount: Any, t: int, account: str, inst: str, R: Rules,
                 adl_result: bool = False) -> tuple[SimState, list[Record], Any]:
    fn = FB.apply_adl_result if adl_result else FB.apply_liquidation_result
    funds, recs, uncovered = fn(state.funds, fund, amount, t, account=account, instrument=inst, R=R)
    return dataclasses.replace(state, funds=funds), list(recs), uncovered


def _consume(levels: tuple[Level, ...], fills: tuple[Fill, ...], R: Rules) -> tuple[Level, ...]:
    return tuple(lv for lv in R.T.compute_levels_after(levels, fills) if lv.size > 0)


def _side(sign: int) -> str:
    return "long" if sign > 0 else "short"


# ---------------------------------------------------------------- the engine (ENG-001 .. ENG-006, TRN-005)

def _engine_close(state: SimState, t: int, inst: Instrument, account: str, sign: int, size: Any,
                  price: Any, why: str, R: Rules) -> tuple[SimState, list[Record]]:
    """Hand ``size`` contracts (entered at ``price``) to the engine; what it cannot place stays open
    as a new bankrupt remainder."""
    state, recs, remainder = _engine_walk(state, t, inst, account, sign, size, price, why, R)
    if remainder > 0:
        fund = fund_key_of(inst)
        rem = Remainder(state.next_id, account, inst.id, sign, remainder, price, t)
        state = dataclasses.replace(state, remainders=state.remainders + (rem,), next_id=state.next_id + 1)
        recs.append(Record("bankrupt remainder", t, ("ENG-001", "ENG-006", "TRN-005"), account, inst.id, fund.id,
                           (("remainder_id", rem.id), ("side", _side(sign)), ("size", remainder),
                            ("takeover_price", price), ("in_adl_state", state.is_adl_active(fund)))))
    return state, recs


def _engine_walk(state: SimState, t: int, inst: Instrument, account: str, sign: int, size: Any,
                 price: Any, why: str, R: Rules) -> tuple[SimState, list[Record], Any]:
    """Walk the book within the fund's available balance (ENG-006) while the market is open to the
    fund (TRN-005); book the result and the fee (ENG-004); return what was not placed."""
    fund = fund_key_of(inst)
    if not R.T.is_market_open(state.is_adl_active(fund)):
        return state, [], size
    recs: list[Record] = []
    book = state.book(inst.id)
    levels = book.bids if sign > 0 else book.asks  # a long is closed by selling into the bids
    c = R.E.close_position_within(inst, state.profile.liquidation, sign, size, price, levels, _available(state, fund, R))
    new_levels = _consume(levels, c.fills, R)
    nb = Book(new_levels, book.asks) if sign > 0 else Book(book.bids, new_levels)
    state = process_book(state, inst, nb)
    for f in c.fills:
        if f.size > 0:
            recs.append(Record("engine fill", t, ("ENG-001", "ENG-006"), account, inst.id, fund.id,
                               (("side", "sell" if sign > 0 else "buy"), ("size", f.size), ("price", f.price),
                                ("takeover_price", price))))
    filled = R.T.compute_filled(size, c.remainder)
    if filled > 0:
        recs.append(Record("engine close", t, ("ENG-002", "ENG-003", "ENG-004", "ENG-005"), account, inst.id, fund.id,
                           (("why", why), ("filled", filled), ("takeover_price", price), ("pnl", c.pnl),
                            ("result", c.result_units), ("fee", c.fee_units), ("to_fund", c.fund_units),
                            ("venue", c.venue_units), ("dust", c.dust))))
        state = _add_dust(state, inst.settle_currency.code, c.dust, R)
        posting = R.T.compute_fund_posting(c.fund_units, c.fee_units, c.venue_units)
        state, r, uncovered = _fund_result(state, fund, posting, t, account, inst.id, R)
        recs += r
        if c.fee_units > 0:
            funds, r2 = FB.apply_fee(state.funds, fund, c.fee_units, t, instrument=inst.id, R=R)
            state = dataclasses.replace(state, funds=funds)
            recs += list(r2)
        if c.user_units > 0:  # ENG-004: the part of the surplus the fund does not keep
            acct = state.account(account)
            code = inst.settle_currency.code
            state = _with_account(state, _set_balance(acct, code, R.T.compute_balance_after_surplus_return(
                acct.balance(code), c.user_units)))
            recs.append(Record("surplus to user", t, ("ENG-004",), account, inst.id, fund.id,
                               (("to_user", c.user_units),)))
        if uncovered > 0:  # cannot happen within the ENG-006 budget; recorded if it ever does
            recs.append(Record("uncovered deficit", t, ("INS-004", "ADL-002"), account, inst.id, fund.id,
                               (("uncovered", uncovered),)))
    return state, recs, c.remainder


def _pay_close_fee(state: SimState, t: int, acct: str, inst: Instrument, fee: Any, R: Rules) -> tuple[SimState, list[Record]]:
    if fee <= 0:
        return state, []
    funds, recs = FB.apply_fee(state.funds, fund_key_of(inst), fee, t, account=acct, instrument=inst.id, R=R)
    return dataclasses.replace(state, funds=funds), list(recs)


def _hand_over_partial(state: SimState, t: int, acct_id: str, inst: Instrument, entry: Any,
                       s: Any, mark: Any, sign: int, R: Rules) -> tuple[SimState, list[Record]]:
    """A partial step's reduced part (LIQ-005): the fee to its receiver, the rounding dust of the
    realized PnL to the venue (ENG-005), the part to the engine at the mark."""
    state, recs = _pay_close_fee(state, t, acct_id, inst, s.fee_units, R)
    dust = R.T.compute_partial_dust(inst, sign, s.reduced, entry, mark, s.realized_units)
    state = _add_dust(state, inst.settle_currency.code, dust, R)
    state, r = _engine_close(state, t, inst, acct_id, sign, s.reduced, mark, "partial", R)
    return state, recs + r


def _hand_over_full(state: SimState, t: int, acct_id: str, inst: Instrument, tk: Any, sign: int,
                    size: Any, R: Rules) -> tuple[SimState, list[Record]]:
    """A full liquidation's takeover (LIQ-007): the engine's cash (when the position had no
    bankruptcy price) to the fund, its rounding dust to the venue (ENG-005); the fee to close the
    bankruptcy price leaves (``margin.bankruptcy_includes_close_fee``; 0 otherwise) to the close-fee
    receiver as a partial step's fee goes, its rounding dust to the venue; the position to the
    engine at the takeover price."""
    recs: list[Record] = []
    if tk.cash != 0:
        state = _add_dust(state, inst.settle_currency.code, R.T.compute_takeover_dust(tk.cash, tk.cash_units), R)
        state, recs, uncovered = _fund_result(state, fund_key_of(inst), tk.cash_units, t, acct_id, inst.id, R)
        if uncovered > 0:  # LIQ-009 (C51): not reached with a balance >= 0 (OBL-LIQ-009d); recorded, never discarded
            recs.append(Record("uncovered deficit", t, ("LIQ-009", "INS-004", "ADL-002"), acct_id, inst.id,
                               fund_key_of(inst).id, (("uncovered", uncovered),)))
    fee_dust = R.T.compute_takeover_fee_dust(tk.close_fee, tk.close_fee_units)
    state = _add_dust(state, inst.settle_currency.code, fee_dust, R)
    state, r = _pay_close_fee(state, t, acct_id, inst, tk.close_fee_units, R)
    recs += r
    state, r = _engine_close(state, t, inst, acct_id, sign, size, tk.price, "full", R)
    return state, recs + r


# ---------------------------------------------------------------- step 3: isolated positions (LIQ-004 .. LIQ-007)

def _trigger_record(t: int, acct: str, inst: Instrument, pos: PositionTerms, mark: Any, action: Any, R: Rules) -> Record:
    return Record("liquidation trigger", t, ("LIQ-001", "LIQ-004"), acct, inst.id, fund_key_of(inst).id,
                  (("margin_mode", "isolated"), ("side", _side(pos.sign)), ("mark", mark), ("size", pos.size),
                   ("margin", pos.margin), ("action", R.L.ACTION_NAMES[action])))


def _partial_record(t: int, acct: str, inst: Instrument, s: Any, mode: str) -> Record:
    return Record("partial liquidation", t, ("LIQ-005", "LIQ-006"), acct, inst.id, fund_key_of(inst).id,
                  (("margin_mode", mode), ("side", _side(s.position.sign)), ("tier_before", s.tier_before), ("tier_after", s.tier_after),
                   ("reduced", s.reduced), ("price", s.price), ("realized_pnl", s.realized_units),
                   ("close_fee", s.fee_units), ("new_size", s.position.size), ("new_margin", s.position.margin)))


def _liquidate_isolated(state: SimState, t: int, acct_id: str, pos: Position, R: Rules) -> tuple[SimState, list[Record]]:
    p = state.profile
    inst = p.instruments[pos.instrument]
    mark = state.mark(inst.id)
    terms = pos.terms()
    action = R.L.decide_action(inst, p.margin, p.liquidation, terms, mark)
    if action == R.L.NONE:
        return state, []
    out = R.L.run_liquidation(inst, p.margin, p.liquidation, terms, mark)
    recs = [_trigger_record(t, acct_id, inst, terms, mark, action, R)]
    for active, s in out.steps:
        if not active:
            continue
        recs.append(_partial_record(t, acct_id, inst, s, "isolated"))
        state, r = _hand_over_partial(state, t, acct_id, inst, terms.entry, s, mark, terms.sign, R)
        recs += r
    acct = state.account(acct_id)
    if out.action == R.L.FULL:
        rest = out.position
        tk = R.L.compute_full_takeover(inst, p.margin, rest, mark)
        recs.append(Record("full liquidation", t, ("LIQ-007", "INV-021"), acct_id, inst.id, fund_key_of(inst).id,
                           (("margin_mode", "isolated"), ("side", _side(rest.sign)), ("size", rest.size), ("takeover_price", tk.price),
                            ("bankruptcy_price_exists", tk.defined), ("user_loss", tk.user_loss_units),
                            ("engine_cash", tk.cash))))
        state = _with_account(state, _replace_position(acct, pos, None))
        state, r = _hand_over_full(state, t, acct_id, inst, tk, rest.sign, rest.size, R)
        return state, recs + r
    new = dataclasses.replace(pos, size=out.position.size, margin=out.position.margin)
    return _with_account(state, _replace_position(acct, pos, new)), recs


def process_isolated_positions(state: SimState, t: int, inst: Instrument, account_ids: tuple[str, ...],
                               R: Rules) -> tuple[SimState, tuple[Record, ...]]:
    """Step 3 (TRN-001): each isolated position on ``inst`` of the accounts named, in TRN-002 order."""
    recs: list[Record] = []
    for acct_id in account_ids:
        for pos in [q for q in state.account(acct_id).positions
                    if q.instrument == inst.id and q.margin_mode is MarginMode.ISOLATED]:
            state, r = _liquidate_isolated(state, t, acct_id, pos, R)
            recs += r
    return state, tuple(recs)


# ---------------------------------------------------------------- step 4: cross accounts (LIQ-008, LIQ-009, TRN-003, TRN-004)

def _cross_group(state: SimState, acct: Account, code: str) -> list[Position]:
    insts = state.profile.instruments
    return sorted((q for q in acct.positions if q.margin_mode is MarginMode.CROSS
                   and insts[q.instrument].settle_currency.code == code), key=lambda q: (q.instrument, q.side.value))


def _liquidate_cross(state: SimState, t: int, acct_id: str, code: str, R: Rules) -> tuple[SimState, list[Record]]:
    p = state.profile
    recs: list[Record] = []
    rounds = R.T.max_cross_rounds(tuple(p.instruments.values()))
    for k in range(rounds):
        acct = state.account(acct_id)
        group = _cross_group(state, acct, code)  # empty once a round closed every position: LIQ-008 says NONE
        ips = tuple((p.instruments[q.instrument], q.terms()) for q in group)
        marks = tuple(state.mark(q.instrument) for q in group)
        balance = acct.balance(code)
        decision = R.L.decide_cross_action(ips, p.margin, p.liquidation, balance, marks)
        if decision == R.L.NONE:
            return state, recs
        shares = R.L.compute_cross_shares(ips, balance, marks)
        planned = []
        for q, (inst, terms), m, share in zip(group, ips, marks, shares):
            if R.T.is_cross_partial_candidate(inst, p.margin, p.liquidation, terms, m):
                planned.append((q, inst, terms, m, R.L.compute_partial_step(
                    inst, p.margin, p.liquidation, PositionTerms(terms.sign, terms.size, terms.entry, share), m)))
        steps, active = tuple(x[4] for x in planned), tuple(True for _ in planned)
        funded = R.L.is_cross_partial_funded(balance, steps, active)
        action = R.T.decide_cross_round(decision, funded, k == rounds - 1)
        recs.append(Record("liquidation trigger", t, ("LIQ-008", "LIQ-004"), acct_id, ",".join(q.instrument for q in group),
                           "", (("margin_mode", "cross"), ("currency", code), ("balance", balance),
                                ("equity", R.L.compute_cross_equity(ips, balance, marks)),
                                ("requirement", R.L.compute_cross_requirement(ips, p.margin, marks)),
                                ("action", R.L.ACTION_NAMES[decision]))))
        if action != decision:
            recs.append(Record("cross partial refused", t, ("LIQ-008", "TRN-004"), acct_id, "", "",
                               (("currency", code), ("balance", balance),
                                ("balance_after", R.L.compute_cross_partial_balance(balance, steps, active)))))
        if action == R.L.FULL:
            takeovers = R.L.compute_cross_takeovers(ips, p.margin, balance, marks)
            acct = dataclasses.replace(acct, positions=tuple(q for q in acct.positions if q not in group))
            acct = dataclasses.replace(acct, balances=R.L.apply_cross_liquidation(acct.balances, code))
            state = _with_account(state, acct)
            for q, (inst, terms), tk in zip(group, ips, takeovers):
                recs.append(Record("full liquidation", t, ("LIQ-009", "LIQ-007", "INV-023"), acct_id, inst.id,
                                   fund_key_of(inst).id,
                                   (("margin_mode", "cross"), ("side", _side(terms.sign)), ("size", terms.size), ("takeover_price", tk.price),
                                    ("margin_share", tk.user_loss_units), ("engine_cash", tk.cash))))
                state, r = _hand_over_full(state, t, acct_id, inst, tk, terms.sign, terms.size, R)
                recs += r
            return state, recs
        # PARTIAL (TRN-003): one LIQ-005 step for every candidate, each with its LIQ-009 share
        for q, inst, terms, m, s in planned:
            recs.append(_partial_record(t, acct_id, inst, s, "cross"))
            acct = state.account(acct_id)
            acct = _set_balance(acct, code, R.T.compute_balance_after_step(acct.balance(code), s.realized_units, s.fee_units))
            new = dataclasses.replace(q, size=s.position.size) if s.position.size > 0 else None
            state = _with_account(state, _replace_position(acct, q, new))
            state, r = _hand_over_partial(state, t, acct_id, inst, terms.entry, s, m, terms.sign, R)
            recs += r
    return state, recs


def process_cross_accounts(state: SimState, t: int, inst: Instrument, account_ids: tuple[str, ...],
                           R: Rules, on_instrument: bool = True) -> tuple[SimState, tuple[Record, ...]]:
    """Step 4 (TRN-001): each named account with a cross position on ``inst`` (with
    ``on_instrument=False``: with any cross position in its currency): its cross positions in
    ``inst``'s settlement currency, in TRN-002 order."""
    code = inst.settle_currency.code
    recs: list[Record] = []
    for acct_id in account_ids:
        group = _cross_group(state, state.account(acct_id), code)
        if group and (not on_instrument or any(q.instrument == inst.id for q in group)):
            state, r = _liquidate_cross(state, t, acct_id, code, R)
            recs += r
    return state, tuple(recs)


# ---------------------------------------------------------------- step 5: open remainders and ADL (ADL-001 .. ADL-009, TRN-006)

def _history(state: SimState, fund: FundKey, R: Rules) -> tuple[Any, ...]:
    return FB.balance_history(state.funds, fund, state.profile.adl.balance_view, R=R)


def _deleverage(state: SimState, t: int, inst: Instrument, rem: Remainder, mark: Any, uncovered: Any,
                trigger_b: Any, R: Rules) -> tuple[SimState, list[Record]]:
    """ADL-004 .. ADL-009: deleverage ``rem`` against the ranked opposite positions at ``mark``."""
    p, fund = state.profile, fund_key_of(inst)
    recs = [Record("adl trigger", t, ("ADL-001", "ADL-002", "ADL-003"), rem.account, inst.id, fund.id,
                   (("remainder_id", rem.id), ("remainder", rem.size), ("uncovered", uncovered),
                    ("drawdown", trigger_b), ("available", _available(state, fund, R))))]
    cands = tuple(R.A.RankEntry(a.id, q.instrument, q.terms()) for a in state.accounts for q in a.positions
                  if q.instrument == inst.id)
    out = R.A.execute_adl(inst, p.margin, p.adl, liquidated_account=rem.account, liquidated_sign=rem.sign,
                          remainder=rem.size, bankruptcy_price=rem.price, mark=mark,
                          fund_available=_available(state, fund, R), candidates=cands, time_ms=t, fund=fund.id)
    code = inst.settle_currency.code
    for res in out.results:
        if res.reduction == 0:
            continue
        acct = state.account(res.account)
        (q,) = [x for x in acct.positions if x.instrument == res.instrument and x.sign == res.new_position.sign]
        acct = _set_balance(acct, code, R.T.compute_balance_after_adl(acct.balance(code), res.realized_units, res.released_units))
        new = dataclasses.replace(q, size=res.new_position.size, margin=res.new_position.margin) \
            if res.new_position.size > 0 else None
        state = _with_account(state, _replace_position(acct, q, new))
    recs += list(out.records)
    for rr in out.records:  # seed 003: deleveraged users are notified
        recs.append(Record("notification", t, ("ADL-008",), rr.account, inst.id, fund.id,
                           (("message", f"Auto-Deleveraging: {rr.instrument} position reduced by "
                                        f"{format_exact(rr.get('reduced_size'))} contracts"),)))
    if out.fund_result_units != 0:
        state, r, _ = _fund_result(state, fund, out.fund_result_units, t, rem.account, inst.id, R, adl_result=True)
        recs += r
    state = _add_dust(state, code, R.T.compute_adl_dust(inst, rem.sign, out.mark_quantity, rem.price, mark,
                                                        out.fund_result_units, out.results), R)
    left = R.T.compute_size_left(rem.size, out.reduced)
    if left > 0:  # not enough opposite positions: the rest stays open
        state = dataclasses.replace(state, remainders=state.remainders + (dataclasses.replace(rem, size=left),))
    return state, recs


def _work_remainder(state: SimState, t: int, inst: Instrument, rem: Remainder, trigger_b: Any,
                    R: Rules) -> tuple[SimState, list[Record], Any]:
    """One open remainder: retried against the book while the market is open and trigger (b) does
    not hold (TRN-005); what is still open is deleveraged when ADL fires (ADL-003).  Returns the
    state, the records, and whether the fund could not cover it (trigger (a), ADL-002)."""
    p, fund = state.profile, fund_key_of(inst)
    recs: list[Record] = []
    state = dataclasses.replace(state, remainders=tuple(r for r in state.remainders if r.id != rem.id))
    if R.T.is_retry_allowed(state.is_adl_active(fund), trigger_b):
        state, recs, left = _engine_walk(state, t, inst, rem.account, rem.sign, rem.size, rem.price, "retry", R)
        if left == 0:
            return state, recs, False
        rem = dataclasses.replace(rem, size=left)
    mark = state.mark(inst.id)
    uncovered = R.A.compute_remainder_uncovered(inst, rem.sign, rem.size, rem.price, mark, _available(state, fund, R))
    insufficient = R.A.is_fund_insufficient(uncovered, 0)
    if not R.A.adl_fires(p.adl, _history(state, fund, R), t, uncovered, 0, rem.size):
        return dataclasses.replace(state, remainders=state.remainders + (rem,)), recs, insufficient
    state, r = _deleverage(state, t, inst, rem, mark, uncovered, trigger_b, R)
    return state, recs + r, insufficient


def process_remainders(state: SimState, t: int, inst: Instrument, R: Rules) -> tuple[SimState, tuple[Record, ...]]:
    """Step 5 (TRN-001): the open remainders of ``inst`` in the order they were opened (TRN-002),
    then the fund's ADL state at this check (TRN-006).  An instrument without a mark has no
    remainder (they are opened at a mark), so a book event before any mark only stores the book."""
    fund = fund_key_of(inst)
    recs: list[Record] = []
    trigger_b = R.A.is_drawdown_trigger(state.profile.adl, _history(state, fund, R), t)
    insufficient: list[Any] = []
    for rem in [r for r in state.remainders if r.instrument == inst.id]:
        state, r, a = _work_remainder(state, t, inst, rem, trigger_b, R)
        recs += r
        insufficient.append(a)
    was = state.is_adl_active(fund)
    open_sizes = tuple(r.size for r in state.remainders if fund_key_of(state.profile.instruments[r.instrument]) == fund)
    active = R.T.compute_adl_state(was, tuple(insufficient), trigger_b, open_sizes)
    if active != was:
        recs.append(Record("adl state", t, ("ADL-003", "TRN-006"), "", inst.id, fund.id, (("active", active),)))
        state = dataclasses.replace(state, adl_active=tuple(sorted({**dict(state.adl_active), fund.id: active}.items())))
    return state, tuple(recs)


# ---------------------------------------------------------------- step 6: the re-check (TRN-008)

def process_recheck(state: SimState, t: int, inst: Instrument, adl_records: Iterable[Record],
                    R: Rules) -> tuple[SimState, tuple[Record, ...]]:
    """TRN-008: step 6 of a mark event. ADL fills changed the counterparties' accounts, so those accounts are
    checked once more (LIQ-004: after every fill that changes the account) -- steps 3 and 4 for
    them, in TRN-002 order, the cross group in the instrument's currency even when ADL closed its
    position on the instrument -- and, if a remainder of ``inst`` is open, step 5 once more.  One
    round: a re-check's own ADL fills are checked at the next event."""
    touched = tuple(sorted({x.account for x in adl_records if x.kind == "adl"}, key=R.T.account_order_key))
    if not touched:
        return state, ()
    state, recs = process_isolated_positions(state, t, inst, touched, R)
    # a counterparty's cross group is checked even when ADL closed its position on ``inst``: the
    # fill changed the balance the rest of the group shares (LIQ-008)
    state, r = process_cross_accounts(state, t, inst, touched, R, on_instrument=False)
    recs += r
    if any(x.instrument == inst.id for x in state.remainders):
        state, r = process_remainders(state, t, inst, R)
        recs += r
    return state, tuple(dataclasses.replace(x, rules=x.rules + ("TRN-008",)) for x in recs)


# ---------------------------------------------------------------- checks and output

def check_invariants(before: SimState, after: SimState, records: Iterable[Record], R: Rules = RULES) -> list[str]:
    """The invariants of spec/90, 30 and 40 on one transition, on concrete values ([] = all hold).

    Always the complete check's verdict (:func:`check_invariants_full`), at the cost of the
    incremental one (:func:`check_invariants_incremental`) when ``before`` is a state this
    function has already found clean with the same ``R`` -- as in a run, where each event's
    ``before`` is the previous event's ``after``.  That knowledge is a cache on the frozen state
    object (C64), never copied to a state derived from it; a state not known clean gets the full check."""
    records = tuple(records)
    known = before.__dict__.get("_clean_for")
    bad = (check_invariants_incremental if known is R else check_invariants_full)(before, after, records, R)
    if not bad:
        object.__setattr__(after, "_clean_for", R)
    return bad


def check_invariants_full(before: SimState, after: SimState, records: Iterable[Record], R: Rules = RULES) -> list[str]:
    """:func:`check_invariants` from nothing: every fund, the whole journal refolded, every
    position of every account; then the checks of the event's records."""
    bad: list[str] = []
    p = after.profile
    for key in after.funds.funds:
        s, a = FB.settled_balance(after.funds, key, R=R), FB.available_balance(after.funds, key, BalanceView.SETTLED_PLUS_PENDING, R=R)
        if s < 0 or a < 0:
            bad.append(f"INV-009: fund {key.id} negative (settled {s}, available {a})")
    if R.J.recompute(after.funds.ledger.entries) != after.funds.ledger.balances:
        bad.append("INV-010: the fund ledger's balances differ from a recomputation of its journal")
    for acct in after.accounts:
        for q in acct.positions:
            inst = p.instruments[q.instrument]
            if q.size <= 0 or q.margin < 0:
                bad.append(f"INV-021: account {acct.id} position {q.instrument} size {q.size} margin {q.margin}")
            if q.margin_mode is MarginMode.ISOLATED and q.instrument in dict(after.marks):
                act = R.L.decide_action(inst, p.margin, p.liquidation, q.terms(), after.mark(q.instrument))
                if act == R.L.PARTIAL:
                    bad.append(f"LIQ-006: account {acct.id} {q.instrument} left in a PARTIAL state")
    prev = {(a.id, q.instrument, q.side): q.size for a in before.accounts for q in a.positions}
    for r in records:
        if r.kind == "adl":
            key = (r.account, r.instrument)  # type: ignore[assignment]  # a local named key reused for an (account, instrument) pair; not renamed, the planted-bug tables key on statement text
            sizes = [v for (a, i, _), v in prev.items() if (a, i) == key]  # type: ignore[comparison-overlap]  # see the line above: key is the (account, instrument) pair here
            if not sizes or r.get("reduced_size") > max(sizes):
                bad.append(f"INV-016: ADL reduced {r.account} {r.instrument} by {r.get('reduced_size')} beyond its size")
        if r.kind == "liquidation deficit" and r.get("uncovered", 0) > 0:
            bad.append(f"INV-013: an engine deficit of fund {r.fund} was not covered ({r.get('uncovered')})")
    deleveraging = None  # the liquidated account of the ADL in progress (its "adl trigger" comes first)
    for r in records:
        if r.kind == "adl trigger":
            deleveraging = r.account
        elif r.kind == "adl" and r.account == deleveraging:
            bad.append(f"INV-016: ADL reduced the liquidated account {r.account}")
    return bad


def check_invariants_incremental(before: SimState, after: SimState, records: Iterable[Record],
                                 R: Rules = RULES) -> list[str]:
    """:func:`check_invariants_full` for a ``before`` state that already satisfies the state
    invariants (the previous transition was checked and found clean): the same messages in the
    same order, at a cost that does not grow with the run (C64).

    What ``before`` already satisfied is not checked again: INV-021 and LIQ-006 only on the
    positions of the accounts the event replaced and on the isolated positions whose mark moved
    (an untouched position at an unchanged mark has the decision it had, by the same rule call);
    INV-010 folds the event's new journal entries into ``before``'s balances (JRN-002's
    :func:`~backstop.reference.journal.apply_entry`) instead of refolding the whole journal, when
    the journal only grew (otherwise it refolds, as the full check).  INV-009 (every fund, a
    handful) and the checks of the event's records are the full check's.  A run checked in full
    once and incrementally after is checked completely; ``tests/unit/test_scale.py`` runs both
    on every event of a stress scenario and of the soak's worlds and sees the same lists."""
    records = tuple(records)
    bad: list[str] = []
    p = after.profile
    for key in after.funds.funds:
        s, a = FB.settled_balance(after.funds, key, R=R), FB.available_balance(after.funds, key, BalanceView.SETTLED_PLUS_PENDING, R=R)
        if s < 0 or a < 0:
            bad.append(f"INV-009: fund {key.id} negative (settled {s}, available {a})")
    old_l, new_l = before.funds.ledger, after.funds.ledger
    n = len(old_l.entries)
    if new_l.entries[:n] == old_l.entries:
        folded = old_l.balances
        for e in new_l.entries[n:]:
            folded = R.J.apply_entry(folded, e)
    else:
        folded = R.J.recompute(new_l.entries)
    if folded != new_l.balances:
        bad.append("INV-010: the fund ledger's balances differ from a recomputation of its journal")
    old_marks, new_marks = before._table("marks"), after._table("marks")
    moved = {i for i, m in new_marks.items() if i not in old_marks or old_marks[i] != m}
    same_ids = len(before.accounts) == len(after.accounts)
    for k, acct in enumerate(after.accounts):
        untouched = same_ids and before.accounts[k] is acct
        for q in acct.positions:
            if untouched and q.instrument not in moved:
                continue
            inst = p.instruments[q.instrument]
            if not untouched and (q.size <= 0 or q.margin < 0):
                bad.append(f"INV-021: account {acct.id} position {q.instrument} size {q.size} margin {q.margin}")
            if q.margin_mode is MarginMode.ISOLATED and q.instrument in new_marks:
                act = R.L.decide_action(inst, p.margin, p.liquidation, q.terms(), after.mark(q.instrument))
                if act == R.L.PARTIAL:
                    bad.append(f"LIQ-006: account {acct.id} {q.instrument} left in a PARTIAL state")
    prev: dict[tuple[str, str, Any], Any] | None = None
    for r in records:
        if r.kind == "adl":
            if prev is None:
                prev = {(a.id, q.instrument, q.side): q.size for a in before.accounts for q in a.positions}
            key = (r.account, r.instrument)  # type: ignore[assignment]  # a local named key reused for an (account, instrument) pair; not renamed, the planted-bug tables key on statement text
            sizes = [v for (a, i, _), v in prev.items() if (a, i) == key]  # type: ignore[comparison-overlap]  # see the line above
            if not sizes or r.get("reduced_size") > max(sizes):
                bad.append(f"INV-016: ADL reduced {r.account} {r.instrument} by {r.get('reduced_size')} beyond its size")
        if r.kind == "liquidation deficit" and r.get("uncovered", 0) > 0:
            bad.append(f"INV-013: an engine deficit of fund {r.fund} was not covered ({r.get('uncovered')})")
    deleveraging = None
    for r in records:
        if r.kind == "adl trigger":
            deleveraging = r.account
        elif r.kind == "adl" and r.account == deleveraging:
            bad.append(f"INV-016: ADL reduced the liquidated account {r.account}")
    return bad


def _j(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, Fraction)):
        return format_exact(Fraction(v))
    return str(v)


def state_json(state: SimState) -> dict[str, Any]:
    """The state as exact JSON (numbers as decimal or p/q strings), in a fixed key order."""
    funds = {}
    for key in sorted(state.funds.funds, key=lambda k: k.id):
        funds[key.id] = {"settled": _j(FB.settled_balance(state.funds, key)),
                         "pending": _j(FB.pending_balance(state.funds, key)),
                         "adl_active": state.is_adl_active(key)}
    return {
        "profile": state.profile.name,
        "time_ms": state.time_ms,
        "marks": {k: _j(v) for k, v in state.marks},
        "accounts": [{"id": a.id, "balances": {c: _j(v) for c, v in a.balances},
                      "positions": [{"instrument": q.instrument, "side": q.side.value, "size": _j(q.size),
                                     "entry_price": _j(q.entry_price), "margin_mode": q.margin_mode.value,
                                     "margin": _j(q.margin)} for q in a.positions]} for a in state.accounts],
        "funds": funds,
        "remainders": [{"id": r.id, "account": r.account, "instrument": r.instrument, "side": "long" if r.sign > 0 else "short",
                        "size": _j(r.size), "takeover_price": _j(r.price)} for r in state.remainders],
        "venue_dust": {c: _j(v) for c, v in state.dust},
    }
