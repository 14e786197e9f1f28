"""The one transition (reference/step.py): a small hand-computed run, and refused events."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from backstop.reference import adl as A
from backstop.reference import fundbook as FB
from backstop.reference import step as S
from backstop.reference.engine import Level
from backstop.reference.errors import InvalidInput
from backstop.reference.profile import BalanceView, load_profile
from backstop.reference.types import Account, Position

P = load_profile("okx")
U = 10**6
BTC = P.instruments["BTC-USDT-SWAP"]
FUND = "perpetual_futures/BTC-USDT/USDT"


def _state(fund_usdt=200, bids=((27_000, 30), (26_000, 20))):
    accts = [Account("alice", (("USDT", 0),), (Position("BTC-USDT-SWAP", "long", F(100), F(30_000), "isolated", 3_000 * U),)),
             Account("bob", (("USDT", 100_000 * U),), (Position("BTC-USDT-SWAP", "short", F(500), F(31_000), "isolated", 50_000 * U),))]
    book = S.Book(tuple(Level(F(p), F(q)) for p, q in bids), (Level(F(27_100), F(50)),))
    return S.initial_state(P, accts, {"BTC-USDT-SWAP": F(30_000)}, {"BTC-USDT-SWAP": book}, {FUND: fund_usdt * U}, 0)


@pytest.mark.rules("LIQ-007", "ENG-006", "ADL-002", "ADL-003")
def test_full_liquidation_walks_the_book_within_the_fund_then_deleverages():
    """P1 (long 1 BTC at 30,000, margin 3,000) at mark 27,100: FULL at its bankruptcy price 27,000.
    The bids: 30 contracts at 27,000 (no loss), 20 at 26,000 (1,000 USDT per BTC worse: 0.2 BTC
    would lose 200 USDT, exactly the fund's 200 USDT). The other 50 contracts stay open; closing
    them at the mark 27,100 would be a surplus, so the engine keeps them (no ADL yet)."""
    st, recs = S.process_event(_state(), S.MarkEvent(1_000, "BTC-USDT-SWAP", F(27_100)))
    kinds = [r.kind for r in recs]
    assert "full liquidation" in kinds and "adl" not in kinds
    full = next(r for r in recs if r.kind == "full liquidation")
    assert full.get("takeover_price") == 27_000 and full.get("user_loss") == 3_000 * U
    fills = [(r.get("size"), r.get("price")) for r in recs if r.kind == "engine fill"]
    assert fills == [(30, 27_000), (20, 26_000)]
    assert FB.available_balance(st.funds, FUND, BalanceView.SETTLED_PLUS_PENDING) == 0
    (rem,) = st.remainders
    assert (rem.account, rem.size, rem.price) == ("alice", 50, 27_000)
    assert st.account("alice").positions == ()
    # the mark falls to 23,200: closing the remainder there loses 0.5 BTC x 3,800 = 1,900 USDT, the
    # fund has 0: trigger (a) -- bob's short is the only opposite position and is deleveraged
    st2, recs2 = S.process_event(st, S.MarkEvent(2_000, "BTC-USDT-SWAP", F(23_200)))
    trig = next(r for r in recs2 if r.kind == "adl trigger")
    assert trig.get("uncovered") == 1_900 * U
    adl = next(r for r in recs2 if r.kind == "adl")
    assert adl.account == "bob" and adl.get("reduced_size") == 50 and adl.get("type") == "Auto-Deleveraging"
    assert st2.remainders == ()
    assert S.check_invariants(st, st2, recs2) == []


@pytest.mark.rules("ADL-002")
def test_ADL_002_remainder_uncovered_amount_worked_example():
    assert A.compute_remainder_uncovered(BTC, 1, F(50), F(27_000), F(23_200), 0) == 1_900 * U
    assert A.compute_remainder_uncovered(BTC, 1, F(50), F(27_000), F(23_200), 2_000 * U) == 0
    assert A.compute_remainder_uncovered(BTC, 1, F(50), F(27_000), F(27_100), 0) == 0


@pytest.mark.parametrize("event, field", [
    (S.MarkEvent(500, "BTC-USDT-SWAP", F(27_100)), "time_ms"),
    (S.MarkEvent(2_000, "SOL-USDT-SWAP", F(1)), "event.instrument"),
    (S.MarkEvent(2_000, "BTC-USDT-SWAP", F(-1)), "event.price"),
    (S.BookEvent(2_000, "BTC-USDT-SWAP", (Level(F("27000.05"), F(1)),), ()), "event.bids[0].price"),
    (S.BookEvent(2_000, "BTC-USDT-SWAP", (Level(F(27_000), F(1)), Level(F(27_100), F(1))), ()), "event.bids[1].price"),
    (S.TopUpEvent(2_000, "perpetual_futures/SOL-USDT/USDT", 5), "fund"),
    (S.WithdrawEvent(2_000, FUND, 10**15), "amount"),
])
def test_a_refused_event_names_its_field_and_changes_nothing(event, field):
    st, _ = S.process_event(_state(), S.MarkEvent(1_000, "BTC-USDT-SWAP", F(29_000)))
    before = S.state_json(st)
    with pytest.raises(InvalidInput) as e:
        S.process_event(st, event)
    assert e.value.field == field or e.value.field.endswith(field.split(".")[-1])
    assert S.state_json(st) == before


def test_initial_state_refuses_off_grid_positions_and_negative_balances():
    with pytest.raises(InvalidInput, match="lot grid"):
        S.initial_state(P, [Account("x", (), (Position("BTC-USDT-SWAP", "long", F("0.005"), F(1), "isolated", 1),))],
                        {"BTC-USDT-SWAP": F(1)})
    with pytest.raises(InvalidInput, match=">= 0"):
        S.initial_state(P, [Account("x", (("USDT", -1),), ())], {})
