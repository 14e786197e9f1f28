"""A fund's public history, as venues publish it: balance history, inflows and outflows by type,
liquidation volume and net flow per settlement day; exported as text, CSV or JSON, and drawn as an
SVG chart by ``backstop.charts`` (matplotlib, in the style of ``backstop simulate``'s chart; the same
input always gives the same bytes).

The input is the event log of the fund plumbing: :class:`~backstop.reference.events.Record`
values, or their JSON form (:meth:`Record.to_json`, one object per line).  Amounts stay exact
integers of the currency's smallest unit and are shown as exact decimals of the coin
(``1200.5``); no float is used here (the chart converts to float only inside ``backstop.charts``).

``backstop fund-history LOG --fund ID`` is added to the command line by :func:`register_cli`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TextIO

from backstop.reference import fund as F
from backstop.reference.events import BalancePoint, Record
from backstop.reference.profile import FundRules
from backstop.reference.types import format_exact

__all__ = ["FLOW_KINDS", "Flow", "DayRow", "FundHistory", "read_log", "fund_history", "fund_ids",
           "log_header", "LogHeader", "history_csv", "flows_csv", "daily_csv", "history_json", "history_text",
           "fund_history_svg", "chart_events", "register_cli", "cmd_fund_history", "format_units", "format_time"]

# kind -> (direction, field holding the amount that moved into or out of the fund's available balance)
FLOW_KINDS: dict[str, tuple[str, str]] = {
    "liquidation surplus": ("in", "inflow"),
    "liquidation deficit": ("out", "paid"),
    "adl surplus": ("in", "inflow"),
    "adl deficit": ("out", "paid"),
    "liquidation fee": ("in", "inflow"),
    "top-up": ("in", "amount"),
    "withdrawal": ("out", "amount"),
}
# the daily transfer between pending and settled: reported, but not a flow into the available balance
SETTLEMENT_KINDS = ("forced liquidation injection", "overloss loss")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _int(v: Any) -> int:
    """An amount of a record already read by :func:`read_log` (an integer string)."""
    if isinstance(v, bool):
        raise ValueError(f"not an integer amount: {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.lstrip("-").isdigit() and v.isascii():
        return int(v)
    raise ValueError(f"not an integer amount: {v!r}")


@dataclass(frozen=True)
class LogHeader:
    """The first line of an event log written by backstop: the profile and its currencies' decimals."""
    profile: str
    currencies: dict[str, int]
    line: int


def _record(where: str, obj: Any) -> dict[str, Any]:
    """One line of the log, checked (an error names ``where: field``): a record against the schema
    of its kind (:func:`~backstop.reference.events.check_record`: a known kind, its required fields,
    no others, each of its type); the header (``kind`` ``"log"``, read by :func:`_header`) and the
    inputs of a ``trace.jsonl`` (``kind`` ``"input"``, checked by ``backstop check-trace``) by their
    kind and time only."""
    from backstop.reference import read as RD
    from backstop.reference.errors import InvalidInput
    from backstop.reference.events import check_record
    if isinstance(obj, dict) and obj.get("kind") in ("log", "input"):
        if "time_ms" not in obj:
            raise InvalidInput(f"{where}: time_ms", None, "is required")
        obj["time_ms"] = RD.time_ms(f"{where}: time_ms", obj["time_ms"])
        return obj
    return check_record(obj, where)


def _header(where: str, obj: dict[str, Any], n: int) -> LogHeader:
    from backstop.reference import read as RD
    from backstop.reference.errors import InvalidInput
    prof = RD.string(f"{where}: profile", obj.get("profile"), what="the name of the profile the log was written with")
    cur = obj.get("currencies")
    if not isinstance(cur, dict) or not cur:
        raise InvalidInput(f"{where}: currencies", cur, "an object from currency code to its decimals")
    return LogHeader(prof, {c: RD.integer(f"{where}: currencies.{c}", d, lo=0, hi=30) for c, d in cur.items()}, n)


def format_units(units: int, decimals: int) -> str:
    """``units`` of a currency with ``decimals`` decimals as an exact decimal of the coin."""
    return format_exact(Fraction(units, 10 ** decimals))


def format_time(time_ms: int, offset_minutes: int = 0) -> str:
    """``time_ms`` as local ISO time (``2026-01-05T16:00:00.000+08:00``), exact to the millisecond."""
    tz = timezone(timedelta(minutes=offset_minutes))
    t = (_EPOCH + timedelta(milliseconds=time_ms)).astimezone(tz)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}" + t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:]


