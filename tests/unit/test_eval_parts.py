"""Issue 14: the margin slice computed once (``evaluate.evaluate_parts``, ``queries.query_margin``)
equals every public rule function computed from scratch, and the lazy kernel branch
(``num.branch``) computes only the taken side concretely and exactly ``ite`` of both symbolically.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import z3

from backstop.reference import adl as A
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.errors import BackstopError, KernelTypeError
from backstop.reference.evaluate import evaluate_parts
from backstop.reference.profile import load_profile, load_profile_text
from backstop.reference.queries import query_margin
from backstop.reference.types import MaybePrice, Position, PositionTerms

VARIANTS = {
    "okx+bpfee": 'extends = "okx"\nname = "okx+bpfee"\n[margin]\nbankruptcy_includes_close_fee = true\n',
    "okx+zero": 'extends = "okx"\nname = "okx+zero"\n[margin]\ntrigger = "zero_equity"\n',
    "okx+entry": 'extends = "okx"\nname = "okx+entry"\n[margin]\nmm_price_basis = "entry"\n',
}


def _profiles():
    out = [load_profile(n) for n in ("okx", "binance", "bybit")]
    return out + [load_profile_text(t, n) for n, t in VARIANTS.items()]


def _cases(n: int, seed: int):
    rng = random.Random(seed)
    profs = _profiles()
    out = []
    while len(out) < n:
        prof = profs[len(out) % len(profs)]
        inst = rng.choice(list(prof.instruments.values()))
        caps = [t.cap for t in inst.tier_table.tiers if t.cap is not None]
        mark = inst.tick_size * rng.randint(150_000, 450_000)
        size = rng.choice(caps) if caps and inst.tier_table.basis.value == "size" and rng.random() < 0.3 \
            else inst.lot_size * rng.randint(1, 30_000)
        entry = inst.tick_size * rng.randint(150_000, 450_000)
        k = size * inst.contract_value * inst.scale
        value = k * entry if inst.is_linear else k / entry
        margin = int(value * Fraction(rng.choice([0, 5, 30, 1000, 1001, 3000]), 1000))
        pos = Position(inst.id, rng.choice(["long", "short"]), size, entry, "isolated", margin)
        try:
            evaluate_parts(prof, pos, mark)
        except BackstopError:
            continue
        out.append((prof, pos, mark))
    return out


def _from_scratch(prof, pos: Position, mark: Fraction) -> dict:
    """Every margin answer's value from its public rule function, nothing shared."""
    inst, rules, t = prof.instrument(pos.instrument), prof.margin, pos.terms()
    price = mark if rules.mm_price_basis.value == "mark" else pos.entry_price
    lp = M.compute_liquidation_price(inst, rules, t)
    at = (lp.value if rules.mm_price_basis.value == "mark" else pos.entry_price) if lp.defined is True else None
    cap = M.compute_tier_cap(inst, pos.size, price)
    equity = M.compute_equity(inst, t, mark)
    return {
        "position_value": M.compute_position_value(inst, pos.size, mark),
        "unrealized_pnl": M.compute_unrealized_pnl(inst, t, mark),
        "equity": equity,
        "tier": M.compute_tier_index(inst, pos.size, mark),
        "tier_mmr": M.compute_tier_mmr(inst, pos.size, mark),
        "maintenance_margin": M.compute_maintenance_margin(inst, rules, t, mark),
        "maintenance_margin_units": M.compute_maintenance_margin_units(inst, rules, t, mark),
        "close_fee": M.compute_close_fee(inst, rules, t, mark),
        "close_fee_units": M.compute_close_fee_units(inst, rules, t, mark),
        "liquidation_requirement": M.compute_liquidation_requirement(inst, rules, t, mark),
        "margin_ratio": M.compute_margin_ratio(inst, t, mark),
        "required_margin_ratio": M.compute_required_margin_ratio(inst, rules, t, mark),
        "liquidatable": M.is_liquidatable(inst, rules, t, mark),
        "realized_pnl_at_mark_units": M.compute_realized_pnl_units(inst, t, mark),
        "bankruptcy_price": M.compute_bankruptcy_price(inst, rules, t).get(),
        "bankruptcy_price_on_tick": M.compute_bankruptcy_price_on_tick(inst, rules, t).get(),
        "liquidation_price": lp.get(),
        "liquidation_price_on_tick": M.compute_liquidation_price_on_tick(inst, rules, t).get(),
        "mm_price": price,
        "tier_used": M.compute_tier_index(inst, pos.size, price),
        "mmr_used": M.compute_tier_mmr(inst, pos.size, price),
        "deduction_used": M.compute_tier_deduction(inst, pos.size, price),
        "tier_imr": M.compute_tier_imr(inst, pos.size, price),
        "tier_max_leverage": M.compute_tier_max_leverage(inst, pos.size, price),
        "tier_cap": cap.get(),
        "tier_max_size": L.compute_max_size_in_tier(inst, M.compute_tier_index(inst, pos.size, price), price)
        if cap.defined else None,
        "initial_margin": M.compute_initial_margin(inst, rules, t, mark),
        "initial_margin_units": M.compute_initial_margin_units(inst, rules, t, mark),
        "leverage": M.compute_leverage(inst, t) if pos.margin > 0 else None,
        "within_max_leverage": M.is_within_max_leverage(inst, t),
        "effective_leverage": A.compute_effective_leverage(inst, t, mark) if equity > 0 else None,
        "tier_at_liquidation_price": None if at is None else M.compute_tier_index(inst, pos.size, at),
        "mmr_at_liquidation_price": None if at is None else M.compute_tier_mmr(inst, pos.size, at),
        "deduction_at_liquidation_price": None if at is None else M.compute_tier_deduction(inst, pos.size, at),
    }


