"""The convention options of issue 10, proved on variants of the shipped profiles with the option
switched on (as tests/test_proofs_partial_variants.py does for partial liquidation) and on the
shipped profiles themselves (option off): every instance must be ``proved`` (an unknown fails).

1. ENG-004 ``liquidation.fund_share = "capped_by_fee_rate"`` (dYdX v4), rate 0.005: OBL-ENG-003,
   OBL-ENG-004b, OBL-ENG-004c, OBL-INV-022, OBL-INV-022b.
2. LIQ-002 ``margin.bankruptcy_includes_close_fee`` (Bybit inverse): OBL-LIQ-002 on okx (close fee
   0.05%) and bybit (close fee set to 0.075%) with the option on (built with dataclasses.replace;
   the loaded overlays are in the bpfee block below, with LIQ-007 booking the fee to close).
   The closed form is checked against its sympy derivation.
3. ADL-001 ``adl.drawdown_reference = "average"``: OBL-ADL-001 (peak profiles only: it states the
   peak reading), OBL-ADL-001b (the average's laws and the average trigger, on every profile),
   OBL-INV-015, on okx+average and bybit+average (drawdown fraction 0.5, so that the trigger is
   live) and the shipped profiles.
4. The whole loop through the step function, OBL-INV-024 and OBL-INV-025a-d (where they apply:
   INV-025 needs partial liquidation and the drawdown trigger, so okx only), on okx+capped,
   binance+capped, bybit+capped, okx+average and bybit+average (the shipped profiles are proved
   by tests/test_proofs.py), and on okx+bpfee and bybit+bpfee
   (``margin.bankruptcy_includes_close_fee = true``).  :func:`_loop_cases` takes any profile.
"""

from __future__ import annotations

import dataclasses
import time
from fractions import Fraction

import pytest
import z3

from backstop.proofs.concolic import explore
from backstop.proofs.derivations import bankruptcy_fee
from backstop.proofs.kernel import SEED, prove
from backstop.proofs.loop import LoopScenario, loop_instrument
from backstop.proofs.registry import Context, instances
from backstop.reference.profile import Profile, load_profile, load_profile_text

CAPPED = '''extends = "{base}"
name = "{base}+capped"
[liquidation]
fund_share = "capped_by_fee_rate"
fund_share_rate = "0.005"
'''
ENG = ["OBL-ENG-003", "OBL-ENG-004b", "OBL-ENG-004c", "OBL-INV-022", "OBL-INV-022b"]
AVERAGE = '[adl]\ndrawdown_reference = "average"\n'
BPFEE = '''extends = "{base}"
name = "{base}+bpfee"
[margin]
bankruptcy_includes_close_fee = true
'''
LOOP = ["OBL-INV-024", "OBL-INV-025a", "OBL-INV-025b", "OBL-INV-025c", "OBL-INV-025d", "OBL-INV-025e", "OBL-INV-025f",
        "OBL-INV-025g", "OBL-INV-025h", "OBL-INV-025i"]


def _bp_fee_variant(name: str, rate: str | None = None):
    p = load_profile(name)
    margin = dataclasses.replace(p.margin, bankruptcy_includes_close_fee=True,
                                 close_fee_rate=p.margin.close_fee_rate if rate is None else Fraction(rate))
    return dataclasses.replace(p, name=f"{name}+bpfee", margin=margin)


def _cases():
    out = []
    for base in ("okx", "binance", "bybit"):
        for prof in (load_profile(base), load_profile_text(CAPPED.format(base=base))):
            out += [pytest.param(i, id=f"{prof.name}:{i.key}") for i in instances(prof, only=ENG)]
    for prof in (load_profile("okx"), load_profile("bybit"), _bp_fee_variant("okx"), _bp_fee_variant("bybit", "0.00075")):
        out += [pytest.param(i, id=f"{prof.name}:{i.key}") for i in instances(prof, only=["OBL-LIQ-002"])]
    avg = AVERAGE
    for prof in (load_profile("okx"), load_profile("binance"), load_profile("bybit"),
                 load_profile_text(f'extends = "okx"\nname = "okx+average"\n{avg}'),
                 load_profile_text(f'extends = "bybit"\nname = "bybit+average"\n{avg}drawdown_fraction = "0.5"\n')):
        out += [pytest.param(i, id=f"{prof.name}:{i.key}")
                for i in instances(prof, only=["OBL-ADL-001", "OBL-ADL-001b", "OBL-INV-015"])]
    return out


def _loop_cases(prof: Profile) -> list:
    """The whole-loop obligations (OBL-INV-024, OBL-INV-025a-d) that apply to ``prof``, any profile."""
    return [pytest.param(i, id=f"{prof.name}:{i.key}") for i in instances(prof, only=LOOP)]


def _loop_variants() -> list:
    out = []
    for base in ("okx", "binance", "bybit"):
        out += _loop_cases(load_profile_text(CAPPED.format(base=base)))
    out += _loop_cases(load_profile_text(f'extends = "okx"\nname = "okx+average"\n{AVERAGE}'))
    out += _loop_cases(load_profile_text(f'extends = "bybit"\nname = "bybit+average"\n{AVERAGE}drawdown_fraction = "0.5"\n'))
    for base in ("okx", "bybit"):  # LIQ-002's option with LIQ-007 booking the fee to close
        out += _loop_cases(load_profile_text(BPFEE.format(base=base)))
    return out


@pytest.mark.rules("INV-024", "INV-025", "ENG-004", "ADL-001")
@pytest.mark.parametrize("inst", _loop_variants())
def test_whole_loop_is_proved_on_the_option_variants(inst):
    r = prove(inst)
    assert r.verdict == "proved", f"{inst.profile.name}:{inst.key}: {r.verdict} {r.detail}"


