"""Obligations of auto-deleveraging (ADL-001..ADL-009, INV-015..INV-020).

Each body calls the rule functions of :mod:`backstop.reference.adl` on symbolic variables and
states the claim in an independent form (the stated reading of the trigger, the defining
identities of the scores, the greedy allocation's two-way exhaustion property, the value
balance of the ADL trade).  The allocation and conservation laws are stated MODULARLY -- one
named candidate against an abstract rest (its prefix, or the rest's totals, are symbolic) -- so
that they hold for any number of accounts; each also has a bounded check with three candidates.
"""

from __future__ import annotations

from typing import Any

from backstop.reference import adl as A
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.events import BalancePoint
import dataclasses

from backstop.reference.profile import AdlPrice, AdlRanking, DrawdownReference
from backstop.reference.types import PositionTerms
from backstop.proofs.registry import Context, Scope, obligation

HISTORY_BOUND = 4   # balance points in the bounded drawdown model
N_BOUNDED = 3       # candidates in the bounded allocation / conservation models


def _grid(ctx: Context, name: str, *, positive: bool = True) -> Any:
    """A multiple of the instrument's lot size: ``lot * k`` with ``k`` a whole number >= 1 (>= 0)."""
    k = ctx.integer(name + " (lots)")
    ctx.assume(k >= 1 if positive else k >= 0)
    return k * ctx.instrument.lot_size


def _on_grid(x: Any, lot: Any) -> Any:
    q = num.div(x, lot)
    return num.floor(q) == q


# ---------------------------------------------------------------- ADL-001 / ADL-002 / ADL-003

def _reading(ctx: Context, history: tuple[BalancePoint, ...], now: Any) -> Any:
    """The stated reading of seed 003's drawdown, written independently of the rule code:
    there is a balance in force at ``now`` (the last point at or before ``now``) and some balance
    of the window -- a point inside ``(now - W, now]`` or the last point at or before
    ``now - W`` -- that is positive and of which the current balance is at most ``1 - f``."""
    f = ctx.profile.adl.drawdown_fraction
    start = now - ctx.profile.adl.drawdown_window_seconds * 1000
    n = len(history)
    currents, members = [], []
    for i, p in enumerate(history):
        later = history[i + 1] if i + 1 < n else None
        last_by_now = True if later is None else later.time_ms > now
        last_by_start = True if later is None else later.time_ms > start
        currents.append((num.and_(p.time_ms <= now, last_by_now), p.balance))
        members.append(num.and_(p.time_ms <= now, num.or_(p.time_ms > start, last_by_start)))
    claims = []
    if ctx.profile.adl.drawdown_reference is DrawdownReference.AVERAGE:
        # the reference is the window's time-weighted average (its own laws: OBL-ADL-001b)
        has_avg, avg = A.compute_window_average(ctx.profile.adl, history, now)
        claims = [num.and_(ci, has_avg, avg > 0, cb <= (1 - f) * avg) for ci, cb in currents]
        return num.and_(f < 1, num.any_(claims))
    for ci, cb in currents:
        for mj, p in zip(members, history):
            claims.append(num.and_(ci, mj, p.balance > 0, cb <= (1 - f) * p.balance))
    return num.and_(f < 1, num.any_(claims))


def _history(ctx: Context, n: int, prefix: str = "") -> tuple[BalancePoint, ...]:
    pts = []
    for i in range(n):
        t = ctx.integer(f"{prefix}t{i}")
        b = ctx.money(f"{prefix}balance{i}")
        pts.append(BalancePoint(t, b))
    for a, b in zip(pts, pts[1:]):
        ctx.assume(a.time_ms <= b.time_ms)
    return tuple(pts)


@obligation("OBL-ADL-001", "the drawdown trigger is exactly the stated reading of seed 003 (bounded history)",
            rules=["ADL-001"],
            statement="for every prefix of a history of up to 4 points: drawdown(now) <=> f < 1 and the balance in force "
                      "at now is <= (1 - f) * some positive balance of the window [now - W, now] (points inside "
                      "(now - W, now], plus the last point at or before now - W); the peak is the largest window balance",
            premises="up to 4 balance points, times (ms) in non-decreasing order, balances >= 0; now any whole ms",
            scope=Scope.BOUNDED, per_instrument=False, limit_seconds=30,
            applies=lambda p, i: p.adl.drawdown_reference is DrawdownReference.PEAK,
            applies_note='profiles that measure the drawdown from the peak (adl.drawdown_reference = "peak"); '
                         "the average reading is OBL-ADL-001b's (proved on every profile)")
