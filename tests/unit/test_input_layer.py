"""The exact input layer (backstop/reference/read.py) and its three readers: ``backstop eval``
requests (backstop/inputs.py), scenario files (backstop/simulate.py) and profiles
(reference/profile.py).

Every expected value is derived by hand in a comment.  Units used: okx USDT has 6 decimals
(1 USDT = 10^6 units); binance USDT has 8 (1 USDT = 10^8 units).  2026-01-05T00:00:00Z is
1,767,571,200,000 ms (20,458 days x 86,400,000 ms, as tests/test_simulate.py derives).
"""

from __future__ import annotations

import enum
import json
from datetime import datetime, timedelta, timezone
from fractions import Fraction as F
from pathlib import Path

import pytest

import backstop.inputs  # noqa: F401  (eval's reader registers jsonio's JsonFloat with the layer)
from backstop import simulate as SIM
from backstop.cli import evaluate_request
from backstop.jsonio import JsonFloat, loads
from backstop.reference import read as RD
from backstop.reference.errors import CurrencyMismatch, InvalidInput, ProfileError
from backstop.reference.profile import load_profile_text
from backstop.reference.types import Currency

import backstop.spec

ROOT = Path(__file__).resolve().parents[2]
PROFILE_DIR = Path(backstop.spec.__file__).resolve().parent / "profiles"
BINANCE_TEXT = (PROFILE_DIR / "binance.toml").read_text(encoding="utf-8")
USDT6, USDT8, BTC8 = Currency("USDT", 6), Currency("USDT", 8), Currency("BTC", 8)
T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z


def refusal(fn, *args, **kw) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        fn(*args, **kw)
    return info.value


# ================================================================ the primitive converters

@pytest.mark.parametrize("text,want", [
    ("0.005", F(1, 200)), ("1/3", F(1, 3)), ("-2", F(-2)), ("+5", F(5)), ("12", F(12)), ("66.66", F(6666, 100)),
])
def test_number_reads_exact_decimals_and_ratios(text, want):
    assert RD.number("x", text) == want


def test_number_keeps_integers_and_fractions():
    assert RD.number("x", 7) == 7 and RD.number("x", F(2, 3)) == F(2, 3)


@pytest.mark.parametrize("value,why", [
    (0.5, "floats are not exact"),
    (float("nan"), "floats are not exact"),
    (float("inf"), "floats are not exact"),
    (RD.TomlFloat("0.005"), "TOML floats are not exact"),
    (RD.TomlFloat("nan"), "TOML floats are not exact"),
    (JsonFloat("0.5"), "JSON floats are not exact"),
    (JsonFloat("Infinity"), "JSON floats are not exact"),
    (True, "a bool is not a number"),
    ("١٠٠", "digits are the ASCII 0-9"),         # Arabic-Indic 100: int() would read it
    ("１２", "digits are the ASCII 0-9"),          # full-width 12
    ("1/0", "a ratio with a zero denominator"),
    ("-3/0", "a ratio with a zero denominator"),
    ("12\n", "not an exact decimal"),             # a regex with $ would let the newline through
    (" 12", "not an exact decimal"),
    ("1_000", "not an exact decimal"),
    ("5e-4", "not an exact decimal"),
    (".5", "not an exact decimal"),
    ("", "not an exact decimal"),
    ("1" * 5000, "more than 60 digits"),           # beyond Python's int-from-text limit: no traceback (C66)
    ("1" * 61, "more than 60 digits"),             # beyond the input bound (README "Input bounds", C66)
    (None, "expected an exact number, not NoneType"),
    ([1], "expected an exact number, not list"),
])
def test_number_refuses_what_is_not_exact_naming_the_field(value, why):
    e = refusal(RD.number, "positions[0].size", value, "MRG-001")
    assert e.field == "positions[0].size" and e.rule == "MRG-001" and why in e.reason, str(e)


@pytest.mark.parametrize("kw,value,why", [
    ({"positive": True}, "0", "must be > 0"),
    ({"nonnegative": True}, "-1/2", "must be >= 0"),
    ({"below_one": True}, "1", "must be < 1"),
])
def test_number_range_checks(kw, value, why):
    assert refusal(RD.number, "f", value, **kw).reason == why


