"""``backstop eval``: reads a request (a parsed JSON object) into typed, validated values through
the exact input layer (:mod:`backstop.reference.read`, shared with scenario files and profiles), and
runs the operation it names through :mod:`backstop.reference.queries`.

Numbers are exact (JSON strings such as ``"0.005"`` / ``"1/3"``, or JSON integers); JSON floats
are refused naming the field.  Money amounts are smallest units (a whole number: ``1500000000``),
a decimal amount of the currency with its code (``"1500 USDT"``), or the explicit forms
``{"amount": "1500", "currency": "USDT"}`` / ``{"units": 1500000000, "currency": "USDT"}``,
converted exactly: an amount that is not a whole number of smallest units, or in another currency
than the field's, is refused naming the field.  Times are ms since the epoch or ISO-8601 with a
zone.  Positions may also be given in ccxt's unified position structure (``symbol`` such as
``"BTC/USDT:USDT"``, ``side``, ``contracts``, ``entryPrice``, ``collateral``, ``marginMode``;
decimal strings only, amounts in the settlement currency).  Every field is validated before any
rule runs; a refusal raises :class:`~backstop.reference.errors.InvalidInput` naming the field
(``positions[0].size``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Callable

from backstop.jsonio import dump_number
from backstop.reference import read as RD
from backstop.reference import queries as Q
from backstop.reference.errors import CurrencyMismatch, InvalidInput, OutOfTierRange, ProfileError
from backstop.reference.evaluate import Quantity, validate_position
from backstop.reference.events import BalancePoint, FundKey, fund_key_of
from backstop.reference.adl import RankEntry
from backstop.reference.margin import compute_margin_for_leverage, is_within_tiers
from backstop.reference.profile import Profile
from backstop.reference.types import Instrument, MarginMode, Position, PositionTerms, Side, format_exact

__all__ = ["OPERATIONS", "DEFAULT_OPERATION", "evaluate", "request_profile", "parse_amount", "to_response"]

DEFAULT_OPERATION = "margin"


# ---------------------------------------------------------------- small readers
#
# Every converter is the exact input layer's (backstop.reference.read), shared with the scenario
# loader and the profile reader; these wrappers only fix eval's conventions: JSON words in the
# reasons, and a bare money amount in smallest units.



def _obj(field: str, v: Any, what: str) -> dict[str, Any]:
    return RD.mapping(field, v, f"a JSON object ({what})")


def _keys(field: str, obj: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    RD.check_keys(field, obj, allowed, required)


def _str(field: str, v: Any, what: str) -> str:
    return RD.string(field, v, what=what)


def _time(field: str, v: Any, rule: str = "") -> int:
    """A time in ms since the epoch: a JSON integer >= 0, a string of digits, or ISO-8601 with a zone."""
    return RD.time_ms(field, v, rule)


def parse_number(field: str, v: Any, rule: str = "", *, positive: bool = False, nonnegative: bool = False) -> Fraction:
    return RD.number(field, v, rule, positive=positive, nonnegative=nonnegative)


def parse_amount(field: str, v: Any, inst_or_ccy: Any, profile: Profile, rule: str = "", *,
                 nonnegative: bool = True) -> int:
    """A money amount in smallest units of ``inst_or_ccy``'s currency, in any form of the input
    layer (:func:`backstop.reference.read.amount`); a bare number is smallest units."""
    ccy = inst_or_ccy.settle_currency if isinstance(inst_or_ccy, Instrument) else profile.currencies[inst_or_ccy]
    return RD.amount(field, v, ccy, rule, bare="units", nonnegative=nonnegative)


def request_profile(v: Any) -> Profile:
    """The request's ``profile``: a shipped name (default okx) or ``{"toml": "..."}``."""
    from backstop.reference.profile import DEFAULT_PROFILE, load_profile, load_profile_text, profile_names
    if v is None:
        return load_profile(DEFAULT_PROFILE)
    if isinstance(v, str):
        names = profile_names()
        if v not in names:
            raise InvalidInput("profile", v, f"not a shipped profile (shipped: {', '.join(names)}); "
                               "give another venue inline as {\"toml\": \"...\"}")
        return load_profile(v)
    if isinstance(v, dict):
        extra = sorted(set(v) - {"toml"})
        if extra:
            raise InvalidInput(f"profile.{extra[0]}", v[extra[0]], "unknown key (a typo?); the only key is \"toml\"")
        text = v.get("toml")
        if not isinstance(text, str):
            raise InvalidInput("profile.toml", text, "the profile's TOML text, as a JSON string")
        try:
            return load_profile_text(text, "profile.toml")
        except ProfileError as e:
            if e.field == "profile.toml":
                raise
            raise ProfileError(f"profile.toml: {e.field}", e.value, e.reason, e.rule) from None
    raise InvalidInput("profile", v, "a shipped profile name (\"okx\") or {\"toml\": \"...\"}")


