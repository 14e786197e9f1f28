"""The transition (spec/50-transition.md): the defects of issue 13, each with the test that failed
before its fix, and the TRN-* rules checked on small hand-computed runs."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from backstop.reference import step as S
from backstop.reference.engine import Level
from backstop.reference.events import fund_key_of
from backstop.reference.errors import InvalidInput, OutOfTierRange
from backstop.reference.profile import load_profile
from backstop.reference.types import Account, Position

P = load_profile("okx")
U = 10**6
FUND = "perpetual_futures/BTC-USDT/USDT"


KEY = fund_key_of(P.instruments["BTC-USDT-SWAP"])


def _state(fund_usdt=200, bids=((27_000, 30), (26_000, 20)), bob=500, extra=()):
    """alice long 100 contracts (1 BTC) at 30,000 with 3,000 USDT margin; bob short ``bob``
    contracts at 31,000 with 50,000 USDT."""
    accts = [Account("alice", (("USDT", 0),), (Position("BTC-USDT-SWAP", "long", F(100), F(30_000), "isolated", 3_000 * U),)),
             Account("bob", (("USDT", 100_000 * U),), (Position("BTC-USDT-SWAP", "short", F(bob), F(31_000), "isolated", 50_000 * U),)),
             *extra]
    book = S.Book(tuple(Level(F(p), F(q)) for p, q in bids), (Level(F(27_100), F(50)),))
    return S.initial_state(P, accts, {"BTC-USDT-SWAP": F(30_000)}, {"BTC-USDT-SWAP": book}, {FUND: fund_usdt * U}, 0)


# ---------------------------------------------------------------- defect 1: trigger (a) and the ADL state

@pytest.mark.rules("ADL-003")
def test_ADL_003_trigger_a_puts_the_fund_in_the_ADL_state():
    """Defect 1 of issue 13.  After the first mark (27,100) alice's remainder of 50 contracts stays
    with the engine (the fund of 200 USDT paid the 20 contracts at 26,000).  At 23,200 closing the
    remainder would lose 0.5 BTC x 3,800 = 1,900 USDT and the fund holds 0: trigger (a).  ADL-003:
    a fund is in the ADL state from a check at which a trigger holds -- trigger (a) included (the
    step function passed a constant False for it)."""
    st, _ = S.process_event(_state(), S.MarkEvent(1_000, "BTC-USDT-SWAP", F(27_100)))
    assert not st.is_adl_active(KEY)
    st2, recs = S.process_event(st, S.MarkEvent(2_000, "BTC-USDT-SWAP", F(23_200)))
    trig = next(r for r in recs if r.kind == "adl trigger")
    assert trig.get("uncovered") == 1_900 * U and trig.get("drawdown") is False   # trigger (a) alone
    states = [r for r in recs if r.kind == "adl state"]
    assert [r.get("active") for r in states] == [True]
    assert st2.is_adl_active(KEY)


@pytest.mark.rules("TRN-005", "ADL-003")
def test_TRN_005_no_market_order_while_the_fund_is_in_the_ADL_state():
    """bob's short is only 30 contracts: ADL at 23,200 closes 30 of alice's remainder of 50 and 20
    stay open, so the fund stays in the ADL state (ADL-003).  carol, long 10 contracts (0.1 BTC)
    at 24,000 with 100 USDT, has her bankruptcy price at 24,000 - 100 / 0.1 = 23,000; at the mark
    23,050 her equity is 100 - 0.1 x 950 = 5 USDT, below her requirement 0.1 x 23,050 x (0.004 +
    0.0005) = 10.3725 USDT: she is liquidated in full.  The book bids 100 contracts at 23,000, her
    bankruptcy price, so a fill would cost the fund nothing -- and still no order may go to the
    market while the fund is in the ADL state: her takeover becomes a remainder for ADL."""
    carol = Account("carol", (("USDT", 0),), (Position("BTC-USDT-SWAP", "long", F(10), F(24_000), "isolated", 100 * U),))
    st, _ = S.process_event(_state(bob=30, extra=(carol,)), S.MarkEvent(1_000, "BTC-USDT-SWAP", F(27_100)))
    st, recs = S.process_event(st, S.MarkEvent(2_000, "BTC-USDT-SWAP", F(23_200)))
    assert [r.get("reduced_size") for r in recs if r.kind == "adl"] == [30]
    assert st.is_adl_active(KEY) and [r.size for r in st.remainders] == [20]
    st, _ = S.process_event(st, S.BookEvent(2_500, "BTC-USDT-SWAP", (Level(F(23_000), F(100)),), (Level(F(23_300), F(100)),)))
    assert st.is_adl_active(KEY)
    st3, recs = S.process_event(st, S.MarkEvent(3_000, "BTC-USDT-SWAP", F(23_050)))
    assert [r.get("takeover_price") for r in recs if r.kind == "full liquidation" and r.account == "carol"] == [23_000]
    assert [r for r in recs if r.kind == "engine fill"] == []
    assert sorted((r.account, r.size) for r in st3.remainders) == [("alice", 20), ("carol", 10)]


# ---------------------------------------------------------------- defect 2: a book before any mark

@pytest.mark.rules("TRN-001")
def test_TRN_001_a_book_for_an_instrument_without_a_mark_is_kept():
    """Defect 2 of issue 13: a book event for BTC-USD-SWAP, which has had no mark price yet, raised
    KeyError inside process_event.  There is nothing to retry (no remainder can exist without a
    mark), so the book is stored and nothing else happens."""
    st = _state()
    book = (Level(F(30_000), F(5)),)
    st2, recs = S.process_event(st, S.BookEvent(500, "BTC-USD-SWAP", book, ()))
    assert st2.book("BTC-USD-SWAP").bids == book
    assert [r.kind for r in recs] == []


# ---------------------------------------------------------------- one validation for every entry point

@pytest.mark.rules("TRN-007")
def test_TRN_007_initial_state_refuses_a_crossed_book():
    crossed = S.Book((Level(F(30_000), F(1)),), (Level(F(30_000), F(1)),))
    with pytest.raises(InvalidInput, match="crossed"):
        S.initial_state(P, [], {"BTC-USDT-SWAP": F(30_000)}, {"BTC-USDT-SWAP": crossed})


@pytest.mark.rules("TRN-007")
def test_TRN_007_process_event_refuses_a_crossed_book_and_changes_nothing():
    st = _state()
    before = S.state_json(st)
    with pytest.raises(InvalidInput, match="crossed"):
        S.process_event(st, S.BookEvent(500, "BTC-USDT-SWAP", (Level(F(27_200), F(1)),), (Level(F(27_100), F(1)),)))
    assert S.state_json(st) == before


@pytest.mark.rules("TRN-007")
def test_TRN_007_initial_state_refuses_a_position_above_the_last_tier():
    """The BTC table's last cap is 60,000 contracts (okx.toml): 60,001 is beyond every tier."""
    big = Account("whale", (("USDT", 0),), (Position("BTC-USDT-SWAP", "long", F(60_001), F(30_000), "isolated", 10**12),))
    with pytest.raises(OutOfTierRange):
        S.initial_state(P, [big], {"BTC-USDT-SWAP": F(30_000)})
