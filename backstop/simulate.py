"""``backstop simulate``: run a scenario file through the reference step function, end to end.

A scenario (TOML, documented in ``examples/README.md``) names a venue profile, a start time, the
insurance funds' opening balances, accounts with balances and positions, the opening mark prices
and order books, and a timeline of events (mark prices, book replacements, fund top-ups and
withdrawals, daily settlements).  :func:`load_scenario` validates the whole file before anything
runs; a refused file gets one error naming the file, the line and the field path::

    examples/crash.toml:42: events[3].price: must be > 0 (got '-5')

:func:`run_scenario` feeds the events, in file order, to :func:`backstop.reference.step.process_event`
(optionally checking every invariant after every event), and :func:`write_outputs` writes

* ``events.jsonl`` -- every record, one JSON object per line (sorted keys, exact numbers as strings);
* ``trace.jsonl`` -- the same records with the run's inputs between them (:func:`trace_lines`), the
  log ``backstop check-trace`` replays;
* ``final_state.json`` -- a summary plus the final state (:func:`step.state_json`);
* ``fund_<id>.csv`` -- each fund's balance history (``backstop.history``), ``/`` in the id as ``_``;
* ``chart.svg`` -- mark price paths, fund balances, the ADL-001 threshold and liquidation / ADL markers
  (``backstop.charts``, matplotlib).

Nothing written depends on the clock, the machine or the path of the file: the same scenario
always gives byte-identical output.  Only the printed summary carries a speed (events/second).

Line numbers: ``tomllib`` keeps no positions, so :class:`SourceMap` scans the source text once,
tracking table headers (``[marks]``, ``[[accounts]]``, ``[[accounts.positions]]``, counting each
array-of-tables entry), ``key = value`` lines, and the elements of multi-line arrays (one line per
element, nested arrays too).  A field's line is the line of its longest known path prefix
(``events[3].price`` -> the ``price =`` line of the fourth ``[[events]]``; a missing key -> the
table's header line).
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from backstop.reference.errors import BackstopError, CurrencyMismatch, InvalidInput, OutOfTierRange
from backstop.reference.events import FundKey, Record, fund_key_of
from backstop.reference import read as RD
from backstop.reference.types import Account, MarginMode, Position, Side, format_exact

__all__ = ["SourceMap", "Scenario", "EventSpec", "load_scenario", "load_scenario_text", "load_scenario_data", "initial_state",
           "step_event", "RunResult", "run_scenario", "write_outputs", "trace_lines", "TRACE_FORMAT", "chart_svg", "register_cli",
           "cmd_simulate", "main", "EVENT_TYPES"]

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2  # as backstop.cli

Path_ = tuple[Any, ...]  # a field path: ("events", 3, "price")

EVENT_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type -> (required keys, optional keys) besides "time" and "type"
    "mark": (("instrument", "price"), ()),
    "book": (("instrument",), ("bids", "asks")),
    "top_up": (("fund", "amount"), ()),
    "withdraw": (("fund", "amount"), ()),
    "settle": ((), ()),
}
_TOP_KEYS = ("name", "description", "profile", "start", "funds", "accounts", "marks", "books", "events")
_ACCOUNT_KEYS = ("id", "balances", "positions")
_POSITION_KEYS = ("instrument", "side", "size", "entry_price", "margin_mode", "margin")
_BOOK_KEYS = ("bids", "asks")
LIQUIDATION_KINDS = ("partial liquidation", "full liquidation")


# ================================================================ source positions

def dotted(path: Sequence[Any]) -> str:
    """``("events", 3, "price")`` -> ``events[3].price``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _split_key(text: str) -> tuple[str, ...]:
    """A TOML key (bare, quoted, dotted) as its parts."""
    parts, cur, quote, i = [], "", "", 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"' and i + 1 < len(text):
                cur += text[i + 1]
                i += 2
                continue
            if c == quote:
                quote = ""
            else:
                cur += c
        elif c in "\"'":
            quote = c
        elif c == ".":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur.strip())
    return tuple(parts)


def _key_end(line: str) -> int:
    """Index of the ``=`` of a ``key = value`` line (outside quotes), or -1."""
    quote = ""
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "=":
            return i
        elif c == "#":
            return -1
    return -1