def test_rate():
    assert RD.rate("r", "0.0005") == F(5, 10000)
    assert refusal(RD.rate, "r", "1").reason == "must be < 1"
    assert refusal(RD.rate, "r", "-0.1").reason == "must be >= 0"
    assert RD.rate("r", "1", below_one=False) == 1
    assert refusal(RD.rate, "r", "0", positive=True).reason == "must be > 0"


def test_integer():
    assert RD.integer("i", 8) == 8
    assert RD.integer("i", "1500000000", strings=True) == 1_500_000_000
    assert refusal(RD.integer, "i", "8").reason == "must be an integer"  # a profile's integer is a TOML integer
    assert refusal(RD.integer, "i", "1.5", strings=True).reason.startswith("must be a whole number")
    assert refusal(RD.integer, "i", True).reason == "must be an integer"
    assert refusal(RD.integer, "i", 19, lo=0, hi=18).reason == "must be between 0 and 18"
    assert refusal(RD.integer, "i", -1, lo=0).reason == "must be >= 0"
    assert "floats are not exact" in refusal(RD.integer, "i", RD.TomlFloat("8.0")).reason


def test_boolean_string_choice():
    class Side(enum.Enum):
        LONG = "long"
        SHORT = "short"

    assert RD.boolean("b", False) is False
    assert refusal(RD.boolean, "b", 1).reason == "must be true or false"
    assert refusal(RD.boolean, "b", "true").reason == "must be true or false"
    assert RD.string("s", "okx") == "okx"
    assert refusal(RD.string, "s", "").reason == "must be a non-empty string"
    assert refusal(RD.string, "s", 3, what="an account id").reason == "an account id"
    assert RD.choice("side", "short", Side) is Side.SHORT
    assert refusal(RD.choice, "side", "LONG", Side).reason == "must be 'long' or 'short'"
    assert refusal(RD.choice, "side", ["long"], Side).reason == "must be 'long' or 'short'"  # unhashable: no traceback


@pytest.mark.parametrize("value,want", [
    (T0, T0),
    (str(T0), T0),
    ("2026-01-05T00:00:00Z", T0),
    ("2026-01-05T08:00:00+08:00", T0),                        # 08:00 HKT is 00:00 UTC
    ("2026-01-05T08:00:00Z", T0 + 8 * 3_600_000),             # + 28,800,000 ms
    ("2026-01-05T00:00:00.250Z", T0 + 250),
    (datetime(2026, 1, 5, tzinfo=timezone.utc), T0),          # a TOML datetime
    (datetime(2026, 1, 5, 1, tzinfo=timezone(timedelta(hours=1))), T0),
])
def test_time_forms_agree(value, want):
    assert RD.time_ms("start", value) == want


@pytest.mark.parametrize("value,why", [
    ("2026-01-05T08:00:00", "needs a zone"),
    (datetime(2026, 1, 5), "needs a zone"),
    ("٢٠٢٦-01-05T08:00:00Z", "not an ISO-8601 time"),
    ("2026-01-05T00:00:00.0005Z", "whole milliseconds"),
    ("1969-12-31T23:59:59Z", "before 1970"),
    (-1, "must be >= 0"),
    (True, "a time"),
    (RD.TomlFloat("1.5"), "TOML floats are not exact"),
])
def test_time_refusals(value, why):
    e = refusal(RD.time_ms, "events[0].time", value, "INS-009")
    assert e.field == "events[0].time" and e.rule == "INS-009" and why in e.reason, str(e)


def test_clock():
    assert RD.clock("fund.settlement_time", "16:00:00") == 57_600  # 16 x 3,600
    assert RD.clock("fund.settlement_time", "00:00:00") == 0
    for bad in ("24:00:00", "12:60:00", "1:00:00", "١٦:00:00", "16:00", 57600, RD.TomlFloat("1.0")):
        assert refusal(RD.clock, "fund.settlement_time", bad).field == "fund.settlement_time"


def test_mapping_and_keys():
    assert RD.mapping("p", {"a": 1}) == {"a": 1}
    assert refusal(RD.mapping, "p", [1], "a position").reason == "must be a position"
    e = refusal(RD.check_keys, "positions[0]", {"size": "1", "sise": "1"}, ("size", "side"))
    assert e.field == "positions[0].sise" and e.reason.startswith("unknown key (a typo?)")
    e = refusal(RD.check_keys, "positions[0]", {"size": "1"}, ("size", "side"), ("side",))
    assert e.field == "positions[0].side" and e.reason == "is required"
    assert refusal(RD.check_keys, "", {"x": 1}, ("y",)).field == "x"  # the top level


