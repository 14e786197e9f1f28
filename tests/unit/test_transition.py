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


# ---------------------------------------------------------------- TRN-002 .. TRN-008 on small runs

def _long(acct, size, entry, margin_usdt, balance=0, inst="BTC-USDT-SWAP", mode="isolated"):
    return Account(acct, (("USDT", balance * U),), (Position(inst, "long", F(size), F(entry), mode, margin_usdt * U),))


@pytest.mark.rules("TRN-002")
def test_TRN_002_the_lower_account_id_gets_the_book_first_whatever_the_input_order():
    """a and b: each long 100 contracts (1 BTC) at 30,000 with 3,000 USDT, bankruptcy price 27,000;
    at the mark 27,100 both are liquidated in full.  The book bids 100 contracts at 27,000 -- one
    takeover's worth, at no loss to the empty fund.  Account "a" is served first (TRN-002), so b's
    100 contracts stay open as a remainder."""
    book = S.Book((Level(F(27_000), F(100)),), (Level(F(27_200), F(10)),))
    for order in (("a", "b"), ("b", "a")):
        accts = [_long(n, 100, 30_000, 3_000) for n in order]
        st = S.initial_state(P, accts, {"BTC-USDT-SWAP": F(30_000)}, {"BTC-USDT-SWAP": book}, {}, 0)
        st, recs = S.process_event(st, S.MarkEvent(1_000, "BTC-USDT-SWAP", F(27_100)))
        assert [(r.account, r.get("size"), r.get("price")) for r in recs if r.kind == "engine fill"] == [("a", 100, 27_000)]
        assert [(r.account, r.size) for r in st.remainders] == [("b", 100)]


def _cross_account(balance_usdt, btc_entry, eth_entry):
    """A USDT cross account: long 15,000 BTC-USDT-SWAP contracts (150 BTC: tier 4 of the BTC table,
    caps 500 / 3,000 / 12,000 / 24,000) and long 100 ETH-USDT-SWAP contracts (10 ETH: tier 1)."""
    return Account("x", (("USDT", balance_usdt * U),),
                   (Position("BTC-USDT-SWAP", "long", F(15_000), F(btc_entry), "cross", 0),
                    Position("ETH-USDT-SWAP", "long", F(100), F(eth_entry), "cross", 0)))


@pytest.mark.rules("TRN-003", "TRN-004")
def test_TRN_003_a_partial_cross_round_reduces_only_the_position_at_tier_3_or_above():
    """BTC at entry = mark 30,000 (value 4,500,000 USDT), ETH at entry = mark 2,000 (value 20,000),
    balance 50,000 USDT, no PnL: equity 50,000.  Requirements: BTC tier 4 (1.5 % + 0.05 %) 69,750,
    ETH tier 1 (0.4 % + 0.05 %) 90: sum 69,840 >= 50,000, liquidatable; at tier-1 rates
    20,250 + 90 = 20,340 < 50,000: PARTIAL.  Only BTC is a candidate (TRN-003): cut two tiers, to
    tier 2, whose cap is 3,000 contracts; 12,000 contracts (120 BTC) close at the mark, realized
    PnL 0, close fee 0.05 % x 120 x 30,000 = 1,800 USDT: the balance becomes 48,200 (TRN-004).  The
    next round: BTC at tier 2 needs 0.55 % x 900,000 = 4,950, ETH 90: 48,200 > 5,040, healthy."""
    st = S.initial_state(P, [_cross_account(50_000, 30_000, 2_000)],
                         {"BTC-USDT-SWAP": F(30_000), "ETH-USDT-SWAP": F(2_000)}, {}, {}, 0)
    st, recs = S.process_event(st, S.MarkEvent(1_000, "BTC-USDT-SWAP", F(30_000)))
    parts = [r for r in recs if r.kind == "partial liquidation"]
    assert [(r.instrument, r.get("reduced"), r.get("new_size"), r.get("close_fee")) for r in parts] == \
        [("BTC-USDT-SWAP", 12_000, 3_000, 1_800 * U)]
    x = st.account("x")
    assert x.balance("USDT") == 48_200 * U
    assert sorted((q.instrument, q.size) for q in x.positions) == [("BTC-USDT-SWAP", 3_000), ("ETH-USDT-SWAP", 100)]
    assert not [r for r in recs if r.kind == "full liquidation"]


