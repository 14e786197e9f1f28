"""Simulation at scale (issue 14, C64): the stress scenario generator, the state's lookup tables,
and the incremental invariant check against the full one."""

from __future__ import annotations

import dataclasses
import sys
from fractions import Fraction as F
from pathlib import Path

import pytest

from backstop import simulate as SIM
from backstop.reference import journal as J
from backstop.reference import liquidation as L
from backstop.reference import step as S

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import gen_stress  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(scn: SIM.Scenario) -> list[tuple[S.SimState, S.SimState, tuple]]:
    """Every transition of a scenario: (before, after, records)."""
    state = SIM.initial_state(scn)
    out = []
    for ev in scn.events:
        after, recs = S.process_event(state, SIM.step_event(ev))
        out.append((state, after, recs))
        state = after
    return out


@pytest.fixture(scope="module")
def stress() -> list[tuple[S.SimState, S.SimState, tuple]]:
    scn = SIM.load_scenario_text(gen_stress.generate(60, 240, seed=5), "<stress>")
    return _run(scn)


def test_the_stress_scenario_has_the_issue_s_shape(tmp_path):
    """Issue 14: >= 1,000 accounts, isolated and cross, linear and inverse, >= 10,000 marks; the
    file is a valid scenario (every field through the loader) and the same seed gives the same bytes."""
    text = gen_stress.generate()
    assert text == gen_stress.generate()
    scn = SIM.load_scenario_text(text, "<stress>")
    positions = [q for a in scn.accounts for q in a.positions]
    assert len(scn.accounts) >= 1000
    assert sum(e.type == "mark" for e in scn.events) >= 10_000
    modes = {q.margin_mode.value for q in positions}
    kinds = {scn.profile.instruments[q.instrument].kind.value for q in positions}
    assert modes == {"isolated", "cross"} and kinds == {"linear", "inverse"}
    assert {e.type for e in scn.events} == {"mark", "book", "settle", "top_up"}


@pytest.mark.rules("LIQ-005", "LIQ-007", "ADL-003")
def test_the_stress_crash_liquidates_partly_and_fully_and_deleverages(stress):
    """The crash at 40 % of the marks: partial steps (the whales above tier 3), full liquidations
    (isolated and cross) and ADL fills, on linear and inverse instruments."""
    recs = [r for _, _, rs in stress for r in rs]
    kinds = {r.kind for r in recs}
    assert {"partial liquidation", "full liquidation", "adl"} <= kinds
    full = [r for r in recs if r.kind == "full liquidation"]
    assert {r.get("margin_mode") for r in full} == {"isolated", "cross"}
    assert {r.instrument for r in full} >= {"BTC-USDT-SWAP", "BTC-USD-SWAP"}


def test_the_state_lookup_tables_answer_as_the_tuples(stress):
    """The per-state lookup tables (C64) give what a scan of the state's tuples gives, also after
    the accounts were replaced in place and when an index is stale or missing."""
    for before, after, _ in stress[::17]:
        for st in (before, after):
            for a in st.accounts:
                assert st.account(a.id) is a
            assert {i: st.mark(i) for i, _ in st.marks} == dict(st.marks)
            assert all(st.book(i) == b for i, b in st.books)
    st = stress[-1][1]
    rev = dataclasses.replace(st, accounts=tuple(reversed(st.accounts)))   # the carried index is stale
    for a in rev.accounts:
        assert rev.account(a.id) is a
    bare = dataclasses.replace(st, account_index=None)
    assert bare.account(st.accounts[3].id) is st.accounts[3]
    with pytest.raises(KeyError):
        st.account("nobody")
    with pytest.raises(Exception, match="no mark price"):
        dataclasses.replace(st, marks=()).mark("BTC-USDT-SWAP")


@pytest.mark.rules("INV-009", "INV-010", "INV-021", "LIQ-006", "INV-016", "INV-013")
def test_the_incremental_check_agrees_with_the_full_one_on_every_event(stress):
    """check_invariants_incremental == check_invariants on every transition of a stress run and of
    the three example scenarios (each before-state clean: the premise of the incremental check)."""
    runs = [stress] + [_run(SIM.load_scenario(EXAMPLES / f"{n}.toml")) for n in ("calm", "crash", "drawdown")]
    n = 0
    for run in runs:
        for before, after, recs in run:
            full = S.check_invariants_full(before, after, recs)
            assert S.check_invariants_incremental(before, after, recs) == full
            assert full == []
            n += 1
    assert n > 250


