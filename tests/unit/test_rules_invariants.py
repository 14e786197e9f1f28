"""INV-024 (spec/90-invariants.md): through the step function, events keep the books whole.

The obligation OBL-INV-024 proves it on a bounded domain; here it is checked on concrete runs of
``process_event`` with a valuation written in this file from the statement's clause 6 (cash,
isolated margins and unrealized PnL, the fund's balances read from its raw ledger accounts, the
engine's open remainders at their takeover price, the venue's fees and dust), not with the code's
``compute_unrealized_pnl`` or ``check_invariants``.  A linear contract's PnL in units is
``sign · size · contract value · (mark − entry) · 10^decimals``.

First a run worked by hand (the ENG-006 example of spec/20-liquidation.md followed by trigger (a)
ADL), then a Hypothesis property over random mark sequences on a small venue.
"""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given, settings, strategies as st

from backstop.reference import liquidation as L
from backstop.reference import step as S
from backstop.reference.engine import Level
from backstop.reference.profile import load_profile
from backstop.reference.types import Account, ContractKind, MarginMode, Position

P = load_profile("okx")
U = 10 ** 6  # USDT units
BTC = P.instruments["BTC-USDT-SWAP"]
ETH = P.instruments["ETH-USDT-SWAP"]
FUND = "perpetual_futures/BTC-USDT/USDT"
ETH_FUND = "perpetual_futures/ETH-USDT/USDT"
SIGN = {"long": 1, "short": -1}


def upl_units(inst, sign, size, entry, mark) -> F:
    """MRG-002 for a linear contract, written out (exact units)."""
    assert inst.kind is ContractKind.LINEAR
    return sign * size * inst.contract_value * (mark - entry) * 10 ** inst.settle_currency.decimals


def valuation(state: S.SimState, marks: dict[str, F], code: str = "USDT") -> F:
    """INV-024 clause 6: the venue's books in one currency, valued at ``marks``."""
    total = F(0)
    for a in state.accounts:
        total += dict(a.balances).get(code, 0)
        for q in a.positions:
            inst = P.instruments[q.instrument]
            if inst.settle_currency.code != code:
                continue
            if q.margin_mode is MarginMode.ISOLATED:
                total += q.margin
            total += upl_units(inst, SIGN[q.side.value], q.size, q.entry_price, marks[q.instrument])
    for (account, ccy), units in state.funds.ledger.balances.items():
        if ccy == code and (account.startswith(("fund:", "pending:")) or account == "venue"):
            total += units
    for r in state.remainders:
        inst = P.instruments[r.instrument]
        if inst.settle_currency.code == code:
            total += upl_units(inst, r.sign, r.size, r.price, marks[r.instrument])
    total += dict(state.dust).get(code, 0)
    return total


def fills_against_the_book(records, marks: dict[str, F]) -> F:
    """Σ side · size · (fill price − mark) · contract value over the engine's fills (clause 6)."""
    total = F(0)
    for r in records:
        if r.kind == "engine fill":
            inst = P.instruments[r.instrument]
            sign = 1 if r.get("side") == "sell" else -1  # selling closes a long the engine holds
            total += upl_units(inst, sign, r.get("size"), marks[r.instrument], r.get("price"))
    return total


def check_inv_024(before: S.SimState, after: S.SimState, records) -> None:
    """The six clauses of INV-024 on one event, from the statement."""
    marks = dict(after.marks)
    # 1. every fund's settled and settled + pending balances are >= 0
    bal = after.funds.ledger.balances
    for key in after.funds.funds:
        settled = bal.get((f"fund:{key.id}", key.currency), 0)
        pending = bal.get((f"pending:{key.id}", key.currency), 0)
        assert settled >= 0 and settled + pending >= 0, (key.id, settled, pending)
    # 2. no position opened or flipped: same side, 0 < size <= before, margin >= 0
    had = {(a.id, q.instrument): q for a in before.accounts for q in a.positions}
    for a in after.accounts:
        for q in a.positions:
            old = had.get((a.id, q.instrument))
            assert old is not None and old.side == q.side, (a.id, q)
            assert 0 < q.size <= old.size and q.margin >= 0, (a.id, q, old)
    # 3. no isolated position on the event's instrument is left liquidatable at its mark
    inst_ids = {r.instrument for r in records if r.kind == "mark"}
    for a in after.accounts:
        for q in a.positions:
            if q.instrument in inst_ids and q.margin_mode is MarginMode.ISOLATED:
                inst = P.instruments[q.instrument]
                assert L.decide_action(inst, P.margin, P.liquidation, q.terms(), marks[q.instrument]) == L.NONE
    # 4. an account with no position in the contract keeps its balance (no loss socialized)
    for a in before.accounts:
        if not a.positions:
            assert after.account(a.id).balances == a.balances, a.id
    # 5. every engine fill is at a level of the closing side of the book, within its size
    taken: dict[tuple[str, str, F], F] = {}
    for r in records:
        if r.kind == "engine fill":
            book = before.book(r.instrument)
            side = book.bids if r.get("side") == "sell" else book.asks
            levels = {lv.price: lv.size for lv in side}
            k = (r.instrument, r.get("side"), r.get("price"))
            taken[k] = taken.get(k, 0) + r.get("size")
            assert r.get("price") in levels and taken[k] <= levels[r.get("price")], (r, side)
    # 6. the books at the event's marks change by exactly the fills against the outside book
    assert valuation(after, marks) - valuation(before, marks) == fills_against_the_book(records, marks)


