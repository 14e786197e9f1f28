"""The wide bounded whole loop (INV-025): cross margin on two instruments, a partial step at tier 3,
both ADL triggers, through the real step function.

Like OBL-INV-024 (:mod:`backstop.proofs.loop`) the body runs
:func:`backstop.reference.step.process_event` itself on shadowed numbers, explores every path of
the plumbing on each price row, and states the claim on each path's final terms.  The domain is
split into obligations of a few rows each (OBL-INV-025a, -025b, ...) so that every one stays under
its limit and they can run in parallel.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, Callable

from backstop.proofs.concolic import concolic_rules, shadow_of, sym
from backstop.proofs.loop import T0, T1, T2, prove_by_paths
from backstop.proofs.registry import Context, Scope, obligation
from backstop.reference import adl as A
from backstop.reference import fund as F
from backstop.reference import fundbook as FB
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference import step as S
from backstop.reference import transition as T
from backstop.reference.engine import Level
from backstop.reference.events import fund_key_of
from backstop.reference.profile import BalanceView, PartialRule, Profile
from backstop.reference.rules import RULES
from backstop.reference.types import Account, ContractKind, Instrument, MarginMode, Position, PositionTerms, Side, TierBasis

__all__ = ["WideScenario", "CrossOnlyScenario", "EventsScenario", "wide_instruments"]


def wide_instruments(profile: Profile) -> tuple[Instrument, Instrument] | None:
    """Two linear instruments sharing a settlement currency (by id), on a profile that allows
    partial liquidation, enables the drawdown trigger and has at least 3 tiers on the first."""
    if profile.liquidation.partial is PartialRule.NONE or profile.adl.drawdown_fraction >= 1:
        return None
    lin = sorted((i for i in profile.instruments.values() if i.kind is ContractKind.LINEAR), key=lambda i: i.id)
    for a in lin:
        for b in lin:
            if a.id < b.id and a.settle_currency == b.settle_currency and len(a.tier_table.tiers) >= 3:
                return a, b
    return None


def two_marks(state: Any, instrument: str, marks: tuple[Any, Any], R: Any) -> dict[str, Any]:
    """The run of the two mark events of a whole-loop domain on ``instrument`` (at T1 and T2, across
    16:00 HKT) from ``state``: every state, each event's records and the marks, as the claims read them."""
    states, records = [state], []
    for t, mark in zip((T1, T2), marks):
        state, recs = S.process_event(state, S.MarkEvent(t, instrument, mark), R)
        states.append(state)
        records.append(recs)
    return {"states": states, "records": records, "marks": list(marks), "times": (T1, T2),
            "walk": [None, None], "inject": [0, 0], "check": [True, True]}


