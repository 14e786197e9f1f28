"""Venue profiles: every tunable parameter of the rules, as data, validated on load.

A profile is a TOML file (format documented in ``spec/profiles/README.md``).  The OKX-like
profile of the seeds is the default (``okx``); other venues are described by other files, with
no code change.  Loading refuses, with a :class:`ProfileError` naming the field path:
unknown keys (typos), TOML floats (write rates as strings: ``"0.005"``), rates out of range,
unordered tier tables, instruments whose settlement currency does not match their kind,
references to undefined currencies or tier tables.
"""

from __future__ import annotations

import enum
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from backstop.reference.errors import InvalidInput, ProfileError, UnknownInstrument
from backstop.reference.types import (
    BusinessLine, ContractKind, Currency, Instrument, Tier, TierBasis, TierTable, exact, money,
)

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

class _Reader:
    """Walks a parsed TOML table, refusing unknown keys and floats, and naming paths."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ProfileError(path or "profile", data, "must be a table")
        self.data, self.path, self.used = data, path, set()

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, default: Any = ..., ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise ProfileError(self._p(key), None, "is required")
            return default
        v = self.data[key]
        if isinstance(v, float):
            raise ProfileError(self._p(key), v, "TOML floats are not exact; write the number as a string, such as \"0.005\"")
        return v

    def str(self, key: str, default: Any = ...) -> str:
        v = self.raw(key, default)
        if not isinstance(v, str):
            raise ProfileError(self._p(key), v, "must be a string")
        return v

    def int(self, key: str, default: Any = ..., lo: int | None = None, hi: int | None = None) -> int:
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ProfileError(self._p(key), v, "must be an integer")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ProfileError(self._p(key), v, f"must be between {lo} and {hi}")
        return v

    def bool(self, key: str, default: Any = ...) -> bool:
        v = self.raw(key, default)
        if not isinstance(v, bool):
            raise ProfileError(self._p(key), v, "must be true or false")
        return v

    def rate(self, key: str, default: Any = ..., *, positive: bool = False, below_one: bool = True) -> Fraction:
        v = self.raw(key, default)
        try:
            return exact(self._p(key), v, positive=positive, nonnegative=True, below_one=below_one)
        except InvalidInput as e:
            raise ProfileError(e.field, e.value, e.reason, e.rule) from None

    def enum(self, key: str, cls: type[enum.Enum], default: Any = ...) -> Any:
        v = self.raw(key, default)
        if isinstance(v, cls):
            return v
        try:
            return cls(v)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)  # type: ignore[attr-defined]
            raise ProfileError(self._p(key), v, f"must be one of {allowed}") from None

    def sub(self, key: str, default: Any = ...) -> "_Reader":
        return _Reader(self.raw(key, default), self._p(key))

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ProfileError(self._p(extra[0]), self.data[extra[0]], "unknown key (a typo?)")


def _clock(path: str, text: str) -> int:
    parts = text.split(":") if isinstance(text, str) else []
    try:
        h, m, s = (int(p) for p in parts)
    except ValueError:
        raise ProfileError(path, text, "a local time HH:MM:SS") from None
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60) or len(parts) != 3:
        raise ProfileError(path, text, "a local time HH:MM:SS")
    return h * 3600 + m * 60 + s


def _wrap(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except ProfileError:
        raise
    except InvalidInput as e:
        raise ProfileError(e.field, e.value, e.reason, e.rule) from None


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
    for tname in tt_r.data:
        t = tt_r.sub(tname)
        basis = t.enum("basis", TierBasis)
        rows = t.raw("tiers")
        if not isinstance(rows, list) or not rows:
            raise ProfileError(f"tier_tables.{tname}.tiers", rows, "a non-empty list of tiers")
        tiers = []
        for i, row in enumerate(rows):
            r = _Reader(row, f"tier_tables.{tname}.tiers[{i}]")
            cap = r.raw("cap", None)
            tiers.append(_wrap(
                Tier, i + 1,
                None if cap is None else _wrap(exact, r._p("cap"), cap, positive=True),
                r.rate("mmr", positive=True), r.rate("imr", positive=True),
                _wrap(exact, r._p("max_leverage"), r.raw("max_leverage"), positive=True),
                _wrap(money, r._p("mm_deduction"), r.raw("mm_deduction", 0)),
            ))
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
        inst = _wrap(
            Instrument, iid, r.enum("business_line", BusinessLine), r.str("underlying"),
            r.enum("kind", ContractKind), currencies[ccy],
            _wrap(exact, r._p("contract_value"), r.raw("contract_value"), positive=True),
            _wrap(exact, r._p("tick_size"), r.raw("tick_size"), positive=True),
            _wrap(exact, r._p("lot_size"), r.raw("lot_size"), positive=True),
            tables[tname],
        )
        r.done()
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
    share_rate = lq.rate("fund_share_rate", None) if "fund_share_rate" in lq.data else None
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
    fund = FundRules(_clock("fund.settlement_time", fd.str("settlement_time")),
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
        for i, t in enumerate(table.tiers):
            if t.mmr + margin.close_fee_rate >= 1:
                raise ProfileError(f"tier_tables.{tname}.tiers[{i}].mmr", t.mmr,
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
    text = _profiles_dir().joinpath(f"{base_name}.toml").read_text(encoding="utf-8")
    base = _overlay(tomllib.loads(text), seen + (base_name,))
    rest = {k: v for k, v in data.items() if k != "extends"}
    return _merge(base, rest)


def load_profile_text(text: str, source: str = "<string>") -> Profile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(source, None, f"not valid TOML: {e}") from None
    return _load(_overlay(data), source)


def _profiles_dir() -> Any:
    return resources.files("backstop.spec").joinpath("profiles")


def profile_names() -> list[str]:
    return sorted(p.name[:-5] for p in _profiles_dir().iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> Profile:
    """Load a shipped profile by name (``okx``, ``binance``, ``bybit``) or a TOML file by path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return load_profile_text(p.read_text(encoding="utf-8"), str(p))
    f = _profiles_dir().joinpath(f"{name_or_path}.toml")
    if not f.is_file():
        raise ProfileError("profile", str(name_or_path), f"no such profile (shipped: {', '.join(profile_names())})")
    return load_profile_text(f.read_text(encoding="utf-8"), str(name_or_path))
