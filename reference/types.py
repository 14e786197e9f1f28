"""Frozen value types of the domain.

Constructors validate every field and refuse bad input with :class:`InvalidInput` naming the
field: floats, bools used as numbers, NaN/inf, non-positive prices, zero or negative sizes, the
wrong currency.  Values are exact: money is an ``int`` of the smallest unit of its currency,
everything else a ``Fraction``.  Use :func:`parse_exact` to read a decimal string such as
``"0.005"`` or a ratio ``"1/3"``.

Rule functions do not take these types' invariants on trust alone: they are written over the
numeric kernel, so that the proofs can pass symbolic :class:`PositionTerms` instead.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from backstop.reference.errors import CurrencyMismatch, InvalidInput
from backstop.reference.read import number as _read_number  # the one exact reader (read.py imports this module lazily)

__all__ = [
    "Side", "ContractKind", "BusinessLine", "MarginMode", "TierBasis",
    "Currency", "Tier", "TierTable", "Instrument", "Position", "PositionTerms",
    "MaybePrice", "MarkPrice", "Account", "parse_exact", "exact", "money", "format_exact",
]


def format_exact(v: Any) -> str:
    """An exact number as text: a terminating decimal (``"29984.5"``) when the denominator has
    only the factors 2 and 5, else ``"p/q"``; bools as ``true``/``false``, ``None`` as ``none``."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if not isinstance(v, Fraction):
        return str(v)
    d = v.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return f"{v.numerator}/{v.denominator}"
    sign = "-" if v < 0 else ""
    a = abs(v)
    whole, frac = divmod(a.numerator, a.denominator)
    digits = ""
    while frac:
        frac *= 10
        q, frac = divmod(frac, a.denominator)
        digits += str(q)
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def parse_exact(field_: str, value: Any, rule: str = "") -> Fraction:
    """Read an exact number: ``int``, ``Fraction``, or an ASCII string ``"12.5"`` / ``"1/3"``.

    Floats are refused even when they look harmless (``0.1`` is not one tenth); so are bools,
    NaN, infinities, exponents, empty strings, non-ASCII digits and zero denominators.  This is
    the input layer's reader (:func:`backstop.reference.read.number`): one reader everywhere."""
    return _read_number(field_, value, rule)


def exact(field_: str, value: Any, rule: str = "", *, positive: bool = False,
          nonnegative: bool = False, below_one: bool = False) -> Fraction:
    """:func:`parse_exact` plus range checks, each naming the field (the input layer's)."""
    return _read_number(field_, value, rule, positive=positive, nonnegative=nonnegative, below_one=below_one)


def money(field_: str, value: Any, rule: str = "", *, nonnegative: bool = True) -> int:
    """An amount in the smallest unit of its currency: an ``int`` (or an integral exact string)."""
    if isinstance(value, int) and not isinstance(value, bool):  # already a whole amount: kept as it is
        if nonnegative and value < 0:
            raise InvalidInput(field_, value, "must be >= 0", rule)
        return value
    x = parse_exact(field_, value, rule)
    if x.denominator != 1:
        raise InvalidInput(field_, value, "money is a whole number of the currency's smallest unit", rule)
    if nonnegative and x < 0:
        raise InvalidInput(field_, value, "must be >= 0", rule)
    return int(x)


class Side(enum.Enum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        """+1 for a long, -1 for a short: the position gains when ``sign * (price change) > 0``."""
        return 1 if self is Side.LONG else -1


class ContractKind(enum.Enum):
    LINEAR = "linear"    # margined and settled in the quote currency (USDT-margined)
    INVERSE = "inverse"  # margined and settled in the base currency (coin-margined)


class BusinessLine(enum.Enum):
    SPOT_MARGIN = "spot_margin"
    EXPIRY_FUTURES = "expiry_futures"
    PERPETUAL_FUTURES = "perpetual_futures"
    OPTIONS = "options"


class MarginMode(enum.Enum):
    ISOLATED = "isolated"
    CROSS = "cross"


class TierBasis(enum.Enum):
    SIZE = "size"          # tier by position size in contracts (OKX)
    NOTIONAL = "notional"  # tier by position value in the settlement currency (Binance, Bybit)


def _enum(cls: type[enum.Enum], field_: str, value: Any) -> Any:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise InvalidInput(field_, value, f"must be one of {allowed}") from None


@dataclass(frozen=True, slots=True)
class Currency:
    """A settlement currency; amounts are ints of ``10**-decimals`` of one coin."""

    code: str
    decimals: int

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not re.fullmatch(r"[A-Z0-9]{2,12}", self.code):
            raise InvalidInput("currency.code", self.code, "2-12 upper-case letters or digits")
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int) or not 0 <= self.decimals <= 18:
            raise InvalidInput("currency.decimals", self.decimals, "an int from 0 to 18")

    @property
    def scale(self) -> int:
        """Smallest units per whole coin (``10**decimals``)."""
        return 10 ** self.decimals  # type: ignore[no-any-return]  # int ** int is Any in typeshed (a negative exponent gives a float); decimals >= 0