@pytest.mark.rules("TRN-004")
def test_TRN_004_a_partial_round_the_balance_cannot_fund_becomes_a_full_liquidation():
    """BTC entry 31,000 at mark 30,000: UPnL 150 x -1,000 = -150,000 USDT; ETH entry 2,000 at mark
    22,000: UPnL 10 x 20,000 = +200,000; balance 10,000: equity 60,000.  Requirements: BTC 69,750
    + ETH 0.45 % x 220,000 = 990: 70,740 >= 60,000; tier-1 rates: 20,250 + 990 = 21,240 < 60,000:
    PARTIAL.  The BTC step realizes 120 x -1,000 = -120,000 USDT and pays a 1,800 fee: the balance
    would be 10,000 - 120,000 - 1,800 = -111,800 < 0, so the round is refused and the account is
    liquidated in full (TRN-004): both positions to the engine, the USDT balance to 0."""
    st = S.initial_state(P, [_cross_account(10_000, 31_000, 2_000)],
                         {"BTC-USDT-SWAP": F(31_000), "ETH-USDT-SWAP": F(22_000)}, {}, {}, 0)
    st, recs = S.process_event(st, S.MarkEvent(1_000, "BTC-USDT-SWAP", F(30_000)))
    (refused,) = [r for r in recs if r.kind == "cross partial refused"]
    assert refused.get("balance_after") == -111_800 * U
    assert sorted(r.instrument for r in recs if r.kind == "full liquidation") == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    assert not [r for r in recs if r.kind == "partial liquidation"]
    assert st.account("x").positions == () and st.account("x").balance("USDT") == 0


@pytest.mark.rules("TRN-006", "ADL-003")
def test_TRN_006_the_ADL_state_ends_at_the_first_check_with_no_trigger_and_nothing_open():
    """After trigger (a) at 23,200 bob's short of 500 absorbs alice's whole remainder of 50: the fund
    is in the ADL state (entered by (a)) with nothing open.  At the next mark (23,300) no remainder
    is open and neither trigger holds (the settled balance, okx's ADL view, has not moved): the
    state ends, with one 'adl state' record (active false)."""
    st, _ = S.process_event(_state(), S.MarkEvent(1_000, "BTC-USDT-SWAP", F(27_100)))
    st, _ = S.process_event(st, S.MarkEvent(2_000, "BTC-USDT-SWAP", F(23_200)))
    assert st.is_adl_active(KEY) and st.remainders == ()
    st, recs = S.process_event(st, S.MarkEvent(3_000, "BTC-USDT-SWAP", F(23_300)))
    assert [r.get("active") for r in recs if r.kind == "adl state"] == [False]
    assert not st.is_adl_active(KEY)


@pytest.mark.rules("TRN-008")
def test_TRN_008_a_counterparty_that_ADL_weakens_is_rechecked_in_the_same_event():
    """alice (long 1 BTC at 30,000, 3,000 USDT, bankruptcy price 27,000) is liquidated at 23,200 with
    no book and an empty fund: her remainder of 100 contracts cannot be covered (1 x 3,800 USDT
    uncovered: trigger (a)), so it is deleveraged; with nothing available all of it executes at the
    bankruptcy price 27,000 (ADL-007).  dave, the only short (cross: short 100 BTC contracts at
    28,000 and long 100 ETH contracts, 10 ETH, at 2,100 with the ETH mark at 2,000; balance 50 USDT),
    is healthy before ADL (equity 50 + 1 x 4,800 - 10 x 100 = 3,850 > 0.45 % x (23,200 + 20,000) =
    194.4) and in profit at the mark and at 27,000, so he is filled (ADL-006).  His short is bought
    back at 27,000: realized 1 x (28,000 - 27,000) = +1,000 USDT (ADL never lowers a balance,
    INV-026), balance 1,050; but he gave up 3,800 USDT of profit at the mark, so his equity falls to
    1,050 - 1,000 = 50.  The re-check (TRN-008) finds his ETH position under its requirement 0.45 % x
    20,000 = 90 > 50: liquidated in the same event."""
    dave = Account("dave", (("USDT", 50 * U),),
                   (Position("BTC-USDT-SWAP", "short", F(100), F(28_000), "cross", 0),
                    Position("ETH-USDT-SWAP", "long", F(100), F(2_100), "cross", 0)))
    alice = _long("alice", 100, 30_000, 3_000)
    st = S.initial_state(P, [alice, dave], {"BTC-USDT-SWAP": F(30_000), "ETH-USDT-SWAP": F(2_000)}, {}, {}, 0)
    st, recs = S.process_event(st, S.MarkEvent(1_000, "BTC-USDT-SWAP", F(23_200)))
    (adl,) = [r for r in recs if r.kind == "adl"]
    assert adl.account == "dave" and adl.get("reduced_size") == 100 and adl.get("realized_pnl") == 1_000 * U
    assert [r.instrument for r in recs if r.kind == "full liquidation" and r.account == "dave"] == ["ETH-USDT-SWAP"]
    assert st.account("dave").positions == () and st.account("dave").balance("USDT") == 0
