"""Running a scenario through the reference step function, and the files ``backstop simulate`` writes.

:func:`run_scenario` feeds the events of a loaded :class:`~backstop.scenario.Scenario`, in file
order, to :func:`backstop.reference.step.process_event` (optionally checking every invariant after
every event), and :func:`write_outputs` writes

* ``events.jsonl`` -- every record, one JSON object per line (sorted keys, exact numbers as strings);
* ``trace.jsonl`` -- the same records with the run's inputs between them (:func:`trace_lines`), the
  log ``backstop check-trace`` replays;
* ``final_state.json`` -- a summary plus the final state (:func:`step.state_json`);
* ``fund_<id>.csv`` -- each fund's balance history (``backstop.history``), ``/`` in the id as ``_``;
* ``chart.svg`` -- mark price paths, fund balances, the ADL-001 threshold and liquidation / ADL markers
  (``backstop.simulate_chart``, drawn by ``backstop.charts``, matplotlib).

Nothing written depends on the clock, the machine or the path of the file: the same scenario
always gives byte-identical output.  Only the printed summary carries a speed (events/second).
The step function is imported when a scenario is run, not when this module is imported.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from backstop.reference.errors import InvalidInput
from backstop.reference.events import FundKey, Record
from backstop.reference.types import format_exact
from backstop.scenario import EVENT_TYPES, EventSpec, Scenario

__all__ = ["initial_state", "step_event", "RunResult", "run_scenario", "write_outputs", "trace_lines", "log_header",
           "TRACE_FORMAT", "EVENTS_FORMAT", "LIQUIDATION_KINDS", "is_liquidation", "fund_ids_of", "fund_points",
           "summary", "final_state_json", "fund_csv", "initial_records", "active_funds"]

LIQUIDATION_KINDS = ("partial liquidation", "full liquidation")


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


def initial_records(state: Any) -> tuple[Record, ...]:
    """The records of the opening state (before any event)."""
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
    init = initial_records(state)
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


def active_funds(res: RunResult) -> list[str]:
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
    for fid in active_funds(res):
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
    from backstop.simulate_chart import chart_svg  # it imports this module
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, str]] = [
        ("events.jsonl", _json_obj_line(log_header(res, EVENTS_FORMAT)) + "\n"
         + "".join(_json_line(r) + "\n" for r in res.records)),
        ("trace.jsonl", "".join(_json_obj_line(d) + "\n" for d in trace_lines(res))),
        ("final_state.json", json.dumps(final_state_json(res), indent=2, ensure_ascii=False) + "\n"),
    ]
    for fid in active_funds(res):
        files.append((f"fund_{fid.replace('/', '_')}.csv", fund_csv(res, fid)))
    files.append(("chart.svg", chart_svg(res)))
    paths = []
    for name, text in files:
        p = out / name
        p.write_bytes(text.encode("utf-8"))
        paths.append(p)
    return paths
