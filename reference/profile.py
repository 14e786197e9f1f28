"""Venue profiles: every tunable parameter of the rules, as data, validated on load.

A profile is a TOML file (format documented in ``spec/profiles/README.md``).  The OKX-like
profile of the seeds is the default (``okx``); other venues are described by other files, with
no code change.  Loading refuses, with a :class:`ProfileError` naming the field path:
unknown keys (typos), TOML floats (write rates as strings: ``"0.005"``), rates out of range,
unordered tier tables, instruments whose settlement currency does not match their kind,
references to undefined currencies or tier tables.
"""

from __future__ import annotations

import builtins
import os
import re

import enum
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Mapping

from backstop.reference import read as RD
from backstop.reference.errors import CurrencyMismatch, InvalidInput, ProfileError, UnknownInstrument
from backstop.reference.types import (
    BusinessLine, ContractKind, Currency, Instrument, Tier, TierBasis, TierTable,
)

if TYPE_CHECKING:  # pathlib is imported when a profile is read (a start-up from the profile cache does without)
    from pathlib import Path

__all__ = [
    "PriceBasis", "TriggerRule", "PartialRule", "FeeReceiver", "FundShare", "DrawdownReference", "AdlPrice", "AdlRanking",
    "BalanceView", "MarginRules", "LiquidationRules", "FundRules", "AdlRules", "Profile",
    "load_profile", "load_profile_text", "profile_names", "DEFAULT_PROFILE",
]

DEFAULT_PROFILE = "okx"


class PriceBasis(enum.Enum):
    """MRG-005: at which price the maintenance margin is valued."""
    MARK = "mark"
    ENTRY = "entry"


class TriggerRule(enum.Enum):
    """LIQ-001: what the equity is compared with (seed 003 versus seed 001)."""
    TIER_MMR_PLUS_CLOSE_FEE = "tier_mmr_plus_close_fee"  # seed 003 (default)
    ZERO_EQUITY = "zero_equity"                          # seed 001: "margin ratio hits zero"


class PartialRule(enum.Enum):
    TWO_TIERS = "two_tiers"      # seed 003 (default)
    TO_TIER_ONE = "to_tier_one"  # OKX's older reading
    NONE = "none"


class FeeReceiver(enum.Enum):
    FUND = "fund"    # seed 004's "clawback"
    VENUE = "venue"


class AdlPrice(enum.Enum):
    MARK = "mark"              # seed 003
    BANKRUPTCY = "bankruptcy"  # Binance, Bybit, BitMEX, dYdX


class AdlRanking(enum.Enum):
    PNL_TIMES_LEVERAGE = "pnl_times_leverage"        # OKX 2025, BitMEX
    PNL_TIMES_MARGIN_RATIO = "pnl_times_margin_ratio"  # Binance


class FundShare(enum.Enum):
    """ENG-004: how much of a close's surplus the fund keeps."""
    ALL = "all"                                # seeds 000/003: the whole surplus (default)
    CAPPED_BY_FEE_RATE = "capped_by_fee_rate"  # dYdX v4: min(surplus, rate x fill notional); the rest to the user


class DrawdownReference(enum.Enum):
    """ADL-001: what the drawdown trigger compares the balance with."""
    PEAK = "peak"        # seed 003: "a straight-line decrease of 30% from the peak value" (default)
    AVERAGE = "average"  # the time-weighted average balance of the window (issue 10: a later OKX reading)


class BalanceView(enum.Enum):
    SETTLED = "settled"
    SETTLED_PLUS_PENDING = "settled_plus_pending"


@dataclass(frozen=True, slots=True)
class MarginRules:
    mm_price_basis: PriceBasis
    trigger: TriggerRule
    close_fee_rate: Fraction
    bankruptcy_includes_close_fee: bool = False  # LIQ-002: Bybit's bankruptcy price leaves the fee to close


@dataclass(frozen=True, slots=True)
class LiquidationRules:
    partial: PartialRule
    liquidation_fee_rate: Fraction
    fee_receiver: FeeReceiver
    fund_share: FundShare = FundShare.ALL
    fund_share_rate: Fraction = Fraction(0)  # the cap's rate under CAPPED_BY_FEE_RATE (0 <= x < 1)