def _marks(profile: Profile, req: dict[str, Any]) -> dict[str, Fraction]:
    raw: Any = req.get("mark_prices")
    RD.mapping("mark_prices", raw, "an object from instrument ID to mark price, such as {\"BTC-USDT-SWAP\": \"29000\"}")
    out: dict[str, Fraction] = {}
    for iid, v in raw.items():
        profile.instrument(iid, f"mark_prices.{iid}")
        out[iid] = parse_number(f"mark_prices.{iid}", v, "MRG-002", positive=True)
    return out


def _side(field: str, v: Any) -> Side:
    return RD.choice(field, v, Side)  # type: ignore[no-any-return]  # a member of Side


# ---------------------------------------------------------------- positions (backstop or ccxt shape)

_POSITION_KEYS = ("instrument", "side", "size", "entry_price", "margin_mode", "margin", "leverage")
_CCXT_KEYS = ("symbol", "side", "contracts", "contractSize", "entryPrice", "collateral", "initialMargin",
              "marginMode", "leverage", "info", "id", "timestamp", "datetime", "markPrice", "notional",
              "unrealizedPnl", "liquidationPrice", "marginRatio", "percentage", "maintenanceMargin",
              "maintenanceMarginPercentage", "initialMarginPercentage", "hedged", "lastPrice",
              "lastUpdateTimestamp", "stopLossPrice", "takeProfitPrice", "realizedPnl")


def _ccxt_instrument(profile: Profile, field: str, symbol: Any) -> Instrument:
    """ccxt's unified symbol ``BASE/QUOTE:SETTLE`` (a perpetual swap) mapped to the profile's
    instrument with that underlying and settlement currency."""
    s = _str(field, symbol, "a ccxt unified symbol such as 'BTC/USDT:USDT'")
    m = re.fullmatch(r"([A-Z0-9]+)/([A-Z0-9]+):([A-Z0-9]+)", s)
    if not m:
        raise InvalidInput(field, symbol, "a ccxt unified swap symbol BASE/QUOTE:SETTLE, such as 'BTC/USDT:USDT'")
    base, quote, settle = m.groups()
    hits = [i for i in profile.instruments.values()
            if i.underlying == f"{base}-{quote}" and i.settle_currency.code == settle
            and i.business_line.value == "perpetual_futures"]
    if len(hits) != 1:
        raise InvalidInput(field, symbol, f"no single perpetual of profile {profile.name!r} on {base}-{quote} settled in {settle}")
    return hits[0]


def _position(profile: Profile, marks: dict[str, Fraction] | None, f: str, p: Any, *,
              cross: bool = False, need_margin: bool = True) -> tuple[Position, Any]:
    """One position, validated against the profile (lot grid, within the tier table at the entry and
    at the mark).  Returns the position and the leverage it was given with (or ``None``)."""
    p = _obj(f, p, "a position")
    if "symbol" in p:
        return _ccxt_position(profile, marks, f, p, cross=cross, need_margin=need_margin)
    _keys(f, p, _POSITION_KEYS, ("instrument", "side", "size", "entry_price"))
    iid = _str(f"{f}.instrument", p["instrument"], "an instrument ID string")
    inst = profile.instrument(iid, f"{f}.instrument")
    side = _side(f"{f}.side", p["side"])
    mode_raw = p.get("margin_mode", "cross" if cross else "isolated")
    mode = RD.choice(f"{f}.margin_mode", mode_raw, MarginMode)
    want = MarginMode.CROSS if cross else MarginMode.ISOLATED
    if mode is not want:
        raise InvalidInput(f"{f}.margin_mode", mode_raw,
                           f"this operation takes {want.value} positions"
                           + (" (use operation \"cross\" for cross positions)" if not cross else ""), "MRG-003")
    size = parse_number(f"{f}.size", p["size"], "MRG-001", positive=True)
    entry = parse_number(f"{f}.entry_price", p["entry_price"], "MRG-002", positive=True)
    return _finish(profile, marks, f, p, inst, side, size, entry, p.get("margin"), p.get("leverage"),
                   cross=cross, need_margin=need_margin, raw=p, names=("size", "entry_price", "margin", "leverage"))


