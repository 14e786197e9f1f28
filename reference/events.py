"""Shared records of the process: fund identities, balance-history points and event records.

Every step of liquidation, the engine, the fund and ADL emits :class:`Record` values: a kind, a
time, the account / instrument / fund it concerns, its quantities (exact numbers) and the rule IDs
that produced it, so that a run can be replayed and audited line by line.  Records are plain
frozen data; :meth:`Record.to_json` gives the exact JSON form (numbers as decimal or ``p/q``
strings, never floats) used by the event log of ``backstop simulate``.

Every kind the reference emits is a :class:`RecordKind`; :data:`RECORD_SCHEMA` lists, per kind,
the fields of its JSON form with the type of each (:class:`FieldType`), required and optional, and
:func:`check_record` checks one JSON record against it (``backstop fund-history`` and
``backstop check-trace`` read logs with it).  The table is data only: the rule modules emit
records, this module describes them (README "Record kinds").
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from backstop.reference.errors import InvalidInput
from backstop.reference.types import BusinessLine, Instrument, format_exact

__all__ = ["FundKey", "fund_key_of", "BalancePoint", "Record", "RecordKind", "FieldType", "RECORD_SCHEMA",
           "COMMON_FIELDS", "check_record", "MAX_EXACT_CHARS"]


@dataclass(frozen=True, slots=True, order=True)
class FundKey:
    """One insurance fund: a business line, an underlying and a settlement currency (seeds 000,
    003: funds are separate per line, per underlying and per settlement currency)."""

    business_line: BusinessLine
    underlying: str
    currency: str

    @property
    def id(self) -> str:
        return f"{self.business_line.value}/{self.underlying}/{self.currency}"

    @staticmethod
    def parse(text: str) -> "FundKey":
        parts = text.split("/") if isinstance(text, str) else []
        if len(parts) != 3 or not all(parts):
            raise InvalidInput("fund", text, "LINE/UNDERLYING/CURRENCY, such as 'perpetual_futures/BTC-USDT/USDT'")
        try:
            line = BusinessLine(parts[0])
        except ValueError:
            raise InvalidInput("fund", text, f"unknown business line {parts[0]!r}") from None
        return FundKey(line, parts[1], parts[2])

    def __str__(self) -> str:
        return self.id


def fund_key_of(inst: Instrument) -> FundKey:
    """The fund that backs ``inst``: its business line, underlying and settlement currency."""
    return FundKey(inst.business_line, inst.underlying, inst.settle_currency.code)


@dataclass(frozen=True, slots=True, order=True)
class BalancePoint:
    """A fund's balance (smallest units) as of ``time_ms`` (ms since the epoch, UTC)."""

    time_ms: int
    balance: int


def _json_value(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Fraction):
        return format_exact(v)
    if isinstance(v, (tuple, list)):
        return [_json_value(x) for x in v]
    if hasattr(v, "value") and hasattr(v, "name"):  # an enum
        return v.value
    return str(v)


