"""Closed forms of the bankruptcy price (LIQ-002) and the liquidation price (LIQ-003), derived
with sympy from the equity and requirement equations rather than written down by hand.

Symbols (all exact; see reference/margin.py):

* ``m`` -- the position's isolated margin, in smallest settlement units;
* ``s`` -- the side, +1 (long) or -1 (short);
* ``k`` -- ``size * contract_value * scale``;
* ``e`` -- the entry price; ``p`` -- the mark price solved for;
* ``r`` -- the requirement rate (tier MMR + close-fee rate), ``d`` -- the tier's deduction.

Equity (MRG-002, MRG-003):

* linear:  ``E(p) = m + s*k*(p - e)``
* inverse: ``E(p) = m + s*k*(1/e - 1/p)``

Requirement (MRG-005, MRG-006, LIQ-001): ``R(p) = v*r - d``, with ``v`` the position value at
the mark (linear ``k*p``, inverse ``k/p``) or at the entry (linear ``k*e``, inverse ``k/e``), as
the profile's ``mm_price_basis`` says.

The bankruptcy price solves ``E(p) = 0``; the liquidation price solves ``E(p) = R(p)``.  Both are
solved with :func:`sympy.solve` for each of the four (kind, basis) combinations; ``s`` stays a
symbol, so a derived form may differ from a hand-written one by a factor ``s**2 = 1``.

Run ``python -m backstop.proofs.derivations.prices`` to print the derived closed forms.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Mapping

import sympy

__all__ = ["SYMBOLS", "KINDS", "BASES", "WHATS", "equity", "requirement", "derive", "as_function"]

m, s, k, e, r, d, p = sympy.symbols("m s k e r d p")
SYMBOLS: dict[str, sympy.Symbol] = {"m": m, "s": s, "k": k, "e": e, "r": r, "d": d, "p": p}

KINDS = ("linear", "inverse")
BASES = ("mark", "entry")
WHATS = ("bankruptcy", "liquidation")


def equity(kind: str) -> sympy.Expr:
    """Isolated equity at mark ``p``: margin plus unrealized PnL (MRG-002, MRG-003)."""
    if kind == "linear":
        return m + s * k * (p - e)
    if kind == "inverse":
        return m + s * k * (1 / e - 1 / p)
    raise ValueError(f"unknown contract kind {kind!r}")


def requirement(kind: str, basis: str) -> sympy.Expr:
    """The liquidation requirement ``v*r - d``, with the value ``v`` at the mark or the entry."""
    at = {"mark": p, "entry": e}[basis]
    value = k * at if kind == "linear" else k / at
    return value * r - d


def _solve_for_price(equation: sympy.Expr) -> sympy.Expr:
    solutions = sympy.solve(sympy.Eq(equation, 0), p, dict=False)
    if len(solutions) != 1:
        raise AssertionError(f"expected exactly one solution of {equation} = 0 for p, got {solutions}")
    return sympy.factor(sympy.together(solutions[0]))


def derive() -> dict[tuple[str, str, str], sympy.Expr]:
    """Every closed form, keyed ``(kind, basis, what)``: kind linear/inverse, basis mark/entry,
    what bankruptcy/liquidation.  The bankruptcy price does not depend on the basis (equity is
    zero whatever the requirement); both keys are present for uniformity."""
    out: dict[tuple[str, str, str], sympy.Expr] = {}
    for kind in KINDS:
        bankrupt = _solve_for_price(equity(kind))
        for basis in BASES:
            out[(kind, basis, "bankruptcy")] = bankrupt
            out[(kind, basis, "liquidation")] = _solve_for_price(equity(kind) - requirement(kind, basis))
    return out


def _rational(x: int | Fraction) -> sympy.Rational:
    if isinstance(x, bool) or not isinstance(x, (int, Fraction)):
        raise TypeError(f"exact inputs only (int or Fraction), not {type(x).__name__}")
    x = Fraction(x)
    return sympy.Rational(x.numerator, x.denominator)


def as_function(expr: sympy.Expr) -> Callable[..., Fraction]:
    """Evaluate ``expr`` exactly: keyword arguments named like the symbols (``m=..., s=...``) as
    ``int``/``Fraction``, converted to :class:`sympy.Rational`; the result is a ``Fraction``.

    Extra keywords are ignored; a missing one raises ``KeyError``; a zero denominator raises
    ``ZeroDivisionError`` (never a float, never ``zoo``)."""
    names = sorted(str(x) for x in expr.free_symbols)
    num_, den_ = sympy.fraction(sympy.together(expr))

    def f(**values: int | Fraction) -> Fraction:
        subs: Mapping[sympy.Symbol, sympy.Rational] = {SYMBOLS[n]: _rational(values[n]) for n in names}
        top, bottom = num_.subs(subs), den_.subs(subs)
        if not (top.is_Rational and bottom.is_Rational):
            raise ValueError(f"{expr} did not evaluate to a rational at {values}")
        if bottom == 0:
            raise ZeroDivisionError(f"denominator of {expr} is zero at {values}")
        v = sympy.Rational(top) / sympy.Rational(bottom)
        return Fraction(int(v.p), int(v.q))

    f.__name__ = "derived_price"
    f.__doc__ = f"exact evaluation of {expr}"
    return f


def main() -> None:
    for (kind, basis, what), expr in derive().items():
        print(f"{what:11s} {kind:7s} requirement at {basis:5s}:  p = {expr}")


if __name__ == "__main__":
    main()