class WideScenario:
    """Four accounts on two linear instruments P (the first) and Q of one settlement currency:

    * H -- isolated long on P, at tier 3 of P's table (just above the tier-2 cap): a drop takes
      it through a partial step (LIQ-005) or a full liquidation;
    * S -- isolated short on P (the other side: the ADL counterparty);
    * X -- cross: a short on P at tier 3 (H's size, entry 19,700) and a long on Q at a loss (entry
      1,100, mark 1,000) sharing one balance (LIQ-008, LIQ-009): a rise takes it through a cross
      partial round (TRN-003, TRN-004); as a short on P it is also an ADL counterparty, so an ADL
      fill at the bankruptcy price can weaken the balance its Q leg shares, which the re-check
      (TRN-008) must catch;
    * D -- no position.

    Entry prices: P at 20,000, Q at 1,000; Q's mark stays at its entry.  One bid and one ask level
    on P.  Two mark events on P, the second one second after 16:00 HKT, so it also runs the daily
    settlement -- which moves the first event's deficits into the settled balance, the balance the
    drawdown trigger (b) reads on okx.  The variables: H's, S's and D's cash (whole amounts >= 0)
    and the row: a price row, the fund's opening balance (one of ``FUNDS``) and X's cash (one of
    ``CASH_X``); so trigger (a) (the fund cannot cover a remainder) and trigger (b) (the settled
    balance fell 30 % within 8 hours) each hold on some rows and not on others."""

    LIMIT, MAX_PATHS = 280, 96
    NAMES: tuple[str, ...] = ("cash H", "cash S", "cash D")
    ENTRY_P, ENTRY_Q, ENTRY_XP, ENTRY_XQ = Fraction(20_000), Fraction(1_000), Fraction(19_700), Fraction(1_100)
    # (H's margin share of its notional, mark 1, mark 2, bid, ask) as multiples of P's entry
    PRICES = ((Fraction(2, 100), Fraction(99, 100), Fraction(99, 100), Fraction(985, 1000), Fraction(101, 100)),
              (Fraction(2, 100), Fraction(99, 100), Fraction(90, 100), Fraction(985, 1000), Fraction(101, 100)),
              (Fraction(2, 100), Fraction(90, 100), Fraction(90, 100), Fraction(70, 100), Fraction(130, 100)),
              (Fraction(8, 100), Fraction(95, 100), Fraction(105, 100), Fraction(94, 100), Fraction(106, 100)),
              (Fraction(2, 100), Fraction(120, 100), Fraction(80, 100), Fraction(95, 100), Fraction(125, 100)),
              (Fraction(8, 100), Fraction(80, 100), Fraction(80, 100), Fraction(70, 100), Fraction(130, 100)))
    # the fund's opening balance, in whole currency units: empty (trigger (a) at once), small, one
    # that pays the first crash and then falls by more than 30 % at the settlement (trigger (b)),
    # and one that covers everything.  A free fund balance puts it under the floors of the ENG-006
    # budget and the ADL-007 mark quantity at once, and the path solver then stalls (measured: no
    # answer in 115 s after four paths); with the fund a row constant, every term is linear in the
    # cash balances, which stay free.
    FUNDS = (0, 1_000, 80_000, 10_000_000)
    # X's cash, in whole units: none (any adverse move liquidates it), the two balances at which a rise
    # to 1.05 x and to 1.2 x entry takes X through a cross partial round, and plenty.
    # Free, it sets the LIQ-009 shares and so X's bankruptcy prices, which the ENG-006 budget divides
    # by: a variable in a divisor under a floor, and the prover's exhaustiveness check of those
    # paths answered unknown (measured: OBL-INV-025c at the 280 s limit).  H's, S's and D's cash stay free.
    CASH_X = (0, 54_000, 145_000, 10_000_000)
    # rows 96-99 (OBL-INV-025f): X's long on Q bought at 550 (in profit at Q's mark 1,000) and no cash,
    # on the price row that rises to 1.05 x entry: the Q profit holds X's equity above its tier-1
    # requirement (a PARTIAL decision) while the short's realized loss of the step exceeds the balance,
    # so the round is refused (LIQ-008, TRN-004) and X is liquidated in full -- one row per fund
    # balance.  (The 96 rows above never refuse a round: with the Q leg at a loss, a PARTIAL
    # decision's steps are always funded.  Measured concretely over Q entries 300-1,050, X's cash 0,
    # 54,000, 145,000 and every price row: only this price row with cash 0 refuses.)
    ENTRY_XQ_PROFIT = Fraction(550)
    GRID = (tuple(pr + (fund, cash, xq) for pr, fund, cash, xq in itertools.product(PRICES, FUNDS, CASH_X, (ENTRY_XQ,)))
            + tuple(pr + (fund, cash, xq) for pr, cash, fund, xq
                    in itertools.product(PRICES[3:4], (0,), FUNDS, (ENTRY_XQ_PROFIT,))))
    ROWS = {g: tuple(range(24 * k, 24 * (k + 1))) for k, g in enumerate("abcd")} | {"f": tuple(range(96, 100))}

    def __init__(self, profile: Profile, insts: tuple[Instrument, Instrument]) -> None:
        self.profile = profile
        self.p, self.q = insts
        self.fund = fund_key_of(self.p)
        self.code = self.p.settle_currency.code
        table = self.p.tier_table.tiers
        # H: one lot above the tier-2 cap of P's table (tier 3); S: P's tier-1 cap; X: one tier-1 lot-rich position each
        # tiers 1 and 2 have caps (wide_instruments requires at least 3 tiers; only the last is uncapped)
        self.h_size: Fraction = table[1].cap + self.p.lot_size  # type: ignore[operator]
        self.s_size: Fraction = table[0].cap  # type: ignore[assignment]
        self.x_size_p = self.h_size
        self.x_size_q = 100_000 * self.q.lot_size
        for row in self.GRID:
            for f in row[1:5]:
                if (f * self.ENTRY_P / self.p.tick_size).denominator != 1:
                    raise ValueError(f"{self.p.id}: a wide-loop price is not on the tick grid")

    def _notional(self, inst: Instrument, size: Fraction, price: Fraction) -> Fraction:
        return size * inst.contract_value * price * inst.scale

    def declare(self, ctx: Context, rows: tuple[int, ...] = ()) -> dict[str, Any]:
        v: dict[str, Any] = {"price path": ctx.integer("price path")}
        rows = rows or tuple(range(len(self.GRID)))
        ctx.assume(num.or_(*[v["price path"] == r for r in rows]))
        for n in self.NAMES:
            v[n] = ctx.money(n)
        return v

    def run(self, values: dict[str, Any], terms: dict[str, Any] | None = None) -> dict[str, Any]:
        def x(n: str) -> Any:
            return sym(values[n], terms[n]) if terms is not None else values[n]

        R = concolic_rules() if terms is not None else RULES
        mh, m1, m2, bid, ask, fund, cash_x, entry_xq = self.GRID[values["price path"]]
        p, q, E, code = self.p, self.q, self.ENTRY_P, self.code
        h_margin = int(self._notional(p, self.h_size, E) * mh)
        s_margin = int(self._notional(p, self.s_size, E) / 10)
        accounts = [
            Account("H", ((code, x("cash H")),), (Position(p.id, Side.LONG, self.h_size, E, MarginMode.ISOLATED, h_margin),)),
            Account("S", ((code, x("cash S")),), (Position(p.id, Side.SHORT, self.s_size, E, MarginMode.ISOLATED, s_margin),)),
            Account("X", ((code, cash_x * self.p.settle_currency.scale),),
                    (Position(p.id, Side.SHORT, self.x_size_p, self.ENTRY_XP, MarginMode.CROSS, 0),
                     Position(q.id, Side.LONG, self.x_size_q, entry_xq, MarginMode.CROSS, 0))),
            Account("D", ((code, x("cash D")),)),
        ] + list(self.extra_accounts())
        book = S.Book((Level(bid * E, self.s_size),), (Level(ask * E, self.s_size),))
        state = S.initial_state(self.profile, accounts, {p.id: E, q.id: self.ENTRY_Q}, {p.id: book},
                                {self.fund.id: fund * self.p.settle_currency.scale}, start_ms=T0, R=R)
        # a book for an instrument that has had no mark yet (issue 13's defect 2 raised KeyError here)
        other = self.no_mark_instrument()
        if other is not None:
            state, _ = S.process_event(state, S.BookEvent(T0, other.id, (Level(other.tick_size, other.lot_size),), ()), R)
        return two_marks(state, p.id, (m1 * E, m2 * E), R)

    def extra_accounts(self) -> tuple[Account, ...]:
        """Accounts a sub-domain adds (none here)."""
        return ()

    def no_mark_instrument(self) -> Instrument | None:
        """An instrument of the profile other than P and Q (it never gets a mark here)."""
        rest = sorted((i for i in self.profile.instruments.values() if i.id not in (self.p.id, self.q.id)), key=lambda i: i.id)
        return rest[0] if rest else None

    # ---------------------------------------------------------------- the claim

    def equity(self, state: S.SimState, val: Any, symbolic: bool) -> Any:
        """The venue's books valued at the state's marks: cash, isolated margins, unrealized PnL of
        every position, the engine's remainders, the fund's available balance, dust and fees."""
        terms = shadow_of if symbolic else (lambda t: t)
        marks = dict(state.marks)
        insts = self.profile.instruments
        total: Any = 0
        for a in state.accounts:
            total = total + val(a.balance(self.code))
            for pos in a.positions:
                total = total + val(pos.margin) + M.compute_unrealized_pnl(insts[pos.instrument], terms(pos.terms()),
                                                                         marks[pos.instrument])
        for r in state.remainders:
            total = total + M.compute_unrealized_pnl(insts[r.instrument], terms(PositionTerms(r.sign, r.size, r.price, 0)),
                                                     marks[r.instrument])
        for key in dict.fromkeys((fund_key_of(self.p), fund_key_of(self.q))):  # each fund once (P may be Q)
            total = total + val(FB.available_balance(state.funds, key, BalanceView.SETTLED_PLUS_PENDING))
        total = total + val(dict(state.dust).get(self.code, 0))
        return total + val(state.funds.ledger.balances.get((F.VENUE, self.code), 0))

    def claim(self, out: dict[str, Any], symbolic: bool) -> Any:
        """INV-025 on one run (terms when ``symbolic``, else concrete values)."""
        val: Callable[[Any], Any] = (lambda v: v.z if hasattr(v, "z") else v) if symbolic else (lambda v: v)
        conc: Callable[[Any], Any] = lambda v: v.c if hasattr(v, "c") else v  # noqa: E731 -- a value fixed on the path
        prof, p, code = self.profile, self.p, self.code
        first = out["states"][0]
        before0 = {a.id: a for a in first.accounts}
        parts: list[Any] = []
        for k, (state, mark, t) in enumerate(zip(out["states"][1:], out["marks"], out["times"]), start=1):
            prev = out["states"][k - 1]
            recs = out["records"][k - 1]
            # the book the event's fills walk (a book event's own), what the event moves into the
            # fund's settled balance from outside (a top-up +, a withdrawal -), whether it checks ADL
            walk, inject, check = out["walk"][k - 1] or prev.book(p.id), out["inject"][k - 1], out["check"][k - 1]
            for key in state.funds.funds:                                              # INV-009 for every fund
                parts += [val(FB.settled_balance(state.funds, key)) >= 0,
                          val(FB.available_balance(state.funds, key, BalanceView.SETTLED_PLUS_PENDING)) >= 0]
            before = {a.id: a for a in prev.accounts}
            touched = {r.account for r in recs if r.kind == "adl"}
            for acct in state.accounts:
                old = {(q.instrument, q.side): q for q in before[acct.id].positions}
                parts.append(val(acct.balance(code)) >= 0)                             # a loss never beyond the balance
                for pos in acct.positions:
                    if (pos.instrument, pos.side) not in old:                          # no position is opened
                        return False
                    o = old[(pos.instrument, pos.side)]
                    parts += [val(pos.size) > 0, val(pos.size) <= val(o.size), val(pos.margin) >= 0]
                    if pos.margin_mode is MarginMode.ISOLATED and pos.instrument == p.id:
                        terms = shadow_of(pos.terms()) if symbolic else pos.terms()
                        parts.append(L.decide_action(p, prof.margin, prof.liquidation, terms, val(mark)) == L.NONE)
                group = [q for q in acct.positions if q.margin_mode is MarginMode.CROSS]
                on_p = any(q.instrument == p.id for q in before[acct.id].positions)
                if not on_p and acct.id not in touched:                                 # TRN-001: an event on P moves no one else
                    was = {(q.instrument, q.side): q for q in before[acct.id].positions}
                    if {(q.instrument, q.side) for q in acct.positions} != set(was):
                        return False
                    parts.append(val(acct.balance(code)) == val(before[acct.id].balance(code)))
                    parts += [val(q.size) == val(was[(q.instrument, q.side)].size) for q in acct.positions]
                    continue
                if group:                                                              # LIQ-008, TRN-008: no cross account left liquidatable
                    marks = dict(state.marks)
                    ips = tuple((prof.instruments[q.instrument], shadow_of(q.terms()) if symbolic else q.terms()) for q in group)
                    parts.append(L.decide_cross_action(ips, prof.margin, prof.liquidation, val(acct.balance(code)),
                                                       tuple(val(marks[q.instrument]) for q in group)) == L.NONE)
                isolated_only = all(q.margin_mode is MarginMode.ISOLATED for q in before[acct.id].positions)
                if isolated_only and acct.id not in touched:                            # LIQ-007: the loss stays in the margin
                    returned = sum((val(r.get("to_user")) for r in recs                 # ENG-004: a capped fund share
                                    if r.kind == "surplus to user" and r.account == acct.id), 0)
                    parts.append(val(acct.balance(code)) == val(before[acct.id].balance(code)) + returned)
            d = {a.id: a for a in state.accounts}["D"]                                  # ADL-008: no socialized loss
            parts.append(val(d.balance(code)) == val(before0["D"].balance(code)))
            # ENG-001: fills at a level of the closing side, never beyond it
            book = walk
            taken: dict[tuple[str, Any], Any] = {}
            for r in recs:
                if r.kind == "engine fill":
                    levels = book.bids if r.get("side") == "sell" else book.asks
                    price = r.get("price")
                    if all(conc(price) != lv.price for lv in levels):
                        return False
                    key = (r.get("side"), conc(price))
                    taken[key] = taken.get(key, 0) + val(r.get("size"))
            for (side, price), size in taken.items():
                level = [lv for lv in (book.bids if side == "sell" else book.asks) if lv.price == price][0]
                parts.append(size <= val(level.size))
            # TRN-005: no engine fill while the fund is in the ADL state (followed through the event's records)
            active = bool(conc(prev.is_adl_active(self.fund)))
            for r in recs:
                if r.kind == "adl state" and r.fund == self.fund.id:
                    active = bool(conc(r.get("active")))
                elif r.kind == "engine fill" and active:
                    return False
            # ADL-003 / TRN-006: the state after the event is exactly what ADL-003 says
            hist = FB.balance_history(state.funds, self.fund, prof.adl.balance_view)
            b = A.is_drawdown_trigger(prof.adl, shadow_of(hist) if symbolic else hist, t)
            open_ = num.sum_(val(r.size) for r in state.remainders if fund_key_of(prof.instruments[r.instrument]) == self.fund)
            was, now = val(prev.is_adl_active(self.fund)), val(state.is_adl_active(self.fund))
            ta = self.trigger_a(prev, recs, mark, val, conc, b)
            if ta is False:
                return False
            a, more = ta
            parts += more
            parts.append(now == (num.or_(a, b, num.and_(was, open_ > 0)) if check else was))
            # INV-022 for the whole transition: the books change by exactly the fills against the book
            fills = num.sum_(num.ite(r.get("side") == "sell", 1, -1) * val(r.get("size")) * (val(r.get("price")) - mark)
                             * p.contract_value * p.scale for r in recs if r.kind == "engine fill")
            prev_at_mark = self.equity(S.process_mark(prev, t, p, mark)[0], val, symbolic)
            parts.append(self.equity(state, val, symbolic) - prev_at_mark == fills + inject)
            more = self.plumbing(prev, state, recs, t, mark, val, conc, walk, inject, check,
                                 check and out["walk"][k - 1] is None)
            if more is False:
                return False
            parts += more
        return num.and_(*parts)

    def trigger_a(self, prev: S.SimState, recs: Any, mark: Any, val: Any, conc: Any, b: Any) -> Any:
        """(m) ADL-002 / ADL-003: trigger (a) computed here -- each deleveraged remainder's uncovered
        loss from its own size and takeover price (the remainder before, or this event's 'bankrupt
        remainder' record), the mark and the fund's available balance as the 'adl trigger' record
        states them; ADL runs on a remainder only when (a) or (b) holds.  (a, parts) or False."""
        p = self.p
        parts: list[Any] = []
        opened = {conc(r.id): (r.sign, r.price) for r in prev.remainders}
        for r in recs:
            if r.kind == "bankrupt remainder":
                opened[conc(r.get("remainder_id"))] = (1 if r.get("side") == "long" else -1, r.get("takeover_price"))
        a_terms = []
        for r in recs:
            if r.kind == "adl trigger" and r.fund == self.fund.id:
                rid = conc(r.get("remainder_id"))
                if rid not in opened:
                    return False
                sign, price = opened[rid]
                u = A.compute_remainder_uncovered(p, sign, val(r.get("remainder")), val(price), val(mark), val(r.get("available")))
                parts += [val(r.get("uncovered")) == u, num.or_(u > 0, b)]
                a_terms.append(u > 0)
        return num.or_(*a_terms), parts

    # movement records of the fund book (one history point each, INS-003 / INS-010)
    MOVEMENTS = ("liquidation surplus", "liquidation deficit", "adl surplus", "adl deficit", "liquidation fee",
                 "top-up", "withdrawal") + tuple(FB.SETTLEMENT_KINDS.values())

    def plumbing(self, prev: S.SimState, state: S.SimState, recs: Any, t: int, mark: Any, val: Any, conc: Any,
                 walk: S.Book, inject: Any, check: bool = True, is_mark: bool = True) -> Any:
        """The claims on what the plumbing builds besides the money (INV-025 (k)-(r)): the book after
        the fills, the fund's history and settlement, trigger (a) computed here, the remainders, the
        records an auditor reads.  A list of Z3 (or bool) terms, or False."""
        prof, p = self.profile, self.p
        parts: list[Any] = []
        # (k) ENG-001: each side of P's book after the event = the side before less the engine's fills
        # at its levels, a level emptied to 0 removed, the others in place (the side before: a book
        # event's own book)
        fills = [r for r in recs if r.kind == "engine fill" and r.instrument == p.id]
        before, after = walk, state.book(p.id)
        for side, lv_before, lv_after in (("sell", before.bids, after.bids), ("buy", before.asks, after.asks)):
            kept = []
            for lv in lv_before:
                took = [r.get("size") for r in fills if r.get("side") == side and conc(r.get("price")) == lv.price]
                left_c = conc(lv.size) - sum((conc(x) for x in took), 0)
                left = val(lv.size) - num.sum_(val(x) for x in took)
                if left_c > 0:
                    kept.append((lv.price, left))
                else:
                    parts.append(left == 0)
            if [conc(lv.price) for lv in lv_after] != [pr for pr, _ in kept]:
                return False
            parts += [val(lv.size) == left for lv, (_, left) in zip(lv_after, kept)]
            parts += [left > 0 for _, left in kept]
        for r in fills:                                                   # a fill takes something
            parts.append(val(r.get("size")) > 0)
        closes = [r for r in recs if r.kind == "engine close" and r.instrument == p.id]
        parts.append(num.sum_(val(r.get("filled")) for r in closes) == num.sum_(val(r.get("size")) for r in fills))
        # (l) INS-002 / INS-008 and INS-003 / INS-010, for every fund: a mark event moves the settled
        # balance only by the settlement -- by the whole pending net when the event's time lies in a
        # later window than the fund's clock (window_index, OBL-INS-002), else not at all; the
        # history keeps its points and gains one per movement record of the fund, the last one the
        # ledger's balances now (what the drawdown trigger reads)
        rules = prof.fund
        for key in state.funds.funds:
            s0, p0 = val(FB.settled_balance(prev.funds, key)), val(FB.pending_balance(prev.funds, key))
            s1, p1 = val(FB.settled_balance(state.funds, key)), val(FB.pending_balance(state.funds, key))
            due = F.window_index(rules, t) > F.window_index(rules, conc(prev.funds.funds[key].clock))
            parts.append(s1 == (s0 + p0 if due else s0) + (inject if key == self.fund else 0))
            hb, ha = prev.funds.history[key], state.funds.history[key]
            if len(ha) < len(hb) or [conc(x.time_ms) for x in ha[:len(hb)]] != [conc(x.time_ms) for x in hb]:
                return False
            parts += [num.and_(val(x.settled) == val(y.settled), val(x.available) == val(y.available))
                      for x, y in zip(ha, hb)]
            new = ha[len(hb):]
            moves = [r for r in recs if r.kind in self.MOVEMENTS and r.fund == key.id]
            if len(new) != len(moves):
                return False
            if new:
                parts += [val(new[-1].settled) == s1, val(new[-1].available) == s1 + p1]
                times = [conc(x.time_ms) for x in new]
                if times != sorted(times) or times[-1] > t or times[0] < conc(prev.funds.funds[key].clock) - F.DAY_MS:
                    return False
            else:
                parts += [s1 == s0, p1 == p0]
            for r in recs:                                            # a settlement record names its window
                if r.fund == key.id and r.kind in FB.SETTLEMENT_KINDS.values():
                    w = conc(r.get("window"))
                    if (conc(r.get("window_start_ms")), conc(r.get("window_end_ms"))) != \
                            (F.window_start(rules, w), F.window_start(rules, w + 1)):
                        return False
                    parts.append(val(r.get("net")) == p0)
        # (n) the engine's remainders: size > 0, distinct ids below the next id, each new one with
        # its 'bankrupt remainder' record (of size > 0)
        ids = [conc(r.id) for r in state.remainders]
        opened = [conc(r.id) for r in prev.remainders] + [conc(r.get("remainder_id")) for r in recs if r.kind == "bankrupt remainder"]
        if len(set(ids)) != len(ids) or any(i >= conc(state.next_id) for i in opened + ids):
            return False
        new_ids = {conc(r.get("remainder_id")) for r in recs if r.kind == "bankrupt remainder"}
        if any(i not in new_ids for i in set(ids) - {conc(r.id) for r in prev.remainders}):
            return False
        parts += [val(r.size) > 0 for r in state.remainders]
        # (r) ENG-001, ENG-006, TRN-005: outside the ADL state the engine offers every open
        # remainder to the book: after an event that works the remainders, one of P stays open
        # only when the closing side is empty or its best level would cost the fund more than
        # its available balance for one more lot (a level at or better than the takeover price
        # costs nothing: it never stays)
        if check and not bool(conc(state.is_adl_active(self.fund))):
            avail = val(FB.available_balance(state.funds, self.fund, BalanceView.SETTLED_PLUS_PENDING))
            for r in state.remainders:
                if r.instrument != p.id:
                    continue
                levels = after.bids if conc(r.sign) > 0 else after.asks
                if levels:
                    unit = M.compute_unrealized_pnl(p, PositionTerms(conc(r.sign), p.lot_size, conc(r.price), 0), levels[0].price)
                    parts.append(avail < -unit)
        parts += [val(r.get("size")) > 0 for r in recs if r.kind == "bankrupt remainder"]
        # (o) the records: a position that disappeared or shrank has its liquidation or ADL record;
        # a liquidation record follows a trigger record of its account whose action is not 'none';
        # a refused cross partial follows a PARTIAL decision; every ADL reduction is notified; the
        # 'adl state' records follow the state
        olds = {(a.id, q.instrument, q.side): q for a in prev.accounts for q in a.positions}
        news = {(a.id, q.instrument, q.side): q for a in state.accounts for q in a.positions}
        for (acct, inst_id, _side), q in olds.items():
            n = news.get((acct, inst_id, _side))
            if n is not None and conc(n.size) == conc(q.size):
                continue
            kinds = ("full liquidation", "adl") if n is None else ("partial liquidation", "adl")
            if not any(r.kind in kinds and r.account == acct and r.instrument == inst_id for r in recs):
                # on a notional table a LIQ-005 step can close the whole position: its record says new size 0
                if n is not None or not any(r.kind == "partial liquidation" and r.account == acct
                                            and r.instrument == inst_id and conc(r.get("new_size")) == 0 for r in recs):
                    return False
        last_trigger: dict[str, str] = {}
        for r in recs:
            if r.kind == "liquidation trigger":
                if r.get("action") == "none":
                    return False
                last_trigger[r.account] = r.get("action")
            elif r.kind in ("full liquidation", "partial liquidation") and r.account not in last_trigger:
                return False
            elif r.kind == "cross partial refused" and last_trigger.get(r.account) != "partial":
                return False
        adl_recs = [r for r in recs if r.kind == "adl"]
        notes = [r for r in recs if r.kind == "notification"]
        if len(notes) != len(adl_recs) or {r.account for r in notes} != {r.account for r in adl_recs}:
            return False
        # (p) the fund's postings: a fee record has a fee > 0 and its journal entry is paid by the
        # account it names (user:<account>), or by the engine when it names none (INS-005); an
        # engine close fills something; the liquidation results are one per engine close and one
        # per full liquidation whose takeover moved engine cash (LIQ-007), the ADL results come
        # after an 'adl trigger' (INS-004); a partial step reduces something (LIQ-005)
        fee_recs = [r for r in recs if r.kind == "liquidation fee"]
        parts += [val(r.get("amount")) > 0 for r in fee_recs]
        fee_entries = [e for e in state.funds.ledger.entries[len(prev.funds.ledger.entries):] if e.kind == "liquidation fee"]
        if len(fee_entries) != len(fee_recs):
            return False
        for r, e in zip(fee_recs, fee_entries):
            payer = F.user_account(r.account) if r.account else F.engine_account(fund_key_of(prof.instruments[r.instrument]))
            if e.legs[0].account != payer:                            # the source leg of the transfer
                return False
        parts += [val(r.get("filled")) > 0 for r in recs if r.kind == "engine close"]
        parts += [val(r.get("reduced")) > 0 for r in recs if r.kind == "partial liquidation"]
        results = [r for r in recs if r.kind in ("liquidation surplus", "liquidation deficit")]
        cash = [r for r in recs if r.kind == "full liquidation" and conc(r.get("engine_cash")) != 0]
        if len(results) != len([r for r in recs if r.kind == "engine close"]) + len(cash):
            return False
        parts += [val(r.get("to_user")) > 0 for r in recs if r.kind == "surplus to user"]
        # (q) TRN-004: a cross partial round is refused only when its steps are not funded (the
        # balance after them < 0) or it is the account's last round at this mark
        rounds = T.max_cross_rounds(tuple(prof.instruments.values()))

        def touched_before(x: Any) -> bool:  # an 'adl' record of x's account comes before x
            for y in recs:
                if y is x:
                    return False
                if y.kind == "adl" and y.account == x.account:
                    return True
            return False

        seen_rounds: dict[str, int] = {}
        for r in recs:
            if r.kind == "liquidation trigger" and r.get("margin_mode") == "cross":
                seen_rounds[r.account] = seen_rounds.get(r.account, 0) + 1
            elif r.kind == "cross partial refused" and seen_rounds.get(r.account, 0) < rounds:
                parts.append(val(r.get("balance_after")) < 0)
                if seen_rounds[r.account] == 1 and not touched_before(r):
                    # the account's first round, before any ADL touched it: plan its steps here
                    # (LIQ-009 shares, the TRN-003 candidates, one LIQ-005 step each) from its
                    # positions and balance before the event, at the marks after it
                    planned = {a.id: a for a in prev.accounts}[r.account]
                    group = [q for q in planned.positions if q.margin_mode is MarginMode.CROSS
                             and prof.instruments[q.instrument].settle_currency.code == self.code]
                    ips = tuple((prof.instruments[q.instrument], q.terms()) for q in group)
                    ms = tuple(conc(dict(state.marks)[q.instrument]) for q in group)
                    bal = conc(planned.balance(self.code))
                    shares = L.compute_cross_shares(ips, bal, ms)
                    steps = tuple(L.compute_partial_step(i, prof.margin, prof.liquidation,
                                                         PositionTerms(tm.sign, tm.size, tm.entry, sh), m)
                                  for (i, tm), m, sh in zip(ips, ms, shares)
                                  if T.is_cross_partial_candidate(i, prof.margin, prof.liquidation, tm, m))
                    if not L.compute_cross_partial_balance(bal, steps, tuple(True for _ in steps)) < 0:
                        return False
        # (s) LIQ-005, ENG-005: a partial step credits its exact PnL at its price (from the position's
        # own entry) rounded down: the residue is in [0, 1) unit; a PARTIAL cross round takes a step
        # (TRN-003) or is refused; the journal gets no empty entry, the dust no zero entry; an
        # 'uncovered deficit' names a deficit > 0; a mark event records its mark (MRG-002)
        for r in recs:
            if r.kind == "partial liquidation":
                sign = 1 if r.get("side") == "long" else -1
                same = [x for (a, i, _), x in olds.items() if a == r.account and i == r.instrument and conc(x.sign) == sign]
                if len(same) != 1:
                    return False
                exact = M.compute_unrealized_pnl(prof.instruments[r.instrument],
                                                 PositionTerms(sign, val(r.get("reduced")), val(same[0].entry_price), 0),
                                                 val(r.get("price")))
                parts += [exact - val(r.get("realized_pnl")) >= 0, exact - val(r.get("realized_pnl")) < 1]
        pending_round: dict[str, bool] = {}
        for r in recs:
            if r.kind == "liquidation trigger" and r.get("margin_mode") == "cross":
                if pending_round.get(r.account):
                    return False
                pending_round[r.account] = r.get("action") == "partial"
            elif r.kind in ("partial liquidation", "cross partial refused") and r.account in pending_round:
                pending_round[r.account] = False
        if any(pending_round.values()):
            return False
        for e in state.funds.ledger.entries[len(prev.funds.ledger.entries):]:
            parts.append(num.or_(*[val(leg.amount) != 0 for leg in e.legs]))
        parts += [val(v) > 0 for _, v in state.dust]
        parts += [val(r.get("uncovered")) > 0 for r in recs if r.kind == "uncovered deficit"]
        if is_mark and [conc(r.get("price")) for r in recs if r.kind == "mark" and r.instrument == p.id] != [conc(mark)]:
            return False
        seen_trigger = False
        for r in recs:
            seen_trigger = seen_trigger or r.kind == "adl trigger"
            if r.kind in ("adl surplus", "adl deficit") and not seen_trigger:
                return False
        active = bool(conc(prev.is_adl_active(self.fund)))
        for r in recs:
            if r.kind == "adl state" and r.fund == self.fund.id:
                if bool(conc(r.get("active"))) == active:
                    return False
                active = bool(conc(r.get("active")))
        if active != bool(conc(state.is_adl_active(self.fund))):
            return False
        return parts


