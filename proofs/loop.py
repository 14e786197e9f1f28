"""Bounded multi-step obligations through the real step function (INV-024).

The body runs :func:`backstop.reference.step.process_event` itself -- the plumbing that loops over
accounts, hands takeovers to the engine, books the fund and deleverages -- on shadowed numbers
(:mod:`backstop.proofs.concolic`), explores every path of the plumbing over the bounded input
domain, and states the claim on each path's final terms.  The prover checks that the paths cover
the domain and proves the claim on each path.  A counterexample is an input: the replay runs
``process_event`` on it concretely.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any, Callable

import z3

from backstop.proofs.concolic import check_replay, concolic_rules, explore, shadow_of, sym
from backstop.proofs.kernel import SEED
from backstop.proofs.registry import Context, Inconclusive, Scope, obligation
from backstop.reference import fund as F
from backstop.reference import fundbook as FB
from backstop.reference import margin as M
from backstop.reference import liquidation as L
from backstop.reference import num
from backstop.reference import step as S
from backstop.reference.engine import Level
from backstop.reference.events import fund_key_of
from backstop.reference.profile import BalanceView, Profile
from backstop.reference.rules import RULES
from backstop.reference.types import Account, ContractKind, Instrument, MarginMode, Position, PositionTerms, Side

__all__ = ["loop_instrument", "LoopScenario", "MAX_PATHS"]

MAX_PATHS = 64   # per price path
# OBL-INV-024 is proved in this many parts (see part_rows).  1: whole.  The split into 8 (issue 14,
# C62) proved on okx, binance and bybit, but on okx+bpfee a part's case split came back unknown in
# CI under load (2026-12-01), so it is off until its per-part limits are measured on a quiet machine.
PARTS = 1
LIMIT = 300

# 2026-11-27 07:59:59.000 UTC: the first mark falls in one fund window, the second one second after
# 16:00:00 HKT (08:00 UTC), so the second event also runs the daily settlement (INS-002, INS-008).
T0 = 1_795_766_399_000
T1 = T0 + 500
T2 = T0 + 1_500


def loop_instrument(profile: Profile) -> Instrument | None:
    """The instrument of the bounded loop: the profile's first linear contract (by id)."""
    for i in sorted(profile.instruments.values(), key=lambda i: i.id):
        if i.kind is ContractKind.LINEAR:
            return i
    return None


