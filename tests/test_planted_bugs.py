"""Planted bugs (mutation testing) -- the slice's acceptance check:

    a bug planted in any rule function of this slice (a flipped comparison, a wrong sign, a wrong
    rounding direction) makes at least one Z3 obligation fail with a readable counterexample.

Mutants are generated (by the harness in ``tests/mutation.py``) from the SOURCE of every function
of ``reference/margin.py`` and of the rounding helpers of ``reference/num.py`` that margin.py uses,
with the base operator set:

* ``cmp``    -- flip a comparison's strictness (``<`` <-> ``<=``, ``>`` <-> ``>=``) or negate it
  (``==`` <-> ``!=``, ``is`` <-> ``is not``);
* ``arith``  -- swap ``+`` and ``-`` in one binary operation;
* ``sign``   -- negate the position's sign (``pos.sign`` -> ``-pos.sign``, ``s`` -> ``-s``) or drop
  one unary minus;
* ``round``  -- floor <-> ceil (``num.floor``/``num.ceil``, ``floor_to_step``/``ceil_to_step``,
  ``math.floor``/``math.ceil``);
* ``const``  -- replace a profile/instrument constant (``close_fee_rate``, ``mmr``,
  ``mm_deduction`` by 0; ``contract_value``, ``scale`` by 1);
* ``ite``    -- swap the two branches of one ``ite``.

Each mutant is compiled into a copy of its module's namespace and monkeypatched into the module
(and into any module-level table that holds the original function, such as ``_PRICE_SOLVERS``);
then the obligations of the okx profile are proved, then bybit's (MM valued at entry, notional
tiers), then binance's (notional tiers valued at mark, with deductions), until one fails with a
``counterexample`` whose replay through the concrete (mutated) reference is ``confirmed``.  That
obligation *kills* the mutant.  A mutant that no obligation kills is compared with the original by
the solver (``mutation.check_equivalence``: same outputs at every call the obligations make, under
their premises): proved equivalent, it leaves the score; shown to differ, it is a hole and must be
listed in :data:`HOLES` (a strict xfail); undecided, it must be listed in :data:`UNDECIDED`.  There
is no hand-written list of equivalent mutants.  Formerly listed as equivalent, now proved so:
``margin.compute_bankruptcy_price:+6 const`` (the rate is never read: identical terms) and
``num.round_to_step_toward:+2 cmp`` (sign is +1 or -1 under every caller's premises).

Run ``python tests/test_planted_bugs.py`` for the kill table and its exact score (``--only
SUBSTRING`` to filter, repeatable).
"""

from __future__ import annotations

import dataclasses
import sys
from fractions import Fraction
from typing import Any

import pytest

import mutation
from mutation import Mutant, applied, run_mutant
from backstop.reference import margin as margin_mod
from backstop.reference import num as num_mod
from backstop.reference.profile import PriceBasis, Profile, load_profile, load_profile_text
from strategies import inverse_with_deductions

# okx first; bybit reaches MM at entry and linear deductions, binance deductions valued at mark, the
# synthetic profiles inverse contracts with deductions (see synthetic_inverse_profile), okx+bpfee the
# bankruptcy price that leaves the fee to close (margin.bankruptcy_includes_close_fee, LIQ-002).
PROFILE_CHAIN = ("okx", "bybit", "binance", "synthetic-inverse-mark", "synthetic-inverse-entry", "okx+bpfee")
NUM_TARGETS = ("floor", "ceil", "floor_to_step", "ceil_to_step", "round_to_step_toward")


def synthetic_inverse_profile(basis: PriceBasis) -> Profile:
    """okx's rules with its inverse swap on a notional-basis table with deductions (continuous
    at every cap), MM valued at ``basis``."""
    okx = load_profile("okx")
    inverse = inverse_with_deductions(okx.instruments["BTC-USD-SWAP"])
    table = inverse.tier_table
    return dataclasses.replace(okx, name=f"synthetic-inverse-{basis.value}", tier_tables={table.name: table},
                               instruments={inverse.id: inverse},
                               margin=dataclasses.replace(okx.margin, mm_price_basis=basis))