# ================================================================ money amounts

@pytest.mark.rules("MRG-003")
@pytest.mark.parametrize("value,bare,want", [
    (1_500_000_000, "units", 1_500_000_000),
    ("1500000000", "units", 1_500_000_000),
    ("1500 USDT", "units", 1_500_000_000),                                   # 1,500 x 10^6
    ("1500 USDT", "coins", 1_500_000_000),                                   # the explicit form: the same in both
    ("15.5 USDT", "units", 15_500_000),                                      # 15.5 x 10^6
    ({"amount": "15.5", "currency": "USDT"}, "units", 15_500_000),
    ({"amount": "15.5", "currency": "USDT"}, "coins", 15_500_000),
    ({"units": 15_500_000, "currency": "USDT"}, "coins", 15_500_000),
    ({"units": "15500000", "currency": "USDT"}, "units", 15_500_000),
    ("1500", "coins", 1_500_000_000),                                        # a scenario's bare coins
    ("0.000001", "coins", 1),                                                # one unit
    ("1/2", "coins", 500_000),                                               # half a USDT
])
def test_MRG_003_amount_forms_convert_exactly(value, bare, want):
    assert RD.amount("margin", value, USDT6, "MRG-003", bare=bare) == want


@pytest.mark.rules("MRG-003")
@pytest.mark.parametrize("value,field,why,cls", [
    ("0.0000001 USDT", "margin", "USDT has 6 decimals: not a whole number of its smallest unit (10^-6), 0.1 units",
     InvalidInput),
    ({"amount": "0.0000001", "currency": "USDT"}, "margin",
     "USDT has 6 decimals: not a whole number of its smallest unit (10^-6), 0.1 units", InvalidInput),
    ("1.5", "margin", "not a whole number of smallest units of USDT (10^-6): 1.5", InvalidInput),
    ("1500 BTC", "margin", "this amount is in USDT, not BTC", CurrencyMismatch),
    ({"units": 1, "currency": "BTC"}, "margin", "this amount is in USDT, not BTC", CurrencyMismatch),
    ("-5 USDT", "margin", "must be >= 0", InvalidInput),
    ("15.5 usdt", "margin", "not an amount", InvalidInput),
    ("15.5  USDT", "margin", "not an amount", InvalidInput),
    ("١٥ USDT", "margin", "not an amount", InvalidInput),
    (True, "margin", "not an amount", InvalidInput),
    (None, "margin", "not an amount", InvalidInput),
    ("1/0", "margin", "a ratio with a zero denominator", InvalidInput),
    (JsonFloat("15.5"), "margin", "JSON floats are not exact", InvalidInput),
    ({"amount": JsonFloat("15.5"), "currency": "USDT"}, "margin.amount", "JSON floats are not exact", InvalidInput),
    ({"amount": "15.5"}, "margin.currency", "is required", InvalidInput),
    ({"currency": "USDT"}, "margin.amount", "is required", InvalidInput),
    ({"amount": "1", "units": 1, "currency": "USDT"}, "margin.units", "not both", InvalidInput),
    ({"amount": "1", "currency": "USDT", "unit": "USDT"}, "margin.unit", "unknown key", InvalidInput),
    ({"units": "1.5", "currency": "USDT"}, "margin.units", "must be a whole number", InvalidInput),
])
def test_MRG_003_amount_refusals_name_the_field(value, field, why, cls):
    e = refusal(RD.amount, "margin", value, USDT6, "MRG-003")
    assert type(e) is cls and e.field == field and e.rule == "MRG-003" and why in e.reason, str(e)


def test_amount_signs():
    assert RD.amount("amount", "-3000.5 USDT", USDT6, nonnegative=False) == -3_000_500_000
    assert refusal(RD.amount, "amount", "0", USDT6, positive=True).reason == "must be > 0"