@dataclass(frozen=True, slots=True)
class Tier:
    """One position tier: it covers tier-basis values in ``(previous cap, cap]``.

    ``cap`` is in contracts (size basis) or in whole settlement-currency units (notional basis);
    ``None`` means unbounded (last tier only).  ``mm_deduction`` is in smallest units and is
    subtracted from ``value * mmr`` (zero for OKX-style tables).
    """

    index: int
    cap: Fraction | None
    mmr: Fraction
    imr: Fraction
    max_leverage: Fraction
    mm_deduction: int = 0

    def __post_init__(self) -> None:
        f = f"tier[{self.index}]"
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 1:
            raise InvalidInput(f"{f}.index", self.index, "an int >= 1")
        if self.cap is not None:
            object.__setattr__(self, "cap", exact(f"{f}.cap", self.cap, "MRG-004", positive=True))
        object.__setattr__(self, "mmr", exact(f"{f}.mmr", self.mmr, "MRG-005", positive=True, below_one=True))
        object.__setattr__(self, "imr", exact(f"{f}.imr", self.imr, "MRG-005", positive=True, below_one=True))
        object.__setattr__(self, "max_leverage", exact(f"{f}.max_leverage", self.max_leverage, positive=True))
        object.__setattr__(self, "mm_deduction", money(f"{f}.mm_deduction", self.mm_deduction, "MRG-005"))
        if self.imr < self.mmr:
            raise InvalidInput(f"{f}.imr", self.imr, f"must be >= mmr ({self.mmr})", "MRG-005")


@dataclass(frozen=True, slots=True)
class TierTable:
    """An ordered tier table; validated: consecutive indexes, strictly increasing caps,
    non-decreasing MMR and IMR, non-decreasing deduction, and only the last tier unbounded."""

    name: str
    basis: TierBasis
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        f = f"tier_tables.{self.name}"
        object.__setattr__(self, "basis", _enum(TierBasis, f"{f}.basis", self.basis))
        object.__setattr__(self, "tiers", tuple(self.tiers))
        if not self.tiers:
            raise InvalidInput(f"{f}.tiers", self.tiers, "at least one tier", "MRG-004")
        for i, t in enumerate(self.tiers):
            if t.index != i + 1:
                raise InvalidInput(f"{f}.tiers[{i}].index", t.index, f"tiers must be numbered 1, 2, ... in order (expected {i + 1})", "MRG-004")
            if t.cap is None and i != len(self.tiers) - 1:
                raise InvalidInput(f"{f}.tiers[{i}].cap", None, "only the last tier may be unbounded", "MRG-004")
        for i, (a, b) in enumerate(zip(self.tiers, self.tiers[1:]), start=1):
            if b.cap is not None and a.cap is not None and b.cap <= a.cap:
                raise InvalidInput(f"{f}.tiers[{i}].cap", b.cap, f"caps must increase (previous {a.cap})", "MRG-004")
            if b.mmr < a.mmr:
                raise InvalidInput(f"{f}.tiers[{i}].mmr", b.mmr, f"must be >= the previous tier's mmr ({a.mmr})", "INV-004")
            if b.imr < a.imr:
                raise InvalidInput(f"{f}.tiers[{i}].imr", b.imr, f"must be >= the previous tier's imr ({a.imr})", "INV-004")
            if b.mm_deduction < a.mm_deduction:
                raise InvalidInput(f"{f}.tiers[{i}].mm_deduction", b.mm_deduction, "must not decrease", "INV-004")

    def tier(self, index: int) -> Tier:
        return self.tiers[index - 1]

    @property
    def bounded(self) -> bool:
        """True when the last tier has a cap (positions above it are refused)."""
        return self.tiers[-1].cap is not None

    @property
    def max_cap(self) -> Fraction:
        """The last tier's cap (0 when unbounded; read it only where :attr:`bounded`)."""
        cap = self.tiers[-1].cap
        return cap if cap is not None else Fraction(0)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A contract.  ``contract_value`` is in the base currency per contract for a linear
    contract (0.01 BTC) and in the quote currency per contract for an inverse one (100 USD).
    ``lot_size`` is in contracts, ``tick_size`` in quote currency per base unit."""

    id: str
    business_line: BusinessLine
    underlying: str
    kind: ContractKind
    settle_currency: Currency
    contract_value: Fraction
    tick_size: Fraction
    lot_size: Fraction
    tier_table: TierTable

    def __post_init__(self) -> None:
        f = f"instruments.{self.id}"
        if not isinstance(self.id, str) or not self.id:
            raise InvalidInput("instrument.id", self.id, "a non-empty string")
        object.__setattr__(self, "business_line", _enum(BusinessLine, f"{f}.business_line", self.business_line))
        object.__setattr__(self, "kind", _enum(ContractKind, f"{f}.kind", self.kind))
        object.__setattr__(self, "contract_value", exact(f"{f}.contract_value", self.contract_value, positive=True))
        object.__setattr__(self, "tick_size", exact(f"{f}.tick_size", self.tick_size, positive=True))
        object.__setattr__(self, "lot_size", exact(f"{f}.lot_size", self.lot_size, positive=True))
        parts = self.underlying.split("-") if isinstance(self.underlying, str) else []
        if len(parts) != 2 or not all(parts):
            raise InvalidInput(f"{f}.underlying", self.underlying, "BASE-QUOTE, such as 'BTC-USDT'")
        base, quote = parts
        want = quote if self.kind is ContractKind.LINEAR else base
        if self.settle_currency.code != want:
            raise CurrencyMismatch(
                f"{f}.settle_currency", self.settle_currency.code,
                f"a {self.kind.value} contract on {self.underlying} settles in {want}", "MRG-001")

    @property
    def is_linear(self) -> bool:
        return self.kind is ContractKind.LINEAR

    @property
    def scale(self) -> int:
        return self.settle_currency.scale


@dataclass(frozen=True, slots=True)
class Position:
    """One position.  ``margin`` is the isolated margin in smallest units of the instrument's
    settlement currency (for cross positions the account's equity is used instead)."""

    instrument: str
    side: Side
    size: Fraction
    entry_price: Fraction
    margin_mode: MarginMode = MarginMode.ISOLATED
    margin: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", _enum(Side, "position.side", self.side))
        object.__setattr__(self, "margin_mode", _enum(MarginMode, "position.margin_mode", self.margin_mode))
        object.__setattr__(self, "size", exact("position.size", self.size, "MRG-001", positive=True))
        object.__setattr__(self, "entry_price", exact("position.entry_price", self.entry_price, "MRG-002", positive=True))
        object.__setattr__(self, "margin", money("position.margin", self.margin, "MRG-003"))

    @property
    def sign(self) -> int:
        return self.side.sign

    def terms(self) -> "PositionTerms":
        return PositionTerms(self.sign, self.size, self.entry_price, self.margin)


@dataclass(frozen=True, slots=True)
class PositionTerms:
    """The numbers of a position as rule functions read them, unvalidated so that each field may
    be a Z3 term: ``sign`` (+1/-1), ``size`` (contracts), ``entry`` (price), ``margin`` (units)."""

    sign: Any
    size: Any
    entry: Any
    margin: Any


@dataclass(frozen=True, slots=True)
class MaybePrice:
    """A price that may not exist (a long linear position with margin above its value has no
    bankruptcy price).  ``value`` is meaningful only where ``defined`` holds; there is no
    sentinel.  Both fields may be Z3 terms."""

    defined: Any
    value: Any

    def get(self) -> Fraction | None:
        """The concrete price, or ``None`` when it does not exist."""
        return self.value if self.defined is True else None


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """The mark price of one instrument at one time (``time_ms``: milliseconds since the Unix
    epoch, UTC; the fund's 16:00 HKT windows are computed from it)."""

    instrument: str
    price: Fraction
    time_ms: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.instrument, str) or not self.instrument:
            raise InvalidInput("mark_price.instrument", self.instrument, "a non-empty instrument ID")
        object.__setattr__(self, "price", exact("mark_price.price", self.price, "MRG-002", positive=True))
        if isinstance(self.time_ms, bool) or not isinstance(self.time_ms, int) or self.time_ms < 0:
            raise InvalidInput("mark_price.time_ms", self.time_ms, "an int >= 0 (ms since the epoch, UTC)")