def test_check_invariants_checks_incrementally_only_after_a_clean_state(stress):
    """check_invariants gives the full check's verdict on every event of a run; it takes the
    incremental path only for a before-state it found clean itself (a mark on that very object,
    for the same rules), never for a state derived from it or for other rules."""
    from backstop.reference.rules import RULES
    scn = SIM.load_scenario_text(gen_stress.generate(20, 60, seed=5), "<small>")
    run = _run(scn)
    assert "_clean_for" not in run[0][0].__dict__
    for before, after, recs in run:
        assert S.check_invariants(before, after, recs) == S.check_invariants_full(before, after, recs) == []
        assert after.__dict__["_clean_for"] is RULES
    last = run[-1][1]
    assert "_clean_for" not in dataclasses.replace(last, time_ms=last.time_ms).__dict__
    # a violation is reported on the incremental path too, and the violating state is not marked clean
    before, after, recs = next(t for t in run[1:] if t[1].funds.ledger.entries != t[0].funds.ledger.entries)
    assert before.__dict__["_clean_for"] is RULES
    led = after.funds.ledger
    k0 = next(iter(led.balances))
    off = dataclasses.replace(after, funds=dataclasses.replace(
        after.funds, ledger=J.Ledger(led.entries, {**led.balances, k0: led.balances[k0] + 1})))
    assert S.check_invariants(before, off, recs) == S.check_invariants_full(before, off, recs) != []
    assert "_clean_for" not in off.__dict__


def _corrupt_account(st: S.SimState, k: int, **changes) -> S.SimState:
    a = st.accounts[k]
    q = dataclasses.replace(a.positions[0])
    for name, v in changes.items():   # past the Position's own validation: a state no transition should build
        object.__setattr__(q, name, v)
    acct = dataclasses.replace(a, positions=(q,) + a.positions[1:])
    return dataclasses.replace(st, accounts=st.accounts[:k] + (acct,) + st.accounts[k + 1:])


@pytest.mark.rules("INV-010", "INV-021", "LIQ-006")
def test_both_checks_see_a_planted_violation(stress):
    """A violation the event itself plants is reported by both checks, with the same message:
    ledger balances off by one unit, a journal rewritten (not extended), a negative margin on an
    account the event replaced, and an isolated position left in the partial band at a moved mark."""
    before, after, recs = next(t for t in stress if t[1].funds.ledger.entries != t[0].funds.ledger.entries)
    led = after.funds.ledger
    k0 = next(iter(led.balances))
    off = dataclasses.replace(after, funds=dataclasses.replace(
        after.funds, ledger=J.Ledger(led.entries, {**led.balances, k0: led.balances[k0] + 1})))
    rewritten = dataclasses.replace(after, funds=dataclasses.replace(
        after.funds, ledger=J.Ledger(led.entries[1:], led.balances)))
    k = next(i for i, a in enumerate(after.accounts) if a.positions and a.positions[0].margin_mode.value == "isolated")
    negative = _corrupt_account(after, k, margin=-1)
    planted = {"INV-010": off, "INV-010 ": rewritten, "INV-021": negative}
    # an isolated whale in the partial band (LIQ-006): a mark of its instrument where decide_action says PARTIAL
    p = after.profile
    for a in after.accounts:
        q = a.positions[0] if a.positions else None
        if q is None or q.margin_mode.value != "isolated" or q.size < 4000:
            continue
        inst = p.instruments[q.instrument]
        for bp in range(1, 400):
            m = q.entry_price * (1 - q.side.sign * F(bp, 1000))
            m = (m // inst.tick_size) * inst.tick_size
            if L.decide_action(inst, p.margin, p.liquidation, q.terms(), m) == L.PARTIAL:
                marks = tuple(sorted({**dict(after.marks), q.instrument: m}.items()))
                planted["LIQ-006"] = dataclasses.replace(after, marks=marks)
                break
        if "LIQ-006" in planted:
            break
    assert set(planted) == {"INV-010", "INV-010 ", "INV-021", "LIQ-006"}
    for rule, bad in planted.items():
        full = S.check_invariants_full(before, bad, recs)
        assert any(m.startswith(rule.strip()) for m in full), (rule, full)
        assert S.check_invariants_incremental(before, bad, recs) == full, rule
