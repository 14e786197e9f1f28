"""The one transition of the whole process: ``process_event(state, event) -> (state, records)``.

Plumbing, not rules: this module validates concrete events, loops over accounts, positions and
open remainders in a fixed order (account id, instrument id, remainder id), and builds the next
frozen :class:`SimState`.  Every number and every decision comes from a rule function --
:mod:`~backstop.reference.margin`, :mod:`~backstop.reference.liquidation`,
:mod:`~backstop.reference.engine`, :mod:`~backstop.reference.fund` (through
:mod:`~backstop.reference.fundbook`) and :mod:`~backstop.reference.adl` -- which the Z3
obligations prove.  The flow of one mark-price event (spec/20, 30, 40):

1. settle every fund window that has closed (INS-002, INS-008);
2. for each account: each isolated position on the instrument, then the account's cross
   positions in its settlement currency: the liquidation decision and loop (LIQ-004..LIQ-009);
   partial reductions at the mark, full liquidations at the bankruptcy price;
3. each takeover goes to the engine, which walks the book within what the fund can pay
   (ENG-006) unless the fund is in the ADL state; results go to the fund's pending ledger;
4. open bankrupt remainders of the instrument: retried against the book; when an ADL trigger
   holds (ADL-001..ADL-003) they are deleveraged against ranked opposite positions at the mark
   (ADL-004..ADL-009).

A refused event raises :class:`~backstop.reference.errors.InvalidInput` before anything is built,
so it changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Mapping

from backstop.reference import adl as A
from backstop.reference import engine as E
from backstop.reference import fundbook as FB
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference.errors import InvalidInput, UnknownInstrument
from backstop.reference.events import FundKey, Record, fund_key_of
from backstop.reference.profile import BalanceView, Profile
from backstop.reference.types import (Account, Instrument, MarginMode, Position, PositionTerms, Side, exact,
                                      format_exact)

__all__ = ["Book", "Remainder", "SimState", "MarkEvent", "BookEvent", "TopUpEvent", "WithdrawEvent", "SettleEvent",
           "initial_state", "process_event", "check_invariants", "state_json"]


# ---------------------------------------------------------------- state

@dataclass(frozen=True, slots=True)
class Book:
    """The order book of one instrument: bids (best = highest first) and asks (lowest first)."""

    bids: tuple[E.Level, ...] = ()
    asks: tuple[E.Level, ...] = ()


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

    def mark(self, inst: str) -> Fraction:
        return dict(self.marks)[inst]

    def book(self, inst: str) -> Book:
        return dict(self.books).get(inst, Book())

    def account(self, acct: str) -> Account:
        return {a.id: a for a in self.accounts}[acct]

    def is_adl_active(self, fund: FundKey) -> bool:
        return dict(self.adl_active).get(fund.id, False)


@dataclass(frozen=True, slots=True)
class MarkEvent:
    time_ms: int
    instrument: str
    price: Fraction


@dataclass(frozen=True, slots=True)
class BookEvent:
    time_ms: int
    instrument: str
    bids: tuple[E.Level, ...]
    asks: tuple[E.Level, ...]


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


# ---------------------------------------------------------------- validation

def _instrument(profile: Profile, inst_id: Any, field_: str) -> Instrument:
    if not isinstance(inst_id, str) or inst_id not in profile.instruments:
        raise UnknownInstrument(field_, inst_id, f"not an instrument of profile {profile.name!r}", "MRG-001")
    return profile.instruments[inst_id]


def _time(state_time: int, t: Any) -> int:
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise InvalidInput("time_ms", t, "an int >= 0 (ms since the epoch, UTC)", "INS-009")
    if t < state_time:
        raise InvalidInput("time_ms", t, f"events must not go back in time (last event at {state_time})", "INS-009")
    return t


def _levels(inst: Instrument, levels: Iterable[Any], field_: str, descending: bool) -> tuple[E.Level, ...]:
    out: list[E.Level] = []
    for i, lv in enumerate(levels):
        price, size = (lv.price, lv.size) if isinstance(lv, E.Level) else lv
        p = exact(f"{field_}[{i}].price", price, "ENG-001", positive=True)
        q = exact(f"{field_}[{i}].size", size, "ENG-001")
        if q < 0:
            raise InvalidInput(f"{field_}[{i}].size", size, "must be >= 0", "ENG-001")
        if (p / inst.tick_size).denominator != 1:
            raise InvalidInput(f"{field_}[{i}].price", price, f"not on the tick grid of {inst.id} ({inst.tick_size})", "ENG-001")
        if out and ((p >= out[-1].price) if descending else (p <= out[-1].price)):
            raise InvalidInput(f"{field_}[{i}].price", price,
                               "levels must be best first (bids strictly descending, asks strictly ascending)", "ENG-001")
        out.append(E.Level(p, q))
    return tuple(out)


def _book(inst: Instrument, bids: Iterable[Any], asks: Iterable[Any], field_: str) -> Book:
    return Book(_levels(inst, bids, f"{field_}.bids", True), _levels(inst, asks, f"{field_}.asks", False))


def _check_account(profile: Profile, a: Account) -> None:
    for i, p in enumerate(a.positions):
        inst = _instrument(profile, p.instrument, f"account.{a.id}.positions[{i}].instrument")
        if (p.size / inst.lot_size).denominator != 1:
            raise InvalidInput(f"account.{a.id}.positions[{i}].size", p.size,
                               f"not on the lot grid of {inst.id} ({inst.lot_size})", "LIQ-005")
        if p.margin_mode is MarginMode.CROSS and p.margin != 0:
            raise InvalidInput(f"account.{a.id}.positions[{i}].margin", p.margin,
                               "a cross position has no margin of its own (it uses the balance)", "LIQ-008")
    for code, amount in a.balances:
        if code not in profile.currencies:
            raise InvalidInput(f"account.{a.id}.balances.{code}", code, "a currency of the profile", "MRG-003")
        if amount < 0:
            raise InvalidInput(f"account.{a.id}.balances.{code}", amount, "an initial balance must be >= 0", "MRG-003")


def initial_state(profile: Profile, accounts: Iterable[Account], marks: Mapping[str, Any],
                  books: Mapping[str, Book] | None = None, fund_balances: Mapping[str, int] | None = None,
                  start_ms: int = 0) -> SimState:
    """A state at ``start_ms``: accounts, a mark for every instrument that has a position, books, and
    the funds (empty, then topped up by ``fund_balances`` as recorded platform top-ups)."""
    accts = tuple(sorted(accounts, key=lambda a: a.id))
    if len({a.id for a in accts}) != len(accts):
        raise InvalidInput("accounts", [a.id for a in accts], "account ids must be unique", "LIQ-008")
    for a in accts:
        _check_account(profile, a)
    mk = {}
    for k, v in sorted(marks.items()):
        _instrument(profile, k, f"marks.{k}")
        mk[k] = exact(f"marks.{k}", v, "MRG-002", positive=True)
    for a in accts:
        for i, p in enumerate(a.positions):
            if p.instrument not in mk:
                raise InvalidInput(f"marks.{p.instrument}", None, f"a mark price is needed for account {a.id}'s position", "MRG-002")
    bk = []
    for k, b in sorted((books or {}).items()):
        inst = _instrument(profile, k, f"books.{k}")
        bk.append((k, _book(inst, b.bids, b.asks, f"books.{k}")))
    funds = FB.new_state(profile, start_ms=start_ms)
    for fid, amount in sorted((fund_balances or {}).items()):
        if amount:
            funds, _ = FB.top_up(funds, fid, amount, start_ms)
    return SimState(profile, start_ms, accts, tuple(mk.items()), tuple(bk), funds)


# ---------------------------------------------------------------- helpers

def _with_account(state: SimState, acct: Account) -> SimState:
    return dataclasses.replace(state, accounts=tuple(acct if a.id == acct.id else a for a in state.accounts))


def _set_balance(acct: Account, code: str, amount: int) -> Account:
    bal = dict(acct.balances)
    bal[code] = amount
    return dataclasses.replace(acct, balances=tuple(sorted(bal.items())))


def _replace_position(acct: Account, old: Position, new: Position | None) -> Account:
    ps = [p for p in acct.positions if p is not old] if new is None else [new if p is old else p for p in acct.positions]
    return dataclasses.replace(acct, positions=tuple(ps))


def _add_dust(state: SimState, code: str, amount: Any) -> SimState:
    if amount == 0:
        return state
    d = dict(state.dust)
    d[code] = d.get(code, Fraction(0)) + amount  # amount: int or Fraction, kept as it is
    return dataclasses.replace(state, dust=tuple(sorted(d.items())))


def _available(state: SimState, fund: FundKey) -> int:
    return FB.available_balance(state.funds, fund, BalanceView.SETTLED_PLUS_PENDING)


def _fund_result(state: SimState, fund: FundKey, amount: int, t: int, account: str, inst: str,
                 adl_result: bool = False) -> tuple[SimState, list[Record], int]:
    fn = FB.apply_adl_result if adl_result else FB.apply_liquidation_result
    funds, recs, uncovered = fn(state.funds, fund, amount, t, account=account, instrument=inst)
    return dataclasses.replace(state, funds=funds), list(recs), uncovered


def _consume(levels: tuple[E.Level, ...], fills: tuple[E.Fill, ...]) -> tuple[E.Level, ...]:
    left = [E.Level(lv.price, lv.size - f.size) for lv, f in zip(levels, fills)] + list(levels[len(fills):])
    return tuple(lv for lv in left if lv.size > 0)


# ---------------------------------------------------------------- the engine

def _engine_close(state: SimState, t: int, inst: Instrument, account: str, sign: int, size: Fraction,
                  price: Fraction, why: str) -> tuple[SimState, list[Record]]:
    """Hand ``size`` contracts (entered at ``price``) to the engine; what it cannot place stays open
    as a new bankrupt remainder."""
    state, recs, remainder = _engine_walk(state, t, inst, account, sign, size, price, why)
    if remainder > 0:
        fund = fund_key_of(inst)
        rem = Remainder(state.next_id, account, inst.id, sign, remainder, price, t)
        state = dataclasses.replace(state, remainders=state.remainders + (rem,), next_id=state.next_id + 1)
        recs.append(Record("bankrupt remainder", t, ("ENG-001", "ENG-006"), account, inst.id, fund.id,
                           (("remainder_id", rem.id), ("side", "long" if sign > 0 else "short"), ("size", remainder),
                            ("takeover_price", price), ("in_adl_state", state.is_adl_active(fund)))))
    return state, recs


def _engine_walk(state: SimState, t: int, inst: Instrument, account: str, sign: int, size: Fraction,
                 price: Fraction, why: str) -> tuple[SimState, list[Record], Fraction]:
    """Walk the book within the fund's available balance (ENG-006) unless the fund is in the ADL
    state; book the result and the fee; return what was not placed."""
    fund = fund_key_of(inst)
    recs: list[Record] = []
    fills: tuple[E.Fill, ...] = ()
    remainder = size
    if not state.is_adl_active(fund):
        book = state.book(inst.id)
        levels = book.bids if sign > 0 else book.asks  # a long is closed by selling into the bids
        c = E.close_position_within(inst, state.profile.liquidation, sign, size, price, levels,
                                    _available(state, fund))
        fills, remainder = c.fills, c.remainder
        new_levels = _consume(levels, fills)
        nb = Book(new_levels, book.asks) if sign > 0 else Book(book.bids, new_levels)
        state = dataclasses.replace(state, books=tuple(sorted({**dict(state.books), inst.id: nb}.items())))
        for f in fills:
            if f.size > 0:
                recs.append(Record("engine fill", t, ("ENG-001", "ENG-006"), account, inst.id, fund.id,
                                   (("side", "sell" if sign > 0 else "buy"), ("size", f.size), ("price", f.price),
                                    ("takeover_price", price))))
        filled = size - remainder
        if filled > 0:
            recs.append(Record("engine close", t, ("ENG-002", "ENG-003", "ENG-004", "ENG-005"), account, inst.id, fund.id,
                               (("why", why), ("filled", filled), ("takeover_price", price), ("pnl", c.pnl),
                                ("result", c.result_units), ("fee", c.fee_units), ("to_fund", c.fund_units),
                                ("venue", c.venue_units), ("dust", c.dust))))
            state = _add_dust(state, inst.settle_currency.code, c.dust)
            state, r, uncovered = _fund_result(state, fund, c.result_units - c.fee_units, t, account, inst.id)
            recs += r
            if c.fee_units > 0:
                funds, r2 = FB.apply_fee(state.funds, fund, c.fee_units, t, instrument=inst.id)
                state = dataclasses.replace(state, funds=funds)
                recs += list(r2)
            if uncovered > 0:  # cannot happen within the ENG-006 budget; recorded if it ever does
                recs.append(Record("uncovered deficit", t, ("INS-004", "ADL-002"), account, inst.id, fund.id,
                                   (("uncovered", uncovered),)))
    return state, recs, remainder


# ---------------------------------------------------------------- liquidation

def _side(sign: int) -> str:
    return "long" if sign > 0 else "short"


def _trigger_record(t: int, acct: str, inst: Instrument, pos: PositionTerms, mark: Fraction, action: Any,
                    mode: str) -> Record:
    return Record("liquidation trigger", t, ("LIQ-001", "LIQ-004"), acct, inst.id, fund_key_of(inst).id,
                  (("margin_mode", mode), ("side", _side(pos.sign)), ("mark", mark), ("size", pos.size),
                   ("margin", pos.margin),
                   ("action", L.ACTION_NAMES[action])))


def _partial_record(t: int, acct: str, inst: Instrument, s: L.PartialStep, mode: str) -> Record:
    return Record("partial liquidation", t, ("LIQ-005", "LIQ-006"), acct, inst.id, fund_key_of(inst).id,
                  (("margin_mode", mode), ("side", _side(s.position.sign)), ("tier_before", s.tier_before), ("tier_after", s.tier_after),
                   ("reduced", s.reduced), ("price", s.price), ("realized_pnl", s.realized_units),
                   ("close_fee", s.fee_units), ("new_size", s.position.size), ("new_margin", s.position.margin)))


def _pay_close_fee(state: SimState, t: int, acct: str, inst: Instrument, fee: int) -> tuple[SimState, list[Record]]:
    if fee <= 0:
        return state, []
    funds, recs = FB.apply_fee(state.funds, fund_key_of(inst), fee, t, account=acct, instrument=inst.id)
    return dataclasses.replace(state, funds=funds), list(recs)


def _hand_over_partial(state: SimState, t: int, acct_id: str, inst: Instrument, entry: Fraction,
                       s: L.PartialStep, mark: Fraction, sign: int) -> tuple[SimState, list[Record]]:
    """A partial step's reduced part (LIQ-005): the fee to its receiver, the rounding dust of the
    realized PnL to the venue, the part to the engine at the mark."""
    state, recs = _pay_close_fee(state, t, acct_id, inst, s.fee_units)
    dust = M.compute_unrealized_pnl(inst, PositionTerms(sign, s.reduced, entry, 0), mark) - s.realized_units
    state = _add_dust(state, inst.settle_currency.code, dust)
    state, r = _engine_close(state, t, inst, acct_id, sign, s.reduced, mark, "partial")
    return state, recs + r


def _hand_over_full(state: SimState, t: int, acct_id: str, inst: Instrument, tk: L.Takeover, sign: int,
                    size: Fraction) -> tuple[SimState, list[Record]]:
    """A full liquidation's takeover (LIQ-007): the engine's cash (when the position had no
    bankruptcy price) to the fund, its rounding dust to the venue, the position to the engine at
    the takeover price."""
    recs: list[Record] = []
    if tk.cash != 0:
        cash = tk.cash_units
        state = _add_dust(state, inst.settle_currency.code, tk.cash - cash)
        state, recs, _ = _fund_result(state, fund_key_of(inst), cash, t, acct_id, inst.id)
    state, r = _engine_close(state, t, inst, acct_id, sign, size, tk.price, "full")
    return state, recs + r


def _liquidate_isolated(state: SimState, t: int, acct_id: str, pos: Position) -> tuple[SimState, list[Record]]:
    p = state.profile
    inst = p.instruments[pos.instrument]
    mark = state.mark(inst.id)
    terms = pos.terms()
    if L.decide_action(inst, p.margin, p.liquidation, terms, mark) == L.NONE:
        return state, []
    out = L.run_liquidation(inst, p.margin, p.liquidation, terms, mark)
    recs = [_trigger_record(t, acct_id, inst, terms, mark, L.decide_action(inst, p.margin, p.liquidation, terms, mark),
                            "isolated")]
    for active, s in out.steps:
        if not active:
            continue
        recs.append(_partial_record(t, acct_id, inst, s, "isolated"))
        state, r = _hand_over_partial(state, t, acct_id, inst, terms.entry, s, mark, terms.sign)
        recs += r
    acct = state.account(acct_id)
    if out.action == L.FULL:
        rest = out.position
        tk = L.compute_full_takeover(inst, p.margin, rest, mark)
        recs.append(Record("full liquidation", t, ("LIQ-007", "INV-021"), acct_id, inst.id, fund_key_of(inst).id,
                           (("margin_mode", "isolated"), ("side", _side(rest.sign)), ("size", rest.size), ("takeover_price", tk.price),
                            ("bankruptcy_price_exists", tk.defined), ("user_loss", tk.user_loss_units),
                            ("engine_cash", tk.cash))))
        state = _with_account(state, _replace_position(acct, pos, None))
        state, r = _hand_over_full(state, t, acct_id, inst, tk, rest.sign, rest.size)
        return state, recs + r
    new = dataclasses.replace(pos, size=out.position.size, margin=out.position.margin)
    return _with_account(state, _replace_position(acct, pos, new)), recs


def _cross_group(state: SimState, acct: Account, code: str) -> list[Position]:
    insts = state.profile.instruments
    return sorted((q for q in acct.positions if q.margin_mode is MarginMode.CROSS
                   and insts[q.instrument].settle_currency.code == code), key=lambda q: (q.instrument, q.side.value))


def _liquidate_cross(state: SimState, t: int, acct_id: str, code: str) -> tuple[SimState, list[Record]]:
    p = state.profile
    recs: list[Record] = []
    for _ in range(max(L.max_partial_steps(i) for i in p.instruments.values()) + 1):
        acct = state.account(acct_id)
        group = _cross_group(state, acct, code)
        if not group:
            return state, recs
        ips = tuple((p.instruments[q.instrument], q.terms()) for q in group)
        marks = tuple(state.mark(q.instrument) for q in group)
        balance = acct.balance(code)
        action = L.decide_cross_action(ips, p.margin, p.liquidation, balance, marks)
        if action == L.NONE:
            return state, recs
        recs.append(Record("liquidation trigger", t, ("LIQ-008", "LIQ-004"), acct_id, ",".join(q.instrument for q in group),
                           "", (("margin_mode", "cross"), ("currency", code), ("balance", balance),
                                ("equity", L.compute_cross_equity(ips, balance, marks)),
                                ("requirement", L.compute_cross_requirement(ips, p.margin, marks)),
                                ("action", L.ACTION_NAMES[action]))))
        shares = L.compute_cross_shares(ips, balance, marks)
        planned = []
        for q, (inst, terms), m, share in zip(group, ips, marks, shares):
            price = m if p.margin.mm_price_basis.value == "mark" else terms.entry
            if M.compute_tier_index(inst, terms.size, price) >= 3:
                planned.append((q, inst, terms, m, L.compute_partial_step(
                    inst, p.margin, p.liquidation, PositionTerms(terms.sign, terms.size, terms.entry, share), m)))
        if action == L.PARTIAL and not L.is_cross_partial_funded(balance, tuple(x[4] for x in planned),
                                                                 tuple(True for _ in planned)):
            action = L.FULL
            recs.append(Record("cross partial refused", t, ("LIQ-008",), acct_id, "", "",
                               (("currency", code), ("balance", balance),
                                ("balance_after", L.compute_cross_partial_balance(
                                    balance, tuple(x[4] for x in planned), tuple(True for _ in planned))))))
        if action == L.FULL:
            takeovers = L.compute_cross_takeovers(ips, p.margin, balance, marks)
            acct = _set_balance(dataclasses.replace(acct, positions=tuple(q for q in acct.positions if q not in group)),
                                code, 0)
            acct = dataclasses.replace(acct, balances=L.apply_cross_liquidation(acct.balances, code))
            state = _with_account(state, acct)
            for q, (inst, terms), tk in zip(group, ips, takeovers):
                recs.append(Record("full liquidation", t, ("LIQ-009", "LIQ-007", "INV-023"), acct_id, inst.id,
                                   fund_key_of(inst).id,
                                   (("margin_mode", "cross"), ("side", _side(terms.sign)), ("size", terms.size), ("takeover_price", tk.price),
                                    ("margin_share", tk.user_loss_units), ("engine_cash", tk.cash))))
                state, r = _hand_over_full(state, t, acct_id, inst, tk, terms.sign, terms.size)
                recs += r
            return state, recs
        # PARTIAL: one LIQ-005 step for every position at tier 3 or above, each with its LIQ-009 share
        for q, inst, terms, m, s in planned:
            recs.append(_partial_record(t, acct_id, inst, s, "cross"))
            acct = state.account(acct_id)
            acct = _set_balance(acct, code, acct.balance(code) + s.realized_units - s.fee_units)
            new = dataclasses.replace(q, size=s.position.size) if s.position.size > 0 else None
            state = _with_account(state, _replace_position(acct, q, new))
            state, r = _hand_over_partial(state, t, acct_id, inst, terms.entry, s, m, terms.sign)
            recs += r
    return state, recs


# ---------------------------------------------------------------- remainders and ADL

def _history(state: SimState, fund: FundKey) -> tuple[Any, ...]:
    return FB.balance_history(state.funds, fund, state.profile.adl.balance_view)


def _work_remainders(state: SimState, t: int, inst: Instrument) -> tuple[SimState, list[Record]]:
    p = state.profile
    fund = fund_key_of(inst)
    recs: list[Record] = []
    mark = state.mark(inst.id)
    trigger_b = A.is_drawdown_trigger(p.adl, _history(state, fund), t)
    for rem in [r for r in state.remainders if r.instrument == inst.id]:
        state = dataclasses.replace(state, remainders=tuple(r for r in state.remainders if r.id != rem.id))
        if not state.is_adl_active(fund) and not trigger_b:  # retry the market first
            state, r, left = _engine_walk(state, t, inst, rem.account, rem.sign, rem.size, rem.price, "retry")
            recs += r
            if left == 0:
                continue
            rem = dataclasses.replace(rem, size=left)
        uncovered = A.compute_remainder_uncovered(inst, rem.sign, rem.size, rem.price, mark, _available(state, fund))
        fires = A.adl_fires(p.adl, _history(state, fund), t, uncovered, 0, rem.size)
        if not fires:
            state = dataclasses.replace(state, remainders=state.remainders + (rem,))
            continue
        recs.append(Record("adl trigger", t, ("ADL-001", "ADL-002", "ADL-003"), rem.account, inst.id, fund.id,
                           (("remainder_id", rem.id), ("remainder", rem.size), ("uncovered", uncovered),
                            ("drawdown", trigger_b), ("available", _available(state, fund)))))
        cands = tuple(A.RankEntry(a.id, q.instrument, q.terms()) for a in state.accounts for q in a.positions
                      if q.instrument == inst.id)
        out = A.execute_adl(inst, p.margin, p.adl, liquidated_account=rem.account, liquidated_sign=rem.sign,
                            remainder=rem.size, bankruptcy_price=rem.price, mark=mark,
                            fund_available=_available(state, fund), candidates=cands, time_ms=t, fund=fund.id)
        for res in out.results:
            if res.reduction == 0:
                continue
            acct = state.account(res.account)
            (q,) = [x for x in acct.positions if x.instrument == res.instrument and x.sign == res.new_position.sign]
            code = inst.settle_currency.code
            acct = _set_balance(acct, code, acct.balance(code) + res.realized_units + res.released_units)
            new = dataclasses.replace(q, size=res.new_position.size, margin=res.new_position.margin) \
                if res.new_position.size > 0 else None
            state = _with_account(state, _replace_position(acct, q, new))
        recs += list(out.records)
        for rr in out.records:  # seed 003: deleveraged users are notified
            recs.append(Record("notification", t, ("ADL-008",), rr.account, inst.id, fund.id,
                               (("message", f"Auto-Deleveraging: {rr.instrument} position reduced by "
                                            f"{format_exact(rr.get('reduced_size'))} contracts"),)))
        if out.fund_result_units != 0:
            state, r, _ = _fund_result(state, fund, out.fund_result_units, t, rem.account, inst.id, adl_result=True)
            recs += r
        left = rem.size - out.reduced
        if left > 0:  # not enough opposite positions: the rest stays open
            state = dataclasses.replace(state, remainders=state.remainders + (dataclasses.replace(rem, size=left),))
    open_left = sum((r.size for r in state.remainders if fund_key_of(p.instruments[r.instrument]) == fund), Fraction(0))
    active = A.adl_state_continues(state.is_adl_active(fund), False, trigger_b, open_left)
    if active != state.is_adl_active(fund):
        recs.append(Record("adl state", t, ("ADL-003",), "", inst.id, fund.id, (("active", active),)))
        state = dataclasses.replace(state, adl_active=tuple(sorted({**dict(state.adl_active), fund.id: active}.items())))
    return state, recs


# ---------------------------------------------------------------- the transition

def process_event(state: SimState, event: Any) -> tuple[SimState, tuple[Record, ...]]:
    """Apply one event; return the new state and the records it emitted (in order)."""
    t = _time(state.time_ms, getattr(event, "time_ms", None))
    p = state.profile
    if isinstance(event, MarkEvent):
        inst = _instrument(p, event.instrument, "event.instrument")
        price = exact("event.price", event.price, "MRG-002", positive=True)
    elif isinstance(event, BookEvent):
        inst = _instrument(p, event.instrument, "event.instrument")
        book = _book(inst, event.bids, event.asks, "event")
    elif isinstance(event, (TopUpEvent, WithdrawEvent)):
        FB._fund(state.funds, event.fund)  # refuse an unknown fund before anything changes
    elif not isinstance(event, SettleEvent):
        raise InvalidInput("event", type(event).__name__, "mark, book, top_up, withdraw or settle", "INS-009")
    funds, recs0 = FB.settle(state.funds, t)
    state = dataclasses.replace(state, funds=funds, time_ms=t)
    recs: list[Record] = list(recs0)
    if isinstance(event, TopUpEvent):
        funds, r = FB.top_up(state.funds, event.fund, event.amount, t)
        return dataclasses.replace(state, funds=funds), tuple(recs + list(r))
    if isinstance(event, WithdrawEvent):
        funds, r = FB.withdraw(state.funds, event.fund, event.amount, t)
        return dataclasses.replace(state, funds=funds), tuple(recs + list(r))
    if isinstance(event, SettleEvent):
        return state, tuple(recs)
    if isinstance(event, BookEvent):
        state = dataclasses.replace(state, books=tuple(sorted({**dict(state.books), inst.id: book}.items())))
        state, r = _work_remainders(state, t, inst)
        return state, tuple(recs + r)
    # a mark price
    state = dataclasses.replace(state, marks=tuple(sorted({**dict(state.marks), inst.id: price}.items())))
    recs.append(Record("mark", t, ("MRG-002",), instrument=inst.id, fields=(("price", price),)))
    code = inst.settle_currency.code
    for acct_id in [a.id for a in state.accounts]:
        for pos in [q for q in state.account(acct_id).positions
                    if q.instrument == inst.id and q.margin_mode is MarginMode.ISOLATED]:
            state, r = _liquidate_isolated(state, t, acct_id, pos)
            recs += r
        if any(q.instrument == inst.id for q in _cross_group(state, state.account(acct_id), code)):
            state, r = _liquidate_cross(state, t, acct_id, code)
            recs += r
    state, r = _work_remainders(state, t, inst)
    recs += r
    # ADL fills changed the counterparties' accounts: check them once more (LIQ-004: after every fill
    # that changes the account); a liquidation this causes goes to the engine and, if need be, to ADL
    touched = sorted({x.account for x in r if x.kind == "adl"})
    for acct_id in touched:
        for pos in [q for q in state.account(acct_id).positions
                    if q.instrument == inst.id and q.margin_mode is MarginMode.ISOLATED]:
            state, r2 = _liquidate_isolated(state, t, acct_id, pos)
            recs += r2
        if any(q.instrument == inst.id for q in _cross_group(state, state.account(acct_id), code)):
            state, r2 = _liquidate_cross(state, t, acct_id, code)
            recs += r2
    if touched and any(x.instrument == inst.id for x in state.remainders):
        state, r2 = _work_remainders(state, t, inst)
        recs += r2
    return state, tuple(recs)


# ---------------------------------------------------------------- checks and output

def check_invariants(before: SimState, after: SimState, records: Iterable[Record]) -> list[str]:
    """The invariants of spec/90, 30 and 40 on one transition, on concrete values ([] = all hold)."""
    bad: list[str] = []
    p = after.profile
    for key in after.funds.funds:
        s, a = FB.settled_balance(after.funds, key), FB.available_balance(after.funds, key, BalanceView.SETTLED_PLUS_PENDING)
        if s < 0 or a < 0:
            bad.append(f"INV-009: fund {key.id} negative (settled {s}, available {a})")
    from backstop.reference import journal as J
    if J.recompute(after.funds.ledger.entries) != after.funds.ledger.balances:
        bad.append("INV-010: the fund ledger's balances differ from a recomputation of its journal")
    for acct in after.accounts:
        for q in acct.positions:
            inst = p.instruments[q.instrument]
            if q.size <= 0 or q.margin < 0:
                bad.append(f"INV-021: account {acct.id} position {q.instrument} size {q.size} margin {q.margin}")
            if q.margin_mode is MarginMode.ISOLATED and q.instrument in dict(after.marks):
                act = L.decide_action(inst, p.margin, p.liquidation, q.terms(), after.mark(q.instrument))
                if act == L.PARTIAL:
                    bad.append(f"LIQ-006: account {acct.id} {q.instrument} left in a PARTIAL state")
    prev = {(a.id, q.instrument, q.side): q.size for a in before.accounts for q in a.positions}
    for r in records:
        if r.kind == "adl":
            key = (r.account, r.instrument)
            sizes = [v for (a, i, _), v in prev.items() if (a, i) == key]
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