def _date(time_ms: int, offset_minutes: int) -> str:
    return format_time(time_ms, offset_minutes)[:10]


# ---------------------------------------------------------------- reading the log

def read_log(lines: Iterable[str] | TextIO, source: str = "log") -> list[dict[str, Any]]:
    """Parse a JSON-lines event log, every field of every record checked; blank lines are skipped;
    an error (:class:`~backstop.reference.errors.InvalidInput`) names ``source:line: field``.  A header
    line (``kind`` ``"log"``, as ``backstop simulate`` writes first) is kept as the first item."""
    from backstop.jsonio import loads
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{n}"
        obj = _record(where, _refuse_json_floats(where, loads(line, where)))
        if obj["kind"] == "log":
            _header(where, obj, n)
        out.append(obj)
    return out


def _refuse_json_floats(where: str, v: Any, path: str = "") -> Any:
    from backstop.reference import read as RD
    if isinstance(v, dict):
        for k, x in v.items():
            _refuse_json_floats(where, x, f"{path}.{k}" if path else k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _refuse_json_floats(where, x, f"{path}[{i}]")
    else:
        RD.refuse_float(f"{where}: {path}" if path else where, v)
    return v


def log_header(records: Sequence[dict[str, Any]]) -> LogHeader | None:
    """The log's header (the profile and decimals it was written with), or ``None`` for a log without one."""
    for d in records:
        if d.get("kind") == "log":
            return _header(f"line {d.get('_line', 1)}", d, 1)
    return None


def _as_dict(r: Record | dict[str, Any]) -> dict[str, Any]:
    return r.to_json() if isinstance(r, Record) else r


def fund_ids(records: Iterable[Record | dict[str, Any]]) -> list[str]:
    return sorted({d["fund"] for d in map(_as_dict, records) if isinstance(d.get("fund"), str) and d["fund"]})


# ---------------------------------------------------------------- the history

@dataclass(frozen=True)
class Flow:
    kind: str
    direction: str   # "in", "out" or "settlement"
    count: int
    amount: int      # units (always >= 0; the direction says which way)


@dataclass(frozen=True)
class DayRow:
    window: int       # settlement window index (INS-002)
    settled_at: int   # the window's end instant (ms, UTC): its 16:00 settlement
    liquidations: int  # liquidation and ADL results in the window
    volume: int       # sum of |amount| of those results (units)
    inflow: int
    outflow: int
    settled_net: int  # what the window's settlement moved (injection > 0, overloss < 0)

    @property
    def net(self) -> int:
        return self.inflow - self.outflow


@dataclass(frozen=True)
class FundHistory:
    fund: str
    currency: str
    decimals: int
    offset_minutes: int
    points: tuple[tuple[int, int, int], ...]  # (time_ms, settled, available)
    flows: tuple[Flow, ...]
    days: tuple[DayRow, ...]

    def balance_points(self, view: str = "available") -> tuple[BalancePoint, ...]:
        i = {"settled": 1, "available": 2}[view]
        return tuple(BalancePoint(p[0], p[i]) for p in self.points)


def fund_history(records: Iterable[Record | dict[str, Any]], fund: str, rules: FundRules,
                 decimals: int = 0) -> FundHistory:
    """The public history of ``fund`` from an event log (records of other funds are ignored)."""
    rows = [d for d in map(_as_dict, records) if d.get("fund") == fund]
    rows.sort(key=lambda d: d["time_ms"])  # stable: records at one instant keep their order
    points = []
    flows: dict[str, list[int]] = {}
    days: dict[int, list[int]] = {}
    for d in rows:
        kind, t = d["kind"], d["time_ms"]
        if "settled" in d and "available" in d:
            points.append((t, _int(d["settled"]), _int(d["available"])))
        if kind in SETTLEMENT_KINDS:
            net = _int(d.get("net", 0))
            w = _int(d.get("window", F.window_index(rules, t - 1)))
            f = flows.setdefault(kind, [0, 0])
            f[0] += 1
            f[1] += abs(net)
            days.setdefault(w, [0, 0, 0, 0, 0])[4] += net
            continue
        if kind not in FLOW_KINDS:
            continue
        direction, field = FLOW_KINDS[kind]
        amount = _int(d.get(field, 0))
        f = flows.setdefault(kind, [0, 0])
        f[0] += 1
        f[1] += amount
        row = days.setdefault(F.window_index(rules, t), [0, 0, 0, 0, 0])
        if kind.endswith(("surplus", "deficit")):
            row[0] += 1
            row[1] += abs(_int(d.get("amount", 0)))
        row[2 if direction == "in" else 3] += amount
    flow_rows = tuple(Flow(k, FLOW_KINDS[k][0] if k in FLOW_KINDS else "settlement", c, a)
                      for k, (c, a) in sorted(flows.items()))
    day_rows = tuple(DayRow(w, F.window_start(rules, w + 1), *v) for w, v in sorted(days.items()))
    currency = fund.rsplit("/", 1)[-1]
    return FundHistory(fund, currency, decimals, rules.utc_offset_minutes, tuple(points), flow_rows, day_rows)


# ---------------------------------------------------------------- exports

def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def history_csv(h: FundHistory) -> str:
    u: Callable[[int], str] = lambda x: format_units(x, h.decimals)  # noqa: E731
    return _csv(["time_ms", "time", f"settled_{h.currency}", f"available_{h.currency}"],
                [(t, format_time(t, h.offset_minutes), u(s), u(a)) for t, s, a in h.points])


def flows_csv(h: FundHistory) -> str:
    return _csv(["kind", "direction", "count", f"amount_{h.currency}"],
                [(f.kind, f.direction, f.count, format_units(f.amount, h.decimals)) for f in h.flows])


def daily_csv(h: FundHistory) -> str:
    u: Callable[[int], str] = lambda x: format_units(x, h.decimals)  # noqa: E731
    return _csv(["settlement_date", "window", "liquidations", f"volume_{h.currency}", f"inflow_{h.currency}",
                 f"outflow_{h.currency}", f"net_flow_{h.currency}", f"settled_net_{h.currency}"],
                [(_date(d.settled_at, h.offset_minutes), d.window, d.liquidations, u(d.volume), u(d.inflow),
                  u(d.outflow), u(d.net), u(d.settled_net)) for d in h.days])


def history_json(h: FundHistory) -> dict[str, Any]:
    """Exact JSON: amounts as decimal strings of the coin, times as ms and local ISO text."""
    u: Callable[[int], str] = lambda x: format_units(x, h.decimals)  # noqa: E731
    return {
        "fund": h.fund, "currency": h.currency,
        "balance_history": [{"time_ms": t, "time": format_time(t, h.offset_minutes), "settled": u(s), "available": u(a)}
                            for t, s, a in h.points],
        "flows": [{"kind": f.kind, "direction": f.direction, "count": f.count, "amount": u(f.amount)} for f in h.flows],
        "daily": [{"settlement_date": _date(d.settled_at, h.offset_minutes), "window": d.window,
                   "liquidations": d.liquidations, "volume": u(d.volume), "inflow": u(d.inflow),
                   "outflow": u(d.outflow), "net_flow": u(d.net), "settled_net": u(d.settled_net)} for d in h.days],
    }


def history_text(h: FundHistory) -> str:
    u: Callable[[int], str] = lambda x: format_units(x, h.decimals)  # noqa: E731

    def table(header: Sequence[str], rows: list[Sequence[str]]) -> list[str]:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)] if rows else [len(c) for c in header]
        fmt: Callable[[Sequence[str]], str] = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
        return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]

    out = [f"Fund {h.fund} ({h.currency})", "", "Balance history"]
    out += table(["time", "settled", "available"], [[format_time(t, h.offset_minutes), u(s), u(a)] for t, s, a in h.points])
    out += ["", "Inflows and outflows by type"]
    out += table(["kind", "direction", "count", "amount"], [[f.kind, f.direction, str(f.count), u(f.amount)] for f in h.flows])
    out += ["", "Per settlement day"]
    out += table(["settlement date", "liquidations", "volume", "inflow", "outflow", "net flow", "settled"],
                 [[_date(d.settled_at, h.offset_minutes), str(d.liquidations), u(d.volume), u(d.inflow), u(d.outflow),
                   u(d.net), u(d.settled_net)] for d in h.days])
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the chart

