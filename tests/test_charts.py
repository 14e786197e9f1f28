"""The charts (``backstop.charts``, matplotlib's SVG backend) of ``backstop simulate`` and
``backstop fund-history --svg``: read back from the SVG bytes with ``xml.etree``.

Expected values come from the scenario's own header (examples/drawdown.toml, derived by hand there):
the fund's settled balance falls from 10,000 to 6,500 USDT at the 08:00 UTC settlement, at or
below 0.7 x 10,000 = 7,000 (the ADL-001 threshold), so trigger (b) holds from 08:00 UTC to the end
of the run (12:00 UTC); d3 is liquidated at 09:00 UTC and deleveraged against s2 at the same instant.
Geometry is compared with the chart's own tick marks (the ``7,000`` tick, the ``08:00`` tick): a
threshold drawn at the wrong level or a span in the wrong time zone misses them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from backstop import history as H
from backstop import simulate as SIM
from backstop.reference.events import BalancePoint

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NS = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"
T = 1_767_571_200_000  # 2026-01-05T00:00:00Z
H1 = 3_600_000


@pytest.fixture(scope="module")
def drawdown():
    pytest.importorskip("backstop.reference.step")
    res = SIM.run_scenario(SIM.load_scenario(EXAMPLES / "drawdown.toml"), check=True)
    return res, SIM.chart_svg(res)


# ---------------------------------------------------------------- reading the SVG back

def _groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("id"): g for g in root.iter(f"{NS}g") if g.get("id")}


def _texts(el: ET.Element) -> list[str]:
    return [t.text or "" for t in el.iter(f"{NS}text")]


def _coords(el: ET.Element) -> list[tuple[float, float]]:
    """Every (x, y) an element draws at: path vertices, <use> and <text> positions."""
    out = []
    for e in el.iter():
        if e.tag == f"{NS}path" and e.get("d"):
            nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", e.get("d"))]
            out += list(zip(nums[0::2], nums[1::2]))
        elif e.tag in (f"{NS}use", f"{NS}text") and e.get("x") is not None:
            out.append((float(e.get("x")), float(e.get("y"))))
        elif e.tag == f"{NS}text" and (m := re.match(r"translate\(([-\d.]+) ([-\d.]+)\)", e.get("transform", ""))):
            out.append((float(m.group(1)), float(m.group(2))))
    return out


def _axes_box(panel: ET.Element) -> tuple[float, float, float, float]:
    """The plot area of a panel: its background patch, the first path of the axes group."""
    xs, ys = zip(*_coords(next(panel.iter(f"{NS}path"))))
    return min(xs), min(ys), max(xs), max(ys)


def _ticks(panel: ET.Element, axis: str) -> dict[str, float]:
    """Tick label -> the tick mark's position (x for the time axis, y for the value axis)."""
    out = {}
    for g in panel.iter(f"{NS}g"):
        if (g.get("id") or "").startswith(f"{axis}tick_"):
            use = next(g.iter(f"{NS}use"))
            label = " ".join(t for t in _texts(g) if t)
            out[label] = float(use.get("x" if axis == "x" else "y"))
    return out


# ---------------------------------------------------------------- simulate's chart

def test_chart_has_ticks_units_and_a_utc_time_axis(drawdown):
    _, svg = drawdown
    root = ET.fromstring(svg)
    g = _groups(root)
    mark, fund = g["panel1"], g["panel2"]
    # value axes: tick labels, units in the axis labels
    assert {"28,000", "29,000", "30,000"} <= set(_ticks(mark, "y")), _ticks(mark, "y")
    assert {"7,000", "10,000"} <= set(_ticks(fund, "y")), _ticks(fund, "y")
    assert "mark price (USDT per BTC)" in _texts(mark) and "balance (USDT)" in _texts(fund)
    # time axis: in UTC, and labelled so; the first liquidation is at 02:00Z (10:00 in the fund's HKT)
    assert any(t.startswith("time (UTC)") for t in _texts(fund))
    assert {"02:00", "08:00", "12:00"} <= set(_ticks(fund, "x")), _ticks(fund, "x")
    # a fund axis is not forced to 0: the balance never goes below 6,500 USDT
    assert "0" not in _ticks(fund, "y") and min(int(t.replace(",", "")) for t in _ticks(fund, "y")) >= 6000


def test_legends_lie_outside_the_plot_areas(drawdown):
    _, svg = drawdown
    g = _groups(ET.fromstring(svg))
    for n in (1, 2):
        x0, y0, x1, y1 = _axes_box(g[f"panel{n}"])
        pts = _coords(g[f"legend{n}"])
        assert pts and min(x for x, _ in pts) > x1, (n, x1, min(x for x, _ in pts))


def test_drawdown_threshold_line_and_the_time_the_trigger_held(drawdown):
    _, svg = drawdown
    g = _groups(ET.fromstring(svg))
    fund = g["panel2"]
    assert "threshold1" not in g  # no threshold on the mark panel
    ys = {round(y, 3) for _, y in _coords(g["threshold2"])}
    y7000 = _ticks(fund, "y")["7,000"]
    assert ys == {round(y7000, 3)}, (ys, y7000)  # 0.7 x the 10,000 peak, all run long
    assert any("ADL-001 threshold: (1 \u2212 30%) \u00d7 8 h peak of settled" in t for t in _texts(g["legend2"]))
    # trigger (b) held from the 08:00 UTC settlement to the end of the run (12:00 UTC)
    (span,) = [e for k, e in g.items() if k.startswith("held2-")]
    xs = [x for x, _ in _coords(span)]
    xt = _ticks(fund, "x")
    assert min(xs) == pytest.approx(xt["08:00"], abs=0.01) and max(xs) == pytest.approx(xt["12:00"], abs=0.01)


