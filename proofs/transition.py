"""Obligations of the transition's own rules (TRN-*, spec/50-transition.md).

Each body calls the rule functions of :mod:`backstop.reference.transition` (and the rules they
compose) on Z3 terms.  Their composition inside ``process_event`` is proved by OBL-INV-024
(:mod:`backstop.proofs.loop`), which runs the step function itself.
"""

from __future__ import annotations

from typing import Any

from backstop.proofs.liquidation import LEVELS, PARTIAL_NOTE, _cross_setup, _engine_close, _partial_allowed, _setup
from backstop.proofs.registry import Context, Scope, obligation
from backstop.reference import adl as A
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference import transition as T
from backstop.reference.profile import PartialRule, PriceBasis
from backstop.reference.types import PositionTerms, TierBasis

__all__: list[str] = []

REMAINDERS = 3  # open remainders of one fund in the ADL-state obligation


def _once_per_currency(p: Any, i: Any) -> bool:
    return i is not None and i == next(j for j in p.instruments.values() if j.settle_currency == i.settle_currency)


@obligation("OBL-TRN-003", "a PARTIAL cross decision always reduces something, and only positions at tier 3 or above",
            rules=["TRN-003", "LIQ-008"],
            statement="candidate_i <=> partial allowed and tier_i >= 3 (at the margin's price); decide_cross_action = PARTIAL "
                      "=> some position is a candidate (so a PARTIAL round always takes a step)",
            premises="the cross positions of every instrument settled in this instrument's currency, on the lot grid and "
                     "within their tables; a balance >= 0; marks > 0",
            scope=Scope.MODULAR, applies=_once_per_currency, applies_note="once per settlement currency (on its first instrument)")
def _cross_candidates(ctx: Context) -> Any:
    rules, lrules = ctx.profile.margin, ctx.profile.liquidation
    ips, balance, marks = _cross_setup(ctx)
    action = ctx.observe("action", L.decide_cross_action(ips, rules, lrules, balance, marks))
    cands = [T.is_cross_partial_candidate(i, rules, lrules, p, m) for (i, p), m in zip(ips, marks)]
    claims = []
    for (i, p), m, c in zip(ips, marks, cands):
        price = m if rules.mm_price_basis is PriceBasis.MARK else p.entry
        allowed = lrules.partial is not PartialRule.NONE
        claims.append(c == num.and_(allowed, M.compute_tier_index(i, p.size, price) >= 3))
    claims.append(num.implies(action == L.PARTIAL, num.any_(cands)))
    return num.and_(*claims)


@obligation("OBL-TRN-004", "a cross round stays PARTIAL only when its steps are funded and rounds remain; its balance is LIQ-009's",
            rules=["TRN-004", "LIQ-008", "LIQ-009"],
            statement="round action = PARTIAL <=> decision = PARTIAL and funded and not the last round; NONE and FULL "
                      "decisions stand; a PARTIAL decision otherwise becomes FULL; the balance after applying the round's "
                      "steps one by one (balance + realized - fee each) is LIQ-009's round balance, and the round is funded "
                      "exactly when that balance is >= 0 (one that ends at 0 is taken); the round bound is 1 + max floor(tiers / 2) over the profile's instruments",
            premises="a decision NONE, PARTIAL or FULL; a balance >= 0; two steps with any whole realized PnL and fees >= 0",
            per_instrument=False)
