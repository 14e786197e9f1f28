"""Obligations on the numeric kernel itself (NUM-001, NUM-002): the rounding helpers round in
the direction their name says, for every sign combination, by less than one step."""

from __future__ import annotations

from typing import Any

from backstop.reference import num
from backstop.proofs.registry import Context, obligation


@obligation("OBL-NUM-001", "div_floor / div_ceil are floor and ceil of the exact quotient, for every sign",
            rules=["NUM-001"],
            statement="q = div_floor(a, b) is whole and q <= a/b < q + 1; c = div_ceil(a, b) is whole and c - 1 < a/b <= c",
            premises="whole a, whole b != 0 (either sign)", per_instrument=False)
def _div(ctx: Context) -> Any:
    a, b = ctx.integer("a"), ctx.integer("b")
    ctx.assume(b != 0)
    x = num.div(a, b)
    q, c = ctx.observe("div_floor", num.div_floor(a, b)), ctx.observe("div_ceil", num.div_ceil(a, b))
    return num.and_(num.floor(q) == q, q <= x, x < q + 1, num.floor(c) == c, c - 1 < x, x <= c)


@obligation("OBL-NUM-002", "mul_div_floor / mul_div_ceil round the exact product-quotient once",
            rules=["NUM-001"],
            statement="mul_div_floor(a, b, c) <= a*b/c < mul_div_floor(a, b, c) + 1, and likewise upward for mul_div_ceil",
            premises="whole a, b, c with c != 0", per_instrument=False)
def _muldiv(ctx: Context) -> Any:
    a, b, c = ctx.integer("a"), ctx.integer("b"), ctx.integer("c")
    ctx.assume(c != 0)
    x = num.div(a * b, c)
    f, g = num.mul_div_floor(a, b, c), num.mul_div_ceil(a, b, c)
    return num.and_(f <= x, x < f + 1, g - 1 < x, x <= g)


@obligation("OBL-NUM-003", "floor/ceil of a rational, and rounding to a step, go the named way by less than one step",
            rules=["NUM-001", "NUM-002"],
            statement="floor(x) <= x < floor(x)+1; ceil(x)-1 < x <= ceil(x); for step > 0: "
                      "floor_to_step(x) <= x < floor_to_step(x) + step, ceil_to_step(x) - step < x <= ceil_to_step(x), "
                      "and round_to_step_toward goes up for sign > 0 and down for sign < 0",
            premises="rational x (either sign), rational step > 0, sign = +1 or -1", per_instrument=False)
def _round(ctx: Context) -> Any:
    x, step = ctx.rational("x"), ctx.rational("step")
    ctx.assume(step > 0)
    sgn = ctx.sign()
    fl, ce = num.floor(x), num.ceil(x)
    fs, cs = num.floor_to_step(x, step), num.ceil_to_step(x, step)
    t = num.round_to_step_toward(x, step, sgn)
    return num.and_(fl <= x, x < fl + 1, ce - 1 < x, x <= ce,
                    fs <= x, x < fs + step, cs - step < x, x <= cs,
                    num.implies(sgn > 0, t == cs), num.implies(sgn < 0, t == fs))


@obligation("OBL-NUM-004", "min_, max_ and abs_ are the order-theoretic ones",
            rules=["NUM-001"],
            statement="min_(a,b) <= a, b and is one of them; max_ likewise; abs_(a) >= 0 and is a or -a",
            premises="rationals a, b", per_instrument=False)
def _minmax(ctx: Context) -> Any:
    a, b = ctx.rational("a"), ctx.rational("b")
    lo, hi, ab = num.min_(a, b), num.max_(a, b), num.abs_(a)
    return num.and_(lo <= a, lo <= b, num.or_(lo == a, lo == b), hi >= a, hi >= b, num.or_(hi == a, hi == b),
                    ab >= 0, num.or_(ab == a, ab == -a))


@obligation("OBL-NUM-005", "a loss covered exactly by a share stays covered after rounding (floor the PnL, ceil the share)",
            rules=["NUM-002"],
            statement="u + d >= 0 and d <= m => floor(u) + min(m, ceil(d)) >= 0 (the step from OBL-LIQ-007c to OBL-LIQ-007b)",
            premises="rationals u, d; whole m", per_instrument=False)
def _covered(ctx: Context) -> Any:
    u, d, m = ctx.rational("u"), ctx.rational("d"), ctx.integer("m")
    ctx.assume(u + d >= 0)
    ctx.assume(d <= m)
    c = num.ceil(d)
    ctx.cases("min", [("m <= ceil(d)", m <= c), ("m > ceil(d)", m > c)])  # the ite's own condition; Z3 gives up otherwise
    return num.floor(u) + num.min_(m, c) >= 0
