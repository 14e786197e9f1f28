"""Shared records of the process: fund identities, balance-history points and event records.

Every step of liquidation, the engine, the fund and ADL emits :class:`Record` values: a kind, a
time, the account / instrument / fund it concerns, its quantities (exact numbers) and the rule IDs
that produced it, so that a run can be replayed and audited line by line.  Records are plain
frozen data; :meth:`Record.to_json` gives the exact JSON form (numbers as decimal or ``p/q``
strings, never floats) used by the event log of ``backstop simulate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from backstop.reference.errors import InvalidInput
from backstop.reference.types import BusinessLine, Instrument, format_exact

__all__ = ["FundKey", "fund_key_of", "BalancePoint", "Record"]


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
