"""Value types refuse bad input with an error that names the field (and the rule, where one
applies): floats, bools, NaN/inf, Decimal, non-positive prices, zero or negative sizes,
non-integral money, wrong settlement currency, unordered tier tables, decreasing rates."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction as F

import pytest

from backstop.reference.errors import CurrencyMismatch, InvalidInput, UnknownInstrument
from backstop.reference.types import (
    Account, BusinessLine, ContractKind, Currency, Instrument, MarginMode, MarkPrice, MaybePrice,
    Position, PositionTerms, Side, Tier, TierBasis, TierTable, exact, money, parse_exact,
)

USDT = Currency("USDT", 6)
BTC = Currency("BTC", 8)

NOT_EXACT = {
    "float": 0.5,
    "whole float": 1.0,
    "NaN": float("nan"),
    "inf": float("inf"),
    "bool": True,
    "Decimal": Decimal("0.5"),
    "None": None,
    "exponent str": "1e3",
    "nan str": "nan",
    "inf str": "inf",
    "empty str": "",
    "list": [1],
}


def tiers(*rows, basis="size", name="T"):
    return TierTable(name, basis, tuple(Tier(i + 1, *r) for i, r in enumerate(rows)))


GOOD_TABLE = tiers(("500", "0.004", "0.008", "125"), ("3000", "0.005", "0.01", "100"),
                   (None, "0.01", "0.015", "66.66"))


def instrument(**kw):
    args = dict(id="BTC-USDT-SWAP", business_line="perpetual_futures", underlying="BTC-USDT",
                kind="linear", settle_currency=USDT, contract_value="0.01", tick_size="0.1",
                lot_size="0.01", tier_table=GOOD_TABLE)
    args.update(kw)
    return Instrument(**args)


def refused(exc_type, fn, *args, **kw):
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    return info.value


# ---------------------------------------------------------------- parse_exact / exact / money

@pytest.mark.rules("NUM-001")
@pytest.mark.parametrize("text,value", [
    ("12.5", F(25, 2)), ("1/3", F(1, 3)), ("-0.5", F(-1, 2)), ("1000", F(1000)),
    ("0.005", F(1, 200)), (7, F(7)), (F(2, 3), F(2, 3)), ("+4", F(4)),
])
def test_parse_exact_reads_exact_decimals_and_ratios(text, value):
    x = parse_exact("f", text)
    assert x == value and type(x) is F


MORE_NOT_EXACT = {"dot only": ".5", "hex": "0x10", "trailing dot": "1.", "zero denominator": "1/0",
                  "spaces": " 1 ", "underscores": "1_000", "decimal ratio": "1.5/2"}


@pytest.mark.rules("NUM-001")
@pytest.mark.parametrize("label", list(NOT_EXACT) + list(MORE_NOT_EXACT))
def test_parse_exact_refuses_non_exact_input_naming_the_field(label):
    bad = {**NOT_EXACT, **MORE_NOT_EXACT}[label]
    e = refused(InvalidInput, parse_exact, "position.size", bad, "MRG-001")
    assert e.field == "position.size" and e.rule == "MRG-001"
    assert e.value is bad or e.value == bad


@pytest.mark.rules("NUM-001")
def test_exact_range_checks_name_the_field():
    assert exact("x", "0.5", positive=True, below_one=True) == F(1, 2)
    assert refused(InvalidInput, exact, "x", "0", positive=True).field == "x"
    assert refused(InvalidInput, exact, "x", "-1", nonnegative=True).field == "x"
    assert refused(InvalidInput, exact, "x", "1", below_one=True).field == "x"


@pytest.mark.rules("MRG-003")
def test_money_is_a_whole_number_of_units():
    assert money("m", 100) == 100 and type(money("m", "100")) is int
    assert money("m", F(6, 2)) == 3 and type(money("m", F(6, 2))) is int
    assert money("m", "-3", nonnegative=False) == -3
    for bad in ("1.5", F(1, 2), 1.0, True, "-1"):
        e = refused(InvalidInput, money, "position.margin", bad, "MRG-003")
        assert e.field == "position.margin" and e.rule == "MRG-003"


# ---------------------------------------------------------------- Currency

@pytest.mark.rules("MRG-001")
def test_currency_scale_and_refusals():
    assert USDT.scale == 10**6 and BTC.scale == 10**8
    assert refused(InvalidInput, Currency, "usdt", 6).field == "currency.code"
    assert refused(InvalidInput, Currency, "U", 6).field == "currency.code"
    for bad in (True, 6.0, -1, 19, "6"):
        assert refused(InvalidInput, Currency, "USDT", bad).field == "currency.decimals"


# ---------------------------------------------------------------- Tier

@pytest.mark.rules("MRG-004", "MRG-005")
def test_tier_reads_strings_exactly():
    t = Tier(2, "3000", "0.005", "0.01", "100", 5)
    assert (t.cap, t.mmr, t.imr, t.max_leverage, t.mm_deduction) == (F(3000), F(1, 200), F(1, 100), F(100), 5)
    assert Tier(1, None, "0.004", "0.008", "125").cap is None


@pytest.mark.rules("MRG-004", "MRG-005")
@pytest.mark.parametrize("field,kwargs,rule", [
    ("tier[1].cap", dict(cap=500.0), "MRG-004"),
    ("tier[1].cap", dict(cap=0), "MRG-004"),
    ("tier[1].cap", dict(cap="-5"), "MRG-004"),
    ("tier[1].cap", dict(cap=float("nan")), "MRG-004"),
    ("tier[1].cap", dict(cap=float("inf")), "MRG-004"),
    ("tier[1].cap", dict(cap=True), "MRG-004"),
    ("tier[1].mmr", dict(mmr=0.004), "MRG-005"),
    ("tier[1].mmr", dict(mmr="0"), "MRG-005"),
    ("tier[1].mmr", dict(mmr="1"), "MRG-005"),
    ("tier[1].mmr", dict(mmr=Decimal("0.004")), "MRG-005"),
    ("tier[1].imr", dict(imr="0.003"), "MRG-005"),       # imr below mmr
    ("tier[1].imr", dict(imr="1.5"), "MRG-005"),
    ("tier[1].max_leverage", dict(max_leverage="0"), ""),
    ("tier[1].max_leverage", dict(max_leverage=125.0), ""),
    ("tier[1].mm_deduction", dict(mm_deduction="1.5"), "MRG-005"),
    ("tier[1].mm_deduction", dict(mm_deduction=-1), "MRG-005"),
    ("tier[1].mm_deduction", dict(mm_deduction=50.0), "MRG-005"),
])
def test_tier_refuses_bad_fields(field, kwargs, rule):
    args = dict(index=1, cap="500", mmr="0.004", imr="0.008", max_leverage="125", mm_deduction=0)
    args.update(kwargs)
    e = refused(InvalidInput, Tier, **args)
    assert e.field == field and e.rule == rule


@pytest.mark.rules("MRG-004")
@pytest.mark.parametrize("index", [0, -1, True, 1.0])
def test_tier_refuses_bad_index(index):
    assert refused(InvalidInput, Tier, index, "500", "0.004", "0.008", "125").field == f"tier[{index}].index"


# ---------------------------------------------------------------- TierTable

@pytest.mark.rules("MRG-004", "INV-004")
def test_tier_table_accepts_an_ordered_table():
    assert [t.index for t in GOOD_TABLE.tiers] == [1, 2, 3]
    assert GOOD_TABLE.basis is TierBasis.SIZE and not GOOD_TABLE.bounded
    assert GOOD_TABLE.tier(2).mmr == F(1, 200)
    bounded = tiers(("500", "0.004", "0.008", "125"), ("3000", "0.005", "0.01", "100"))
    assert bounded.bounded and bounded.max_cap == 3000


@pytest.mark.rules("MRG-004", "INV-004")
@pytest.mark.parametrize("rows,field,rule", [
    # caps not increasing (equal caps are refused too)
    ([("500", "0.004", "0.008", "125"), ("300", "0.005", "0.01", "100")], "tier_tables.T.tiers[1].cap", "MRG-004"),
    ([("500", "0.004", "0.008", "125"), ("500", "0.005", "0.01", "100")], "tier_tables.T.tiers[1].cap", "MRG-004"),
    # MMR decreasing: a larger position would get a lower rate (INV-004)
    ([("500", "0.005", "0.01", "125"), ("3000", "0.004", "0.01", "100")], "tier_tables.T.tiers[1].mmr", "INV-004"),
    # IMR decreasing
    ([("500", "0.004", "0.02", "125"), ("3000", "0.005", "0.01", "100")], "tier_tables.T.tiers[1].imr", "INV-004"),
    # deduction decreasing
    ([("500", "0.004", "0.008", "125", 10), ("3000", "0.005", "0.01", "100", 5)], "tier_tables.T.tiers[1].mm_deduction", "INV-004"),
    # an unbounded tier that is not the last
    ([(None, "0.004", "0.008", "125"), ("3000", "0.005", "0.01", "100")], "tier_tables.T.tiers[0].cap", "MRG-004"),
])
def test_tier_table_refuses_unordered_tables(rows, field, rule):
    e = refused(InvalidInput, tiers, *rows)
    assert e.field == field and e.rule == rule


@pytest.mark.rules("MRG-004")
def test_tier_table_refuses_empty_tables_bad_numbering_and_bad_basis():
    assert refused(InvalidInput, TierTable, "T", "size", ()).field == "tier_tables.T.tiers"
    t1, t3 = Tier(1, "500", "0.004", "0.008", "125"), Tier(3, None, "0.005", "0.01", "100")
    e = refused(InvalidInput, TierTable, "T", "size", (t1, t3))
    assert e.field == "tier_tables.T.tiers[1].index" and e.rule == "MRG-004"
    assert refused(InvalidInput, TierTable, "T", "weight", (t1,)).field == "tier_tables.T.basis"


# ---------------------------------------------------------------- Instrument

@pytest.mark.rules("MRG-001")
def test_instrument_accepts_linear_and_inverse():
    lin = instrument()
    assert lin.is_linear and lin.scale == 10**6 and lin.contract_value == F(1, 100)
    inv = instrument(id="BTC-USD-SWAP", underlying="BTC-USD", kind="inverse", settle_currency=BTC,
                     contract_value="100", lot_size="1")
    assert not inv.is_linear and inv.kind is ContractKind.INVERSE and inv.scale == 10**8
    assert lin.business_line is BusinessLine.PERPETUAL_FUTURES


@pytest.mark.rules("MRG-001")
def test_instrument_in_the_wrong_settlement_currency_is_a_currency_mismatch():
    # a linear BTC-USDT contract settles in USDT, an inverse BTC-USD contract in BTC
    e = refused(CurrencyMismatch, instrument, settle_currency=BTC)
    assert e.field == "instruments.BTC-USDT-SWAP.settle_currency" and e.rule == "MRG-001" and e.value == "BTC"
    e = refused(CurrencyMismatch, instrument, id="BTC-USD-SWAP", underlying="BTC-USD", kind="inverse",
                settle_currency=USDT, contract_value="100", lot_size="1")
    assert e.field == "instruments.BTC-USD-SWAP.settle_currency"


@pytest.mark.rules("MRG-001")
@pytest.mark.parametrize("kwargs,field", [
    (dict(kind="perp"), "instruments.BTC-USDT-SWAP.kind"),
    (dict(business_line="swap"), "instruments.BTC-USDT-SWAP.business_line"),
    (dict(contract_value="0"), "instruments.BTC-USDT-SWAP.contract_value"),
    (dict(contract_value="-0.01"), "instruments.BTC-USDT-SWAP.contract_value"),
    (dict(contract_value=0.01), "instruments.BTC-USDT-SWAP.contract_value"),
    (dict(tick_size="0"), "instruments.BTC-USDT-SWAP.tick_size"),
    (dict(tick_size=float("nan")), "instruments.BTC-USDT-SWAP.tick_size"),
    (dict(lot_size="-1"), "instruments.BTC-USDT-SWAP.lot_size"),
    (dict(lot_size=True), "instruments.BTC-USDT-SWAP.lot_size"),
    (dict(underlying="BTCUSDT"), "instruments.BTC-USDT-SWAP.underlying"),
    (dict(underlying="BTC-"), "instruments.BTC-USDT-SWAP.underlying"),
    (dict(id=""), "instrument.id"),
])
def test_instrument_refuses_bad_fields(kwargs, field):
    assert refused(InvalidInput, instrument, **kwargs).field == field


@pytest.mark.rules("MRG-001")
def test_unknown_instrument_names_the_field(okx):
    e = refused(UnknownInstrument, okx.instrument, "SOL-USDT-SWAP", "position.instrument")
    assert e.field == "position.instrument" and e.value == "SOL-USDT-SWAP"
    assert isinstance(e, InvalidInput)


# ---------------------------------------------------------------- Position

@pytest.mark.rules("MRG-001", "MRG-002", "MRG-003")
def test_position_reads_exact_values_and_exposes_terms():
    p = Position("BTC-USDT-SWAP", "long", "100", "30000.5", margin=150_000_000)
    assert p.side is Side.LONG and p.sign == 1 and p.size == 100 and p.entry_price == F(60001, 2)
    assert p.margin_mode is MarginMode.ISOLATED and type(p.margin) is int
    assert p.terms() == PositionTerms(1, F(100), F(60001, 2), 150_000_000)
    assert Position("X", Side.SHORT, 1, 1).sign == -1


@pytest.mark.rules("MRG-001", "MRG-002", "MRG-003")
@pytest.mark.parametrize("kwargs,field,rule", [
    (dict(size=0), "position.size", "MRG-001"),
    (dict(size="-1"), "position.size", "MRG-001"),
    (dict(size=1.0), "position.size", "MRG-001"),
    (dict(size=True), "position.size", "MRG-001"),
    (dict(size=float("nan")), "position.size", "MRG-001"),
    (dict(size=float("inf")), "position.size", "MRG-001"),
    (dict(size=Decimal("1")), "position.size", "MRG-001"),
    (dict(size="1e3"), "position.size", "MRG-001"),
    (dict(entry_price=0), "position.entry_price", "MRG-002"),
    (dict(entry_price="-30000"), "position.entry_price", "MRG-002"),
    (dict(entry_price=30000.0), "position.entry_price", "MRG-002"),
    (dict(entry_price=float("inf")), "position.entry_price", "MRG-002"),
    (dict(margin="1.5"), "position.margin", "MRG-003"),
    (dict(margin=-1), "position.margin", "MRG-003"),
    (dict(margin=150.0), "position.margin", "MRG-003"),
    (dict(margin=False), "position.margin", "MRG-003"),
    (dict(side="up"), "position.side", ""),
    (dict(margin_mode="portfolio"), "position.margin_mode", ""),
])
def test_position_refuses_bad_fields(kwargs, field, rule):
    args = dict(instrument="BTC-USDT-SWAP", side="long", size="1", entry_price="30000", margin=0)
    args.update(kwargs)
    e = refused(InvalidInput, Position, **args)
    assert e.field == field and e.rule == rule


# ---------------------------------------------------------------- MaybePrice

@pytest.mark.rules("LIQ-002", "LIQ-003")
def test_maybe_price_has_no_sentinel():
    assert MaybePrice(True, F(29850)).get() == 29850
    assert MaybePrice(False, F(-1)).get() is None   # an undefined price is None, never -1 or 0
    assert MaybePrice(False, 0).get() is None


# ---------------------------------------------------------------- MarkPrice

@pytest.mark.rules("MRG-002")
def test_mark_price_reads_exactly_and_refuses_bad_fields():
    m = MarkPrice("BTC-USDT-SWAP", "30000.5", 1_700_000_000_000)
    assert m.price == F(60001, 2) and m.time_ms == 1_700_000_000_000
    for bad in (0, "-1", 30000.5, True, float("nan")):
        e = refused(InvalidInput, MarkPrice, "BTC-USDT-SWAP", bad)
        assert e.field == "mark_price.price" and e.rule == "MRG-002"
    for bad in (-1, True, 1.5, "0"):
        assert refused(InvalidInput, MarkPrice, "BTC-USDT-SWAP", "1", bad).field == "mark_price.time_ms"
    assert refused(InvalidInput, MarkPrice, "", "1").field == "mark_price.instrument"


# ---------------------------------------------------------------- Account

@pytest.mark.rules("MRG-003")
def test_account_balances_and_positions():
    p1 = Position("BTC-USDT-SWAP", "long", "1", "30000", margin=5)
    p2 = Position("BTC-USDT-SWAP", "short", "1", "30000", margin=5)
    a = Account("a", (("USDT", 5), ("BTC", 1)), (p1, p2))
    assert a.balances == (("BTC", 1), ("USDT", 5))  # sorted by currency
    assert a.balance("USDT") == 5 and a.balance("ETH") == 0
    assert Account("b", {"USDT": 7}).balance("USDT") == 7


@pytest.mark.rules("MRG-003")
@pytest.mark.parametrize("amount", ["100", F(100)])
def test_account_stores_balances_as_int_units(amount):
    a = Account("a", (("USDT", amount),))
    assert a.balance("USDT") == 100 and type(a.balance("USDT")) is int


@pytest.mark.rules("MRG-003")
def test_account_refuses_bad_fields():
    p1 = Position("BTC-USDT-SWAP", "long", "1", "30000")
    assert refused(InvalidInput, Account, "").field == "account.id"
    assert Account("a", (("USDT", -1),)).balance("USDT") == -1  # cash may be negative (LIQ-008, ADL-008)
    for bad in (1.5, "1.5", True):
        e = refused(InvalidInput, Account, "a", (("USDT", bad),))
        assert e.field == "account.a.balances.USDT" and e.rule == "MRG-003"
    assert refused(InvalidInput, Account, "a", (("USDT", 1), ("USDT", 2))).field == "account.a.balances.USDT"
    assert refused(InvalidInput, Account, "a", (), (p1, p1)).field == "account.a.positions[1]"
    assert refused(InvalidInput, Account, "a", (), ("not a position",)).field == "account.a.positions[0]"