@pytest.mark.rules("INV-024", "ENG-004")
def test_INV_024_path_search_of_price_path_7_on_okx_capped_completes():
    """The question an incremental solver stalled on (okx+capped, price path 7, the fifth search:
    no answer in 1,200 s): beyond the scenario's rlimit budget it goes to a new solver, and the
    search covers the row (measured: 13 paths in about 6 s)."""
    prof = load_profile_text(CAPPED.format(base="okx"))
    sc = LoopScenario(prof, loop_instrument(prof))
    ctx = Context(prof, None)
    v = sc.declare(ctx)
    domain = [p for p in ctx.premises if isinstance(p, z3.ExprRef)] + [v["price path"] == 7]
    paths, status = explore(v, domain, lambda vals: sc.run(vals, v), seed=SEED, deadline=time.perf_counter() + 120,
                            max_paths=sc.MAX_PATHS, fresh_after=sc.FRESH_AFTER)
    assert status == "complete" and len(paths) > 5, (status, len(paths))


@pytest.mark.rules("INV-024", "LIQ-007")
def test_INV_024_path_search_of_price_path_15_on_okx_bpfee_completes():
    """The question a new plain solver stalled on too (okx+bpfee, price path 15, the sixth search:
    nested floors of the close fee a bankruptcy price leaves, no answer in 60 s; the obligation
    timed out after 4 paths): the renewed checks go to new solvers in rounds of growing budgets and
    seeds (concolic._ask_new), and the search covers the row (measured: 10 paths in about 15 s on a
    loaded machine)."""
    prof = load_profile_text(BPFEE.format(base="okx"))
    sc = LoopScenario(prof, loop_instrument(prof))
    ctx = Context(prof, None)
    v = sc.declare(ctx)
    domain = [p for p in ctx.premises if isinstance(p, z3.ExprRef)] + [v["price path"] == 15]
    paths, status = explore(v, domain, lambda vals: sc.run(vals, v), seed=SEED, deadline=time.perf_counter() + 120,
                            max_paths=sc.MAX_PATHS, fresh_after=sc.FRESH_AFTER)
    assert status == "complete" and len(paths) > 5, (status, len(paths))


@pytest.mark.rules("INV-024", "INV-025")
def test_the_whole_loop_cases_cover_every_variant():
    # INV-024 on every variant; the four INV-025 obligations (a to d) where they apply (partial liquidation and the drawdown
    # trigger: the okx variants); a variant that loads gets every whole-loop obligation that applies
    ids = {p.id for p in _loop_variants()}
    for name in ("okx+capped", "binance+capped", "bybit+capped", "okx+average", "bybit+average"):
        assert f"{name}:OBL-INV-024" in ids
    for name in ("okx+capped", "okx+average"):
        assert {f"{name}:OBL-INV-025{g}" for g in "abcdefg"} <= ids
    for name in ("binance+capped", "bybit+capped", "bybit+average"):
        assert not any(i.startswith(f"{name}:OBL-INV-025") for i in ids)
    assert {"okx+bpfee:OBL-INV-024", "bybit+bpfee:OBL-INV-024"} <= ids


@pytest.mark.rules("ENG-004", "ENG-003", "INV-022", "LIQ-002", "ADL-001", "INV-015")
@pytest.mark.parametrize("inst", _cases())
def test_convention_obligation_is_proved(inst):
    r = prove(inst)
    assert r.verdict == "proved", f"{inst.key}: {r.verdict} {r.detail}"


@pytest.mark.rules("LIQ-002")
@pytest.mark.parametrize("kind", ["linear", "inverse"])
def test_LIQ_002_fee_bankruptcy_price_is_the_derived_fixed_point(kind):
    expr = bankruptcy_fee.derive()[kind]
    assert bankruptcy_fee.check_fixed_point(kind, expr)
    assert bankruptcy_fee.matches_mark_liquidation_form(kind, expr)


# ================================================================ bpfee: LIQ-002's option through LIQ-007 (issue 10)
# With margin.bankruptcy_includes_close_fee on, the full takeover books the fee to close the bankruptcy
# price leaves (LIQ-007), and the obligations restated for it (INV-001/002/003/021, LIQ-010, and OBL-LIQ-009c for LIQ-009)
# and the money balance (OBL-INV-022) are proved on okx+bpfee (close fee 0.05%) and bybit+bpfee
# (0.075%, MM valued at the entry); the loader accepts the option now (not with trigger "zero_equity").
# The shipped profiles (option off) are proved with the same restated claims (tests/test_proofs.py).
BPFEE_OBLIGATIONS = ["OBL-LIQ-002", "OBL-INV-001", "OBL-INV-002", "OBL-INV-003", "OBL-LIQ-007", "OBL-INV-021",
                     "OBL-INV-022", "OBL-LIQ-009c", "OBL-LIQ-009d", "OBL-LIQ-010"]


def _bpfee_cases():
    out = []
    for prof in (_bp_fee_variant("okx"), _bp_fee_variant("bybit", "0.00075"),
                 load_profile_text('extends = "bybit"\nname = "bybit+bpfee-loaded"\n[margin]\nclose_fee_rate = "0.00075"\n'
                                   'bankruptcy_includes_close_fee = true\n')):
        out += [pytest.param(i, id=f"{prof.name}:{i.key}") for i in instances(prof, only=BPFEE_OBLIGATIONS)]
    return out


@pytest.mark.rules("LIQ-007", "LIQ-002", "INV-001", "INV-002", "INV-003", "INV-021", "INV-022", "LIQ-009", "LIQ-010")
@pytest.mark.parametrize("inst", _bpfee_cases())
def test_bpfee_obligation_is_proved(inst):
    r = prove(inst)
    assert r.verdict == "proved", f"{inst.key}: {r.verdict} {r.detail}"
