"""Obligations of forced liquidation and the liquidation engine (LIQ-004..LIQ-009, ENG-001..ENG-005,
INV-021..INV-023).

Every body calls the reference functions of :mod:`backstop.reference.liquidation` and
:mod:`backstop.reference.engine` on symbolic variables.  Positions of a liquidation live on the lot
grid (``size = lots * lot_size`` for a whole number of lots); books are bounded to
:data:`LEVELS` symbolic levels (prices and sizes free), which is the bound of the engine proofs.
"""

from __future__ import annotations

from typing import Any

from backstop.reference import engine as E
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference import transition as T
from backstop.reference.profile import FeeReceiver, FundShare, PriceBasis
from backstop.reference.types import PositionTerms, TierBasis
from backstop.proofs.registry import Context, Scope, obligation

LEVELS = 3  # order-book levels in the bounded engine proofs


def _partial_allowed(p: Any, i: Any) -> bool:
    return p.liquidation.partial.value != "none" and i is not None and len(i.tier_table.tiers) >= 3


PARTIAL_NOTE = ("profiles that allow partial liquidation (liquidation.partial is not \"none\"), on instruments "
                "with at least 3 tiers")


def _position_on_grid(ctx: Context, prefix: str = "") -> PositionTerms:
    inst = ctx.instrument
    sign = ctx.sign(prefix + "sign")
    lots = ctx.integer(prefix + "lots")
    ctx.assume(lots >= 1)
    entry = ctx.price(prefix + "entry")
    margin = ctx.money(prefix + "margin")
    return PositionTerms(sign, lots * inst.lot_size, entry, margin)


def _setup(ctx: Context) -> tuple[Any, Any, Any, PositionTerms, Any, Any]:
    inst, rules, lrules = ctx.instrument, ctx.profile.margin, ctx.profile.liquidation
    pos = _position_on_grid(ctx)
    mark = ctx.price("mark")
    price = mark if rules.mm_price_basis is PriceBasis.MARK else pos.entry
    ctx.assume(M.is_within_tiers(inst, pos.size, price))
    return inst, rules, lrules, pos, mark, price


def _levels(ctx: Context, n: int = LEVELS) -> tuple[E.Level, ...]:
    out = []
    for j in range(n):
        p = ctx.price(f"level{j}.price")
        q = ctx.rational(f"level{j}.size")
        ctx.assume(q >= 0)
        out.append(E.Level(p, q))
    return tuple(out)


def _engine_close(ctx: Context) -> tuple[Any, Any, Any]:
    """A position of ``lots`` >= 1 lots on a free side, taken over at a free price > 0, closed by the
    engine against free book levels (ENG-001): the set-up of the ENG-003/ENG-004 obligations."""
    inst, lrules = ctx.instrument, ctx.profile.liquidation
    sign, p0 = ctx.sign(), ctx.price("takeover")
    lots = ctx.integer("lots")
    ctx.assume(lots >= 1)
    return inst, lrules, E.close_position(inst, lrules, sign, lots * inst.lot_size, p0, _levels(ctx))


# ---------------------------------------------------------------- LIQ-004 .. LIQ-006

@obligation("OBL-LIQ-004", "a healthy position is never liquidated, a liquidatable one always is, and partial only where allowed",
            rules=["LIQ-004", "LIQ-001"],
            statement="action = NONE <=> not liquidatable; action = PARTIAL => tier >= 3, equity > tier-1 requirement and the "
                      "profile allows partial liquidation; action = FULL => liquidatable and not partial-eligible; the tier-1 "
                      "requirement is value x tier-1 MMR - tier-1 deduction + close fee (0 under zero_equity)",
            premises="a position on the lot grid within the tier table; a mark price > 0")
