"""Hypothesis properties of the ADL rules on concrete exact numbers: the same laws the Z3
obligations of ``backstop.proofs.adl`` prove, checked here against independent brute-force
oracles (a sorted list for the ranking, a direct max for the drawdown peak, a contract-by-contract
fill for the allocation) and through the concrete plumbing ``execute_adl``."""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strategies import INSTRUMENT_KEYS, PROFILES, examples
from backstop.reference import adl as A
from backstop.reference import margin as M
from backstop.reference.events import BalancePoint
from backstop.reference.types import PositionTerms

H = 3_600_000
KEYS = INSTRUMENT_KEYS  # every (profile, instrument), linear and inverse


@st.composite
def histories(draw, max_len=6):
    n = draw(st.integers(0, max_len))
    times = sorted(draw(st.lists(st.integers(0, 24 * H), min_size=n, max_size=n)))
    bals = draw(st.lists(st.integers(0, 10 ** 6), min_size=n, max_size=n))
    return tuple(BalancePoint(t, b) for t, b in zip(times, bals))


def _oracle_trigger(rules, hist, now):
    start = now - rules.drawdown_window_seconds * 1000
    upto_now = [p for p in hist if p.time_ms <= now]
    if not upto_now or rules.drawdown_fraction >= 1:
        return False
    current = upto_now[-1].balance
    before = [p for p in hist if p.time_ms <= start]
    window = ([before[-1].balance] if before else []) + [p.balance for p in hist if start < p.time_ms <= now]
    peak = max(window)
    return peak > 0 and current <= (1 - rules.drawdown_fraction) * peak


@pytest.mark.rules("ADL-001")
@settings(max_examples=examples(300))
@given(hist=histories(), now=st.integers(0, 30 * H), pname=st.sampled_from(sorted(PROFILES)))
def test_drawdown_trigger_matches_a_direct_reading(hist, now, pname):
    rules = PROFILES[pname].adl
    assert A.is_drawdown_trigger(rules, hist, now) == _oracle_trigger(rules, hist, now)


@pytest.mark.rules("INV-015", "ADL-003")
@settings(max_examples=examples(200))
@given(hist=histories(), now=st.integers(0, 30 * H), unc=st.integers(-5, 5),
       unplaced=st.sampled_from([0, F(1, 100), 3]), rem=st.sampled_from([0, F(1, 100), 7]))
def test_adl_fires_iff_a_trigger_and_a_remainder(hist, now, unc, unplaced, rem):
    rules = PROFILES["okx"].adl
    want = (unc > 0 or unplaced > 0 or _oracle_trigger(rules, hist, now)) and rem > 0
    assert A.adl_fires(rules, hist, now, unc, unplaced, rem) == want


@st.composite
def book(draw, lot):
    n = draw(st.integers(0, 6))
    out = []
    for i in range(n):
        out.append((f"acct{draw(st.integers(0, 4))}-{i}", draw(st.sampled_from([1, -1])),
                    lot * draw(st.integers(1, 500)), draw(st.integers(20000, 40000)), draw(st.integers(0, 10 ** 10))))
    return out


@pytest.mark.rules("INV-016", "INV-017", "ADL-006", "ADL-005")
@settings(max_examples=examples(200))
@given(key=st.sampled_from(KEYS), data=st.data())
def test_allocation_against_a_contract_by_contract_fill(key, data):
    prof = PROFILES[key[0]]
    inst = prof.instruments[key[1]]
    lot = inst.lot_size
    entries = data.draw(book(lot))
    liq_sign = data.draw(st.sampled_from([1, -1]))
    rem = lot * data.draw(st.integers(1, 2000))
    mark = F(data.draw(st.integers(15000, 45000)))
    cands = tuple(A.RankEntry(a, inst.id, PositionTerms(s, n, F(e), m)) for a, s, n, e, m in entries)
    out = A.execute_adl(inst, prof.margin, prof.adl, liquidated_account="acct0-0", liquidated_sign=liq_sign,
                        remainder=rem, bankruptcy_price=mark, mark=mark, fund_available=0, candidates=cands)
    eligible = [c for c in cands if c.position.sign == -liq_sign and c.account != "acct0-0"]
    # oracle ranking: sort by (-score, key)
    scored = sorted(eligible, key=lambda c: (-A.compute_adl_score(inst, prof.margin, prof.adl, c.position, mark), c.key))
    assert [r.account for r in out.results] == [c.account for c in scored]
    # ADL-006 (C71): only a position in profit at the price it fills at is filled; here the bankruptcy
    # price is the mark, and a position is in profit iff the price moved its way from its entry
    fills = [c for c in scored if c.position.sign * (mark - c.position.entry) > 0]
    # oracle allocation: fill one lot at a time, always to the first fillable candidate with quantity left
    left = {c.key: (c.position.size if c in fills else F(0)) for c in scored}
    got = {c.key: F(0) for c in scored}
    todo = rem
    for c in scored:
        take = min(left[c.key], todo)
        got[c.key] += take
        todo -= take
    assert [r.reduction for r in out.results] == [got[c.key] for c in scored]
    assert out.reduced == min(rem, sum((c.position.size for c in fills), F(0)))
    for r in out.results:
        assert 0 <= r.reduction and r.new_position.size >= 0 and (r.reduction / lot).denominator == 1
    reds = [r.reduction for r, c in zip(out.results, scored) if c in fills]
    sizes = [c.position.size for c in fills]
    for i in range(len(reds)):
        for j in range(i + 1, len(reds)):
            assert not (reds[i] < sizes[i] and reds[j] > 0)
    buckets = [r.bucket for r in out.results]
    assert buckets == sorted(buckets, reverse=True) and all(1 <= b <= 5 for b in buckets)


