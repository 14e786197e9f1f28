"""The numeric kernel: the only operations rule code may apply to numbers.

Every rule function in ``backstop.reference`` is written once, over this module, and runs
under two interpretations:

* **concrete** -- ``int`` (money in the smallest unit of its currency) and
  ``fractions.Fraction`` (prices, sizes, rates, ratios).  ``float``, ``bool`` used as a number,
  ``Decimal``, NaN and infinities are refused with :class:`~backstop.reference.errors.KernelTypeError`.
* **symbolic** -- Z3 ``Real`` terms.  Every symbolic number has sort Real, so that exact
  constants (``Fraction``) mix with any term; a quantity that must be whole (money, an index) is a
  Real with an ``IsInt`` premise, and the rounding helpers return Reals with integral values.
  The proofs in ``backstop.proofs`` call the very same rule functions with Z3 variables and ask
  the solver about the resulting terms.

Rule modules never branch on a number with ``if``/``and``/``or``, never call the built-in
``min``/``max``, and never use ``/``, ``//`` or ``%``: they call :func:`ite`, :func:`min_`,
:func:`max_`, :func:`div` and the rounding helpers below, whose direction is in their name.
``tests/test_kernel_lint.py`` enforces this.

Python's ``//`` floors; SMT-LIB integer ``div`` is Euclidean (they differ when the divisor is
negative).  The kernel therefore never uses SMT ``div``: :func:`div_floor` is the floor
(``to_int``) of the exact rational quotient, which is Python's semantics for every sign
combination (proved in ``backstop.proofs.kernel_laws`` and tested against ``//``).
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from typing import Any, Iterable

from backstop.reference.errors import KernelTypeError

# z3 is imported only when a symbolic value appears: a concrete run (``backstop eval``) never
# imports it.  While z3 is not imported no value can be a Z3 term, and ``z3`` here is a stand-in
# whose ``ExprRef`` nothing is an instance of (``isinstance(x, z3.ExprRef)`` stays a plain, fast
# check).  The moment z3 is imported -- by a proof, a test, or here by a symbolic branch (``lift``
# of a concrete number returns a term) -- the real module takes the stand-in's place: a
# ``sys.meta_path`` entry that finds nothing itself has z3's loader bind it here when it runs.


class _Z3NotImported:
    class ExprRef:
        """No value is an instance: z3 is not imported."""

    def __getattr__(self, name: str) -> Any:   # a symbolic branch: import z3 (which binds it here)
        import z3 as module
        _bind(module)
        return getattr(module, name)


def _bind(module: Any) -> None:
    globals()["z3"] = module
    _Z3NotImported.ExprRef = module.ExprRef     # type: ignore[misc]  # rebound at run time: a copy of these globals that kept the stand-in sees terms too


class _BindZ3WhenImported:
    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name != "z3" or _BindZ3WhenImported not in sys.meta_path:
            return None
        sys.meta_path.remove(_BindZ3WhenImported)      # once; and the search below skips it
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        inner = spec.loader
        try:
            class Loader(type(inner)):  # type: ignore[misc]  # z3's own loader, binding z3 here after it ran
                def exec_module(self, module: Any) -> None:
                    super().exec_module(module)
                    _bind(module)

            loader = object.__new__(Loader)
            loader.__dict__.update(inner.__dict__)
            spec.loader = loader
        except Exception:   # a loader that cannot be extended: every check asks sys.modules instead
            _Z3NotImported.ExprRef = _AskSysModules.ExprRef  # type: ignore[misc, assignment]  # the stand-in class attribute is rebound at run time
        return spec


class _AskSysModules:
    class _Check(type):
        def __instancecheck__(cls, x: object) -> bool:
            module = sys.modules.get("z3")
            return module is not None and hasattr(module, "ExprRef") and isinstance(x, module.ExprRef)

    class ExprRef(metaclass=_Check):
        """A Z3 term when z3 is imported."""


if "z3" in sys.modules:
    import z3
else:
    z3: Any = _Z3NotImported()  # type: ignore[no-redef]  # z3 is the module or its stand-in, chosen at import
    sys.meta_path.insert(0, _BindZ3WhenImported)

__all__ = [
    "Number", "is_symbolic", "check_concrete", "to_fraction",
    "ite", "min_", "max_", "abs_", "and_", "or_", "not_", "implies", "all_", "any_",
    "sum_", "div", "div_or",
    "floor", "ceil", "div_floor", "div_ceil", "mul_div_floor", "mul_div_ceil",
    "floor_to_step", "ceil_to_step", "round_to_step_toward",
    "lift", "value_of",
]

Number = Any  # int | Fraction | z3.ArithRef


def is_symbolic(*xs: object) -> bool:
    """True when any argument is a Z3 expression (the symbolic interpretation)."""
    return any(isinstance(x, z3.ExprRef) for x in xs)


def check_concrete(x: object, what: str = "value") -> None:
    """Refuse anything that is not an exact number (``int`` or ``Fraction``, never ``bool``)."""
    if isinstance(x, bool) or not isinstance(x, (int, Fraction)):
        raise KernelTypeError(
            f"{what} must be an int or a fractions.Fraction, not {type(x).__name__} ({x!r})"
        )


def _check(*xs: object) -> None:
    for x in xs:
        if not isinstance(x, z3.ExprRef):
            check_concrete(x)


def to_fraction(x: int | Fraction) -> Fraction:
    check_concrete(x)
    return Fraction(x)


def lift(x: Number) -> z3.ExprRef:
    """A Z3 term for ``x`` (``int`` -> Int, ``Fraction`` -> Real); terms pass through."""
    if isinstance(x, z3.ExprRef):
        return _real(x)
    check_concrete(x)
    return z3.RealVal(Fraction(x).numerator) / z3.RealVal(Fraction(x).denominator)


def _real(x: Number) -> z3.ArithRef:
    if not isinstance(x, z3.ExprRef):
        return lift(x)
    if isinstance(x, z3.ArithRef) and x.is_int():
        return z3.ToReal(x)
    return x


# ---------------------------------------------------------------- booleans and branches

def ite(cond: Any, then: Number, other: Number) -> Number:
    """``then`` when ``cond`` holds, else ``other``.  Both branches are values, not thunks."""
    if isinstance(cond, z3.ExprRef):
        return z3.If(cond, lift(then), lift(other))
    if not isinstance(cond, bool):
        raise KernelTypeError(f"ite condition must be a bool, not {type(cond).__name__}")
    return then if cond else other


def and_(*cs: Any) -> Any:
    if is_symbolic(*cs):
        return z3.And(*[z3.BoolVal(c) if isinstance(c, bool) else c for c in cs])
    return all(cs)


def or_(*cs: Any) -> Any:
    if is_symbolic(*cs):
        return z3.Or(*[z3.BoolVal(c) if isinstance(c, bool) else c for c in cs])
    return any(cs)


def not_(c: Any) -> Any:
    return z3.Not(c) if isinstance(c, z3.ExprRef) else (not c)


def implies(a: Any, b: Any) -> Any:
    return or_(not_(a), b)


def all_(cs: Iterable[Any]) -> Any:
    return and_(True, *list(cs))


def any_(cs: Iterable[Any]) -> Any:
    return or_(False, *list(cs))


def min_(a: Number, b: Number) -> Number:
    _check(a, b)
    return ite(a <= b, a, b)


def max_(a: Number, b: Number) -> Number:
    _check(a, b)
    return ite(a >= b, a, b)


def abs_(a: Number) -> Number:
    _check(a)
    return ite(a >= 0, a, -a)


def sum_(xs: Iterable[Number]) -> Number:
    total: Number = 0
    for x in xs:
        total = total + x
    return total


# ---------------------------------------------------------------- exact division

def div(a: Number, b: Number) -> Number:
    """Exact quotient ``a / b`` as a rational.  The caller guarantees ``b != 0``.

    Concretely a zero divisor raises ``ZeroDivisionError``; symbolically SMT leaves ``a/0``
    unspecified, so every proof that reaches a ``div`` carries the premise ``b != 0``
    (or uses :func:`div_or`).
    """
    _check(a, b)
    if is_symbolic(a, b):
        return _real(a) / _real(b)
    return _quotient(a, b)


def _quotient(a: Number, b: Number) -> Fraction:
    """The exact concrete quotient.  ``a`` becomes a Fraction by multiplication, not by
    ``Fraction(a)``, so that a number type that extends ``int`` or ``Fraction`` (the concolic
    values of ``backstop.proofs.concolic``) keeps its own arithmetic."""
    return (a if isinstance(a, Fraction) else a * Fraction(1)) / b  # type: ignore[no-any-return]  # a Number operand (Any); a first: a shadowed int keeps its term


def div_or(a: Number, b: Number, default: Number) -> Number:
    """``a / b`` when ``b != 0``, else ``default`` -- a total division for branch values."""
    _check(a, b, default)
    if is_symbolic(a, b, default):
        return ite(_real(b) == 0, _real(default), _real(a) / _real(b))
    return default if b == 0 else _quotient(a, b)


# ---------------------------------------------------------------- rounding (direction in the name)

def floor(x: Number) -> Number:
    """NUM-001: the largest integer ``<= x`` (toward minus infinity, for either sign)."""
    _check(x)
    if isinstance(x, z3.ExprRef):
        return z3.ToReal(z3.ToInt(_real(x)))  # SMT to_int is floor; kept in sort Real
    return math.floor(x)


def ceil(x: Number) -> Number:
    """NUM-001: the smallest integer ``>= x`` (toward plus infinity, for either sign)."""
    return -floor(-x)


def div_floor(a: Number, b: Number) -> Number:
    """NUM-001: Python's ``a // b``: the exact quotient rounded toward minus infinity.

    SMT's ``div`` is Euclidean (remainder always ``>= 0``).  The two agree when ``b > 0`` or the
    division is exact; when ``b < 0`` and there is a remainder, floor is one less.
    """
    _check(a, b)
    if is_symbolic(a, b):
        return floor(div(a, b))  # not SMT's Euclidean div: floor of the exact quotient
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return math.floor(_quotient(a, b))


def div_ceil(a: Number, b: Number) -> Number:
    """NUM-001: the quotient rounded toward plus infinity (``-((-a) // b)``), for every sign."""
    return -div_floor(-a, b)


def mul_div_floor(a: Number, b: Number, c: Number) -> Number:
    """NUM-001: ``floor(a * b / c)`` without an intermediate rounding."""
    return div_floor(a * b, c)


def mul_div_ceil(a: Number, b: Number, c: Number) -> Number:
    """NUM-001: ``ceil(a * b / c)`` without an intermediate rounding."""
    return div_ceil(a * b, c)


def floor_to_step(x: Number, step: Number) -> Number:
    """NUM-001: the largest multiple of ``step`` (> 0) that is ``<= x``."""
    return floor(div(x, step)) * step


def ceil_to_step(x: Number, step: Number) -> Number:
    """NUM-001: the smallest multiple of ``step`` (> 0) that is ``>= x``."""
    return ceil(div(x, step)) * step


def round_to_step_toward(x: Number, step: Number, sign: Number) -> Number:
    """NUM-002: round ``x`` to a multiple of ``step``: up when ``sign > 0``, down when ``sign < 0``."""
    return ite(sign > 0, ceil_to_step(x, step), floor_to_step(x, step))


# ---------------------------------------------------------------- reading terms back

def value_of(term: Any, model: "z3.ModelRef | None" = None) -> Any:
    """Read a term (or a concrete value) back as ``int``, ``Fraction`` or ``bool``; never ``float``."""
    if not isinstance(term, z3.ExprRef):
        return term
    v = model.eval(term, model_completion=True) if model is not None else z3.simplify(term)
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_int_value(v):
        return v.as_long()
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_algebraic_value(v):
        raise KernelTypeError(f"irrational value {v} cannot be read back exactly")
    raise KernelTypeError(f"term {v} did not reduce to a value")