@dataclass(frozen=True, slots=True)
class Record:
    """One auditable event.  ``fields`` is an ordered tuple of (name, exact value) pairs."""

    kind: str
    time_ms: int
    rules: tuple[str, ...]
    account: str = ""
    instrument: str = ""
    fund: str = ""
    fields: tuple[tuple[str, Any], ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        for k, v in self.fields:
            if k == name:
                return v
        return default

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "time_ms": self.time_ms}
        for key in ("account", "instrument", "fund"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out.update({k: _json_value(v) for k, v in self.fields})
        out["rules"] = list(self.rules)
        return out


# ================================================================ record kinds and their fields

class RecordKind(enum.StrEnum):
    """Every kind of :class:`Record` the reference emits (``Record.kind`` holds the value)."""

    # reference/step.py: marks, liquidation, the engine, ADL
    MARK = "mark"
    LIQUIDATION_TRIGGER = "liquidation trigger"
    PARTIAL_LIQUIDATION = "partial liquidation"
    FULL_LIQUIDATION = "full liquidation"
    CROSS_PARTIAL_REFUSED = "cross partial refused"
    ENGINE_FILL = "engine fill"
    ENGINE_CLOSE = "engine close"
    BANKRUPT_REMAINDER = "bankrupt remainder"
    SURPLUS_TO_USER = "surplus to user"
    UNCOVERED_DEFICIT = "uncovered deficit"
    ADL_TRIGGER = "adl trigger"
    NOTIFICATION = "notification"
    ADL_STATE = "adl state"
    # reference/adl.py: one deleveraged counterparty
    ADL = "adl"
    # reference/fundbook.py: the insurance fund's movements and its daily settlement
    LIQUIDATION_SURPLUS = "liquidation surplus"
    LIQUIDATION_DEFICIT = "liquidation deficit"
    ADL_SURPLUS = "adl surplus"
    ADL_DEFICIT = "adl deficit"
    LIQUIDATION_FEE = "liquidation fee"
    TOP_UP = "top-up"
    WITHDRAWAL = "withdrawal"
    FORCED_LIQUIDATION_INJECTION = "forced liquidation injection"
    OVERLOSS_LOSS = "overloss loss"


class FieldType(enum.StrEnum):
    """The type of a field in a record's JSON form (:meth:`Record.to_json`)."""

    TIME = "time"          # ms since the epoch (UTC), a JSON integer
    UNITS = "units"        # money: a whole number of the currency's smallest unit, as a string ("-1500000")
    INTEGER = "integer"    # a whole number that is not money (index, tier, window, ms), as a string
    EXACT = "exact"        # an exact number, as a decimal or p/q string ("29984.5", "1/3")
    TEXT = "text"          # a non-empty string
    BOOL = "bool"          # a JSON boolean
    RULES = "rules"        # a list of rule IDs ("LIQ-004")


T = FieldType
# every record: its kind, its time and the rules that produced it
COMMON_FIELDS: dict[str, FieldType] = {"kind": T.TEXT, "time_ms": T.TIME, "rules": T.RULES}
_FUND_BALANCES = {"settled": T.UNITS, "pending": T.UNITS, "available": T.UNITS}   # fundbook: after the movement
_WHO = {"account": T.TEXT, "instrument": T.TEXT, "fund": T.TEXT}
_FUND_RESULT = {"fund": T.TEXT, "amount": T.UNITS, "inflow": T.UNITS, "paid": T.UNITS, "uncovered": T.UNITS,
                **_FUND_BALANCES}
_SETTLEMENT = {"fund": T.TEXT, "window": T.INTEGER, "window_start_ms": T.INTEGER, "window_end_ms": T.INTEGER,
               "amount": T.UNITS, "net": T.UNITS, **_FUND_BALANCES}
_ON_WHOM = {"account": T.TEXT, "instrument": T.TEXT}   # absent when the fund is moved by no account

# kind -> (required fields, optional fields), besides COMMON_FIELDS
RECORD_SCHEMA: dict[RecordKind, tuple[dict[str, FieldType], dict[str, FieldType]]] = {
    RecordKind.MARK: ({"instrument": T.TEXT, "price": T.EXACT}, {}),
    # isolated (LIQ-004: side, mark, size, margin) or cross (LIQ-008: currency, balance, equity,
    # requirement, no fund; the instrument is the group's ids joined by ",")
    RecordKind.LIQUIDATION_TRIGGER: ({"account": T.TEXT, "instrument": T.TEXT, "margin_mode": T.TEXT, "action": T.TEXT},
                                     {"fund": T.TEXT, "side": T.TEXT, "mark": T.EXACT, "size": T.EXACT, "margin": T.EXACT,
                                      "currency": T.TEXT, "balance": T.UNITS, "equity": T.EXACT, "requirement": T.EXACT}),
    RecordKind.PARTIAL_LIQUIDATION: ({**_WHO, "margin_mode": T.TEXT, "side": T.TEXT, "tier_before": T.INTEGER,
                                      "tier_after": T.INTEGER, "reduced": T.EXACT, "price": T.EXACT,
                                      "realized_pnl": T.UNITS, "close_fee": T.UNITS, "new_size": T.EXACT,
                                      "new_margin": T.EXACT}, {}),
    # isolated (LIQ-007: bankruptcy_price_exists, user_loss) or cross (LIQ-009: margin_share)
    RecordKind.FULL_LIQUIDATION: ({**_WHO, "margin_mode": T.TEXT, "side": T.TEXT, "size": T.EXACT,
                                   "takeover_price": T.EXACT, "engine_cash": T.EXACT},
                                  {"bankruptcy_price_exists": T.BOOL, "user_loss": T.EXACT, "margin_share": T.EXACT}),
    RecordKind.CROSS_PARTIAL_REFUSED: ({"account": T.TEXT, "currency": T.TEXT, "balance": T.UNITS,
                                        "balance_after": T.EXACT}, {}),
    RecordKind.ENGINE_FILL: ({**_WHO, "side": T.TEXT, "size": T.EXACT, "price": T.EXACT, "takeover_price": T.EXACT}, {}),
    RecordKind.ENGINE_CLOSE: ({**_WHO, "why": T.TEXT, "filled": T.EXACT, "takeover_price": T.EXACT, "pnl": T.EXACT,
                               "result": T.UNITS, "fee": T.UNITS, "to_fund": T.UNITS, "venue": T.UNITS,
                               "dust": T.EXACT}, {}),
    RecordKind.BANKRUPT_REMAINDER: ({**_WHO, "remainder_id": T.INTEGER, "side": T.TEXT, "size": T.EXACT,
                                     "takeover_price": T.EXACT, "in_adl_state": T.BOOL}, {}),
    RecordKind.SURPLUS_TO_USER: ({**_WHO, "to_user": T.UNITS}, {}),
    RecordKind.UNCOVERED_DEFICIT: ({**_WHO, "uncovered": T.UNITS}, {}),
    RecordKind.ADL_TRIGGER: ({**_WHO, "remainder_id": T.INTEGER, "remainder": T.EXACT, "uncovered": T.UNITS,
                              "drawdown": T.BOOL, "available": T.UNITS}, {}),
    RecordKind.NOTIFICATION: ({**_WHO, "message": T.TEXT}, {}),
    RecordKind.ADL_STATE: ({"instrument": T.TEXT, "fund": T.TEXT, "active": T.BOOL}, {}),
    RecordKind.ADL: ({"account": T.TEXT, "instrument": T.TEXT, "type": T.TEXT, "rank": T.INTEGER, "bucket": T.INTEGER,
                      "score": T.EXACT, "reduced_size": T.EXACT, "size_at_mark": T.EXACT, "mark_price": T.EXACT,
                      "size_at_bankruptcy_price": T.EXACT, "bankruptcy_price": T.EXACT, "realized_pnl": T.UNITS,
                      "released_margin": T.UNITS, "new_size": T.EXACT, "new_margin": T.EXACT}, {"fund": T.TEXT}),
    RecordKind.LIQUIDATION_SURPLUS: (_FUND_RESULT, _ON_WHOM),
    RecordKind.LIQUIDATION_DEFICIT: (_FUND_RESULT, _ON_WHOM),
    RecordKind.ADL_SURPLUS: (_FUND_RESULT, _ON_WHOM),
    RecordKind.ADL_DEFICIT: (_FUND_RESULT, _ON_WHOM),
    RecordKind.LIQUIDATION_FEE: ({"fund": T.TEXT, "amount": T.UNITS, "receiver": T.TEXT, "inflow": T.UNITS,
                                  **_FUND_BALANCES}, _ON_WHOM),
    RecordKind.TOP_UP: ({"fund": T.TEXT, "amount": T.UNITS, **_FUND_BALANCES}, {}),
    RecordKind.WITHDRAWAL: ({"fund": T.TEXT, "amount": T.UNITS, **_FUND_BALANCES}, {}),
    RecordKind.FORCED_LIQUIDATION_INJECTION: (_SETTLEMENT, {}),
    RecordKind.OVERLOSS_LOSS: (_SETTLEMENT, {}),
}
del T

_RULE_ID = re.compile(r"[A-Z]{3}-[0-9]{3}[a-z]?")
_EXACT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:/([0-9]+))?")   # ASCII digits only
MAX_EXACT_CHARS = 4000   # an exact number in a record, as text


