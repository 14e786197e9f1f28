"""The bankruptcy price that leaves the fee to close, valued at the bankruptcy price itself
(LIQ-002 with ``margin.bankruptcy_includes_close_fee``; Bybit), derived with sympy.

The price ``p`` solves ``E(p) = fee(p)`` with ``fee(p) = value(p) * r`` (``r`` the close-fee rate,
``value`` the position value at ``p``: linear ``k*p``, inverse ``k/p``) -- the fee depends on the
price it defines, so the price is a fixed point of ``p -> solve(E(q) = fee(p), q)``.  Both sides
are linear in ``p`` (linear contracts) or in ``1/p`` (inverse), so the fixed point has one closed
form, derived here, and it is the mark-basis liquidation-price form of :mod:`.prices` with the
rate ``r`` and no deduction (``d = 0``): the reference computes it with that solver.

Symbols as in :mod:`.prices` (``m`` margin, ``s`` side, ``k = size * contract_value * scale``,
``e`` entry, ``r`` the close-fee rate, ``p`` the price).

Run ``python -m backstop.proofs.derivations.bankruptcy_fee`` to print the closed forms.
"""

from __future__ import annotations

import sympy

from backstop.proofs.derivations.prices import KINDS, SYMBOLS, equity, requirement

__all__ = ["fee_at", "derive", "check_fixed_point", "matches_mark_liquidation_form"]

m, s, k, e, r, d, p = (SYMBOLS[n] for n in ("m", "s", "k", "e", "r", "d", "p"))


def fee_at(kind: str, price: sympy.Expr) -> sympy.Expr:
    """The fee to close valued at ``price``: ``value(price) * r``."""
    value = k * price if kind == "linear" else k / price
    return value * r


def derive() -> dict[str, sympy.Expr]:
    """The closed form per contract kind: the one solution ``p`` of ``E(p) - fee(p) = 0``."""
    out: dict[str, sympy.Expr] = {}
    for kind in KINDS:
        sols = sympy.solve(sympy.Eq(equity(kind) - fee_at(kind, p), 0), p, dict=False)
        if len(sols) != 1:
            raise AssertionError(f"expected one solution for {kind}, got {sols}")
        out[kind] = sympy.factor(sympy.together(sols[0]))
    return out


def check_fixed_point(kind: str, expr: sympy.Expr) -> bool:
    """``expr`` is a fixed point: the equity at ``expr`` equals the fee valued at ``expr`` (for
    either side ``s`` in {+1, -1})."""
    return all(sympy.simplify((equity(kind) - fee_at(kind, p)).subs(p, expr).subs(s, side)) == 0
               for side in (1, -1))


def matches_mark_liquidation_form(kind: str, expr: sympy.Expr) -> bool:
    """``expr`` equals the mark-basis liquidation price of :mod:`.prices` (``E(p) = value(p) r - d``)
    with ``d = 0``, for either side: so the reference's ``_solve_price`` solver computes it."""
    sols = sympy.solve(sympy.Eq(equity(kind) - requirement(kind, "mark"), 0), p, dict=False)
    (liq,) = sols
    return all(sympy.simplify((expr - liq.subs(d, 0)).subs(s, side)) == 0 for side in (1, -1))


def main() -> None:
    for kind, expr in derive().items():
        print(f"bankruptcy price with the fee to close at it, {kind:7s}: p = {expr}  "
              f"(fixed point: {check_fixed_point(kind, expr)}; "
              f"= mark-basis liquidation form with d = 0: {matches_mark_liquidation_form(kind, expr)})")


if __name__ == "__main__":
    main()
