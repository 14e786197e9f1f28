"""Venue profiles: the shipped ones load; a profile with a deliberately bad field is refused
with a ProfileError naming that field's path in the TOML file."""

from __future__ import annotations

from fractions import Fraction as F
from pathlib import Path

import pytest

from backstop.reference.errors import InvalidInput, ProfileError
from backstop.reference.profile import (
    DEFAULT_PROFILE, PriceBasis, TriggerRule, load_profile, load_profile_text, profile_names,
)
from backstop.reference.types import ContractKind, TierBasis

import backstop.spec

PROFILE_DIR = Path(backstop.spec.__file__).resolve().parent / "profiles"
OKX_TEXT = (PROFILE_DIR / "okx.toml").read_text(encoding="utf-8")
BINANCE_TEXT = (PROFILE_DIR / "binance.toml").read_text(encoding="utf-8")


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the test's edit target {old!r} must occur exactly once"
    return text.replace(old, new)


def refused(text: str) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        load_profile_text(text)
    assert isinstance(info.value, InvalidInput)
    return info.value


# ---------------------------------------------------------------- shipped profiles

@pytest.mark.rules("MRG-004", "MRG-005", "MRG-006", "LIQ-001")
def test_shipped_profiles_load():
    assert profile_names() == ["binance", "bybit", "okx"]
    assert DEFAULT_PROFILE == "okx"
    for name in profile_names():
        p = load_profile(name)
        assert p.name == name and p.instruments and p.sources
        for inst in p.instruments.values():
            assert inst.tier_table is p.tier_tables[inst.tier_table.name]


@pytest.mark.rules("MRG-001", "MRG-004", "MRG-005", "MRG-006", "LIQ-001")
def test_okx_profile_content(okx):
    # seed 003 / OKX pages: BTCUSDT swap 0.01 BTC per contract, BTCUSD swap 100 USD per contract
    lin, inv = okx.instruments["BTC-USDT-SWAP"], okx.instruments["BTC-USD-SWAP"]
    assert lin.kind is ContractKind.LINEAR and lin.contract_value == F(1, 100) and lin.settle_currency.code == "USDT"
    assert inv.kind is ContractKind.INVERSE and inv.contract_value == 100 and inv.settle_currency.code == "BTC"
    assert okx.margin.mm_price_basis is PriceBasis.MARK
    assert okx.margin.trigger is TriggerRule.TIER_MMR_PLUS_CLOSE_FEE
    assert okx.margin.close_fee_rate == F(5, 10000)
    table = lin.tier_table
    assert table.basis is TierBasis.SIZE
    # OKX BTCUSD futures tiers (after the adjustment): 500 / 3,000 / 12,000 / 24,000 contracts,
    # MMR 0.4% / 0.5% / 1.0% / 1.5%, then +12,000 contracts and +0.5% per tier.
    assert [t.cap for t in table.tiers[:4]] == [500, 3000, 12000, 24000]
    assert [t.mmr for t in table.tiers[:4]] == [F("0.004"), F("0.005"), F("0.01"), F("0.015")]
    for a, b in zip(table.tiers[3:], table.tiers[4:]):
        assert b.cap - a.cap == 12000 and b.mmr - a.mmr == F("0.005")


