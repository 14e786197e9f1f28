"""The charts of ``backstop simulate`` (``chart.svg``) and ``backstop fund-history --svg``, in one style.

Drawn with matplotlib's SVG backend.  The same input always gives the same bytes:

* ``svg.hashsalt`` is fixed (the ids of clip paths and markers are hashes of the salt and the
  content, not random), and the salt is derived from the chart's title, so two charts inlined in
  one HTML page do not share ids by accident;
* the ``Date`` metadata is dropped (``metadata={"Date": None}``);
* every style setting starts from matplotlib's built-in defaults (a user's ``matplotlibrc`` cannot
  change the output), text is written as SVG text (``svg.fonttype = "none"``), and the layout is
  computed from the fonts matplotlib ships (DejaVu Sans);
* matplotlib is pinned to a minor version in ``pyproject.toml``: another version may draw other bytes.

Exact numbers stop here.  Everything that reaches this module is an ``int`` or a
:class:`fractions.Fraction` (prices, balances, the ADL-001 threshold, computed by the reference's own
functions); they are converted to ``float`` only in :func:`_x` / :func:`_y`, at the plotting
boundary, because a plot has finite resolution anyway.  ``reference/`` itself stays float-free:
nothing computed here flows back into a rule.

matplotlib is imported lazily, only when a chart is written (``backstop eval`` does not load it).
Times are drawn in UTC (the axis says so); money axes are labelled with their currency and are not
forced to include 0, so a move of a few percent stays visible.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, Sequence

from backstop.reference.events import BalancePoint
from backstop.reference.types import format_exact

__all__ = ["Line", "Events", "Panel", "render_svg", "drawdown_threshold", "Threshold", "STYLE",
           "LIQUIDATION", "ADL"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

LIQUIDATION = "liquidation"
ADL = "adl"

# one style for every chart; applied on top of matplotlib's built-in defaults
STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 11.0,
    "axes.titlesize": 12.0,
    "axes.titlelocation": "left",
    "axes.labelsize": 11.0,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 10.0,
    "legend.frameon": False,
    "xtick.labelsize": 10.0,
    "ytick.labelsize": 10.0,
    "lines.linewidth": 1.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
PALETTE = ("#1f4e9c", "#1b7837", "#762a83", "#8c510a", "#b35806")
ADL_OFFSET = 12  # points: ADL triangles (8 pt) sit this far above liquidation circles (9 pt) at one instant
COLORS = {LIQUIDATION: "#e66101", ADL: "#d7191c", "threshold": "#d7191c"}


@dataclass(frozen=True)
class Line:
    """A series: ``points`` are ``(time_ms, value)`` with exact values; ``step``: the value holds
    until the next point (and the last one until the chart's end)."""
    label: str
    points: tuple[tuple[int, Fraction], ...]
    step: bool = True
    dashed: bool = False
    color: str = ""
    threshold: bool = False


@dataclass(frozen=True)
class Events:
    """Markers of one kind (:data:`LIQUIDATION` or :data:`ADL`) at ``(time_ms, value, count)``;
    ``count`` > 1 is written beside the marker.  Liquidations are open circles at the value, ADL
    fills filled triangles drawn 11 points above it, so both stay visible at one instant."""
    kind: str
    label: str
    points: tuple[tuple[int, Fraction, int], ...]


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str                       # with the unit: "balance (USDT)"
    lines: tuple[Line, ...] = ()
    events: tuple[Events, ...] = ()
    spans: tuple[tuple[int, int], ...] = ()   # intervals shaded (the ADL-001 trigger held)
    span_label: str = ""
    decimals: int = 2                 # at most this many decimals in the tick labels
    note: str = ""                    # text in the legend column, under the legend


# ---------------------------------------------------------------- ADL-001, exact

@dataclass(frozen=True)
class Threshold:
    """The ADL-001 drawdown threshold over time, in the fund's smallest units (exact)."""
    points: tuple[tuple[int, Fraction], ...]       # (time_ms, threshold); a step function
    held: tuple[tuple[int, int], ...]              # intervals in which trigger (b) held
    step: bool                                     # False for the "average" reference (sampled)


def drawdown_threshold(rules: Any, history: Sequence[BalancePoint], t0: int, t1: int,
                       samples: int = 240) -> Threshold:
    """ADL-001 as the reference states it (``backstop.reference.adl``): at each instant ``t`` the
    trigger holds when the balance is at or below ``(1 - drawdown_fraction)`` times the reference
    balance of the window ``[t - window, t]`` (its peak, or its time-weighted average).

    Evaluated with the reference's own functions, exactly, at every instant where the peak can
    change -- each history point's time and that time plus the window (when the point leaves the
    window) -- so for the peak reference the result is exact as a step function; the average
    reference varies between those instants and is sampled ``samples`` times more.  Empty when the
    trigger is disabled (fraction 1) or no reference balance exists."""
    from backstop.reference import adl as A
    hist = tuple(sorted(history, key=lambda p: p.time_ms))
    if not hist or rules.drawdown_fraction >= 1:
        return Threshold((), (), True)
    w = rules.drawdown_window_seconds * 1000
    times = {t0, t1}
    for p in hist:
        times.update((p.time_ms, p.time_ms + w))
    peak_ref = getattr(rules.drawdown_reference, "value", rules.drawdown_reference) == "peak"
    if not peak_ref and t1 > t0:
        times.update(t0 + (t1 - t0) * k // samples for k in range(samples + 1))
    pts: list[tuple[int, Fraction]] = []
    held: list[tuple[int, int]] = []
    start: int | None = None
    grid = sorted(t for t in times if t0 <= t <= t1)
    for t in grid:
        exists, ref = A.compute_drawdown_reference(rules, hist, t)
        if exists and ref > 0:
            pts.append((t, Fraction(A.compute_drawdown_threshold(rules, ref))))
        on = bool(A.is_drawdown_trigger(rules, hist, t))
        if on and start is None:
            start = t
        elif not on and start is not None:
            held.append((start, t))
            start = None
    if start is not None:
        held.append((start, t1))
    return Threshold(tuple(pts), tuple(held), peak_ref)


def percent(f: Fraction) -> str:
    return format_exact(Fraction(f) * 100) + "%"


def duration(seconds: int) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % n == 0:
            return f"{seconds // n} {unit}"
    return f"{seconds} s"


# ---------------------------------------------------------------- the float boundary

def _x(time_ms: int) -> Any:
    """A time as a matplotlib date (float days); the only place times become floats."""
    from matplotlib import dates as mdates
    return mdates.date2num(_EPOCH + timedelta(milliseconds=time_ms))  # type: ignore[no-untyped-call]  # matplotlib.dates is not annotated


def _y(v: int | Fraction) -> float:
    """An exact value as a float for plotting; the only place values become floats."""
    return float(Fraction(v))


def _salt(title: str) -> str:
    return "backstop:" + hashlib.sha256(title.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- drawing

def _draw_panel(ax: Any, panel: Panel, n: int, t0: int, t1: int) -> None:
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter
    from matplotlib.transforms import offset_copy
    ax.set_title(panel.title)
    ax.set_ylabel(panel.ylabel)
    for a, b in panel.spans:
        label = panel.span_label if (a, b) == panel.spans[0] else None
        if a == b:   # held at one instant only (the last one): a thin band, not an invisible one
            art = ax.axvline(_x(a), color=COLORS["threshold"], alpha=0.25, lw=4, label=label)
        else:
            art = ax.axvspan(_x(a), _x(b), color=COLORS["threshold"], alpha=0.08, lw=0, label=label)
        art.set_gid(f"held{n + 1}-{panel.spans.index((a, b)) + 1}")
    for k, line in enumerate(panel.lines):
        pts = list(line.points)
        if not pts:
            continue
        if line.step and pts[-1][0] < t1:
            pts.append((t1, pts[-1][1]))
        xs = [_x(t) for t, _ in pts]
        ys = [_y(v) for _, v in pts]
        color = line.color or (COLORS["threshold"] if line.threshold else PALETTE[k % len(PALETTE)])
        style: dict[str, Any] = dict(color=color, label=line.label, drawstyle="steps-post" if line.step else "default")
        if line.threshold:
            style.update(linestyle=(0, (6, 3)), linewidth=1.2)
        elif line.dashed:
            style.update(linestyle=(0, (2, 2)), linewidth=1.2)
        (art,) = ax.plot(xs, ys, **style)
        art.set_gid(f"threshold{n + 1}" if line.threshold else f"line{n + 1}-{k + 1}")
    for ev in panel.events:
        if not ev.points:
            continue
        color = COLORS.get(ev.kind, "black")
        xs = [_x(t) for t, _, _ in ev.points]
        ys = [_y(v) for _, v, _ in ev.points]
        if ev.kind == ADL:
            # drawn above the value (an offset in points, whatever the scale), pointing down at it
            tr = offset_copy(ax.transData, fig=ax.figure, x=0, y=ADL_OFFSET, units="points")
            (art,) = ax.plot(xs, ys, linestyle="none", marker="v", markersize=8, color=color, transform=tr,
                             label=ev.label, zorder=5)
            dy = ADL_OFFSET
        else:
            (art,) = ax.plot(xs, ys, linestyle="none", marker="o", markersize=9, markerfacecolor="none",
                             markeredgewidth=1.5, color=color, label=ev.label, zorder=4)
            dy = -12
        art.set_gid(f"{ev.kind}{n + 1}")
        for x, y, (_, _, count) in zip(xs, ys, ev.points):
            if count > 1:
                ax.annotate(f"{count}\u00d7", (x, y), xytext=(7, dy), textcoords="offset points",
                            color=color, fontsize=9.5, va="center")
    span = (t1 - t0) or 3_600_000
    ax.set_xlim(_x(t0), _x(t0 + span + span // 40))   # a little room after the last instant
    ax.margins(y=0.12)   # autoscaled: a money axis is not forced to include 0
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.%df}" % _tick_decimals(ax, panel.decimals)))
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        leg = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                        title=panel.note or None, title_fontsize=9.5, alignment="left")
        leg.set_gid(f"legend{n + 1}")
    ax.set_gid(f"panel{n + 1}")


def _tick_decimals(ax: Any, most: int) -> int:
    """Decimals the y tick labels need (the step of the ticks), at most ``most``."""
    ticks = ax.get_yticks()
    if len(ticks) < 2:
        return 0
    step = Fraction(abs(ticks[1] - ticks[0])).limit_denominator(10 ** 6)
    for d in range(0, most + 1):
        if (step * 10 ** d).denominator == 1:
            return d
    return most


def render_svg(title: str, subtitle: str, panels: Sequence[Panel], t0: int, t1: int, *,
               width: int = 960, panel_height: int = 240, xnote: str = "") -> str:
    """The panels stacked on one UTC time axis, as an SVG document (a string starting ``<svg``,
    without XML prolog, so it can be inlined in HTML).  ``width`` is in pixels."""
    import matplotlib
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure
    panels = list(panels) or [Panel("no data", "")]
    height = 80 + panel_height * len(panels) + 40
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)
        matplotlib.rcParams["svg.hashsalt"] = _salt(title)
        # 1 pt of the figure = 1 px of the page: the SVG's viewBox is then exactly width x height
        fig = Figure(figsize=(width / 72, height / 72), dpi=72, layout="constrained")
        fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), x=0.01, ha="left", fontsize=13)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        locator = mdates.AutoDateLocator(tz=timezone.utc, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]  # matplotlib.dates is not annotated
        for n, (ax, panel) in enumerate(zip(axes, panels)):
            _draw_panel(ax, panel, n, t0, t1)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=timezone.utc))  # type: ignore[no-untyped-call]  # matplotlib.dates is not annotated
        axes[-1].set_xlabel("time (UTC)" + (f"; {xnote}" if xnote else ""))
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # sizes in px (the viewBox is in the figure's points, 1 pt = 1 px here)
    svg = re.sub(r'<svg([^>]*?) width="([\d.]+)pt" height="([\d.]+)pt"',
                 lambda m: f'<svg{m.group(1)} width="{m.group(2)}px" height="{m.group(3)}px"', svg, count=1)
    return svg