def test_no_threshold_when_the_trigger_is_disabled(drawdown):
    import dataclasses
    res, _ = drawdown
    prof = res.scenario.profile
    off = dataclasses.replace(prof, adl=dataclasses.replace(prof.adl, drawdown_fraction=1))  # ADL-001: disabled
    res = dataclasses.replace(res, scenario=dataclasses.replace(res.scenario, profile=off))
    g = _groups(ET.fromstring(SIM.chart_svg(res)))
    assert "threshold2" not in g and not any(k.startswith("held") for k in g)


def test_adl_and_liquidation_markers_do_not_hide_each_other(drawdown):
    _, svg = drawdown
    g = _groups(ET.fromstring(svg))
    mark = g["panel1"]
    xt = _ticks(g["panel2"], "x")  # the panels share the time axis; only the bottom one is labelled
    liq = [(float(u.get("x")), float(u.get("y"))) for u in g["liquidation1"].iter(f"{NS}use")]
    adl = [(float(u.get("x")), float(u.get("y"))) for u in g["adl1"].iter(f"{NS}use")]
    assert len(liq) == 2 and len(adl) == 1  # liquidations at 02:00 (d1 and d2, "2x") and 09:00 (d3); ADL at 09:00
    # the two marker shapes differ (a circle and a triangle) and at 09:00 they do not overlap
    assert g["liquidation1"].find(f".//{NS}defs/{NS}path").get("d") != g["adl1"].find(f".//{NS}defs/{NS}path").get("d")
    nine = xt["08:00"] + (xt["10:00"] - xt["08:00"]) / 2
    (lx, ly), = [p for p in liq if p[0] == pytest.approx(nine, abs=0.01)]
    (ax, ay), = adl
    assert ax == pytest.approx(lx, abs=0.01)
    assert ly - ay >= 4.5 + 4 + 1  # circle radius 4.5, triangle half-height 4: at least 1 px apart
    assert "2\u00d7" in _texts(mark)  # two liquidations at 02:00 are counted, not drawn over each other


def test_chart_svg_is_byte_identical_across_runs_and_processes(drawdown, tmp_path):
    res, svg = drawdown
    assert SIM.chart_svg(res) == svg
    assert svg.startswith("<svg") and "<dc:date>" not in svg and "<?xml" not in svg
    code = ("import sys; from backstop import simulate as S; "
            "sys.stdout.write(S.chart_svg(S.run_scenario(S.load_scenario(sys.argv[1]))))")
    env = dict(os.environ, PYTHONHASHSEED="777", MPLCONFIGDIR=str(tmp_path / "mpl"))
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "drawdown.toml")], capture_output=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode("utf-8") == svg


def test_matplotlib_is_not_imported_by_eval():
    code = ("import sys, io, contextlib; from backstop import cli, simulate, history, charts\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    rc = cli.main(['eval', sys.argv[1]])\n"
            "print(rc, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "eval-okx-long.json")], capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.split() == ["0", "False"], out.stdout + out.stderr


# ---------------------------------------------------------------- fund-history's chart

def test_fund_history_chart_in_the_same_style():
    from backstop.reference.profile import load_profile
    okx = load_profile("okx")
    # 10,000 -> 6,000 USDT one hour later: 6,000 <= 0.7 x 10,000 = 7,000, so the trigger holds from T + 1 h
    pts = [BalancePoint(T, 10_000_000_000), BalancePoint(T + H1, 6_000_000_000), BalancePoint(T + 2 * H1, 6_000_000_000)]
    svg = H.fund_history_svg(pts, "fund <USDT>", decimals=6, unit="USDT", adl=okx.adl,
                             events=((T + H1, "liquidation"), (T + H1, "adl")))
    assert svg == H.fund_history_svg(list(reversed(pts)), "fund <USDT>", decimals=6, unit="USDT", adl=okx.adl,
                                     events=((T + H1, "liquidation"), (T + H1, "adl")))
    root = ET.fromstring(svg)
    g = _groups(root)
    panel = g["panel1"]
    assert "fund <USDT>" in _texts(root) and "balance (USDT)" in _texts(panel)
    yt, xt = _ticks(panel, "y"), _ticks(panel, "x")
    assert {"7,000", "10,000"} <= set(yt) and "0" not in yt
    assert {"00:00", "01:00", "02:00"} <= {k.split()[0] for k in xt} | set(xt), xt
    assert not any(re.search(r"\d[eE][-+]?\d", t) for t in _texts(root))  # plain decimals, no exponents
    assert {round(y, 3) for _, y in _coords(g["threshold1"])} == {round(yt["7,000"], 3)}
    (span,) = [e for k, e in g.items() if k.startswith("held1-")]
    assert min(x for x, _ in _coords(span)) == pytest.approx(xt["01:00"], abs=0.01)
    x0, y0, x1, y1 = _axes_box(panel)
    assert min(x for x, _ in _coords(g["legend1"])) > x1
    (lx, ly), = [(float(u.get("x")), float(u.get("y"))) for u in g["liquidation1"].iter(f"{NS}use")]
    (ax, ay), = [(float(u.get("x")), float(u.get("y"))) for u in g["adl1"].iter(f"{NS}use")]
    assert ax == pytest.approx(lx) and ly - ay >= 9.5
    empty = H.fund_history_svg([], "empty")
    assert _texts(ET.fromstring(empty)).count("no balance history") == 1
