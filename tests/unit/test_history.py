"""INS-010: the public fund history (backstop.history): tables, CSV / JSON export, the SVG chart
and the ``fund-history`` subcommand, from the records of a worked day."""

from __future__ import annotations

import argparse
import csv
import io
import json

import pytest

from backstop import history as H
from backstop.reference import fundbook as B
from backstop.reference.events import BalancePoint, FundKey
from backstop.reference.profile import load_profile

PERP = FundKey.parse("perpetual_futures/BTC-USDT/USDT")
T = 1_767_600_000_000  # 2026-01-05T16:00:00.000+08:00
H1 = 3_600_000


@pytest.fixture(scope="module")
def log():
    okx = load_profile("okx")
    st = B.new_state(okx)
    st, _ = B.top_up(st, PERP, 10_000_000_000, T - 7 * H1)
    st, _, _ = B.apply_liquidation_result(st, PERP, 1_200_000_000, T - 6 * H1)
    st, _, _ = B.apply_liquidation_result(st, PERP, -3_000_500_000, T - 1)
    st, _ = B.apply_fee(st, PERP, 500_000, T - 1, "venue")
    st, _, _ = B.apply_liquidation_result(st, PERP, -100, T)
    st, _ = B.settle(st, T + 24 * H1)
    st, _ = B.top_up(st, FundKey.parse("perpetual_futures/BTC-USD/BTC"), 5, T + 24 * H1)
    return okx, st.records, "".join(json.dumps(r.to_json()) + "\n" for r in st.records)


def test_INS_010_history_tables(log):
    okx, records, text = log
    h = H.fund_history(H.read_log(io.StringIO(text)), PERP.id, okx.fund, 6)
    assert h == H.fund_history(records, PERP.id, okx.fund, 6)  # Records or their JSON: the same history
    assert [p[2] for p in h.points][:3] == [10_000_000_000, 11_200_000_000, 8_199_500_000]
    flows = {f.kind: (f.direction, f.count, f.amount) for f in h.flows}
    assert flows["top-up"] == ("in", 1, 10_000_000_000)
    assert flows["liquidation surplus"] == ("in", 1, 1_200_000_000)
    assert flows["liquidation deficit"] == ("out", 2, 3_000_500_100)
    assert flows["liquidation fee"] == ("in", 1, 0)  # paid to the venue: not a fund inflow
    assert flows["overloss loss"] == ("settlement", 2, 1_800_500_100)
    d1, d2 = h.days
    assert (d1.window, d1.liquidations, d1.volume, d1.inflow, d1.outflow, d1.settled_net) == \
        (20457, 2, 4_200_500_000, 11_200_000_000, 3_000_500_000, -1_800_500_000)
    assert d1.net == 8_199_500_000
    assert (d2.window, d2.liquidations, d2.volume, d2.net, d2.settled_net) == (20458, 1, 100, -100, -100)


def test_INS_010_csv_json_text_exports(log):
    okx, records, _ = log
    h = H.fund_history(records, PERP.id, okx.fund, 6)
    rows = list(csv.reader(io.StringIO(H.daily_csv(h))))
    assert rows[0][:3] == ["settlement_date", "window", "liquidations"]
    assert rows[1] == ["2026-01-05", "20457", "2", "4200.5", "11200", "3000.5", "8199.5", "-1800.5"]
    hist = list(csv.reader(io.StringIO(H.history_csv(h))))
    assert hist[1] == [str(T - 7 * H1), "2026-01-05T09:00:00.000+08:00", "10000", "10000"]
    j = H.history_json(h)
    assert j["daily"][1]["net_flow"] == "-0.0001" and j["flows"][0]["amount"]
    json.dumps(j)  # plain JSON, no floats
    assert "e-" not in json.dumps(j)
    txt = H.history_text(h)
    assert "Per settlement day" in txt and "4200.5" in txt


def test_INS_010_svg_is_deterministic_and_exact():
    import re
    import xml.etree.ElementTree as ET
    pts = [BalancePoint(T, 10_000_000_000), BalancePoint(T + H1, 11_200_000_000), BalancePoint(T + 2 * H1, 0)]
    a = H.fund_history_svg(pts, "fund <USDT>", decimals=6, unit="USDT")
    b = H.fund_history_svg(list(reversed(pts)), "fund <USDT>", decimals=6, unit="USDT")
    assert a == b and a.startswith("<svg") and a.rstrip().endswith("</svg>")
    assert "fund &lt;USDT&gt;" in a
    texts = [t.text or "" for t in ET.fromstring(a).iter("{http://www.w3.org/2000/svg}text")]
    # balances 0 .. 11,200 USDT: the value axis has round ticks in coins (with a thousands separator)
    assert "balance (USDT)" in texts and {"0", "10,000"} <= set(texts), texts
    assert not any(re.search(r"\d[eE][-+]?\d", t) for t in texts)  # no exponent notation: plain decimals
    assert [t for t in texts if t == "no balance history"] == []
    empty = [t.text for t in ET.fromstring(H.fund_history_svg([], "empty")).iter("{http://www.w3.org/2000/svg}text")]
    assert empty.count("no balance history") == 1


def test_INS_010_cli_standalone(log, tmp_path, capsys):
    _, records, text = log
    path = tmp_path / "events.jsonl"
    path.write_text(text)
    ap = argparse.ArgumentParser(prog="backstop")
    H.register_cli(ap.add_subparsers(dest="command"))
    svg = tmp_path / "fund.svg"
    args = ap.parse_args(["fund-history", str(path), "--fund", PERP.id, "--format", "csv", "--table", "daily",
                          "--svg", str(svg)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("2026-01-05,20457,2,4200.5")
    assert svg.read_text().startswith("<svg")
    from backstop.cli import main  # refusals are raised, and printed as one line by the CLI's wrapper
    assert main(["fund-history", str(path)]) == 2  # two funds in the log: --fund is required
    assert "error: --fund: is required" in capsys.readouterr().err
    args = ap.parse_args(["fund-history", str(path), "--fund", PERP.id, "--format", "json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["fund"] == PERP.id
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "mark", "time_ms": 1, "instrument": "BTC-USDT-SWAP", "price": "100", "rules": ["MRG-002"]}\n'
                   'not json\n')
    assert main(["fund-history", str(bad)]) == 2 and f"{bad}:2: not valid JSON" in capsys.readouterr().err