class CrossOnlyScenario(WideScenario):
    """The wide domain with a second cross account (OBL-INV-025g): Y, cross short S's size of P at
    P's entry with no cash and no other position -- a cross group that holds only the event's
    instrument, so TRN-001's step 4 must pick it by its P position (X's group holds P and Q, so the
    filter never mattered for X alone).  The rows are the rising price rows 3 and 4 (marks to 1.05 x
    and 1.2 x entry), X's cash 0, one per fund balance: Y is liquidated in full on each."""

    G_ROWS = (48, 52, 56, 60, 64, 68, 72, 76)

    def extra_accounts(self) -> tuple[Account, ...]:
        return (Account("Y", ((self.code, 0),),
                        (Position(self.p.id, Side.SHORT, self.s_size, self.ENTRY_P, MarginMode.CROSS, 0),)),)


class EventsScenario(WideScenario):
    """The wide domain with the other event types between the marks (OBL-INV-025e): a mark on P,
    a book event on P that refills both sides, the bid with H's whole size (the engine retries an
    open remainder against it and can close it,
    TRN-005), a platform top-up of the fund (INS-006), a second mark after the daily settlement,
    and a platform withdrawal (INS-007) -- five events through ``process_event``, the claim of
    INV-025 after each.  The rows are the wide rows where a crash leaves a remainder open (an empty
    fund: ADL at once; a fund that covers it: it waits for the book), and two where little
    happens.  The top-up is 5,000 whole units; the withdrawal 1,000 on the rows whose fund opens
    at 80,000 or more, else 0 (a withdrawal beyond what is withdrawable is refused, INS-007)."""

    EVENT_ROWS = (35, 43, 47, 95, 31, 15)
    TOP_UP, WITHDRAW = 5_000, 1_000

    def run(self, values: dict[str, Any], terms: dict[str, Any] | None = None) -> dict[str, Any]:
        R = concolic_rules() if terms is not None else RULES
        first = super().run(values, terms)  # the set-up and its two marks; only the start is kept
        state = first["states"][0]
        mh, m1, m2, bid, ask, fund, cash_x, _ = self.GRID[values["price path"]]
        p, E, unit = self.p, self.ENTRY_P, self.p.settle_currency.scale
        refill = S.Book((Level(bid * E, self.h_size),), (Level(ask * E, self.s_size),))
        top, out_ = self.TOP_UP * unit, (self.WITHDRAW * unit if fund >= 80_000 else 0)
        events = ((S.MarkEvent(T1, p.id, m1 * E), m1 * E, None, 0, True),
                  (S.BookEvent(T1 + 100, p.id, refill.bids, refill.asks), m1 * E, refill, 0, True),
                  (S.TopUpEvent(T1 + 200, self.fund.id, top), m1 * E, None, top, False),
                  (S.MarkEvent(T2, p.id, m2 * E), m2 * E, None, 0, True),
                  (S.WithdrawEvent(T2 + 100, self.fund.id, out_), m2 * E, None, -out_, False))
        out: dict[str, Any] = {"states": [state], "records": [], "marks": [], "times": [], "walk": [], "inject": [],
                               "check": []}
        for ev, mark, walk, inject, check in events:
            state, recs = S.process_event(state, ev, R)
            for k, v in (("states", state), ("records", recs), ("marks", mark), ("times", ev.time_ms), ("walk", walk),
                         ("inject", inject), ("check", check)):
                out[k].append(v)
        return out