def _drawdown(ctx: Context) -> Any:
    rules = ctx.profile.adl
    hist = _history(ctx, HISTORY_BOUND)
    now = ctx.integer("now")
    claims = []
    for n in range(HISTORY_BOUND + 1):
        h = hist[:n]
        trig = A.is_drawdown_trigger(rules, h, now)
        claims.append(trig == _reading(ctx, h, now))
    has_peak, peak = A.compute_window_peak(rules, hist, now)
    ctx.observe("trigger (4 points)", A.is_drawdown_trigger(rules, hist, now))
    ctx.observe("peak", peak)
    ctx.observe("balance at now", A.compute_balance_at(hist, now)[1])
    start = now - rules.drawdown_window_seconds * 1000
    for i, p in enumerate(hist):
        later = hist[i + 1] if i + 1 < len(hist) else None
        member = num.and_(p.time_ms <= now, num.or_(p.time_ms > start, True if later is None else later.time_ms > start))
        claims.append(num.implies(member, num.and_(has_peak, p.balance <= peak)))
    return num.all_(claims)


AVERAGE_BOUND = 3   # balance points in the bounded model of the window average


@obligation("OBL-ADL-001b", "the window's time-weighted average lies between its lowest and highest balance; the average trigger compares with it",
            rules=["ADL-001"],
            statement="avg = the time-weighted average of the balance in force over [now - W, now]; a balance in force at now => "
                      "some window balance <= avg and some window balance >= avg (window balances as in OBL-ADL-001); "
                      'with drawdown_reference = "average": drawdown(now) <=> f < 1, a balance in force at now, avg > 0 and '
                      "balance(now) <= (1 - f) * avg; a history whose window balances are all b has avg = b",
            premises="up to 3 balance points, times (ms) in non-decreasing order, balances >= 0; now any whole ms",
            scope=Scope.BOUNDED, per_instrument=False, limit_seconds=60)
def _average(ctx: Context) -> Any:
    rules = dataclasses.replace(ctx.profile.adl, drawdown_reference=DrawdownReference.AVERAGE)
    hist = _history(ctx, AVERAGE_BOUND)
    now = ctx.integer("now")
    start = now - rules.drawdown_window_seconds * 1000
    claims = []
    for n in range(1, AVERAGE_BOUND + 1):
        h = hist[:n]
        has, avg = A.compute_window_average(rules, h, now)
        members = []
        for i, p in enumerate(h):
            later = h[i + 1] if i + 1 < n else None
            members.append(num.and_(p.time_ms <= now, num.or_(p.time_ms > start, True if later is None else later.time_ms > start)))
        below = num.any_([num.and_(m, p.balance <= avg) for m, p in zip(members, h)])
        above = num.any_([num.and_(m, p.balance >= avg) for m, p in zip(members, h)])
        b0 = h[0].balance
        flat = num.all_([num.implies(m, p.balance == b0) for m, p in zip(members, h)])
        _, current = A.compute_balance_at(h, now)
        f = rules.drawdown_fraction
        want = num.and_(f < 1, has, avg > 0, current <= (1 - f) * avg)
        claims.append(num.and_(num.implies(has, num.and_(below, above)),
                               num.implies(num.and_(has, flat), avg == b0),
                               A.is_drawdown_trigger(rules, h, now) == want))
    ctx.observe("average (3 points)", A.compute_window_average(rules, hist, now)[1])
    return num.all_(claims)


@obligation("OBL-INV-015", "ADL fires if and only if a trigger holds and a bankrupt remainder exists",
            rules=["INV-015", "ADL-002", "ADL-003"],
            statement="adl_fires <=> (uncovered > 0 or unplaced > 0 or drawdown(now)) and remainder > 0; "
                      "the ADL state continues iff a trigger holds or it was active with an open remainder",
            premises="a history of 2 points (non-decreasing times); any uncovered units, unplaced and remainder sizes",
            scope=Scope.BOUNDED, per_instrument=False, limit_seconds=30)
def _fires(ctx: Context) -> Any:
    rules = ctx.profile.adl
    hist = _history(ctx, 2)
    now = ctx.integer("now")
    uncovered = ctx.money("uncovered units", nonnegative=False)
    unplaced = ctx.rational("unplaced size")
    remainder = ctx.rational("remainder size")
    ctx.assume(unplaced >= 0)
    ctx.assume(remainder >= 0)
    fires = ctx.observe("fires", A.adl_fires(rules, hist, now, uncovered, unplaced, remainder))
    want = num.and_(num.or_(uncovered > 0, unplaced > 0, _reading(ctx, hist, now)), remainder > 0)
    trig_a = A.is_fund_insufficient(uncovered, unplaced)
    trig_b = A.is_drawdown_trigger(rules, hist, now)
    open_rem = ctx.rational("open remainder")
    ctx.assume(open_rem >= 0)
    cont_true = A.adl_state_continues(True, trig_a, trig_b, open_rem)
    cont_false = A.adl_state_continues(False, trig_a, trig_b, open_rem)
    ends = num.and_(num.not_(uncovered > 0), num.not_(unplaced > 0), num.not_(_reading(ctx, hist, now)))
    return num.and_(fires == want,
                    trig_a == num.or_(uncovered > 0, unplaced > 0),
                    cont_false == num.not_(ends),
                    cont_true == num.or_(num.not_(ends), open_rem > 0))