mutation.register_profile("okx+bpfee", lambda: load_profile_text(
    'extends = "okx"\nname = "okx+bpfee"\n[margin]\nbankruptcy_includes_close_fee = true\n'))
for _basis in PriceBasis:
    mutation.register_profile(f"synthetic-inverse-{_basis.value}", lambda b=_basis: synthetic_inverse_profile(b))

_MODULES = {"margin": margin_mod, "num": num_mod}


# ---------------------------------------------------------------- holes and undecided survivors

HOLES: dict[str, str] = {
    "margin._solve_price:+13 cmp `value > 0` -> `value >= 0`":
        "OBL-LIQ-002 finds the model (bp defined with value 0) but its replay raises ZeroDivisionError: "
        "it evaluates compute_equity at bp.value = 0 and compute_unrealized_pnl computes div(1, mark) "
        "for linear instruments too; so the counterexample is never confirmed",
}

# Survivors the solver could not decide (never counted as equivalent): strict xfails expecting
# mutation.MutantIsUndecided.  None in this table.
UNDECIDED: dict[str, str] = {}


MUTANTS = mutation.generate_mutants(_MODULES, {"num": NUM_TARGETS}, extended=False)


@pytest.mark.rules("NUM-001", "NUM-002", "MRG-001", "MRG-002", "MRG-003", "MRG-004", "MRG-005", "MRG-006",
                   "MRG-007", "MRG-008", "LIQ-001", "LIQ-002", "LIQ-003")
@pytest.mark.parametrize("mutant", mutation.params(MUTANTS, HOLES, UNDECIDED))
def test_planted_bug_is_caught_by_an_obligation(mutant: Mutant) -> None:
    mutation.assert_caught(mutant, PROFILE_CHAIN, {**HOLES, **UNDECIDED})  # known survivors: no retry


def test_mutants_are_applied_and_then_restored():
    """A mutant replaces its function in the module and in module-level tables holding it
    (such as _solve_price's table of closed forms), and everything is restored afterwards."""
    def snapshot() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mod_name, mod in _MODULES.items():
            for name, v in vars(mod).items():
                out[f"{mod_name}.{name}"] = dict(v) if isinstance(v, dict) and not name.startswith("__") else v
        return out

    before = snapshot()
    in_tables = [m for m in MUTANTS if any(isinstance(v, dict) and getattr(margin_mod, m.function) in v.values()
                                           for v in vars(margin_mod).values() if m.module == "margin")]
    some = in_tables[:1] + [m for m in MUTANTS if m.module == "margin"][:2] + [m for m in MUTANTS if m.module == "num"][:1]
    assert in_tables, "expected a mutant of a function held in a module-level table"
    for m in some:
        mod = _MODULES[m.module]
        original = getattr(mod, m.function)
        with applied(m) as fn:
            assert getattr(mod, m.function) is fn
            for v in vars(mod).values():
                if isinstance(v, dict):
                    assert original not in v.values()
        assert getattr(mod, m.function) is original
    assert snapshot() == before


def test_mutant_set_is_focused_and_uses_every_operator():
    assert 40 <= len(MUTANTS) <= 120, len(MUTANTS)
    assert {m.op for m in MUTANTS} == {"cmp", "arith", "sign", "round", "const", "ite"}
    assert {m.function for m in MUTANTS if m.module == "num"} == set(NUM_TARGETS)


def test_hole_lists_name_existing_mutants():
    mutation.check_lists(MUTANTS, HOLES, UNDECIDED)


if __name__ == "__main__":
    sys.exit(mutation.main(sys.argv[1:], MUTANTS, HOLES, PROFILE_CHAIN, UNDECIDED))