@pytest.mark.rules("INV-018", "ADL-008")
@settings(max_examples=examples(300))
@given(key=st.sampled_from(KEYS), data=st.data())
def test_counterparty_equity_unchanged_at_mark(key, data):
    inst = PROFILES[key[0]].instruments[key[1]]
    lot = inst.lot_size
    n = data.draw(st.integers(1, 1000))
    pos = PositionTerms(data.draw(st.sampled_from([1, -1])), lot * n, F(data.draw(st.integers(1000, 90000)), 10),
                        data.draw(st.integers(0, 10 ** 12)))
    r = lot * data.draw(st.integers(1, n))
    mark = F(data.draw(st.integers(1000, 900000)), 10)
    realized, released, new = A.settle_adl_counterparty(inst, pos, r, r, mark, mark)
    before = M.compute_equity(inst, pos, mark)
    after = realized + released + M.compute_equity(inst, new, mark)
    assert -1 < after - before <= 0
    assert 0 <= released <= pos.margin and new.margin >= 0
    assert (r != pos.size) or (released == pos.margin and new.size == 0)


def _remainder_case(key, data):
    """A remainder of 1..2,000 lots, either side, against 1..5 opposite positions of other accounts
    (entries 20,000..40,000, margins 0..10^10 units), a bankruptcy price and a mark in
    20,000..40,000 and a fund available balance of 0..10^11 units, run through execute_adl."""
    prof = PROFILES[key[0]]
    inst = prof.instruments[key[1]]
    lot = inst.lot_size
    liq = data.draw(st.sampled_from([1, -1]))
    entries = [(f"c{i}", -liq, lot * data.draw(st.integers(1, 300)), data.draw(st.integers(20000, 40000)),
                data.draw(st.integers(0, 10 ** 10))) for i in range(data.draw(st.integers(1, 5)))]
    cands = tuple(A.RankEntry(a, inst.id, PositionTerms(s, n, F(e), m)) for a, s, n, e, m in entries)
    rem = lot * data.draw(st.integers(1, 2000))
    bp = F(data.draw(st.integers(200000, 400000)), 10)
    mark = F(data.draw(st.integers(200000, 400000)), 10)
    avail = data.draw(st.integers(0, 10 ** 11))
    out = A.execute_adl(inst, prof.margin, prof.adl, liquidated_account="L", liquidated_sign=liq, remainder=rem,
                        bankruptcy_price=bp, mark=mark, fund_available=avail, candidates=cands)
    return prof, inst, liq, cands, bp, mark, avail, out


@pytest.mark.rules("INV-019", "INV-020", "ADL-007", "ADL-009")
@settings(max_examples=examples(300))
@given(key=st.sampled_from(KEYS), data=st.data())
def test_conservation_and_fund_never_negative(key, data):
    prof, inst, liq, cands, bp, mark, avail, out = _remainder_case(key, data)
    assert avail + out.fund_result_units >= 0
    assert 0 <= out.mark_quantity <= out.reduced and (out.mark_quantity / inst.lot_size).denominator == 1
    if prof.adl.execution_price.value == "bankruptcy":
        assert out.mark_quantity == 0
    cash = sum(r.realized_units for r in out.results) + out.fund_result_units
    by_key = {c.account: c for c in cands}
    value = sum((M.compute_unrealized_pnl(inst, PositionTerms(r_.new_position.sign, r_.reduction,
                                                              by_key[r_.account].position.entry, 0), mark)
                 for r_ in out.results), F(0))
    value += A.compute_adl_gap(inst, liq, out.reduced, bp, mark)
    residue = value - cash
    assert 0 <= residue < len(out.results) + 1


@pytest.mark.rules("INV-026", "ADL-006")
@settings(max_examples=examples(300))
@given(key=st.sampled_from(KEYS), data=st.data())
def test_INV_026_adl_never_lowers_a_counterpartys_balance(key, data):
    """C71: whatever the bankruptcy price, the mark and the fund, every fill realizes a gain or
    nothing: a filled position is one the price moved its way from its entry at the mark, and one
    filled partly at the bankruptcy price is not at a loss there (the sign of s * (price - entry)
    is the sign of the PnL, linear or inverse)."""
    prof, inst, liq, cands, bp, mark, avail, out = _remainder_case(key, data)
    by_acct = {c.account: c.position for c in cands}
    for r in out.results:
        pos = by_acct[r.account]
        if r.reduction > 0:
            assert pos.sign * (mark - pos.entry) > 0, (r.account, pos, mark)
        if r.reduction > r.at_mark:     # part of it filled at the bankruptcy price
            assert pos.sign * (bp - pos.entry) >= 0, (r.account, pos, bp)
        assert r.realized_units >= 0 and r.released_units >= 0
