"""Insurance-fund accounting on concrete values: the worked examples of spec/30-fund.md, window
edges, the never-negative cap, fees, top-ups, withdrawals, peaks, and refused events."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from backstop.reference import fund as F
from backstop.reference import fundbook as B
from backstop.reference.errors import CurrencyMismatch, InvalidInput, UnknownInstrument
from backstop.reference.events import BalancePoint, FundKey
from backstop.reference.profile import BalanceView, FeeReceiver, load_profile
from backstop.reference.types import BusinessLine

HKT = timezone(timedelta(hours=8))
USDT = 1_000_000  # units per USDT
PERP = FundKey.parse("perpetual_futures/BTC-USDT/USDT")
INV = FundKey.parse("perpetual_futures/BTC-USD/BTC")
EXPIRY = FundKey(BusinessLine.EXPIRY_FUTURES, "BTC-USDT", "USDT")


def hkt(d: int, h: int, mi: int = 0, s: int = 0, ms: int = 0) -> int:
    """ms since the epoch of 2026-01-d h:mi:s.ms HKT."""
    return int((datetime(2026, 1, d, h, mi, s, tzinfo=HKT) - datetime(1970, 1, 1, tzinfo=timezone.utc))
               // timedelta(milliseconds=1)) + ms


@pytest.fixture(scope="module")
def okx():
    return load_profile("okx")


@pytest.fixture
def day(okx):
    """The worked example of spec/30-fund.md, step by step: (state, uncovered) after each event."""
    st = B.new_state(okx)
    st, _ = B.top_up(st, PERP, 10_000 * USDT, hkt(5, 9))
    st1, r1, u1 = B.apply_liquidation_result(st, PERP, 1_200 * USDT, hkt(5, 10), account="a1", instrument="BTC-USDT-SWAP")
    st2, r2, u2 = B.apply_liquidation_result(st1, PERP, -3_000_500_000, hkt(5, 15, 59, 59, 999), account="a2")
    return st, st1, st2, (r1, r2), (u1, u2)


# ---------------------------------------------------------------- windows (INS-002)

def test_INS_002_window_index_of_the_worked_example(okx):
    r = okx.fund
    assert hkt(5, 16) == 1_767_600_000_000
    assert F.window_index(r, hkt(5, 16)) == 20458
    assert F.window_index(r, hkt(5, 15, 59, 59, 999)) == 20457
    assert F.window_index(r, hkt(5, 9)) == 20457
    assert F.window_start(r, 20458) == hkt(5, 16)
    assert F.window_start(r, 20459) - F.window_start(r, 20458) == F.DAY_MS


def test_INS_002_an_event_at_exactly_1600_belongs_to_the_new_window(okx):
    r = okx.fund
    for d in range(1, 28):
        edge = hkt(d, 16)
        assert F.window_index(r, edge) == F.window_index(r, edge - 1) + 1
        assert F.window_index(r, edge + F.DAY_MS - 1) == F.window_index(r, edge)


@pytest.mark.parametrize("t", [-1, 0, 1, 28_799_999, 28_800_000, -86_400_000 + 28_800_000])
def test_INS_002_window_is_python_floor_for_every_sign(okx, t):
    r = okx.fund
    k = F.window_index(r, t)
    assert k == (t - 28_800_000) // 86_400_000
    assert F.window_start(r, k) <= t < F.window_start(r, k + 1)


def test_INS_002_utc_midnight_profiles(profiles):
    r = profiles["binance"].fund
    assert (r.settlement_time_seconds, r.utc_offset_minutes) == (0, 0)
    assert F.window_index(r, 86_400_000) == 1 and F.window_index(r, 86_399_999) == 0


# ---------------------------------------------------------------- the worked example (INS-003, INS-004, INS-008)

def test_INS_004_surplus_accrues_to_pending(day):
    st, st1, _, (r1, _), (u1, _) = day
    assert (B.settled_balance(st1, PERP), B.pending_balance(st1, PERP)) == (10_000 * USDT, 1_200 * USDT)
    assert B.available_balance(st1, PERP, "settled_plus_pending") == 11_200 * USDT
    assert B.available_balance(st1, PERP, "settled") == 10_000 * USDT
    assert u1 == 0
    (rec,) = r1
    assert rec.kind == "liquidation surplus" and rec.get("inflow") == 1_200 * USDT
    assert rec.fund == PERP.id and rec.account == "a1" and "INS-004" in rec.rules


def test_INS_004_deficit_is_paid_from_the_available_balance(day):
    _, _, st2, (_, r2), (_, u2) = day
    assert B.settled_balance(st2, PERP) == 10_000 * USDT
    assert B.pending_balance(st2, PERP) == -1_800_500_000
    assert B.available_balance(st2, PERP, "settled_plus_pending") == 8_199_500_000
    assert u2 == 0
    assert r2[0].kind == "liquidation deficit" and r2[0].get("paid") == 3_000_500_000


def test_INS_008_settlement_at_1600_moves_the_window_net(day):
    _, _, st2, _, _ = day
    st3, recs = B.settle(st2, hkt(5, 16))
    (rec,) = recs
    assert rec.kind == "overloss loss" and rec.time_ms == hkt(5, 16)
    assert rec.get("amount") == 1_800_500_000 and rec.get("net") == -1_800_500_000
    assert rec.get("window") == 20457
    assert (B.settled_balance(st3, PERP), B.pending_balance(st3, PERP)) == (8_199_500_000, 0)
    st4, again = B.settle(st3, hkt(5, 16))
    assert again == () and st4.ledger == st3.ledger
    st5, later = B.settle(st3, hkt(6, 15, 59, 59, 999))
    assert later == () and st5.ledger == st3.ledger


def test_INS_008_settlement_not_due_one_ms_before_1600(day):
    _, _, st2, _, _ = day
    st3, recs = B.settle(st2, hkt(5, 15, 59, 59, 999))
    assert recs == () and st3.ledger == st2.ledger


def test_INS_008_injection_record_type(okx):
    st = B.new_state(okx)
    st, _, _ = B.apply_liquidation_result(st, PERP, 5 * USDT, hkt(5, 10))
    st, recs = B.settle(st, hkt(7, 0))
    (rec,) = recs
    assert rec.kind == "forced liquidation injection" and rec.get("amount") == 5 * USDT
    assert rec.time_ms == hkt(5, 16)  # booked at the end of its window, not when settle ran
    assert B.settled_balance(st, PERP) == 5 * USDT


def test_INS_008_an_event_after_1600_settles_the_old_window_first(day):
    _, _, st2, _, _ = day
    st3, recs, unc = B.apply_liquidation_result(st2, PERP, -100, hkt(5, 16))
    assert [r.kind for r in recs] == ["overloss loss", "liquidation deficit"]
    assert (B.settled_balance(st3, PERP), B.pending_balance(st3, PERP)) == (8_199_500_000, -100)
    st4, recs = B.settle(st3, hkt(6, 16))
    assert recs[0].get("net") == -100 and recs[0].get("window") == 20458


def test_INS_004_deficit_beyond_the_fund_is_uncovered_never_negative(day):
    _, _, st2, _, _ = day
    st3, _ = B.settle(st2, hkt(5, 16))
    st4, _, u = B.apply_liquidation_result(st3, PERP, -100, hkt(5, 16))
    st5, recs, u = B.apply_liquidation_result(st4, PERP, -9_000 * USDT, hkt(6, 3))
    assert recs[-1].get("paid") == 8_199_499_900 and u == 800_500_100
    assert B.available_balance(st5, PERP, "settled_plus_pending") == 0
    assert B.settled_balance(st5, PERP) == 8_199_500_000
    st6, recs = B.settle(st5, hkt(6, 16))
    assert recs[0].kind == "overloss loss" and recs[0].get("amount") == 8_199_500_000
    assert (B.settled_balance(st6, PERP), B.pending_balance(st6, PERP)) == (0, 0)


def test_INS_004_empty_fund_pays_nothing(okx):
    st = B.new_state(okx)
    st2, recs, u = B.apply_liquidation_result(st, PERP, -7, hkt(5, 10))
    assert u == 7 and recs[0].get("paid") == 0
    assert B.pending_balance(st2, PERP) == 0


def test_INS_004_adl_results_use_the_same_pending_ledger(okx):
    st = B.new_state(okx)
    st, _, _ = B.apply_adl_result(st, PERP, 30, hkt(5, 10))
    st, recs, u = B.apply_adl_result(st, PERP, -50, hkt(5, 11))
    assert recs[0].kind == "adl deficit" and u == 20 and B.pending_balance(st, PERP) == 0


def test_INS_004_funds_in_btc(okx):
    st = B.new_state(okx)
    st, _ = B.top_up(st, INV, 100_000_000, hkt(5, 9), currency="BTC")
    st, _, u = B.apply_liquidation_result(st, INV, -150_000_000, hkt(5, 10), instrument="BTC-USD-SWAP")
    assert u == 50_000_000 and B.available_balance(st, INV, "settled_plus_pending") == 0
    assert B.settled_balance(st, PERP) == 0


# ---------------------------------------------------------------- fees, top-ups, withdrawals

@pytest.mark.parametrize("receiver", ["fund", "venue"])
def test_INS_005_fee_receiver(okx, receiver):
    st = B.new_state(okx)
    st, recs = B.apply_fee(st, PERP, 1_500, hkt(5, 10), receiver, account="a1")
    to_fund = receiver == "fund"
    assert B.pending_balance(st, PERP) == (1_500 if to_fund else 0)
    assert st.ledger.balance("venue", "USDT") == (0 if to_fund else 1_500)
    assert st.ledger.balance("user:a1", "USDT") == -1_500
    assert recs[0].get("receiver") == receiver


def test_INS_005_fee_default_receiver_is_the_profile_s(okx):
    st, _ = B.apply_fee(B.new_state(okx), PERP, 9, hkt(5, 10))
    assert okx.liquidation.fee_receiver is FeeReceiver.FUND
    assert B.pending_balance(st, PERP) == 9 and st.ledger.balance(F.engine_account(PERP), "USDT") == -9


def test_INS_006_top_up_goes_to_the_settled_balance_at_once(okx):
    st, recs = B.top_up(B.new_state(okx), PERP, 77, hkt(5, 10))
    assert (B.settled_balance(st, PERP), B.pending_balance(st, PERP)) == (77, 0)
    assert st.ledger.balance("platform", "USDT") == -77 and recs[0].kind == "top-up"


def test_INS_007_withdrawable_and_refusal(day):
    st, st1, st2, _, _ = day
    assert B.withdrawable(st1, PERP) == 10_000 * USDT
    assert B.withdrawable(st2, PERP) == 8_199_500_000
    t = hkt(5, 15, 59, 59, 999)
    ok, _ = B.withdraw(st2, PERP, 8_199_500_000, t)
    assert B.settled_balance(ok, PERP) == 1_800_500_000
    assert B.available_balance(ok, PERP, "settled_plus_pending") == 0
    with pytest.raises(InvalidInput) as e:
        B.withdraw(st2, PERP, 8_199_500_001, t)
    assert e.value.field == "amount" and e.value.rule == "INS-007"


# ---------------------------------------------------------------- history and peaks (INS-010)

def test_INS_010_history_and_peaks(day):
    _, _, st2, _, _ = day
    st3, _ = B.settle(st2, hkt(5, 16))
    avail = B.balance_history(st3, PERP, "settled_plus_pending")
    settled = B.balance_history(st3, PERP, "settled")
    assert [p.balance for p in avail] == [10_000 * USDT, 11_200 * USDT, 8_199_500_000, 8_199_500_000]
    assert [p.balance for p in settled] == [10_000 * USDT, 10_000 * USDT, 10_000 * USDT, 8_199_500_000]
    assert all(isinstance(p, BalancePoint) for p in avail)
    assert B.balance_history(st3, PERP) == settled  # okx: adl.balance_view = settled
    # the running peaks the state keeps (the window's peak is ADL-001's rule, tests/unit/test_adl.py)
    assert st3.funds[PERP].peak_available == 11_200 * USDT and st3.funds[PERP].peak_settled == 10_000 * USDT


# ---------------------------------------------------------------- refused events (INS-001, INS-009)

def _refused(fn, *args, field, rule, cls=InvalidInput, **kw):
    with pytest.raises(cls) as e:
        fn(*args, **kw)
    assert e.value.field == field, e.value
    assert e.value.rule == rule, e.value


def test_INS_009_refused_events_change_nothing(day):
    _, _, st2, _, _ = day
    snapshot = dataclasses.replace(st2)
    late = hkt(5, 15)
    _refused(B.apply_liquidation_result, st2, PERP, 5, late, field="time_ms", rule="INS-009")
    _refused(B.top_up, st2, PERP, -5, hkt(5, 16), field="amount", rule="INS-009")
    _refused(B.apply_fee, st2, PERP, -5, hkt(5, 16), field="amount", rule="INS-009")
    _refused(B.withdraw, st2, PERP, -1, hkt(5, 16), field="amount", rule="INS-009")
    _refused(B.settle, st2, late, field="now_ms", rule="INS-009")
    _refused(B.apply_liquidation_result, st2, PERP, 5, hkt(5, 16), field="currency", rule="INS-001",
             cls=CurrencyMismatch, currency="BTC")
    _refused(B.apply_liquidation_result, st2, PERP, 5, hkt(5, 16), field="instrument", rule="INS-001",
             instrument="BTC-USD-SWAP")
    _refused(B.apply_liquidation_result, st2, "options/ETH-USDT/USDT", 5, hkt(5, 16), field="fund", rule="INS-001")
    _refused(B.apply_liquidation_result, st2, PERP, 1.5, hkt(5, 16), field="amount_units", rule="INS-004")
    _refused(B.apply_liquidation_result, st2, PERP, True, hkt(5, 16), field="amount_units", rule="INS-004")
    _refused(B.top_up, st2, PERP, 5, "16:00", field="time_ms", rule="INS-009")
    _refused(B.apply_fee, st2, PERP, 5, hkt(5, 16), "nobody", field="receiver", rule="INS-005")
    with pytest.raises(UnknownInstrument):
        B.apply_liquidation_result(st2, PERP, 5, hkt(5, 16), instrument="NOPE")
    assert st2 == snapshot
    assert st2.ledger.entries == snapshot.ledger.entries and st2.records == snapshot.records


def test_INS_009_same_instant_is_accepted(okx):
    st = B.new_state(okx)
    st, _, _ = B.apply_liquidation_result(st, PERP, 5, hkt(5, 10))
    st, _, _ = B.apply_liquidation_result(st, PERP, 6, hkt(5, 10))
    assert B.pending_balance(st, PERP) == 11


def test_INS_001_separate_funds_and_extra_funds(okx):
    st = B.new_state(okx, funds=[EXPIRY, "options/BTC-USDT/USDT"])
    from backstop.reference.events import fund_key_of
    from_profile = {fund_key_of(i).id for i in okx.instruments.values()}
    assert {PERP.id, INV.id} <= from_profile
    assert {k.id for k in st.funds} == from_profile | {EXPIRY.id, "options/BTC-USDT/USDT"}
    st, _, _ = B.apply_liquidation_result(st, EXPIRY, 40, hkt(5, 10))
    assert B.pending_balance(st, EXPIRY) == 40 and B.pending_balance(st, PERP) == 0
    with pytest.raises(CurrencyMismatch):
        B.new_state(okx, funds=["options/ETH-EUR/EUR"])
    assert F.fund_accounts(PERP) == (("fund:" + PERP.id, "USDT"), ("pending:" + PERP.id, "USDT"),
                                     ("engine:" + PERP.id, "USDT"))


def test_INS_003_views(okx):
    assert F.balance_in_view(BalanceView.SETTLED, 10, -4) == 10
    assert F.balance_in_view(BalanceView.SETTLED_PLUS_PENDING, 10, -4) == 6
    assert F.available_balance(10, -4) == 6


def test_INS_004_result_flows_table():
    assert F.result_flows(5, 0) == (5, 0, 0)
    assert F.result_flows(-5, 3) == (0, 3, 2)
    assert F.result_flows(-5, 9) == (0, 5, 0)
    assert F.cover_deficit(0, 0) == (0, 0)
    assert F.direction(-3) == -1 and F.direction(0) == 0 and F.direction(2) == 1


# ---------------------------------------------------------------- the obligations, proved here until load_all() has them

def _prove(ob_id: str, okx):
    import backstop.proofs.fund  # noqa: F401
    from backstop.proofs.kernel import prove
    from backstop.proofs.registry import REGISTRY, Instance
    r = prove(Instance(REGISTRY[ob_id], okx, None))
    assert r.verdict == "proved", (r.verdict, r.detail, r.counterexample)
    assert r.seconds < r.limit_seconds
    return r


def test_INV_009_never_negative_is_proved(okx):
    _prove("OBL-INV-009a", okx)
    _prove("OBL-INV-009b", okx)


def test_INV_010_conservation_is_proved(okx):
    _prove("OBL-INV-010", okx)
    _prove("OBL-JRN-001", okx)


def test_INV_011_isolation_is_proved(okx):
    _prove("OBL-INV-011", okx)


def test_INV_012_settlement_is_proved(okx):
    _prove("OBL-INV-012", okx)
    _prove("OBL-INS-008", okx)


def test_INV_013_deficit_cover_is_proved(okx):
    _prove("OBL-INS-004", okx)


def test_INV_014_peak_is_proved(okx):
    _prove("OBL-INV-014", okx)


@pytest.mark.rules("INS-002", "INS-003", "INS-005", "INS-006", "INS-007", "INS-009", "JRN-002", "JRN-003")
@pytest.mark.parametrize("ob_id", ["OBL-INS-002", "OBL-INS-003", "OBL-INS-005", "OBL-INS-006", "OBL-INS-007",
                                   "OBL-INS-009", "OBL-JRN-002", "OBL-JRN-003"])
def test_fund_obligations_are_proved(okx, ob_id):
    _prove(ob_id, okx)
