"""``backstop check-trace`` (backstop/checktrace.py) and the trace ``backstop simulate`` writes.

The expected line numbers, fields and rules below are found by reading the log files (the line
of the planted record, the rules that line carried before it was altered), and the planted deficit
is derived by hand from crash.toml -- never copied from check-trace's own output.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backstop import checktrace as CT
from backstop import history as H
from backstop import simulate as SIM

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCENARIOS = ("calm", "crash", "drawdown")
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Each example scenario simulated once: name -> (run result, DIR)."""
    out = {}
    for name in SCENARIOS:
        d = tmp_path_factory.mktemp(f"sim-{name}")
        res = SIM.run_scenario(SIM.load_scenario(EXAMPLES / f"{name}.toml"))
        SIM.write_outputs(res, d)
        out[name] = (res, d)
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return path


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    ap = argparse.ArgumentParser(prog="backstop")
    CT.register_cli(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["check-trace", *argv])
    code = args.func(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _line_of(lines: list[str], pred, nth: int = 0) -> int:
    """1-based number of the ``nth`` line whose JSON object satisfies ``pred``."""
    hits = [n for n, x in enumerate(lines, start=1) if pred(json.loads(x))]
    return hits[nth]


# ------------------------------------------------------------------ the simulate log as a trace

@pytest.mark.parametrize("name", SCENARIOS)
def test_the_example_scenarios_logs_are_consistent(name, logs, capsys):
    res, d = logs[name]
    trace = d / "trace.jsonl"
    code, out, err = _run([str(trace), "--json", str(d / "check.json")], capsys)
    assert code == 0, out + err
    # inputs: the opening state and every event of the scenario file; outputs: every record of the run
    n_events = len(SIM.load_scenario(EXAMPLES / f"{name}.toml").events)
    assert out == (f"{trace}: consistent: {n_events + 1} inputs replayed (the opening state and {n_events} events), "
                   f"{len(res.records)} output records agree with the reference (profile okx)\n")
    rep = json.loads((d / "check.json").read_text(encoding="utf-8"))
    assert rep["result"] == "consistent" and rep["difference"] is None
    assert rep["inputs"] == n_events + 1 and rep["outputs_agreed"] == len(res.records)


@pytest.mark.parametrize("name", SCENARIOS)
def test_trace_carries_the_inputs_and_the_event_logs_records(name, logs):
    res, d = logs[name]
    scn = res.scenario
    trace = _lines(d / "trace.jsonl")
    objs = [json.loads(x) for x in trace]
    head = objs[0]
    assert head == {"kind": "log", "format": "backstop-trace/1", "time_ms": scn.start_ms, "profile": "okx",
                    "currencies": {"BTC": 8, "USDT": 6}, "scenario": scn.name}  # okx.toml: BTC 8, USDT 6
    assert objs[1]["kind"] == "input" and objs[1]["type"] == "state"
    assert [a["id"] for a in objs[1]["accounts"]] == [a.id for a in scn.accounts]
    inputs = [o for o in objs[2:] if o["kind"] == "input"]
    assert [(o["type"], o["time_ms"]) for o in inputs] == [(e.type, e.time_ms) for e in scn.events]
    # the record lines are exactly events.jsonl's, in the same order (its readers are unaffected)
    # after events.jsonl's own header (the same profile and decimals, format backstop-events/1; C67)
    records = [x for x, o in zip(trace, objs) if o["kind"] not in ("log", "input")]
    events = _lines(d / "events.jsonl")
    assert json.loads(events[0]) == {**head, "format": "backstop-events/1"}
    assert records == events[1:]
    assert len(events) == len(res.records) + 1


def test_fund_history_reads_the_trace_as_it_reads_events_jsonl(logs, capsys):
    _, d = logs["crash"]
    ap = argparse.ArgumentParser(prog="backstop")
    H.register_cli(ap.add_subparsers(dest="command"))
    outs = []
    for f in ("events.jsonl", "trace.jsonl"):
        args = ap.parse_args(["fund-history", str(d / f), "--format", "csv", "--table", "flows"])
        assert args.func(args) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and "liquidation deficit" in outs[0]


def test_the_trace_lines_validate_against_the_schema(logs):
    spec = importlib.util.spec_from_file_location("oracle_schema", ROOT / "tests" / "unit" / "test_oracle_schema.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    schema = json.loads((ROOT / "spec" / "schema" / "trace.schema.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and "/v1/" in schema["$id"]
    for name in SCENARIOS:
        for n, x in enumerate(_lines(logs[name][1] / "trace.jsonl"), start=1):
            assert mod.errors(schema, json.loads(x), schema) == [], f"{name} line {n}"
    # and it refuses what check-trace refuses
    for bad in ({"kind": "input", "type": "mark", "time_ms": 1, "instrument": "X", "price": "0"},
                {"kind": "input", "type": "wire", "time_ms": 1},
                {"kind": "log", "format": "backstop-trace/2", "time_ms": 0, "profile": "okx", "currencies": {}},
                {"kind": "input", "type": "top_up", "time_ms": 1, "fund": "perpetual_futures/BTC-USDT/USDT",
                 "amount": "1.5"},
                {"time_ms": 1}):
        assert mod.errors(schema, bad, schema) != [], bad


# ------------------------------------------------------------------ planted differences

def test_a_planted_wrong_fund_delta_is_reported_at_its_line_with_its_rules(logs, tmp_path, capsys):
    _, d = logs["crash"]
    lines = _lines(d / "trace.jsonl")
    # crash.toml: l1 is long 300 contracts (0.01 BTC each) from 30,000 with 3,000 USDT isolated margin,
    # so its bankruptcy price is 30,000 - 3,000 / (300 x 0.01) = 29,000; the engine sells 66.66 contracts
    # into the 27,500 bid: result 66.66 x 0.01 x (27,500 - 29,000) = -999.9 USDT = -999,900,000 units.
    n = _line_of(lines, lambda o: o["kind"] == "liquidation deficit" and o.get("account") == "l1")
    rec = json.loads(lines[n - 1])
    assert rec["amount"] == "-999900000"
    rec["amount"] = str(int(rec["amount"]) + 1)  # one unit off
    lines[n - 1] = json.dumps(rec, sort_keys=True)
    bad = _write(tmp_path / "planted.jsonl", lines)
    input_line = max(k for k in range(1, n) if json.loads(lines[k - 1])["kind"] == "input")
    code, out, _ = _run([str(bad), "--json", str(tmp_path / "r.json")], capsys)
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(f"{bad}:{n}: a record differs (outputs of the input at line {input_line}: mark ")
    assert "  amount: expected -999900000, got -999899999" in out.splitlines()
    # the rules the deficit record carries in the log: INS-004 (deficit paid up to the balance), INS-003
    rules = json.loads(_lines(d / "trace.jsonl")[n - 1])["rules"]
    assert "INS-004" in rules
    assert f"  rule(s): {', '.join(rules)}" in out.splitlines()
    rep = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    diff = rep["difference"]
    assert rep["result"] == "differs" and diff["what"] == "differs" and diff["line"] == n
    assert diff["input_line"] == input_line and diff["rules"] == rules
    assert diff["fields"] == [{"field": "amount", "expected": "-999900000", "got": "-999899999"}]


def test_a_planted_top_up_amount_is_reported(logs, tmp_path, capsys):
    _, d = logs["crash"]
    lines = _lines(d / "trace.jsonl")
    # crash.toml tops the fund up by 2,000 USDT later in the day: the second top-up record
    n = _line_of(lines, lambda o: o["kind"] == "top-up", nth=1)
    rec = json.loads(lines[n - 1])
    assert rec["amount"] == str(2_000 * 10 ** 6)
    rec["amount"] = str(2_000 * 10 ** 6 - 1)
    lines[n - 1] = json.dumps(rec)
    code, out, _ = _run([str(_write(tmp_path / "t.jsonl", lines))], capsys)
    assert code == 1
    assert out.splitlines()[0].startswith(f"{tmp_path / 't.jsonl'}:{n}: a record differs")
    assert "  rule(s): INS-006" in out.splitlines()


def test_a_missing_output_record_is_reported(logs, tmp_path, capsys):
    _, d = logs["crash"]
    lines = _lines(d / "trace.jsonl")
    n = _line_of(lines, lambda o: o["kind"] == "engine fill")  # the first fill (l1's 66.66 contracts)
    removed = json.loads(lines[n - 1])
    del lines[n - 1]
    bad = _write(tmp_path / "missing.jsonl", lines)
    code, out, _ = _run([str(bad), "--json", str(tmp_path / "r.json")], capsys)
    assert code == 1
    # the record that should be at line n is missing; the line now there is the next record
    assert out.splitlines()[0].startswith(f"{bad}:{n}: a record is missing")
    assert out.splitlines()[1].startswith("  expected: engine fill (account l1 ")
    diff = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["difference"]
    assert diff["what"] == "missing" and diff["line"] == n and diff["got"] is None
    assert diff["expected"] == removed and diff["rules"] == removed["rules"]


def test_a_missing_last_record_is_reported_at_the_end(logs, tmp_path, capsys):
    _, d = logs["calm"]
    lines = _lines(d / "trace.jsonl")
    last = json.loads(lines[-1])
    assert last["kind"] != "input"  # calm's last event emits records
    bad = _write(tmp_path / "short.jsonl", lines[:-1])
    code, out, _ = _run([str(bad)], capsys)
    assert code == 1
    assert out.splitlines()[0].startswith(f"{bad}:{len(lines)}: a record is missing")
    assert "at the end" in out and f"rule(s): {', '.join(last['rules'])}" in out


def test_an_extra_output_record_is_reported(logs, tmp_path, capsys):
    _, d = logs["calm"]
    lines = _lines(d / "trace.jsonl")
    n = _line_of(lines, lambda o: o["kind"] == "liquidation surplus")
    # an engine that books the same surplus twice: a copy right after it
    lines.insert(n, lines[n - 1])
    bad = _write(tmp_path / "extra.jsonl", lines)
    code, out, _ = _run([str(bad), "--json", str(tmp_path / "r.json")], capsys)
    assert code == 1
    assert out.splitlines()[0].startswith(f"{bad}:{n + 1}: an extra record")
    diff = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["difference"]
    assert diff["what"] == "extra" and diff["line"] == n + 1 and diff["expected"] is None
    assert diff["got"] == json.loads(lines[n]) and diff["rules"] == json.loads(lines[n])["rules"]


def test_an_extra_record_after_an_input_with_no_records(logs, tmp_path, capsys):
    _, d = logs["crash"]
    lines = _lines(d / "trace.jsonl")
    objs = [json.loads(x) for x in lines]
    # the first input directly followed by another input emitted nothing (crash: a book replacement
    # with no open remainder); an engine that logs a withdrawal there, with no rules named
    n = next(k for k in range(2, len(objs)) if objs[k - 1]["kind"] == "input" and objs[k]["kind"] == "input")
    assert objs[n - 1]["type"] == "book"
    lines.insert(n, json.dumps({"kind": "withdrawal", "time_ms": objs[n - 1]["time_ms"],
                                "fund": "perpetual_futures/BTC-USDT/USDT", "amount": "1"}))
    bad = _write(tmp_path / "x.jsonl", lines)
    code, out, _ = _run([str(bad)], capsys)
    assert code == 1
    assert out.splitlines()[0] == f"{bad}:{n + 1}: an extra record (outputs of the input at line {n}: book BTC-USDT-SWAP)"
    assert "  rule(s): none named" in out.splitlines()


# ------------------------------------------------------------------ what an engine's log may differ in

def test_an_engine_log_without_rules_with_other_spellings_and_only_some_kinds(logs, tmp_path, capsys):
    _, d = logs["crash"]
    fund_kinds = sorted(H.FLOW_KINDS) + ["forced liquidation injection", "overloss loss"]
    out_lines = []
    for x in _lines(d / "trace.jsonl"):
        o = json.loads(x)
        if o["kind"] == "log":
            o["outputs"] = fund_kinds
        elif o["kind"] != "input":
            if o["kind"] not in fund_kinds:
                continue
            del o["rules"]
            o = {k: (v + ".0" if isinstance(v, str) and re.fullmatch(r"-?\d+", v) else v) for k, v in o.items()}
        out_lines.append(json.dumps(o))
    good = _write(tmp_path / "funds-only.jsonl", out_lines)
    code, out, _ = _run([str(good)], capsys)
    assert code == 0, out
    # and a wrong delta is still found there: the first deficit's "paid" one unit low
    n = _line_of(out_lines, lambda o: o["kind"] == "liquidation deficit")
    o = json.loads(out_lines[n - 1])
    o["paid"] = "999899999"
    out_lines[n - 1] = json.dumps(o)
    code, out, _ = _run([str(_write(tmp_path / "funds-bad.jsonl", out_lines))], capsys)
    assert code == 1 and f":{n}: a record differs" in out.splitlines()[0]
    assert "  paid: expected 999900000, got 999899999" in out.splitlines()


# ------------------------------------------------------------------ logs that cannot be read (exit 2)

@pytest.mark.parametrize("change,needle", [
    (lambda o: "{not json", "not JSON"),
    (lambda o: json.dumps(o).replace('"29800"', "29800.0"), "a JSON float"),
    (lambda o: json.dumps({k: v for k, v in o.items() if k != "kind"}), "needs a 'kind'"),
    (lambda o: json.dumps(dict(o, price="-5")), "must be > 0"),
    (lambda o: json.dumps(dict(o, type="wire")), "not an input type"),
])
def test_a_malformed_line_exits_2_naming_it(change, needle, logs, tmp_path, capsys):
    _, d = logs["crash"]
    lines = _lines(d / "trace.jsonl")
    n = _line_of(lines, lambda o: o["kind"] == "input" and o["type"] == "mark")  # the first mark, 29800
    assert json.loads(lines[n - 1])["price"] == "29800"
    lines[n - 1] = change(json.loads(lines[n - 1]))
    bad = _write(tmp_path / "bad.jsonl", lines)
    code, out, err = _run([str(bad), "--json", str(tmp_path / "r.json")], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {bad}: line {n}: ") and needle in err, err
    rep = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert rep["result"] == "error" and rep["error"]["line"] == n


def test_header_problems_exit_2(logs, tmp_path, capsys):
    _, d = logs["calm"]
    lines = _lines(d / "trace.jsonl")
    head = json.loads(lines[0])
    cases = [
        (dict(head, currencies={"BTC": 8, "USDT": 2}), "currencies.USDT"),   # not okx's 6 decimals
        (dict(head, profile="nosuch"), "no such profile"),
        (dict(head, format="backstop-trace/0"), "format"),
    ]
    for h, needle in cases:
        code, _, err = _run([str(_write(tmp_path / "h.jsonl", [json.dumps(h)] + lines[1:]))], capsys)
        assert code == 2 and "line 1: " in err and needle in err, err
    code, _, err = _run([str(_write(tmp_path / "h.jsonl", lines[1:]))], capsys)   # no header
    assert code == 2 and "line 1: the first line must be the header" in err
    code, _, err = _run([str(d / "trace.jsonl"), "--profile", "binance"], capsys)
    assert code == 2 and "'okx'" in err and "'binance'" in err
    code, _, err = _run([str(tmp_path / "absent.jsonl")], capsys)
    assert code == 2 and "cannot read" in err


# ------------------------------------------------------------------ the README runs as printed

def _readme_section() -> str:
    i = README.index("## Checking an engine's log")
    j = README.index("\n## ", i + 1)
    return README[i:j]


def test_the_readme_section_runs_as_printed(tmp_path):
    (tmp_path / "examples").symlink_to(EXAMPLES)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    blocks = re.findall(r"```console\n(.*?)```", _readme_section(), re.S)
    assert len(blocks) == 2
    ran = 0
    for block in blocks:
        items: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                items.append((line[2:], []))
            else:
                items[-1][1].append(line)
        for cmd, shown in items:
            m = re.search(r"#\s*exit (\d+)\s*$", cmd)
            p = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert p.returncode == (int(m.group(1)) if m else 0), cmd + "\n" + p.stdout + p.stderr
            assert p.stdout.splitlines() == shown, cmd
            ran += 1
    assert ran == 3
    assert (tmp_path / "build" / "crash-planted.json").is_file()


def test_the_readme_check_can_fail(tmp_path, logs):
    """The README's planted example really changes one line (the sed pattern occurs once)."""
    _, d = logs["crash"]
    cmd = re.search(r"\$ (sed .*?) build/sim-crash", _readme_section()).group(1)
    pattern = re.search(r"s/(.*?)/", cmd).group(1)
    assert sum(pattern in x for x in _lines(d / "trace.jsonl")) == 1