@obligation("OBL-ADL-002", "a remainder's uncovered amount is its deficit at the mark beyond what the fund can pay",
            rules=["ADL-002", "NUM-002"],
            statement="uncovered >= 0; uncovered = 0 <=> the fund covers the deficit of closing the remainder at the mark "
                      "(available >= deficit, the deficit rounded up); otherwise uncovered = deficit - available "
                      "and a mark at or better than the takeover price is never uncovered",
            premises="a remainder (either side, size > 0) taken over at a price > 0; a mark > 0; available >= 0 (whole units)")
def _uncovered(ctx: Context) -> Any:
    inst = ctx.instrument
    sign, size = ctx.sign(), ctx.size()
    bp, mark = ctx.price("takeover"), ctx.price("mark")
    avail = ctx.money("available")
    u = ctx.observe("uncovered", A.compute_remainder_uncovered(inst, sign, size, bp, mark, avail))
    ctx.cases("side", [("long", sign == 1), ("short", sign == -1)])
    loss = -M.compute_unrealized_pnl(inst, PositionTerms(sign, size, bp, 0), mark)  # the deficit, exact
    return num.and_(u >= 0, (u == 0) == (avail >= loss),
                    num.implies(u > 0, num.and_(u + avail >= loss, u + avail < loss + 1)),
                    num.implies(sign * (mark - bp) >= 0, u == 0))


# ---------------------------------------------------------------- ADL-004 scores

@obligation("OBL-ADL-004", "the ranking score is the profile's formula: PnL% x leverage (loss: / leverage), or Binance's PnL% x MM/equity",
            rules=["ADL-004"],
            statement="pnl_times_leverage: upl > 0 => score * V(entry) * equity = upl * V(mark) and score > 0; "
                      "upl <= 0 => score * V(entry) * V(mark) = upl * max(equity, 0) and score <= 0; "
                      "pnl_times_margin_ratio: score * max(margin, 1 coin) * equity = max(upl, 0) * MM when equity > 0, else 0",
            premises="a position within the tier table at mark and entry; a mark price > 0")
def _score(ctx: Context) -> Any:
    inst, mrules, rules = ctx.instrument, ctx.profile.margin, ctx.profile.adl
    pos = ctx.position()
    mark = ctx.price("mark")
    ctx.assume(M.is_within_tiers(inst, pos.size, mark))
    ctx.assume(M.is_within_tiers(inst, pos.size, pos.entry))
    score = ctx.observe("score", A.compute_adl_score(inst, mrules, rules, pos, mark))
    upl = ctx.observe("upl", M.compute_unrealized_pnl(inst, pos, mark))
    eq = ctx.observe("equity", M.compute_equity(inst, pos, mark))
    v_mark = M.compute_position_value(inst, pos.size, mark)
    v_entry = M.compute_position_value(inst, pos.size, pos.entry)
    ctx.cases("pnl", [("profit", upl > 0), ("no profit", upl <= 0)])
    ctx.cases("margin", [("margin > 0", pos.margin > 0), ("margin = 0", pos.margin == 0)])
    if rules.ranking is AdlRanking.PNL_TIMES_LEVERAGE:
        return num.and_(
            num.implies(upl > 0, num.and_(score * v_entry * eq == upl * v_mark, score > 0)),
            num.implies(upl <= 0, num.and_(score * v_entry * v_mark == upl * num.max_(eq, 0), score <= 0)))
    mm = M.compute_maintenance_margin(inst, mrules, pos, mark)
    base = num.max_(pos.margin, inst.scale)
    tier_price = mark if mrules.mm_price_basis.value == "mark" else pos.entry
    tier = M.compute_tier_index(inst, pos.size, tier_price)
    ctx.cases("tier", [(f"tier {t.index}", tier == t.index) for t in inst.tier_table.tiers])
    ctx.cases("base", [("margin >= 1 coin", pos.margin >= inst.scale), ("margin < 1 coin", pos.margin < inst.scale)])
    return num.and_(num.implies(eq > 0, score * base * eq == num.max_(upl, 0) * mm),
                    num.implies(eq <= 0, score == 0))


