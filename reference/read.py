"""The exact input layer: every value that enters backstop from outside is read here.

``backstop eval`` requests (``backstop/inputs.py``), scenario files and the ``scenario`` of an eval
``transition`` request (``backstop/simulate.py``) and venue profiles (``reference/profile.py``) read
their fields through these converters and no others, so one malformed value is refused the same way
(same field, same reason, same rule, same error class) whichever document it is in.  A converter
takes the field's dotted path (``positions[0].margin``) and the rule ID whose input it is, and
raises :class:`~backstop.reference.errors.InvalidInput` (:class:`CurrencyMismatch` for an amount in
another currency) naming them; a reader may put its own location in front of the field (a scenario
file adds ``FILE:LINE:``) or re-type the error (a profile raises :class:`ProfileError`), but never
changes the reason.  A converter names the field it was given or, for a part of a table it reads
(``margin.currency``, an unknown key), exactly one key below it.

Converters
----------
``refuse_float``  JSON/TOML float literals and Python floats (``0.1`` is not one tenth), NaN, inf
``number``        an exact number: an integer, a ``Fraction``, or an ASCII string ``[+-]d+[.d+]`` or
                  ``[+-]d+/d+`` (no exponent, no spaces, no ``_``, no non-ASCII digits such as
                  ``"١٠٠"``, no zero denominator); bools are refused; optional range checks
``rate``          an exact number ``0 <= x < 1`` (or as the key says)
``integer``       a whole number (an integer; with ``strings=True`` also an integral string)
``boolean``       true or false
``string``        a non-empty string
``choice``        one value of an enum
``time_ms``       ms since the epoch (UTC): an integer >= 0, a string of ASCII digits, an ISO-8601
                  string with a zone, or a (TOML) datetime with a zone; whole ms
``clock``         a local time of day ``HH:MM:SS`` as seconds after midnight
``mapping``       a table / JSON object
``check_keys``    a table's keys: unknown keys (typos) and missing required keys
``amount``        a money amount, as an ``int`` of smallest units of a given currency (below)
``amount_in``     the same when the currency is not known yet (a profile's tier deduction)

Money amounts
-------------
Three forms mean the same everywhere:

* ``"<decimal> <CODE>"``: a decimal amount in whole units of the currency ``CODE`` (``"15.5 USDT"``);
* ``{"amount": <exact number>, "currency": "CODE"}``: the same as a table (TOML inline table
  ``{ amount = "15.5", currency = "USDT" }``);
* ``{"units": <whole number>, "currency": "CODE"}``: smallest units of ``CODE`` (``15500000``).

A bare number (an integer or an exact string, no currency named) is read in the document's own
unit, ``bare``: smallest units in eval requests and profiles (``bare="units"``), whole currency
units ("coins") in scenario files and in a ``transition`` request's scenario (``bare="coins"``,
the scenario format's convention since it was published).  That is the one difference between the
formats (spec/99-sources.md C45).  An amount converts exactly or is refused: more decimals than the
currency has (``"0.0000001 USDT"`` at 6 decimals), an amount in another currency than the field's
(:class:`CurrencyMismatch`), a sign the field does not allow.

This module imports nothing of ``backstop`` but the errors (and ``types.format_exact`` for messages):
no z3, no CLI.  Currencies are passed
in as objects with ``code`` and ``decimals`` (:class:`backstop.reference.types.Currency`).
"""

from __future__ import annotations

import enum
import re
from datetime import date, datetime, time as dtime, timezone
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from backstop.reference.errors import CurrencyMismatch, InvalidInput

