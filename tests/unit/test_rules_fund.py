"""The fund's invariants INV-009 .. INV-014 (spec/30-fund.md), one test (or two) per invariant.

Each is checked on the fund plumbing (``reference/fundbook.py``, the public API) against values
derived here, apart from the code: a concrete case worked by hand from the spec's worked example
(INS-004's day, 1 USDT = 10^6 units), and a Hypothesis property over random event sequences that
checks the invariant directly.  The balances are read from the journal's raw accounts
(``fund:<id>``, ``pending:<id>``), not through the views under test, and the amounts a deficit pays
or a settlement moves come from a small shadow model written from the rules' text (INS-004,
INS-008), not from ``reference/fund.py``.  The obligations (OBL-INV-009a ..) prove the same
claims symbolically; these tests are the independent concrete check.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings, strategies as st

from backstop.reference import fundbook as B
from backstop.reference.errors import InvalidInput
from backstop.reference.events import FundKey
from backstop.reference.profile import load_profile

OKX = load_profile("okx")
USDT = 1_000_000
PERP = FundKey.parse("perpetual_futures/BTC-USDT/USDT")
EXPIRY = FundKey.parse("expiry_futures/BTC-USDT/USDT")
INVERSE = FundKey.parse("perpetual_futures/BTC-USD/BTC")
FUNDS = (PERP, EXPIRY, INVERSE)
CCY = {PERP: "USDT", EXPIRY: "USDT", INVERSE: "BTC"}
DAY = 86_400_000
OFFSET = 28_800_000  # okx: 16:00 HKT = 08:00 UTC, so window k starts at k * DAY + 8 h (INS-002)
T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z = 08:00 HKT, inside window 20,457


def window(t: int) -> int:
    """INS-002 for okx, written out: floor((t - 8 h) / 1 day)."""
    return (t - OFFSET) // DAY


def window_start(k: int) -> int:
    return k * DAY + OFFSET


def raw(state: B.FundState, key: FundKey) -> tuple[int, int]:
    """(settled, pending) read straight from the journal's accounts, not through the views."""
    c = CCY[key]
    return state.ledger.balance(f"fund:{key.id}", c), state.ledger.balance(f"pending:{key.id}", c)


@dataclass
class Shadow:
    """One fund as the rules' text describes it (INS-004, INS-006 .. INS-008), apart from the code."""

    settled: int = 0
    pending: int = 0
    window: int = window(T0)
    moved: int = 0  # what the last settlement moved

    def settle(self, t: int) -> None:
        self.moved = 0
        if window(t) > self.window:
            self.moved, self.settled, self.pending = self.pending, self.settled + self.pending, 0
        self.window = max(self.window, window(t))

    def result(self, amount: int) -> tuple[int, int]:
        """(paid, uncovered): a surplus goes in whole; a deficit is paid up to max(available, 0)."""
        if amount >= 0:
            self.pending += amount
            return 0, 0
        need = -amount
        paid = min(need, max(self.settled + self.pending, 0))
        self.pending -= paid
        return paid, need - paid


# ---------------------------------------------------------------- random event sequences

KINDS = ("result", "adl", "fee_fund", "fee_venue", "top_up", "withdraw", "withdraw_all", "settle")
amounts = st.one_of(st.integers(-10 ** 10, 10 ** 10), st.integers(-50, 50))
gaps_ms = st.one_of(st.just(0), st.integers(1, 3_600_000), st.integers(1, 2 * DAY), st.just(DAY))
events = st.tuples(st.sampled_from(KINDS), st.sampled_from(FUNDS), amounts, gaps_ms)


def apply(state: B.FundState, kind: str, key: FundKey, amount: int, t: int):
    """One event through the public API: (state after, accepted, uncovered)."""
    mag = abs(amount)
    try:
        if kind == "result":
            s, _, u = B.apply_liquidation_result(state, key, amount, t, account="u1")
            return s, True, u
        if kind == "adl":
            s, _, u = B.apply_adl_result(state, key, amount, t, account="u1")
            return s, True, u
        if kind in ("fee_fund", "fee_venue"):
            s, _ = B.apply_fee(state, key, mag, t, kind[4:], account="u1")
        elif kind == "top_up":
            s, _ = B.top_up(state, key, mag, t)
        elif kind == "withdraw":  # any amount: above the limit it is refused (INS-007)
            s, _ = B.withdraw(state, key, mag, t)
        elif kind == "withdraw_all":
            s, _ = B.withdraw(state, key, B.withdrawable(B.settle(state, t)[0], key), t)
        else:
            s, _ = B.settle(state, t)
        return s, True, 0
    except InvalidInput:
        return state, False, 0


