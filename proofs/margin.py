"""Obligations of the single-position margin slice (MRG-*, LIQ-001..003, INV-001..007).

Each body calls the reference functions of :mod:`backstop.reference.margin` on symbolic
variables; nothing here restates their formulas.  Every obligation is instantiated per
instrument of the profile, with the position's side symbolic (one proof covers long and short).
"""

from __future__ import annotations

from typing import Any

from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.profile import PriceBasis, TriggerRule
from backstop.reference.types import PositionTerms, TierBasis
from backstop.proofs.registry import Context, obligation


def _split_tiers(ctx: Context, pos: PositionTerms, price: Any) -> None:
    inst = ctx.instrument
    idx = M.compute_tier_index(inst, pos.size, price)
    ctx.cases("tier", [(f"tier {t.index}", idx == t.index) for t in inst.tier_table.tiers])


def _setup(ctx: Context, *, with_mark: bool = True) -> tuple[Any, Any, PositionTerms, Any]:
    inst, rules = ctx.instrument, ctx.rules
    pos = ctx.position()
    mark = ctx.price("mark") if with_mark else None
    ctx.assume(M.is_within_tiers(inst, pos.size, pos.entry))
    if with_mark:
        ctx.assume(M.is_within_tiers(inst, pos.size, mark))
    return inst, rules, pos, mark


@obligation("OBL-MRG-001", "position value is positive, additive in size, and moves with price as the contract kind says",
            rules=["MRG-001"],
            statement="value(size, p) > 0; value(a + b, p) = value(a, p) + value(b, p); a linear value rises with the price, an inverse one falls",
            premises="sizes a, b > 0; prices p < p2")
def _value(ctx: Context) -> Any:
    inst = ctx.instrument
    a, b = ctx.size("a"), ctx.size("b")
    p, p2 = ctx.price("p"), ctx.price("p2")
    ctx.assume(p < p2)
    v, v2 = M.compute_position_value(inst, a, p), M.compute_position_value(inst, a, p2)
    ctx.observe("value(a, p)", v)
    direction = num.ite(inst.is_linear, v < v2, v > v2)
    return num.and_(v > 0, M.compute_position_value(inst, a + b, p) == v + M.compute_position_value(inst, b, p), direction)


@obligation("OBL-MRG-002", "PnL is zero at entry and a position gains when the price moves its way",
            rules=["MRG-002"],
            statement="upl(entry) = 0, and for p < p2: upl(p2) - upl(p) has the sign of the position (long gains as the price rises)",
            premises="a position (either side, size > 0, entry > 0); prices p < p2")
def _pnl(ctx: Context) -> Any:
    inst = ctx.instrument
    pos = ctx.position()
    p, p2 = ctx.price("p"), ctx.price("p2")
    ctx.assume(p < p2)
    u, u2 = M.compute_unrealized_pnl(inst, pos, p), M.compute_unrealized_pnl(inst, pos, p2)
    ctx.observe("upl(p)", u)
    ctx.observe("upl(p2)", u2)
    return num.and_(M.compute_unrealized_pnl(inst, pos, pos.entry) == 0, pos.sign * (u2 - u) > 0)


@obligation("OBL-MRG-003", "equity is margin plus PnL, and more margin is more equity",
            rules=["MRG-003"],
            statement="equity(mark) - margin = upl(mark), and equity is strictly increasing in the margin",
            premises="a position; a mark price > 0; extra margin d > 0")
def _equity(ctx: Context) -> Any:
    inst, _, pos, mark = _setup(ctx)
    d = ctx.money("extra")
    ctx.assume(d > 0)
    richer = PositionTerms(pos.sign, pos.size, pos.entry, pos.margin + d)
    e = ctx.observe("equity", M.compute_equity(inst, pos, mark))
    return num.and_(e - pos.margin == M.compute_unrealized_pnl(inst, pos, mark),
                    M.compute_equity(inst, richer, mark) > e)


def _cap(table: Any, i: int) -> Any:
    return table.tiers[i].cap