# record kinds of a fund's log drawn as markers: a liquidation's or an ADL's result for the fund
_MARKER_KINDS = {"liquidation surplus": "liquidation", "liquidation deficit": "liquidation",
                 "adl surplus": "adl", "adl deficit": "adl"}


def chart_events(records: Iterable[Record | dict[str, Any]], fund: str) -> tuple[tuple[int, str], ...]:
    """``(time_ms, "liquidation" | "adl")`` for every liquidation or ADL result booked by ``fund``."""
    return tuple((d["time_ms"], _MARKER_KINDS[d["kind"]]) for d in map(_as_dict, records)
                 if d.get("fund") == fund and d.get("kind") in _MARKER_KINDS)


def fund_history_svg(points: Sequence[BalancePoint], title: str, *, width: int = 960, height: int = 320,
                     decimals: int = 0, unit: str = "", offset_minutes: int = 480, view: str = "available",
                     adl: Any = None, adl_points: Sequence[BalancePoint] | None = None, adl_view: str = "",
                     events: Sequence[tuple[int, str]] = ()) -> str:
    """The balance history as a step chart (the balance holds until the next point), in SVG, drawn
    by ``backstop.charts`` in the style of ``backstop simulate``'s chart: UTC time axis, ``unit``
    on the balance axis (not forced to 0), legend outside the plot.

    With ``adl`` (the profile's :class:`~backstop.reference.profile.AdlRules`) the ADL-001 drawdown
    threshold of ``adl_points`` (the history in the balance view the trigger reads, ``adl_view``;
    default: ``points``) is drawn, and the time the trigger held is shaded.  ``events`` (from
    :func:`chart_events`) are drawn as markers on the balance line.  Exact inputs; the same points
    always give the same bytes.  ``offset_minutes`` is the settlement day's zone, named on the axis."""
    from backstop import charts as C
    pts = sorted(points, key=lambda p: p.time_ms)
    scale = Fraction(1, 10 ** decimals)
    cur = f" ({unit})" if unit else ""
    if not pts:
        panel = C.Panel("no balance history", f"balance{cur}")
        return C.render_svg(title, "", [panel], 0, 0, width=width, panel_height=max(height - 100, 120))
    t0, t1 = pts[0].time_ms, pts[-1].time_ms
    line = tuple((p.time_ms, p.balance * scale) for p in pts)
    lines = [C.Line(f"{view} balance", line)]
    spans: tuple[tuple[int, int], ...] = ()
    span_label = note = ""
    if adl is not None:
        apts = sorted(adl_points if adl_points is not None else pts, key=lambda p: p.time_ms)
        aview = adl_view or view
        if aview != view:
            lines.append(C.Line(f"{aview} balance (read by ADL)", tuple((p.time_ms, p.balance * scale) for p in apts),
                                dashed=True))
        thr = C.drawdown_threshold(adl, apts, t0, t1)
        if thr.points:
            ref = getattr(adl.drawdown_reference, "value", str(adl.drawdown_reference))
            lines.append(C.Line(f"ADL-001 threshold: (1 \u2212 {C.percent(adl.drawdown_fraction)}) \u00d7 "
                                f"{C.duration(adl.drawdown_window_seconds)} {ref} of {aview}",
                                tuple((t, v * scale) for t, v in thr.points), step=thr.step, threshold=True))
            spans, span_label = thr.held, "ADL-001 drawdown trigger held"
        note = f"ADL reads the {aview} balance"
    marks = []
    for kind, label in ((C.LIQUIDATION, "liquidation results"), (C.ADL, "ADL results")):
        times: dict[int, int] = {}
        for t, k in events:
            if k == kind:
                times[t] = times.get(t, 0) + 1
        at = []
        for t, n in sorted(times.items()):
            v = line[0][1]
            for tt, b in line:
                if tt <= t:
                    v = b
            at.append((t, v, n))
        marks.append(C.Events(kind, f"{label}: {sum(times.values())}", tuple(at)))
    panel = C.Panel("", f"balance{cur}", tuple(lines), tuple(marks), spans, span_label,
                    decimals=min(decimals, 4), note=note)
    off = offset_minutes
    xnote = f"the settlement day is in UTC{'+' if off >= 0 else '-'}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
    return C.render_svg(title, "", [panel], t0, t1, width=width, panel_height=max(height - 100, 120), xnote=xnote)