def _check_value(f: str, v: Any, ty: FieldType) -> Any:
    """The value of one field, checked against its type (its JSON form is kept; ``time_ms`` read)."""
    from backstop.reference import read as RD
    if ty is FieldType.TIME:
        return RD.time_ms(f, v)
    if ty is FieldType.TEXT:
        return RD.string(f, v, what="must be a non-empty string")
    if ty is FieldType.BOOL:
        return RD.boolean(f, v)
    if ty is FieldType.RULES:
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and _RULE_ID.fullmatch(x) for x in v):
            raise InvalidInput(f, v, "a non-empty list of rule IDs such as 'LIQ-004'")
        return v
    if ty is FieldType.EXACT:
        # the syntax of format_exact (and of the trace schema's "exact"), without the 60-digit bound
        # of an input number: a record's exact number is the reference's own result and may be longer
        # (an inverse contract's pnl over several fills: 66 digits seen in a soak); the bound here
        # keeps every part below Python's int-string limit (4,300 digits)
        if not isinstance(v, str):
            raise InvalidInput(f, v, "an exact number, as a string")
        if len(v) > MAX_EXACT_CHARS:
            raise InvalidInput(f, RD.shorten(v), f"an exact number of at most {MAX_EXACT_CHARS} characters")
        m = _EXACT.fullmatch(v)
        if m is None or (m.group(1) is not None and not m.group(1).strip("0")):
            raise InvalidInput(f, v, "an exact number, as a decimal or p/q string such as '29984.5' or '85000/3'")
        return v
    what = "a whole number of smallest units, as a string" if ty is FieldType.UNITS else "a whole number, as a string"
    if not isinstance(v, str):
        raise InvalidInput(f, v, what)
    RD.integer(f, v, strings=True)
    return v