def _rows_body(cls: Any, pick: Callable[[Profile], Any], rows: tuple[int, ...]) -> Callable[[Context], Any]:
    """The body of a sub-domain obligation: ``cls``'s scenario on the instruments ``pick`` finds, its
    ``rows`` only, every path explored (:func:`backstop.proofs.loop.prove_by_paths`)."""
    def body(ctx: Context) -> Any:
        sc = cls(ctx.profile, pick(ctx.profile))  # None only where the obligation does not apply (its `applies` asks pick)
        sc.declare = (lambda c, _d=sc.declare: _d(c, rows))  # a lambda's bound default: the checker cannot type it
        return prove_by_paths(ctx, sc, rows)
    return body


def _wide_body(group: str) -> Any:
    return _rows_body(WideScenario, wide_instruments, WideScenario.ROWS[group])


_PREMISES = ("H long {h} on P (isolated, tier 3: one lot above the tier-2 cap; margin 2 % or 8 % of notional), S short "
             "{s} on P (isolated, 10 %), X cross short H's size of P at 19,700 and long 100,000 lots of Q at 1,100 (mark 1,000) sharing one balance, D no position; "
             "entries P 20,000 and Q 1,000, Q's mark fixed; H's, S's and D's cash any whole amount >= 0; the fund's "
             "opening balance 0, 1,000, 80,000 or 10,000,000 and X's cash 0, 54,000, 145,000 or 10,000,000 whole units (row "
             "constants); one bid and one ask level on P of S's size; two mark events on P, the second one second after "
             "16:00 HKT; rows {rows} of WideScenario.GRID (6 price rows x 4 fund balances x 4 cash balances of X)")