def run(seq, opening=(0, 0, 0)):
    """Yield (kind, key, amount, t, before, after, accepted, uncovered) for each event, on the
    three funds (two in USDT, one in BTC), each topped up with its opening balance first."""
    state = B.new_state(OKX, funds=[EXPIRY], start_ms=T0)
    for key, amount in zip(FUNDS, opening):
        state, _ = B.top_up(state, key, amount, T0)
    t = T0
    for kind, key, amount, dt in seq:
        t += dt
        after, ok, u = apply(state, kind, key, amount, t)
        yield kind, key, amount, t, state, after, ok, u
        state = after


SETTINGS = settings(max_examples=80, deadline=None)
openings = st.tuples(*[st.one_of(st.just(0), st.integers(1, 10 ** 10))] * 3)


# ---------------------------------------------------------------- INV-009

def test_INV_009_the_worked_example_never_goes_below_zero():
    """The worked day of spec/30-fund.md: settled 8,199.5 / available 0 after the Jan 6 deficit,
    never below."""
    s = B.new_state(OKX, start_ms=T0)
    s, _ = B.top_up(s, PERP, 10_000 * USDT, T0 + 3_600_000)                    # 09:00 HKT
    s, _, _ = B.apply_liquidation_result(s, PERP, 1_200 * USDT, T0 + 7_200_000)  # 10:00
    s, _, _ = B.apply_liquidation_result(s, PERP, -3_000_500_000, window_start(20458) - 1)  # 15:59:59.999
    assert raw(s, PERP) == (10_000 * USDT, 1_200 * USDT - 3_000_500_000)  # pending -1,800.5 USDT
    s, _ = B.settle(s, window_start(20458))                                   # 16:00: settled 8,199.5
    s, _, _ = B.apply_liquidation_result(s, PERP, -100, window_start(20458))  # available 8,199.4999
    s, _, u = B.apply_liquidation_result(s, PERP, -9_000 * USDT, window_start(20458) + 11 * 3_600_000)
    settled, pending = raw(s, PERP)
    # 8,199,500,000 - 100 = 8,199,499,900 is all there is: it is paid, the rest is uncovered
    assert (settled, pending, u) == (8_199_500_000, -8_199_500_000, 9_000 * USDT - 8_199_499_900)
    assert settled >= 0 and settled + pending == 0
    # a withdrawal of even one unit now is refused rather than taking the fund below zero
    with pytest.raises(InvalidInput):
        B.withdraw(s, PERP, 1, window_start(20458) + 12 * 3_600_000)


@SETTINGS
@given(openings, st.lists(events, max_size=25))
def test_INV_009_settled_and_available_stay_non_negative(opening, seq):
    for kind, key, amount, t, before, after, ok, u in run(seq, opening):
        for k in FUNDS:
            settled, pending = raw(after, k)
            assert settled >= 0, (kind, k.id, settled)
            assert settled + pending >= 0, (kind, k.id, settled, pending)


# ---------------------------------------------------------------- INV-010

def test_INV_010_a_fee_and_a_surplus_move_value_between_named_accounts_only():
    """The fee and surplus worked examples of spec/30-fund.md: user:a1 -1,500 / venue +1,500;
    engine -1,200 USDT / pending +1,200 USDT; the USDT total over all accounts stays 0."""
    s = B.new_state(OKX, start_ms=T0)
    s, _ = B.apply_fee(s, PERP, 1_500, T0 + 1, "venue", account="a1")
    s, _, _ = B.apply_liquidation_result(s, PERP, 1_200 * USDT, T0 + 2)
    bal = s.ledger.balances
    assert bal[("user:a1", "USDT")] == -1_500 and bal[("venue", "USDT")] == 1_500
    assert bal[(f"engine:{PERP.id}", "USDT")] == -1_200 * USDT
    assert bal[(f"pending:{PERP.id}", "USDT")] == 1_200 * USDT
    assert sum(v for (_, c), v in bal.items() if c == "USDT") == 0