# ---------------------------------------------------------------- ADL-005 order and buckets

@obligation("OBL-ADL-005", "ADL order: higher score first, then smaller key; a strict total order",
            rules=["ADL-005"],
            statement="before(a, b) <=> s_a > s_b or (s_a = s_b and k_a < k_b); irreflexive, asymmetric, transitive, "
                      "and total on distinct keys",
            premises="three entries with symbolic scores and distinct whole-number keys",
            per_instrument=False)
def _order(ctx: Context) -> Any:
    sa, sb, sc = ctx.rational("score a"), ctx.rational("score b"), ctx.rational("score c")
    ka, kb, kc = ctx.integer("key a"), ctx.integer("key b"), ctx.integer("key c")
    ctx.assume(num.and_(ka != kb, kb != kc, ka != kc))
    ab, ba = A.is_ranked_before(sa, ka, sb, kb), A.is_ranked_before(sb, kb, sa, ka)
    bc, ac = A.is_ranked_before(sb, kb, sc, kc), A.is_ranked_before(sa, ka, sc, kc)
    ctx.observe("a before b", ab)
    return num.and_(ab == num.or_(sa > sb, num.and_(sa == sb, ka < kb)),
                    num.not_(A.is_ranked_before(sa, ka, sa, ka)),
                    num.not_(num.and_(ab, ba)), num.or_(ab, ba),
                    num.implies(num.and_(ab, bc), ac))


@obligation("OBL-ADL-005b", "the ADL indicator is the quintile of the rank: 5 for the first fifth, 1 for the last",
            rules=["ADL-005"],
            statement="0 <= i < n => bucket(i, n) in 1..5, bucket = b <=> (5 - b) * n <= 5 i < (6 - b) * n, "
                      "bucket(0, n) = 5, and bucket(i, n) >= bucket(i + 1, n)",
            premises="whole numbers n >= 1 and 0 <= i < n",
            per_instrument=False)
def _bucket(ctx: Context) -> Any:
    i, n = ctx.integer("index"), ctx.integer("count")
    ctx.assume(n >= 1)
    ctx.assume(i >= 0)
    ctx.assume(i < n)
    b = ctx.observe("bucket", A.compute_adl_bucket(i, n))
    b_next = A.compute_adl_bucket(i + 1, n)
    return num.and_(b >= 1, b <= 5, (5 - b) * n <= 5 * i, 5 * i < (6 - b) * n,
                    A.compute_adl_bucket(0, n) == 5, num.implies(i + 1 < n, b >= b_next))


# ---------------------------------------------------------------- ADL-006 allocation

@obligation("OBL-INV-016", "allocation, modular: one named position against the abstract prefix of those ranked before it",
            rules=["INV-016", "INV-017", "ADL-006"],
            statement="r = 0 unless the position is opposite-side, not the liquidated account's, size > 0; "
                      "0 <= r <= size, prefix + r <= R, r on the lot grid, and a candidate is either fully "
                      "reduced or exhausts the remainder (r = size or prefix + r = R). By induction over the ranked "
                      "list: total = min(R, candidates' sizes), and no later candidate is reduced while an earlier one keeps quantity",
            premises="R and the size (>= 0) on the lot grid (R >= 1 lot); the prefix P taken by earlier candidates on the grid, 0 <= P <= R; "
                      "any signs and whole-number account ids",
            scope=Scope.MODULAR)
def _alloc_modular(ctx: Context) -> Any:
    lot = ctx.instrument.lot_size
    R = _grid(ctx, "remainder")
    P = _grid(ctx, "prefix", positive=False)
    ctx.assume(P <= R)
    size = _grid(ctx, "size", positive=False)
    liq_sign, sign = ctx.sign("liquidated sign"), ctx.sign("sign")
    liq_acct, acct = ctx.integer("liquidated account"), ctx.integer("account")
    ok = ctx.observe("candidate", A.is_adl_candidate(liq_sign, liq_acct, sign, size, acct))
    r = ctx.observe("reduction", A.compute_adl_reduction(R, P, size, ok, lot))
    cand = num.and_(sign == -liq_sign, acct != liq_acct, size > 0)
    return num.and_(ok == cand,
                    num.implies(num.not_(cand), r == 0),
                    r >= 0, r <= size, P + r <= R, num.or_(r == 0, r == size, r == R - P),
                    num.implies(cand, num.or_(r == size, P + r == R)))