_STATEMENT = ("after each event: every fund's settled and available balances >= 0; every account's balance >= 0 (a cross "
              "loss never beyond the balance); an isolated-only account that ADL did not touch keeps its balance (its "
              "loss stays within the margin), plus the surplus an engine close returned to it (ENG-004, 0 unless capped); "
              "positions only reduced (same side, size > 0, <= before, margin >= 0); no isolated position on P and no cross "
              "account left liquidatable at the marks (the re-check after ADL included); the flat account keeps its balance (no socialized "
              "loss); every engine fill at a level of the closing side, never beyond it; no engine fill while the fund "
              "is in the ADL state; the ADL state after the event = (the fund could not cover a remainder) or (the "
              "drawdown trigger) or (it was in the state and a remainder is open); and the venue's books valued at the "
              "marks change by exactly the fills against the book (no money created or lost, to the last unit)")

_PREMISES_F = ("as OBL-INV-025a-d but X's long on Q bought at 550 (in profit at Q's mark 1,000); the price row of "
               "marks 0.95 and 1.05 x entry (H's margin 8 %); the fund's opening balance 0, 1,000, 80,000 or "
               "10,000,000 whole units and X's cash 0 (row constants): rows {rows} of WideScenario.GRID")

for _group, _rows in WideScenario.ROWS.items():
    obligation(f"OBL-INV-025{_group}", f"wide bounded whole loop (rows {_rows[0]}-{_rows[-1]}): cross on two instruments, "
               "a tier-3 partial step, both ADL triggers, through process_event",
               rules=["INV-025", "INV-024", "TRN-001", "TRN-002", "TRN-003", "TRN-004", "TRN-005", "TRN-006", "TRN-008",
                      "LIQ-005", "LIQ-008", "LIQ-009", "ADL-003", "INV-009", "INV-022"],
               statement=_STATEMENT,
               premises=(_PREMISES_F if _group == "f" else _PREMISES).format(h="tier-2 cap + 1 lot", s="P's tier-1 cap",
                                                                             rows=", ".join(map(str, _rows))),
               scope=Scope.BOUNDED, limit_seconds=WideScenario.LIMIT, per_instrument=False,
               applies=lambda p, i: wide_instruments(p) is not None,
               applies_note="needs two linear instruments in one currency, partial liquidation and the drawdown trigger")(
        _wide_body(_group))


