"""INV-009: a Hypothesis state machine over the fund plumbing: random liquidation and ADL results,
fees, top-ups, withdrawals (also too large ones) and settlements across three funds in two
currencies.  After every step: conservation (every currency's total over all accounts is 0 and
every booked entry balances), never negative (settled >= 0 and settled + pending >= 0), isolation
(the step changed no account of another fund), the derived balances equal a plain recomputation
of the journal, and settling twice at the same instant is a no-op."""

from __future__ import annotations

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from backstop.reference import fund as F
from backstop.reference import fundbook as B
from backstop.reference import journal as J
from backstop.reference.errors import InvalidInput
from backstop.reference.events import FundKey
from backstop.reference.profile import load_profile

PROFILE = load_profile("okx")
FUNDS = (FundKey.parse("perpetual_futures/BTC-USDT/USDT"), FundKey.parse("expiry_futures/BTC-USDT/USDT"),
         FundKey.parse("perpetual_futures/BTC-USD/BTC"))
T0 = 1_767_571_200_000  # 2026-01-05T00:00Z
funds = st.sampled_from(FUNDS)
amounts = st.integers(-10 ** 10, 10 ** 10)
magnitudes = st.integers(0, 10 ** 10)
steps_ms = st.one_of(st.just(0), st.integers(1, 3_600_000), st.integers(1, 2 * F.DAY_MS),
                     st.sampled_from([F.DAY_MS, 28_800_000]))


def _norm(balances):
    return {k: v for k, v in balances.items() if v != 0}


class FundMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = B.new_state(PROFILE, funds=FUNDS, start_ms=T0)
        self.now = T0
        self.before = self.state
        self.touched: FundKey | None = None

    def _step(self, key, fn) -> None:
        self.before, self.touched = self.state, key
        try:
            out = fn()
        except InvalidInput:
            out = None
        if out is not None:
            self.state = out[0]

    def _advance(self, dt: int) -> int:
        self.now += dt
        return self.now

    @rule(key=funds, amount=amounts, dt=steps_ms, adl=st.booleans())
    def result(self, key, amount, dt, adl):
        t = self._advance(dt)
        fn = B.apply_adl_result if adl else B.apply_liquidation_result
        self._step(key, lambda: fn(self.state, key, amount, t))

    @rule(key=funds, fee=magnitudes, dt=steps_ms, receiver=st.sampled_from(["fund", "venue"]))
    def fee(self, key, fee, dt, receiver):
        t = self._advance(dt)
        self._step(key, lambda: B.apply_fee(self.state, key, fee, t, receiver, account="u1"))

    @rule(key=funds, amount=magnitudes, dt=steps_ms)
    def top_up(self, key, amount, dt):
        t = self._advance(dt)
        self._step(key, lambda: B.top_up(self.state, key, amount, t))

    @rule(key=funds, amount=magnitudes, dt=steps_ms, all_of_it=st.booleans())
    def withdraw(self, key, amount, dt, all_of_it):
        t = self._advance(dt)
        limit = B.withdrawable(B.settle(self.state, t)[0], key)  # what is withdrawable after settling at t
        if all_of_it:
            amount = limit
        before = self.state
        self._step(key, lambda: B.withdraw(self.state, key, amount, t))
        assert (self.state is not before) == (amount <= limit)

    @rule(dt=steps_ms)
    def settle(self, dt):
        t = self._advance(dt)
        self.before, self.touched = self.state, None
        self.state, _ = B.settle(self.state, t)

    @precondition(lambda self: self.now > T0)
    @rule(back=st.integers(1, 10 ** 8), key=funds)
    def out_of_order(self, back, key):
        clock = self.state.funds[key].clock
        self.before, self.touched = self.state, key
        with pytest.raises(InvalidInput) as e:
            B.apply_liquidation_result(self.state, key, 1, clock - back)
        assert e.value.rule == "INS-009"

    # ------------------------------------------------------------ invariants

    @invariant()
    def conservation(self):
        for c in ("USDT", "BTC"):
            assert J.total(self.state.ledger.balances, c) == 0
        assert all(J.entry_balances(e) is True for e in self.state.ledger.entries[len(self.before.ledger.entries):])

    @invariant()
    def never_negative(self):
        for k in FUNDS:
            s, p = B.settled_balance(self.state, k), B.pending_balance(self.state, k)
            assert s >= 0 and s + p >= 0
            t = self.state.funds[k]  # the running peaks the state keeps are never below the balance
            assert t.peak_settled >= s and t.peak_available >= s + p

    @invariant()
    def isolation(self):
        if self.touched is None:
            return
        for k in FUNDS:
            if k == self.touched:
                continue
            for acct in F.fund_accounts(k):
                assert self.state.ledger.balance(*acct) == self.before.ledger.balance(*acct)
            assert self.state.funds[k] == self.before.funds[k]
            assert self.state.history[k] == self.before.history[k]

    @invariant()
    def derived_equals_recomputation(self):
        assert _norm(J.recompute(self.state.ledger.entries)) == _norm(self.state.ledger.balances)

    @invariant()
    def settle_twice_is_a_no_op(self):
        once, _ = B.settle(self.state, self.now)
        twice, recs = B.settle(once, self.now)
        assert recs == () and twice.ledger == once.ledger and twice.funds == once.funds
        for k in FUNDS:  # after settling, nothing is pending in a completed window
            assert B.available_balance(once, k, "settled_plus_pending") == B.available_balance(self.state, k, "settled_plus_pending")


FundMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


@pytest.mark.rules("INV-009", "INV-010", "INV-011", "INV-014", "JRN-003", "INS-008", "INS-009")
class TestFundMachine(FundMachine.TestCase):
    def test_fund_machine(self):
        """INV-009: never negative, conservation, isolation, recomputation, settle-twice after every step."""
        self.runTest()
