#!/usr/bin/env python3
"""An independent float implementation of Binance USDⓈ-M's published liquidation price, with an
adapter for ``backstop conform`` (one JSON request per line on stdin, one JSON answer per line on
stdout).  It is written from Binance's documentation, not from backstop's code:

* Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
  (https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93), one-way mode:

      LP = (WB - TMM1 + UPNL1 + cumB - Side1BOTH * Position1BOTH * EP1BOTH)
           / (Position1BOTH * MMR_B - Side1BOTH * Position1BOTH)

  WB the wallet balance (cross: the cross wallet balance; isolated: the position's isolated
  wallet balance with TMM1 = 0 and UPNL1 = 0), TMM1 and UPNL1 the maintenance margin and the
  unrealized PnL of all *other* contracts, cumB the maintenance amount and MMR_B the maintenance
  margin rate of the bracket, Side1BOTH 1 for a long and -1 for a short.  Maintenance margin =
  position notional x MMR of the bracket of that notional - maintenance amount.
* The bracket: "If your position (calculated at the liquidation price) and the current position
  (calculated at the opening price) are of different levels, then you must substitute the
  maintenance margin rate and the maintenance amount of the level [at the liquidation price], to
  recalculate the liquidation price" (the same note on Binance's COIN-M page,
  https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46).  So every bracket's
  candidate is computed and the one whose notional falls into that bracket is taken (lowest first).
  "If the liquidation price is less than 0, the UI display would be '--'": answered as null.
* BTCUSDT brackets: Binance announcement of 2021-03-18, "Updates to Leverage and Margin Tiers"
  (notional cap in USDT, MMR, maintenance amount in USDT).  Other symbols' brackets are read from
  an inline profile (``{"toml": ...}``), the tables a venue publishes as data.

Floats throughout; answers are JSON numbers (money in 10^-8 USDT, as the request's units).  Only
USDⓈ-M linear contracts in one-way mode: anything else is answered ``{"unsupported": reason}``.
"""

import json
import sys
import tomllib

UNITS = 1e8  # USDT amounts in requests and answers are in 10^-8 USDT (the binance profile's decimals)
# (notional cap USDT, MMR, maintenance amount USDT): Binance 2021-03-18 BTCUSDT brackets
BTCUSDT = [(50_000, 0.004, 0), (250_000, 0.005, 50), (1_000_000, 0.01, 1_300), (10_000_000, 0.025, 16_300),
           (20_000_000, 0.05, 266_300), (50_000_000, 0.1, 1_266_300), (100_000_000, 0.125, 2_516_300)]
SYMBOLS = {"BTCUSDT": {"brackets": BTCUSDT, "contract": 1.0, "lot": 0.001}}


class Refused(Exception):
    pass


class Unsupported(Exception):
    pass


