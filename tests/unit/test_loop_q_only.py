"""OBL-INV-025i's domain (proofs/loop_wide.py QOnlyScenario): a cross account Z holding only Q,
liquidatable from the start, through events on P only.  TRN-001's step 4 takes the cross accounts
with a position on the event's instrument, so Z must end every event as it began; the planted
ONE_CROSS bug (``group and (...)`` -> ``group or (...)`` in step.process_cross_accounts: every
account with a cross group is taken) liquidates Z at the first mark, and the claim fails."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest

from backstop.proofs.loop_wide import QOnlyScenario, wide_instruments
from backstop.reference import liquidation as L
from backstop.reference.profile import load_profile

OKX = load_profile("okx")
Q = "ETH-USDT-SWAP"


def _scenario() -> QOnlyScenario:
    return QOnlyScenario(OKX, wide_instruments(OKX))  # type: ignore[arg-type]


def _z(state):
    return next(a for a in state.accounts if a.id == "Z")


@pytest.mark.rules("INV-025", "TRN-001", "LIQ-008")
def test_INV_025_a_q_only_cross_account_is_liquidatable_and_left_as_it_is_by_events_on_P():
    sc = _scenario()
    for g in sc.I_ROWS:
        out = sc.run({"price path": g, "cash H": 0, "cash S": 0, "cash D": 0})
        z0 = _z(out["states"][0])
        # by hand: 100,000 lots of Q, long at 1,100, marked at 1,000, with no cash:
        # the cross equity is size x contract value x (1,000 - 1,100) < 0, below any requirement
        (pos,) = z0.positions
        assert pos.instrument == Q and pos.entry_price == Fraction(1_100) and z0.balance("USDT") == 0
        ips = ((OKX.instruments[Q], pos.terms()),)
        assert L.decide_cross_action(ips, OKX.margin, OKX.liquidation, 0, (Fraction(1_000),)) == L.FULL
        for st in out["states"][1:]:
            assert _z(st) == z0, g
        assert not any(r.account == "Z" for recs in out["records"] for r in recs), g
        assert sc.claim(out, symbolic=False) is True, g


@pytest.mark.rules("INV-025", "TRN-001")
def test_INV_025_taking_every_cross_account_at_a_P_event_breaks_the_claim():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import mutation_plumbing as MP

    (m,) = [m for m in MP.generate() if m.function == "process_cross_accounts" and m.op == "bool"
            and m.before.startswith("group and")]
    sc = _scenario()
    with MP.planted(m):
        for g in sc.I_ROWS:
            out = sc.run({"price path": g, "cash H": 0, "cash S": 0, "cash D": 0})
            assert any(r.kind == "full liquidation" and r.account == "Z" for recs in out["records"] for r in recs), g
            assert sc.claim(out, symbolic=False) is False, g
    out = sc.run({"price path": sc.I_ROWS[0], "cash H": 0, "cash S": 0, "cash D": 0})
    assert sc.claim(out, symbolic=False) is True  # planted no more