_cross_only_body = _rows_body(CrossOnlyScenario, wide_instruments, CrossOnlyScenario.G_ROWS)


obligation("OBL-INV-025g", "wide bounded whole loop with a second cross account holding only P, through process_event",
           rules=["INV-025", "TRN-001", "TRN-002", "LIQ-008", "LIQ-009", "ADL-003", "INV-009", "INV-022"],
           statement=_STATEMENT,
           premises=_PREMISES.format(h="tier-2 cap + 1 lot", s="P's tier-1 cap",
                                     rows=", ".join(map(str, CrossOnlyScenario.G_ROWS)))
           + "; and Y: cross, short P's tier-1 cap of P at P's entry, no cash, no other position",
           scope=Scope.BOUNDED, limit_seconds=WideScenario.LIMIT, per_instrument=False,
           applies=lambda p, i: wide_instruments(p) is not None,
           applies_note="needs two linear instruments in one currency, partial liquidation and the drawdown trigger")(
    _cross_only_body)


_events_body = _rows_body(EventsScenario, wide_instruments, EventsScenario.EVENT_ROWS)


obligation("OBL-INV-025e", "wide bounded whole loop with a book event, a top-up and a withdrawal between the marks, "
           "through process_event",
           rules=["INV-025", "TRN-001", "TRN-005", "TRN-006", "ENG-001", "INS-002", "INS-006", "INS-007", "INS-008",
                  "ADL-003", "INV-009", "INV-022"],
           statement=_STATEMENT + "; a top-up (withdrawal) moves exactly its amount into (out of) the settled balance "
                     "and the venue's books, and checks no ADL (the state stays)",
           premises=_PREMISES.format(h="tier-2 cap + 1 lot", s="P's tier-1 cap",
                                     rows=", ".join(map(str, EventsScenario.EVENT_ROWS)))
           + "; five events: the first mark, a book event refilling both sides of P (T1 + 100 ms), a top-up of "
             "5,000 whole units (T1 + 200 ms), the second mark, a withdrawal of 1,000 whole units (0 on the rows "
             "whose fund opens below 80,000) at T2 + 100 ms",
           scope=Scope.BOUNDED, limit_seconds=WideScenario.LIMIT, per_instrument=False,
           applies=lambda p, i: wide_instruments(p) is not None,
           applies_note="needs two linear instruments in one currency, partial liquidation and the drawdown trigger")(
    _events_body)