def _ccxt_position(profile: Profile, marks: dict[str, Fraction] | None, f: str, p: dict[str, Any], *,
                   cross: bool, need_margin: bool) -> tuple[Position, Any]:
    _keys(f, p, _CCXT_KEYS, ("symbol", "side", "contracts", "entryPrice"))
    inst = _ccxt_instrument(profile, f"{f}.symbol", p["symbol"])
    side = _side(f"{f}.side", p["side"])
    for k in ("contracts", "contractSize", "entryPrice", "collateral", "initialMargin", "leverage"):
        if k in p and p[k] is not None and not isinstance(p[k], str):
            raise InvalidInput(f"{f}.{k}", p[k], "ccxt-shaped input takes decimal strings only (such as \"0.01\")")
    if "contractSize" in p and p["contractSize"] is not None:
        cs = parse_number(f"{f}.contractSize", p["contractSize"], "MRG-001", positive=True)
        if cs != inst.contract_value:
            raise InvalidInput(f"{f}.contractSize", p["contractSize"],
                               f"{inst.id} has contract value {format_exact(inst.contract_value)} in profile {profile.name!r}", "MRG-001")
    mode_raw = p.get("marginMode") or ("cross" if cross else "isolated")
    want = "cross" if cross else "isolated"
    if mode_raw != want:
        raise InvalidInput(f"{f}.marginMode", mode_raw, f"this operation takes {want} positions", "MRG-003")
    size = parse_number(f"{f}.contracts", p["contracts"], "MRG-001", positive=True)
    entry = parse_number(f"{f}.entryPrice", p["entryPrice"], "MRG-002", positive=True)
    margin_raw = p.get("collateral", p.get("initialMargin"))
    margin_name = "collateral" if "collateral" in p else "initialMargin"
    lev = p.get("leverage") if margin_raw is None else None
    return _finish(profile, marks, f, p, inst, side, size, entry, margin_raw, lev, cross=cross,
                   need_margin=need_margin, raw=p, names=("contracts", "entryPrice", margin_name, "leverage"),
                   bare="coins")  # ccxt amounts are decimal strings in the settlement currency


def _finish(profile: Profile, marks: dict[str, Fraction] | None, f: str, p: dict[str, Any], inst: Instrument,
            side: Side, size: Fraction, entry: Fraction, margin_raw: Any, leverage_raw: Any, *, cross: bool,
            need_margin: bool, raw: dict[str, Any], names: tuple[str, str, str, str],
            bare: str = "units") -> tuple[Position, Any]:
    n_size, n_entry, n_margin, n_lev = names
    leverage = None
    if cross:
        if margin_raw is not None or leverage_raw is not None:
            raise InvalidInput(f"{f}.{n_margin if margin_raw is not None else n_lev}", margin_raw or leverage_raw,
                               "a cross position has no margin of its own: give the account's balances", "LIQ-008")
        margin = 0
    elif margin_raw is not None and leverage_raw is not None:
        raise InvalidInput(f"{f}.{n_lev}", leverage_raw, f"give {n_margin} or {n_lev}, not both", "MRG-009")
    elif leverage_raw is not None:
        leverage = parse_number(f"{f}.{n_lev}", leverage_raw, "MRG-009", positive=True)
        margin = compute_margin_for_leverage(inst, size, entry, leverage)
    elif margin_raw is not None:
        margin = RD.amount(f"{f}.{n_margin}", margin_raw, inst.settle_currency, "MRG-003", bare=bare)
    elif need_margin:
        raise InvalidInput(f"{f}.{n_margin}", None, f"is required (or {n_lev})")
    else:
        margin = 0
    if (size / inst.lot_size).denominator != 1:
        raise InvalidInput(f"{f}.{n_size}", raw[n_size], f"must be a multiple of the lot size {format_exact(inst.lot_size)}", "MRG-001")
    prices = [("entry price", entry)]
    if marks is not None:
        if inst.id not in marks:
            raise InvalidInput(f"mark_prices.{inst.id}", None, f"is required: {f} is on {inst.id}")
        prices.append(("mark price", marks[inst.id]))
    for label, price in prices:
        if not is_within_tiers(inst, size, price):
            raise OutOfTierRange(f"{f}.{n_size}", raw[n_size],
                                 f"above the last tier's cap of table {inst.tier_table.name!r} at the {label}", "MRG-004")
    pos = Position(inst.id, side, size, entry, MarginMode.CROSS if cross else MarginMode.ISOLATED, margin)
    return pos, leverage