# ---------------------------------------------------------------- command line

def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``backstop fund-history`` to an argparse subparsers object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "fund-history", help="a fund's public history from an event log (text, CSV, JSON, SVG)",
        description="Read a JSON-lines event log of records and print a fund's balance history, inflows and "
                    "outflows by type, and liquidation volume and net flow per settlement day.")
    p.add_argument("log", metavar="LOG|-", help="event log, one record (JSON) per line; - for stdin")
    p.add_argument("--fund", metavar="ID", help="fund id LINE/UNDERLYING/CURRENCY (default: the only fund in the log)")
    p.add_argument("--profile", default=None, metavar="NAME|PATH",
                   help="profile for the settlement time and decimals (default: the one the log names, else okx); "
                        "refused when the log names another profile or other decimals")
    p.add_argument("--format", choices=("text", "csv", "json"), default="text")
    p.add_argument("--table", choices=("history", "flows", "daily"), default="history",
                   help="which table --format csv prints (default: history)")
    p.add_argument("--view", choices=("settled", "available"), default="available", help="balance drawn by --svg")
    p.add_argument("--svg", metavar="FILE", help="also write the balance history chart here")
    p.set_defaults(func=cmd_fund_history)
    return p


def _svg_target(path: str) -> Path:
    """``--svg FILE``, checked before anything is printed or written: its folder exists, it is not a folder."""
    from backstop.reference.errors import InvalidInput
    p = Path(path)
    if p.is_dir():
        raise InvalidInput("--svg", path, "a folder; give a file name")
    if not p.parent.is_dir():
        raise InvalidInput("--svg", path, f"its folder {str(p.parent)!r} does not exist")
    return p


