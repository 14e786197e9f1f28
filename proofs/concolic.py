"""Concolic execution of the real step function, for bounded multi-step proofs.

:func:`backstop.reference.step.process_event` is plumbing over concrete, frozen Python objects: it
loops over accounts and remainders, builds records and posts journal entries, so it cannot take Z3
terms.  To prove laws about *it* (not about a copy of its logic) this module runs it on numbers
that carry a Z3 *shadow*:

* :class:`SymInt` (an ``int``) and :class:`SymFrac` (a ``Fraction``) hold a concrete value and a
  Z3 Real term over the input variables.  Arithmetic computes both; every comparison returns the
  concrete ``bool`` and appends the branch taken (the term or its negation) to the *path
  condition*.
* Every rule function the plumbing calls (``margin``, ``liquidation``, ``engine``, ``adl``,
  ``fund``, ``journal``) is called twice through a proxy: once on the concrete values and once on
  the shadows -- the symbolic interpretation of the very same function, which branches with
  ``ite`` and therefore adds no path split.  The two results are zipped back into shadowed values.

One run on concrete inputs therefore yields the path condition PC (the plumbing's branch choices)
and, for every number of the final state, a term valid for *all* inputs satisfying PC.
:func:`explore` repeats with a new input outside every path seen so far until the input domain is
covered (the solver says no such input exists), so a claim proved on every path is proved for the
whole bounded domain; the prover checks that the paths are exhaustive on its own.

A value that escapes its shadow (``Fraction(x)`` or ``int(x)`` in plumbing) would freeze a term
into a constant; :func:`check_replay` guards against it by running a *second* input of the same
path concretely and comparing every number with the first run's terms at that input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import operator
import time
from fractions import Fraction
from typing import Any, Callable, Iterator

import z3

from backstop.proofs import cache as _cache
from backstop.reference import num
from backstop.reference.errors import BackstopError

__all__ = ["SymInt", "SymFrac", "SymBool", "HarnessError", "concolic", "concolic_rules", "sym", "concrete_of", "shadow_of",
           "leaves", "Path", "explore", "check_replay"]


class HarnessError(BackstopError):
    """The concolic run disagrees with itself (a value escaped its shadow, or the concrete and the
    symbolic interpretation of a rule function returned different shapes).  Never a pass."""


class _Trace:
    def __init__(self) -> None:
        self.path: list[Any] = []
        self.active = False  # outside :func:`concolic`, comparisons record nothing


_TRACE = _Trace()


def _record(cond: Any, taken: bool) -> None:
    if isinstance(cond, bool):
        if cond != taken:
            raise HarnessError("a constant branch condition disagrees with the concrete run")
        return
    if not _TRACE.active:
        return
    c = cond if taken else z3.Not(cond)
    if z3.is_true(c):
        return
    _TRACE.path.append(c)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, Fraction)) and not isinstance(x, bool)


def _c(x: Any) -> Any:
    return x.c if isinstance(x, (SymInt, SymFrac)) else x


def _z(x: Any) -> Any:
    if isinstance(x, (SymInt, SymFrac)):
        return x.z
    return num.lift(x)


def _wrap(value: Any, term: Any) -> Any:
    if isinstance(value, bool):
        raise HarnessError("a number operation returned a bool")
    if isinstance(value, int):
        return SymInt(value, term)
    if isinstance(value, Fraction):
        return SymFrac(value, term)
    raise HarnessError(f"a number operation returned a {type(value).__name__} (int / int is a float: "
                       "exact code divides with num.div)")


def _floor_z(t: Any) -> Any:
    return z3.ToReal(z3.ToInt(t))


_ARITH: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = {
    "add": (operator.add, lambda a, b: a + b),
    "sub": (operator.sub, lambda a, b: a - b),
    "mul": (operator.mul, lambda a, b: a * b),
    "truediv": (operator.truediv, lambda a, b: a / b),
    "floordiv": (operator.floordiv, lambda a, b: _floor_z(a / b)),
    "mod": (operator.mod, lambda a, b: a - b * _floor_z(a / b)),
}
_CMP: dict[str, tuple[Callable[[Any, Any], bool], Callable[[Any, Any], Any]]] = {
    "lt": (operator.lt, lambda a, b: a < b),
    "le": (operator.le, lambda a, b: a <= b),
    "gt": (operator.gt, lambda a, b: a > b),
    "ge": (operator.ge, lambda a, b: a >= b),
    "eq": (operator.eq, lambda a, b: a == b),
    "ne": (operator.ne, lambda a, b: a != b),
}


def _install(cls: type) -> None:
    for name, (py, zf) in _ARITH.items():
        def fwd(a: Any, b: Any, py: Any = py, zf: Any = zf) -> Any:
            if not _is_num(b):
                return NotImplemented
            return _wrap(py(_c(a), _c(b)), zf(_z(a), _z(b)))

        def rev(a: Any, b: Any, py: Any = py, zf: Any = zf) -> Any:
            if not _is_num(b):
                return NotImplemented
            return _wrap(py(_c(b), _c(a)), zf(_z(b), _z(a)))

        setattr(cls, f"__{name}__", fwd)
        setattr(cls, f"__r{name}__", rev)
    for name, (py, zf) in _CMP.items():
        def cmp(a: Any, b: Any, py: Any = py, zf: Any = zf) -> Any:
            if not _is_num(b):
                return NotImplemented
            v = py(_c(a), _c(b))
            _record(zf(_z(a), _z(b)), v)
            return v

        setattr(cls, f"__{name}__", cmp)


class _Shadowed:
    """What a shadowed int and a shadowed Fraction share: hashing and truth by the concrete value
    (truth records the branch), sign changes on both sides, and no silent way out of the term."""

    __slots__ = ()
    c: Any
    z: Any

    def __hash__(self) -> int:
        return hash(self.c)

    def __bool__(self) -> bool:
        v: bool = self.c != 0
        _record(self.z != 0, v)
        return v

    def __neg__(self) -> Any:
        return type(self)(-self.c, -self.z)  # type: ignore[call-arg]  # the subclasses' __new__ takes (value, term)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return type(self)(abs(self.c), z3.If(self.z >= 0, self.z, -self.z))  # type: ignore[call-arg]  # the subclasses' __new__ takes (value, term)

    def __int__(self) -> int:
        raise HarnessError("int() of a shadowed value would drop its term")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.c})"


class SymInt(_Shadowed, int):
    """An ``int`` with a Z3 shadow (sort Real, integral by construction)."""

    def __new__(cls, value: int, term: Any) -> "SymInt":
        self = int.__new__(cls, value)
        self.c = int.__int__(value)
        self.z = term
        return self

    def __index__(self) -> int:
        raise HarnessError("a shadowed value used as an index would drop its term")

    # A plain Fraction meeting a shadowed int (``Fraction(1, 3) + x``, ``Fraction(x)``, ``q < x``)
    # reads its numerator and denominator and would compute a plain number: refused (fail closed).
    # Put the shadowed value first, or compute in a rule function.
    @property
    def numerator(self) -> int:
        raise HarnessError("a plain Fraction read a shadowed int (its term would be dropped): "
                           "compute it in a rule function, or put the shadowed value first")

    @property
    def denominator(self) -> int:  # type: ignore[override]  # a read-only property that refuses (fail closed), as numerator
        raise HarnessError("a plain Fraction read a shadowed int (its term would be dropped): "
                           "compute it in a rule function, or put the shadowed value first")


class SymFrac(_Shadowed, Fraction):  # type: ignore[misc]  # hash and int() by the concrete value (_Shadowed), by design
    """A ``Fraction`` with a Z3 shadow (sort Real)."""

    __slots__ = ("c", "z")

    def __new__(cls, value: Fraction, term: Any) -> "SymFrac":
        value = Fraction(value)
        self = Fraction.__new__(cls, value.numerator, value.denominator)
        self.c = value
        self.z = term
        return self

    def __floor__(self) -> SymInt:
        return SymInt(math.floor(self.c), _floor_z(self.z))

    def __ceil__(self) -> SymInt:
        return SymInt(math.ceil(self.c), -_floor_z(-self.z))

    def __trunc__(self) -> int:
        raise HarnessError("trunc() of a shadowed value would drop its term")

    def __round__(self, ndigits: Any = None) -> Any:
        raise HarnessError("round() of a shadowed value would drop its term")


_install(SymInt)
_install(SymFrac)


class SymBool:
    """A rule function's boolean result: concrete for the run, a Z3 term for the proof.  Using it
    in a branch records the branch taken."""

    __slots__ = ("c", "z")

    def __init__(self, c: bool, z: Any) -> None:
        self.c, self.z = c, z

    def __bool__(self) -> bool:
        _record(self.z, self.c)
        return self.c

    def _other(self, other: Any) -> Any:
        if isinstance(other, SymBool):
            return other.c, other.z
        if isinstance(other, bool):
            return other, z3.BoolVal(other)
        return None

    def __eq__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        v = self.c == o[0]
        _record(self.z == o[1], v)
        return v

    def __ne__(self, other: Any) -> Any:
        o = self._other(other)
        if o is None:
            return NotImplemented
        v = self.c != o[0]
        _record(self.z != o[1], v)
        return v

    def __hash__(self) -> int:
        return hash(self.c)

    def __repr__(self) -> str:
        return f"SymBool({self.c})"


def sym(value: Any, term: Any) -> Any:
    """A shadowed input: ``value`` (int or Fraction) with the Z3 term ``term``."""
    return _wrap(value, term)


# ---------------------------------------------------------------- structure traversal

def _has_sym(x: Any, depth: int = 0) -> bool:
    if isinstance(x, (SymInt, SymFrac, SymBool)):
        return True
    if isinstance(x, (str, bytes, bool, int, Fraction, type(None))) or depth > 12:
        return False
    if isinstance(x, (tuple, list)):
        return any(_has_sym(v, depth + 1) for v in x)
    if isinstance(x, dict):
        return any(_has_sym(v, depth + 1) for v in x.values())
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return any(_has_sym(getattr(x, f.name), depth + 1) for f in dataclasses.fields(x))
    return False


def _rebuild(obj: Any, values: dict[str, Any]) -> Any:
    new = object.__new__(type(obj))
    for f in dataclasses.fields(obj):
        object.__setattr__(new, f.name, values[f.name])
    return new


def _map(x: Any, leaf: Callable[[Any], Any]) -> Any:
    if isinstance(x, (SymInt, SymFrac, SymBool)):
        return leaf(x)
    if not _has_sym(x):
        return x
    if isinstance(x, tuple):
        return tuple(_map(v, leaf) for v in x)
    if isinstance(x, list):
        return [_map(v, leaf) for v in x]
    if isinstance(x, dict):
        return {k: _map(v, leaf) for k, v in x.items()}
    if dataclasses.is_dataclass(x):
        return _rebuild(x, {f.name: _map(getattr(x, f.name), leaf) for f in dataclasses.fields(x)})
    return x


def concrete_of(x: Any) -> Any:
    """``x`` with every shadowed value replaced by its concrete value."""
    return _map(x, lambda v: v.c)


def shadow_of(x: Any) -> Any:
    """``x`` with every shadowed value replaced by its Z3 term."""
    return _map(x, lambda v: v.z)


def _zip(c: Any, s: Any, where: str) -> Any:
    if isinstance(c, bool):
        if isinstance(s, z3.ExprRef):
            return SymBool(c, s) if not (z3.is_true(s) or z3.is_false(s)) else c
        if isinstance(s, bool) and s == c:
            return c
        raise HarnessError(f"{where}: concrete {c!r} vs symbolic {s!r}")
    if _is_num(c):
        if isinstance(s, z3.ExprRef):
            return _wrap(c, num.lift(s))
        if _is_num(s) and s == c:
            return c
        raise HarnessError(f"{where}: concrete {c!r} vs symbolic {s!r}")
    if isinstance(c, (tuple, list)):
        if not isinstance(s, (tuple, list)) or len(s) != len(c):
            raise HarnessError(f"{where}: shapes differ ({len(c)} vs {len(s) if isinstance(s, (tuple, list)) else s!r})")
        out = [_zip(a, b, f"{where}[{i}]") for i, (a, b) in enumerate(zip(c, s))]
        return tuple(out) if isinstance(c, tuple) else out
    if isinstance(c, dict):
        if not isinstance(s, dict) or set(s) != set(c):
            raise HarnessError(f"{where}: dict keys differ")
        return {k: _zip(v, s[k], f"{where}[{k!r}]") for k, v in c.items()}
    if dataclasses.is_dataclass(c) and not isinstance(c, type):
        if type(s) is not type(c):
            raise HarnessError(f"{where}: {type(c).__name__} vs {type(s).__name__}")
        return _rebuild(c, {f.name: _zip(getattr(c, f.name), getattr(s, f.name), f"{where}.{f.name}")
                            for f in dataclasses.fields(c)})
    if c != s:
        raise HarnessError(f"{where}: {c!r} vs {s!r}")
    return c


_CONCRETE_ONLY: set[tuple[str, str]] = set()  # rule functions that branch on values in Python (a sort): run on shadowed values


class _RuleProxy:
    """A rule module as the plumbing sees it: every function runs under both interpretations."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        attr = getattr(self._module, name)
        if inspect.isfunction(attr) and attr.__module__ == self._module.__name__:
            f = attr

            def call(*args: Any, **kwargs: Any) -> Any:
                if not _has_sym((args, kwargs)):
                    return f(*args, **kwargs)
                if (self._module.__name__, name) not in _CONCRETE_ONLY:
                    try:
                        s = f(*shadow_of(args), **shadow_of(kwargs))
                    except z3.Z3Exception:  # it sorts or loops on values: run it concolically instead
                        _CONCRETE_ONLY.add((self._module.__name__, name))
                    else:
                        c = f(*concrete_of(args), **concrete_of(kwargs))
                        return _zip(c, s, f"{self._module.__name__}.{name}")
                return f(*args, **kwargs)

            call.__name__ = name
            self._cache[name] = call
            return call
        return attr


