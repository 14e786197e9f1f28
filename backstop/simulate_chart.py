"""The chart of ``backstop simulate`` (``chart.svg``): a run's mark paths, fund balances, the ADL-001
threshold and liquidation / ADL markers, laid out here and drawn by ``backstop.charts`` (matplotlib,
imported only when a chart is drawn)."""

from __future__ import annotations

import bisect
from fractions import Fraction
from typing import Any, Sequence

from backstop.reference.events import FundKey, Record, fund_key_of
from backstop.reference.types import format_exact
from backstop.simulate_run import RunResult, active_funds, fund_points, is_liquidation

__all__ = ["chart_svg"]


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
    for fid in active_funds(res):
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