class TwoCandidateScenario(WideScenario):
    """The wide domain with two candidates in one cross PARTIAL round (OBL-INV-025h): X's long on Q
    is one lot above Q's tier-2 cap (tier 3, like its short on P) and bought at Q's mark (1,000), so
    at a rise of P both of X's positions are TRN-003 candidates and the round takes one LIQ-005 step
    on each, the second from the account the first left (its balance after the first step's realized
    PnL and fee, its P position cut).  In the other obligations X's Q leg is at tier 1: one candidate
    per round, where a step that started from the round's stale account could not be told apart.

    On okx (P = BTC-USDT-SWAP, Q = ETH-USDT-SWAP; X short 30.0001 BTC from 19,700 and long 3,000.001
    ETH from 1,000): at a mark m of P, X's equity is its cash c - 30.0001 x (m - 19,700); its
    requirement (both legs at tier 3) 1.05 % x 30.0001 m + 1.05 % x 3,000,001 and at tier-1 rates
    0.45 % x 30.0001 m + 0.45 % x 3,000,001.  At m = 21,000 (price row 3's second mark) that is
    c - 39,000.13 against 38,115.03 and 16,335.01: PARTIAL for c in (55,335.14, 77,115.16]; at
    m = 24,000 (price row 4's first mark) c - 129,000.43 against 39,060.04 and 16,740.01: PARTIAL for
    c in (145,740.44, 168,060.47].  The round cuts P to 500 and Q to 5,000 contracts (tier 1);
    at 21,000 the steps realize -25.0001 x 1,300 = -32,500.13 and 0 and pay fees 262.50 and
    1,250.00, so the balance after them is c - 34,012.63 >= 0: funded; the equity after,
    c - 40,512.63, is above the tier-1 requirement 472.50 + 2,250 = 2,722.50: the next round's
    decision is NONE (at 24,000: c - 109,050.43 >= 0 and c - 130,550.43 > 2,790).  The rows: for
    each of the two price rows, X's cash at the two ends and the middle of its PARTIAL range, one
    row per fund balance (24 rows); on price row 4 the fall to 0.8 x entry at the second mark
    liquidates H and, on three of the four fund balances, deleverages X's short on P the round left."""

    # (price row, X's cash in whole units): the rise to 1.05 x entry at the second mark, and the rise to
    # 1.2 x entry at the first mark followed by the fall to 0.8 x entry (H liquidated, the remainder
    # deleveraged against the shorts, X's short on P among them); on okx the PARTIAL ranges of X's cash
    # are (55,335.14, 77,115.16] and (145,740.44, 168,060.47]: each range's two ends and a middle
    CASH_X_TWO = ((3, 55_336), (3, 66_000), (3, 77_115), (4, 145_741), (4, 157_000), (4, 168_060))
    GRID = tuple(WideScenario.PRICES[pr] + (fund, cash, WideScenario.ENTRY_Q)
                 for (pr, cash), fund in itertools.product(CASH_X_TWO, WideScenario.FUNDS))
    H_ROWS = tuple(range(len(GRID)))

    def __init__(self, profile: Profile, insts: tuple[Instrument, Instrument]) -> None:
        super().__init__(profile, insts)
        self.x_size_q = self.q.tier_table.tiers[1].cap + self.q.lot_size  # type: ignore[operator]  # tier 2 has a cap (two_candidate_instruments asks for 3 tiers on Q)


def two_candidate_instruments(profile: Profile) -> tuple[Instrument, Instrument] | None:
    """:func:`wide_instruments` when its Q also has at least 3 tiers (X's Q leg is put at tier 3)."""
    w = wide_instruments(profile)
    return w if w is not None and len(w[1].tier_table.tiers) >= 3 else None


_two_candidate_body = _rows_body(TwoCandidateScenario, two_candidate_instruments, TwoCandidateScenario.H_ROWS)


obligation("OBL-INV-025h", "wide bounded whole loop with two candidates in one cross partial round (X's P and Q legs "
           "both at tier 3), through process_event",
           rules=["INV-025", "TRN-001", "TRN-003", "TRN-004", "LIQ-005", "LIQ-008", "LIQ-009", "ADL-003", "INV-009",
                  "INV-022"],
           statement=_STATEMENT,
           premises=("H long P's tier-2 cap + 1 lot on P (isolated, tier 3, margin 8 % of notional on price row 3, 2 % "
                     "on price row 4), S short P's tier-1 cap on P (isolated, 10 %), X cross short H's size of P at 19,700 "
                     "and long Q's tier-2 cap + 1 lot of Q (tier 3) at 1,000 (Q's mark, fixed) sharing one balance, D no "
                     "position; entries P 20,000 and Q 1,000; H's, S's and D's cash any whole amount >= 0; one bid and one "
                     "ask level on P of S's size; two mark events on P, the second one second after 16:00 HKT: price row 3 "
                     "of WideScenario.PRICES (marks 0.95 and 1.05 x entry, bid 0.94, ask 1.06) with X's cash 55,336, 66,000 "
                     "or 77,115 whole units, price row 4 (marks 1.2 and 0.8 x entry, bid 0.95, ask 1.25) with X's cash "
                     "145,741, 157,000 or 168,060, each with the fund's opening balance 0, 1,000, 80,000 or 10,000,000 "
                     "whole units (row constants): rows {rows} of TwoCandidateScenario.GRID").format(
               rows=", ".join(map(str, TwoCandidateScenario.H_ROWS))),
           scope=Scope.BOUNDED, limit_seconds=WideScenario.LIMIT, per_instrument=False,
           applies=lambda p, i: two_candidate_instruments(p) is not None,
           applies_note="needs two linear instruments in one currency, both with at least 3 tiers, partial liquidation "
                        "and the drawdown trigger")(
    _two_candidate_body)


class QOnlyScenario(WideScenario):
    """The wide domain with an account Z whose cross group holds only Q (OBL-INV-025i): cross long
    100,000 lots of Q at 1,100 with no cash, so at Q's fixed mark 1,000 its cross equity is below zero
    and it is liquidatable from the start.  The events are marks on P only: TRN-001's step 4 takes the
    cross accounts with a position on P, so nothing of this event may touch Z (the claim: an account
    with no position on P that ADL did not touch is unchanged), and Z is left liquidatable -- until
    an event of Q, which this domain has none of (so INV-025's "no cross account left liquidatable"
    is asserted for the accounts with a position on P, or touched by ADL).  The rows are those of
    OBL-INV-025g."""

    I_ROWS = CrossOnlyScenario.G_ROWS

    def extra_accounts(self) -> tuple[Account, ...]:
        return (Account("Z", ((self.code, 0),),
                        (Position(self.q.id, Side.LONG, self.x_size_q, self.ENTRY_XQ, MarginMode.CROSS, 0),)),)


_q_only_body = _rows_body(QOnlyScenario, wide_instruments, QOnlyScenario.I_ROWS)


obligation("OBL-INV-025i", "wide bounded whole loop with a liquidatable cross account that holds only Q: an event on P "
           "leaves it as it is, through process_event",
           rules=["INV-025", "TRN-001", "TRN-002", "TRN-008", "LIQ-008", "INV-009", "INV-022"],
           statement=_STATEMENT + "; an account with no position on P that ADL did not touch ends every event with the "
                     "same balance and positions (TRN-001: step 4 takes the cross accounts with a position on P)",
           premises=_PREMISES.format(h="tier-2 cap + 1 lot", s="P's tier-1 cap",
                                     rows=", ".join(map(str, QOnlyScenario.I_ROWS)))
           + "; and Z: cross, long 100,000 lots of Q at 1,100 (Q's mark 1,000), no cash, no other position: liquidatable "
             "from the start",
           scope=Scope.BOUNDED, limit_seconds=WideScenario.LIMIT, per_instrument=False,
           applies=lambda p, i: wide_instruments(p) is not None,
           applies_note="needs two linear instruments in one currency, partial liquidation and the drawdown trigger")(
    _q_only_body)


def notional_partial_instrument(profile: Profile) -> Instrument | None:
    """The first linear instrument (by id) of a profile that allows partial liquidation and tiers
    by notional value, with at least 3 capped tiers: where a LIQ-005 step can close a whole
    position (one lot's value at the mark above the target tier's cap; OBL-TRN-004b)."""
    if profile.liquidation.partial is PartialRule.NONE:
        return None
    for i in sorted(profile.instruments.values(), key=lambda i: i.id):
        t = i.tier_table
        if (i.kind is ContractKind.LINEAR and t.basis is TierBasis.NOTIONAL and len(t.tiers) >= 4
                and all(x.cap is not None for x in t.tiers[:3])):
            return i
    return None


