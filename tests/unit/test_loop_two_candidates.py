"""The domain of OBL-INV-025h (proofs/loop_wide.py, TwoCandidateScenario) really has two candidates
in one cross PARTIAL round (TRN-003): on every row, one round of X's takes one LIQ-005 step on its P
leg and one on its Q leg at the same mark, funded (TRN-004); the unmutated code keeps the claim of
INV-025 on every row; and a step that starts from the round's stale account (the planted
ONE_CANDIDATE bug of the plumbing table) breaks it.  The numbers are derived by hand in each
docstring (okx: BTC-USDT-SWAP P, 0.01 BTC a contract; ETH-USDT-SWAP Q, 0.1 ETH a contract)."""

from __future__ import annotations

import sys
from fractions import Fraction as F
from pathlib import Path

import pytest

from backstop.proofs.loop_wide import TwoCandidateScenario, WideScenario, two_candidate_instruments
from backstop.reference import transition as T
from backstop.reference.profile import load_profile

OKX = load_profile("okx")
U = 10**6
P, Q = "BTC-USDT-SWAP", "ETH-USDT-SWAP"


def _scenario() -> TwoCandidateScenario:
    return TwoCandidateScenario(OKX, two_candidate_instruments(OKX))  # type: ignore[arg-type]


def _x_steps(recs):
    return [r for r in recs if r.kind == "partial liquidation" and r.account == "X" and r.get("margin_mode") == "cross"]


@pytest.mark.rules("TRN-003", "INV-025")
def test_TRN_003_every_row_of_the_two_candidate_domain_has_two_candidates_in_one_cross_partial_round():
    """X holds 3,000.01 contracts of P (okx's P table: tier 2 ends at 3,000 contracts) and 30,000.01
    of Q (Q's tier 2 ends at 30,000): both at tier 3, so both are TRN-003 candidates at the rise.
    The round that takes them is the second mark's on price row 3 (1.05 x entry) and the first
    mark's on price row 4 (1.2 x entry); each step cuts to tier 1, whose caps are 500 and 5,000
    contracts.  Exactly one such event, one trigger (PARTIAL, not refused) and two steps at its
    time, one per instrument, for any cash of H, S and D."""
    sc = _scenario()
    assert sc.x_size_q == F("30000.01") and sc.x_size_p == F("3000.01")
    assert len(sc.H_ROWS) == 24 and sc.H_ROWS == tuple(range(len(sc.GRID)))
    for g in sc.H_ROWS:
        price_row = WideScenario.PRICES.index(sc.GRID[g][:5])
        for cash in (0, 7 * U):
            out = sc.run({"price path": g, "cash H": cash, "cash S": cash, "cash D": cash})
            events = [k for k, recs in enumerate(out["records"]) if _x_steps(recs)]
            assert events == [{3: 1, 4: 0}[price_row]], (g, events)
            (k,) = events
            recs = out["records"][k]
            steps = _x_steps(recs)
            assert sorted((r.instrument, r.get("tier_before"), r.get("tier_after"), r.get("new_size")) for r in steps) \
                == [(P, 3, 1, 500), (Q, 3, 1, 5_000)], g
            assert len({r.time_ms for r in steps}) == 1
            triggers = [r for r in recs if r.kind == "liquidation trigger" and r.account == "X"]
            assert [r.get("action") for r in triggers] == ["partial"], g
            assert not [r for r in recs if r.kind == "cross partial refused"]
            # both positions before the event are TRN-003 candidates at the event's mark
            before = {a.id: a for a in out["states"][k].accounts}["X"]
            marks = dict(out["states"][k + 1].marks)
            for pos in before.positions:
                inst = OKX.instruments[pos.instrument]
                assert T.is_cross_partial_candidate(inst, OKX.margin, OKX.liquidation, pos.terms(), marks[pos.instrument])