def _header_end(line: str, start: int, double: bool) -> int:
    close = "]]" if double else "]"
    quote = ""
    i = start
    while i < len(line):
        c = line[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif line.startswith(close, i):
            return i
        i += 1
    return -1


class SourceMap:
    """Field path -> 1-based line number, from one scan of a TOML source (see the module doc)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        self._aot: dict[tuple[str, ...], tuple[Any, ...]] = {}   # generic path -> concrete (with index)
        self._count: dict[tuple[Any, ...], int] = {}
        self._scan(text.splitlines())

    def _resolve(self, parts: tuple[str, ...], new_entry: bool) -> tuple[Any, ...]:
        concrete: tuple[Any, ...] = ()
        generic: tuple[str, ...] = ()
        for n, p in enumerate(parts):
            generic += (p,)
            concrete += (p,)
            last = n == len(parts) - 1
            if last and new_entry:
                idx = self._count.get(concrete, 0)
                self._count[concrete] = idx + 1
                concrete += (idx,)
                self._aot[generic] = concrete
                # a new entry starts fresh sub-arrays
                for g in [g for g in self._aot if len(g) > len(generic) and g[:len(generic)] == generic]:
                    del self._aot[g]
            elif generic in self._aot:
                concrete = self._aot[generic]
        return concrete

    def _note(self, path: tuple[Any, ...], line: int) -> None:
        self.lines.setdefault(path, line)

    def _scan(self, lines: list[str]) -> None:
        table: tuple[Any, ...] = ()
        i = 0
        while i < len(lines):
            raw = lines[i]
            s = raw.strip()
            if not s or s.startswith("#"):
                i += 1
                continue
            if s.startswith("["):
                double = s.startswith("[[")
                end = _header_end(s, 2 if double else 1, double)
                if end > 0:
                    parts = _split_key(s[2 if double else 1:end])
                    table = self._resolve(parts, double)
                    for k in range(1, len(table) + 1):
                        self._note(table[:k], i + 1)
                i += 1
                continue
            eq = _key_end(raw)
            if eq < 0:
                i += 1
                continue
            path = table + _split_key(raw[:eq])
            self._note(path, i + 1)
            i = self._scan_value(lines, i, eq + 1, path)

    def _scan_value(self, lines: list[str], i: int, col: int, path: tuple[Any, ...]) -> int:
        """Consume one value starting at ``lines[i][col:]``; note array element lines; return the
        index of the next statement's line."""
        stack: list[list[Any]] = []  # [kind, path, count, expecting]
        s, pos = lines[i], col

        def element() -> tuple[Any, ...] | None:
            top = stack[-1] if stack else None
            if top is not None and top[0] == "[" and top[3]:
                p: tuple[Any, ...] = top[1] + (top[2],)
                top[2] += 1
                top[3] = False
                self._note(p, i + 1)
                return p
            return None

        while True:
            while pos < len(s):
                c = s[pos]
                if c == "#":
                    break
                if c in "\"'":
                    element()
                    triple = s.startswith(c * 3, pos)
                    q = c * 3 if triple else c
                    pos += len(q)
                    while True:
                        j = s.find(q, pos)
                        while j > 0 and q == '"' and s[j - 1] == "\\":
                            j = s.find(q, j + 1)
                        if j >= 0:
                            pos = j + len(q)
                            break
                        if not triple or i + 1 >= len(lines):
                            pos = len(s)
                            break
                        i += 1
                        s, pos = lines[i], 0
                    if not stack:
                        return i + 1
                    continue
                if c in "[{":
                    p = element() or (stack[-1][1] if stack else path)
                    stack.append([c, p, 0, c == "["])
                elif c in "]}":
                    if stack:
                        stack.pop()
                    if not stack:
                        return i + 1
                elif c == ",":
                    if stack and stack[-1][0] == "[":
                        stack[-1][3] = True
                elif not c.isspace():
                    element()
                pos += 1
            if not stack:
                return i + 1
            i += 1
            if i >= len(lines):
                return i
            s, pos = lines[i], 0

    def line(self, path: Sequence[Any]) -> int | None:
        """The line of ``path`` or of its longest known prefix (None if nothing matches)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return None


# ================================================================ the scenario

@dataclass(frozen=True)
class EventSpec:
    """One validated event of the timeline (numbers exact, money in smallest units)."""

    index: int
    line: int | None
    time_ms: int
    type: str
    instrument: str = ""
    price: Fraction | None = None
    bids: tuple[tuple[Fraction, Fraction], ...] = ()
    asks: tuple[tuple[Fraction, Fraction], ...] = ()
    fund: str = ""
    amount: int = 0


@dataclass(frozen=True)
class Scenario:
    source: str
    name: str
    description: str
    profile: Any
    start_ms: int
    fund_balances: dict[str, int]
    accounts: tuple[Account, ...]
    marks: dict[str, Fraction]
    books: dict[str, tuple[tuple[tuple[Fraction, Fraction], ...], tuple[tuple[Fraction, Fraction], ...]]]
    events: tuple[EventSpec, ...]
    source_map: SourceMap | None = field(default=None, compare=False, repr=False)

    def where(self, index: int, key: str = "") -> str:
        """``FILE:LINE: events[i]`` (or ``events[i].key`` at the key's line) for messages about one event."""
        path: tuple[Any, ...] = ("events", index) + ((key,) if key else ())
        line = self.source_map.line(path) if self.source_map else self.events[index].line
        return f"{self.source}:{line}: {dotted(path)}" if line else f"{self.source}: {dotted(path)}"


class _Loader:
    def __init__(self, text: str, source: str, base_dir: Path | None, data: dict[str, Any] | None = None,
                 profile: Any = None) -> None:
        self.source, self.base_dir = source, base_dir
        self.map = SourceMap(text)
        self.given_profile = profile
        if data is not None:  # already parsed (an eval request's scenario): no line numbers
            self.data = data
            return
        try:
            self.data = tomllib.loads(text, parse_float=RD.TomlFloat)
        except tomllib.TOMLDecodeError as e:
            m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
            where = f"{source}:{m.group(1)}" if m else source
            raise InvalidInput(where, None, f"not valid TOML: {e}") from None
        except RecursionError:
            raise InvalidInput(source, None, "nested too deeply to read (the input bound, README \"Input bounds\")") from None
        except ValueError:  # an integer literal beyond Python's int-string limit
            raise InvalidInput(source, None, "an integer with more digits than can be read (the input bound, "
                               "README \"Input bounds\")") from None

    # -------------------------------------------------- errors

    def loc(self, path: Sequence[Any]) -> str:
        line = self.map.line(path)
        head = f"{self.source}:{line}" if line else self.source
        return f"{head}: {dotted(path)}" if path else head

    def fail(self, path: Sequence[Any], value: Any, reason: str, rule: str = "", cls: type = InvalidInput) -> None:
        raise cls(self.loc(path), value, reason, rule)

    def relocate(self, path: Sequence[Any], e: InvalidInput) -> InvalidInput:
        """An error raised by a value type (its field is a local name): put it at ``path``."""
        return type(e)(self.loc(path), e.value, e.reason, e.rule)

    # -------------------------------------------------- readers
    #
    # Every value is converted by the exact input layer (backstop.reference.read), shared with eval
    # requests and profiles; :meth:`read` only puts the file and line in front of the field it names.
    # The one convention of the scenario format: a bare money amount is in coins (``"600"`` USDT).

    def read(self, path: Path_, convert: Any, v: Any, *args: Any, **kw: Any) -> Any:
        """``convert(dotted(path), v, *args, **kw)``; a refusal is put at its field's line.  The
        layer names the field it is given or one key below it (``margin.currency``)."""
        base = dotted(path)
        try:
            return convert(base, v, *args, **kw)
        except InvalidInput as e:
            below = e.field[len(base):].removeprefix(".") if e.field.startswith(base) else ""
            where = path + ((below,) if below else ())
            raise type(e)(self.loc(where), e.value, e.reason, e.rule) from None

    def table(self, path: Path_, v: Any, allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Any]:
        self.read(path, RD.mapping, v)
        self.read(path, RD.check_keys, v, allowed, required)
        return v  # type: ignore[no-any-return]  # a table: RD.mapping checked it

    def string(self, path: Path_, v: Any) -> str:
        return self.read(path, RD.string, v)  # type: ignore[no-any-return]  # the input layer's converter (Any) returns this type

    def number(self, path: Path_, v: Any, rule: str = "", *, positive: bool = False, nonnegative: bool = False) -> Fraction:
        return self.read(path, RD.number, v, rule, positive=positive, nonnegative=nonnegative)  # type: ignore[no-any-return]  # the input layer's converter (Any) returns this type

    def money(self, path: Path_, v: Any, currency: str, rule: str = "") -> int:
        """A non-negative amount of ``currency`` as smallest units: bare, in coins (``"1500.25"`` USDT),
        or in any form of the input layer (``"1500.25 USDT"``, ``{ units = 1500250000, currency = "USDT" }``)."""
        return self.read(path, RD.amount, v, self.profile.currencies[currency], rule, bare="coins")  # type: ignore[no-any-return]  # the input layer's converter (Any) returns this type

    def time(self, path: Path_, v: Any) -> int:
        """ms since the epoch (UTC): an integer, an ISO-8601 string with a zone, or a TOML datetime."""
        return self.read(path, RD.time_ms, v)  # type: ignore[no-any-return]  # the input layer's converter (Any) returns this type

    def instrument(self, path: Path_, v: Any) -> Any:
        iid = self.string(path, v)
        try:
            return self.profile.instrument(iid, dotted(path))
        except InvalidInput as e:
            raise self.relocate(path, e) from None

    def fund(self, path: Path_, v: Any) -> str:
        text = self.string(path, v)
        try:
            key = FundKey.parse(text)
        except InvalidInput as e:
            raise self.relocate(path, e) from None
        if key in self.funds:
            return key.id
        same = [k for k in self.funds if (k.business_line, k.underlying) == (key.business_line, key.underlying)]
        if same:
            self.fail(path, text, f"the {key.underlying} fund holds {same[0].currency}, not {key.currency} "
                                  f"(its id is {same[0].id})", "INS-001", CurrencyMismatch)
        known = ", ".join(k.id for k in sorted(self.funds))
        self.fail(path, text, f"no instrument of profile {self.profile.name!r} is backed by this fund (funds: {known})",
                  "INS-001")
        raise AssertionError

    def levels(self, path: Path_, v: Any, inst: Any, side: str) -> tuple[tuple[Fraction, Fraction], ...]:
        if not isinstance(v, list):
            self.fail(path, v, "a list of [price, size] levels, best first, such as [[\"29990\", \"5\"], [\"29980\", \"10\"]]")
        out: list[tuple[Fraction, Fraction]] = []
        for n, lv in enumerate(v):
            p = path + (n,)
            if not isinstance(lv, list) or len(lv) != 2:
                self.fail(p, lv, "a level is [price, size] (price per base unit, size in contracts)")
            price = self.number(p + (0,), lv[0], "ENG-001", positive=True)
            size = self.number(p + (1,), lv[1], "ENG-001", positive=True)
            if (price / inst.tick_size).denominator != 1:
                self.fail(p + (0,), lv[0], f"must be on the tick grid of {inst.id} ({format_exact(inst.tick_size)})", "ENG-001")
            if (size / inst.lot_size).denominator != 1:
                self.fail(p + (1,), lv[1], f"must be a multiple of the lot size of {inst.id} ({format_exact(inst.lot_size)})", "ENG-001")
            if out:
                prev = out[-1][0]
                worse = price < prev if side == "bids" else price > prev
                if not worse:
                    order = "descending (best bid first)" if side == "bids" else "ascending (best ask first)"
                    self.fail(p + (0,), lv[0], f"{side} must be strictly {order}; previous level {format_exact(prev)}", "ENG-001")
            out.append((price, size))
        return tuple(out)

    def book(self, path: Path_, raw: dict[str, Any], inst: Any, keys: Sequence[str]) -> tuple[Any, Any]:
        bids = self.levels(path + ("bids",), raw.get("bids", []), inst, "bids")
        asks = self.levels(path + ("asks",), raw.get("asks", []), inst, "asks")
        if bids and asks and bids[0][0] >= asks[0][0]:
            self.fail(path + ("asks", 0, 0), format_exact(asks[0][0]),
                      f"crossed book: the best ask must be above the best bid {format_exact(bids[0][0])}", "TRN-007")
        return bids, asks

    # -------------------------------------------------- the file

    def load(self) -> Scenario:
        from backstop.reference import margin as M
        from backstop.reference.errors import ProfileError
        from backstop.reference.profile import load_profile

        given = self.given_profile
        d = self.table((), self.data, _TOP_KEYS, ("start", "events") if given is not None else ("profile", "start", "events"))
        name = self.string(("name",), d["name"]) if "name" in d else ""
        desc = self.string(("description",), d["description"]) if "description" in d else ""
        if given is not None:
            if "profile" in d and self.string(("profile",), d["profile"]) != given.name:
                self.fail(("profile",), d["profile"], f"the request's profile is {given.name!r}")
            self.profile = given
        else:
            prof = self.string(("profile",), d["profile"])
            target: Any = prof
            if prof.endswith(".toml") and self.base_dir is not None and not Path(prof).is_absolute():
                cand = self.base_dir / prof
                target = cand if cand.exists() else prof
            try:
                self.profile = load_profile(target)
            except ProfileError as e:
                if e.field == "profile":
                    raise ProfileError(self.loc(("profile",)), e.value, e.reason, e.rule) from None
                raise
            except OSError as e:
                self.fail(("profile",), prof, f"cannot read: {e.strerror or e}")
        self.funds = {fund_key_of(i) for i in self.profile.instruments.values()}
        start = self.time(("start",), d["start"])

        funds: dict[str, int] = {}
        raw_funds = d.get("funds", {})
        self.read(("funds",), RD.mapping, raw_funds, "a table from fund id to opening balance (in coins)")
        for fid, amt in raw_funds.items():
            key = self.fund(("funds", fid), fid)
            funds[key] = self.money(("funds", fid), amt, FundKey.parse(key).currency, "INS-006")

        marks: dict[str, Fraction] = {}
        raw_marks = d.get("marks", {})
        self.read(("marks",), RD.mapping, raw_marks, "a table from instrument id to mark price")
        for iid, v in raw_marks.items():
            self.instrument(("marks", iid), iid)
            marks[iid] = self.number(("marks", iid), v, "MRG-002", positive=True)

        books: dict[str, Any] = {}
        raw_books = d.get("books", {})
        self.read(("books",), RD.mapping, raw_books, "a table of order books, one [books.INSTRUMENT] per instrument")
        for iid, b in raw_books.items():
            inst = self.instrument(("books", iid), iid)
            self.table(("books", iid), b, _BOOK_KEYS)
            books[iid] = self.book(("books", iid), b, inst, _BOOK_KEYS)

        accounts: list[Account] = []
        raw_accounts = d.get("accounts", [])
        if not isinstance(raw_accounts, list):
            self.fail(("accounts",), raw_accounts, "an array of tables: [[accounts]]")
        seen: set[str] = set()
        for n, a in enumerate(raw_accounts):
            ap = ("accounts", n)
            self.table(ap, a, _ACCOUNT_KEYS, ("id",))
            aid = self.string(ap + ("id",), a["id"])
            if aid in seen:
                self.fail(ap + ("id",), aid, "account id given twice")
            seen.add(aid)
            bal_raw = a.get("balances", {})
            self.read(ap + ("balances",), RD.mapping, bal_raw, "a table from currency to amount (in coins), such as { USDT = \"1000\" }")
            balances = []
            for code, amt in bal_raw.items():
                if code not in self.profile.currencies:
                    self.fail(ap + ("balances", code), code,
                              f"currency {code} is not defined by profile {self.profile.name!r} "
                              f"(currencies: {', '.join(sorted(self.profile.currencies))})", "MRG-003", CurrencyMismatch)
                balances.append((code, self.money(ap + ("balances", code), amt, code, "MRG-003")))
            positions = []
            raw_pos = a.get("positions", [])
            if not isinstance(raw_pos, list):
                self.fail(ap + ("positions",), raw_pos, "an array of tables: [[accounts.positions]]")
            keys: set[tuple[str, str]] = set()
            for m, p in enumerate(raw_pos):
                pp = ap + ("positions", m)
                self.table(pp, p, _POSITION_KEYS, ("instrument", "side", "size", "entry_price"))
                inst = self.instrument(pp + ("instrument",), p["instrument"])
                side_s = self.read(pp + ("side",), RD.choice, p["side"], Side).value
                mode_s = self.read(pp + ("margin_mode",), RD.choice, p.get("margin_mode", "isolated"), MarginMode).value
                size = self.number(pp + ("size",), p["size"], "MRG-001", positive=True)
                if (size / inst.lot_size).denominator != 1:
                    self.fail(pp + ("size",), p["size"], f"must be a multiple of the lot size {format_exact(inst.lot_size)}", "MRG-001")
                entry = self.number(pp + ("entry_price",), p["entry_price"], "MRG-002", positive=True)
                ccy = inst.settle_currency.code
                if mode_s == "isolated":
                    if "margin" not in p:
                        self.fail(pp + ("margin",), None, f"is required for an isolated position (in {ccy})")
                    margin = self.money(pp + ("margin",), p["margin"], ccy, "MRG-003")
                else:
                    if "margin" in p:
                        self.fail(pp + ("margin",), p["margin"],
                                  f"a cross position has no margin of its own: it shares the account's {ccy} balance", "LIQ-008")
                    margin = 0
                if (inst.id, side_s) in keys:
                    self.fail(pp, inst.id, "one position per instrument and side")
                keys.add((inst.id, side_s))
                if inst.id not in marks:
                    self.fail(("marks",), None, f"a mark price for {inst.id} is required ({dotted(pp)} is on it)", "MRG-002")
                for label, price in (("entry price", entry), ("mark price", marks[inst.id])):
                    if not M.is_within_tiers(inst, size, price):
                        self.fail(pp + ("size",), p["size"], f"above the last tier's cap of table "
                                  f"{inst.tier_table.name!r} at the {label}", "MRG-004", OutOfTierRange)
                try:
                    positions.append(Position(inst.id, Side(side_s), size, entry, MarginMode(mode_s), margin))
                except InvalidInput as e:
                    raise self.relocate(pp, e) from None
            try:
                accounts.append(Account(aid, tuple(sorted(balances)), tuple(positions)))
            except InvalidInput as e:
                raise self.relocate(ap, e) from None

        events: list[EventSpec] = []
        raw_events = d["events"]
        if not isinstance(raw_events, list):
            self.fail(("events",), raw_events, "an array of tables: [[events]]")
        last = start
        for n, ev in enumerate(raw_events):
            ep = ("events", n)
            self.read(ep, RD.mapping, ev, "a table")
            if "type" not in ev:
                self.fail(ep + ("type",), None, f"is required (one of {', '.join(EVENT_TYPES)})")
            typ = self.string(ep + ("type",), ev["type"])
            if typ not in EVENT_TYPES:
                self.fail(ep + ("type",), typ, f"unknown event type; one of {', '.join(EVENT_TYPES)}")
            req, opt = EVENT_TYPES[typ]
            self.table(ep, ev, ("time", "type") + req + opt, ("time",) + req)
            t = self.time(ep + ("time",), ev["time"])
            if t < last:
                prev = f"events[{n - 1}]" if n else "start"
                self.fail(ep + ("time",), ev["time"], f"events must be in time order: earlier than {prev} "
                          f"({t} ms < {last} ms)", "INS-009")
            last = t
            line = self.map.line(ep)
            if typ == "mark":
                inst = self.instrument(ep + ("instrument",), ev["instrument"])
                price = self.number(ep + ("price",), ev["price"], "MRG-002", positive=True)
                events.append(EventSpec(n, line, t, typ, instrument=inst.id, price=price))
            elif typ == "book":
                inst = self.instrument(ep + ("instrument",), ev["instrument"])
                bids, asks = self.book(ep, ev, inst, _BOOK_KEYS)
                events.append(EventSpec(n, line, t, typ, instrument=inst.id, bids=bids, asks=asks))
            elif typ in ("top_up", "withdraw"):
                fid = self.fund(ep + ("fund",), ev["fund"])
                amt = self.money(ep + ("amount",), ev["amount"], FundKey.parse(fid).currency,
                                 "INS-006" if typ == "top_up" else "INS-007")
                if amt <= 0:
                    self.fail(ep + ("amount",), ev["amount"], "must be > 0", "INS-006" if typ == "top_up" else "INS-007")
                events.append(EventSpec(n, line, t, typ, fund=fid, amount=amt))
            else:
                events.append(EventSpec(n, line, t, typ))
        return Scenario(self.source, name, desc, self.profile, start, funds, tuple(accounts), marks, books,
                        tuple(events), self.map)


def load_scenario_text(text: str, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario's TOML text; raises :class:`InvalidInput` naming ``source:line: field``."""
    return _Loader(text, source, base_dir).load()


def load_scenario_data(data: Any, source: str, profile: Any) -> Scenario:
    """Validate a scenario given as parsed data (the ``scenario`` of an eval ``transition`` request)
    on ``profile``, with the checks of a scenario file; errors name ``source: field``."""
    if not isinstance(data, dict):
        raise InvalidInput(source, data, "a scenario: an object with start, accounts, marks, books, funds and events")
    return _Loader("", source, None, data=data, profile=profile).load()


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidInput(str(path), str(path), f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InvalidInput(str(path), str(path), "not UTF-8 text") from None
    return load_scenario_text(text, str(path), p.parent)


# ================================================================ running it

def _step() -> ModuleType:
    from backstop.reference import step as S
    return S


def _book(levels: tuple[Any, Any]) -> Any:
    from backstop.reference.engine import Level
    S = _step()
    bids, asks = levels
    return S.Book(tuple(Level(p, q) for p, q in bids), tuple(Level(p, q) for p, q in asks))


def initial_state(scn: Scenario) -> Any:
    S = _step()
    books = {iid: _book(b) for iid, b in sorted(scn.books.items())}
    return S.initial_state(scn.profile, scn.accounts, dict(sorted(scn.marks.items())), books,
                           dict(sorted(scn.fund_balances.items())), scn.start_ms)


def step_event(ev: EventSpec) -> Any:
    """The step function's event for one validated :class:`EventSpec`."""
    S = _step()
    from backstop.reference.engine import Level
    if ev.type == "mark":
        return S.MarkEvent(ev.time_ms, ev.instrument, ev.price)
    if ev.type == "book":
        return S.BookEvent(ev.time_ms, ev.instrument, tuple(Level(p, q) for p, q in ev.bids),
                           tuple(Level(p, q) for p, q in ev.asks))
    if ev.type == "top_up":
        return S.TopUpEvent(ev.time_ms, ev.fund, ev.amount)
    if ev.type == "withdraw":
        return S.WithdrawEvent(ev.time_ms, ev.fund, ev.amount)
    return S.SettleEvent(ev.time_ms)


@dataclass
class RunResult:
    scenario: Scenario
    initial: Any
    state: Any
    initial_records: tuple[Record, ...]
    records: list[Record] = field(default_factory=list)   # every record, initial ones first
    record_event: list[int] = field(default_factory=list)  # per record: the event index (-1: initial state)
    processed: int = 0
    seconds: float = 0.0
    violation: str = ""            # the first invariant violation (with --check)
    violation_event: int = -1


def _initial_records(state: Any) -> tuple[Record, ...]:
    for name in ("records",):
        recs = getattr(state, name, None)
        if recs:
            return tuple(recs)
    funds = getattr(state, "funds", None)
    return tuple(getattr(funds, "records", ()) or ())


def run_scenario(scn: Scenario, check: bool = False) -> RunResult:
    """Run every event; with ``check``, stop at the first invariant violation.  Refused events
    raise :class:`InvalidInput` naming ``FILE:LINE: events[i].field``."""
    S = _step()
    t0 = time.perf_counter()
    try:
        state = initial_state(scn)
    except InvalidInput as e:
        raise type(e)(f"{scn.source}: initial state: {e.field}", e.value, e.reason, e.rule) from None
    init = _initial_records(state)
    res = RunResult(scn, state, state, init, list(init), [-1] * len(init))
    for ev in scn.events:
        before = state
        try:
            state, recs = S.process_event(state, step_event(ev))
        except InvalidInput as e:
            key = e.field[len("event."):] if e.field.startswith("event.") else e.field
            key = {"time_ms": "time", "amount_units": "amount"}.get(key, key)
            if key in EVENT_TYPES[ev.type][0] + EVENT_TYPES[ev.type][1] + ("time",):
                raise type(e)(scn.where(ev.index, key), e.value, e.reason, e.rule) from None
            raise type(e)(f"{scn.where(ev.index)}: {e.field}", e.value, e.reason, e.rule) from None
        res.records.extend(recs)
        res.record_event.extend([ev.index] * len(recs))
        res.processed += 1
        res.state = state
        if check:
            bad = S.check_invariants(before, state, recs)
            if bad:
                res.violation, res.violation_event = bad[0], ev.index
                break
    res.seconds = time.perf_counter() - t0
    return res


# ================================================================ outputs

def _json_line(rec: Record) -> str:
    return _json_obj_line(rec.to_json())


def _json_obj_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


TRACE_FORMAT = "backstop-trace/1"


def _trace_levels(levels: Any) -> list[list[str]]:
    return [[format_exact(p), format_exact(q)] for p, q in levels]


def _trace_input(ev: EventSpec) -> dict[str, Any]:
    """One event of the timeline as a ``trace.jsonl`` input line (money in smallest units)."""
    d: dict[str, Any] = {"kind": "input", "type": ev.type, "time_ms": ev.time_ms}
    if ev.type == "mark":
        d.update(instrument=ev.instrument, price=format_exact(ev.price))
    elif ev.type == "book":
        d.update(instrument=ev.instrument, bids=_trace_levels(ev.bids), asks=_trace_levels(ev.asks))
    elif ev.type in ("top_up", "withdraw"):
        d.update(fund=ev.fund, amount=str(ev.amount))
    return d


EVENTS_FORMAT = "backstop-events/1"


def log_header(res: RunResult, fmt: str) -> dict[str, Any]:
    """The first line of ``events.jsonl`` and ``trace.jsonl``: the format, the profile and its
    currencies' decimals (``backstop fund-history`` and ``check-trace`` refuse a log read with a
    profile of other decimals)."""
    scn = res.scenario
    header: dict[str, Any] = {"kind": "log", "format": fmt, "time_ms": scn.start_ms, "profile": scn.profile.name,
                              "currencies": {c: cur.decimals for c, cur in sorted(scn.profile.currencies.items())}}
    if scn.name:
        header["scenario"] = scn.name
    return header


def trace_lines(res: RunResult) -> list[dict[str, Any]]:
    """The run as a venue-neutral trace (``spec/schema/trace.schema.json``, read by
    ``backstop check-trace``): a header (format, profile, currencies' decimals), the opening state
    as an input, its records, then each event as an input followed by its records.  The record
    lines are exactly those of ``events.jsonl``."""
    scn = res.scenario
    header = log_header(res, TRACE_FORMAT)
    accounts = []
    for a in scn.accounts:
        accounts.append({"id": a.id, "balances": {c: str(u) for c, u in a.balances},
                         "positions": [{"instrument": p.instrument, "side": p.side.value, "size": format_exact(p.size),
                                        "entry_price": format_exact(p.entry_price), "margin_mode": p.margin_mode.value,
                                        "margin": str(p.margin)} for p in a.positions]})
    state = {"kind": "input", "type": "state", "time_ms": scn.start_ms, "accounts": accounts,
             "marks": {i: format_exact(m) for i, m in sorted(scn.marks.items())},
             "books": {i: {"bids": _trace_levels(b[0]), "asks": _trace_levels(b[1])} for i, b in sorted(scn.books.items())},
             "funds": {f: str(u) for f, u in sorted(scn.fund_balances.items())}}
    out = [header, state]
    by_event: dict[int, list[Record]] = {}
    for rec, ev in zip(res.records, res.record_event):
        by_event.setdefault(ev, []).append(rec)
    out.extend(r.to_json() for r in by_event.get(-1, []))
    for event in scn.events[:res.processed]:
        out.append(_trace_input(event))
        out.extend(r.to_json() for r in by_event.get(event.index, []))
    return out


def _kind_counts(records: Sequence[Record]) -> dict[str, int]:
    return dict(sorted(Counter(r.kind for r in records).items()))


def is_liquidation(rec: Record) -> bool:
    """A record of a liquidation action on a position (a partial step or a full takeover), not a
    trigger check nor a fund movement (``liquidation surplus``/``deficit``/``fee``)."""
    return rec.kind in LIQUIDATION_KINDS


def fund_ids_of(res: RunResult) -> list[str]:
    ids = {k.id for k in res.state.funds.funds}
    return sorted(ids)


def fund_points(res: RunResult, fund: str, view: str | None = None) -> tuple[Any, ...]:
    from backstop.reference import fundbook
    return fundbook.balance_history(res.state.funds, fund, view)


def _active_funds(res: RunResult) -> list[str]:
    """Funds that hold money or had any movement (the others stay out of the CSVs and the chart)."""
    out = []
    for fid in fund_ids_of(res):
        if any(r.fund == fid for r in res.records) or any(p.balance for p in fund_points(res, fid)):
            out.append(fid)
    return out


def summary(res: RunResult) -> dict[str, Any]:
    from backstop.reference import fundbook
    scn, st = res.scenario, res.state
    funds = {}
    for fid in _active_funds(res):
        key = FundKey.parse(fid)
        dec = scn.profile.currencies[key.currency].decimals
        pts = fund_points(res, fid, "settled_plus_pending")
        funds[fid] = {
            "currency": key.currency,
            "opening": format_exact(Fraction(scn.fund_balances.get(fid, 0), 10 ** dec)),
            "settled": format_exact(Fraction(fundbook.settled_balance(st.funds, fid), 10 ** dec)),
            "available": format_exact(Fraction(fundbook.available_balance(st.funds, fid, "settled_plus_pending"), 10 ** dec)),
            "lowest_available": format_exact(Fraction(min((p.balance for p in pts), default=0), 10 ** dec)),
            "highest_available": format_exact(Fraction(max((p.balance for p in pts), default=0), 10 ** dec)),
        }
    return {
        "events": res.processed,
        "records": len(res.records),
        "liquidations": sum(1 for r in res.records if is_liquidation(r)),
        "partial_liquidations": sum(1 for r in res.records if r.kind == "partial liquidation"),
        "full_liquidations": sum(1 for r in res.records if r.kind == "full liquidation"),
        "adl_fills": sum(1 for r in res.records if r.kind == "adl"),
        "records_by_kind": _kind_counts(res.records),
        "funds": funds,
    }


def final_state_json(res: RunResult) -> dict[str, Any]:
    S = _step()
    scn = res.scenario
    return {
        "scenario": scn.name,
        "profile": scn.profile.name,
        "start_ms": scn.start_ms,
        "end_ms": scn.events[res.processed - 1].time_ms if res.processed else scn.start_ms,
        "summary": summary(res),
        "state": S.state_json(res.state),
    }


def fund_csv(res: RunResult, fid: str) -> str:
    from backstop import history as H
    profile = res.scenario.profile
    dec = profile.currencies[FundKey.parse(fid).currency].decimals
    return H.history_csv(H.fund_history(res.records, fid, profile.fund, dec))


def write_outputs(res: RunResult, out: str | Path) -> list[Path]:
    """Write every output file into ``out``; returns their paths in writing order."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, str]] = [
        ("events.jsonl", _json_obj_line(log_header(res, EVENTS_FORMAT)) + "\n"
         + "".join(_json_line(r) + "\n" for r in res.records)),
        ("trace.jsonl", "".join(_json_obj_line(d) + "\n" for d in trace_lines(res))),
        ("final_state.json", json.dumps(final_state_json(res), indent=2, ensure_ascii=False) + "\n"),
    ]
    for fid in _active_funds(res):
        files.append((f"fund_{fid.replace('/', '_')}.csv", fund_csv(res, fid)))
    files.append(("chart.svg", chart_svg(res)))
    paths = []
    for name, text in files:
        p = out / name
        p.write_bytes(text.encode("utf-8"))
        paths.append(p)
    return paths


# ================================================================ the chart

def _by_time(records: Any) -> list[tuple[int, list[Record]]]:
    """Records grouped by time, in time order (records at one instant keep their order)."""
    groups: dict[int, list[Record]] = {}
    for r in records:
        groups.setdefault(r.time_ms, []).append(r)
    return sorted(groups.items())


def _value_at(points: Sequence[tuple[int, Fraction]], t: int) -> Fraction:
    """The value of a step series in force at ``t`` (the last point at or before it)."""
    cur = points[0][1]
    for tt, v in points:
        if tt <= t:
            cur = v
    return cur


def _values_at(points: Sequence[tuple[int, Fraction]], times: Sequence[int]) -> list[Fraction]:
    """:func:`_value_at` of each of ``times``: by bisection when the series is in time order (a
    mark path, a fund's history), point by point otherwise."""
    ts = [tt for tt, _ in points]
    if any(a > b for a, b in zip(ts, ts[1:])):
        return [_value_at(points, t) for t in times]
    out = []
    for t in times:
        k = bisect.bisect_right(ts, t) - 1   # the last point at or before t
        out.append(points[k][1] if k >= 0 else points[0][1])
    return out


def chart_svg(res: RunResult, width: int = 960) -> str:
    """The run as an SVG chart (``backstop.charts``, matplotlib): stacked panels on one UTC time
    axis -- one per instrument with its mark path (liquidation steps as open circles at the mark,
    ADL fills as red triangles above it), then one per fund (available balance solid, settled
    dashed, the ADL-001 drawdown threshold of the balance the trigger reads as a red dashed line,
    the time the trigger held shaded, and the same liquidation / ADL markers).  Exact values are
    converted to float only inside ``backstop.charts``; the same run always gives the same bytes."""
    from backstop import charts as C
    scn = res.scenario
    profile = scn.profile
    t0 = scn.start_ms
    t1 = max([t0] + [ev.time_ms for ev in scn.events[:res.processed]])
    paths: dict[str, list[tuple[int, Fraction]]] = {iid: [(t0, p)] for iid, p in sorted(scn.marks.items())}
    for ev in scn.events[:res.processed]:
        if ev.type == "mark":
            paths.setdefault(ev.instrument, []).append((ev.time_ms, ev.price))  # type: ignore[arg-type]  # a mark event has a price
    adl = [r for r in res.records if r.kind == "adl"]
    liqs = [r for r in res.records if is_liquidation(r)]

    def fund_of(r: Record) -> str:
        return r.fund or fund_key_of(profile.instrument(r.instrument)).id

    def markers(recs: list[Record], values: Sequence[tuple[int, Fraction]]) -> tuple[Any, Any]:
        lq = [r for r in recs if is_liquidation(r)]
        ad = [r for r in recs if r.kind == "adl"]
        g_lq, g_ad = _by_time(lq), _by_time(ad)
        v_lq, v_ad = _values_at(values, [t for t, _ in g_lq]), _values_at(values, [t for t, _ in g_ad])
        n_lq = tuple((t, v, len(g)) for (t, g), v in zip(g_lq, v_lq))
        n_ad = tuple((t, v, len(g)) for (t, g), v in zip(g_ad, v_ad))
        size = sum((Fraction(r.get("reduced_size", 0)) for r in ad), Fraction(0))
        return (C.Events(C.LIQUIDATION, f"liquidation steps: {len(lq)}", n_lq),
                C.Events(C.ADL, f"ADL fills: {len(ad)} ({format_exact(size)} contracts)", n_ad))

    panels = []
    for iid, pts in paths.items():
        inst = profile.instruments.get(iid)
        base, _, quote = (inst.underlying if inst else iid).partition("-")
        unit = f"{quote} per {base}" if quote else base
        recs = [r for r in liqs + adl if r.instrument == iid]
        recs.sort(key=lambda r: r.time_ms)
        panels.append(C.Panel(f"mark price {iid}", f"mark price ({unit})", (C.Line("mark price", tuple(pts)),),
                              markers(recs, pts)))
    view = profile.adl.balance_view.value
    for fid in _active_funds(res):
        key = FundKey.parse(fid)
        dec = profile.currencies[key.currency].decimals
        scale = Fraction(1, 10 ** dec)

        def coins(points: Sequence[Any]) -> tuple[tuple[int, Fraction], ...]:
            out = [(p.time_ms, p.balance * scale) for p in points] or [(t0, Fraction(0))]
            if out[0][0] > t0:
                out.insert(0, (t0, Fraction(0)))
            return tuple(out)

        avail = coins(fund_points(res, fid, "settled_plus_pending"))
        settled = coins(fund_points(res, fid, "settled"))
        lines = [C.Line("available (settled + pending)", avail), C.Line("settled", settled, dashed=True)]
        a = profile.adl
        thr = C.drawdown_threshold(a, fund_points(res, fid), t0, t1)
        span_label = ""
        if thr.points:
            ref = getattr(a.drawdown_reference, "value", str(a.drawdown_reference))
            lines.append(C.Line(f"ADL-001 threshold: (1 \u2212 {C.percent(a.drawdown_fraction)}) \u00d7 "
                                f"{C.duration(a.drawdown_window_seconds)} {ref} of {view.replace('_', ' ')}",
                                tuple((t, v * scale) for t, v in thr.points), step=thr.step, threshold=True))
            span_label = "ADL-001 drawdown trigger held"
        recs = sorted((r for r in liqs + adl if fund_of(r) == fid), key=lambda r: r.time_ms)
        fired = [r for r in res.records if r.kind == "adl trigger" and r.fund == fid]
        note = f"ADL reads the {view.replace('_', ' ')} balance"
        if fired:
            a_n = sum(1 for r in fired if r.get("uncovered", 0))
            b_n = sum(1 for r in fired if r.get("drawdown"))
            note += f"\nADL fired {len(fired)}\u00d7: fund insufficient (ADL-002) {a_n}, drawdown (ADL-001) {b_n}"
        panels.append(C.Panel(f"insurance fund {fid}", f"balance ({key.currency})", tuple(lines),
                              markers(recs, avail), thr.held, span_label, decimals=min(dec, 4), note=note))
    fr = profile.fund
    local = fr.settlement_time_seconds
    utc = (local - fr.utc_offset_minutes * 60) % 86400
    off = fr.utc_offset_minutes
    xnote = (f"daily fund settlement {local // 3600:02d}:{local % 3600 // 60:02d} UTC{'+' if off >= 0 else '-'}"
             f"{abs(off) // 60:02d}:{abs(off) % 60:02d} = {utc // 3600:02d}:{utc % 3600 // 60:02d} UTC")
    title = f"{scn.name or 'scenario'} (profile {profile.name})"
    subtitle = (f"{res.processed} events, {len(liqs)} liquidation step(s), {len(adl)} ADL fill(s)")
    return C.render_svg(title, subtitle, panels, t0, t1, width=width, xnote=xnote)


# ================================================================ command line

def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``backstop simulate`` to an argparse subparsers object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate", help="run a scenario file end to end (event log, final state, fund history, chart)",
        description="Run a scenario (TOML; see examples/README.md) through the reference step function and "
                    "write DIR/events.jsonl, DIR/trace.jsonl, DIR/final_state.json, DIR/fund_<id>.csv and DIR/chart.svg.")
    p.add_argument("file", metavar="FILE", help="scenario file (TOML)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--check", action="store_true",
                   help="check every invariant after every event; exit 1 naming the first violation")
    p.add_argument("--quiet", action="store_true", help="print only the last line (or the violation)")
    p.set_defaults(func=cmd_simulate)
    return p


def _print_summary(res: RunResult, paths: list[Path], out: Any) -> None:
    s = summary(res)
    scn = res.scenario
    print(f"scenario {scn.name or scn.source} (profile {scn.profile.name}): {s['events']} events, "
          f"{s['records']} records", file=out)
    print(f"  liquidations: {s['liquidations']} ({s['partial_liquidations']} partial steps, "
          f"{s['full_liquidations']} full)   ADL fills: {s['adl_fills']}", file=out)
    kinds = ", ".join(f"{k} {v}" for k, v in s["records_by_kind"].items())
    print(f"  records by kind: {kinds}", file=out)
    for fid, f in s["funds"].items():
        print(f"  fund {fid}: opening {f['opening']}, final {f['available']} {f['currency']} available "
              f"({f['settled']} settled), lowest {f['lowest_available']}, highest {f['highest_available']}", file=out)
    print(f"  wrote {', '.join(str(p) for p in paths)}", file=out)


def cmd_simulate(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    scn = load_scenario(args.file)
    res = run_scenario(scn, check=args.check)
    paths = write_outputs(res, args.out)
    rate = res.processed / res.seconds if res.seconds > 0 else 0.0
    if not args.quiet:
        _print_summary(res, paths, out)
    if res.violation:
        print(f"error: {scn.where(res.violation_event)} (type {scn.events[res.violation_event].type}): "
              f"invariant violated: {res.violation}", file=sys.stderr)
        return EXIT_FAIL
    checked = ", every invariant checked after every event" if args.check else ""
    print(f"simulated {res.processed} events in {res.seconds:.3f} s ({rate:,.0f} events/s){checked}", file=out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m backstop.simulate FILE --out DIR [--check] [--quiet]``."""
    ap = argparse.ArgumentParser(prog="backstop")
    sub = ap.add_subparsers(dest="command")
    register_cli(sub)
    args = ap.parse_args(["simulate", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)  # the command's exit status (argparse's Namespace is untyped)
        return code
    except BackstopError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