def _cross_round(ctx: Context) -> Any:
    action = ctx.integer("decision")
    ctx.assume(num.and_(action >= L.NONE, action <= L.FULL))
    funded, last = ctx.integer("funded"), ctx.integer("last round")
    ctx.assume(num.and_(funded >= 0, funded <= 1, last >= 0, last <= 1))
    f, z = funded == 1, last == 1
    out = ctx.observe("round action", T.decide_cross_round(action, f, z))
    balance = ctx.money("balance")
    steps = []
    for k in range(2):
        realized, fee = ctx.integer(f"step{k}.realized"), ctx.money(f"step{k}.fee")
        steps.append(L.PartialStep(None, 0, 0, realized, fee, 0, 0, 0))  # type: ignore[arg-type]  # no position: the rule reads only the money fields
    b = balance
    for s in steps:
        b = T.compute_balance_after_step(b, s.realized_units, s.fee_units)
    round_balance = L.compute_cross_partial_balance(balance, tuple(steps), (True, True))
    funded_rule = L.is_cross_partial_funded(balance, tuple(steps), (True, True))
    insts = tuple(ctx.profile.instruments.values())
    bound_ok = T.max_cross_rounds(insts) == 1 + max(max(1, len(i.tier_table.tiers) // 2) for i in insts)  # LIQ-006's bound
    return num.and_((out == L.PARTIAL) == num.and_(action == L.PARTIAL, f, num.not_(z)),
                    num.implies(action != L.PARTIAL, out == action),
                    num.implies(action == L.PARTIAL, num.or_(out == L.PARTIAL, out == L.FULL)),
                    b == round_balance, funded_rule == (b >= 0), bound_ok)  # LIQ-008: a round that ends at 0 is taken


@obligation("OBL-TRN-004b", "the cross round bound: a candidate's step keeps a position, and no candidate is left by the last round",
            rules=["TRN-004", "TRN-003", "LIQ-005", "LIQ-006"],
            statement="for a cross candidate (TRN-003) the LIQ-005 step, taken with any margin share, leaves a position of size "
                      "<= the size before, and > 0 on a size-basis tier table (on a notional one a step can close the whole "
                      "position: at a mark where one lot's value is above the target tier's cap); a position stepped in every round while it is a candidate (a PARTIAL round "
                      "steps every candidate, TRN-003; a non-candidate's size and tier stay) is no candidate any more after "
                      "max_partial_steps rounds (LIQ-006's bound, <= max_cross_rounds - 1): so at the last round of "
                      "max_cross_rounds no decision is PARTIAL (OBL-TRN-003: PARTIAL needs a candidate), the last-round rule of "
                      "TRN-004 never fires (and, on a size-basis table, a cross group never empties in a PARTIAL round)",
            premises="a position on the lot grid within the tier table with any margin share (an integer, of either sign); a "
                     "mark price > 0",
            scope=Scope.BOUNDED, limit_seconds=60.0, applies=_partial_allowed, applies_note=PARTIAL_NOTE)
def _cross_round_bound(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, price = _setup(ctx)
    share = ctx.integer("margin share")
    size_basis = inst.tier_table.basis is TierBasis.SIZE
    terms = PositionTerms(pos.sign, pos.size, pos.entry, share)
    ctx.cases("tier", [(f"tier {t.index}", M.compute_tier_index(inst, pos.size, price) == t.index)
                       for t in inst.tier_table.tiers])
    claims = []
    cur = terms
    for k in range(L.max_partial_steps(inst)):
        cand = T.is_cross_partial_candidate(inst, rules, lrules, cur, mark)
        step = L.compute_partial_step(inst, rules, lrules, cur, mark)
        keeps = step.position.size > 0 if size_basis else True  # on a notional table one lot may not fit the target tier
        claims.append(num.implies(cand, num.and_(keeps, step.position.size <= cur.size)))
        cur = PositionTerms(cur.sign, num.ite(cand, step.position.size, cur.size), cur.entry, share)
    ctx.observe("size after the rounds", cur.size)
    claims.append(num.not_(T.is_cross_partial_candidate(inst, rules, lrules, cur, mark)))
    claims.append(L.max_partial_steps(inst) <= T.max_cross_rounds(tuple(ctx.profile.instruments.values())) - 1)
    return num.all_(claims)


@obligation("OBL-TRN-005", "no market order for a fund in the ADL state; a remainder is retried only when the market is open and (b) does not hold",
            rules=["TRN-005", "ADL-003"],
            statement="is_market_open(s) <=> not s; is_retry_allowed(s, b) <=> not s and not b",
            premises="any ADL state and any drawdown trigger value", per_instrument=False)
def _market(ctx: Context) -> Any:
    s, b = ctx.integer("in ADL state") == 1, ctx.integer("trigger b") == 1
    return num.and_(T.is_market_open(s) == num.not_(s),
                    T.is_retry_allowed(s, b) == num.and_(num.not_(s), num.not_(b)))


@obligation("OBL-TRN-006", "the ADL state after a check: entered by either trigger, kept while a remainder is open, left otherwise",
            rules=["TRN-006", "ADL-003", "ADL-002"],
            statement=f"for {REMAINDERS} remainders: state' = (a_1 or ... or a_n) or b or (state and sum of open sizes > 0); "
                      "in particular the fund is in the ADL state after any check at which it could not cover a remainder "
                      "(trigger (a): compute_remainder_uncovered > 0), and it leaves it when no trigger holds and nothing is open",
            premises=f"{REMAINDERS} remainders with sizes >= 0 and any uncovered amounts; any previous state and trigger (b)",
            per_instrument=False)
def _adl_state(ctx: Context) -> Any:
    was, b = ctx.integer("was active") == 1, ctx.integer("trigger b") == 1
    uncovered = [ctx.integer(f"r{k}.uncovered") for k in range(REMAINDERS)]
    sizes = [ctx.rational(f"r{k}.open size") for k in range(REMAINDERS)]
    for s in sizes:
        ctx.assume(s >= 0)
    a = tuple(A.is_fund_insufficient(u, 0) for u in uncovered)
    state = ctx.observe("state", T.compute_adl_state(was, a, b, tuple(sizes)))
    expected = num.or_(*[u > 0 for u in uncovered], b, num.and_(was, num.sum_(sizes) > 0))
    return num.and_(state == expected,
                    num.implies(num.or_(*[u > 0 for u in uncovered]), state),
                    num.implies(num.and_(num.not_(b), *[u <= 0 for u in uncovered], *[s == 0 for s in sizes]),
                                num.not_(state)))


@obligation("OBL-ENG-004b", "what an engine close posts to the fund is ENG-004's split: the fund's share, never more",
            rules=["ENG-004", "TRN-001"],
            statement="result posting + the fee posted to the fund (fee - venue share) = the fund's share of ENG-004; "
                      "result posting = result - fee - the user's share (ENG-004: 0 unless capped) for either fee receiver; "
                      "the venue's share is 0 or the whole fee; fund + venue + user = result",
            premises=f"a position taken over at a price > 0; {LEVELS} book levels", scope=Scope.BOUNDED)
def _posting(ctx: Context) -> Any:
    inst, lrules, c = _engine_close(ctx)
    posting = ctx.observe("posting", T.compute_fund_posting(c.fund_units, c.fee_units, c.venue_units))
    return num.and_(posting + (c.fee_units - c.venue_units) == c.fund_units,
                    posting == c.result_units - c.fee_units - c.user_units,
                    num.or_(c.venue_units == 0, c.venue_units == c.fee_units),
                    c.fund_units + c.venue_units + c.user_units == c.result_units)


@obligation("OBL-ENG-005b", "the residue of a partial step's realized PnL is in [0, 1) unit and goes to the venue",
            rules=["ENG-005", "LIQ-005"],
            statement="on a PARTIAL decision: 0 <= upl(reduced part at the mark) - realized units < 1, so the user is "
                      "credited the exact PnL rounded down and the venue's dust creates no unit",
            premises="a position on the lot grid within the tier table whose decision is PARTIAL; a mark price > 0",
            applies=_partial_allowed, applies_note=PARTIAL_NOTE)
def _partial_dust(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, _ = _setup(ctx)
    ctx.assume(L.decide_action(inst, rules, lrules, pos, mark) == L.PARTIAL)
    s = L.compute_partial_step(inst, rules, lrules, pos, mark)
    d = ctx.observe("dust", T.compute_partial_dust(inst, pos.sign, s.reduced, pos.entry, mark, s.realized_units))
    return num.and_(d >= 0, d < 1)


@obligation("OBL-LIQ-009c", "a full cross liquidation hands every position to the engine on its own side and size",
            rules=["LIQ-009", "LIQ-007"],
            statement="for every cross position of the currency: the takeover's sign and size are the position's; the "
                      "user's loss on it is its LIQ-009 share; the equity of the position with its share at the takeover "
                      "price is the engine's cash plus the fee to close charged there (value x close_fee_rate with "
                      "margin.bankruptcy_includes_close_fee, else 0), so the takeover creates and loses no money",
            premises="the cross positions of every instrument settled in this instrument's currency, on the lot grid and "
                     "within their tables; a balance >= 0; marks > 0",
            scope=Scope.MODULAR, applies=_once_per_currency, applies_note="once per settlement currency (on its first instrument)")
def _cross_takeover_sides(ctx: Context) -> Any:
    rules = ctx.profile.margin
    ips, balance, marks = _cross_setup(ctx)
    takeovers = L.compute_cross_takeovers(ips, rules, balance, marks)
    shares = L.compute_cross_full_shares(ips, rules, balance, marks)
    rate = rules.close_fee_rate if rules.bankruptcy_includes_close_fee else 0  # LIQ-002's option, as the spec states it
    return num.and_(*[num.and_(tk.sign == p.sign, tk.size == p.size, tk.user_loss_units == share,
                               tk.close_fee == M.compute_position_value(i, p.size, tk.price) * rate,
                               M.compute_equity(i, PositionTerms(p.sign, p.size, p.entry, share), tk.price)
                               == tk.cash + tk.close_fee)
                      for (i, p), tk, share in zip(ips, takeovers, shares)])


@obligation("OBL-LIQ-009d", "a full cross liquidation under water: every leg keeps a bankruptcy price while an up-side leg exists",
            rules=["LIQ-009", "LIQ-007", "LIQ-002"],
            statement="the full liquidation's shares sum to the balance exactly; under water (cross equity E <= -sum of the "
                      "values at the marks, some leg a linear long or an inverse short) each down-side leg's equity with its "
                      "share at its mark is the fee to close it there (value x close_fee_rate with "
                      "margin.bankruptcy_includes_close_fee, else 0) and its takeover is at the mark, each up-side leg's "
                      "equity times the up-side legs' summed value is (E - the down-side fees) times its value; otherwise "
                      "each leg's equity is E in proportion to its value (LIQ-009's shares); E <= -sum V only with an "
                      "up-side leg (every down-side leg's upl + value is its value at the entry, > 0), so every takeover "
                      "is at a bankruptcy price with engine cash 0",
            premises="the cross positions of every instrument settled in this instrument's currency, on the lot grid and "
                     "within their tables; a balance >= 0; marks > 0; the cross equity below the summed value at the marks "
                     "(every liquidatable account: its requirements are below that value)",
            scope=Scope.MODULAR, applies=_once_per_currency, applies_note="once per settlement currency (on its first instrument)")
def _cross_under_water(ctx: Context) -> Any:
    rules = ctx.profile.margin
    ips, balance, marks = _cross_setup(ctx)
    eq = L.compute_cross_equity(ips, balance, marks)
    values = [M.compute_position_value(i, p.size, m) for (i, p), m in zip(ips, marks)]
    total = num.sum_(values)
    ctx.assume(eq < total)
    shares = L.compute_cross_full_shares(ips, rules, balance, marks)
    takeovers = L.compute_cross_takeovers(ips, rules, balance, marks)
    rate = rules.close_fee_rate if rules.bankruptcy_includes_close_fee else 0  # LIQ-002's option, as the spec states it
    ups = [num.or_(num.and_(i.is_linear, p.sign > 0), num.and_(not i.is_linear, p.sign < 0)) for i, p in ips]  # restated
    up_total = num.sum_(num.ite(u, v, 0) for u, v in zip(ups, values))
    down_fees = num.sum_(num.ite(u, 0, v * rate) for u, v in zip(ups, values))
    deep = num.and_(num.any_(ups), eq <= -total)
    down_eq, up_eq, prop, held = [], [], [], []
    for (i, p), m, v, u, sh, tk in zip(ips, marks, values, ups, shares, takeovers):
        e = M.compute_equity(i, PositionTerms(p.sign, p.size, p.entry, sh), m)
        down_eq.append(num.implies(num.not_(u), num.and_(e == v * rate, tk.price == m)))
        up_eq.append(num.implies(u, e * up_total == (eq - down_fees) * v))
        prop.append(e * total == eq * v)
        held.append(num.and_(tk.defined, tk.cash == 0))
    for n, (_, p) in enumerate(ips):  # each leg's side, then each claim: one solver call each (together: unknown)
        ctx.cases(f"p{n} side", [("long", p.sign == 1), ("short", p.sign == -1)])
    ctx.cases("claim", [
        ("the shares sum to the balance", True,
         num.and_(num.sum_(shares) == balance, deep == L.is_cross_under_water(ips, balance, marks))),
        ("under water: the down-side legs", True, num.implies(deep, num.all_(down_eq))),
        ("under water: the up-side legs", True, num.implies(deep, num.all_(up_eq))),
        ("under water: every takeover at a bankruptcy price", True, num.implies(deep, num.all_(held))),
        ("otherwise: LIQ-009's proportional equity", True, num.implies(num.not_(deep), num.all_(prop))),
        ("under water needs an up-side leg (a balance >= 0)", True, num.implies(eq <= -total, num.any_(ups))),
        ("otherwise: every takeover at a bankruptcy price", True, num.implies(num.not_(deep), num.all_(held)))])
    return True