def _decide(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, price = _setup(ctx)
    action = ctx.observe("action", L.decide_action(inst, rules, lrules, pos, mark))
    liq = ctx.observe("liquidatable", M.is_liquidatable(inst, rules, pos, mark))
    tier = ctx.observe("tier", M.compute_tier_index(inst, pos.size, price))
    eq = ctx.observe("equity", M.compute_equity(inst, pos, mark))
    # tier 1's requirement as the spec states it (value x tier-1 MMR - deduction + close fee; 0 under zero_equity)
    t1_tier = inst.tier_table.tiers[0]
    value = M.compute_position_value(inst, pos.size, price)
    want_t1 = 0 if rules.trigger.value == "zero_equity" else \
        value * t1_tier.mmr - t1_tier.mm_deduction + M.compute_close_fee(inst, rules, pos, mark)
    t1_code = ctx.observe("tier-1 requirement", L.compute_tier_one_requirement(inst, rules, pos, mark))
    t1 = want_t1
    allowed = lrules.partial.value != "none"
    return num.and_(t1_code == want_t1, (action == L.NONE) == num.not_(liq),
                    num.or_(action == L.NONE, action == L.PARTIAL, action == L.FULL),
                    num.implies(action == L.PARTIAL, num.and_(allowed, tier >= 3, eq > t1)),
                    num.implies(action == L.FULL, num.and_(liq, num.not_(num.and_(allowed, tier >= 3, eq > t1)))))


@obligation("OBL-LIQ-005", "a partial step lowers the tier to its target and reduces no more than needed",
            rules=["LIQ-005", "NUM-002"],
            statement="on a PARTIAL decision: tier_after <= target (two below, or 1); one lot more would be above the target "
                      "tier; on a size-basis table tier_after = target exactly; 0 < reduced <= size; the rest keeps its side and "
                      "entry; the reduced part is handed over at the mark",
            premises="a position on the lot grid within the tier table whose decision is PARTIAL; a mark price > 0",
            applies=_partial_allowed, applies_note=PARTIAL_NOTE)
def _partial_step(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, price = _setup(ctx)
    ctx.assume(L.decide_action(inst, rules, lrules, pos, mark) == L.PARTIAL)
    step = L.compute_partial_step(inst, rules, lrules, pos, mark)
    ctx.observe("tier before", step.tier_before)
    ctx.observe("tier after", step.tier_after)
    ctx.observe("reduced", step.reduced)
    # the target as the spec states it (LIQ-005), not as the code computes it
    target = 1 if lrules.partial.value == "to_tier_one" else num.max_(1, step.tier_before - 2)
    new = step.position.size
    one_more = M.compute_tier_index(inst, new + inst.lot_size, price)
    exact = step.tier_after == target if inst.tier_table.basis is TierBasis.SIZE else True
    return num.and_(step.tier_after <= target, one_more > target, exact,
                    step.reduced > 0, step.reduced <= pos.size, new >= 0,
                    step.position.sign == pos.sign, step.position.entry == pos.entry, step.price == mark)


@obligation("OBL-LIQ-005b", "a partial reduction is on the lot grid (the reduced size is a whole number of lots)",
            rules=["LIQ-005"],
            statement="on a PARTIAL decision: reduced / lot_size is an integer",
            premises="a position on the lot grid within the tier table whose decision is PARTIAL; a mark price > 0",
            applies=_partial_allowed, applies_note=PARTIAL_NOTE)
def _partial_grid(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, _ = _setup(ctx)
    ctx.assume(L.decide_action(inst, rules, lrules, pos, mark) == L.PARTIAL)
    step = L.compute_partial_step(inst, rules, lrules, pos, mark)
    price = mark if rules.mm_price_basis is PriceBasis.MARK else pos.entry
    grid_cap = L.compute_max_size_in_tier(inst, L.compute_partial_target_tier(lrules, step.tier_before), price)
    ctx.cases("new size", [("the whole size fits", pos.size <= grid_cap), ("cut to the tier's grid cap", pos.size > grid_cap)])
    q = ctx.observe("reduced lots", num.div(step.reduced, inst.lot_size))
    return num.floor(q) == q


@obligation("OBL-LIQ-006", "the partial loop ends, within its bound, healthy or in a full liquidation",
            rules=["LIQ-006", "LIQ-004", "LIQ-005"],
            statement="after max_partial_steps iterations the decision is NONE or FULL, never PARTIAL (each step lowers the "
                      "tier: OBL-LIQ-005; NONE means healthy: OBL-LIQ-004); the loop never grows the position; the step count is "
                      ">= 0, and >= 1 when the position was reduced",
            premises="a position on the lot grid within the tier table; a mark price > 0",
            scope=Scope.BOUNDED, limit_seconds=60.0)
def _loop(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, price = _setup(ctx)
    out = L.run_liquidation(inst, rules, lrules, pos, mark)
    ctx.cases("tier", [(f"tier {t.index}", M.compute_tier_index(inst, pos.size, price) == t.index)
                       for t in inst.tier_table.tiers])
    actives = [a for a, _ in out.steps]
    ctx.cases("steps", [(f"{k} step(s)", num.and_(*actives[:k], *[num.not_(a) for a in actives[k:k + 1]]))
                        for k in range(len(actives) + 1)])
    ctx.observe("final action", out.action)
    ctx.observe("steps", out.step_count)
    ctx.observe("final size", out.position.size)
    claims = [out.action != L.PARTIAL, out.step_count <= L.max_partial_steps(inst), out.step_count >= 0,
              num.implies(out.position.size < pos.size, out.step_count >= 1),
              out.position.size <= pos.size, out.position.size >= 0]
    return num.all_(claims)


@obligation("OBL-LIQ-006b", "one turn of the loop: a step is taken exactly on a PARTIAL decision, and its result is carried on",
            rules=["LIQ-006", "LIQ-004", "LIQ-005"],
            statement="for a position at tier 4 or below (one step at most under two_tiers): the first iteration is active "
                      "<=> the decision is PARTIAL; the outcome is that step's position (size, margin) when active, else the "
                      "position itself; side and entry never change; the step count is 1 or 0 accordingly",
            premises="a position on the lot grid within the tier table, at tier 4 or below; a mark price > 0",
            scope=Scope.BOUNDED)
def _loop_turn(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, price = _setup(ctx)
    ctx.assume(M.compute_tier_index(inst, pos.size, price) <= 4)
    out = L.run_liquidation(inst, rules, lrules, pos, mark)
    (active, step), *_ = out.steps
    first = L.decide_action(inst, rules, lrules, pos, mark)
    ctx.observe("first decision", first)
    ctx.observe("steps", out.step_count)
    want_size = num.ite(active, step.position.size, pos.size)
    want_margin = num.ite(active, step.position.margin, pos.margin)
    ctx.cases("first turn", [("a step", first == L.PARTIAL), ("no step", first != L.PARTIAL)])
    return num.and_(active == (first == L.PARTIAL), out.position.size == want_size, out.position.margin == want_margin,
                    out.position.sign == pos.sign, out.position.entry == pos.entry,
                    out.step_count == num.ite(active, 1, 0))


# ---------------------------------------------------------------- LIQ-007 user loss

def _bp_fee(rules: Any) -> Any:
    """The rate of the fee to close the bankruptcy price leaves, as the spec states it (LIQ-002):
    ``close_fee_rate`` with ``margin.bankruptcy_includes_close_fee``, else 0."""
    return rules.close_fee_rate if rules.bankruptcy_includes_close_fee else 0


@obligation("OBL-LIQ-007", "full liquidation: a liquidatable position always has a bankruptcy price, and the takeover is there",
            rules=["LIQ-007", "LIQ-002"],
            statement="decision FULL => the takeover is at exactly the bankruptcy price with no cash; where no bankruptcy "
                      "price exists (only when MM is valued at entry: a position whose margin covers its value), at the mark "
                      "with the equity there less the fee to close (>= 0) as cash; the fee to close charged is "
                      "value(takeover price) x close_fee_rate with margin.bankruptcy_includes_close_fee (else 0), rounded "
                      "down to units by less than one; either way the user's loss is the margin",
            premises="a position on the lot grid within the tier table whose decision is FULL; a mark price > 0")
def _full(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, _ = _setup(ctx)
    ctx.split_sign(pos)
    ctx.assume(L.decide_action(inst, rules, lrules, pos, mark) == L.FULL)
    t = L.compute_full_takeover(inst, rules, pos, mark)
    bp = M.compute_bankruptcy_price(inst, rules, pos)
    ctx.observe("takeover price", t.price)
    ctx.observe("close fee", t.close_fee)
    fee = M.compute_position_value(inst, pos.size, t.price) * _bp_fee(rules)
    at_bp = num.and_(t.cash == 0, t.price == bp.value)
    at_mark = num.and_(t.price == mark, t.cash == M.compute_equity(inst, pos, mark) - fee, t.cash >= 0,
                       t.cash_units <= t.cash, t.cash < t.cash_units + 1)
    fee_ok = num.and_(t.close_fee == fee, t.close_fee_units <= t.close_fee, t.close_fee < t.close_fee_units + 1,
                      t.close_fee_units >= 0)
    exists = True if rules.mm_price_basis is PriceBasis.MARK else bp.defined  # at mark, bp always exists
    return num.and_(num.implies(exists, bp.defined), num.ite(bp.defined, at_bp, at_mark), fee_ok,
                    t.user_loss_units == pos.margin)


@obligation("OBL-INV-021", "taken over at the bankruptcy price, the user loses exactly the margin, never more",
            rules=["INV-021", "LIQ-007", "MRG-008"],
            statement="bp defined => upl(takeover price) - close fee = -margin exactly (the close fee is 0 without "
                      "margin.bankruptcy_includes_close_fee), user_loss(takeover price, fee units) = margin and "
                      "realized(takeover price) - fee units = -margin",
            premises="a position on the lot grid that can go bankrupt; a mark price > 0")
def _full_loss(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, _ = _setup(ctx)
    ctx.split_sign(pos)
    t = L.compute_full_takeover(inst, rules, pos, mark)
    ctx.assume(t.defined)
    ctx.observe("takeover price", t.price)
    ctx.observe("close fee", t.close_fee)
    loss = ctx.observe("user loss", L.compute_user_loss_units(inst, pos, t.price, t.close_fee_units))
    return num.and_(loss == pos.margin, M.compute_unrealized_pnl(inst, pos, t.price) - t.close_fee == -pos.margin,
                    M.compute_realized_pnl_units(inst, pos, t.price) - t.close_fee_units == -pos.margin)


def _partial_share_covers_loss(ctx: Context, inst: Any, pos: PositionTerms, mark: Any, s: Any) -> Any:
    """The exact fact behind LIQ-005's bound: the reduced part's PnL at the mark plus its margin share
    (exact) is >= 0 -- the reduced part's equity, ``equity * reduced / size``, is not negative."""
    part = PositionTerms(pos.sign, s.reduced, pos.entry, 0)
    share = num.div(pos.margin * s.reduced, pos.size)
    return num.and_(M.compute_unrealized_pnl(inst, part, mark) + share >= 0, share <= pos.margin)


@obligation("OBL-LIQ-007c", "the reduced part of a partial step is not under water (its equity share is >= 0)",
            rules=["LIQ-005", "INV-021"],
            statement="on a PARTIAL decision: upl(reduced part, mark) + margin * reduced / size >= 0 and "
                      "margin * reduced / size <= margin (exact); the share is rounded up, by less than one unit, never above the margin",
            premises="a position on the lot grid within the tier table whose decision is PARTIAL; a mark price > 0",
            applies=_partial_allowed, applies_note=PARTIAL_NOTE)
def _partial_equity_share(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, _ = _setup(ctx)
    ctx.assume(L.decide_action(inst, rules, lrules, pos, mark) == L.PARTIAL)
    s = L.compute_partial_step(inst, rules, lrules, pos, mark)
    ctx.observe("reduced", s.reduced)
    exact_share = num.div(pos.margin * s.reduced, pos.size)
    return num.and_(_partial_share_covers_loss(ctx, inst, pos, mark, s),
                    s.margin_share_units >= num.min_(pos.margin, exact_share), s.margin_share_units <= pos.margin,
                    s.margin_share_units < exact_share + 1)


@obligation("OBL-LIQ-007b", "a partial step never costs the user more than the margin share of what it reduced",
            rules=["LIQ-005", "INV-021", "NUM-002"],
            statement="fee - realized <= min(margin, ceil(margin * reduced / size)); the remaining margin is >= 0 and is the "
                      "margin + realized - fee; 0 <= fee <= the close fee of the reduced part (MRG-006), charged in full when "
                      "the share and the PnL cover it",
            premises="a position on the lot grid within the tier table (any decision: on PARTIAL the next premise is "
                     "OBL-NUM-005); a mark price > 0; realized + margin share >= 0 (OBL-LIQ-007c's exact facts, "
                     "rounded by the kernel law OBL-NUM-005)")
def _partial_loss(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, _ = _setup(ctx)
    s = L.compute_partial_step(inst, rules, lrules, pos, mark)
    ctx.assume(s.realized_units + s.margin_share_units >= 0)
    ctx.observe("realized", s.realized_units)
    ctx.observe("fee", s.fee_units)
    ctx.observe("margin share", s.margin_share_units)
    full_fee = M.compute_close_fee_units(inst, rules, PositionTerms(pos.sign, s.reduced, pos.entry, 0), mark)
    return num.and_(s.fee_units - s.realized_units <= s.margin_share_units,
                    s.position.margin >= 0, s.fee_units >= 0, s.fee_units <= full_fee,
                    num.implies(s.margin_share_units + s.realized_units >= full_fee, s.fee_units == full_fee),
                    s.position.margin == pos.margin + s.realized_units - s.fee_units)


# ---------------------------------------------------------------- ENG-001 .. ENG-005

@obligation("OBL-ENG-001", "the engine never fills more than the book offers nor more than it holds; the rest stays open",
            rules=["ENG-001", "NUM-002"],
            statement="fills >= 0, each <= its level's size and on the lot grid; fills + remainder = size; remainder >= 0; "
                      "remainder > 0 => every level was taken to its last whole lot",
            premises=f"a size on the lot grid; {LEVELS} levels with free prices and sizes >= 0", scope=Scope.BOUNDED)
def _walk(ctx: Context) -> Any:
    inst = ctx.instrument
    lots = ctx.integer("lots")
    ctx.assume(lots >= 1)
    size = lots * inst.lot_size
    levels = _levels(ctx)
    fills, rem = E.walk_book(inst, size, levels)
    ctx.observe("remainder", rem)
    claims = [rem >= 0, num.sum_(f.size for f in fills) + rem == size]
    for j, (f, lv) in enumerate(zip(fills, levels)):
        n = ctx.integer(f"fill{j}.lots")
        ctx.assume(f.size == n * inst.lot_size)  # satisfiable iff the fill is on the lot grid
        claims += [f.size >= 0, f.size <= lv.size,
                   num.implies(rem > 0, f.size == num.floor_to_step(lv.size, inst.lot_size))]
    return num.all_(claims)


@obligation("OBL-ENG-006", "within a budget the engine never takes a deficit the budget cannot pay (inductive step)",
            rules=["ENG-006", "ENG-001", "INV-022"],
            statement="one level: pnl(fill) >= -left (the budget left stays >= 0, so by induction over the levels a close's "
                      "exact result is >= -budget and its rounded result too, the budget being whole); 0 <= fill <= what "
                      "ENG-001 would fill, and exactly that at a level at or better than the takeover price; at a worse level, the largest lot-grid "
                      "fill the budget covers; fill + remainder = size",
            premises="a size on the lot grid; a takeover price; a budget left >= 0 (any rational); one book level",
            scope=Scope.ALL)
def _budget(ctx: Context) -> Any:
    inst = ctx.instrument
    sign, p0 = ctx.sign(), ctx.price("takeover")
    lots = ctx.integer("lots")
    ctx.assume(lots >= 1)
    size = lots * inst.lot_size
    left = ctx.rational("budget left")
    ctx.assume(left >= 0)
    (level,) = _levels(ctx, 1)
    fills, rem = E.walk_book_within(inst, sign, p0, size, (level,), left)
    pnl = ctx.observe("pnl", E.compute_close_pnl(inst, sign, p0, fills))
    ctx.cases("side", [("long", sign == 1), ("short", sign == -1)])
    ctx.cases("level", [("worse", sign * (level.price - p0) < 0), ("at or better", sign * (level.price - p0) >= 0)])
    (f,) = fills
    plain = num.min_(size, num.floor_to_step(level.size, inst.lot_size))  # what ENG-001 would fill
    at_or_better = sign * (level.price - p0) >= 0
    unit_loss = -M.compute_unrealized_pnl(inst, PositionTerms(sign, 1, p0, 0), level.price)  # per contract
    return num.and_(pnl >= -left, f.size >= 0, f.size <= plain, f.size + rem == size,
                    num.implies(at_or_better, f.size == plain),
                    # the largest lot-grid fill the budget covers: one lot more would exceed it
                    num.implies(num.and_(num.not_(at_or_better), f.size < plain),
                                (f.size + inst.lot_size) * unit_loss > left))


@obligation("OBL-ENG-006b", "within a budget, two levels: the surplus of the first funds the second, and the budget holds",
            rules=["ENG-006", "INV-022"],
            statement="two levels, through close_position_within: the close's PnL is the engine position's (on its own "
                      "side) and is >= -budget (so is its rounded result, the budget being whole); fills + remainder = size",
            premises="a size on the lot grid; a takeover price; a budget >= 0; two book levels", scope=Scope.BOUNDED)
def _budget_two(ctx: Context) -> Any:
    inst = ctx.instrument
    sign, p0 = ctx.sign(), ctx.price("takeover")
    lots = ctx.integer("lots")
    ctx.assume(lots >= 1)
    size = lots * inst.lot_size
    budget = ctx.money("budget")
    levels = _levels(ctx, 2)
    c = E.close_position_within(inst, ctx.profile.liquidation, sign, size, p0, levels, budget)
    pnl = ctx.observe("pnl", E.compute_close_pnl(inst, sign, p0, c.fills))
    ctx.cases("side", [("long", sign == 1), ("short", sign == -1)])
    for j, lv in enumerate(levels):
        ctx.cases(f"level {j}", [("worse", sign * (lv.price - p0) < 0), ("at or better", sign * (lv.price - p0) >= 0)])
    return num.and_(pnl >= -budget, c.pnl == pnl, num.sum_(f.size for f in c.fills) + c.remainder == size)


@obligation("OBL-ENG-002", "a close is a surplus exactly when it fills at or better than the takeover price",
            rules=["ENG-002", "INV-022"],
            statement="one fill q > 0 at p: result >= 0 <=> sign*(p - takeover) >= 0; with several fills, all at or better "
                      "=> result >= 0 and all strictly worse (some size filled) => result < 0",
            premises=f"a takeover price > 0; {LEVELS} fills at prices > 0 of sizes >= 0")
def _surplus_sign(ctx: Context) -> Any:
    inst = ctx.instrument
    sign = ctx.sign()
    p0 = ctx.price("takeover")
    fills = []
    for j in range(LEVELS):
        q = ctx.rational(f"fill{j}.size")
        ctx.assume(q >= 0)
        fills.append(E.Fill(q, ctx.price(f"fill{j}.price")))
    ctx.cases("side", [("long", sign == 1), ("short", sign == -1)])
    one = (fills[0],)
    r1 = ctx.observe("result of fill 0 alone", E.compute_close_result_units(inst, sign, p0, one))
    r = ctx.observe("result", E.compute_close_result_units(inst, sign, p0, tuple(fills)))
    better = num.all_(sign * (f.price - p0) >= 0 for f in fills)
    worse = num.all_(sign * (f.price - p0) < 0 for f in fills)
    some = num.sum_(f.size for f in fills) > 0
    return num.and_(num.implies(fills[0].size > 0, (r1 >= 0) == (sign * (fills[0].price - p0) >= 0)),
                    num.implies(better, r >= 0), num.implies(num.and_(worse, some), r < 0))


@obligation("OBL-ENG-003", "the liquidation fee is paid only out of a surplus, and the close's money is split without loss",
            rules=["ENG-003", "ENG-004", "NUM-002"],
            statement="fee = the filled value x rate rounded up (by less than one unit), capped by max(result, 0); "
                      "fund + venue + user = result, user >= 0; dust = pnl - result in [0, 1); fee to the venue iff the profile says so",
            premises=f"a position taken over at a price > 0; {LEVELS} book levels", scope=Scope.BOUNDED)
def _fee(ctx: Context) -> Any:
    inst, lrules = ctx.instrument, ctx.profile.liquidation
    sign, p0 = ctx.sign(), ctx.price("takeover")
    lots = ctx.integer("lots")
    ctx.assume(lots >= 1)
    levels = _levels(ctx)
    c = E.close_position(inst, lrules, sign, lots * inst.lot_size, p0, levels)
    ctx.observe("result", c.result_units)
    ctx.observe("fee", c.fee_units)
    exact_fee = E.compute_filled_value(inst, c.fills) * lrules.liquidation_fee_rate
    venue_ok = (c.venue_units == 0) if lrules.fee_receiver is FeeReceiver.FUND else (c.venue_units == c.fee_units)
    return num.and_(c.fee_units >= 0, c.fee_units <= num.max_(c.result_units, 0),
                    c.fee_units >= num.min_(exact_fee, num.max_(c.result_units, 0)), c.fee_units < exact_fee + 1,
                    c.fund_units + c.venue_units + c.user_units == c.result_units, c.user_units >= 0,
                    c.dust >= 0, c.dust < 1, venue_ok)


@obligation("OBL-ENG-004c", "the fund keeps the share the profile allows; the rest of a surplus goes back to the user, never a deficit",
            rules=["ENG-004", "NUM-002"],
            statement='share = result - fee; kept = fund - fee to the fund; "all": kept = share, user = 0; '
                      '"capped_by_fee_rate": share > 0 => 0 <= kept <= min(share, filled value x rate) and '
                      '(kept = share or kept > filled value x rate - 1); share <= 0 => kept = share, user = 0',
            premises=f"a position taken over at a price > 0; {LEVELS} book levels", scope=Scope.BOUNDED)
def _fund_share(ctx: Context) -> Any:
    inst, lrules, c = _engine_close(ctx)
    share = ctx.observe("share", c.result_units - c.fee_units)
    kept = ctx.observe("kept", c.fund_units - (c.fee_units - c.venue_units))
    ctx.observe("user", c.user_units)
    cap = E.compute_filled_value(inst, c.fills) * lrules.fund_share_rate  # exact; the kept part is at most this
    capped = lrules.fund_share is FundShare.CAPPED_BY_FEE_RATE
    # the fund keeps no more than the exact cap nor the share, and either the whole share or the cap
    # less under one unit (the rounding is down, NUM-002)
    surplus_ok = num.ite(capped, num.and_(kept <= cap, kept <= share, kept >= 0,
                                          num.or_(kept == share, kept > cap - 1)),
                         kept == share)
    return num.and_(c.user_units >= 0, c.user_units == share - kept,
                    num.implies(share > 0, surplus_ok),
                    num.implies(share <= 0, num.and_(kept == share, c.user_units == 0)),
                    num.implies(num.not_(capped), c.user_units == 0))


@obligation("OBL-INV-022", "a full liquidation creates and loses no money: user + counterparties + fund + venue + dust + open remainder = 0",
            rules=["INV-022", "ENG-004", "ENG-005", "LIQ-007"],
            statement="-margin + surplus returned (user) + counterparties' PnL + fund + venue + dust + engine cash + close fee "
                      "(units to its receiver, its dust to the venue) - upl(remainder from entry to takeover) = 0, "
                      "exactly, rounding included; the close fee's dust is in [0, 1)",
            premises=f"a position on the lot grid within the tier table whose decision is FULL; {LEVELS} book levels",
            scope=Scope.BOUNDED)
def _conservation(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, _ = _setup(ctx)
    ctx.assume(L.decide_action(inst, rules, lrules, pos, mark) == L.FULL)
    t = L.compute_full_takeover(inst, rules, pos, mark)
    c = E.close_position(inst, lrules, t.sign, t.size, t.price, _levels(ctx))
    user = -t.user_loss_units
    cp = ctx.observe("counterparties", E.compute_counterparty_pnl(inst, pos.sign, pos.entry, c.fills))
    ctx.observe("fund", c.fund_units)
    ctx.observe("close fee", t.close_fee_units)
    fee_dust = T.compute_takeover_fee_dust(t.close_fee, t.close_fee_units)  # to the venue (ENG-005)
    carried = M.compute_unrealized_pnl(inst, PositionTerms(pos.sign, c.remainder, pos.entry, 0), t.price)
    return num.and_(user + c.user_units + cp + c.fund_units + c.venue_units + c.dust - carried + t.cash
                    + t.close_fee_units + fee_dust == 0, fee_dust >= 0, fee_dust < 1)


@obligation("OBL-INV-022b", "a partial step creates and loses no money",
            rules=["INV-022", "LIQ-005", "ENG-004", "ENG-005"],
            statement="user (realized - fee + surplus returned) + fee + counterparties + fund + venue + dust + user dust "
                      "- upl(remainder from entry to mark) = 0 exactly",
            premises=f"a position on the lot grid within the tier table whose decision is PARTIAL; {LEVELS} book levels",
            scope=Scope.BOUNDED,
            applies=_partial_allowed, applies_note=PARTIAL_NOTE)
def _partial_conservation(ctx: Context) -> Any:
    inst, rules, lrules, pos, mark, _ = _setup(ctx)
    ctx.assume(L.decide_action(inst, rules, lrules, pos, mark) == L.PARTIAL)
    s = L.compute_partial_step(inst, rules, lrules, pos, mark)
    c = E.close_position(inst, lrules, pos.sign, s.reduced, s.price, _levels(ctx))
    part = PositionTerms(pos.sign, s.reduced, pos.entry, 0)
    user_dust = M.compute_unrealized_pnl(inst, part, mark) - s.realized_units  # in [0, 1): to the venue
    cp = E.compute_counterparty_pnl(inst, pos.sign, pos.entry, c.fills)
    carried = M.compute_unrealized_pnl(inst, PositionTerms(pos.sign, c.remainder, pos.entry, 0), mark)
    user = s.position.margin - pos.margin  # what the user's isolated margin gained (negative: lost)
    return num.and_(user + c.user_units + s.fee_units + cp + c.fund_units + c.venue_units + c.dust + user_dust - carried == 0,
                    user_dust >= 0, user_dust < 1)


# ---------------------------------------------------------------- LIQ-008 / LIQ-009 cross margin

def _cross_instruments(ctx: Context) -> tuple[Any, ...]:
    inst = ctx.instrument
    code = inst.settle_currency.code
    return tuple(i for i in ctx.profile.instruments.values() if i.settle_currency.code == code)


def _cross_setup(ctx: Context) -> tuple[tuple[Any, ...], Any, tuple[Any, ...]]:
    rules = ctx.profile.margin
    ips, marks = [], []
    for n, inst in enumerate(_cross_instruments(ctx)):
        sign = ctx.sign(f"p{n}.sign")
        lots = ctx.integer(f"p{n}.lots")
        ctx.assume(lots >= 1)
        pos = PositionTerms(sign, lots * inst.lot_size, ctx.price(f"p{n}.entry"), 0)
        mark = ctx.price(f"p{n}.mark")
        price = mark if rules.mm_price_basis is PriceBasis.MARK else pos.entry
        ctx.assume(M.is_within_tiers(inst, pos.size, price))
        ips.append((inst, pos))
        marks.append(mark)
    balance = ctx.money("balance")
    return tuple(ips), balance, tuple(marks)


@obligation("OBL-LIQ-008", "cross margin: the account is liquidated exactly when its cross equity is at or below the summed requirements",
            rules=["LIQ-008", "LIQ-004"],
            statement="action = NONE <=> equity > sum of requirements; PARTIAL => some position at tier >= 3 and equity > "
                      "sum of tier-1 requirements; with one position the cross decision equals the isolated one "
                      "on the position carrying the balance as margin",
            premises="the cross positions of every instrument settled in this instrument's currency, on the lot grid "
                     "and within their tables; a balance >= 0; marks > 0",
            scope=Scope.MODULAR, per_instrument=True,
            applies=lambda p, i: i is not None and i == next(j for j in p.instruments.values()
                                                              if j.settle_currency == i.settle_currency),
            applies_note="once per settlement currency (on its first instrument)")
def _cross_decide(ctx: Context) -> Any:
    rules, lrules = ctx.profile.margin, ctx.profile.liquidation
    ips, balance, marks = _cross_setup(ctx)
    action = ctx.observe("action", L.decide_cross_action(ips, rules, lrules, balance, marks))
    eq = ctx.observe("cross equity", L.compute_cross_equity(ips, balance, marks))
    req = ctx.observe("cross requirement", L.compute_cross_requirement(ips, rules, marks))
    claims = [(action == L.NONE) == (eq > req)]
    if len(ips) == 1:
        (inst, p), = ips
        iso = PositionTerms(p.sign, p.size, p.entry, balance)
        claims.append(action == L.decide_action(inst, rules, lrules, iso, marks[0]))
    return num.all_(claims)


@obligation("OBL-INV-023", "cross liquidation takes only the liquidated currency's balance: shares sum to it, nothing else moves",
            rules=["INV-023", "LIQ-009"],
            statement="the margin shares sum to the balance exactly; each position's equity with its share is the cross equity "
                      "in proportion to its value; after a full cross liquidation the other currencies' balances are unchanged "
                      "and the liquidated one is 0",
            premises="the cross positions of one currency; an account with balances in two other currencies",
            scope=Scope.MODULAR, per_instrument=True,
            applies=lambda p, i: i is not None and i == next(j for j in p.instruments.values()
                                                              if j.settle_currency == i.settle_currency),
            applies_note="once per settlement currency (on its first instrument)")
def _cross_isolation(ctx: Context) -> Any:
    ips, balance, marks = _cross_setup(ctx)
    code = ctx.instrument.settle_currency.code
    other1, other2 = ctx.money("other balance 1"), ctx.money("other balance 2")
    balances = (("OTHER1", other1), (code, balance), ("OTHER2", other2))
    after = dict(L.apply_cross_liquidation(balances, code))
    shares = L.compute_cross_shares(ips, balance, marks)
    eq = L.compute_cross_equity(ips, balance, marks)
    values = [M.compute_position_value(i, p.size, m) for (i, p), m in zip(ips, marks)]
    total = num.sum_(values)
    claims = [num.sum_(shares) == balance, after["OTHER1"] == other1, after["OTHER2"] == other2, after[code] == 0]
    for (inst, p), m, sh, v in zip(ips, marks, shares, values):
        claims.append(M.compute_equity(inst, PositionTerms(p.sign, p.size, p.entry, sh), m) * total == eq * v)
    return num.all_(claims)


# ---------------------------------------------------------------- LIQ-010 cross liquidation price

def _cross_index(ctx: Context) -> int:
    return next(n for n, i in enumerate(_cross_instruments(ctx)) if i is ctx.instrument)


@obligation("OBL-LIQ-010", "the cross liquidation price of a position: there the cross trigger holds with equality",
            rules=["LIQ-010", "LIQ-008", "LIQ-003", "LIQ-002"],
            statement="with the other cross positions' marks fixed: LP_j defined => at mark_j = LP_j the cross equity equals "
                      "the summed requirements (LIQ-008's trigger holds, with equality); BP_j defined => at mark_j = BP_j "
                      "the cross equity is the fee to close position j there, value_j(BP_j) x close_fee_rate with "
                      "margin.bankruptcy_includes_close_fee (0 without it: the cross equity is zero)",
            premises="the cross positions of every instrument settled in this instrument's currency, on the lot grid and "
                      "within their tables (position j also at LP_j); a balance >= 0; marks > 0",
            scope=Scope.MODULAR, per_instrument=True)
def _cross_lp(ctx: Context) -> Any:
    rules = ctx.profile.margin
    ips, balance, marks = _cross_setup(ctx)
    j = _cross_index(ctx)
    inst, p = ips[j]
    lp = L.compute_cross_liquidation_price(ips, rules, balance, marks, j)
    bp = L.compute_cross_bankruptcy_price(ips, rules, balance, marks, j)
    ctx.observe("cross liquidation price", lp)
    ctx.observe("cross bankruptcy price", bp)
    ctx.assume(num.implies(lp.defined, M.is_within_tiers(inst, p.size, lp.value)))
    at_lp = marks[:j] + (num.ite(lp.defined, lp.value, marks[j]),) + marks[j + 1:]
    at_bp = marks[:j] + (num.ite(bp.defined, bp.value, marks[j]),) + marks[j + 1:]
    eq_lp = ctx.observe("cross equity at LP", L.compute_cross_equity(ips, balance, at_lp))
    req_lp = ctx.observe("cross requirement at LP", L.compute_cross_requirement(ips, rules, at_lp))
    fee_bp = M.compute_position_value(inst, p.size, at_bp[j]) * _bp_fee(rules)  # 0 without the option
    # the two prices' claims are proved one solver call each (two options that both always hold:
    # each case proves its own claim); together, on the inverse instrument with the option, one call
    # answered unknown at the limit while each alone takes well under a second more than before
    ctx.cases("price", [
        ("the cross liquidation price", True,
         num.implies(lp.defined, num.and_(eq_lp == req_lp, L.is_cross_liquidatable(ips, rules, balance, at_lp)))),
        ("the cross bankruptcy price", True,
         num.implies(bp.defined, L.compute_cross_equity(ips, balance, at_bp) == fee_bp))])
    return True


@obligation("OBL-LIQ-008c", "cross margin ratio: at or below the required ratio exactly when the account is liquidatable",
            rules=["LIQ-008", "MRG-007"],
            statement="margin ratio x summed value = cross equity; required ratio x summed value = summed requirement; "
                      "liquidatable <=> margin ratio <= required margin ratio",
            premises="the cross positions of every instrument settled in this instrument's currency, on the lot grid and "
                     "within their tables; a balance >= 0; marks > 0",
            scope=Scope.MODULAR, per_instrument=True,
            applies=lambda p, i: i is not None and i == next(j for j in p.instruments.values()
                                                              if j.settle_currency == i.settle_currency),
            applies_note="once per settlement currency (on its first instrument)")
def _cross_ratio(ctx: Context) -> Any:
    rules = ctx.profile.margin
    ips, balance, marks = _cross_setup(ctx)
    ratio = ctx.observe("cross margin ratio", L.compute_cross_margin_ratio(ips, balance, marks))
    req_ratio = ctx.observe("required ratio", L.compute_cross_required_margin_ratio(ips, rules, marks))
    total = num.sum_(M.compute_position_value(i, p.size, m) for (i, p), m in zip(ips, marks))
    return num.and_(ratio * total == L.compute_cross_equity(ips, balance, marks),
                    req_ratio * total == L.compute_cross_requirement(ips, rules, marks),
                    L.is_cross_liquidatable(ips, rules, balance, marks) == (ratio <= req_ratio))


@obligation("OBL-LIQ-008d", "an account with no cross position in a currency is never liquidated there",
            rules=["LIQ-008", "TRN-004"],
            statement="decide_cross_action on an empty group is NONE and is_cross_liquidatable false, whatever the balance "
                      "(a cross round that closed every position ends: TRN-004)",
            premises="no cross position; any balance (negative, zero or positive)",
            scope=Scope.MODULAR, per_instrument=False)
def _cross_empty(ctx: Context) -> Any:
    rules, lrules = ctx.profile.margin, ctx.profile.liquidation
    balance = ctx.money("balance", nonnegative=False)
    action = ctx.observe("action", L.decide_cross_action((), rules, lrules, balance, ()))
    return num.and_(action == L.NONE, num.not_(L.is_cross_liquidatable((), rules, balance, ())))


@obligation("OBL-LIQ-010b", "the margin a cross position stands on: the account's surplus over its requirement is that position's",
            rules=["LIQ-010", "LIQ-008"],
            statement="for any mark p of position j (the others' marks fixed): cross equity - cross requirement = "
                      "m_j + upl_j(p) - Req_j(p); m_j does not depend on p; alone, m_j is the balance",
            premises="the cross positions of every instrument settled in this instrument's currency, on the lot grid and "
                     "within their tables (position j also at p); a balance >= 0; marks > 0",
            scope=Scope.MODULAR, per_instrument=True)
def _cross_margin_of(ctx: Context) -> Any:
    rules = ctx.profile.margin
    ips, balance, marks = _cross_setup(ctx)
    j = _cross_index(ctx)
    inst, p = ips[j]
    other = ctx.price("p")
    price = other if rules.mm_price_basis is PriceBasis.MARK else p.entry
    ctx.assume(M.is_within_tiers(inst, p.size, price))
    at_p = marks[:j] + (other,) + marks[j + 1:]
    m = ctx.observe("margin of position j", L.compute_cross_margin_of(ips, rules, balance, marks, j))
    surplus = L.compute_cross_equity(ips, balance, at_p) - L.compute_cross_requirement(ips, rules, at_p)
    own = M.compute_unrealized_pnl(inst, p, other) - M.compute_liquidation_requirement(inst, rules, p, other)
    claims = [surplus == m + own, m == L.compute_cross_margin_of(ips, rules, balance, at_p, j)]
    if len(ips) == 1:
        claims.append(m == balance)
    return num.all_(claims)