class LoopScenario:
    """Four accounts on one linear instrument: A long 4 lots, B short 3 lots, C long 2 lots (all
    isolated, entry E = 20,000), D with no position; one bid and one ask level of 1 lot each; two
    mark events, the second after the daily settlement time.

    The variables are every account's cash and the fund's opening balance (any whole amounts
    >= 0), and the *price path*: an index into :attr:`GRID`, a finite table of marks, book prices
    and A's margin.  Prices are a table, not free variables, because a free price puts a variable
    in a divisor (the ENG-006 budget divides the fund by the loss per lot) and the solver's
    nonlinear integer arithmetic then answers ``unknown``; with the prices of one row fixed every
    term is linear in the money, and the solver decides it."""

    LIMIT, MAX_PATHS = LIMIT, MAX_PATHS
    # a feasibility check of the path exploration that the incremental solver has not answered
    # within 2,000,000 resource units (a second or two) is asked of a new solver, and so is every
    # later check of that row (concolic.explore): with the fund balance free the incremental
    # solver stalled on its floors under the ENG-004 cap and the average drawdown reference; on
    # the shipped profiles it answers every check within 800,000 units and is the faster one; a
    # renewed check asks new solvers in rounds from a fifth of this budget (concolic._ask_new: one
    # new solver stalled too on the close fee's floors, okx with bankruptcy_includes_close_fee;
    # there 2,000,000 against 5,000,000 halved the obligation, 108 s against 215 s, measured)
    FRESH_AFTER = 2_000_000
    LOTS = {"A": 4, "B": 3, "C": 2}
    SIDES = {"A": Side.LONG, "B": Side.SHORT, "C": Side.LONG}
    NAMES = ("cash A", "cash B", "cash C", "cash D", "fund")
    MARGIN_SHARE = {"B": Fraction(1, 10), "C": Fraction(1, 20)}
    # (A's margin share of its notional, mark 1, mark 2, bid, ask) as multiples of E
    GRID = tuple((ma, m1, m2, bid, ask)
                 for ma in (Fraction(2, 100), Fraction(8, 100))
                 for m1, m2 in ((Fraction(9, 10), Fraction(9, 10)), (Fraction(9, 10), Fraction(12, 10)),
                                (Fraction(8, 10), Fraction(11, 10)), (Fraction(12, 10), Fraction(8, 10)))
                 for bid, ask in ((Fraction(95, 100), Fraction(105, 100)), (Fraction(7, 10), Fraction(13, 10))))

    def __init__(self, profile: Profile, inst: Instrument) -> None:
        self.profile, self.inst = profile, inst
        self.entry = Fraction(20_000)
        for row in self.GRID:
            for f in row[1:]:
                if (f * self.entry / inst.tick_size).denominator != 1:
                    raise ValueError(f"{inst.id}: a loop price is not on the tick grid")
        self.fund = fund_key_of(inst)

    def _notional(self, a: str) -> Fraction:
        inst = self.inst
        return self.LOTS[a] * inst.lot_size * inst.contract_value * self.entry * inst.scale

    def declare(self, ctx: Context) -> dict[str, Any]:
        """The variables and their premises: money whole and >= 0; the row of the grid."""
        v: dict[str, Any] = {"price path": ctx.integer("price path")}
        ctx.assume(num.and_(v["price path"] >= 0, v["price path"] < len(self.GRID)))
        for n in self.NAMES:
            v[n] = ctx.money(n)
        return v

    def run(self, values: dict[str, Any], terms: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build the state and run both events through ``process_event``; with ``terms`` every
        input carries its Z3 shadow.  Returns the states after each event and the records."""
        def x(n: str) -> Any:
            return sym(values[n], terms[n]) if terms is not None else values[n]

        R = concolic_rules() if terms is not None else RULES  # the seam: rules passed in, nothing patched

        ma, m1, m2, bid, ask = self.GRID[values["price path"]]
        margins = {"A": ma, **self.MARGIN_SHARE}
        inst, code, E = self.inst, self.inst.settle_currency.code, self.entry
        accounts = [Account(a, ((code, x(f"cash {a}")),),
                            (Position(inst.id, self.SIDES[a], self.LOTS[a] * inst.lot_size, E,
                                      MarginMode.ISOLATED, int(self._notional(a) * margins[a])),)) for a in self.LOTS]
        accounts.append(Account("D", ((code, x("cash D")),)))
        book = S.Book((Level(bid * E, inst.lot_size),), (Level(ask * E, inst.lot_size),))
        state = S.initial_state(self.profile, accounts, {inst.id: self.entry}, {inst.id: book},
                                {self.fund.id: x("fund")}, start_ms=T0, R=R)
        states, records, marks = [state], [], []
        for t, mark in ((T1, m1 * E), (T2, m2 * E)):
            state, recs = S.process_event(state, S.MarkEvent(t, inst.id, mark), R)
            states.append(state)
            records.append(recs)
            marks.append(mark)
        return {"states": states, "records": records, "marks": marks}

    def equity(self, state: S.SimState, mark: Any, val: Any, symbolic: bool) -> Any:
        """Everything the venue's books hold, valued at ``mark``: cash, isolated margins and the
        unrealized PnL of every position, the fund's available balance, the engine's open
        remainders (entered at their takeover price), the venue's rounding dust and fees."""
        inst, code = self.inst, self.inst.settle_currency.code
        terms = shadow_of if symbolic else (lambda t: t)
        total: Any = 0
        for a in state.accounts:
            total = total + val(a.balance(code))
            for q in a.positions:
                total = total + val(q.margin) + M.compute_unrealized_pnl(inst, terms(q.terms()), mark)
        for r in state.remainders:
            total = total + M.compute_unrealized_pnl(inst, terms(PositionTerms(r.sign, r.size, r.price, 0)), mark)
        total = total + val(FB.available_balance(state.funds, self.fund, BalanceView.SETTLED_PLUS_PENDING))
        total = total + val(dict(state.dust).get(code, 0))
        return total + val(state.funds.ledger.balances.get((F.VENUE, code), 0))

    def claim(self, out: dict[str, Any], symbolic: bool) -> Any:
        """INV-024 on one run (terms when ``symbolic``, else concrete values)."""
        val: Callable[[Any], Any] = (lambda q: q.z if hasattr(q, "z") else q) if symbolic else (lambda q: q)
        p, inst, code = self.profile, self.inst, self.inst.settle_currency.code
        first = out["states"][0]
        before = {a.id: a for a in first.accounts}
        parts: list[Any] = []
        for k, (state, mark) in enumerate(zip(out["states"][1:], out["marks"]), start=1):
            settled = val(FB.settled_balance(state.funds, self.fund))
            available = val(FB.available_balance(state.funds, self.fund, BalanceView.SETTLED_PLUS_PENDING))
            parts += [settled >= 0, available >= 0]                                   # INV-009
            for acct in state.accounts:
                old = {q.side: q for q in before[acct.id].positions}
                for q in acct.positions:
                    if q.side not in old:                                           # no position is opened
                        return False
                    parts += [val(q.size) > 0, val(q.size) <= val(old[q.side].size),  # only reduced
                              val(q.margin) >= 0]                                    # INV-021
                    if q.margin_mode is MarginMode.ISOLATED:                         # LIQ-004: none left liquidatable
                        terms = shadow_of(q.terms()) if symbolic else q.terms()
                        parts.append(L.decide_action(inst, p.margin, p.liquidation, terms, val(mark)) == L.NONE)
            prev = out["states"][k - 1]
            book = prev.book(inst.id)
            taken: dict[tuple[str, Any], Any] = {}
            for r in out["records"][k - 1]:
                if r.kind != "engine fill":
                    continue
                levels = book.bids if r.get("side") == "sell" else book.asks   # ENG-001: a long is sold into the bids
                price = r.get("price")
                if all(price != lv.price for lv in levels):
                    return False
                key = (r.get("side"), price)
                taken[key] = taken.get(key, 0) + val(r.get("size"))
            for (side, price), size in taken.items():                           # never more than the level holds
                level = [lv for lv in (book.bids if side == "sell" else book.asks) if lv.price == price][0]
                parts.append(size <= val(level.size))
            fills = num.sum_(num.ite(r.get("side") == "sell", 1, -1) * val(r.get("size")) * (val(r.get("price")) - mark)
                             * inst.contract_value * inst.scale for r in out["records"][k - 1] if r.kind == "engine fill")
            parts.append(self.equity(state, mark, val, symbolic) - self.equity(prev, mark, val, symbolic) == fills)  # INV-022
            d = {a.id: a for a in state.accounts}["D"]
            parts.append(val(d.balance(code)) == val(before["D"].balance(code)))  # ADL-008: no socialized loss
            if d.positions:
                return False
        return num.and_(*parts)


@obligation("OBL-INV-024", "bounded whole loop: two mark events over four accounts through process_event",
            rules=["INV-024", "INV-009", "INV-021", "INV-022", "LIQ-004", "ENG-001", "ENG-006", "ADL-004", "ADL-008", "INS-002"],
            statement="after each event: the fund's settled and available balances >= 0; every position "
                      "only reduced (size > 0, <= its size before, same side, margin >= 0) and not liquidatable "
                      "at the event's mark; the account without a position keeps its balance; every engine fill is at "
                      "a price of the book's side that closes the position (bids for a long) and takes no more than "
                      "the level holds; and the venue's "
                      "books valued at the event's mark (cash, margins, unrealized PnL, the fund, the engine's "
                      "remainders, dust and fees) change by exactly the engine's fills against the book "
                      "(sum of side * size * (fill price - mark)): no money is created or lost",
            premises="A long 4 lots, B short 3, C long 2 (isolated, entry 20,000; B's margin 10 % and C's 5 % "
                     "of notional), D none; every cash balance and the fund's opening balance any whole amount "
                     ">= 0; the price path one of 16 rows (A's margin 2 % or 8 %, marks 0.8-1.2 x entry, one "
                     "bid and one ask level of 1 lot at 0.95/1.05 or 0.7/1.3 x entry); the second event one "
                     "second after 16:00 HKT",
            scope=Scope.BOUNDED, limit_seconds=LIMIT, per_instrument=False,
            applies=lambda p, i: loop_instrument(p) is not None,
            applies_note="needs a linear instrument",
            parts=PARTS, cover=lambda ctx: _loop_cover(ctx))
def _whole_loop(ctx: Context) -> Any:
    inst = loop_instrument(ctx.profile)
    sc = LoopScenario(ctx.profile, inst)  # type: ignore[arg-type]  # None only where the obligation does not apply (its `applies` asks loop_instrument)
    if ctx.part is None:
        return prove_by_paths(ctx, sc, range(len(sc.GRID)))
    return prove_by_paths(ctx, sc, part_rows(len(sc.GRID), PARTS)[ctx.part], restrict=True)


# The split of OBL-INV-024 (issue 14, C62): part k is the price rows k, k + PARTS, k + 2 * PARTS, ...
# of the grid; it is proved under the premises AND "price path is one of its rows" (the body
# assumes it, row_condition), and the prover checks that the parts' conditions are exhaustive under
# the premises (kernel.prove_cover), so the parts together prove the claim for every row.  Each row
# is explored on its own already (a fresh solver per row), so a part proves exactly the cases the
# whole obligation proves for its rows.


def part_rows(n_rows: int, parts: int) -> list[tuple[int, ...]]:
    return [tuple(range(k, n_rows, parts)) for k in range(parts)]


def row_condition(variables: dict[str, Any], rows: Any) -> Any:
    return z3.Or(*[variables["price path"] == g for g in rows])


def _loop_cover(ctx: Context) -> list[Any]:
    sc = LoopScenario(ctx.profile, loop_instrument(ctx.profile))  # type: ignore[arg-type]  # None only where the obligation does not apply (its `applies` asks loop_instrument)
    variables = sc.declare(ctx)
    return [row_condition(variables, rows) for rows in part_rows(len(sc.GRID), PARTS)]


def prove_by_paths(ctx: Context, sc: Any, rows: Any, restrict: bool = False) -> Any:
    """The body of a bounded whole-loop obligation over the price rows ``rows`` of scenario ``sc``
    (``declare``, ``run``, ``claim``): explore every path of the step function on each row, check
    each path's replay, and hand the prover one case per path.  With ``restrict`` the body assumes
    that the price path is one of ``rows`` (a part of a split obligation)."""
    variables = sc.declare(ctx)
    if restrict:
        if ctx.symbolic:
            ctx.assume(row_condition(variables, rows))
        else:
            ctx.assume(variables["price path"] in tuple(rows))
    if not ctx.symbolic:
        return sc.claim(sc.run(variables), symbolic=False)
    deadline = time.perf_counter() + 0.8 * sc.LIMIT
    premises = [p for p in ctx.premises if isinstance(p, z3.ExprRef)]
    parts = []
    for g in rows:
        row = variables["price path"] == g
        domain = premises + [row]
        paths, status = explore(variables, domain, lambda vals: sc.run(vals, variables),
                                seed=SEED, deadline=deadline, max_paths=sc.MAX_PATHS,
                                fresh_after=getattr(sc, "FRESH_AFTER", None))
        if status != "complete":
            raise Inconclusive(f"price path {g}: path exploration stopped after {len(paths)} paths: {status}")
        options = []
        for i, pt in enumerate(paths):
            claim = sc.claim(pt.result, symbolic=True)
            if sc.claim(sc.run(pt.witness), symbolic=False) is not True:
                # the input that drove this path already breaks the claim: hand the prover this path
                # alone, so that it finds (and replays) the counterexample without the rest
                return z3.Implies(z3.And(row, pt.condition), claim)
            # a second input of the path must run to what this run's terms predict (no value
            # escaped its shadow); a disagreement raises, and an error is never a pass
            check_replay(pt, variables, domain, sc.run, seed=SEED)
            options.append((f"path {i + 1}", pt.condition, claim))
        parts.append((f"price path {g}", row, options))
    ctx.partitioned_cases("path", parts)
    return True