@obligation("OBL-INV-017", "allocation, bounded: three positions through allocate_adl",
            rules=["INV-016", "INV-017", "ADL-006"],
            statement="non-candidates get 0; 0 <= r_i <= size_i; sum r = min(R, sum of candidates' sizes); for i < j, "
                      "a candidate i left with quantity implies r_j = 0 (rank order respected)",
            premises="3 positions in ADL order with sizes on the lot grid, any signs and whole-number account ids; R >= 1 lot on the grid",
            scope=Scope.BOUNDED, limit_seconds=30)
def _alloc_bounded(ctx: Context) -> Any:
    lot = ctx.instrument.lot_size
    R = _grid(ctx, "remainder")
    liq_sign, liq_acct = ctx.sign("liquidated sign"), ctx.integer("liquidated account")
    sizes, flags, cands = [], [], []
    for i in range(N_BOUNDED):
        s, n, a = ctx.sign(f"sign{i}"), _grid(ctx, f"size{i}"), ctx.integer(f"account{i}")
        sizes.append(n)
        flags.append(A.is_adl_candidate(liq_sign, liq_acct, s, n, a))
        cands.append(num.and_(s == -liq_sign, a != liq_acct))
    rs = A.allocate_adl(R, tuple(sizes), tuple(flags), lot)
    for i, r in enumerate(rs):
        ctx.observe(f"r{i}", r)
    total = num.sum_(rs)
    cand_total = num.sum_(num.ite(c, n, 0) for c, n in zip(cands, sizes))
    claims = [total == num.min_(R, cand_total)]
    for i in range(N_BOUNDED):
        claims += [num.implies(num.not_(cands[i]), rs[i] == 0), rs[i] >= 0, rs[i] <= sizes[i]]
        for j in range(i + 1, N_BOUNDED):
            claims.append(num.implies(num.and_(cands[i], rs[i] < sizes[i]), rs[j] == 0))
    return num.all_(claims)


def _remainder_against_three(ctx: Context) -> tuple[Any, Any, Any, Any, Any, list[PositionTerms]]:
    """The bounded ADL domain of OBL-INV-019b and OBL-INV-026: a remainder (side symbolic, split by
    cases; R >= 1 lot), its bankruptcy price, the mark, the fund's available balance, and N_BOUNDED
    positions on the other side in ADL order (sizes on the lot grid, entries and margins any)."""
    liq = ctx.sign("liquidated sign")
    R = _grid(ctx, "remainder")
    bp, mark = ctx.price("bankruptcy price"), ctx.price("mark")
    avail = ctx.money("fund available")
    ctx.cases("side", [("remainder long", liq == 1), ("remainder short", liq == -1)])
    positions = [PositionTerms(-liq, _grid(ctx, f"size{i}"), ctx.price(f"entry{i}"), ctx.money(f"margin{i}"))
                 for i in range(N_BOUNDED)]
    return liq, R, bp, mark, avail, positions


@obligation("OBL-ADL-006", "the fill rule (C71): in profit at the mark, and not at a loss at the bankruptcy price when part of the remainder executes there",
            rules=["ADL-006", "INV-026"],
            statement="is_adl_fillable(s, e, mark, bp, at_bp) == (s*(mark - e) > 0 and (not at_bp or s*(bp - e) >= 0)): "
                      "the sign of a PnL, linear or inverse, is the sign of s*(price - entry)",
            premises="any side; entry, mark, bp > 0; at_bp either way",
            scope=Scope.MODULAR)
def _fill_rule(ctx: Context) -> Any:
    inst = ctx.instrument
    s, e = ctx.sign("sign"), ctx.price("entry")
    mark, bp = ctx.price("mark"), ctx.price("bankruptcy price")
    flag = ctx.integer("part at bankruptcy price (1 = yes)")
    ctx.assume(num.or_(flag == 0, flag == 1))
    at_bp = flag == 1
    ctx.cases("side", [("long", s == 1), ("short", s == -1)])
    ok = ctx.observe("fillable", A.is_adl_fillable(inst, s, e, mark, bp, at_bp))
    return ok == num.and_(s * (mark - e) > 0, num.or_(num.not_(at_bp), s * (bp - e) >= 0))


@obligation("OBL-ADL-006b", "where the remainder executes: part of it at the bankruptcy price iff ADL-007 puts less than all of it at the mark",
            rules=["ADL-006", "ADL-007"],
            statement="is_adl_filled_at_bankruptcy(R) == (q(R) < R), q(R) ADL-007's part of the whole remainder at the mark "
                      "(OBL-INV-020: the most lots whose deficit the fund's available balance pays); so always on a "
                      "bankruptcy-price profile, and never at the mark with no deficit (the mark at or better than bp for "
                      "the liquidated side)",
            premises="the remainder R >= 1 lot on the lot grid, either side; bp, mark > 0; fund available >= 0",
            scope=Scope.MODULAR)
