"""One code, two interpretations: every public rule function of reference/margin.py, called on
Z3 variables and then evaluated at concrete values, gives exactly what the same function gives
when called on those concrete values.

This is what lets the proofs (which call the rule functions on Z3 terms) speak about the code
that the tests and users run.  The functions are enumerated by introspection, so a new public
function in margin.py is dual-run automatically; if it takes a parameter this test does not know
how to supply, or returns a kind of value it does not know how to compare, the coverage test
fails until a driver is added here.

Variables follow proofs/registry.py Context: every number has sort Real; a whole number (the
margin, in money units) is ``z3.ToReal(z3.Int(name))``.
"""

from __future__ import annotations

import inspect
from fractions import Fraction
from typing import Any

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.types import MaybePrice, PositionTerms

from strategies import INSTRUMENT_KEYS, PROFILES, Scenario, any_scenarios, examples, rules_variant, scenarios

RULE_FUNCTIONS: dict[str, Any] = {
    name: fn for name, fn in inspect.getmembers(M, inspect.isfunction)
    if fn.__module__ == M.__name__ and not name.startswith("_")
}

# The parameter names a rule function may take (see _args): structure (inst, rules) stays
# concrete; numbers (pos fields, mark, size, price) become Z3 variables.
KNOWN_PARAMS = {"inst", "rules", "pos", "mark", "size", "price", "entry", "leverage"}

SIGN, SIZE, ENTRY, MARK, PRICE = (z3.Real(n) for n in ("sign", "size", "entry", "mark", "price"))
MARGIN_INT = z3.Int("margin")
MARGIN = z3.ToReal(MARGIN_INT)  # a whole number in sort Real, as Context.money() makes it
SYM_POS = PositionTerms(SIGN, SIZE, ENTRY, MARGIN)


def _args(fn: Any, inst: Any, rules: Any, pos: PositionTerms, mark: Any, price: Any) -> list[Any]:
    # a leverage is a positive rational, as a price is: the same variable serves
    supply = {"inst": inst, "rules": rules, "pos": pos, "mark": mark, "size": pos.size, "price": price,
              "entry": pos.entry, "leverage": price}
    return [supply[p] for p in inspect.signature(fn).parameters]


def _q(x: Fraction | int) -> z3.ArithRef:
    x = Fraction(x)
    return z3.Q(x.numerator, x.denominator)


_SYMBOLIC_CACHE: dict[tuple[str, str, str, str], Any] = {}


def _symbolic(fname: str, sc: Scenario) -> Any:
    key = (fname, sc.profile, sc.inst.id, sc.variant)
    if key not in _SYMBOLIC_CACHE:
        fn = RULE_FUNCTIONS[fname]
        _SYMBOLIC_CACHE[key] = fn(*_args(fn, sc.inst, sc.rules, SYM_POS, MARK, PRICE))
    return _SYMBOLIC_CACHE[key]


def _evaluate(term: Any, subs: list[tuple[Any, Any]]) -> Any:
    """Substitute the concrete values into a term and read the result back exactly."""
    if not isinstance(term, z3.ExprRef):
        return term  # the structure decided it: a Python constant under both interpretations
    if z3.is_arith(term):
        assert term.is_real(), f"symbolic numbers must have sort Real, got {term.sort()}"
    return num.value_of(z3.simplify(z3.substitute(term, *subs)))


def _compare(fname: str, sym: Any, conc: Any, subs: list[tuple[Any, Any]], sc: Scenario) -> None:
    if isinstance(conc, MaybePrice):
        assert isinstance(sym, MaybePrice), fname
        defined = _evaluate(sym.defined, subs)
        assert isinstance(conc.defined, bool) and isinstance(defined, bool), (fname, sc)
        assert defined == conc.defined, (fname, sc, defined, conc)
        if conc.defined:
            assert _evaluate(sym.value, subs) == conc.value, (fname, sc)
        return
    assert isinstance(conc, (bool, int, Fraction)) and not isinstance(conc, float), (fname, type(conc))
    got = _evaluate(sym, subs)
    assert type(got) is bool if isinstance(conc, bool) else not isinstance(got, bool), (fname, sc, got, conc)
    assert got == conc, (fname, sc, got, conc)


# ---------------------------------------------------------------- coverage of the rule functions

@pytest.mark.rules("NUM-001")
def test_every_public_rule_function_has_a_dual_run_driver():
    assert len(RULE_FUNCTIONS) >= 21, sorted(RULE_FUNCTIONS)
    for name, fn in RULE_FUNCTIONS.items():
        params = list(inspect.signature(fn).parameters)
        unknown = set(params) - KNOWN_PARAMS
        assert not unknown, f"{name} takes {sorted(unknown)}: add a driver to tests/property/test_dual_run.py"
        assert params and params[0] == "inst", f"{name}: rule functions take the instrument first"


@pytest.mark.rules("NUM-001")
@pytest.mark.parametrize("fname", sorted(RULE_FUNCTIONS))
def test_every_rule_function_returns_a_comparable_kind(fname, okx):
    inst = okx.instruments["BTC-USDT-SWAP"]
    pos = PositionTerms(1, Fraction(100), Fraction(30000), 150_000_000)
    fn = RULE_FUNCTIONS[fname]
    out = fn(*_args(fn, inst, okx.margin, pos, Fraction(29990), Fraction(29990)))
    assert isinstance(out, (MaybePrice, bool, int, Fraction)), f"{fname} returned {type(out).__name__}"