__all__ = [
    "FloatLiteral", "TomlFloat", "register_float_literal", "join",
    "refuse_float", "number", "rate", "integer", "boolean", "string", "choice", "time_ms", "clock",
    "mapping", "check_keys", "amount", "amount_in", "AMOUNT_KEYS", "MAX_DIGITS", "MAX_TIME_MS", "shorten",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_RATIO = re.compile(r"[+-]?[0-9]+/[0-9]+")
_DIGITS = re.compile(r"[0-9]+")
_CODE = r"[A-Z0-9]{2,12}"
_COINS = re.compile(rf"([+-]?[0-9]+(?:\.[0-9]+)?) ({_CODE})")
AMOUNT_KEYS = ("amount", "units", "currency")
# Input bounds (README "Input bounds", spec/99-sources.md C66): every exact number has at most
# MAX_DIGITS decimal digits (numerator and denominator together, as written), so every answer is
# printable (far below Python's int-string limit of 4,300 digits, sys.int_info); every time lies in
# [1970-01-01T00:00:00Z, 3000-01-01T00:00:00Z), so every time formats as an ISO date in any zone.
MAX_DIGITS = 60
_DIGIT_LIMIT = 10 ** MAX_DIGITS
MAX_TIME_MS = 32_503_680_000_000  # 3000-01-01T00:00:00Z
_TIME_BOUND_TEXT = "3000-01-01T00:00:00Z"
_AMOUNT_FORMS = ("smallest units (1500000000), a decimal with its currency (\"1500 USDT\"), "
                 "or {amount, currency} / {units, currency}")


# ---------------------------------------------------------------- float literals

class FloatLiteral:
    """A float literal of a parsed document, kept as its text so that it can be refused by field.
    Subclasses (or classes registered with :func:`register_float_literal`) name the syntax."""

    __slots__ = ("text",)
    syntax = ""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.text == self.text

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.text))


class TomlFloat(FloatLiteral):
    """A TOML float literal (``tomllib.loads(text, parse_float=TomlFloat)``; ``nan``/``inf`` too)."""

    __slots__ = ()
    syntax = "TOML"


_BINARY_FLOAT: type = type(1 / 2)  # Python's binary floating-point type, named without its built-in's token
_FLOAT_SYNTAX: dict[type, str] = {_BINARY_FLOAT: "", FloatLiteral: ""}  # a FloatLiteral names its own syntax


def register_float_literal(cls: type, syntax: str) -> None:
    """Make instances of ``cls`` (a parser's float marker, such as ``backstop.jsonio.JsonFloat``)
    refused as ``"<syntax> floats are not exact"``."""
    _FLOAT_SYNTAX[cls] = syntax