def concolic_rules() -> Any:
    """The rules namespace for a concolic run (:class:`~backstop.reference.rules.Rules`): every
    member runs each rule function under both interpretations.  It is handed to the plumbing as
    its ``R`` argument -- the one visible seam; nothing is patched."""
    from backstop.reference.rules import RULES, Rules
    return Rules(**{name: _RuleProxy(getattr(RULES, name)) for name in ("M", "L", "E", "A", "F", "J", "T")})


@contextlib.contextmanager
def concolic() -> Iterator[list[Any]]:
    """Within the block, comparisons of shadowed values record the branch taken.  Yields the path
    condition, a list that grows as the plumbing branches.  The rule functions reach the shadowed
    values only through :func:`concolic_rules`, passed to the plumbing as ``R``."""
    old_path, old_active = _TRACE.path, _TRACE.active
    _TRACE.path, _TRACE.active = [], True
    try:
        yield _TRACE.path
    finally:
        _TRACE.path, _TRACE.active = old_path, old_active


# ---------------------------------------------------------------- leaves of a state

def leaves(x: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every number (and bool) inside ``x`` with a path-like name, in a fixed order."""
    out: list[tuple[str, Any]] = []
    if isinstance(x, (SymInt, SymFrac, SymBool)) or _is_num(x) or isinstance(x, bool):
        return [(prefix, x)]
    if isinstance(x, (tuple, list)):
        for i, v in enumerate(x):
            out += leaves(v, f"{prefix}[{i}]")
    elif isinstance(x, dict):
        for k in sorted(x, key=repr):
            out += leaves(x[k], f"{prefix}[{k!r}]")
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):
        if type(x).__name__ in ("Profile", "Instrument"):
            return []
        for f in dataclasses.fields(x):
            out += leaves(getattr(x, f.name), f"{prefix}.{f.name}")
    return out


# ---------------------------------------------------------------- path exploration

@dataclasses.dataclass
class Path:
    """One explored path: the input that drove it, its path condition, and what ``run`` returned
    (shadowed values)."""

    witness: dict[str, Any]
    condition: Any
    result: Any


def _model_values(model: Any, variables: dict[str, Any]) -> dict[str, Any] | None:
    out = {}
    for name, v in variables.items():
        x = model.eval(v, model_completion=True)
        if z3.is_int_value(x):
            out[name] = x.as_long()
        elif z3.is_rational_value(x):
            f = Fraction(x.numerator_as_long(), x.denominator_as_long())
            whole = z3.is_int(v) or (z3.is_app(v) and v.decl().kind() == z3.Z3_OP_TO_REAL)
            out[name] = int(f) if whole and f.denominator == 1 else f
        else:
            return None
    return out


# the new solvers a renewed check asks in turn (explore, _ask_new): FLOOR_TACTIC,
# where ``purify-arith`` names every floor ``to_int(t)`` by a new whole number n with
# n <= t < n + 1 and ``elim-term-ite`` every if-then-else by a new number, so that the core sees
# linear (in)equalities over whole numbers only; Z3's default; and LIA_TACTIC, the same
# purification before Z3's linear-integer strategy.  The question and so the answer are the
# same; the time to an answer is not: with the close fee a bankruptcy price leaves booked (LIQ-007), the fund sits under nested
# floors whose coefficients carry the fee rate, and each of them stalled on some question where
# another answered at once (OBL-INV-024, okx with ``bankruptcy_includes_close_fee``: price path
# 15, the sixth question, a plain new solver no answer in 60 s, FLOOR_TACTIC 0.2 s; price path 7,
# the tenth question, FLOOR_TACTIC and a plain solver no answer within 16,000,000 units each, 100
# s, LIA_TACTIC with another seed 0.6 s)
FLOOR_TACTIC = ("simplify", "purify-arith", "elim-term-ite", "solve-eqs", "simplify", "smt")
LIA_TACTIC = ("simplify", "propagate-values", "elim-term-ite", "purify-arith", "simplify", "solve-eqs", "qflia")


def _tactic_solver(names: tuple[str, ...]) -> Callable[[z3.Context], z3.Solver]:
    return lambda ctx: z3.Then(*[z3.Tactic(t, ctx=ctx) for t in names], ctx=ctx).solver()


NEW_SOLVERS = (_tactic_solver(FLOOR_TACTIC), lambda ctx: z3.Solver(ctx=ctx), _tactic_solver(LIA_TACTIC))


def _ask_new(ctx: z3.Context, assertions: list[Any], seed: int, budget: int, deadline: float) -> tuple[Any, Any]:
    """Ask new solvers whether ``assertions`` are satisfiable, in rounds: round k asks each of
    :data:`NEW_SOLVERS` in turn with random seed ``seed + k`` and ``budget * 2**k`` resource
    units; the first answer that is not ``unknown`` is returned with its solver (``unknown`` only
    at ``deadline``).  Z3's time to answer one question is heavy-tailed: it varies by orders of
    magnitude with the solver and the seed (above), so no one search is waited on for long, and
    the budgets are resource units, so the answers do not depend on the machine's load."""
    k = 0
    while True:
        for make in NEW_SOLVERS:
            left = deadline - time.perf_counter()
            if left <= 0:
                return z3.unknown, None
            s = make(ctx)
            s.set("random_seed", seed + k)
            s.set("timeout", max(1, int(left * 1000)))
            s.set("rlimit", budget << k)
            s.add(*assertions)
            r = s.check()
            if r != z3.unknown:
                return r, s
        k += 1


def explore(variables: dict[str, Any], domain: list[Any], run: Callable[[dict[str, Any]], Any], *,
            seed: int, deadline: float, max_paths: int, fresh_after: int | None = None) -> tuple[list[Path], str]:
    """Cover ``domain`` with the paths of ``run``.

    ``variables`` maps names to Z3 terms; ``run(values)`` builds shadowed inputs from concrete
    ``values`` (each with its term), runs the code under :func:`concolic`, and returns its result.
    Returns the paths and ``"complete"`` (no input of the domain lies outside them),
    ``"timeout"`` or ``"too many paths"``.

    By default one solver is asked again after each new path (incremental).  With
    ``fresh_after`` (a Z3 resource limit, ``rlimit``: deterministic, unlike a time budget, so the
    paths found do not depend on the machine's load), a check that solver has not answered within
    that many resource units is asked of a *new* solver (the domain and every path's negation),
    and so is every later check of this exploration.  Z3 preprocesses the arithmetic (and so
    eliminates the floors of the rounding, ``to_int``) only on a solver's first check; a solver
    asked again answers with its incremental core, which stalled on the floors of a free fund
    balance under the ENG-004 cap and the average drawdown reference (measured: OBL-INV-024 on
    okx with ``fund_share = "capped_by_fee_rate"``, price path 7: no answer in 60 s at the
    fifth check, 1,200 s in the whole obligation, where a new solver answers the same question
    in 0.01 s), while on the shipped profiles the incremental solver is the faster one (okx,
    price path 11: 7.7 s against 27.9 s asking a new solver every time).  The question is the
    same either way; only the time to answer differs.  A renewed check asks new
    solvers in rounds of growing budgets (:func:`_ask_new`, from a fifth of ``fresh_after``): one
    plain new solver stalled too, on the nested floors of the close fee a bankruptcy price leaves
    (LIQ-007 with ``bankruptcy_includes_close_fee``)."""
    paths: list[Path] = []
    # a fresh context, as for every proof: the solver's search then does not depend on the terms
    # earlier obligations left in the global context (it did: a row explored in 9 s alone took
    # minutes at the end of an audit)
    fresh = z3.Context()
    base = [d.translate(fresh) for d in domain]
    negations: list[Any] = []
    s = z3.Solver(ctx=fresh)
    s.set("random_seed", seed)
    s.add(*base)
    mine = {n: v.translate(fresh) for n, v in variables.items()}
    renew = False  # ask a new solver for every check from now on
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return paths, "timeout"
        if len(paths) >= max_paths:
            return paths, "too many paths"
        # the verdict cache (proofs/cache.py), keyed by this exact question: "unsat" (the paths
        # cover the domain) is stored as a verdict; a next input is stored as a witness and used
        # only after substituting it into every assertion (a certificate checked on each use)
        key = (_cache.query_key(_cache.solver_text([*base, *negations], fresh), seed=seed,
                                limit=max_paths, kind="explore") if _cache.enabled() else None)
        hit = _cache.lookup(key) if key else None
        if hit is not None and hit[0] == "unsat":
            return paths, "complete"
        model = (_cache.witness_holds([*base, *negations], hit[1], fresh)
                 if hit is not None and hit[0] == "witness" else None)
        if model is not None:
            r = z3.sat
        elif renew:
            r, s = _ask_new(fresh, [*base, *negations], seed, max(1, fresh_after // 5), deadline)  # type: ignore[operator]  # renew is set only when fresh_after is not None
        else:
            s.set("timeout", max(1, int(left * 1000)))
            if fresh_after is not None:
                s.set("rlimit", fresh_after)
            r = s.check()
            if r == z3.unknown and fresh_after is not None:
                renew = True
                continue
        if r == z3.unsat:
            if key:
                _cache.put_unsat(key)
            return paths, "complete"
        if r != z3.sat:
            return paths, "timeout"
        if model is None:
            model = s.model()
            if key:
                w = _cache.model_constants(model)
                if w is not None:
                    _cache.put_witness(key, w)
        values = _model_values(model, mine)
        if values is None:
            return paths, "an irrational model value"
        with concolic() as pc:
            result = run(values)
            cond = z3.And(*pc) if pc else z3.BoolVal(True)
        paths.append(Path(values, cond, result))
        negations.append(z3.Not(cond).translate(fresh))
        s.add(negations[-1])


def check_replay(path: Path, variables: dict[str, Any], domain: list[Any], run: Callable[[dict[str, Any]], Any],
                 *, seed: int, timeout_ms: int = 10_000) -> str:
    """Guard against a value that escaped its shadow: draw a *second* input on ``path`` (another
    model of its condition), run it concretely, and compare every number of the result with the
    first run's terms evaluated at that input.  Returns ``"no other input"``, ``"agrees"`` or
    raises :class:`HarnessError` naming the first number that differs."""
    fresh = z3.Context()
    s = z3.Solver(ctx=fresh)
    s.set("random_seed", seed)
    s.set("timeout", timeout_ms)
    s.add(*[d.translate(fresh) for d in domain], path.condition.translate(fresh))
    s.add(z3.Or(*[(v != _z(path.witness[n])).translate(fresh) for n, v in variables.items()]))
    asserted = list(s.assertions())
    key = _cache.query_key(s.sexpr(), seed=seed, limit=timeout_ms, kind="replay") if _cache.enabled() else None
    hit = _cache.lookup(key) if key else None
    model = _cache.witness_holds(asserted, hit[1], fresh) if hit is not None and hit[0] == "witness" else None
    if model is None:
        if s.check() != z3.sat:
            return "no other input"
        model = s.model()
        if key:
            w = _cache.model_constants(model)
            if w is not None:
                _cache.put_witness(key, w)
    values = _model_values(model, {n: v.translate(fresh) for n, v in variables.items()})
    if values is None:
        return "no other input"
    again = run(values)
    first, second = leaves(path.result), leaves(again)
    if [n for n, _ in first] != [n for n, _ in second]:
        raise HarnessError("a second input of the same path ran a different shape")
    for (name, a), (_, b) in zip(first, second):
        predicted = model.eval(a.z.translate(fresh), model_completion=True) if isinstance(a, (SymInt, SymFrac, SymBool)) else a
        got = b.c if isinstance(b, (SymInt, SymFrac, SymBool)) else b
        if isinstance(predicted, z3.ExprRef):
            predicted = num.value_of(predicted)
        if predicted != got:
            raise HarnessError(f"{name}: the first run's term gives {predicted} at the second input, the run gave {got}")
    return "agrees"