@pytest.mark.rules("MRG-005")
def test_MRG_005_amount_in_a_currency_known_later():
    cur = {"USDT": USDT8, "BTC": BTC8}
    assert RD.amount_in("d", 5_000_000_000, cur, "MRG-005") == (5_000_000_000, None)
    assert RD.amount_in("d", "50 USDT", cur, "MRG-005") == (5_000_000_000, "USDT")  # 50 x 10^8
    assert RD.amount_in("d", {"amount": "0.5", "currency": "BTC"}, cur) == (50_000_000, "BTC")
    e = refusal(RD.amount_in, "d", "50 ETH", cur, "MRG-005")
    assert isinstance(e, CurrencyMismatch) and "currency ETH is not defined" in e.reason and e.rule == "MRG-005"


# ================================================================ the three readers agree

# The same profile in all three: binance (USDT with 8 decimals) plus a BTC currency, so that an
# amount in BTC is a currency mismatch (not an unknown currency) everywhere.
PROFILE_TOML = 'extends = "binance"\n[currencies.BTC]\ndecimals = 8\n'
POSITION = {"instrument": "BTCUSDT", "side": "long", "size": "1", "entry_price": "30000"}


def eval_margin(margin):
    req = {"profile": {"toml": PROFILE_TOML}, "positions": [{**POSITION, "margin": "@margin@"}],
           "mark_prices": {"BTCUSDT": "30000"}}
    given = margin.text if isinstance(margin, JsonFloat) else json.dumps(margin)  # a float literal as written
    return evaluate_request(loads(json.dumps(req).replace('"@margin@"', given)))


def toml_value(v) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, JsonFloat):
        return v.text
    return json.dumps(v)


def scenario_margin(tmp_path, margin):
    (tmp_path / "p.toml").write_text(PROFILE_TOML, encoding="utf-8")
    text = (f'profile = "p.toml"\nstart = "2026-01-05T00:00:00Z"\nevents = []\n\n[marks]\nBTCUSDT = "30000"\n\n'
            f'[[accounts]]\nid = "a"\n[[accounts.positions]]\ninstrument = "BTCUSDT"\nside = "long"\n'
            f'size = "1"\nentry_price = "30000"\nmargin = {toml_value(margin)}\n')
    f = tmp_path / "s.toml"
    f.write_text(text, encoding="utf-8")
    return SIM.load_scenario(f), f, text


def profile_deduction(value):
    """binance's tier 2 deduction (50 USDT = 5,000,000,000 units, the only value continuity allows:
    0 + 50,000 x 10^8 x (0.005 - 0.004)) replaced by ``value``."""
    old = "mm_deduction = 5000000000 }"
    assert BINANCE_TEXT.count(old) == 1
    return load_profile_text(BINANCE_TEXT.replace(old, f"mm_deduction = {toml_value(value)} }}")
                             + "\n[currencies.BTC]\ndecimals = 8\n")


@pytest.mark.rules("MRG-003", "MRG-005", "TRN-007")
@pytest.mark.parametrize("form", ["50 USDT", {"amount": "50", "currency": "USDT"},
                                  {"units": 5_000_000_000, "currency": "USDT"}])
def test_TRN_007_explicit_forms_mean_the_same_in_eval_scenarios_and_profiles(tmp_path, form):
    want = 50 * 10 ** 8  # 50 USDT at 8 decimals
    r = eval_margin(form)
    assert r["results"][0]["quantities"]["margin"]["value"] == str(want)
    scn, _, _ = scenario_margin(tmp_path, form)
    assert scn.accounts[0].positions[0].margin == want
    assert profile_deduction(form).tier_tables["BTCUSDT"].tiers[1].mm_deduction == want


@pytest.mark.rules("MRG-003", "TRN-007")
def test_TRN_007_the_bare_form_is_the_documented_difference(tmp_path):
    # eval (and profiles) read a bare number as smallest units, a scenario as coins (C45)
    assert eval_margin("5000000000")["results"][0]["quantities"]["margin"]["value"] == "5000000000"
    assert scenario_margin(tmp_path, "50")[0].accounts[0].positions[0].margin == 5_000_000_000
    assert profile_deduction(5_000_000_000).tier_tables["BTCUSDT"].tiers[1].mm_deduction == 5_000_000_000