@pytest.mark.rules("MRG-001", "MRG-002", "MRG-003", "MRG-004", "MRG-005", "MRG-006", "MRG-007", "MRG-008",
                   "MRG-009", "LIQ-001", "LIQ-002", "LIQ-003")
def test_margin_slice_computed_once_equals_every_rule_function_from_scratch():
    cases = _cases(400, 14)
    kinds = {"no bankruptcy price": 0, "no liquidation price": 0, "inverse": 0}
    for prof, pos, mark in cases:
        got = {k: q.value for k, q in query_margin(prof, pos, mark).items()}
        want = _from_scratch(prof, pos, mark)
        for name, v in want.items():
            assert type(got[name]) is type(v) or not isinstance(v, (bool, type(None))), (name, got[name], v)
            assert got[name] == v, (prof.name, pos, mark, name, got[name], v)
        kinds["no bankruptcy price"] += want["bankruptcy_price"] is None
        kinds["no liquidation price"] += want["liquidation_price"] is None
        kinds["inverse"] += not prof.instrument(pos.instrument).is_linear
    assert all(v > 0 for v in kinds.values()), kinds  # the edges were reached


# ---------------------------------------------------------------- num.branch

@pytest.mark.rules("NUM-001")
def test_branch_concretely_runs_only_the_taken_side():
    def boom():
        raise AssertionError("the branch not taken was computed")
    assert num.branch(True, lambda: 7, boom) == 7
    assert num.branch(False, boom, lambda: Fraction(1, 3)) == Fraction(1, 3)
    assert num.branch(2 > 1, lambda: num.div(1, 2), lambda: num.div(1, 0)) == Fraction(1, 2)  # 1/0 never runs


@pytest.mark.rules("NUM-001")
def test_branch_refuses_a_condition_that_is_neither_bool_nor_term():
    with pytest.raises(KernelTypeError):
        num.branch(1, lambda: 1, lambda: 2)
    with pytest.raises(KernelTypeError):  # even when both sides are the same value
        num.branch(Fraction(1), lambda: 5, lambda: 5)


