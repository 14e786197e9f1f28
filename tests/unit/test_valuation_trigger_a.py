"""C70: trigger (a) is judged at each remainder's own check (TRN-006), and the soak's independent
valuation (tests/valuation.py) reads it so.

The case is the one the seeded soak found (bench/bench_soak.py --seed 13, global episode 839, event 47):
a book event on BTC-USDT-SWAP retries two open remainders.  The first (u0093, 4.2 contracts) fills
4.19 against the new bids and is checked with the fund's balance after its own fills (58,479 units:
covered); the second (u0051) then spends the fund down to 4,023 units on its own fills.  At the end the
0.01 contracts left of u0093 are beyond the fund's final balance -- reading (ii) of C70 -- but they were
within the balance at its check -- reading (i), the chosen one: the fund stays out of the ADL state.
"""

from __future__ import annotations

from fractions import Fraction
import sys
from pathlib import Path

import pytest

from backstop.reference import step as S

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from soak_replay import replay  # noqa: E402
from valuation import _fund_balances, check_transition, uncovered_units  # noqa: E402

EPISODE, EVENT = 839, 47


def _replay():
    return replay(EPISODE, EVENT)


@pytest.mark.rules("ADL-003", "TRN-006", "ADL-002")
def test_trigger_a_is_judged_at_each_remainders_check_C70() -> None:
    before, ev, after, recs = _replay()
    assert isinstance(ev, S.BookEvent) and ev.instrument == "BTC-USDT-SWAP"
    fid = "perpetual_futures/BTC-USDT/USDT"
    # the two retries, in TRN-002 order, and the fund's balance after each one's fills
    closes = [r for r in recs if r.kind == "engine close"]
    assert [r.account for r in closes] == ["u0093", "u0051"] and all(r.get("why") == "retry" for r in closes)
    deficits = [r for r in recs if r.kind == "liquidation deficit"]
    assert [r.get("available") for r in deficits] == [58_479, 4_023]
    assert not any(r.kind in ("adl trigger", "adl state") for r in recs)
    assert dict(after.adl_active)[fid] is False
    inst = after.profile.instruments["BTC-USDT-SWAP"]
    mark = dict(after.marks)["BTC-USDT-SWAP"]
    (left,) = [r for r in after.remainders if r.account == "u0093" and r.instrument == "BTC-USDT-SWAP"]
    assert left.size == Fraction(1, 100)
    settled, pending, _ = _fund_balances(after)[fid]
    # reading (ii): beyond the balance the event ends with; reading (i): within the balance at its check
    assert uncovered_units(inst, left.sign, left.size, left.price, mark, settled + pending) > 0
    assert uncovered_units(inst, left.sign, left.size, left.price, mark, 58_479) == 0
    # the valuation reads (i): no violation
    assert [str(v) for v in check_transition(before, ev, after, recs)] == []