SAME_REFUSAL = [
    # (amount, reason, error class): 9 decimals where USDT has 8
    ("50.000000001 USDT", "USDT has 8 decimals: not a whole number of its smallest unit (10^-8), 5000000000.1 units",
     InvalidInput),
    ({"amount": "50.000000001", "currency": "USDT"},
     "USDT has 8 decimals: not a whole number of its smallest unit (10^-8), 5000000000.1 units", InvalidInput),
    ("50 BTC", "this amount is in USDT, not BTC", CurrencyMismatch),
    ({"units": 5_000_000_000, "currency": "BTC"}, "this amount is in USDT, not BTC", CurrencyMismatch),
    ("-50 USDT", "must be >= 0", InvalidInput),
    ("١٥ USDT", "not an amount", InvalidInput),
    ("1/0", "a ratio with a zero denominator", InvalidInput),
    ("5e9", "not an amount", InvalidInput),
]


@pytest.mark.rules("MRG-003", "MRG-005", "TRN-007")
@pytest.mark.parametrize("bad,reason,cls", SAME_REFUSAL, ids=[str(s[0]) for s in SAME_REFUSAL])
def test_TRN_007_a_malformed_amount_is_refused_identically_everywhere(tmp_path, bad, reason, cls):
    e_eval = refusal(eval_margin, bad)
    e_scn = refusal(scenario_margin, tmp_path, bad)
    e_prof = refusal(profile_deduction, bad)
    for e in (e_eval, e_scn, e_prof):
        assert isinstance(e, cls) and reason in e.reason, str(e)
    assert e_eval.reason == e_scn.reason == e_prof.reason
    assert e_eval.field == "positions[0].margin" and e_eval.rule == "MRG-003"
    assert e_scn.field.endswith(": accounts[0].positions[0].margin") and e_scn.rule == "MRG-003"
    assert isinstance(e_prof, ProfileError)
    assert e_prof.field == "tier_tables.BTCUSDT.tiers[1].mm_deduction" and e_prof.rule == "MRG-005"


@pytest.mark.rules("MRG-003", "TRN-007")
def test_TRN_007_a_float_is_refused_in_each_documents_own_words(tmp_path):
    e_eval = refusal(eval_margin, JsonFloat("50.5"))
    e_scn = refusal(scenario_margin, tmp_path, JsonFloat("50.5"))  # written as the TOML float 50.5
    e_prof = refusal(profile_deduction, JsonFloat("50.5"))
    assert e_eval.reason == e_scn.reason.replace("TOML", "JSON") == e_prof.reason.replace("TOML", "JSON")
    assert e_eval.reason == 'JSON floats are not exact; write the number as a string, such as "0.005"'
    assert e_eval.field == "positions[0].margin"
    assert e_prof.field == "tier_tables.BTCUSDT.tiers[1].mm_deduction"


@pytest.mark.rules("MRG-003", "TRN-007")
def test_TRN_007_a_scenario_error_inside_an_inline_table_names_its_line(tmp_path):
    bad = {"amount": "50", "currency": "USDT", "unit": "x"}
    e = refusal(scenario_margin, tmp_path, bad)
    f = tmp_path / "s.toml"
    line = next(i + 1 for i, x in enumerate(f.read_text(encoding="utf-8").splitlines())
                if x.startswith("margin = "))  # found by searching the text, not by SourceMap
    assert e.field == f"{f}:{line}: accounts[0].positions[0].margin.unit"
    assert e.reason.startswith("unknown key (a typo?)")


@pytest.mark.rules("MRG-003", "TRN-007")
def test_TRN_007_eval_transition_scenario_reads_like_a_file():
    # a transition request's scenario is read by the scenario loader: bare money in coins, and a
    # JSON float refused as one (it used to be "expected an exact number, not JsonFloat")
    scenario = {"start": "2026-01-06T00:00:00Z", "marks": {"BTC-USDT-SWAP": "30000"},
                "accounts": [{"id": "a", "balances": {"USDT": {"amount": "100", "currency": "USDT"}},
                              "positions": [{"instrument": "BTC-USDT-SWAP", "side": "long", "size": "100",
                                             "entry_price": "30000", "margin": "3000 USDT"}]}],
                "events": []}
    r = evaluate_request(loads(json.dumps({"operation": "transition", "scenario": scenario})))
    acct = r["final_state"]["accounts"][0]
    assert acct["balances"] == {"USDT": "100000000"}          # 100 USDT x 10^6
    assert acct["positions"][0]["margin"] == "3000000000"     # 3,000 USDT x 10^6
    bad = json.dumps({"operation": "transition", "scenario": {**scenario, "marks": {"BTC-USDT-SWAP": 0}}})
    bad = bad.replace('"BTC-USDT-SWAP": 0', '"BTC-USDT-SWAP": 30000.5')
    e = refusal(evaluate_request, loads(bad))
    assert e.field == "scenario: marks.BTC-USDT-SWAP" and e.reason.startswith("JSON floats are not exact")


