"""The double-entry journal on concrete values: balancing per currency, refusals, the fold."""

from __future__ import annotations

import pytest

from backstop.reference import journal as J
from backstop.reference.errors import InvalidInput


def entry(*legs, t=0, kind="test"):
    return J.Entry(t, kind, tuple(J.Leg(a, c, x) for a, c, x in legs), ("JRN-001",))


def test_JRN_001_balances_per_currency():
    e = entry(("a", "USDT", 5), ("b", "USDT", -5), ("a", "BTC", 7), ("c", "BTC", -7))
    assert J.entry_balances(e) is True
    assert J.entry_imbalance(e, "USDT") == 0 and J.entry_imbalance(e, "BTC") == 0
    # balanced in total but not per currency
    bad = entry(("a", "USDT", 5), ("b", "BTC", -5))
    assert J.entry_balances(bad) is False
    assert J.entry_imbalance(bad, "USDT") == 5 and J.entry_imbalance(bad, "BTC") == -5


def test_JRN_001_post_refuses_an_unbalanced_entry_naming_the_field_and_rule():
    led = J.Ledger()
    with pytest.raises(InvalidInput) as e:
        led.post(entry(("a", "USDT", 5), ("b", "USDT", -4)))
    assert e.value.rule == "JRN-001" and e.value.field == "entry.legs[USDT]"
    assert led == J.Ledger() and led.entries == ()


@pytest.mark.parametrize("bad,field", [
    (J.Entry(0, "x", ()), "entry.legs"),
    (J.Entry("0", "x", (J.Leg("a", "USDT", 0),)), "entry.time_ms"),
    (J.Entry(0, "x", (J.Leg("a", "USDT", 1.0), J.Leg("b", "USDT", -1.0))), "entry.legs[0].amount"),
    (J.Entry(0, "x", (J.Leg("", "USDT", 1), J.Leg("b", "USDT", -1))), "entry.legs[0].account"),
    (J.Entry(0, "x", (J.Leg("a", "USDT", True), J.Leg("b", "USDT", -1))), "entry.legs[0].amount"),
    (J.Entry(0, "x", ("not a leg",)), "entry.legs[0]"),
    ("not an entry", "entry"),
])
def test_JRN_001_malformed_entries_are_refused(bad, field):
    with pytest.raises(InvalidInput) as e:
        J.Ledger().post(bad)
    assert e.value.field == field and e.value.rule == "JRN-001"


def test_JRN_002_post_folds_and_skips_empty_entries():
    led = J.Ledger().post(entry(("a", "USDT", 5), ("b", "USDT", -5)))
    led = led.post(entry(("a", "USDT", 2), ("a", "USDT", -2)))  # balanced, non-empty: booked
    led = led.post(entry(("a", "USDT", 0), ("b", "USDT", 0)))   # empty: not booked
    assert len(led.entries) == 2
    assert led.balance("a", "USDT") == 5 and led.balance("b", "USDT") == -5 and led.balance("z", "BTC") == 0
    assert J.total(led.balances, "USDT") == 0


def test_JRN_003_recompute_equals_the_incremental_fold():
    led = J.Ledger()
    for i in range(1, 20):
        led = led.post(entry(("a", "USDT", i), ("b", "USDT", -i), ("c", "BTC", -i), ("d", "BTC", i)))
    assert led.recompute() == dict(led.balances)
    assert J.recompute(led.entries)[("d", "BTC")] == sum(range(1, 20))
    assert J.recompute([]) == {}


def test_JRN_002_apply_entry_does_not_mutate():
    before = {("a", "USDT"): 1}
    after = J.apply_entry(before, entry(("a", "USDT", 4), ("b", "USDT", -4)))
    assert before == {("a", "USDT"): 1} and after == {("a", "USDT"): 5, ("b", "USDT"): -4}
    assert J.currencies_of(entry(("a", "USDT", 1), ("b", "BTC", -1), ("c", "USDT", 0))) == ("BTC", "USDT")