def _where_it_executes(ctx: Context) -> Any:
    inst, rules = ctx.instrument, ctx.profile.adl
    liq, R, avail = ctx.sign("liquidated sign"), _grid(ctx, "remainder"), ctx.money("fund available")
    mark, bp = ctx.price("mark"), ctx.price("bankruptcy price")
    part = ctx.observe("part at bankruptcy price", A.is_adl_filled_at_bankruptcy(inst, rules, liq, R, bp, mark, avail))
    q = ctx.observe("at mark", A.compute_adl_mark_quantity(inst, rules, liq, R, bp, mark, avail))
    ctx.cases("side", [("long", liq == 1), ("short", liq == -1)])
    mode = rules.execution_price is AdlPrice.MARK
    return num.and_(part == (q < R),
                    num.implies(num.not_(mode), part),
                    num.implies(num.and_(mode, liq * (mark - bp) >= 0), num.not_(part)))


@obligation("OBL-INV-026", "ADL never lowers a counterparty's balance, bounded: a remainder against three positions through the fill rule and the chain",
            rules=["INV-026", "ADL-006", "ADL-007", "ADL-008"],
            statement="with the fill flags of is_adl_fillable (at_bp from is_adl_filled_at_bankruptcy on the whole remainder), "
                      "allocate, split mark/bankruptcy on the total reduced, settle: every realized PnL >= 0 and every "
                      "released margin >= 0, so no counterparty's balance falls; every filled position is in profit at the mark",
            premises="3 positions on the side opposite the remainder (other accounts) in ADL order, sizes on the lot grid, "
                      "entries and margins any; R >= 1 lot; bp, mark > 0; fund available >= 0",
            scope=Scope.BOUNDED, limit_seconds=60)
def _no_loss_bounded(ctx: Context) -> Any:
    inst, rules = ctx.instrument, ctx.profile.adl
    lot = inst.lot_size
    liq, R, bp, mark, avail, positions = _remainder_against_three(ctx)
    at_bp = A.is_adl_filled_at_bankruptcy(inst, rules, liq, R, bp, mark, avail)
    flags = tuple(A.is_adl_fillable(inst, p.sign, p.entry, mark, bp, at_bp) for p in positions)
    rs = A.allocate_adl(R, tuple(p.size for p in positions), flags, lot)
    pre = A.compute_adl_prefixes(rs)
    q = A.compute_adl_mark_quantity(inst, rules, liq, num.sum_(rs), bp, mark, avail)
    claims = []
    for i, (p, r, pf) in enumerate(zip(positions, rs, pre)):
        part = A.compute_adl_mark_part(q, pf, r)
        realized, released, _ = A.settle_adl_counterparty(inst, p, r, part, mark, bp)
        ctx.observe(f"realized{i}", realized)
        claims += [realized >= 0, released >= 0, num.implies(r > 0, p.sign * (mark - p.entry) > 0)]
    return num.all_(claims)


# ---------------------------------------------------------------- ADL-007 price, mark part, fund bound

@obligation("OBL-ADL-007", "execution price is the profile's; the mark part is the first contracts of the remainder in rank order",
            rules=["ADL-007"],
            statement="price = mark (execution_price mark) or bp (bankruptcy); for a counterparty holding contracts "
                      "(P, P + r] of the remainder: part = clamp(q - P, 0, r), so P + r <= q => part = r and P >= q => part = 0",
            premises="mark, bp > 0; q, P, r >= 0")
def _price(ctx: Context) -> Any:
    rules = ctx.profile.adl
    mark, bp = ctx.price("mark"), ctx.price("bankruptcy price")
    q, P, r = ctx.rational("mark quantity"), ctx.rational("prefix"), ctx.rational("reduction")
    ctx.assume(num.and_(q >= 0, P >= 0, r >= 0))
    price = ctx.observe("price", A.compute_adl_price(rules, mark, bp))
    part = ctx.observe("mark part", A.compute_adl_mark_part(q, P, r))
    want = mark if rules.execution_price is AdlPrice.MARK else bp
    return num.and_(price == want, part >= 0, part <= r,
                    num.implies(P + r <= q, part == r), num.implies(P >= q, part == 0),
                    num.implies(num.and_(P < q, q < P + r), part == q - P))