@pytest.mark.rules("INV-025", "INV-022")
def test_INV_025_the_unmutated_code_keeps_the_claim_on_every_row_of_the_two_candidate_domain():
    """The baseline: the claim holds on every row, for no cash, some cash and much cash of H, S, D."""
    sc = _scenario()
    for g in sc.H_ROWS:
        for cash in (0, 7 * U, 10**12):
            out = sc.run({"price path": g, "cash H": cash, "cash S": cash, "cash D": cash})
            assert sc.claim(out, symbolic=False) is True, (g, cash)


@pytest.mark.rules("LIQ-005", "LIQ-009", "TRN-004")
def test_LIQ_005_the_second_step_of_the_round_starts_from_the_account_the_first_left():
    """Row 5: price row 3 (second mark 21,000), X's cash 66,000, fund 1,000.  X's equity 66,000 -
    30.0001 x (21,000 - 19,700) = 26,999.87; requirement 1.05 % x (30.0001 x 21,000 + 3,000.001 x
    1,000) = 6,615.02205 + 31,500.0105 = 38,115.03255: PARTIAL.  P's step: 25.0001 BTC reduced,
    realized -25.0001 x 1,300 = -32,500.13, fee 0.05 % x 25.0001 x 21,000 = 262.50105; Q's step:
    2,500.001 ETH reduced at its entry (realized 0), fee 0.05 % x 2,500,001 = 1,250.0005.  The
    balance after both: 66,000 - 32,500.13 - 262.50105 - 1,250.0005 = 31,987.36845 USDT; positions
    short 500 of P and long 5,000 of Q; the equity after, 31,987.36845 - 5 x 1,300 = 25,487.37, is
    above 0.45 % x (105,000 + 500,000) = 2,722.50: no second round (one trigger record)."""
    sc = _scenario()
    assert sc.GRID[5] == WideScenario.PRICES[3] + (1_000, 66_000, F(1_000))
    out = sc.run({"price path": 5, "cash H": 0, "cash S": 0, "cash D": 0})
    recs = out["records"][1]
    (trig,) = [r for r in recs if r.kind == "liquidation trigger" and r.account == "X"]
    assert (trig.get("balance"), trig.get("equity"), trig.get("requirement")) == (66_000 * U, 26_999_870_000, 38_115_032_550)
    steps = {r.instrument: r for r in _x_steps(recs)}
    assert (steps[P].get("realized_pnl"), steps[P].get("close_fee"), steps[P].get("reduced")) == \
        (-32_500_130_000, 262_501_050, F("2500.01"))
    assert (steps[Q].get("realized_pnl"), steps[Q].get("close_fee"), steps[Q].get("reduced")) == \
        (0, 1_250_000_500, F("25000.01"))
    x = {a.id: a for a in out["states"][2].accounts}["X"]
    assert x.balance("USDT") == 31_987_368_450
    assert sorted((q.instrument, q.side.value, q.size) for q in x.positions) == [(P, "short", 500), (Q, "long", 5_000)]
    assert sc.claim(out, symbolic=False) is True


@pytest.mark.rules("INV-025", "TRN-003")
def test_INV_025_a_step_from_the_stale_account_breaks_the_claim_on_every_row():
    """The planted ONE_CANDIDATE bug (step._liquidate_cross without the re-read of the account
    before each step): Q's step starts from the account of the round's start, so P's realized loss
    and fee (32,762.63 USDT on row 5) are never debited and P's cut is undone while its reduced part
    went to the engine -- money created; the claim fails on every row."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import mutation_plumbing as MP

    (m,) = [m for m in MP.generate() if m.function == "_liquidate_cross" and m.op == "drop"
            and m.before.strip() == "acct = state.account(acct_id)"]
    sc = _scenario()
    with MP.planted(m):
        for g in sc.H_ROWS:
            out = sc.run({"price path": g, "cash H": 0, "cash S": 0, "cash D": 0})
            assert sc.claim(out, symbolic=False) is False, g
    out = sc.run({"price path": 5, "cash H": 0, "cash S": 0, "cash D": 0})
    assert sc.claim(out, symbolic=False) is True  # planted no more