def _positions(profile: Profile, req: dict[str, Any], marks: dict[str, Fraction] | None, *, cross: bool = False,
               need_margin: bool = True) -> list[tuple[Position, Any]]:
    raw = req.get("positions")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("positions", raw, "a non-empty list of positions")
    out = [_position(profile, marks, f"positions[{n}]", p, cross=cross, need_margin=need_margin) for n, p in enumerate(raw)]
    if cross:
        seen: set[tuple[str, Side]] = set()
        for n, (pos, _) in enumerate(out):
            if (pos.instrument, pos.side) in seen:
                raise InvalidInput(f"positions[{n}]", pos.instrument, "one position per instrument and side", "LIQ-008")
            seen.add((pos.instrument, pos.side))
    return out


def _balances(profile: Profile, req: dict[str, Any]) -> dict[str, int]:
    raw = _obj("balances", req.get("balances"), "currency code to balance, such as {\"USDT\": \"10000 USDT\"}")
    out = {}
    for code, v in raw.items():
        if code not in profile.currencies:
            raise CurrencyMismatch(f"balances.{code}", v, f"not a currency of profile {profile.name!r}", "LIQ-008")
        out[code] = parse_amount(f"balances.{code}", v, code, profile, "LIQ-008")
    return out


def _instrument(profile: Profile, req: dict[str, Any], field: str = "instrument") -> Instrument:
    v: Any = req.get(field)
    if isinstance(v, str) and "/" in v:
        return _ccxt_instrument(profile, field, v)
    _str(field, v, "an instrument ID string (or a ccxt symbol such as 'BTC/USDT:USDT')")
    return profile.instrument(v, field)


def _fund_key(profile: Profile, req: dict[str, Any]) -> FundKey:
    v = req.get("fund")
    if v is None:
        return fund_key_of(next(iter(profile.instruments.values())))
    key = FundKey.parse(_str("fund", v, "a fund id LINE/UNDERLYING/CURRENCY"))
    if key.currency not in profile.currencies:
        raise CurrencyMismatch("fund", v, f"currency {key.currency} is not defined by profile {profile.name!r}", "INS-001")
    return key


def _money_unit(profile: Profile, code: str) -> str:
    c = profile.currencies[code]
    return f"smallest units of {c.code} (10^-{c.decimals})"


# ---------------------------------------------------------------- operations