@obligation("OBL-MRG-004", "the tier is the first one whose cap is at or above the tier basis",
            rules=["MRG-004"],
            statement="tier = t implies cap(t-1) < basis <= cap(t); the tier's MMR and deduction are that tier's",
            premises="a position within the table's last cap; a price > 0")
def _tier(ctx: Context) -> Any:
    inst = ctx.instrument
    size, price = ctx.size(), ctx.price("price")
    ctx.assume(M.is_within_tiers(inst, size, price))
    table = inst.tier_table
    basis = ctx.observe("tier basis", M.compute_tier_basis(inst, size, price))
    idx = ctx.observe("tier", M.compute_tier_index(inst, size, price))
    mmr = M.compute_tier_mmr(inst, size, price)
    ded = M.compute_tier_deduction(inst, size, price)
    claims = [num.or_(*[idx == t.index for t in table.tiers])]
    for i, t in enumerate(table.tiers):
        lower = True if i == 0 else basis > _cap(table, i - 1)
        upper = True if t.cap is None else basis <= t.cap
        claims.append(num.implies(idx == t.index, num.and_(lower, upper, mmr == t.mmr, ded == t.mm_deduction)))
    return num.all_(claims)


@obligation("OBL-MRG-004b", "a position is within the tier table exactly when its tier basis is at or below the last cap",
            rules=["MRG-004"],
            statement="bounded table: within_tiers <=> basis <= last cap (a position exactly at the last cap is accepted); "
                      "unbounded table: always within",
            premises="a size > 0; a price > 0")
def _within(ctx: Context) -> Any:
    inst = ctx.instrument
    size, price = ctx.size(), ctx.price("price")
    basis = ctx.observe("tier basis", M.compute_tier_basis(inst, size, price))
    within = ctx.observe("within tiers", M.is_within_tiers(inst, size, price))
    last = inst.tier_table.tiers[-1].cap
    return within == (basis <= last) if last is not None else within


@obligation("OBL-MRG-005", "the maintenance margin rounds up, by less than one unit",
            rules=["MRG-005", "NUM-002", "INV-006"],
            statement="mm <= mm_units < mm + 1 (a requirement is never rounded in the user's favour)",
            premises="a position within the tier table; a mark price > 0")
