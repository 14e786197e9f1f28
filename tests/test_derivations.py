"""The closed forms of the bankruptcy and liquidation prices (LIQ-002, LIQ-003), derived with
sympy in backstop.proofs.derivations.prices, against (a) the formulas stated in the reference's
``_solve_price`` docstring and (b) the reference functions themselves on random exact inputs."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from typing import Any

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy.parsing.sympy_parser import implicit_multiplication, parse_expr, standard_transformations

from backstop.proofs.derivations import prices
from backstop.proofs.derivations.prices import as_function, derive
from backstop.reference import margin as M
from backstop.reference.profile import PriceBasis, TriggerRule, load_profile, profile_names
from backstop.reference.types import Instrument, PositionTerms, Tier, TierBasis, TierTable

from strategies import inverse_with_deductions

DERIVED = derive()
FUNCS = {key: as_function(expr) for key, expr in DERIVED.items()}
S = prices.SYMBOLS


# ---------------------------------------------------------------- (a) the stated formulas

_STATED_RE = re.compile(r"^\s*(Linear|Inverse),?\s*(?:requirement\s+)?at\s+(mark|entry):\s*p\s*=\s*(.+?)\s*$")


def _stated_formulas() -> dict[tuple[str, str], sympy.Expr]:
    """Parse ``_solve_price``'s docstring: ``Linear, requirement at mark:  p = (m - s k e + d) / (k (r - s))``
    and the like, with an optional ``, R = ...`` definition after the formula."""
    doc = M._solve_price.__doc__ or ""
    local = {n: sympy.Symbol(n) for n in ("m", "s", "k", "e", "r", "d", "p", "R")}
    tr = standard_transformations + (implicit_multiplication,)
    out: dict[tuple[str, str], sympy.Expr] = {}
    for line in doc.splitlines():
        mt = _STATED_RE.match(line)
        if not mt:
            continue
        parts = [x.strip() for x in re.split(r",\s+", mt.group(3))]
        expr = parse_expr(parts[0], local_dict=local, transformations=tr)
        for definition in parts[1:]:
            lhs, rhs = definition.split("=", 1)
            expr = expr.subs(local[lhs.strip()], parse_expr(rhs.strip(), local_dict=local, transformations=tr))
        out[(mt.group(1).lower(), mt.group(2))] = expr
    return out


def test_LIQ_003_docstring_states_all_four_closed_forms():
    stated = _stated_formulas()
    assert set(stated) == {(k, b) for k in prices.KINDS for b in prices.BASES}, (
        f"could not read four formulas from _solve_price's docstring; got {sorted(stated)}")


@pytest.mark.parametrize("kind", prices.KINDS)
@pytest.mark.parametrize("basis", prices.BASES)
def test_LIQ_003_derived_liquidation_price_is_the_stated_formula(kind, basis):
    derived = DERIVED[(kind, basis, "liquidation")]
    stated = _stated_formulas()[(kind, basis)]
    for side in (1, -1):  # s is +1 or -1: forms may differ by a factor s**2
        diff = sympy.simplify((derived - stated).subs(S["s"], side))
        assert diff == 0, f"{kind}/{basis}, s={side}: derived {derived} != stated {stated}"


@pytest.mark.parametrize("kind", prices.KINDS)
@pytest.mark.parametrize("basis", prices.BASES)
def test_LIQ_002_derived_bankruptcy_price_is_the_stated_formula_at_zero_rate(kind, basis):
    """LIQ-002: the bankruptcy price is the liquidation formula with rate 0 and no deduction."""
    derived = DERIVED[(kind, basis, "bankruptcy")]
    stated = _stated_formulas()[(kind, "mark")].subs({S["r"]: 0, S["d"]: 0})
    for side in (1, -1):
        assert sympy.simplify((derived - stated).subs(S["s"], side)) == 0


@pytest.mark.parametrize("kind", prices.KINDS)
@pytest.mark.parametrize("basis", prices.BASES)
def test_LIQ_003_derived_prices_solve_their_equations(kind, basis):
    """LIQ-002 / LIQ-003: substituting the closed forms back gives E = 0 and E = R."""
    p = S["p"]
    bp, lp = DERIVED[(kind, basis, "bankruptcy")], DERIVED[(kind, basis, "liquidation")]
    assert sympy.simplify(prices.equity(kind).subs(p, bp)) == 0
    assert sympy.simplify((prices.equity(kind) - prices.requirement(kind, basis)).subs(p, lp)) == 0


def test_LIQ_002_as_function_is_exact():
    f = FUNCS[("linear", "mark", "bankruptcy")]
    # long, k = 3, entry 10, margin 1: p = e - m / k = 29/3 exactly
    assert f(m=1, s=1, k=3, e=10) == Fraction(29, 3)
    assert isinstance(f(m=1, s=1, k=3, e=10), Fraction)
    with pytest.raises(TypeError):
        f(m=1.0, s=1, k=3, e=10)
    g = FUNCS[("linear", "mark", "liquidation")]
    with pytest.raises(ZeroDivisionError):
        g(m=1, s=1, k=3, e=10, r=1, d=0)  # r = s: no solution


# ---------------------------------------------------------------- (b) against the reference

def _instruments() -> list[Any]:
    out = []
    for name in profile_names():
        prof = load_profile(name)
        for inst in prof.instruments.values():
            out.append(pytest.param(prof.margin, inst, id=f"{name}:{inst.id}"))
    # The seed-001 trigger ("margin ratio hits zero") is shipped by no profile; cover it too.
    okx = load_profile("okx")
    zero = dataclasses.replace(okx.margin, trigger=TriggerRule.ZERO_EQUITY)
    for inst in okx.instruments.values():
        out.append(pytest.param(zero, inst, id=f"okx+zero_equity:{inst.id}"))
    # No shipped profile has an inverse contract with tier deductions: without these, ``d`` in the
    # inverse closed forms would only ever be 0.
    inverse = inverse_with_deductions(okx.instruments["BTC-USD-SWAP"])
    for basis in PriceBasis:
        rules = dataclasses.replace(okx.margin, mm_price_basis=basis)
        out.append(pytest.param(rules, inverse, id=f"synthetic-inverse-{basis.value}:{inverse.id}"))
    return out


INSTRUMENTS = _instruments()


def _tier_of(inst: Instrument, size: Fraction, price: Fraction):
    """The tier (independently of the reference): the first tier whose cap is >= the basis.
    Beyond the last cap the last tier's rate goes on applying, as in compute_tier_index
    (refusing such a position is is_within_tiers's job, MRG-004)."""
    table = inst.tier_table
    if table.basis is TierBasis.SIZE:
        basis = size
    else:  # value in whole settlement-currency units
        basis = size * inst.contract_value * (price if inst.is_linear else 1 / price)
    for t in table.tiers:
        if t.cap is None or basis <= t.cap:
            return t
    return table.tiers[-1]


def _k(inst: Instrument, size: Fraction) -> Fraction:
    return size * inst.contract_value * inst.scale


def _kind(inst: Instrument) -> str:
    return "linear" if inst.is_linear else "inverse"


@st.composite
def positions(draw: Any, inst: Instrument) -> PositionTerms:
    sign = draw(st.sampled_from([1, -1]))
    entry = draw(st.one_of(
        st.integers(1, 2_000_000).map(lambda n: Fraction(n, 10)),            # on a 0.1 grid up to 200k
        st.builds(Fraction, st.integers(1, 10**7), st.integers(1, 1000)),     # any rational
    ))
    table = inst.tier_table
    if table.basis is TierBasis.SIZE and table.bounded:
        most = int(table.max_cap / inst.lot_size)
    else:
        most = 10**6
    size = inst.lot_size * draw(st.one_of(st.integers(1, most), st.integers(1, 100)))
    caps = [t.cap for t in table.tiers if t.cap is not None] or [Fraction(10**6)]
    if table.basis is TierBasis.SIZE:  # tier boundaries, exactly
        size = draw(st.one_of(st.just(size), st.sampled_from(caps)))
    elif draw(st.booleans()):  # a notional spread over the whole table, in whole settlement units
        i = draw(st.integers(0, len(caps) - 1))  # a tier, then a notional inside it
        notional = draw(st.integers(int(caps[i - 1]) + 1 if i else 1, int(caps[i])))
        per_lot = inst.lot_size * inst.contract_value * (entry if inst.is_linear else 1 / entry)
        size = inst.lot_size * max(1, int(notional / per_lot))
    k = _k(inst, size)
    value = k * entry if inst.is_linear else k / entry
    margin = draw(st.one_of(
        st.integers(0, 2000).map(lambda a: int(value * Fraction(a, 1000))),  # 0 .. 2x the value
        st.integers(0, 10**16),
    ))
    return PositionTerms(sign, size, entry, margin)


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _bankruptcy_expected(inst: Instrument, pos: PositionTerms) -> Fraction | None:
    f = FUNCS[(_kind(inst), "mark", "bankruptcy")]
    try:
        v = f(m=pos.margin, s=pos.sign, k=_k(inst, pos.size), e=pos.entry)
    except ZeroDivisionError:
        return None
    return v if v > 0 else None


@pytest.mark.parametrize("rules, inst", INSTRUMENTS)
def test_LIQ_002_reference_bankruptcy_price_is_the_derived_closed_form(rules, inst):
    @SETTINGS
    @given(pos=positions(inst))
    def check(pos: PositionTerms) -> None:
        bp = M.compute_bankruptcy_price(inst, rules, pos)
        want = _bankruptcy_expected(inst, pos)
        assert bp.defined is (want is not None), f"defined: reference {bp.defined}, derived {want}"
        if bp.defined:
            assert bp.value == want

    check()


def _liquidation_candidates(inst: Instrument, rules: Any, pos: PositionTerms) -> dict[int, Fraction]:
    """Per tier: the derived liquidation price at that tier's rate, when it exists and the
    price at which the requirement is valued falls back in that tier."""
    basis = "mark" if rules.mm_price_basis is PriceBasis.MARK else "entry"
    f = FUNCS[(_kind(inst), basis, "liquidation")]
    zero = rules.trigger is TriggerRule.ZERO_EQUITY
    out: dict[int, Fraction] = {}
    for t in inst.tier_table.tiers:
        r = Fraction(0) if zero else t.mmr + rules.close_fee_rate
        d = 0 if zero else t.mm_deduction
        try:
            v = f(m=pos.margin, s=pos.sign, k=_k(inst, pos.size), e=pos.entry, r=r, d=d)
        except ZeroDivisionError:
            continue
        if v <= 0:
            continue
        at = _tier_of(inst, pos.size, v if basis == "mark" else pos.entry)
        if at is not None and at.index == t.index:
            out[t.index] = v
    return out


@pytest.mark.parametrize("rules, inst", INSTRUMENTS)
def test_LIQ_003_reference_liquidation_price_is_the_derived_closed_form(rules, inst):
    @SETTINGS
    @given(pos=positions(inst))
    def check(pos: PositionTerms) -> None:
        lp = M.compute_liquidation_price(inst, rules, pos)
        cands = _liquidation_candidates(inst, rules, pos)
        # a continuous table gives at most one self-consistent tier (LIQ-003's docstring)
        assert len(set(cands.values())) <= 1, f"several self-consistent liquidation prices: {cands}"
        assert lp.defined is bool(cands), f"defined: reference {lp.defined}, derived {cands}"
        if lp.defined:
            at = lp.value if rules.mm_price_basis is PriceBasis.MARK else pos.entry
            tier = _tier_of(inst, pos.size, at)
            assert tier is not None
            # the tier the reference result falls in, and the closed form at that tier's rate
            assert lp.value == cands[tier.index]

    check()