def check_record(obj: Any, where: str = "", complete: bool = True) -> dict[str, Any]:
    """Check one record in its JSON form (a line of ``events.jsonl`` / ``trace.jsonl``) against
    :data:`RECORD_SCHEMA`: a known kind, every required field present, no field the kind does not
    have, each field of its type.  With ``complete=False`` (``backstop check-trace``: an engine's
    record that lacks a field or has another one *differs* from the reference's, it is not unreadable)
    only the kind and the types of the fields the kind has are checked.  Raises :class:`InvalidInput`
    naming ``where: field`` (``where`` such as ``events.jsonl:7``; empty: the field alone) and the
    reason.  Returns a copy of the record with ``time_ms`` read as an integer."""
    def at(k: str) -> str:
        return f"{where}: {k}" if where else k
    if not isinstance(obj, dict):
        raise InvalidInput(where or "record", obj, "a record is a JSON object with 'kind', 'time_ms' and 'rules'")
    if "kind" not in obj:
        raise InvalidInput(at("kind"), None, "is required")
    kind = obj["kind"]
    if not isinstance(kind, str) or kind not in _KINDS:
        raise InvalidInput(at("kind"), kind, "unknown record kind (README 'Record kinds' lists them)")
    required, optional = RECORD_SCHEMA[RecordKind(kind)]
    for k in (*COMMON_FIELDS, *required) if complete else ():
        if k not in obj:
            raise InvalidInput(at(k), None, f"is required in a {kind!r} record")
    out = dict(obj)
    for k, v in obj.items():
        ty = COMMON_FIELDS.get(k) or required.get(k) or optional.get(k)
        if ty is None and complete:
            raise InvalidInput(at(k), v, f"not a field of a {kind!r} record")
        if ty is not None:
            out[k] = _check_value(at(k), v, ty)
    return out


_KINDS = frozenset(k.value for k in RecordKind)