@pytest.mark.rules("NUM-001")
def test_branch_symbolically_is_ite_of_both_sides():
    x = z3.Real("x")
    # numbers: the very term ite builds
    assert num.branch(x > 0, lambda: x * 2, lambda: -x).eq(num.ite(x > 0, x * 2, -x))
    # booleans and MaybePrice: field by field; check by the solver at both sides
    got = num.branch(x > 0, lambda: MaybePrice(True, x), lambda: MaybePrice(x < -1, Fraction(3)))
    s = z3.Solver()
    s.add(z3.Not(z3.And(z3.Implies(x > 0, z3.And(got.defined, got.value == x)),
                        z3.Implies(z3.Not(x > 0), z3.And(got.defined == (x < -1), got.value == 3)))))
    assert s.check() == z3.unsat
    pair = num.branch(x > 0, lambda: (x, 1), lambda: (0, 1))
    assert isinstance(pair, tuple) and pair[1] == 1 and pair[0].eq(num.ite(x > 0, x, 0))


@pytest.mark.rules("MRG-001", "MRG-002")
def test_linear_instrument_never_computes_the_inverse_form():
    """The counterexample replay of issue 14 ("not replayed: ZeroDivisionError"): a model may give a
    linear position a price of 0 where only the inverse form divides by it.  Linear value at 0:
    k * 0 = 0; a long's PnL at mark 0: 1 * k * (0 - e) = -k e, with k = 100 * 0.01 * 10^6 = 10^6."""
    okx = load_profile("okx")
    lin = okx.instruments["BTC-USDT-SWAP"]
    pos = PositionTerms(1, Fraction(100), Fraction(30000), 0)
    assert M.compute_position_value(lin, Fraction(100), 0) == 0
    assert M.compute_unrealized_pnl(lin, pos, 0) == -10**6 * 30000


@pytest.mark.rules("LIQ-003")
def test_liquidation_price_solves_no_tier_above_the_one_it_takes(monkeypatch):
    """LIQ-003 by tiers from the bottom: a tier-1 position (okx, 100 contracts; 100 <= 500) has its
    price in tier 1, so tier 1's closed form is the only one solved (not all seven)."""
    okx = load_profile("okx")
    inst = okx.instruments["BTC-USDT-SWAP"]
    calls = []
    real = M._solve_price
    monkeypatch.setattr(M, "_solve_price", lambda *a: calls.append(a[3]) or real(*a))
    lp = M.compute_liquidation_price(inst, okx.margin, PositionTerms(1, Fraction(100), Fraction(30000), 3 * 10**9))
    assert lp.get() == Fraction(54_000_000, 1991)  # spec/20-liquidation.md LIQ-003, P1
    assert calls == [Fraction("0.0045")]  # tier 1's rate 0.004 + 0.0005 only


@pytest.mark.rules("MRG-009", "LIQ-005")
@pytest.mark.xfail(strict=True, reason="BUG (found by bench/plain_margin.py, issue 14): LIQ-005's _cap_of stands 0 for "
                   "the last tier, so eval's tier_max_size is 0 in the last tier of a bounded table; MRG-009 says it "
                   "is LIQ-005's largest size in the tier, i.e. the tier's cap")
def test_MRG_009_tier_max_size_in_the_last_tier_of_a_bounded_table_is_its_cap():
    """okx BTC-USDT-SWAP, 50,000 contracts: 48,000 < 50,000 <= 60,000, tier 7 of the size-basis table
    BTC; the largest size in tier 7 is its cap, 60,000 contracts (on the 0.01 lot grid)."""
    okx = load_profile("okx")
    pos = Position("BTC-USDT-SWAP", "long", Fraction(50_000), Fraction(30_000), "isolated", 10**11)
    q = query_margin(okx, pos, Fraction(29_000))
    assert q["tier"].value == 7 and q["tier_cap"].value == 60_000
    assert q["tier_max_size"].value == 60_000
