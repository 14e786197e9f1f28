"""The scenario loader of ``backstop simulate`` (and of the eval ``transition`` request).

A scenario (TOML, documented in ``examples/README.md``) names a venue profile, a start time, the
insurance funds' opening balances, accounts with balances and positions, the opening mark prices
and order books, and a timeline of events (mark prices, book replacements, fund top-ups and
withdrawals, daily settlements).  :func:`load_scenario` validates the whole file before anything
runs; a refused file gets one error naming the file, the line and the field path::

    examples/crash.toml:42: events[3].price: must be > 0 (got '-5')

The values are read by the one input layer (``backstop.reference.read``).  Running a loaded
:class:`Scenario` is ``backstop.simulate_run``; the command is ``backstop.simulate``.

Line numbers: ``tomllib`` keeps no positions, so :class:`SourceMap` scans the source text once,
tracking table headers (``[marks]``, ``[[accounts]]``, ``[[accounts.positions]]``, counting each
array-of-tables entry), ``key = value`` lines, and the elements of multi-line arrays (one line per
element, nested arrays too).  A field's line is the line of its longest known path prefix
(``events[3].price`` -> the ``price =`` line of the fourth ``[[events]]``; a missing key -> the
table's header line).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from backstop.reference.errors import CurrencyMismatch, InvalidInput, OutOfTierRange
from backstop.reference.events import FundKey, fund_key_of
from backstop.reference import read as RD
from backstop.reference.types import Account, MarginMode, Position, Side, format_exact

__all__ = ["SourceMap", "Scenario", "EventSpec", "load_scenario", "load_scenario_text", "load_scenario_data",
           "EVENT_TYPES", "dotted"]

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