@pytest.mark.rules("ADL-001", "INS-009")
def test_ADL_001_eval_times_take_the_scenario_forms():
    hist = [{"time_ms": 0, "balance": "1000 USDT"}, {"time_ms": 3_600_000, "balance": "700 USDT"}]
    iso = [{"time_ms": "1970-01-01T00:00:00Z", "balance": {"amount": "1000", "currency": "USDT"}},
           {"time_ms": "1970-01-01T09:00:00+08:00", "balance": {"units": 700_000_000, "currency": "USDT"}}]
    a = evaluate_request(loads(json.dumps({"operation": "fund_drawdown", "history": hist, "now_ms": 3_600_000})))
    b = evaluate_request(loads(json.dumps({"operation": "fund_drawdown", "history": iso, "now_ms": "3600000"})))
    assert a == b  # 09:00 at +08:00 on 1970-01-01 is 01:00 UTC = 3,600,000 ms
    e = refusal(evaluate_request, loads(json.dumps({"operation": "fund_drawdown", "history": hist,
                                                    "now_ms": "1970-01-01T01:00:00"})))
    assert e.field == "now_ms" and "needs a zone" in e.reason and e.rule == "ADL-001"


def test_the_layer_imports_no_z3_and_no_cli():
    text = (ROOT / "reference" / "read.py").read_text(encoding="utf-8")
    imports = [x for x in text.splitlines() if x.lstrip().startswith(("import ", "from "))]
    assert imports and all("z3" not in x and "backstop.proofs" not in x and "backstop.inputs" not in x
                           and "backstop.simulate" not in x and "backstop.cli" not in x for x in imports)


def test_one_copy_of_each_converter():
    """The readers hold no converter of their own: no float check, no number or time parsing."""
    for rel in ("backstop/inputs.py", "backstop/simulate.py", "reference/profile.py"):
        text = (ROOT / rel).read_text(encoding="utf-8")
        for needle in ("fromisoformat", "parse_exact", "isinstance(v, float)", "TomlFloat)):", "reject_float(",
                       "import exact", " exact(", "_wrap(money"):
            assert needle not in text, f"{rel} still has {needle!r}"


@pytest.mark.rules("MRG-003")
def test_MRG_003_the_schema_describes_every_amount_form_eval_accepts():
    from test_oracle_schema import valid  # the published schema and the suite's validator (same folder)

    def request(margin):
        return {"positions": [{"instrument": "BTC-USDT-SWAP", "side": "long", "size": "100", "entry_price": "30000",
                               "margin": margin}], "mark_prices": {"BTC-USDT-SWAP": "29000"}}

    forms = [1_500_000_000, "1500000000", "1500 USDT", {"amount": "1500", "currency": "USDT"},
             {"units": 1_500_000_000, "currency": "USDT"}, {"units": "1500000000", "currency": "USDT"}]
    answers = set()
    for form in forms:
        assert valid("request", request(form)) == [], form
        r = evaluate_request(loads(json.dumps(request(form))))
        answers.add(r["results"][0]["quantities"]["margin"]["value"])
    assert answers == {"1500000000"}  # 1,500 USDT x 10^6, whichever form
    for bad in ({"amount": "1500"}, {"amount": "1", "units": 1, "currency": "USDT"}, "1500  USDT"):
        assert valid("request", request(bad)) != [], bad
        with pytest.raises(InvalidInput):
            evaluate_request(loads(json.dumps(request(bad))))
    times = {"operation": "fund_drawdown", "history": [{"time_ms": "1970-01-01T00:00:00Z", "balance": "1 USDT"}],
             "now_ms": "3600000"}
    assert valid("request", times) == []