@SETTINGS
@given(openings, st.lists(events, max_size=25))
def test_INV_010_every_entry_balances_and_no_total_changes(opening, seq):
    for kind, key, amount, t, before, after, ok, u in run(seq, opening):
        for e in after.ledger.entries[len(before.ledger.entries):]:
            for c in {leg.currency for leg in e.legs}:
                assert sum(leg.amount for leg in e.legs if leg.currency == c) == 0, e
        for c in ("USDT", "BTC"):
            assert sum(v for (_, cc), v in after.ledger.balances.items() if cc == c) == 0
        # and the balances are the sum of the legs booked (no balance set any other way)
        folded: dict[tuple[str, str], int] = {}
        for e in after.ledger.entries:
            for leg in e.legs:
                folded[(leg.account, leg.currency)] = folded.get((leg.account, leg.currency), 0) + leg.amount
        assert {k: v for k, v in folded.items() if v} == {k: v for k, v in after.ledger.balances.items() if v}


# ---------------------------------------------------------------- INV-011

def test_INV_011_a_deficit_on_one_fund_leaves_the_other_usdt_fund_alone():
    s = B.new_state(OKX, funds=[EXPIRY], start_ms=T0)
    s, _ = B.top_up(s, PERP, 100, T0 + 1)
    s, _ = B.top_up(s, EXPIRY, 100, T0 + 1)
    s2, _, u = B.apply_liquidation_result(s, PERP, -150, T0 + 2)
    assert u == 50  # PERP pays its 100 and hands 50 to ADL ...
    assert raw(s2, EXPIRY) == (100, 0)  # ... and does not reach into the other USDT fund
    assert s2.funds[EXPIRY] == s.funds[EXPIRY] and s2.history[EXPIRY] == s.history[EXPIRY]


SINGLE_FUND = ("result", "adl", "fee_fund", "fee_venue", "top_up", "withdraw", "withdraw_all")


@SETTINGS
@given(openings, st.lists(events, max_size=25))
def test_INV_011_an_event_touches_only_its_own_fund(opening, seq):
    for kind, key, amount, t, before, after, ok, u in run(seq, opening):
        if kind not in SINGLE_FUND:
            continue
        own = {f"fund:{key.id}", f"pending:{key.id}", f"engine:{key.id}", "venue", "platform", "user:u1"}
        for e in after.ledger.entries[len(before.ledger.entries):]:
            for leg in e.legs:
                assert leg.account in own and leg.currency == CCY[key], (kind, key.id, leg)
        for other in FUNDS:
            if other == key:
                continue
            assert raw(after, other) == raw(before, other)
            assert after.ledger.balance(f"engine:{other.id}", CCY[other]) == \
                before.ledger.balance(f"engine:{other.id}", CCY[other])
            assert after.funds[other] == before.funds[other]  # clock and peaks
            assert after.history[other] == before.history[other]


# ---------------------------------------------------------------- INV-012

def test_INV_012_the_worked_example_settles_minus_1800_5_once():
    """Window 20,457: +1,200 then -3,000.5 (paid in full) nets -1,800.5 USDT; the 16:00 settlement
    moves exactly that into the settled balance, and a second one moves nothing."""
    s = B.new_state(OKX, start_ms=T0)
    s, _ = B.top_up(s, PERP, 10_000 * USDT, T0 + 1)
    s, _, _ = B.apply_liquidation_result(s, PERP, 1_200 * USDT, T0 + 2)
    s, _, _ = B.apply_liquidation_result(s, PERP, -3_000_500_000, window_start(20458) - 1)
    s1, recs = B.settle(s, window_start(20458))
    assert raw(s1, PERP) == (10_000 * USDT - 1_800_500_000, 0)
    assert [r.get("net") for r in recs] == [-1_800_500_000]
    s2, again = B.settle(s1, window_start(20458))
    assert again == () and s2.ledger == s1.ledger


window_events = st.tuples(st.sampled_from(("result", "adl", "fee_fund", "fee_venue")), amounts,
                          st.integers(0, DAY - 1))


