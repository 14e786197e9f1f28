"""The planted-bug harness's equivalence checker (``tests/mutation.py``), on small planted cases.

A mutant that no obligation kills is compared with the original by the solver at every call an
obligation makes, under the obligation's premises.  The toy rule functions below are mutated by the
harness itself (this module is their source); each toy obligation is built here and handed to the
checker directly, never registered (the registry's obligations stay as they are).  Expected
verdicts are derived by hand in the comments.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from typing import Any, Callable

import pytest

import mutation
from backstop.proofs.registry import Context, Instance, Obligation
from backstop.reference import num
from backstop.reference.profile import load_profile


# ---------------------------------------------------------------- toy rule functions (mutated below)

def toy_toward(x: Any, s: Any) -> Any:
    """x moved one unit toward the side s: x + 1 for s > 0, else x - 1."""
    return num.ite(s > 0, x + 1, x - 1)


def toy_positive_part(x: Any) -> Any:
    """max(x, 0), written with a strict comparison."""
    return num.ite(x > 0, x, 0)


def toy_cubes(x: Any, y: Any, z: Any) -> Any:
    """x + 1 where x^3 + y^3 = z^3, else x (on positive integers the first branch is never taken:
    Fermat for n = 3 -- a fact out of the solver's reach in a second)."""
    return num.ite(x * x * x + y * y * y == z * z * z, x + 1, x)


def toy_floor(x: Any) -> Any:
    """floor(x), with a concrete branch of its own (as num.floor has)."""
    if num.is_symbolic(x):
        return num.floor(x)
    return math.floor(x)


MUTANTS = {m.key: m for m in mutation.generate_mutants(
    {"toy": sys.modules[__name__]}, {"toy": ("toy_toward", "toy_positive_part", "toy_cubes", "toy_floor")})}


def _mutant(function: str, op: str, before: str, after: str) -> mutation.Mutant:
    (m,) = [m for m in MUTANTS.values()
            if (m.function, m.op, m.before, m.after) == (function, op, before, after)]
    return m


def _obligation(body: Callable[[Context], Any], premises: str) -> Callable[[str], list[Instance]]:
    ob = Obligation("TOY-EQ", "toy", (), "toy", premises, body, per_instrument=False)
    profile = load_profile("okx")
    return lambda name: [Instance(ob, profile, None)]


def _signed(ctx: Context) -> Any:  # x rational, s = +1 or -1 (the sign premise)
    x, s = ctx.rational("x"), ctx.sign("s")
    return toy_toward(x, s) == toy_toward(x, s)


def _unsigned(ctx: Context) -> Any:  # x and s rational, no premise
    x, s = ctx.rational("x"), ctx.rational("s")
    return toy_toward(x, s) == toy_toward(x, s)


def _check(m: mutation.Mutant, body: Callable[[Context], Any], premises: str = "", **kw: Any) -> mutation.Equivalence:
    return mutation.check_equivalence(m, ("okx",), instances_of=_obligation(body, premises), **kw)


# ---------------------------------------------------------------- equivalent rewrites are proved

def test_a_truly_equivalent_rewrite_is_proved_equivalent():
    # x > 0 -> x >= 0 in ite(x > 0, x, 0): they differ only at x = 0, where both branches are 0.
    m = _mutant("toy_positive_part", "cmp", "x > 0", "x >= 0")

    def body(ctx: Context) -> Any:
        x = ctx.rational("x")
        return toy_positive_part(x) >= 0

    eq = _check(m, body, "x rational")
    assert eq.verdict == "equivalent", eq.summary()
    assert eq.calls == 1 and eq.solver_calls == 1  # the terms differ: the solver had to decide it
    assert eq.obligations == {"TOY-EQ": "x rational"}
    assert eq.instances == ["okx:TOY-EQ"]


def test_equivalence_on_the_premises_uses_them():
    # s > 0 -> s >= 0 differs only at s = 0, which the sign premise (s = +1 or -1) excludes ...
    m = _mutant("toy_toward", "cmp", "s > 0", "s >= 0")
    eq = _check(m, _signed, "x rational; s = +1 or -1")
    assert eq.verdict == "equivalent", eq.summary()
    # ... and without it, s = 0 distinguishes them: original 0 - 1, mutant 0 + 1 (x = 0).
    eq = _check(m, _unsigned, "x and s rational")
    assert eq.verdict == "differs", eq.summary()
    assert eq.model["s"] == 0
    x = eq.model["x"]
    assert "original" in eq.witness and "mutant" in eq.witness
    assert (x - 1, x + 1) == (toy_toward(x, -1), toy_toward(x, 1))  # the two outputs the witness names


def test_identical_terms_need_no_solver_and_a_repeated_call_is_checked_once():
    # the same call twice in one body is checked once; identical terms need no solver
    m = _mutant("toy_toward", "cmp", "s > 0", "s >= 0")

    def body(ctx: Context) -> Any:
        x = ctx.rational("x")
        return toy_toward(x, 1) == toy_toward(x, 1)  # s concrete: 1 > 0 and 1 >= 0 both True

    eq = _check(m, body, "x rational")
    # the mutated node ran only on the concrete s = 1, though the call had a term (x): that counts
    assert eq.verdict == "equivalent", eq.summary()
    assert eq.calls == 1 and eq.solver_calls == 0


# ---------------------------------------------------------------- non-equivalent rewrites are refuted

def test_a_non_equivalent_rewrite_is_refuted_with_a_model():
    # x + 1 -> x - 1 in the s > 0 branch: under s = +1 the outputs are x + 1 and x - 1 (differ by 2);
    # under s = -1 both are x - 1.  So every distinguishing model has s = 1.
    m = _mutant("toy_toward", "arith", "x + 1", "x - 1")
    eq = _check(m, _signed, "x rational; s = +1 or -1")
    assert eq.verdict == "differs", eq.summary()
    assert eq.model["s"] == 1
    x = eq.model["x"]
    assert isinstance(x, (int, Fraction))
    mutated = mutation._compile(m)
    assert toy_toward(x, 1) - mutated(x, 1) == 2
    assert "a model of the premises where toy_toward differs" in eq.witness
    assert "inputs: x = " in eq.witness and "s = 1" in eq.witness


def test_a_hole_raises_MutantIsAHole_and_an_equivalent_mutant_passes(monkeypatch):
    # assert_caught: not killed (no obligation of okx calls the toy), then the equivalence check
    monkeypatch.setattr(mutation, "run_mutant", lambda m, chain, retry: mutation.Outcome(m))
    real = mutation.check_equivalence
    monkeypatch.setattr(mutation, "check_equivalence",
                        lambda m, chain, **kw: real(m, chain, instances_of=_obligation(_signed, "s = +1 or -1"), **kw))
    with pytest.raises(mutation.MutantIsAHole):
        mutation.assert_caught(_mutant("toy_toward", "arith", "x + 1", "x - 1"), ("okx",))
    out = mutation.assert_caught(_mutant("toy_toward", "cmp", "s > 0", "s >= 0"), ("okx",))
    assert mutation.status(out) == "equivalent"


# ---------------------------------------------------------------- what the solver cannot decide is unknown

def test_a_timeout_is_unknown_and_not_equivalent():
    # the mutant (x + 1 -> x - 1) differs exactly where x^3 + y^3 = z^3: proving that never holds on
    # positive integers is beyond the solver in one second, so the verdict is unknown -- not equivalent.
    m = _mutant("toy_cubes", "arith", "x + 1", "x - 1")

    def body(ctx: Context) -> Any:
        x, y, z = ctx.integer("x"), ctx.integer("y"), ctx.integer("z")
        for v in (x, y, z):
            ctx.assume(v >= 1)
        return toy_cubes(x, y, z) >= x

    eq = _check(m, body, "x, y, z integers >= 1", limit=1.0)
    assert eq.verdict == "unknown", eq.summary()
    assert "solver unknown" in eq.detail
    with pytest.raises(mutation.MutantIsUndecided):
        raise mutation.MutantIsUndecided(eq.summary())


def test_a_mutation_in_a_concrete_only_branch_is_evaluated_at_a_model():
    # math.floor -> math.ceil in the concrete branch: on Z3 terms the mutated node never runs (the
    # outputs are identical terms, which proves nothing about it), so the call is evaluated
    # concretely at a model of the premises.  With 2x = 1 the only model is x = 1/2, where
    # floor(1/2) = 0 and ceil(1/2) = 1.
    m = _mutant("toy_floor", "round", "math.floor", "math.ceil")

    def body(ctx: Context) -> Any:
        x = ctx.rational("x")
        ctx.assume(2 * x == 1)
        return toy_floor(x) <= x

    eq = _check(m, body, "x = 1/2")
    assert eq.verdict == "differs", eq.summary()
    assert eq.model == {"x": Fraction(1, 2)}
    assert "evaluated concretely" in eq.witness and "original 0, mutant 1" in eq.witness


def test_a_concrete_only_mutation_that_agrees_at_the_models_is_unknown():
    # on integers floor and ceil agree, so every model agrees -- but agreement at some points proves
    # nothing: unknown, not equivalent.
    m = _mutant("toy_floor", "round", "math.floor", "math.ceil")

    def body(ctx: Context) -> Any:
        x = ctx.integer("x")
        return toy_floor(x) <= x

    eq = _check(m, body, "x an integer")
    assert eq.verdict == "unknown", eq.summary()
    assert "never evaluated on Z3 terms" in eq.detail and "agree" in eq.detail
    assert (toy_floor(Fraction(1, 2)), mutation._compile(m)(Fraction(1, 2))) == (0, 1)  # a real bug off the premises


def test_no_calling_obligation_is_unknown():
    m = _mutant("toy_positive_part", "cmp", "x > 0", "x >= 0")
    eq = _check(m, lambda ctx: ctx.rational("x") >= ctx.rational("y"), "x, y rational")
    assert eq.verdict == "unknown" and eq.calls == 0
    assert "no obligation" in eq.detail


def test_params_mark_holes_and_undecided_as_strict_xfails_of_their_own_kind():
    ms = list(MUTANTS.values())[:3]
    ps = mutation.params(ms, {ms[0].key: "a hole"}, {ms[1].key: "undecided"})
    (h,), (u,), rest = ps[0].marks, ps[1].marks, ps[2].marks
    assert h.kwargs["strict"] and h.kwargs["raises"] is mutation.MutantIsAHole
    assert u.kwargs["strict"] and u.kwargs["raises"] is mutation.MutantIsUndecided
    assert not rest