def _mm_round(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    mm = ctx.observe("maintenance margin (exact)", M.compute_maintenance_margin(inst, rules, pos, mark))
    mu = ctx.observe("maintenance margin (units)", M.compute_maintenance_margin_units(inst, rules, pos, mark))
    return num.and_(mm <= mu, mu < mm + 1)


@obligation("OBL-MRG-006", "the close-position fee is value x rate, rounded up by less than one unit",
            rules=["MRG-006", "NUM-002", "INV-006"],
            statement="fee = value(mm price) * close_fee_rate >= 0 and fee <= fee_units < fee + 1",
            premises="a position within the tier table; a mark price > 0")
def _fee(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    price = mark if rules.mm_price_basis is PriceBasis.MARK else pos.entry
    fee = ctx.observe("close fee (exact)", M.compute_close_fee(inst, rules, pos, mark))
    fu = ctx.observe("close fee (units)", M.compute_close_fee_units(inst, rules, pos, mark))
    return num.and_(fee == M.compute_position_value(inst, pos.size, price) * rules.close_fee_rate,
                    fee >= 0, fee <= fu, fu < fee + 1)


@obligation("OBL-MRG-007", "the margin ratio is equity over position value",
            rules=["MRG-007"],
            statement="margin_ratio * value(mark) = equity(mark); required_ratio * value(mark) = requirement(mark)",
            premises="a position; a mark price > 0")
def _ratio(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    v = M.compute_position_value(inst, pos.size, mark)
    r = ctx.observe("margin ratio", M.compute_margin_ratio(inst, pos, mark))
    return num.and_(r * v == M.compute_equity(inst, pos, mark),
                    M.compute_required_margin_ratio(inst, rules, pos, mark) * v
                    == M.compute_liquidation_requirement(inst, rules, pos, mark))


@obligation("OBL-MRG-008", "realized PnL rounds down, by less than one unit: a payout never creates money",
            rules=["MRG-008", "NUM-002", "INV-006"],
            statement="upl(p) - 1 < realized_units(p) <= upl(p)",
            premises="a position; a closing price > 0")
def _realized(ctx: Context) -> Any:
    inst, _, pos, mark = _setup(ctx)
    u = ctx.observe("upl (exact)", M.compute_unrealized_pnl(inst, pos, mark))
    r = ctx.observe("realized (units)", M.compute_realized_pnl_units(inst, pos, mark))
    return num.and_(r <= u, u - 1 < r)


@obligation("OBL-LIQ-001", "the trigger is equity at or below the requirement, which is tier MMR + close fee (seed 003)",
            rules=["LIQ-001", "INV-005"],
            statement="liquidatable <=> equity <= mm + close fee <=> margin ratio <= required ratio; "
                      "for the seed's trigger the requirement is mm + fee, for zero_equity it is 0",
            premises="a position within the tier table; a mark price > 0")
def _trigger(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    liq = ctx.observe("liquidatable", M.is_liquidatable(inst, rules, pos, mark))
    eq = ctx.observe("equity", M.compute_equity(inst, pos, mark))
    mm = M.compute_maintenance_margin(inst, rules, pos, mark)
    fee = M.compute_close_fee(inst, rules, pos, mark)
    want = 0 if rules.trigger is TriggerRule.ZERO_EQUITY else mm + fee
    ctx.observe("requirement", want)
    ratio_form = M.compute_margin_ratio(inst, pos, mark) <= M.compute_required_margin_ratio(inst, rules, pos, mark)
    return num.and_(liq == (eq <= want), liq == ratio_form)


@obligation("OBL-LIQ-001b", "seed 003's ratio form: the required ratio is exactly tier MMR + close-position fee rate",
            rules=["LIQ-001", "MRG-004"],
            statement="required_ratio(mark) = mmr(tier) + close_fee_rate",
            premises="a position; a mark price > 0; the profile values MM at mark with no deduction",
            applies=lambda p, i: (p.margin.trigger is TriggerRule.TIER_MMR_PLUS_CLOSE_FEE
                                  and p.margin.mm_price_basis is PriceBasis.MARK
                                  and i is not None and all(t.mm_deduction == 0 for t in i.tier_table.tiers)),
            applies_note="profiles with the seed's trigger, MM at mark and no deductions")
def _seed_ratio(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    req = ctx.observe("required ratio", M.compute_required_margin_ratio(inst, rules, pos, mark))
    return req == M.compute_tier_mmr(inst, pos.size, mark) + rules.close_fee_rate


@obligation("OBL-LIQ-002", "the bankruptcy price is where equity is zero (or the fee to close there); without one, equity never reaches it",
            rules=["LIQ-002"],
            statement="fee(p) = value(size, p) x close_fee_rate when margin.bankruptcy_includes_close_fee, else 0; "
                      "bp defined => equity(bp) = fee(bp) and bp > 0; bp undefined => equity(p) > fee(p) at every price p",
            premises="a position; a price p > 0")
def _bankruptcy(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    bp = M.compute_bankruptcy_price(inst, rules, pos)
    ctx.observe("bankruptcy price", bp)
    at = num.ite(bp.defined, bp.value, mark)
    rate = num.ite(rules.bankruptcy_includes_close_fee, rules.close_fee_rate, 0)
    eq_at = M.compute_equity(inst, pos, at)
    fee_at = ctx.observe("fee to close at bp", M.compute_position_value(inst, pos.size, at) * rate)
    return num.and_(num.implies(bp.defined, num.and_(bp.value > 0, eq_at == fee_at)),
                    num.implies(num.not_(bp.defined), eq_at > fee_at),
                    M.compute_bankruptcy_close_fee(inst, rules, pos.size, at) == fee_at)


def _bp_fee(rules: Any) -> Any:
    """The rate of the fee to close the bankruptcy price leaves, as the spec states it (LIQ-002):
    ``close_fee_rate`` with ``margin.bankruptcy_includes_close_fee``, else 0."""
    return rules.close_fee_rate if rules.bankruptcy_includes_close_fee else 0


def _fee_premise(rules: Any, requirement: Any, fee: Any) -> Any:
    """INV-001 / INV-002's extra premise with the option and the requirement valued at the entry:
    the requirement is at least the fee to close valued at the price in question (valued at the
    mark the requirement includes that fee, MRG-006, so the premise is implied; without the
    option the fee is 0 and the premise is the requirement >= 0 of the spec)."""
    if rules.bankruptcy_includes_close_fee and rules.mm_price_basis is PriceBasis.ENTRY:
        return requirement >= fee
    return True


@obligation("OBL-INV-001", "a position that is not liquidatable has its mark strictly on the safe side of its bankruptcy price",
            rules=["INV-001", "LIQ-001", "LIQ-002"],
            statement="bp defined => (sign * (mark - bp) > 0 <=> equity(mark) > fee_bp(mark)), fee_bp(p) = value(p) x "
                      "close_fee_rate with margin.bankruptcy_includes_close_fee, else 0; hence not liquidatable(mark) and "
                      "bp defined => sign * (mark - bp) > 0 (with the option and MM valued at entry: when the requirement "
                      "is >= fee_bp(mark))",
            premises="a position within the tier table; a mark price > 0")
def _safe_side(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    liq = ctx.observe("liquidatable", M.is_liquidatable(inst, rules, pos, mark))
    bp = M.compute_bankruptcy_price(inst, rules, pos)
    ctx.observe("bankruptcy price", bp)
    fee = ctx.observe("fee to close at mark", M.compute_position_value(inst, pos.size, mark) * _bp_fee(rules))
    eq = M.compute_equity(inst, pos, mark)
    req = M.compute_liquidation_requirement(inst, rules, pos, mark)
    safe = pos.sign * (mark - bp.value) > 0
    return num.and_(num.implies(bp.defined, safe == (eq > fee)),
                    num.implies(num.and_(num.not_(liq), bp.defined, _fee_premise(rules, req, fee)), safe))


@obligation("OBL-INV-002", "the liquidation price lies between the entry and the bankruptcy price",
            rules=["INV-002", "LIQ-003", "LIQ-002"],
            statement="healthy at entry and bp defined => lp defined, sign*(entry - lp) > 0 and sign*(lp - bp) >= 0 "
                      "(with margin.bankruptcy_includes_close_fee and MM valued at entry: sign*(lp - bp) >= 0 <=> the "
                      "requirement at lp is >= fee_bp(lp) = value(lp) x close_fee_rate)",
            premises="a position that is not liquidatable at its entry price and can go bankrupt")
def _between(ctx: Context) -> Any:
    inst, rules, pos, _ = _setup(ctx, with_mark=False)
    ctx.assume(num.not_(M.is_liquidatable(inst, rules, pos, pos.entry)))
    bp = M.compute_bankruptcy_price(inst, rules, pos)
    ctx.assume(bp.defined)
    lp = M.compute_liquidation_price(inst, rules, pos)
    ctx.observe("bankruptcy price", bp)
    ctx.observe("liquidation price", lp)
    at = num.ite(lp.defined, lp.value, pos.entry)
    fee = ctx.observe("fee to close at lp", M.compute_position_value(inst, pos.size, at) * _bp_fee(rules))
    req = M.compute_liquidation_requirement(inst, rules, pos, at)
    after = pos.sign * (lp.value - bp.value) >= 0
    premise = _fee_premise(rules, req, fee)
    claims = [lp.defined, pos.sign * (pos.entry - lp.value) > 0, num.implies(premise, after)]
    if premise is not True:
        claims.append(after == premise)  # the premise is exactly what the order needs
    return num.and_(*claims)


@obligation("OBL-INV-003", "closing at the bankruptcy price loses exactly the margin; on the tick grid never more",
            rules=["INV-003", "LIQ-002", "MRG-008"],
            statement="bp defined => upl(bp) = fee_bp(bp) - margin exactly (fee_bp(p) = value(p) x close_fee_rate with "
                      "margin.bankruptcy_includes_close_fee, else 0: the fee to close there is what the margin left pays), "
                      "realized_units(bp) = floor(fee_bp(bp)) - margin (= -margin without the option) and "
                      "realized_units(bp_tick) >= -margin",
            premises="a position that can go bankrupt, entered at a price of at least one tick (with the option: "
                     "entry x (1 - close_fee_rate) at least one tick, since a short's bankruptcy price may then lie "
                     "below its entry by that factor)")
def _loss_at_bp(ctx: Context) -> Any:
    inst, rules, pos, _ = _setup(ctx, with_mark=False)
    ctx.assume(pos.entry * (1 - _bp_fee(rules)) >= inst.tick_size)
    ctx.split_sign(pos)
    bp = M.compute_bankruptcy_price(inst, rules, pos)
    bpt = M.compute_bankruptcy_price_on_tick(inst, rules, pos)
    ctx.assume(bp.defined)
    ctx.observe("bankruptcy price", bp)
    ctx.observe("bankruptcy price on tick", bpt)
    fee = ctx.observe("fee to close at bp", M.compute_position_value(inst, pos.size, bp.value) * _bp_fee(rules))
    at = ctx.observe("realized at bp", M.compute_realized_pnl_units(inst, pos, bp.value))
    at_t = ctx.observe("realized at bp on tick", M.compute_realized_pnl_units(inst, pos, bpt.value))
    return num.and_(bpt.defined, M.compute_unrealized_pnl(inst, pos, bp.value) == fee - pos.margin,
                    at == num.floor(fee) - pos.margin, at_t >= -pos.margin)


@obligation("OBL-INV-004", "maintenance margin is monotone in size and never falls to a lower tier's rate",
            rules=["INV-004", "MRG-004", "MRG-005"],
            statement="size a <= b => tier(a) <= tier(b), mmr(a) <= mmr(b), mm(a) <= mm(b)",
            premises="two positions equal but for size a <= b, both within the table; a mark price > 0")
def _monotone(ctx: Context) -> Any:
    inst, rules = ctx.instrument, ctx.rules
    pos = ctx.position()
    b = ctx.size("larger size")
    mark = ctx.price("mark")
    ctx.assume(pos.size <= b)
    big = PositionTerms(pos.sign, b, pos.entry, pos.margin)
    price = mark if rules.mm_price_basis is PriceBasis.MARK else pos.entry
    ctx.assume(M.is_within_tiers(inst, b, price))
    mm_a = ctx.observe("mm(a)", M.compute_maintenance_margin(inst, rules, pos, mark))
    mm_b = ctx.observe("mm(b)", M.compute_maintenance_margin(inst, rules, big, mark))
    return num.and_(M.compute_tier_index(inst, pos.size, price) <= M.compute_tier_index(inst, b, price),
                    M.compute_tier_mmr(inst, pos.size, price) <= M.compute_tier_mmr(inst, b, price),
                    mm_a <= mm_b)


@obligation("OBL-INV-006", "displayed prices round toward the entry by less than a tick",
            rules=["INV-006", "NUM-002", "LIQ-002", "LIQ-003"],
            statement="0 <= sign*(lp_tick - lp) < tick and 0 <= sign*(bp_tick - bp) < tick, both on the tick grid",
            premises="a position with a defined liquidation price")
def _tick(ctx: Context) -> Any:
    inst, rules, pos, _ = _setup(ctx, with_mark=False)
    lp, lpt = M.compute_liquidation_price(inst, rules, pos), M.compute_liquidation_price_on_tick(inst, rules, pos)
    bp, bpt = M.compute_bankruptcy_price(inst, rules, pos), M.compute_bankruptcy_price_on_tick(inst, rules, pos)
    ctx.assume(lp.defined)
    ctx.observe("liquidation price", lp)
    ctx.observe("liquidation price on tick", lpt)
    tick = inst.tick_size
    k = ctx.integer("grid index")  # lp_tick = k * tick for some integer k
    ctx.assume(lpt.value == k * tick)
    d_l, d_b = pos.sign * (lpt.value - lp.value), pos.sign * (bpt.value - bp.value)
    return num.and_(d_l >= 0, d_l < tick, num.implies(bp.defined, num.and_(d_b >= 0, d_b < tick)))


@obligation("OBL-INV-007", "the trigger fires exactly at and beyond the liquidation price",
            rules=["INV-007", "LIQ-001", "LIQ-003"],
            statement="lp defined => (liquidatable(mark) <=> sign*(mark - lp) <= 0); lp undefined => never liquidatable",
            premises="a position within the tier table at both prices; a mark price > 0")
def _trigger_vs_lp(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    ctx.split_sign(pos)
    lp = M.compute_liquidation_price(inst, rules, pos)
    ctx.assume(num.implies(lp.defined, M.is_within_tiers(inst, pos.size, lp.value)))
    liq = ctx.observe("liquidatable", M.is_liquidatable(inst, rules, pos, mark))
    ctx.observe("liquidation price", lp)
    return num.ite(lp.defined, liq == (pos.sign * (mark - lp.value) <= 0), num.not_(liq))


@obligation("OBL-INV-008", "more margin never makes a healthy position liquidatable",
            rules=["INV-008", "LIQ-001"],
            statement="liquidatable with margin m + d (d >= 0) => liquidatable with margin m",
            premises="two positions equal but for margin; a mark price > 0")
def _margin_monotone(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    d = ctx.money("extra margin")
    richer = PositionTerms(pos.sign, pos.size, pos.entry, pos.margin + d)
    return num.implies(M.is_liquidatable(inst, rules, richer, mark), M.is_liquidatable(inst, rules, pos, mark))


@obligation("OBL-MRG-009", "initial margin and leverage: the margin a leverage asks keeps the position at or below that leverage",
            rules=["MRG-009", "NUM-002"],
            statement="margin_L = ceil(V(entry) / L) satisfies V(entry) <= margin_L * L and margin_L < V(entry) / L + 1; "
                      "leverage(margin_L) <= L; within_max_leverage <=> margin > 0 and leverage <= max leverage of the tier "
                      "at the entry; IM = V(p) * tier IMR >= MM + deduction (imr >= mmr); IM <= IM_units < IM + 1; the tier's "
                      "cap is the cap of the table's row for the position's tier, and the last tier of an unbounded table has none",
            premises="a position within the tier table at the entry and at the mark; a leverage L > 0")
def _initial_margin(ctx: Context) -> Any:
    inst, rules, pos, mark = _setup(ctx)
    lev = ctx.rational("leverage")
    ctx.assume(lev > 0)
    value = M.compute_position_value(inst, pos.size, pos.entry)
    m = ctx.observe("margin for leverage", M.compute_margin_for_leverage(inst, pos.size, pos.entry, lev))
    opened = PositionTerms(pos.sign, pos.size, pos.entry, m)
    price = mark if rules.mm_price_basis is PriceBasis.MARK else pos.entry
    im = ctx.observe("initial margin", M.compute_initial_margin(inst, rules, pos, mark))
    im_units = M.compute_initial_margin_units(inst, rules, pos, mark)
    mm_plus_d = M.compute_maintenance_margin(inst, rules, pos, mark) + M.compute_tier_deduction(inst, pos.size, price)
    within = ctx.observe("within max leverage", M.is_within_max_leverage(inst, pos))
    max_lev = M.compute_tier_max_leverage(inst, pos.size, pos.entry)
    claims = [value <= m * lev, m * lev < value + lev, M.compute_leverage(inst, opened) <= lev,
              within == num.and_(pos.margin > 0, M.compute_leverage(inst, pos) <= max_lev),
              im >= mm_plus_d, im <= im_units, im_units < im + 1]
    # the cap: the table's row for the tier (spec/20-liquidation.md MRG-009), none for an unbounded last tier
    table = inst.tier_table
    cap = M.compute_tier_cap(inst, pos.size, price)
    index = M.compute_tier_index(inst, pos.size, price)
    for t in table.tiers:
        if t.cap is None:
            claims.append(num.implies(index == t.index, num.not_(cap.defined)))
        else:
            claims.append(num.implies(index == t.index, num.and_(cap.defined, cap.value == t.cap)))
    return num.all_(claims)