def _op_margin(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    _keys("", req, ("operation", "profile", "positions", "mark_prices"), ("positions", "mark_prices"))
    marks = _marks(profile, req)
    parsed = _positions(profile, req, marks)
    results = []
    for n, (pos, lev) in enumerate(parsed):
        validate_position(profile, pos, marks[pos.instrument], f"positions[{n}]")
        results.append({"position": n, "instrument": pos.instrument,
                        "quantities": Q.query_margin(profile, pos, marks[pos.instrument], lev)})
    return {"results": results}


def _op_cross(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    _keys("", req, ("operation", "profile", "balances", "positions", "mark_prices"), ("balances", "positions", "mark_prices"))
    marks = _marks(profile, req)
    balances = _balances(profile, req)
    pos = tuple(p for p, _ in _positions(profile, req, marks, cross=True))
    return Q.query_cross(profile, balances, pos, marks)


def _op_liquidation(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    _keys("", req, ("operation", "profile", "positions", "mark_prices"), ("positions", "mark_prices"))
    marks = _marks(profile, req)
    parsed = _positions(profile, req, marks)
    return {"results": [{"position": n, "instrument": p.instrument, **Q.query_liquidation(profile, p, marks[p.instrument])}
                        for n, (p, _) in enumerate(parsed)]}


def _op_cross_liquidation(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    _keys("", req, ("operation", "profile", "balances", "positions", "mark_prices"), ("balances", "positions", "mark_prices"))
    marks = _marks(profile, req)
    balances = _balances(profile, req)
    pos = tuple(p for p, _ in _positions(profile, req, marks, cross=True))
    return Q.query_cross_liquidation(profile, balances, pos, marks)


def _op_engine(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    from backstop.reference.engine import Level  # imported when used: a margin eval starts without the engine
    _keys("", req, ("operation", "profile", "instrument", "side", "size", "takeover_price", "book", "fill_price",
                    "fund_available", "entry_price"), ("instrument", "side", "size", "takeover_price"))
    inst = _instrument(profile, req)
    sign = _side("side", req["side"]).sign
    size = parse_number("size", req["size"], "ENG-001", positive=True)
    if (size / inst.lot_size).denominator != 1:
        raise InvalidInput("size", req["size"], f"must be a multiple of the lot size {format_exact(inst.lot_size)}", "ENG-001")
    tp = parse_number("takeover_price", req["takeover_price"], "ENG-002", positive=True)
    if ("book" in req) == ("fill_price" in req):
        raise InvalidInput("book", req.get("book"), "give a book (a list of levels) or a fill_price, one of them", "ENG-001")
    if "fill_price" in req:
        levels: tuple[Level, ...] = (Level(parse_number("fill_price", req["fill_price"], "ENG-001", positive=True), size),)
    else:
        raw = req["book"]
        if not isinstance(raw, list):
            raise InvalidInput("book", raw, "a list of levels {\"price\", \"size\"}, best first", "ENG-001")
        levels_l = []
        for n, lv in enumerate(raw):
            f = f"book[{n}]"
            lv = _obj(f, lv, "a level {\"price\", \"size\"}")
            _keys(f, lv, ("price", "size"), ("price", "size"))
            levels_l.append(Level(parse_number(f"{f}.price", lv["price"], "ENG-001", positive=True),
                                  parse_number(f"{f}.size", lv["size"], "ENG-001", nonnegative=True)))
        levels = tuple(levels_l)
    budget = parse_amount("fund_available", req["fund_available"], inst, profile, "ENG-006") if "fund_available" in req else None
    entry = parse_number("entry_price", req["entry_price"], "ENG-005", positive=True) if "entry_price" in req else None
    return {"instrument": inst.id, **Q.query_engine(profile, inst, sign, size, tp, levels, budget, entry)}


def _history(key: FundKey, profile: Profile, raw: Any) -> tuple[BalancePoint, ...]:
    if not isinstance(raw, list):
        raise InvalidInput("history", raw, "a list of points {\"time_ms\", \"balance\"} in time order", "ADL-001")
    pts: list[BalancePoint] = []
    for n, pt in enumerate(raw):
        f = f"history[{n}]"
        pt = _obj(f, pt, "a point {\"time_ms\", \"balance\"}")
        _keys(f, pt, ("time_ms", "balance"), ("time_ms", "balance"))
        t = _time(f"{f}.time_ms", pt["time_ms"], "ADL-001")
        if pts and t < pts[-1].time_ms:
            raise InvalidInput(f"{f}.time_ms", pt["time_ms"], "the history must be in time order", "ADL-001")
        pts.append(BalancePoint(t, parse_amount(f"{f}.balance", pt["balance"], key.currency, profile, "ADL-001",
                                                nonnegative=False)))
    return tuple(pts)


def _op_fund_drawdown(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    _keys("", req, ("operation", "profile", "fund", "history", "now_ms", "uncovered", "unplaced", "remainder",
                    "adl_active"), ("history", "now_ms"))
    key = _fund_key(profile, req)
    hist = _history(key, profile, req["history"])
    now = _time("now_ms", req["now_ms"], "ADL-001")
    unc = parse_amount("uncovered", req.get("uncovered", 0), key.currency, profile, "ADL-002")
    unplaced = parse_number("unplaced", req.get("unplaced", 0), "ADL-002", nonnegative=True)
    rem = parse_number("remainder", req.get("remainder", 0), "ADL-003", nonnegative=True)
    active = RD.boolean("adl_active", req.get("adl_active", False))
    return {"fund": key.id, **Q.query_fund_drawdown(profile, hist, now, _money_unit(profile, key.currency),
                                                    unc, unplaced, rem, active)}


_EVENT_TYPES = ("result", "fee", "top_up", "withdraw", "settle")


def _op_fund_window(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    _keys("", req, ("operation", "profile", "fund", "start_ms", "settled", "events"), ("start_ms", "events"))
    key = _fund_key(profile, req)
    start = _time("start_ms", req["start_ms"], "INS-009")
    settled = parse_amount("settled", req.get("settled", 0), key.currency, profile, "INS-003")
    raw = req["events"]
    if not isinstance(raw, list):
        raise InvalidInput("events", raw, "a list of events {\"type\", \"time_ms\", \"amount\"}", "INS-009")
    events = []
    for n, ev in enumerate(raw):
        f = f"events[{n}]"
        ev = _obj(f, ev, "an event")
        _keys(f, ev, ("type", "time_ms", "amount"), ("type", "time_ms"))
        kind = ev["type"]
        if kind not in _EVENT_TYPES:
            raise InvalidInput(f"{f}.type", kind, f"one of {', '.join(_EVENT_TYPES)}", "INS-009")
        t = _time(f"{f}.time_ms", ev["time_ms"], "INS-009")
        if kind == "settle":
            if "amount" in ev:
                raise InvalidInput(f"{f}.amount", ev["amount"], "a settle event has no amount", "INS-008")
            amount = 0
        else:
            if "amount" not in ev:
                raise InvalidInput(f"{f}.amount", None, "is required", "INS-009")
            amount = parse_amount(f"{f}.amount", ev["amount"], key.currency, profile, "INS-009", nonnegative=kind != "result")
        events.append((kind, t, amount))
    return Q.query_fund_window(profile, key, start, settled, tuple(events), _money_unit(profile, key.currency))


def _op_adl(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    _keys("", req, ("operation", "profile", "instrument", "mark_price", "positions", "remainder", "fund_available"),
          ("instrument", "mark_price", "positions"))
    inst = _instrument(profile, req)
    mark = parse_number("mark_price", req["mark_price"], "ADL-004", positive=True)
    raw = req["positions"]
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("positions", raw, "a non-empty list of positions {\"account\", \"side\", \"size\", \"entry_price\", \"margin\"}")
    entries = []
    seen = set()
    for n, p in enumerate(raw):
        f = f"positions[{n}]"
        p = _obj(f, p, "a position")
        _keys(f, p, ("account", "side", "size", "entry_price", "margin"), ("account", "side", "size", "entry_price"))
        acct = _str(f"{f}.account", p["account"], "a non-empty account id")
        side = _side(f"{f}.side", p["side"])
        if (acct, side) in seen:
            raise InvalidInput(f"{f}.account", acct, "one position per account and side", "ADL-006")
        seen.add((acct, side))
        size = parse_number(f"{f}.size", p["size"], "ADL-006", positive=True)
        if (size / inst.lot_size).denominator != 1:
            raise InvalidInput(f"{f}.size", p["size"], f"must be a multiple of the lot size {format_exact(inst.lot_size)}", "ADL-006")
        entry = parse_number(f"{f}.entry_price", p["entry_price"], "ADL-004", positive=True)
        margin = parse_amount(f"{f}.margin", p.get("margin", 0), inst, profile, "ADL-004")
        entries.append(RankEntry(acct, inst.id, PositionTerms(side.sign, size, entry, margin)))
    entries_t = tuple(entries)
    if "remainder" not in req:
        if "fund_available" in req:
            raise InvalidInput("fund_available", req["fund_available"], "only with a remainder", "ADL-007")
        return {"instrument": inst.id, "ranking": Q.query_adl_ranking(profile, inst, entries_t, mark)}
    r = _obj("remainder", req["remainder"], "{\"account\", \"side\", \"size\", \"bankruptcy_price\"}")
    _keys("remainder", r, ("account", "side", "size", "bankruptcy_price"), ("account", "side", "size", "bankruptcy_price"))
    size = parse_number("remainder.size", r["size"], "ADL-006", positive=True)
    if (size / inst.lot_size).denominator != 1:
        raise InvalidInput("remainder.size", r["size"], f"must be a multiple of the lot size {format_exact(inst.lot_size)}", "ADL-006")
    out = Q.query_adl(profile, inst, entries_t, mark,
                      liquidated_account=_str("remainder.account", r["account"], "a non-empty account id"),
                      liquidated_sign=_side("remainder.side", r["side"]).sign, remainder=size,
                      bankruptcy_price=parse_number("remainder.bankruptcy_price", r["bankruptcy_price"], "ADL-007", positive=True),
                      fund_available=parse_amount("fund_available", req.get("fund_available", 0), inst, profile, "ADL-007"))
    return {"instrument": inst.id, **out}


def _op_transition(profile: Profile, req: dict[str, Any]) -> dict[str, Any]:
    """Operation ``transition``: a scenario (the tables of a scenario file, as JSON) run through the
    reference step function, event by event (TRN-001..TRN-008): every record each event emits,
    whether every invariant held after it, and the final state."""
    from backstop import simulate as SIM
    from backstop.reference import step as S
    _keys("", req, ("operation", "profile", "scenario"), ("scenario",))
    scn = SIM.load_scenario_data(req["scenario"], "scenario", profile)
    res = SIM.run_scenario(scn, check=True)
    events: list[dict[str, Any]] = [{"event": None, "records": []}] + [
        {"event": ev.index, "type": ev.type, "records": []} for ev in scn.events]
    slot = {ev.index: n + 1 for n, ev in enumerate(scn.events)}
    for rec, idx in zip(res.records, res.record_event):
        events[0 if idx < 0 else slot[idx]]["records"].append(rec.to_json())
    return {"order": {"value": "settlement, mark, isolated positions, cross accounts, remainders and the ADL "
                               "state, the re-check; accounts by id, remainders by age", "unit": "order of work",
                      "rules": ["TRN-001", "TRN-002"]},
            "checked": {"value": "every input through one set of checks", "unit": "validation", "rules": ["TRN-007"]},
            "events": events[: res.processed + 1],
            "invariants": {"value": "hold" if not res.violation else res.violation, "unit": "after every event",
                           "rules": ["INV-024", "INV-025"]},
            "final_state": S.state_json(res.state)}


OPERATIONS: dict[str, Callable[[Profile, dict[str, Any]], dict[str, Any]]] = {
    "margin": _op_margin,
    "cross": _op_cross,
    "liquidation": _op_liquidation,
    "cross_liquidation": _op_cross_liquidation,
    "engine": _op_engine,
    "fund_drawdown": _op_fund_drawdown,
    "fund_window": _op_fund_window,
    "adl": _op_adl,
    "transition": _op_transition,
}


def to_response(obj: Any) -> Any:
    """The JSON form of a query's result: a :class:`Quantity` becomes ``{"value", "unit", "rules"}``
    (exact strings), dicts and lists recursively."""
    if isinstance(obj, Quantity):
        v = obj.value
        value = {k: dump_number(x) for k, x in v.items()} if isinstance(v, dict) else dump_number(v) \
            if not isinstance(v, str) else v
        return {"value": value, "unit": obj.unit, "rules": list(obj.rules)}
    if isinstance(obj, dict):
        return {k: to_response(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_response(v) for v in obj]
    return obj  # structure (a position's index, an account id): as it is


def operation_of(req: Any) -> str:
    if not isinstance(req, dict):
        raise InvalidInput("request", req, "must be a JSON object")
    op = req.get("operation", DEFAULT_OPERATION)
    if not isinstance(op, str) or op not in OPERATIONS:
        raise InvalidInput("operation", op, f"one of {', '.join(OPERATIONS)}")
    return op


def evaluate(req: Any, profiles: dict[Any, Profile] | None = None) -> dict[str, Any]:
    """Validate and answer one request; ``profiles`` caches loaded profiles by their request value
    (``backstop eval --jsonl`` loads each once).  The default operation (``margin``) answers as
    ``backstop eval`` always did: ``{"profile", "results"}``; others add ``"operation"``."""
    op = operation_of(req)
    raw = req.get("profile")
    cache_key = raw if isinstance(raw, (str, type(None))) else ("toml", raw.get("toml") if isinstance(raw, dict) else id(raw))
    if profiles is not None and cache_key in profiles:
        profile = profiles[cache_key]
    else:
        profile = request_profile(raw)
        if profiles is not None:
            profiles[cache_key] = profile
    body = OPERATIONS[op](profile, req)
    head: dict[str, Any] = {"profile": profile.name}
    if "operation" in req:
        head["operation"] = op
    response: dict[str, Any] = to_response({**head, **body})
    return response