def num(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise Refused(f"{what}: a decimal string or an integer")  # a JSON float is not exact
    try:
        if isinstance(v, str) and "/" in v:
            a, b = v.split("/")
            return int(a) / int(b)
        return float(v)
    except (ValueError, ZeroDivisionError):
        raise Refused(f"{what}: not a number") from None


def positive(v, what):
    x = num(v, what)
    if not x > 0:
        raise Refused(f"{what}: must be > 0")
    return x


def money(v, what):
    """USDT amount in USDT: an integer of 10^-8 USDT, or "1500 USDT"."""
    if isinstance(v, str) and v.strip().endswith(" USDT"):
        text = v.strip()[:-5].strip()
        x = num(text, what)
        if "." in text and len(text.split(".")[1].rstrip("0")) > 8:
            raise Refused(f"{what}: not a whole number of 10^-8 USDT")
    elif isinstance(v, str) and " " in v.strip():
        raise Refused(f"{what}: not a USDT amount")
    else:
        units = num(v, what)
        if units != int(units):
            raise Refused(f"{what}: a whole number of 10^-8 USDT")
        x = units / UNITS
    if x < 0:
        raise Refused(f"{what}: must be >= 0")
    return x


def symbols_of(profile):
    if profile == "binance":  # (a request without a profile asks backstop's default, okx)
        return SYMBOLS
    if not (isinstance(profile, dict) and isinstance(profile.get("toml"), str)):
        raise Unsupported(f"profile {profile!r}: only Binance USDS-M")
    data = tomllib.loads(profile["toml"])
    if data.get("extends", data.get("name")) != "binance":
        raise Unsupported("an inline profile that is not Binance's")
    out = dict(SYMBOLS)
    tables = data.get("tier_tables", {})
    for sym, inst in data.get("instruments", {}).items():
        if inst.get("kind") != "linear" or inst.get("settle_currency") != "USDT":
            raise Unsupported(f"{sym}: only linear USDT-settled contracts")
        rows = tables[inst["tier_table"]]["tiers"]
        out[sym] = {"brackets": [(float(r["cap"]), float(r["mmr"]), int(r.get("mm_deduction", 0)) / UNITS) for r in rows],
                    "contract": float(inst["contract_value"]), "lot": float(inst["lot_size"])}
    return out


def bracket_of(brackets, notional):
    """1-based bracket of a notional (a notional equal to a cap is in the lower bracket; a float
    product such as 0.3 * 30000.1 may land a hair above a cap it equals, hence the 1e-15)."""
    for n, (cap, mmr, cum) in enumerate(brackets, 1):
        if notional <= cap * (1 + 1e-15):
            return n
    raise Refused(f"notional {notional} above the last bracket")


def maintenance(sym, qty, price):
    b = bracket_of(sym["brackets"], qty * price)
    cap, mmr, cum = sym["brackets"][b - 1]
    return qty * price * mmr - cum


def liq_price(sym, side, qty, entry, wb):
    """Binance's LP with WB = wb (already WB - TMM1 + UPNL1): (lp, bracket) or (None, None)."""
    floor = 0.0
    for n, (cap, mmr, cum) in enumerate(sym["brackets"], 1):
        den = qty * mmr - side * qty
        if den != 0:
            lp = (wb + cum - side * qty * entry) / den
            if lp > 0 and floor * (1 - 1e-15) < qty * lp <= cap * (1 + 1e-15):
                return lp, n
        floor = cap
    return None, None


def position(p, syms, marks, n, cross):
    allowed = {"instrument", "side", "size", "entry_price", "margin_mode", "margin", "leverage"}
    if "symbol" in p:
        raise Unsupported("ccxt-shaped positions")
    if set(p) - allowed or not {"instrument", "side", "size", "entry_price"} <= set(p):
        raise Refused(f"positions[{n}]: unknown or missing keys")
    if p["instrument"] not in syms:
        raise Refused(f"positions[{n}].instrument: unknown symbol")
    sym = syms[p["instrument"]]
    if p.get("margin_mode", "cross" if cross else "isolated") != ("cross" if cross else "isolated"):
        raise Refused(f"positions[{n}].margin_mode")
    side = {"long": 1, "short": -1}.get(p["side"])
    if side is None:
        raise Refused(f"positions[{n}].side")
    qty = positive(p["size"], f"positions[{n}].size") * sym["contract"]
    entry = positive(p["entry_price"], f"positions[{n}].entry_price")
    lots = qty / sym["contract"] / sym["lot"]
    if abs(lots - round(lots)) > 1e-9 * max(1.0, lots):
        raise Refused(f"positions[{n}].size: not on the lot grid")
    if p["instrument"] not in marks:
        raise Refused(f"mark_prices.{p['instrument']}: missing")
    for price in (entry, marks[p["instrument"]]):
        bracket_of(sym["brackets"], qty * price)  # refuses a notional above the last bracket
    if cross:
        if "margin" in p or "leverage" in p:
            raise Refused(f"positions[{n}]: a cross position has no margin")
        wb = None
    elif ("margin" in p) == ("leverage" in p):
        raise Refused(f"positions[{n}]: give margin or leverage")
    elif "leverage" in p:
        wb = qty * entry / positive(p["leverage"], f"positions[{n}].leverage")  # initial margin
    else:
        wb = money(p["margin"], f"positions[{n}].margin")
    return {"sym": sym, "id": p["instrument"], "side": side, "qty": qty, "entry": entry, "wb": wb,
            "mark": marks[p["instrument"]]}


def at_lp(sym, lp, b):
    """The price and the bracket, rate and maintenance amount used there (null when no price)."""
    cap, mmr, cum = sym["brackets"][b - 1] if b else (None, None, None)
    return {"liquidation_price": {"value": lp}, "tier_at_liquidation_price": {"value": b},
            "mmr_at_liquidation_price": {"value": mmr},
            "deduction_at_liquidation_price": {"value": None if b is None else cum * UNITS}}


def answer(req):
    op = req.get("operation", "margin")
    if op not in ("margin", "cross"):
        raise Unsupported(f"operation {op!r}")
    syms = symbols_of(req.get("profile"))
    keys = {"operation", "profile", "positions", "mark_prices"} | ({"balances"} if op == "cross" else set())
    if set(req) - keys or not isinstance(req.get("positions"), list) or not req["positions"]:
        raise Refused("unknown keys or no positions")
    if not isinstance(req.get("mark_prices"), dict):
        raise Refused("mark_prices")
    for s in req["mark_prices"]:
        if s not in syms:
            raise Refused(f"mark_prices.{s}: unknown symbol")
    marks = {s: positive(v, f"mark_prices.{s}") for s, v in req["mark_prices"].items()}
    ps = [position(p if isinstance(p, dict) else {}, syms, marks, n, op == "cross") for n, p in enumerate(req["positions"])]
    name = "binance" if req.get("profile") == "binance" else tomllib.loads(req["profile"]["toml"]).get("name", "binance")
    if op == "margin":
        results = []
        for n, p in enumerate(ps):
            lp, b = liq_price(p["sym"], p["side"], p["qty"], p["entry"], p["wb"])
            q = {"position_value": {"value": p["qty"] * p["mark"] * UNITS},
                 "tier": {"value": bracket_of(p["sym"]["brackets"], p["qty"] * p["mark"])},
                 "maintenance_margin": {"value": maintenance(p["sym"], p["qty"], p["mark"]) * UNITS}}
            q.update(at_lp(p["sym"], lp, b))
            results.append({"position": n, "instrument": p["id"], "quantities": q})
        return {"profile": name, "results": results}
    if len({p["id"] for p in ps}) < len(ps):
        raise Unsupported("hedge mode (LONG and SHORT of one symbol)")
    if not isinstance(req.get("balances"), dict) or set(req["balances"]) - {"USDT"}:
        raise Refused("balances: USDT only")
    wb = money(req["balances"].get("USDT", 0), "balances.USDT")
    upnl = [p["side"] * p["qty"] * (p["mark"] - p["entry"]) for p in ps]
    mm = [maintenance(p["sym"], p["qty"], p["mark"]) for p in ps]
    out = []
    for j, p in enumerate(ps):
        wb1 = wb - (sum(mm) - mm[j]) + (sum(upnl) - upnl[j])  # WB - TMM1 + UPNL1
        lp, b = liq_price(p["sym"], p["side"], p["qty"], p["entry"], wb1)
        q = {"margin_with_others_fixed": {"value": wb1 * UNITS}}
        q.update(at_lp(p["sym"], lp, b))
        q["cross_liquidation_price"] = q.pop("liquidation_price")
        out.append({"position": j, "instrument": p["id"], "quantities": q})
    acct = {"cross_equity": {"value": (wb + sum(upnl)) * UNITS}, "cross_requirement": {"value": sum(mm) * UNITS}}
    return {"profile": name, "operation": "cross", "accounts": [{"currency": "USDT", "quantities": acct, "positions": out}]}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line, parse_float=lambda s: ("float", s))
            out = answer(req) if isinstance(req, dict) else {"error": {"reason": "not an object"}}
        except Refused as e:
            out = {"error": {"reason": str(e)}}
        except Unsupported as e:
            out = {"unsupported": str(e)}
        except (TypeError, KeyError, ValueError, tomllib.TOMLDecodeError) as e:
            out = {"error": {"reason": f"malformed request: {e}"}}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