@SETTINGS
@given(st.integers(0, 10 ** 9), st.lists(window_events, max_size=12), st.integers(0, 3 * DAY))
def test_INV_012_settlement_moves_exactly_the_window_net(opening, seq, late):
    k = window(T0) + 1  # a whole window after the start
    s = B.new_state(OKX, start_ms=T0)
    s, _ = B.top_up(s, PERP, opening, T0)
    model = Shadow(settled=opening)
    net = 0
    for kind, amount, offset in sorted(seq, key=lambda e: e[2]):
        t = window_start(k) + offset
        model.settle(t)
        if kind in ("result", "adl"):
            paid, uncovered = model.result(amount)
            s, _, u = (B.apply_adl_result if kind == "adl" else B.apply_liquidation_result)(s, PERP, amount, t)
            assert u == uncovered
            net += amount + uncovered  # the window's net: amount + uncovered of each result ...
        else:
            s, _ = B.apply_fee(s, PERP, abs(amount), t, kind[4:], account="u1")
            if kind == "fee_fund":
                model.pending += abs(amount)
                net += abs(amount)  # ... and its fees to the fund (INV-012)
    settled_before, _ = raw(s, PERP)
    s1, _ = B.settle(s, window_start(k + 1) + late)
    model.settle(window_start(k + 1) + late)
    assert raw(s1, PERP) == (settled_before + net, 0)
    assert model.moved == net
    s2, again = B.settle(s1, window_start(k + 1) + late)
    assert again == () and raw(s2, PERP) == raw(s1, PERP) and s2.ledger == s1.ledger


# ---------------------------------------------------------------- INV-013

def test_INV_013_the_jan_6_deficit_pays_all_there_is_and_hands_on_the_rest():
    """Available 8,199.4999 USDT, deficit 9,000: paid 8,199.4999, uncovered 800.5001 (to ADL)."""
    s = B.new_state(OKX, start_ms=T0)
    s, _ = B.top_up(s, PERP, 8_199_499_900, T0 + 1)
    s, recs, u = B.apply_liquidation_result(s, PERP, -9_000 * USDT, T0 + 2)
    assert recs[-1].get("paid") == 8_199_499_900 and u == 800_500_100
    assert sum(raw(s, PERP)) == 0  # uncovered > 0 only with the available balance exactly 0


@SETTINGS
@given(st.integers(0, 10 ** 10), st.integers(-10 ** 10, 10 ** 10), st.integers(1, 10 ** 10))
def test_INV_013_a_deficit_is_paid_as_far_as_the_fund_can(top, earlier, deficit):
    s = B.new_state(OKX, start_ms=T0)
    s, _ = B.top_up(s, PERP, top, T0)
    s, _, _ = B.apply_liquidation_result(s, PERP, earlier, T0 + 1)
    available = sum(raw(s, PERP))
    s2, recs, uncovered = B.apply_liquidation_result(s, PERP, -deficit, T0 + 2)
    paid = recs[-1].get("paid")
    assert paid + uncovered == deficit and paid >= 0 and uncovered >= 0
    assert paid == min(deficit, max(available, 0))
    after = sum(raw(s2, PERP))
    assert after == available - paid
    assert uncovered == 0 or after == 0


# ---------------------------------------------------------------- INV-014

def test_INV_014_the_worked_example_peaks():
    """The history worked example of spec/30-fund.md: available points 10,000 / 11,200 / 8,199.5 /
    8,199.5, settled 10,000 x3 / 8,199.5: the peaks are 11,200 (available) and 10,000 (settled)."""
    s = B.new_state(OKX, start_ms=T0)
    s, _ = B.top_up(s, PERP, 10_000 * USDT, T0 + 1)
    s, _, _ = B.apply_liquidation_result(s, PERP, 1_200 * USDT, T0 + 2)
    s, _, _ = B.apply_liquidation_result(s, PERP, -3_000_500_000, window_start(20458) - 1)
    s, _ = B.settle(s, window_start(20458))
    assert (s.funds[PERP].peak_settled, s.funds[PERP].peak_available) == (10_000 * USDT, 11_200 * USDT)


@SETTINGS
@given(openings, st.lists(events, max_size=25))
def test_INV_014_the_running_peak_is_the_maximum_of_the_history(opening, seq):
    for kind, key, amount, t, before, after, ok, u in run(seq, opening):
        for k in FUNDS:
            terms, prev = after.funds[k], before.funds[k]
            settled_points = [0] + [p.settled for p in after.history[k]]  # a fund starts at 0
            available_points = [0] + [p.available for p in after.history[k]]
            assert terms.peak_settled == max(settled_points)
            assert terms.peak_available == max(available_points)
            assert terms.peak_settled >= prev.peak_settled and terms.peak_available >= prev.peak_available
            settled, pending = raw(after, k)
            assert terms.peak_settled >= settled and terms.peak_available >= settled + pending