@dataclass(frozen=True, slots=True)
class Account:
    """An account: balances per settlement currency (smallest units, >= 0) and positions.

    Cross-margin positions share the balance of their settlement currency; isolated positions
    carry their own margin.  At most one position per (instrument, side)."""

    id: str
    balances: tuple[tuple[str, int], ...] = ()
    positions: tuple[Position, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidInput("account.id", self.id, "a non-empty string")
        items = tuple(sorted(dict(self.balances).items())) if not isinstance(self.balances, tuple) else self.balances
        seen: set[str] = set()
        normalized: list[tuple[str, int]] = []
        for code, amount in items:
            if code in seen:
                raise InvalidInput(f"account.{self.id}.balances.{code}", amount, "currency listed twice")
            seen.add(code)
            # a balance is cash: it may be negative after realized losses that unrealized gains of the
            # account's cross positions still cover (LIQ-008) or after ADL at the bankruptcy price
            # (ADL-008); loaders of user input (scenarios, eval requests) refuse negative balances.
            normalized.append((code, money(f"account.{self.id}.balances.{code}", amount, "MRG-003", nonnegative=False)))
        object.__setattr__(self, "balances", tuple(sorted(normalized)))
        object.__setattr__(self, "positions", tuple(self.positions))
        keys = set()
        for i, p in enumerate(self.positions):
            if not isinstance(p, Position):
                raise InvalidInput(f"account.{self.id}.positions[{i}]", p, "must be a Position")
            if (p.instrument, p.side) in keys:
                raise InvalidInput(f"account.{self.id}.positions[{i}]", p.instrument, "one position per instrument and side")
            keys.add((p.instrument, p.side))

    def balance(self, currency: str) -> int:
        return dict(self.balances).get(currency, 0)