# ---------------------------------------------------------------- a run worked by hand

def _venue(fund_usdt=200, alice_margin=3_000 * U, bids=((27_000, 30), (26_000, 20)), asks=((27_100, 50),),
           cross=True, eve_margin=None):
    eve = [] if eve_margin is None else [  # tier 3 (5,000 contracts): liquidated by partial steps first
        Account("eve", (("USDT", 0),), (Position("BTC-USDT-SWAP", "long", F(5_000), F(30_000), "isolated", eve_margin),))]
    accts = eve + [
        Account("alice", (("USDT", 0),), (Position("BTC-USDT-SWAP", "long", F(100), F(30_000), "isolated", alice_margin),)),
        Account("bob", (("USDT", 100_000 * U),), (Position("BTC-USDT-SWAP", "short", F(500), F(31_000), "isolated", 50_000 * U),)),
        Account("carol", (("USDT", 1_000 * U),), ()),
        Account("dave", (("USDT", 1_500 * U),), (Position("BTC-USDT-SWAP", "long", F(10), F(29_000), "cross", 0),
                                                 Position("ETH-USDT-SWAP", "short", F(100), F(2_000), "cross", 0))),
    ][:4 if cross else 3]
    books = {"BTC-USDT-SWAP": S.Book(tuple(Level(F(p), F(q)) for p, q in bids), tuple(Level(F(p), F(q)) for p, q in asks)),
             "ETH-USDT-SWAP": S.Book((Level(F(1_990), F(500)),), (Level(F(2_010), F(500)),))}
    marks = {"BTC-USDT-SWAP": F(30_000), "ETH-USDT-SWAP": F(2_000)}
    return S.initial_state(P, accts, marks, books, {FUND: fund_usdt * U}, 0)


def test_INV_024_full_liquidation_then_adl_keeps_the_books_whole():
    st0 = _venue()
    # Valued at 27,100 before the event (units of 1 USDT, by hand):
    #   alice 0 + 3,000 + 100 x 0.01 x (27,100 - 30,000) = 100; bob 100,000 + 50,000 + 19,500 = 169,500;
    #   carol 1,000; dave (cross) 1,500 + 0.1 x (27,100 - 29,000) - 10 x (2,000 - 2,000) = 1,310;
    #   fund 200.
    marks1 = {"BTC-USDT-SWAP": F(27_100), "ETH-USDT-SWAP": F(2_000)}
    assert valuation(st0, marks1) == (100 + 169_500 + 1_000 + 1_310 + 200) * U
    st1, recs1 = S.process_event(st0, S.MarkEvent(1_000, "BTC-USDT-SWAP", F(27_100)))
    # alice goes FULL at her bankruptcy price 27,000: 30 contracts fill at 27,000, 20 at 26,000
    # (loss 200 = the whole fund, ENG-006), 50 stay with the engine, valued +50 at 27,100. After:
    #   alice 0, bob 169,500, carol 1,000, dave 1,310, fund 0, remainder 50 x 0.01 x 100 = 50.
    # The fills against the book: 0.3 x (27,000 - 27,100) + 0.2 x (26,000 - 27,100) = -30 - 220.
    assert valuation(st1, marks1) == (169_500 + 1_000 + 1_310 + 50) * U
    assert fills_against_the_book(recs1, marks1) == -250 * U
    check_inv_024(st0, st1, recs1)
    # At 23,200 the remainder would lose 0.5 x 3,800 = 1,900 and the fund has 0: ADL against bob,
    # the only opposite position, inside the venue (no fill against the book, so nothing changes):
    #   before: bob 100,000 + 50,000 + 5 x 7,800 = 189,000; dave 1,500 + 0.1 x (23,200 - 29,000) = 920
    #   (healthy: his requirement is about 0.1 x 23,200 x 0.4 % + 10 x 2,000 x 0.4 % = 89);
    #   carol 1,000; fund 0; remainder 0.5 x (23,200 - 27,000) = -1,900: 189,020 in all.
    #   after: bob closes 50 at 27,000 (ADL-007) and keeps 450: cash 100,000 + 2,000 realized + 5,000
    #   released, margin 45,000, 4.5 x 7,800 = 35,100 -> 187,100; dave 920; carol 1,000: 189,020.
    marks2 = {"BTC-USDT-SWAP": F(23_200), "ETH-USDT-SWAP": F(2_000)}
    assert valuation(st1, marks2) == 189_020 * U
    st2, recs2 = S.process_event(st1, S.MarkEvent(2_000, "BTC-USDT-SWAP", F(23_200)))
    assert [r.account for r in recs2 if r.kind == "adl"] == ["bob"]
    assert st2.remainders == () and not [r for r in recs2 if r.kind == "engine fill"]
    assert valuation(st2, marks2) == 189_020 * U
    assert dict(st2.account("bob").balances)["USDT"] == 107_000 * U
    check_inv_024(st1, st2, recs2)
    assert dict(st2.account("carol").balances)["USDT"] == 1_000 * U