def cmd_fund_history(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from backstop.reference.errors import InvalidInput, ProfileError
    from backstop.reference.profile import DEFAULT_PROFILE, load_profile
    out = out or sys.stdout
    svg = _svg_target(args.svg) if args.svg else None
    if args.log == "-":
        records = read_log(sys.stdin, "<stdin>")
    else:
        try:
            with open(args.log, encoding="utf-8") as fh:
                records = read_log(fh, args.log)
        except OSError as e:
            raise InvalidInput(args.log, args.log, f"cannot read: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise InvalidInput(args.log, args.log, "not UTF-8 text") from None
    header = log_header(records)
    try:
        profile = load_profile(args.profile or (header.profile if header else DEFAULT_PROFILE))
    except OSError as e:
        raise ProfileError("--profile", args.profile, f"cannot read: {e.strerror or e}") from None
    if header is not None:
        if profile.name != header.profile:
            raise InvalidInput("--profile", args.profile or header.profile,
                               f"the log was written with profile {header.profile!r}, not {profile.name!r}")
        for code, dec in header.currencies.items():
            have = profile.currencies[code].decimals if code in profile.currencies else None
            if have != dec:
                raise InvalidInput("--profile", args.profile or header.profile,
                                   f"the log has {code} with {dec} decimals, profile {profile.name!r} "
                                   + (f"{have}" if have is not None else "does not define it"))
    records = [d for d in records if d.get("kind") not in ("log", "input")]
    funds = fund_ids(records)
    fund = args.fund
    if fund is None:
        if len(funds) != 1:
            raise InvalidInput("--fund", None, f"is required (funds in the log: {', '.join(funds) or 'none'})")
        fund = funds[0]
    if fund not in funds:
        raise InvalidInput("--fund", fund, f"not a fund of the log (funds in the log: {', '.join(funds) or 'none'})")
    currency = fund.rsplit("/", 1)[-1]
    if currency not in profile.currencies:
        raise InvalidInput("--fund", fund, f"currency {currency} is not defined by profile {profile.name!r}")
    decimals = profile.currencies[currency].decimals
    h = fund_history(records, fund, profile.fund, decimals)
    if args.format == "json":
        text = json.dumps(history_json(h), indent=2) + "\n"
    elif args.format == "csv":
        text = {"history": history_csv, "flows": flows_csv, "daily": daily_csv}[args.table](h)
    else:
        text = history_text(h)
    if svg is not None:
        aview = "settled" if profile.adl.balance_view.value == "settled" else "available"
        chart = fund_history_svg(h.balance_points(args.view), f"Insurance fund {fund} ({args.view})",
                                 decimals=decimals, unit=currency, offset_minutes=h.offset_minutes,
                                 view=args.view, adl=profile.adl, adl_points=h.balance_points(aview),
                                 adl_view=aview, events=chart_events(records, fund))
        try:
            svg.write_text(chart, encoding="utf-8")
        except OSError as e:
            raise InvalidInput("--svg", args.svg, f"cannot write: {e.strerror or e}") from None
    out.write(text)
    return 0
