"""The cross liquidation and bankruptcy prices of one position (LIQ-010), derived with sympy.

The cross trigger of LIQ-008 with position ``j``'s mark ``p`` free and the other positions' marks
fixed reads ``B + U + E_j(p) - m = Req_j(p) + R``: ``B`` the balance, ``U`` the others' summed
unrealized PnL, ``R`` their summed requirements (all constants once their marks are fixed),
``E_j(p) - m`` position ``j``'s unrealized PnL (:func:`prices.equity` less its margin).  Solved for
``p`` it must give exactly LIQ-003's closed form with the margin ``m = B + U - R``; the cross
equity ``B + U + E_j(p) - m = 0`` must give LIQ-002's with ``m = B + U``.  :func:`derive` solves
the cross equations directly and :func:`check` shows both identities for every (kind, basis).

Run ``python -m backstop.proofs.derivations.cross`` to print the derived forms.
"""

from __future__ import annotations

import sympy

from backstop.proofs.derivations import prices
from backstop.proofs.derivations.prices import BASES, KINDS, SYMBOLS, equity, requirement

__all__ = ["B", "U", "R", "derive", "check"]

B, U, R = sympy.symbols("B U R")
m, p = SYMBOLS["m"], SYMBOLS["p"]


def _solve(expr: sympy.Expr) -> sympy.Expr:
    sol = sympy.solve(sympy.Eq(expr, 0), p, dict=False)
    if len(sol) != 1:
        raise AssertionError(f"expected one solution of {expr} = 0 for p, got {sol}")
    return sympy.factor(sympy.together(sol[0]))


def derive() -> dict[tuple[str, str, str], sympy.Expr]:
    """The cross prices keyed ``(kind, basis, what)``, solved from the cross equations (the
    position's own margin ``m`` does not appear: a cross position has none)."""
    out = {}
    for kind in KINDS:
        upl = equity(kind) - m
        bankrupt = _solve(B + U + upl)
        for basis in BASES:
            out[(kind, basis, "bankruptcy")] = bankrupt
            out[(kind, basis, "liquidation")] = _solve(B + U + upl - R - requirement(kind, basis))
    return out


def check() -> dict[tuple[str, str, str], bool]:
    """For every key: the cross price equals LIQ-002/LIQ-003's isolated closed form with the margin
    ``B + U`` (bankruptcy) or ``B + U - R`` (liquidation) substituted."""
    iso = prices.derive()
    cross = derive()
    out = {}
    for key, expr in cross.items():
        margin = B + U if key[2] == "bankruptcy" else B + U - R
        out[key] = sympy.simplify(expr - iso[key].subs(m, margin)) == 0
    return out


if __name__ == "__main__":  # pragma: no cover
    for key, expr in derive().items():
        print(key, "=", expr, "  (LIQ-003/LIQ-002 with the cross margin:", check()[key], ")")