def shorten(v: Any, limit: int = 80) -> str:
    """``repr(v)`` on one line, at most about ``limit`` characters (a refused value is quoted
    shortened: a 5,000-digit number or a deeply nested list is not printed whole)."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 4 * limit:
        return f"<an integer of {v.bit_length()} bits>"
    try:
        r = repr(v)
    except (ValueError, RecursionError):
        return f"<a {type(v).__name__}>"
    if len(r) > limit:
        r = r[: limit // 2] + "..." + r[-(limit // 2):] + f" ({len(r)} characters)"
    return r


def join(field: str, key: Any) -> str:
    """The dotted path of ``key`` below ``field``: ``join("a", "b")`` = ``a.b``, ``join("a", 0)`` = ``a[0]``."""
    if isinstance(key, int):
        return f"{field}[{key}]"
    return f"{field}.{key}" if field else str(key)


def refuse_float(field: str, v: Any, rule: str = "") -> None:
    """Refuse a float (a JSON or TOML float literal, a Python float; NaN and inf are floats too)."""
    syntax = None
    for cls, s in _FLOAT_SYNTAX.items():
        if isinstance(v, cls):
            syntax = getattr(v, "syntax", "") or s
            break
    if syntax is None:
        return
    what = f"{syntax} floats" if syntax else "floats"
    raise InvalidInput(field, v, f"{what} are not exact; write the number as a string, such as \"0.005\"", rule)


# ---------------------------------------------------------------- numbers

def _too_many_digits(field: str, v: Any, rule: str) -> InvalidInput:
    return InvalidInput(field, v, f"more than {MAX_DIGITS} digits (the input bound, README \"Input bounds\")", rule)


def _exact_text(field: str, v: str, rule: str) -> Fraction:
    if not v.isascii():
        raise InvalidInput(field, v, "not an exact decimal ('12.5') or ratio ('1/3'): digits are the ASCII 0-9", rule)
    decimal, ratio = _DECIMAL.fullmatch(v), _RATIO.fullmatch(v)
    if ratio and not v.split("/")[1].strip("0"):  # all zeros (no int(): it may be too long)
        raise InvalidInput(field, v, "a ratio with a zero denominator", rule)
    if decimal or ratio:
        if sum(c.isdigit() for c in v) > MAX_DIGITS:  # counted on the text: no int() of a 5,000-digit string
            raise _too_many_digits(field, v, rule)
        return Fraction(v)
    raise InvalidInput(field, v, "not an exact decimal ('12.5') or ratio ('1/3')", rule)


def _bounded(field: str, v: Any, x: Fraction, rule: str) -> Fraction:
    """An integer or a ``Fraction`` given as a value (JSON/TOML integer): at most MAX_DIGITS digits."""
    if abs(x.numerator) >= _DIGIT_LIMIT or x.denominator >= _DIGIT_LIMIT:
        raise _too_many_digits(field, f"an integer of {x.numerator.bit_length()} bits", rule)
    return x


def _range(field: str, v: Any, x: Any, rule: str, positive: bool, nonnegative: bool, below_one: bool) -> None:
    if positive and x <= 0:
        raise InvalidInput(field, v, "must be > 0", rule)
    if nonnegative and x < 0:
        raise InvalidInput(field, v, "must be >= 0", rule)
    if below_one and x >= 1:
        raise InvalidInput(field, v, "must be < 1", rule)


def number(field: str, v: Any, rule: str = "", *, positive: bool = False, nonnegative: bool = False,
           below_one: bool = False) -> Fraction:
    """An exact number (see the module's docstring), with optional range checks."""
    refuse_float(field, v, rule)
    if isinstance(v, bool):
        raise InvalidInput(field, v, "a bool is not a number", rule)
    if isinstance(v, (int, Fraction)):
        x = _bounded(field, v, Fraction(v), rule)
    elif isinstance(v, str):
        x = _exact_text(field, v, rule)
    else:
        raise InvalidInput(field, v, f"expected an exact number, not {type(v).__name__}", rule)
    _range(field, v, x, rule, positive, nonnegative, below_one)
    return x


def rate(field: str, v: Any, rule: str = "", *, positive: bool = False, below_one: bool = True) -> Fraction:
    """A rate: an exact number >= 0 (> 0 when ``positive``), < 1 unless ``below_one=False``."""
    return number(field, v, rule, positive=positive, nonnegative=True, below_one=below_one)


def integer(field: str, v: Any, rule: str = "", *, lo: int | None = None, hi: int | None = None,
            strings: bool = False) -> int:
    """A whole number: an integer, or with ``strings=True`` also an exact string of a whole number
    (``"1500000000"``); within ``lo``..``hi`` when given."""
    refuse_float(field, v, rule)
    what = "must be a whole number (an integer or an integral string)" if strings else "must be an integer"
    if isinstance(v, bool):
        raise InvalidInput(field, v, what, rule)
    if isinstance(v, int):
        n = int(_bounded(field, v, Fraction(v), rule))
    elif strings and isinstance(v, (str, Fraction)):
        x = number(field, v, rule)
        if x.denominator != 1:
            raise InvalidInput(field, v, what, rule)
        n = int(x)
    else:
        raise InvalidInput(field, v, what, rule)
    if lo is not None and hi is not None and not lo <= n <= hi:
        raise InvalidInput(field, v, f"must be between {lo} and {hi}", rule)
    if lo is not None and n < lo:
        raise InvalidInput(field, v, f"must be >= {lo}", rule)
    if hi is not None and n > hi:
        raise InvalidInput(field, v, f"must be <= {hi}", rule)
    return n


# ---------------------------------------------------------------- other scalars

def boolean(field: str, v: Any, rule: str = "") -> bool:
    """``true`` or ``false`` (not 0/1, not a string)."""
    if not isinstance(v, bool):
        raise InvalidInput(field, v, "must be true or false", rule)
    return v


def string(field: str, v: Any, rule: str = "", what: str = "must be a non-empty string") -> str:
    """A non-empty string; ``what`` is the reason given for anything else."""
    refuse_float(field, v, rule)
    if not isinstance(v, str) or not v:
        raise InvalidInput(field, v, what, rule)
    return v


def choice(field: str, v: Any, cls: type[enum.Enum], rule: str = "") -> Any:
    """One member of ``cls``, given by its value (``"long"``) or as the member itself."""
    if isinstance(v, cls):
        return v
    refuse_float(field, v, rule)
    try:
        return cls(v)
    except (ValueError, TypeError):
        values = [repr(m.value) for m in cls]
        allowed = " or ".join(values) if len(values) == 2 else "one of " + ", ".join(values)
        raise InvalidInput(field, v, f"must be {allowed}", rule) from None


def time_ms(field: str, v: Any, rule: str = "") -> int:
    """A time as ms since the epoch (UTC).  An integer >= 0 or a string of ASCII digits is already
    ms; an ISO-8601 string (``"2026-01-05T08:00:00Z"``, ``"2026-01-05T16:00:00+08:00"``) or a
    datetime must carry a zone (a local time is ambiguous) and be a whole number of ms."""
    refuse_float(field, v, rule)
    form = "a time: ms since the epoch, or ISO-8601 with a zone ('2026-01-05T08:00:00Z')"
    if isinstance(v, bool):
        raise InvalidInput(field, v, form, rule)
    if isinstance(v, int):
        if v < 0:
            raise InvalidInput(field, v, "ms since the epoch must be >= 0", rule)
        return _time_bound(field, v, v, rule)
    if isinstance(v, str) and _DIGITS.fullmatch(v):
        if len(v) > 20:
            raise InvalidInput(field, v, f"must be before {_TIME_BOUND_TEXT}", rule)
        return _time_bound(field, v, integer(field, v, rule, strings=True), rule)
    if isinstance(v, str):
        try:
            if not v.isascii():
                raise ValueError
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise InvalidInput(field, v, "not an ISO-8601 time such as '2026-01-05T08:00:00Z'", rule) from None
    elif isinstance(v, datetime):
        dt = v
    else:  # a date or a time of day alone (TOML has both), a list, ...
        raise InvalidInput(field, v, form, rule)
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidInput(field, str(v), "a time needs a zone ('Z' or '+08:00'): local times are ambiguous", rule)
    if dt.microsecond % 1000:
        raise InvalidInput(field, str(v), "times are whole milliseconds", rule)
    delta = dt - _EPOCH
    ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if ms < 0:
        raise InvalidInput(field, str(v), "before 1970-01-01T00:00:00Z", rule)
    return _time_bound(field, str(v), ms, rule)


def _time_bound(field: str, v: Any, ms: int, rule: str) -> int:
    if ms >= MAX_TIME_MS:
        raise InvalidInput(field, v, f"must be before {_TIME_BOUND_TEXT} (the input bound, README \"Input bounds\")", rule)
    return ms


def clock(field: str, v: Any, rule: str = "") -> int:
    """A local time of day ``HH:MM:SS`` (ASCII digits, two each) as seconds after midnight."""
    m = re.fullmatch(r"([0-9]{2}):([0-9]{2}):([0-9]{2})", v) if isinstance(v, str) else None
    if m:
        h, mi, s = (int(x) for x in m.groups())
        if h < 24 and mi < 60 and s < 60:
            return h * 3600 + mi * 60 + s
    refuse_float(field, v, rule)
    raise InvalidInput(field, v, "a local time HH:MM:SS", rule)


# ---------------------------------------------------------------- tables

def mapping(field: str, v: Any, what: str = "a table", rule: str = "") -> dict[str, Any]:
    """A table (a JSON object); ``what`` names what it should be in the reason."""
    if not isinstance(v, dict):
        raise InvalidInput(field, v, f"must be {what}", rule)
    return v


def check_keys(field: str, obj: Mapping[str, Any], allowed: Iterable[str], required: Sequence[str] = (),
               rule: str = "") -> None:
    """Refuse a key of ``obj`` not in ``allowed`` (a typo is an error, not an ignored setting) and a
    missing ``required`` key, naming ``field.key``."""
    allowed = tuple(allowed)
    for k in obj:
        if k not in allowed:
            raise InvalidInput(join(field, k), obj[k], f"unknown key (a typo?); allowed: {', '.join(allowed)}", rule)
    for k in required:
        if k not in obj:
            raise InvalidInput(join(field, k), None, "is required", rule)


# ---------------------------------------------------------------- money

def _form(field: str, v: Any, rule: str) -> tuple[Fraction, str, str | None]:
    """An amount as (value, scale, code): scale ``"coins"`` (whole currency units), ``"units"``
    (smallest units) or ``"bare"`` (no currency named: the document's convention decides)."""
    refuse_float(field, v, rule)
    if isinstance(v, dict):
        check_keys(field, v, AMOUNT_KEYS, ("currency",), rule)
        code = string(join(field, "currency"), v["currency"], rule, "a currency code such as \"USDT\"")
        if ("amount" in v) == ("units" in v):
            if "amount" in v:
                raise InvalidInput(join(field, "units"), v["units"], "give amount or units, not both", rule)
            raise InvalidInput(join(field, "amount"), None, "is required (or units, in smallest units)", rule)
        if "amount" in v:
            return number(join(field, "amount"), v["amount"], rule), "coins", code
        return Fraction(integer(join(field, "units"), v["units"], rule, strings=True)), "units", code
    if isinstance(v, str):
        m = _COINS.fullmatch(v)
        if m:
            return _exact_text(field, m.group(1), rule), "coins", m.group(2)
        try:
            return number(field, v, rule), "bare", None
        except InvalidInput as e:
            if e.reason == "a ratio with a zero denominator" or e.reason.startswith("more than"):
                raise
            raise InvalidInput(field, v, f"not an amount: {_AMOUNT_FORMS}", rule) from None
    if isinstance(v, bool) or not isinstance(v, (int, Fraction)):
        raise InvalidInput(field, v, f"not an amount: {_AMOUNT_FORMS}", rule)
    return _bounded(field, v, Fraction(v), rule), "bare", None


def _units(field: str, v: Any, x: Fraction, scale: str, ccy: Any, rule: str, nonnegative: bool, positive: bool) -> int:
    from backstop.reference.types import format_exact  # imported here: types may come to use this module
    units = x * 10 ** ccy.decimals if scale == "coins" else x
    if units.denominator != 1:
        if scale == "coins":
            why = (f"{ccy.code} has {ccy.decimals} decimals: not a whole number of its smallest unit "
                   f"(10^-{ccy.decimals}), {format_exact(units)} units")
        else:
            why = f"not a whole number of smallest units of {ccy.code} (10^-{ccy.decimals}): {format_exact(units)}"
        raise InvalidInput(field, v, why, rule)
    _range(field, v, units, rule, positive, nonnegative, False)
    return int(units)


def amount(field: str, v: Any, currency: Any, rule: str = "", *, bare: str = "units", nonnegative: bool = True,
           positive: bool = False) -> int:
    """A money amount of ``currency`` (``code``, ``decimals``) as an ``int`` of its smallest unit,
    in any of the forms of the module's docstring; a bare number is read as ``bare`` (``"units"``
    or ``"coins"``).  Refused: another currency (:class:`CurrencyMismatch`), not a whole number of
    smallest units, a negative amount (unless ``nonnegative=False``), zero when ``positive``."""
    assert bare in ("units", "coins"), bare
    x, scale, code = _form(field, v, rule)
    if code is not None and code != currency.code:
        raise CurrencyMismatch(field, v, f"this amount is in {currency.code}, not {code}", rule)
    return _units(field, v, x, bare if scale == "bare" else scale, currency, rule, nonnegative, positive)


def amount_in(field: str, v: Any, currencies: Mapping[str, Any], rule: str = "", *,
              nonnegative: bool = True) -> tuple[int, str | None]:
    """An amount whose currency is not known yet (a tier table's deduction, before the instruments
    that use the table are read): ``(smallest units, the code it names or None)``.  A bare number is
    smallest units; a named currency must be one of ``currencies``, and the caller checks later that
    it is the currency the amount is in."""
    x, scale, code = _form(field, v, rule)
    if code is None:
        if x.denominator != 1:
            raise InvalidInput(field, v, "not a whole number of smallest units (or name the currency: \"1.5 USDT\")", rule)
        _range(field, v, x, rule, False, nonnegative, False)
        return int(x), None
    if code not in currencies:
        raise CurrencyMismatch(field, v, f"currency {code} is not defined (currencies: {', '.join(sorted(currencies))})",
                               rule)
    return _units(field, v, x, scale, currencies[code], rule, nonnegative, False), code