# ---------------------------------------------------------------- the dual run

@pytest.mark.rules("NUM-001", "NUM-002", "MRG-001", "MRG-002", "MRG-003", "MRG-004", "MRG-005",
                   "MRG-006", "MRG-007", "MRG-008", "LIQ-001", "LIQ-002", "LIQ-003")
@pytest.mark.parametrize("fname", sorted(RULE_FUNCTIONS))
def test_symbolic_and_concrete_interpretations_agree(fname):
    """NUM-001: each rule function, on every instrument and rule variant of every shipped profile."""

    @settings(max_examples=examples(40), deadline=None)
    @given(st.one_of(any_scenarios(), scenarios(within_tiers=False)))
    def run(sc: Scenario) -> None:
        fn = RULE_FUNCTIONS[fname]
        p = sc.pos
        conc = fn(*_args(fn, sc.inst, sc.rules, p, sc.mark, sc.mark))
        subs = [(SIGN, _q(p.sign)), (SIZE, _q(p.size)), (ENTRY, _q(p.entry)),
                (MARGIN_INT, z3.IntVal(p.margin)), (MARK, _q(sc.mark)), (PRICE, _q(sc.mark))]
        _compare(fname, _symbolic(fname, sc), conc, subs, sc)

    run()


@pytest.mark.rules("NUM-001", "MRG-004", "LIQ-003")
@pytest.mark.parametrize("fname", sorted(RULE_FUNCTIONS))
def test_dual_run_on_every_instrument_and_variant(fname, profiles):
    """NUM-001: a fixed long and short on every instrument of every shipped profile, under every
    rule variant, at a mark below and above the entry (so no combination is left to chance)."""
    fn = RULE_FUNCTIONS[fname]
    for pname, iid in INSTRUMENT_KEYS:
        prof = profiles[pname]
        inst = prof.instruments[iid]
        for variant in ("shipped", "zero_equity", "other_basis"):
            rules = rules_variant(prof, variant)
            entry, size = Fraction(30000), inst.lot_size * 7
            value = size * inst.contract_value * (entry if inst.is_linear else 1 / entry) * inst.scale
            for sign in (1, -1):
                pos = PositionTerms(sign, size, entry, int(value / 10))
                for mark in (Fraction("29000.5"), Fraction(31000)):
                    sc = Scenario(pname, variant, inst, rules, pos, mark)
                    conc = fn(*_args(fn, inst, rules, pos, mark, mark))
                    subs = [(SIGN, _q(sign)), (SIZE, _q(size)), (ENTRY, _q(entry)),
                            (MARGIN_INT, z3.IntVal(pos.margin)), (MARK, _q(mark)), (PRICE, _q(mark))]
                    _compare(fname, _symbolic(fname, sc), conc, subs, sc)


@pytest.mark.rules("LIQ-002", "LIQ-003", "NUM-002")
@pytest.mark.parametrize("fname", ["compute_bankruptcy_price", "compute_liquidation_price",
                                   "compute_bankruptcy_price_on_tick", "compute_liquidation_price_on_tick"])
def test_dual_run_on_the_edges_where_prices_stop_existing(fname, profiles):
    """LIQ-002: hand-picked edges: margin exactly equal to the value (no price), one unit less,
    and zero margin, for every instrument, side and variant."""
    for pname, iid in INSTRUMENT_KEYS:
        prof = profiles[pname]
        inst = prof.instruments[iid]
        for variant in ("shipped", "zero_equity", "other_basis"):
            rules = rules_variant(prof, variant)
            entry, size = Fraction(30000), inst.lot_size * 10
            value = size * inst.contract_value * (entry if inst.is_linear else 1 / entry) * inst.scale
            for sign in (1, -1):
                for margin in {0, int(value), int(value) - 1, int(value) + 1}:
                    if margin < 0:
                        continue
                    pos = PositionTerms(sign, size, entry, margin)
                    sc = Scenario(pname, variant, inst, rules, pos, entry)
                    fn = RULE_FUNCTIONS[fname]
                    conc = fn(inst, rules, pos)
                    subs = [(SIGN, _q(sign)), (SIZE, _q(size)), (ENTRY, _q(entry)), (MARGIN_INT, z3.IntVal(margin))]
                    _compare(fname, _symbolic(fname, sc), conc, subs, sc)


@pytest.mark.rules("NUM-001")
def test_the_dual_run_comparison_detects_a_disagreement():
    """NUM-001: a rule written with SMT's Euclidean integer division (instead of num.div_floor)
    gives -3 for 7 div -2 where Python's 7 // -2 is -4; the comparison must flag it."""
    sym = z3.ToReal(z3.ToInt(SIZE) / z3.IntVal(-2))      # SMT-LIB div: Euclidean
    sc = Scenario("okx", "shipped", PROFILES["okx"].instruments["BTC-USDT-SWAP"], PROFILES["okx"].margin,
                  PositionTerms(1, Fraction(7), Fraction(1), 0), Fraction(1))
    subs = [(SIZE, _q(7))]
    _compare("kernel", num.div_floor(SIZE, -2), 7 // -2, subs, sc)  # the kernel's floor agrees
    with pytest.raises(AssertionError):
        _compare("planted", sym, 7 // -2, subs, sc)
    with pytest.raises(AssertionError):  # a MaybePrice whose definedness differs
        _compare("planted", MaybePrice(SIZE > 8, SIZE), MaybePrice(True, Fraction(7)), subs, sc)