@pytest.mark.rules("MRG-004")
def test_load_profile_by_path_and_unknown_name(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(OKX_TEXT.replace('name = "okx"', 'name = "mine"'), encoding="utf-8")
    assert load_profile(f).name == "mine"
    assert load_profile(str(f)).name == "mine"
    e = pytest.raises(ProfileError, load_profile, "no-such-venue").value
    assert e.field == "profile" and e.value == "no-such-venue"


@pytest.mark.rules("MRG-004")
def test_invalid_toml_is_a_profile_error():
    assert isinstance(refused("name = \n"), ProfileError)


# ---------------------------------------------------------------- bad fields, by path

BAD_FIELDS = [
    # (id, edit old, edit new, field path, rule or None)
    ("toml float rate", 'close_fee_rate = "0.0005"', "close_fee_rate = 0.0005", "margin.close_fee_rate", None),
    ("missing key", 'close_fee_rate = "0.0005"             # taker', "# removed", "margin.close_fee_rate", None),
    ("rate >= 1", 'close_fee_rate = "0.0005"', 'close_fee_rate = "1"', "margin.close_fee_rate", None),
    ("negative rate", 'liquidation_fee_rate = "0"', 'liquidation_fee_rate = "-0.1"', "liquidation.liquidation_fee_rate", None),
    ("unknown key", "realtime_view = true ", "realtime_view = true\nrealtme = true ", "fund.realtme", None),
    ("unknown section", "[liquidation]", '[liquidaton]\nx = "1"\n\n[liquidation]', "liquidaton", None),
    ("missing section", "[liquidation]", "[liquidaton]", "liquidation", None),
    ("bad enum trigger", 'trigger = "tier_mmr_plus_close_fee"', 'trigger = "sometimes"', "margin.trigger", None),
    ("bad enum basis", 'mm_price_basis = "mark"', 'mm_price_basis = "index"', "margin.mm_price_basis", None),
    ("bad enum partial", 'partial = "two_tiers"', 'partial = "three_tiers"', "liquidation.partial", None),
    ("bad clock", 'settlement_time = "16:00:00"', 'settlement_time = "25:00:00"', "fund.settlement_time", None),
    ("offset out of range", "utc_offset_minutes = 480", "utc_offset_minutes = 900", "fund.utc_offset_minutes", None),
    ("bool for int", "utc_offset_minutes = 480", "utc_offset_minutes = true", "fund.utc_offset_minutes", None),
    ("drawdown above one", 'drawdown_fraction = "0.30"', 'drawdown_fraction = "1.5"', "adl.drawdown_fraction", None),
    ("currency decimals", "[currencies.BTC]\ndecimals = 8", "[currencies.BTC]\ndecimals = 19", "currencies.BTC.decimals", None),
    ("tier cap float", '{ cap = "3000",', "{ cap = 3000.0,", "tier_tables.BTC.tiers[1].cap", None),
    ("tier mmr float", 'mmr = "0.005", imr = "0.01",  max_leverage = "100"', 'mmr = 0.005, imr = "0.01",  max_leverage = "100"', "tier_tables.BTC.tiers[1].mmr", None),
    ("tier mmr >= 1", 'mmr = "0.005", imr = "0.01",  max_leverage = "100"', 'mmr = "1.2", imr = "0.01",  max_leverage = "100"', "tier_tables.BTC.tiers[1].mmr", None),
    ("tier unknown key", 'mmr = "0.005", imr = "0.01",  max_leverage = "100"', 'mmrr = "0.005", mmr = "0.005", imr = "0.01",  max_leverage = "100"', "tier_tables.BTC.tiers[1].mmrr", None),
    ("tier basis", 'basis = "size"', 'basis = "weight"', "tier_tables.BTC.basis", None),
    ("wrong settle currency", 'settle_currency = "BTC"', 'settle_currency = "USDT"', "instruments.BTC-USD-SWAP.settle_currency", "MRG-001"),
    ("undefined currency", 'settle_currency = "BTC"', 'settle_currency = "ETH"', "instruments.BTC-USD-SWAP.settle_currency", None),
    ("undefined tier table", 'tier_table = "BTC"\n\n[instruments.BTC-USD-SWAP]', 'tier_table = "SOL"\n\n[instruments.BTC-USD-SWAP]', "instruments.BTC-USDT-SWAP.tier_table", None),
    ("bad kind", 'kind = "inverse"', 'kind = "invrse"', "instruments.BTC-USD-SWAP.kind", None),
    ("contract value float", 'contract_value = "0.01"', "contract_value = 0.01", "instruments.BTC-USDT-SWAP.contract_value", None),
    ("zero tick", 'tick_size = "0.1"\nlot_size = "1"', 'tick_size = "0"\nlot_size = "1"', "instruments.BTC-USD-SWAP.tick_size", None),
    ("negative lot", 'lot_size = "0.01"', 'lot_size = "-0.01"', "instruments.BTC-USDT-SWAP.lot_size", None),
]


@pytest.mark.rules("MRG-001", "MRG-004", "MRG-005", "MRG-006", "LIQ-001")
@pytest.mark.parametrize("label,old,new,field,rule", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_profile_with_a_bad_field_is_refused_with_its_path(label, old, new, field, rule):
    e = refused(edit(OKX_TEXT, old, new))
    assert e.field == field, str(e)
    if rule is not None:
        assert e.rule == rule


# The same tier field must be named by the same path (its path in the TOML file) whichever check
# refuses it.  The per-value checks name ``tier_tables.BTC.tiers[1].mmr``; the cross-tier checks
# and the Tier constructor's own check name it the same way.
TIER_ORDER = [
    pytest.param('{ cap = "3000",  mmr = "0.005"', '{ cap = "3000",  mmr = "0.003"', "tier_tables.BTC.tiers[1].mmr", "INV-004",
                 id="decreasing mmr"),
    pytest.param('{ cap = "3000",', '{ cap = "300",', "tier_tables.BTC.tiers[1].cap", "MRG-004",
                 id="unordered caps"),
    pytest.param('mmr = "0.005", imr = "0.01",  max_leverage = "100"', 'mmr = "0.005", imr = "0.004",  max_leverage = "100"',
                 "tier_tables.BTC.tiers[1].imr", "MRG-005", id="imr below mmr"),
]


@pytest.mark.rules("MRG-004", "MRG-005", "INV-004")
@pytest.mark.parametrize("old,new,field,rule", TIER_ORDER)
def test_unordered_tier_table_is_refused_with_the_toml_path(old, new, field, rule):
    e = refused(edit(OKX_TEXT, old, new))
    assert e.rule == rule
    assert e.field == field, str(e)


@pytest.mark.rules("MRG-004", "MRG-005", "INV-004")
@pytest.mark.parametrize("old,new,needle", [
    ('{ cap = "3000",  mmr = "0.005"', '{ cap = "3000",  mmr = "0.003"', "mmr"),
    ('{ cap = "3000",', '{ cap = "300",', "cap"),
    ('mmr = "0.005", imr = "0.01",  max_leverage = "100"', 'mmr = "0.005", imr = "0.004",  max_leverage = "100"', "imr"),
])
def test_unordered_tier_table_is_refused(old, new, needle):
    """MRG-004: whatever the path format, an unordered table never loads and the error names the field."""
    e = refused(edit(OKX_TEXT, old, new))
    assert e.field.endswith(f".{needle}")


@pytest.mark.rules("MRG-005")
def test_discontinuous_notional_table_is_refused():
    # Binance level 3: deduction must be 250,000 x (1% - 0.5%) + 50 = 1,300 USDT = 130,000,000,000
    # units of 1e-8 USDT; one unit more makes the requirement jump at the 250,000 cap.
    e = refused(edit(BINANCE_TEXT, "mm_deduction = 130000000000", "mm_deduction = 130000000001"))
    assert e.field == "tier_tables.BTCUSDT.tiers[2].mm_deduction" and e.rule == "MRG-005"
    assert e.value == 130000000001


@pytest.mark.rules("MRG-005")
def test_non_integral_deduction_is_refused():
    e = refused(edit(BINANCE_TEXT, "mm_deduction = 130000000000", 'mm_deduction = "1300000000.5"'))
    assert e.field == "tier_tables.BTCUSDT.tiers[2].mm_deduction"


@pytest.mark.rules("MRG-005")
def test_discontinuous_deductions_are_refused_at_entry_basis_too():
    # With deductions the requirement can jump DOWN at a cap (even below zero) whatever the price
    # basis, so the continuity check applies to any notional table that has deductions.
    text = edit(BINANCE_TEXT, 'mm_price_basis = "mark"', 'mm_price_basis = "entry"')
    assert load_profile_text(text).margin.mm_price_basis is PriceBasis.ENTRY
    e = refused(edit(text, "mm_deduction = 130000000000", "mm_deduction = 130000000001"))
    assert e.field == "tier_tables.BTCUSDT.tiers[2].mm_deduction" and e.rule == "MRG-005"


@pytest.mark.rules("MRG-005")
def test_size_basis_table_with_deductions_is_refused():
    # a deduction is an amount of value; a table indexed by contracts cannot carry one
    text = edit(OKX_TEXT, 'max_leverage = "28.57" }', 'max_leverage = "28.57", mm_deduction = 5 }')
    e = refused(text)
    assert e.field == "tier_tables.BTC.tiers" and e.rule == "MRG-005"


@pytest.mark.rules("LIQ-003", "MRG-006")
def test_mmr_plus_close_fee_rate_must_stay_below_one():
    # tier 7 has MMR 3%: with a close fee rate of 97% the requirement rate is 100% of the value,
    # which equity can never exceed -- refused at that tier (index 6 in the TOML list)
    e = refused(edit(OKX_TEXT, 'close_fee_rate = "0.0005"', 'close_fee_rate = "0.97"'))
    assert e.field == "tier_tables.BTC.tiers[6].mmr" and e.rule == "LIQ-003"
    # 0.969 + 0.03 = 0.999 < 1: loads
    assert load_profile_text(edit(OKX_TEXT, 'close_fee_rate = "0.0005"', 'close_fee_rate = "0.969"')).margin.close_fee_rate == F("0.969")


def test_a_folder_named_like_a_shipped_profile_does_not_hide_it(tmp_path, monkeypatch):
    """`backstop vectors --check DIR/v1` runs where folders are named after profiles (okx/, ...):
    the name still means the shipped profile (found by the regions helper: it raised
    IsADirectoryError)."""
    from backstop.reference.profile import load_profile
    (tmp_path / "okx").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_profile("okx").name == "okx"