class NotionalScenario(WideScenario):
    """A cross account whose partial step closes its whole position (OBL-INV-025j), on a profile that
    tiers by notional value and allows partial liquidation (no shipped profile does; the
    binance+partial and bybit+partial variants).

    P is :func:`notional_partial_instrument`'s instrument, at an entry E where one lot is worth 1.2 x
    the tier-1 cap, or, where tier 3 is too narrow for several such lots, the middle of tier 3 (bybit
    BTCUSDT: 2,900,000 USDT, one lot; on binance BTCUSDT: a lot of 0.001 BTC, cap 50,000 USDT, so E = 60,000,000 USDT,
    a price no market shows: the only way a notional table lets a step close a position, since a
    step cuts to a whole number of lots under the target tier's cap).  X, cross, holds the fewest
    lots of P that lie in tier 3 (on binance 5 lots = 300,000 USDT, in (250,000, 1,000,000]) long
    at E, with a cash balance (a row constant) in the range where the first mark, 0.99 x E, makes its
    decision PARTIAL (TRN-003: X's only position is a candidate at tier 3); the step's target is tier
    1, whose cap is under one lot, so the step closes the position and the cross round ends with an
    empty group (the loop's early return).  S is short P's one lot isolated at E with 10 % (the ADL
    counterparty), D has no position; S's and D's cash are free whole amounts >= 0.  One bid and
    one ask level on P of X's size at 0.98 and 1.02 x E; two marks on P (0.99 x E, then 0.99 or
    0.9 x E one second after 16:00 HKT), the fund's opening balance 0 or 10,000,000 whole units.
    The claim is INV-025's (:meth:`WideScenario.claim`); among it, every position left has size > 0."""

    NAMES = ("cash S", "cash D")
    SECOND = (Fraction(99, 100), Fraction(90, 100))
    FUNDS_J = (0, 10_000_000)

    def __init__(self, profile: Profile, inst: Instrument) -> None:
        super().__init__(profile, (inst, inst))
        t = inst.tier_table.tiers
        lot, cv = inst.lot_size, inst.contract_value
        caps: tuple[Fraction, Fraction, Fraction] = (t[0].cap, t[1].cap, t[2].cap)  # type: ignore[assignment]  # tiers 1-3 are capped (notional_partial_instrument)
        one_lot = caps[0] * Fraction(6, 5)
        lots = (caps[1] / one_lot).__floor__() + 1
        if lots * one_lot > caps[2]:  # tier 3 too narrow for several such lots: one lot inside tier 3 (bybit)
            one_lot, lots = (max(caps[0], caps[1]) + caps[2]) / 2, 1
        self.ENTRY_P = (one_lot / (lot * cv) / inst.tick_size).__floor__() * inst.tick_size
        self.x_size_p = lots * lot
        if not t[1].cap < self.x_size_p * cv * self.ENTRY_P <= t[2].cap:  # type: ignore[operator]
            raise ValueError(f"{inst.id}: no tier-3 size for the notional scenario")
        self.s_size = lot
        # X's cash: every whole amount (in steps of 1/20,000 of the notional) whose decision at 0.99 x E is PARTIAL;
        # the two ends and the middle of that range are the rows
        scale = inst.settle_currency.scale
        notional = int(self.x_size_p * cv * self.ENTRY_P)
        partial = [c for c in range(0, notional, max(1, notional // 20000)) if self._decision(c * scale) == L.PARTIAL]
        if not partial:
            raise ValueError(f"{inst.id}: no cash at which the notional scenario's decision is PARTIAL")
        cash = (partial[0], partial[len(partial) // 2], partial[-1])
        self.GRID = tuple((m2, fund, c) for c in cash for m2 in self.SECOND for fund in self.FUNDS_J)
        self.J_ROWS = tuple(range(len(self.GRID)))

    def _decision(self, cash_units: int) -> Any:
        p, mark = self.p, self.ENTRY_P * Fraction(99, 100)
        ips = ((p, PositionTerms(1, self.x_size_p, self.ENTRY_P, 0)),)
        return L.decide_cross_action(ips, self.profile.margin, self.profile.liquidation, cash_units, (mark,))

    def run(self, values: dict[str, Any], terms: dict[str, Any] | None = None) -> dict[str, Any]:
        def x(n: str) -> Any:
            return sym(values[n], terms[n]) if terms is not None else values[n]

        R = concolic_rules() if terms is not None else RULES
        m2, fund, cash_x = self.GRID[values["price path"]]
        p, E, code, unit = self.p, self.ENTRY_P, self.code, self.p.settle_currency.scale
        accounts = [
            Account("S", ((code, x("cash S")),), (Position(p.id, Side.SHORT, self.s_size, E, MarginMode.ISOLATED,
                                                           int(self._notional(p, self.s_size, E) / 10)),)),
            Account("X", ((code, cash_x * unit),), (Position(p.id, Side.LONG, self.x_size_p, E, MarginMode.CROSS, 0),)),
            Account("D", ((code, x("cash D")),)),
        ]
        book = S.Book((Level(E * Fraction(98, 100), self.x_size_p),), (Level(E * Fraction(102, 100), self.x_size_p),))
        state = S.initial_state(self.profile, accounts, {p.id: E}, {p.id: book}, {self.fund.id: fund * unit},
                                start_ms=T0, R=R)
        return two_marks(state, p.id, (E * Fraction(99, 100), m2 * E), R)


def _notional_body(ctx: Context) -> Any:
    inst = notional_partial_instrument(ctx.profile)
    sc = NotionalScenario(ctx.profile, inst)  # type: ignore[arg-type]  # None only where the obligation does not apply
    return prove_by_paths(ctx, sc, sc.J_ROWS)


obligation("OBL-INV-025j", "bounded whole loop on a notional tier table with partial liquidation: a cross partial step "
           "that closes the whole position, through process_event",
           rules=["INV-025", "TRN-003", "TRN-004", "LIQ-005", "LIQ-008", "INV-009", "INV-022"],
           statement=_STATEMENT + "; in particular a cross position a step closes is removed (every position left has "
                     "size > 0) and the round ends with the empty group",
           premises=("P the first linear instrument on a notional tier table with at least 3 capped tiers, at an entry E where "
                     "one lot is worth 1.2 x the tier-1 cap (binance+partial BTCUSDT: E = 60,000,000 USDT); X cross long the "
                     "fewest lots of P in tier 3 (binance: 5) at E, its cash at the two ends and the middle of the range "
                     "where the decision at 0.99 x E is PARTIAL (row constants); S short 1 lot isolated at E with 10 %; D no "
                     "position; S's and D's cash any whole amount >= 0; one bid at 0.98 x E and one ask at 1.02 x E of X's "
                     "size; marks 0.99 x E, then 0.99 or 0.9 x E one second after 16:00 HKT; the fund's opening balance 0 "
                     "or 10,000,000 whole units (row constants): 12 rows"),
           scope=Scope.BOUNDED, limit_seconds=WideScenario.LIMIT, per_instrument=False,
           applies=lambda p, i: notional_partial_instrument(p) is not None,
           applies_note="needs a linear instrument on a notional tier table with 3 capped tiers and partial liquidation "
                        "(no shipped profile: the binance+partial and bybit+partial variants)")(
    _notional_body)