@dataclass(frozen=True, slots=True)
class FundRules:
    settlement_time_seconds: int  # seconds after local midnight (16:00:00 -> 57600)
    utc_offset_minutes: int       # HKT = +480, no daylight saving
    realtime_view: bool           # a pending ledger gives a real-time view (seed 001)


@dataclass(frozen=True, slots=True)
class AdlRules:
    drawdown_fraction: Fraction
    drawdown_window_seconds: int
    execution_price: AdlPrice
    ranking: AdlRanking
    balance_view: BalanceView
    drawdown_reference: DrawdownReference = DrawdownReference.PEAK


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    title: str
    sources: tuple[str, ...]
    currencies: Mapping[str, Currency]
    tier_tables: Mapping[str, TierTable]
    instruments: Mapping[str, Instrument]
    margin: MarginRules
    liquidation: LiquidationRules
    fund: FundRules
    adl: AdlRules

    def instrument(self, instrument_id: str, field: str = "instrument") -> Instrument:
        try:
            return self.instruments[instrument_id]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self.instruments))
            raise UnknownInstrument(field, instrument_id, f"not defined by profile {self.name!r} (known: {known})") from None


# ---------------------------------------------------------------- loading

class ProfileCurrencyMismatch(ProfileError, CurrencyMismatch):
    """A profile amount in another currency than its field's: a :class:`ProfileError` that is also
    the :class:`CurrencyMismatch` eval and scenarios raise for the same amount."""


def _as_profile_error(e: InvalidInput) -> ProfileError:
    if isinstance(e, ProfileError):
        return e
    cls = ProfileCurrencyMismatch if isinstance(e, CurrencyMismatch) else ProfileError
    return cls(e.field, e.value, e.reason, e.rule)