# ---------------------------------------------------------------- random marks on the small venue

btc_marks = st.one_of(st.integers(200_000, 340_000), st.integers(285_000, 300_000)).map(lambda x: F(x, 10))  # 0.1 tick
eth_marks = st.integers(15_000, 25_000).map(lambda x: F(x, 10))
mark_events = st.lists(st.one_of(st.tuples(st.just("BTC-USDT-SWAP"), btc_marks),
                                 st.tuples(st.just("ETH-USDT-SWAP"), eth_marks)), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(fund_usdt=st.integers(0, 5_000), alice_margin=st.integers(1_000, 6_000), eve_margin=st.integers(20_000, 80_000),
       bid_a=st.integers(255, 300), bid_b=st.integers(200, 254), ask=st.integers(270, 320), events=mark_events)  # (the ask above bid_a: TRN-007 refuses a crossed book)
def test_INV_024_random_marks_keep_the_books_whole(fund_usdt, alice_margin, eve_margin, bid_a, bid_b, ask, events):
    """Isolated positions (alice long, bob short, eve long at tier 3), dave's cross account and a flat
    account: partial steps, full liquidations, engine walks within the fund, remainders and ADL --
    including ADL of a cross remainder taken over off the tick grid (the hole the next test pinned)."""
    ask = max(ask, bid_a + 1)  # a crossed book is refused (TRN-007)
    st_ = _venue(fund_usdt, alice_margin * U, bids=((bid_a * 100, 30), (bid_b * 100, 40)), asks=((ask * 100, 60),),
                 cross=True, eve_margin=eve_margin * U)
    for i, (inst, price) in enumerate(events, start=1):
        nxt, recs = S.process_event(st_, S.MarkEvent(1_000 * i, inst, price))
        check_inv_024(st_, nxt, recs)
        st_ = nxt


@pytest.mark.rules("INV-024", "ENG-005")
def test_INV_024_adl_of_a_cross_remainder_loses_no_residue():
    st0 = _venue(0, 1_000 * U, bids=((25_500, 30), (20_000, 40)), asks=((27_000, 60),))
    # ETH at 2,149: dave's cross equity 1,500 + 0.1 x (30,000 - 29,000) - 10 x 149 = 110 USDT is
    # below his requirement 0.4 % x (3,000 + 21,490) + the 0.05 % close fee = 110.205: FULL.  His
    # BTC long is taken over at its cross bankruptcy price and stays open (both bids are worse and
    # the fund is empty).
    st1, recs1 = S.process_event(st0, S.MarkEvent(1_000, "ETH-USDT-SWAP", F(2_149)))
    (rem,) = st1.remainders
    assert (rem.account, rem.size, rem.price) == ("dave", 10, F(73_140_000, 2_449))  # off the 0.1 grid
    check_inv_024(st0, st1, recs1)  # the cross liquidation itself balances to the unit
    # BTC at 20,000: ADL against bob at that bankruptcy price.  bob's exact gain on 10 contracts is
    # 0.1 x (31,000 - 73,140,000/2,449) x 10^6 = 277,900,000,000/2,449 = 113,474,887 + 1,737/2,449
    # units; he is credited 113,474,887 (ADL-008, down).  Nothing is filled against the book, so the
    # venue's books must not change: the 1,737/2,449 of a unit belongs to the venue's dust.
    st2, recs2 = S.process_event(st1, S.MarkEvent(2_000, "BTC-USDT-SWAP", F(20_000)))
    adl = [r for r in recs2 if r.kind == "adl" and r.get("bankruptcy_price") == F(73_140_000, 2_449)]
    assert [r.get("realized_pnl") for r in adl] == [113_474_887]
    marks = dict(st2.marks)
    assert valuation(st2, marks) - valuation(st1, marks) == 0