@obligation("OBL-INV-020", "the fund never goes negative through ADL: the part at mark is what the fund can pay, and no more",
            rules=["INV-020", "ADL-007", "ADL-009"],
            statement="0 <= q <= R (on the lot grid by NUM-001's floor_to_step), available + fund_result(q) >= 0; execution at bankruptcy => q = 0; "
                      "at mark with no deficit => q = R; at mark with q < R, one more lot at mark would overdraw the fund",
            premises="remainder R >= 1 lot on the grid, either side; bp, mark > 0; fund available balance >= 0 (units)")
def _fund_bound(ctx: Context) -> Any:
    inst, rules = ctx.instrument, ctx.profile.adl
    lot = inst.lot_size
    s = ctx.sign("liquidated sign")
    R = _grid(ctx, "remainder")
    bp, mark = ctx.price("bankruptcy price"), ctx.price("mark")
    avail = ctx.money("fund available")
    q = ctx.observe("at mark", A.compute_adl_mark_quantity(inst, rules, s, R, bp, mark, avail))
    ctx.cases("side", [("long", s == 1), ("short", s == -1)])
    ctx.cases("deficit", [("deficit", s * (mark - bp) < 0), ("no deficit", s * (mark - bp) >= 0)])
    ctx.cases("part", [("all at mark", q == R), ("part at mark", q < R)])
    fund = ctx.observe("fund result", A.compute_adl_fund_result(inst, s, q, bp, mark))
    deficit = s * (mark - bp) < 0
    one_more = M.compute_realized_pnl_units(inst, PositionTerms(s, q + lot, bp, 0), mark)
    mode = rules.execution_price is AdlPrice.MARK
    return num.and_(q >= 0, q <= R, avail + fund >= 0,
                    num.implies(num.not_(mode), q == 0),
                    num.implies(num.and_(mode, num.not_(deficit)), q == R),
                    num.implies(num.and_(mode, q < R), avail + one_more < 0))


# ---------------------------------------------------------------- ADL-008 counterparty settlement

@obligation("OBL-INV-018", "at the mark price a counterparty's equity is unchanged by ADL, up to the rounding of realized PnL",
            rules=["INV-018", "ADL-008", "MRG-008"],
            statement="with the whole reduction at mark: (realized + released + equity(new position)) - equity(old) in (-1, 0], "
                      "and realized = MRG-008's realized PnL of the reduced part",
            premises="a counterparty position, 0 < reduction <= size; a mark price > 0 (bp any price > 0)")
def _equity_kept(ctx: Context) -> Any:
    inst = ctx.instrument
    pos = ctx.position()
    mark, bp = ctx.price("mark"), ctx.price("bankruptcy price")
    r = ctx.size("reduction")
    ctx.assume(r <= pos.size)
    realized, released, new = A.settle_adl_counterparty(inst, pos, r, r, mark, bp)
    before = ctx.observe("equity before", M.compute_equity(inst, pos, mark))
    after = ctx.observe("equity after", realized + released + M.compute_equity(inst, new, mark))
    ctx.observe("realized", realized)
    d = after - before
    return num.and_(d > -1, d <= 0,
                    realized == M.compute_realized_pnl_units(inst, PositionTerms(pos.sign, r, pos.entry, pos.margin), mark))


@obligation("OBL-ADL-008", "ADL releases margin in proportion, rounded down; the rest stays with the position",
            rules=["ADL-008"],
            statement="0 <= released <= margin; released <= margin * r / size < released + 1; new size = size - r, "
                      "new margin = margin - released, same side and entry; r = size => released = margin",
            premises="a counterparty position (margin >= 0), 0 < r <= size, a part at mark 0 <= a <= r")
def _release(ctx: Context) -> Any:
    inst = ctx.instrument
    pos = ctx.position()
    mark, bp = ctx.price("mark"), ctx.price("bankruptcy price")
    r = ctx.size("reduction")
    a = ctx.rational("at mark")
    ctx.assume(num.and_(r <= pos.size, a >= 0, a <= r))
    _, released, new = A.settle_adl_counterparty(inst, pos, r, a, mark, bp)
    ctx.observe("released", released)
    exact = num.div(pos.margin * r, pos.size)
    return num.and_(released >= 0, released <= pos.margin, released <= exact, exact < released + 1,
                    new.size == pos.size - r, new.margin == pos.margin - released,
                    new.sign == pos.sign, new.entry == pos.entry,
                    num.implies(r == pos.size, released == pos.margin))


# ---------------------------------------------------------------- ADL-009 conservation

def _gap(ctx: Context, s: Any, size: Any, bp: Any, price: Any) -> Any:
    return A.compute_adl_gap(ctx.instrument, s, size, bp, price)