class _Reader:
    """Walks a parsed TOML table, naming paths; every value is converted by the exact input layer
    (:mod:`backstop.reference.read`, shared with eval and scenarios), its refusals raised as
    :class:`ProfileError`.  A bare money amount is smallest units, as in eval."""

    used: set[builtins.str]  # the keys read (done() refuses the others)

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ProfileError(path or "profile", data, "must be a table")
        self.data, self.path, self.used = data, path, set()

    def _p(self, key: str) -> str:
        return RD.join(self.path, key)

    def read(self, key: str, convert: Any, default: Any = ..., *args: Any, **kw: Any) -> Any:
        """``convert(path, value, *args, **kw)`` of ``key``; a missing key with a default gives the default."""
        v = self.raw(key, default)
        if key not in self.data:
            return default
        return _wrap(convert, self._p(key), v, *args, **kw)

    def raw(self, key: str, default: Any = ..., ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise ProfileError(self._p(key), None, "is required")
            return default
        v = self.data[key]
        _wrap(RD.refuse_float, self._p(key), v)
        return v

    def str(self, key: builtins.str, default: Any = ...) -> builtins.str:
        return self.read(key, RD.string, default)  # type: ignore[no-any-return]  # read() converts with RD.string

    def int(self, key: builtins.str, default: Any = ..., lo: builtins.int | None = None, hi: builtins.int | None = None) -> builtins.int:
        return self.read(key, RD.integer, default, lo=lo, hi=hi)  # type: ignore[no-any-return]  # read() converts with RD.integer

    def bool(self, key: builtins.str, default: Any = ...) -> builtins.bool:
        return self.read(key, RD.boolean, default)  # type: ignore[no-any-return]  # read() converts with RD.boolean

    def number(self, key: builtins.str, default: Any = ..., *, positive: builtins.bool = False) -> Fraction:
        return self.read(key, RD.number, default, positive=positive)  # type: ignore[no-any-return]  # read() converts with RD.number

    def rate(self, key: builtins.str, default: Any = ..., *, positive: builtins.bool = False, below_one: builtins.bool = True) -> Fraction:
        return self.read(key, RD.rate, default, positive=positive, below_one=below_one)  # type: ignore[no-any-return]  # read() converts with RD.rate

    def enum(self, key: builtins.str, cls: type[enum.Enum], default: Any = ...) -> Any:
        return self.read(key, RD.choice, default, cls)

    def sub(self, key: builtins.str, default: Any = ...) -> "_Reader":
        return _Reader(self.raw(key, default), self._p(key))

    def done(self) -> None:
        _wrap(RD.check_keys, self.path, self.data, sorted(self.used))


def _wrap(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except InvalidInput as e:
        raise _as_profile_error(e) from None


def _load(data: dict[str, Any], source: str) -> Profile:
    top = _Reader(data, "")
    name = top.str("name")
    title = top.str("title", name)
    sources_raw = top.raw("sources", [])
    if not isinstance(sources_raw, list) or not all(isinstance(s, str) for s in sources_raw):
        raise ProfileError("sources", sources_raw, "a list of strings")

    cur_r = top.sub("currencies")
    currencies: dict[str, Currency] = {}
    for code in cur_r.data:
        c = cur_r.sub(code)
        currencies[code] = _wrap(Currency, code, c.int("decimals", lo=0, hi=18))
        c.done()
        cur_r.used.add(code)

    tt_r = top.sub("tier_tables")
    tables: dict[str, TierTable] = {}
    named: dict[tuple[str, int], tuple[str, Any]] = {}  # (table, tier) -> (currency, value) of an mm_deduction naming one
    for tname in tt_r.data:
        t = tt_r.sub(tname)
        basis = t.enum("basis", TierBasis)
        rows = t.raw("tiers")
        if not isinstance(rows, list) or not rows:
            raise ProfileError(f"tier_tables.{tname}.tiers", rows, "a non-empty list of tiers")
        tiers = []
        for i, row in enumerate(rows):
            r = _Reader(row, f"tier_tables.{tname}.tiers[{i}]")
            cap, mmr, imr = r.number("cap", None, positive=True), r.rate("mmr", positive=True), r.rate("imr", positive=True)
            max_leverage = r.number("max_leverage", positive=True)
            deduction, code = r.read("mm_deduction", RD.amount_in, (0, None), currencies, "MRG-005")
            if code is not None:  # an amount naming its currency: checked against the table's instruments
                named[(tname, i)] = (code, row["mm_deduction"])
            try:  # Tier checks itself (imr >= mmr) and names the field by its 1-based index: renamed
                tiers.append(Tier(i + 1, cap, mmr, imr, max_leverage, deduction))  # to its TOML path
            except InvalidInput as e:
                raise ProfileError(e.field.replace(f"tier[{i + 1}]", f"tier_tables.{tname}.tiers[{i}]", 1), e.value, e.reason, e.rule) from None
            r.done()
        tables[tname] = _wrap(TierTable, tname, basis, tuple(tiers))
        t.done()
        tt_r.used.add(tname)

    in_r = top.sub("instruments")
    instruments: dict[str, Instrument] = {}
    for iid in in_r.data:
        r = in_r.sub(iid)
        ccy = r.str("settle_currency")
        if ccy not in currencies:
            raise ProfileError(r._p("settle_currency"), ccy, "not defined under [currencies]")
        tname = r.str("tier_table")
        if tname not in tables:
            raise ProfileError(r._p("tier_table"), tname, "not defined under [tier_tables]")
        underlying = r.str("underlying")
        if not _UNDERLYING.fullmatch(underlying):
            raise ProfileError(r._p("underlying"), underlying,
                               "BASE-QUOTE in capital letters and digits, such as \"BTC-USDT\" (no spaces)", "MRG-001")
        inst = _wrap(
            Instrument, iid, r.enum("business_line", BusinessLine), underlying,
            r.enum("kind", ContractKind), currencies[ccy],
            r.number("contract_value", positive=True), r.number("tick_size", positive=True),
            r.number("lot_size", positive=True),
            tables[tname],
        )
        r.done()
        for (t_name, i), (code, given) in named.items():
            if t_name == tname and code != ccy:
                raise ProfileCurrencyMismatch(f"tier_tables.{t_name}.tiers[{i}].mm_deduction", given,
                                              f"this amount is in {ccy}, not {code}",
                                              "MRG-005")
        instruments[iid] = inst
        in_r.used.add(iid)

    m = top.sub("margin")
    margin = MarginRules(m.enum("mm_price_basis", PriceBasis), m.enum("trigger", TriggerRule),
                         m.rate("close_fee_rate"), m.bool("bankruptcy_includes_close_fee", False))
    m.done()
    if margin.bankruptcy_includes_close_fee and margin.trigger is TriggerRule.ZERO_EQUITY:
        # LIQ-002's option leaves the fee to close at the bankruptcy price (equity > 0 there); the
        # zero-equity trigger fires only at equity <= 0, beyond that price, so INV-001 / INV-002 could
        # not hold (every liquidation would start past bankruptcy).  The combination is refused.
        raise ProfileError("margin.bankruptcy_includes_close_fee", True,
                           'cannot be combined with margin.trigger = "zero_equity": the trigger would fire only '
                           "beyond a bankruptcy price that leaves the fee to close (INV-001); see spec LIQ-002",
                           "LIQ-002")
    lq = top.sub("liquidation")
    share = lq.enum("fund_share", FundShare, FundShare.ALL)
    share_rate = lq.rate("fund_share_rate", None)
    if share is FundShare.CAPPED_BY_FEE_RATE and share_rate is None:
        raise ProfileError("liquidation.fund_share_rate", None,
                           'is required when liquidation.fund_share = "capped_by_fee_rate"', "ENG-004")
    if share is FundShare.ALL and share_rate is not None:
        raise ProfileError("liquidation.fund_share_rate", lq.data["fund_share_rate"],
                           'applies only when liquidation.fund_share = "capped_by_fee_rate"', "ENG-004")
    liquidation = LiquidationRules(lq.enum("partial", PartialRule), lq.rate("liquidation_fee_rate"),
                                   lq.enum("fee_receiver", FeeReceiver), share,
                                   Fraction(0) if share_rate is None else share_rate)
    lq.done()
    fd = top.sub("fund")
    fund = FundRules(fd.read("settlement_time", RD.clock),
                     fd.int("utc_offset_minutes", lo=-14 * 60, hi=14 * 60), fd.bool("realtime_view", True))
    fd.done()
    ad = top.sub("adl")
    drawdown = ad.rate("drawdown_fraction", positive=True, below_one=False)
    if drawdown > 1:
        raise ProfileError("adl.drawdown_fraction", drawdown, "must be <= 1 (1 disables the drawdown trigger)")
    adl = AdlRules(drawdown,
                   ad.int("drawdown_window_seconds", lo=1, hi=30 * 86400),
                   ad.enum("execution_price", AdlPrice), ad.enum("ranking", AdlRanking),
                   ad.enum("balance_view", BalanceView),
                   ad.enum("drawdown_reference", DrawdownReference, DrawdownReference.PEAK))
    ad.done()
    top.done()

    # Cross-field checks.
    for tname, table in tables.items():
        for i, tier in enumerate(table.tiers):
            if tier.mmr + margin.close_fee_rate >= 1:
                raise ProfileError(f"tier_tables.{tname}.tiers[{i}].mmr", tier.mmr,
                                   f"mmr + margin.close_fee_rate ({margin.close_fee_rate}) must be < 1, "
                                   "or equity could never cover the requirement", "LIQ-003")
        deductions = any(t.mm_deduction for t in table.tiers)
        if table.basis is TierBasis.SIZE and deductions:
            raise ProfileError(f"tier_tables.{tname}.tiers", "mm_deduction",
                               "a size-basis table cannot have deductions (they are amounts of value)", "MRG-005")
        if table.basis is TierBasis.NOTIONAL and (deductions or margin.mm_price_basis is PriceBasis.MARK):
            _check_continuous(tname, table, currencies, instruments)
    if not instruments:
        raise ProfileError("instruments", {}, "at least one instrument")
    return Profile(name, title, tuple(sources_raw), currencies, tables, instruments, margin, liquidation, fund, adl)


def _check_continuous(tname: str, table: TierTable, currencies: Mapping[str, Currency],
                      instruments: Mapping[str, Instrument]) -> None:
    """A notional-basis table with deductions, or valued at the mark price, must keep the
    requirement continuous at every cap (``deduction_i = deduction_{i-1} + cap_{i-1} * (mmr_i -
    mmr_{i-1})``): otherwise the maintenance margin can jump down (even below zero) at a cap, or
    the liquidation price would not exist as one price (MRG-005, LIQ-003)."""
    users = [i for i in instruments.values() if i.tier_table is table]
    for inst in users:
        scale = inst.scale
        for i, (a, b) in enumerate(zip(table.tiers, table.tiers[1:]), start=1):
            assert a.cap is not None
            want = a.mm_deduction + a.cap * scale * (b.mmr - a.mmr)
            if want != b.mm_deduction:
                raise ProfileError(f"tier_tables.{tname}.tiers[{i}].mm_deduction", b.mm_deduction,
                                   f"must be {want} to keep the requirement continuous at cap {a.cap}", "MRG-005")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``: tables merge key by key (recursively); any other value (a number,
    a string, an array such as a tier table's ``tiers``) replaces the base's."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _overlay(data: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A profile with ``extends = "<shipped profile>"`` is that profile with this file's tables and
    values laid over it (:func:`_merge`); the result is validated like any profile.  Only shipped
    profiles can be extended (by name), and an overlay may itself be extended."""
    if "extends" not in data:
        return data
    base_name = data["extends"]
    if not isinstance(base_name, str) or base_name not in profile_names():
        raise ProfileError("extends", base_name, f"the name of a shipped profile ({', '.join(profile_names())})")
    if base_name in seen:
        raise ProfileError("extends", base_name, "profiles extend each other in a cycle")
    import tomllib
    text = _profiles_dir().joinpath(f"{base_name}.toml").read_text(encoding="utf-8")
    base = _overlay(tomllib.loads(text, parse_float=RD.TomlFloat), seen + (base_name,))
    rest = {k: v for k, v in data.items() if k != "extends"}
    return _merge(base, rest)


_UNDERLYING = re.compile(r"[A-Z0-9]{2,12}-[A-Z0-9]{2,12}")


def load_profile_text(text: str, source: str = "<string>") -> Profile:
    import tomllib  # imported when a profile is read (a profile from the disk cache is not: backstop.profile_cache)
    try:
        data = tomllib.loads(text, parse_float=RD.TomlFloat)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(source, None, f"not valid TOML: {e}") from None
    except RecursionError:
        raise ProfileError(source, None, "nested too deeply to read (the input bound, README \"Input bounds\")") from None
    except ValueError:  # an integer literal beyond Python's int-string limit
        raise ProfileError(source, None, "an integer with more digits than can be read (the input bound, "
                           "README \"Input bounds\")") from None
    return _load(_overlay(data), source)


_SHIPPED = os.path.join(os.path.dirname(os.path.dirname(__file__)), "spec", "profiles")
"""Where the shipped profiles are beside this module's file: in a wheel install ``backstop/spec/profiles``
next to ``backstop/reference/``; in a source checkout (and its editable install) ``spec/profiles`` next
to ``reference/`` -- the ``backstop.spec`` package's folder either way (pyproject.toml's package-dir)."""


def _profiles_folder() -> str | None:
    """The shipped profiles' folder on the file system, or None (a zipped install)."""
    return os.fspath(_SHIPPED) if os.path.isdir(_SHIPPED) else None


def _profiles_dir() -> Any:
    """The shipped profiles' folder (a :class:`~pathlib.Path`, or a Traversable of ``backstop.spec``
    when the package is not on the file system, a zipped install).  A plain path lookup first:
    ``importlib.resources`` costs several ms to import (issue 14, start-up)."""
    folder = _profiles_folder()
    if folder is not None:
        from pathlib import Path
        return Path(folder)
    from importlib import resources
    return resources.files("backstop.spec").joinpath("profiles")


def profile_names() -> list[str]:
    return sorted(p.name[:-5] for p in _profiles_dir().iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> Profile:
    """Load a shipped profile by name (``okx``, ``binance``, ``bybit``) or a TOML file by path."""
    from pathlib import Path
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():  # a folder named like a shipped profile is not a profile file
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ProfileError("profile", str(p), f"cannot read: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise ProfileError("profile", str(p), "not UTF-8 text") from None
        return load_profile_text(text, str(p))
    f = _profiles_dir().joinpath(f"{name_or_path}.toml")
    if not f.is_file():
        raise ProfileError("profile", str(name_or_path), f"no such profile (shipped: {', '.join(profile_names())})")
    return load_profile_text(f.read_text(encoding="utf-8"), str(name_or_path))
