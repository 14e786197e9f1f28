"""The concolic harness behind OBL-INV-024: shadowed numbers compute what plain numbers compute,
record the branches they take, survive the plumbing without losing their terms, and the kernel
refuses a path set that does not cover the domain."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.proofs.concolic import (HarnessError, SymFrac, SymInt, check_replay, concolic, explore, leaves,
                                      shadow_of, sym)
from backstop.proofs.kernel import prove
from backstop.proofs.loop import LoopScenario, loop_instrument
from backstop.proofs.registry import Context, Instance, Obligation, Scope
from backstop.reference import num
from backstop.reference.profile import load_profile

OKX = load_profile("okx")

ints = st.integers(-10**6, 10**6)
fracs = st.fractions(min_value=-1000, max_value=1000, max_denominator=50)


def _value(term):
    return num.value_of(z3.simplify(term))


@pytest.mark.rules("INV-024")
@given(a=ints, b=ints.filter(lambda x: x != 0), f=fracs, g=fracs.filter(lambda x: x != 0))
@settings(max_examples=150, deadline=None)
def test_shadowed_arithmetic_agrees_with_plain_arithmetic(a, b, f, g):
    """Every operator gives the plain result, and its term evaluates to the same value."""
    A, B = sym(a, z3.RealVal(a)), sym(b, z3.RealVal(b))
    F, G = sym(f, num.lift(f)), sym(g, num.lift(g))
    with concolic():
        cases = [(A + B, a + b), (A - B, a - b), (A * B, a * b), (A // B, a // b), (A % B, a % b),
                 (F + A, f + a), (A + F, a + f), (F * G, f * g), (F / G, f / g),
                 (A + Fraction(1, 3), a + Fraction(1, 3)), (7 - A, 7 - a), (-F, -f), (abs(F), abs(f)),
                 (math.floor(F), math.floor(f)), (math.ceil(F), math.ceil(f)), (3 * F, 3 * f), (F - 2, f - 2)]
        for got, want in cases:
            assert got == want
            assert isinstance(got, (SymInt, SymFrac))
            assert _value(got.z) == want
            assert type(got.c) is type(want) or isinstance(want, Fraction)
        with pytest.raises(HarnessError):  # int / int is a float in Python: never in exact code
            A / B
        with pytest.raises(HarnessError):  # a plain Fraction first would compute a plain number: fail closed
            Fraction(1, 3) + A
        with pytest.raises(HarnessError):
            Fraction(A)


@pytest.mark.rules("INV-024")
def test_comparisons_record_the_branch_taken():
    x = sym(5, z3.ToReal(z3.Int("x")))
    with concolic() as path:
        assert x > 3
        assert not (x < 0)
        assert x > Fraction(1, 2)        # the shadowed value first (a plain Fraction first is refused)
        if x:                            # truth is a comparison with zero
            pass
    assert len(path) == 4
    s = z3.Solver()
    s.add(*path)
    s.add(z3.Int("x") == 2)              # 2 > 3 is false: the recorded path excludes it
    assert s.check() == z3.unsat


@pytest.mark.rules("INV-024")
def test_escaping_a_shadow_is_refused():
    x = sym(5, z3.ToReal(z3.Int("x")))
    with pytest.raises(HarnessError):
        int(x)
    with pytest.raises(HarnessError):
        round(sym(Fraction(1, 2), z3.Real("y")))
    with pytest.raises(HarnessError):    # read by a plain Fraction: the term would be dropped
        Fraction(1, 2) < x
    with pytest.raises(HarnessError):
        Fraction(x)


def _loop():
    inst = loop_instrument(OKX)
    ctx = Context(OKX, inst)
    sc = LoopScenario(OKX, inst)
    variables = sc.declare(ctx)
    return sc, variables, [p for p in ctx.premises if isinstance(p, z3.ExprRef)]


@pytest.mark.rules("INV-024")
def test_a_shadowed_run_matches_the_plain_run():
    """The step function on shadowed inputs returns exactly what it returns on plain ones."""
    sc, variables, _ = _loop()
    values = {"price path": 9, "cash A": 3, "cash B": 0, "cash C": 11, "cash D": 7, "fund": 440_000}
    with concolic() as path:
        shadowed = sc.run(values, variables)
    plain = sc.run(values)
    a, b = leaves(shadowed), leaves(plain)
    assert [n for n, _ in a] == [n for n, _ in b]
    assert [getattr(v, "c", v) for _, v in a] == [v for _, v in b]
    assert path  # the plumbing branched on the money
    assert any(isinstance(v, (SymInt, SymFrac)) for _, v in a)  # and the results carry terms


@pytest.mark.rules("INV-024")
def test_no_value_escapes_its_term_on_any_path_of_two_rows():
    """For every path of two price rows, a second input on the same path runs to exactly what the
    first run's terms predict -- a value frozen into a constant would differ."""
    sc, variables, domain = _loop()
    agreed = 0
    for row in (3, 11):
        d = domain + [variables["price path"] == row]
        paths, status = explore(variables, d, lambda v: sc.run(v, variables), seed=7,
                                deadline=time.perf_counter() + 120, max_paths=64)
        assert status == "complete"
        for p in paths:
            if check_replay(p, variables, d, sc.run, seed=7) == "agrees":
                agreed += 1
    assert agreed >= 10


@pytest.mark.rules("INV-024")
def test_the_prover_refuses_paths_that_do_not_cover_the_domain():
    """Drop one explored path: the kernel's own exhaustiveness check must fail (never 'proved')."""
    sc, variables, domain = _loop()

    def body(ctx):
        v = sc.declare(ctx)
        if not ctx.symbolic:
            return sc.claim(sc.run(v), symbolic=False)
        row = v["price path"] == 12
        paths, status = explore(v, [p for p in ctx.premises if isinstance(p, z3.ExprRef)] + [row],
                                lambda vals: sc.run(vals, v), seed=3, deadline=time.perf_counter() + 60, max_paths=64)
        assert status == "complete" and len(paths) >= 2
        opts = [(f"path {i}", p.condition, sc.claim(p.result, symbolic=True)) for i, p in enumerate(paths)][1:]
        others = z3.And(v["price path"] != 12)
        ctx.partitioned_cases("path", [("row 12", row, opts), ("other rows", others, [("any", True)])])
        return True

    ob = Obligation("OBL-TEST-LOOP", "partial paths", (), "t", "p", body, Scope.BOUNDED, limit_seconds=120,
                    per_instrument=False)
    r = prove(Instance(ob, OKX, None))
    assert r.verdict in ("error", "unknown") and "not shown exhaustive" in r.detail, r