@obligation("OBL-INV-019", "conservation, modular: one named counterparty against the abstract rest; only the venue keeps rounding",
            rules=["INV-019", "ADL-008", "ADL-009", "ADL-007"],
            statement="if the rest (k counterparties) pays out cash_rest with cash_rest + gap(a_rest) - value_rest - gap(r_rest) "
                      "in (-k, 0], then adding one named counterparty (r, a at mark) and the fund: "
                      "realized + cash_rest + fund(a + a_rest) - [upl(r, mark) + value_rest + gap(r + r_rest, mark)] in (-(k + 2), 0]: "
                      "counterparties' results + remainder holder's result + fund result + venue residue = 0, residue >= 0",
            premises="a counterparty position opposite the remainder; 0 < r <= size, 0 <= a <= r; the rest's reduced size r_rest >= a_rest >= 0, "
                      "its cash (whole units) and value (exact) abstract; k >= 0 whole; bp, mark > 0",
            scope=Scope.MODULAR)
def _conserve_modular(ctx: Context) -> Any:
    inst = ctx.instrument
    pos = ctx.position()
    liq = -pos.sign
    mark, bp = ctx.price("mark"), ctx.price("bankruptcy price")
    r, a = ctx.size("reduction"), ctx.rational("at mark")
    ctx.assume(num.and_(r <= pos.size, a >= 0, a <= r))
    r_rest, a_rest = ctx.rational("rest reduction"), ctx.rational("rest at mark")
    ctx.assume(num.and_(a_rest >= 0, a_rest <= r_rest))
    cash_rest = ctx.money("rest cash", nonnegative=False)
    value_rest = ctx.rational("rest value at mark")
    k = ctx.integer("rest count")
    ctx.assume(k >= 0)
    resid_rest = cash_rest + _gap(ctx, liq, a_rest, bp, mark) - value_rest - _gap(ctx, liq, r_rest, bp, mark)
    ctx.assume(num.and_(resid_rest > -k, resid_rest <= 0))
    realized, _, _ = A.settle_adl_counterparty(inst, pos, r, a, mark, bp)
    fund = ctx.observe("fund result", A.compute_adl_fund_result(inst, liq, a + a_rest, bp, mark))
    ctx.observe("realized", realized)
    value = M.compute_unrealized_pnl(inst, PositionTerms(pos.sign, r, pos.entry, 0), mark)
    total = realized + cash_rest + fund - (value + value_rest + _gap(ctx, liq, r + r_rest, bp, mark))
    ctx.observe("total (= -venue residue)", total)
    return num.and_(total > -(k + 2), total <= 0)


@obligation("OBL-INV-019b", "conservation and fund >= 0, bounded: a remainder against three positions through the ADL rule chain",
            rules=["INV-019", "INV-020", "INV-016", "ADL-006", "ADL-007", "ADL-008", "ADL-009"],
            statement="allocate, split mark/bankruptcy, settle, fund: sum realized + fund - [sum upl_i(r_i, mark) + gap(sum r, mark)] "
                      "in (-4, 0]; available + fund >= 0; every new size >= 0",
            premises="3 positions on the side opposite the remainder (other accounts), sizes on the lot grid, entries and margins any; "
                      "R >= 1 lot; bp, mark > 0; fund available >= 0",
            scope=Scope.BOUNDED, limit_seconds=30)
def _conserve_bounded(ctx: Context) -> Any:
    inst, rules = ctx.instrument, ctx.profile.adl
    lot = inst.lot_size
    liq, R, bp, mark, avail, positions = _remainder_against_three(ctx)
    rs = A.allocate_adl(R, tuple(p.size for p in positions), (True,) * N_BOUNDED, lot)
    pre = A.compute_adl_prefixes(rs)
    reduced = num.sum_(rs)
    q = A.compute_adl_mark_quantity(inst, rules, liq, reduced, bp, mark, avail)
    cash, value, sizes_ok = 0, 0, []
    for p, r, pf in zip(positions, rs, pre):
        part = A.compute_adl_mark_part(q, pf, r)
        realized, _, new = A.settle_adl_counterparty(inst, p, r, part, mark, bp)
        cash = cash + realized
        value = value + M.compute_unrealized_pnl(inst, PositionTerms(p.sign, r, p.entry, 0), mark)
        sizes_ok.append(new.size >= 0)
    fund = ctx.observe("fund result", A.compute_adl_fund_result(inst, liq, q, bp, mark))
    total = ctx.observe("total (= -venue residue)", cash + fund - (value + _gap(ctx, liq, reduced, bp, mark)))
    return num.and_(total > -(N_BOUNDED + 1), total <= 0, avail + fund >= 0, num.all_(sizes_ok))

