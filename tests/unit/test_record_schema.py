"""Record kinds as an enum with a field schema (issue 12, "A public face").

``backstop.reference.events.RecordKind`` names every kind the reference emits and
``RECORD_SCHEMA`` the fields of each (required, optional, and each field's type);
``check_record`` checks one JSON record against it.  Here: every record the three examples and a
2,000-event soak emit conforms (so the schema cannot drift from what the code emits), the kinds
written in the reference's source are the enum's, and ``backstop fund-history`` / ``backstop
check-trace`` refuse an unknown kind, a missing field and a wrong type with exit 2 and the line.
Expected values are written by hand."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import pytest

from backstop import simulate as SIM
from backstop.cli import main
from backstop.reference.errors import InvalidInput
from backstop.reference.events import COMMON_FIELDS, RECORD_SCHEMA, FieldType, RecordKind, check_record

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("calm", "crash", "drawdown")
FUND = "perpetual_futures/BTC-USDT/USDT"

# every kind, by hand from reading reference/step.py, reference/fundbook.py and reference/adl.py
KINDS_BY_HAND = {
    "mark", "liquidation trigger", "partial liquidation", "full liquidation", "cross partial refused",
    "engine fill", "engine close", "bankrupt remainder", "surplus to user", "uncovered deficit", "adl trigger",
    "notification", "adl state", "adl",
    # fundbook: f"{what} {sign}" for what in (liquidation, adl), sign in (surplus, deficit); the fee;
    # the platform's top-up and withdrawal; the daily settlement's two directions (SETTLEMENT_KINDS)
    "liquidation surplus", "liquidation deficit", "adl surplus", "adl deficit", "liquidation fee",
    "top-up", "withdrawal", "forced liquidation injection", "overloss loss",
}


def _example_records(name: str) -> list[dict]:
    res = SIM.run_scenario(SIM.load_scenario(ROOT / "examples" / f"{name}.toml"))
    return [r.to_json() for r in res.records]


def _soak_records(n_events: int = 2000, episode: int = 400, accounts: int = 120) -> list[dict]:
    """The records of the soak's first ``n_events`` events (bench/bench_soak.py's worlds and events,
    seed 13, without its invariant checks), the worlds' opening records included."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_soak as B
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from backstop.reference import step as S
    from backstop.simulate_run import initial_records
    out: list[dict] = []
    for e in range(-(-n_events // episode)):
        world = B.World(random.Random(f"13:{e}"), accounts, 1_795_766_399_000 + (e % 50) * 400 * 86_400_000)
        out.extend(r.to_json() for r in initial_records(world.state))
        for _ in range(min(episode, n_events - e * episode)):
            ev = world.event()
            try:
                world.state, recs = S.process_event(world.state, ev)
            except InvalidInput:
                continue  # a withdrawal above the withdrawable balance (INS-007), as the soak counts it
            out.extend(r.to_json() for r in recs)
    return out


@pytest.fixture(scope="module")
def soak() -> list[dict]:
    return _soak_records()


# ---------------------------------------------------------------- the enum and the schema

def test_the_enum_and_the_schema_list_the_same_kinds_and_the_kinds_read_by_hand():
    assert {k.value for k in RecordKind} == KINDS_BY_HAND
    assert set(RECORD_SCHEMA) == set(RecordKind)
    assert len(RecordKind) == 23


def test_the_kinds_written_in_the_reference_source_are_the_enums():
    """Literal kinds in the emitting modules (``Record("...")``, ``kind="..."``, the settlement
    table, the platform kinds) -- a new kind added there without the enum fails here."""
    text = "".join((ROOT / "reference" / f).read_text(encoding="utf-8") for f in ("step.py", "fundbook.py", "adl.py"))
    literal = set(re.findall(r'Record\(\s*"([^"]+)"', text)) | set(re.findall(r'\bkind="([^"]+)"', text))
    literal |= set(re.findall(r'"INS-00[67]", "([^"]+)", "step_', text))        # _platform(..., rule, kind, step)
    from backstop.reference.fundbook import SETTLEMENT_KINDS
    literal |= set(SETTLEMENT_KINDS.values())
    literal |= {f"{w} {s}" for w in ("liquidation", "adl") for s in ("surplus", "deficit")}  # _result's f-string
    assert "top-up" in literal and "withdrawal" in literal and "adl" in literal   # the patterns found them
    assert literal == KINDS_BY_HAND


def test_every_field_has_one_type_and_no_kind_repeats_a_common_field():
    for kind, (req, opt) in RECORD_SCHEMA.items():
        assert not set(req) & set(opt), kind
        assert not (set(req) | set(opt)) & set(COMMON_FIELDS), kind
        assert all(isinstance(t, FieldType) for t in (*req.values(), *opt.values())), kind


# ---------------------------------------------------------------- what the code emits conforms

@pytest.mark.parametrize("name", EXAMPLES)
def test_every_record_of_the_examples_conforms(name):
    recs = _example_records(name)
    assert recs
    for n, r in enumerate(recs):
        check_record(r, f"{name}[{n}]")


def test_every_line_simulate_writes_conforms(tmp_path):
    SIM.write_outputs(SIM.run_scenario(SIM.load_scenario(ROOT / "examples" / "crash.toml")), tmp_path)
    lines = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["kind"] == "log"
    for n, line in enumerate(lines[1:], start=2):
        check_record(json.loads(line), f"events.jsonl:{n}")
    trace = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
    outputs = [d for d in trace if d["kind"] not in ("log", "input")]
    assert len(outputs) == len(lines) - 1                       # the same records as events.jsonl
    for d in outputs:
        check_record(d)


def test_every_record_of_a_2000_event_soak_conforms(soak):
    for n, r in enumerate(soak):
        check_record(r, f"soak[{n}]")
    seen = {r["kind"] for r in soak}
    # the soak reaches most kinds (by hand: its worlds have isolated and cross positions, thin books
    # and small funds); those it does not reach are the rare ones the reference records "if it ever
    # happens" (ENG-004's surplus to the user, an uncovered deficit) and a refused cross partial step
    assert {"mark", "liquidation trigger", "partial liquidation", "full liquidation", "engine fill", "engine close",
            "bankrupt remainder", "adl trigger", "adl", "notification", "adl state", "liquidation deficit",
            "liquidation surplus", "adl deficit", "adl surplus", "liquidation fee", "top-up", "withdrawal",
            "forced liquidation injection", "overloss loss"} <= seen


def test_each_optional_field_is_used_and_the_two_trigger_shapes_are_seen(soak):
    """The optional fields are there because some records have them and others do not: isolated
    triggers carry side/mark/size/margin, cross ones currency/balance/equity/requirement."""
    trig = [r for r in soak if r["kind"] == "liquidation trigger"]
    iso = [r for r in trig if r["margin_mode"] == "isolated"]
    cross = [r for r in trig if r["margin_mode"] == "cross"]
    assert iso and cross
    assert all({"side", "mark", "size", "margin", "fund"} <= set(r) for r in iso)
    assert all({"currency", "balance", "equity", "requirement"} <= set(r) and "fund" not in r for r in cross)


# ---------------------------------------------------------------- check_record by hand

TOP_UP = {"kind": "top-up", "time_ms": 1767657600000, "fund": FUND, "amount": "1000000000", "settled": "1000000000",
          "pending": "0", "available": "1000000000", "rules": ["INS-006"]}


def test_a_record_by_hand_conforms_and_each_break_is_named():
    assert check_record(dict(TOP_UP), "x:2") == TOP_UP
    cases = [
        ({**TOP_UP, "kind": "top up"}, "x:2: kind", "unknown record kind"),
        ({k: v for k, v in TOP_UP.items() if k != "pending"}, "x:2: pending", "is required in a 'top-up' record"),
        ({k: v for k, v in TOP_UP.items() if k != "rules"}, "x:2: rules", "is required"),
        ({**TOP_UP, "amount": "1.5"}, "x:2: amount", "whole number"),
        ({**TOP_UP, "amount": 1000}, "x:2: amount", "whole number of smallest units, as a string"),
        ({**TOP_UP, "fund": ""}, "x:2: fund", "non-empty string"),
        ({**TOP_UP, "rules": ["ins-6"]}, "x:2: rules", "rule IDs"),
        ({**TOP_UP, "price": "1"}, "x:2: price", "not a field of a 'top-up' record"),
        ({**TOP_UP, "time_ms": True}, "x:2: time_ms", ""),
    ]
    for rec, field, reason in cases:
        with pytest.raises(InvalidInput) as ei:
            check_record(rec, "x:2")
        assert ei.value.field == field and reason in ei.value.reason, (rec, ei.value)


def test_exact_fields_take_decimals_and_fractions_bool_fields_only_booleans():
    mark = {"kind": "mark", "time_ms": 5, "instrument": "BTC-USDT-SWAP", "price": "85000/3", "rules": ["MRG-002"]}
    assert check_record(mark)["price"] == "85000/3"
    assert check_record({**mark, "price": "29984.5"})["price"] == "29984.5"
    with pytest.raises(InvalidInput) as ei:
        check_record({**mark, "price": 29984})
    assert ei.value.field == "price" and "exact number, as a string" in ei.value.reason
    state = {"kind": "adl state", "time_ms": 5, "instrument": "BTC-USDT-SWAP", "fund": FUND, "active": True,
             "rules": ["ADL-003", "TRN-006"]}
    assert check_record(state)["active"] is True
    with pytest.raises(InvalidInput) as ei:
        check_record({**state, "active": "true"})
    assert ei.value.field == "active"


LONG_PNL = "3160022464266926920545600329270576095/10317855982880600121728881953"   # 66 digits
# an engine close of a soak (seed 7, episode among the first 40): the pnl of an inverse contract
# closed over several fills is a fraction past the 60-digit bound of an input number
CLOSE = {"kind": "engine close", "time_ms": 1795766399000, "account": "a1", "instrument": "BTC-USD-SWAP",
         "fund": "perpetual_futures/BTC-USD/BTC", "why": "full", "filled": "3", "takeover_price": "30123.4",
         "pnl": LONG_PNL, "result": "-5", "fee": "0", "to_fund": "-5", "venue": "0", "dust": "1/7",
         "rules": ["ENG-002", "ENG-003", "ENG-004", "ENG-005"]}


def test_a_records_exact_number_may_pass_the_input_bound_but_not_the_int_string_limit():
    assert sum(c.isdigit() for c in LONG_PNL) == 66
    assert check_record(dict(CLOSE))["pnl"] == LONG_PNL
    for bad, reason in (("1" * 4001, "at most 4000 characters"), ("1/0", "decimal or p/q"),
                        ("\u0661\u0660", "decimal or p/q"), ("1e3", "decimal or p/q"), (" 1", "decimal or p/q"),
                        ("", "decimal or p/q")):
        with pytest.raises(InvalidInput) as ei:
            check_record({**CLOSE, "pnl": bad})
        assert ei.value.field == "pnl" and reason in ei.value.reason, (bad, ei.value)
    # money stays within the input bound (a whole number of smallest units of 61 digits is refused)
    with pytest.raises(InvalidInput) as ei:
        check_record({**CLOSE, "fee": "1" + "0" * 60})
    assert ei.value.field == "fee" and "more than 60 digits" in ei.value.reason


# ---------------------------------------------------------------- fund-history refuses with exit 2 and the line

@pytest.fixture(scope="module")
def crash_log(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("crash")
    SIM.write_outputs(SIM.run_scenario(SIM.load_scenario(ROOT / "examples" / "crash.toml")), out)
    return (out / "events.jsonl").read_text(encoding="utf-8").splitlines()


def _fund_history(tmp_path, lines: list[str], capsys) -> tuple[int, str]:
    p = tmp_path / "events.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = main(["fund-history", str(p), "--fund", FUND])
    return rc, capsys.readouterr().err


def _with(lines: list[str], n: int, change) -> list[str]:
    """``lines`` with line ``n`` (1-based) changed by ``change(obj)``."""
    obj = json.loads(lines[n - 1])
    change(obj)
    return lines[:n - 1] + [json.dumps(obj)] + lines[n:]


def test_fund_history_reads_the_log_as_written(tmp_path, crash_log, capsys):
    rc, err = _fund_history(tmp_path, crash_log, capsys)
    assert (rc, err) == (0, "")
    # and with a record whose exact number is past the input bound (the reference wrote such pnl)
    rc, err = _fund_history(tmp_path, crash_log + [json.dumps({**CLOSE, "time_ms": 1767700000000})], capsys)
    assert (rc, err) == (0, "")


def test_fund_history_refuses_an_unknown_kind_with_the_line(tmp_path, crash_log, capsys):
    # line 10 is l1's liquidation deficit (README "Checking an engine's log"); today's loose check let
    # any kind through and the history silently skipped it
    assert json.loads(crash_log[9])["kind"] == "liquidation deficit"
    rc, err = _fund_history(tmp_path, _with(crash_log, 10, lambda o: o.update(kind="liquidation deficits")), capsys)
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: {tmp_path / 'events.jsonl'}:10: kind: unknown record kind")


def test_fund_history_refuses_a_missing_required_field_with_the_line(tmp_path, crash_log, capsys):
    rc, err = _fund_history(tmp_path, _with(crash_log, 10, lambda o: o.pop("paid")), capsys)
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"events.jsonl:10: paid: is required in a 'liquidation deficit' record" in err


def test_fund_history_refuses_a_wrong_type_with_the_line(tmp_path, crash_log, capsys):
    # the mark of line 3 ("price": "29800") as a boolean, then the deficit's account as a number
    rc, err = _fund_history(tmp_path, _with(crash_log, 3, lambda o: o.update(price=True)), capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and "events.jsonl:3: price: an exact number, as a string" in err
    rc, err = _fund_history(tmp_path, _with(crash_log, 10, lambda o: o.update(account=7)), capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and "events.jsonl:10: account: must be a non-empty string" in err
    rc, err = _fund_history(tmp_path, _with(crash_log, 10, lambda o: o.update(extra="1")), capsys)
    assert rc == 2 and "events.jsonl:10: extra: not a field of a 'liquidation deficit' record" in err


# ---------------------------------------------------------------- check-trace: the same check on output records

@pytest.fixture(scope="module")
def crash_trace(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("crash-trace")
    SIM.write_outputs(SIM.run_scenario(SIM.load_scenario(ROOT / "examples" / "crash.toml")), out)
    return (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()


def _check_trace(tmp_path, lines: list[str], capsys) -> tuple[int, str, str]:
    p = tmp_path / "trace.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = main(["check-trace", str(p)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_check_trace_refuses_an_output_of_an_unknown_kind_and_a_wrong_type(tmp_path, crash_trace, capsys):
    # line 16 of the crash trace is l1's liquidation deficit (README "Checking an engine's log")
    assert json.loads(crash_trace[15])["kind"] == "liquidation deficit"
    rc, out, err = _check_trace(tmp_path, _with(crash_trace, 16, lambda o: o.update(kind="deficit")), capsys)
    assert rc == 2 and "line 16: kind: unknown record kind" in out + err
    rc, out, err = _check_trace(tmp_path, _with(crash_trace, 16, lambda o: o.update(amount=[1])), capsys)
    assert rc == 2 and "line 16: amount: a whole number of smallest units, as a string" in out + err


def test_check_trace_still_reports_a_missing_field_as_a_difference(tmp_path, crash_trace, capsys):
    """README: two records agree when they have the same fields -- a field the engine did not log
    is a difference (exit 1), not an unreadable log; an engine need not log ``rules``."""
    rc, out, _ = _check_trace(tmp_path, _with(crash_trace, 16, lambda o: o.pop("paid")), capsys)
    assert rc == 1 and "trace.jsonl:16: a record differs" in out and "paid: expected 999900000, got (absent)" in out
    rc, out, _ = _check_trace(tmp_path, _with(crash_trace, 16, lambda o: o.pop("rules")), capsys)
    assert rc == 0, out


def test_check_trace_refuses_an_unknown_kind_in_the_headers_outputs(tmp_path, crash_trace, capsys):
    rc, out, err = _check_trace(tmp_path, _with(crash_trace, 1, lambda o: o.update(outputs=["top-up", "fills"])),
                                capsys)
    assert rc == 2 and "line 1: outputs: 'fills' is not a record kind" in out + err


# ---------------------------------------------------------------- the trace's JSON Schema is derived from the table


_TYPE_REFS = {FieldType.TIME: {"$ref": "#/$defs/time"}, FieldType.UNITS: {"$ref": "#/$defs/record_units"},
             FieldType.INTEGER: {"$ref": "#/$defs/whole"}, FieldType.EXACT: {"$ref": "#/$defs/exact"},
             FieldType.TEXT: {"$ref": "#/$defs/text"}, FieldType.BOOL: {"type": "boolean"},
             FieldType.RULES: {"type": "array", "items": {"$ref": "#/$defs/rule"}}}


def _slug(kind: str) -> str:
    return "record_" + kind.replace(" ", "_").replace("-", "_")


def _derived_defs() -> dict:
    """The record definitions of spec/schema/trace.schema.json, built from RECORD_SCHEMA (the file
    was written from this function; the test below keeps them equal)."""
    defs = {
        "whole": {"type": "string", "pattern": "^-?[0-9]+$", "description": "a whole number, as a string"},
        "record_units": {"type": "string", "pattern": "^-?[0-9]+$",
                         "description": "money in a record: a whole number (may be < 0) of the currency's smallest unit"},
        "text": {"type": "string", "pattern": ".", "description": "a non-empty string"},
        "record": {"type": "object",
                   "description": "an output record, one of the record kinds (README 'Record kinds'; "
                                  "backstop.reference.events.RECORD_SCHEMA, from which these definitions are derived)",
                   "oneOf": [{"$ref": f"#/$defs/{_slug(k.value)}"} for k in RECORD_SCHEMA]},
    }
    for kind, (req, opt) in RECORD_SCHEMA.items():
        props = {"kind": {"const": kind.value}}
        for name, ty in {**COMMON_FIELDS, **req, **opt}.items():
            if name != "kind":
                props[name] = _TYPE_REFS[ty]
        defs[_slug(kind.value)] = {
            "type": "object",
            "description": f"{kind.value}: required {', '.join(req) or 'nothing more'}"
                           + (f"; optional {', '.join(opt)}" if opt else "")
                           + " (an engine's log may leave fields and rules out: check-trace reports a difference)",
            "properties": props, "required": ["kind", "time_ms"],
            "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "boolean"}, {"type": "integer"},
                                               {"type": "null"}, {"type": "array"}]}}
    return defs


def _schema_and_validator():
    """The trace schema and the small validator of tests/unit/test_oracle_schema.py (its KNOWN,
    TYPES, _type_ok and errors only: the rest of that module reads the README at import)."""
    import ast
    src = (ROOT / "tests" / "unit" / "test_oracle_schema.py").read_text(encoding="utf-8")
    keep = [n for n in ast.parse(src).body
            if (isinstance(n, ast.FunctionDef) and n.name in ("_type_ok", "errors"))
            or (isinstance(n, ast.Assign) and any(getattr(t, "id", "") in ("KNOWN", "TYPES") for t in n.targets))]
    ns: dict = {"re": re}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "test_oracle_schema.py", "exec"), ns)
    assert {"errors", "_type_ok", "KNOWN", "TYPES"} <= set(ns)
    schema = json.loads((ROOT / "spec" / "schema" / "trace.schema.json").read_text(encoding="utf-8"))
    return schema, ns["errors"]


def test_the_trace_schema_has_the_record_kinds_and_their_fields_of_the_table():
    schema, _ = _schema_and_validator()
    defs = _derived_defs()
    assert {k: schema["$defs"].get(k) for k in defs} == defs
    assert schema["$defs"]["header"]["properties"]["outputs"]["items"] == {"enum": [k.value for k in RecordKind]}


def test_the_soak_records_validate_against_the_trace_schema_and_it_refuses_what_check_record_refuses(soak):
    schema, errors = _schema_and_validator()
    for n, r in enumerate(soak[:3000]):
        assert errors(schema, r, schema) == [], (n, r["kind"])
    for bad in ({**TOP_UP, "kind": "top up"}, {**TOP_UP, "amount": "1.5"}, {**TOP_UP, "fund": ""},
                {**TOP_UP, "rules": ["ins-6"]}):
        assert errors(schema, bad, schema) != [], bad


# ---------------------------------------------------------------- the README's table is the schema

def _readme_rows() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Record kinds\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]


def _fields_cell(cell: str) -> dict[str, str]:
    if cell == "--":
        return {}
    return dict(re.fullmatch(r"`(\w+)` (\w+)", part.strip()).groups() for part in cell.split(","))


def test_the_readme_lists_every_kind_with_its_fields_and_types():
    rows = _readme_rows()
    assert [r[0].strip("`") for r in rows] == [k.value for k in RecordKind]
    for (kind, source, req, opt), (k, (sreq, sopt)) in zip(rows, RECORD_SCHEMA.items()):
        assert _fields_cell(req) == {n: t.value for n, t in sreq.items()}, kind
        assert _fields_cell(opt) == {n: t.value for n, t in sopt.items()}, kind
        assert (ROOT / "reference" / source.strip("`")).is_file(), source
    # by hand: the crash example's liquidation deficit (README "Checking an engine's log") has these
    deficit = dict((r[0].strip("`"), r) for r in rows)["liquidation deficit"]
    assert _fields_cell(deficit[2]) == {"fund": "text", "amount": "units", "inflow": "units", "paid": "units",
                                        "uncovered": "units", "settled": "units", "pending": "units",
                                        "available": "units"}
    assert _fields_cell(deficit[3]) == {"account": "text", "instrument": "text"}


def test_the_kinds_the_readers_name_are_record_kinds():
    """history's flows and settlements and simulate's liquidation kinds are kinds of the enum (a
    renamed kind would silently drop out of a fund's history otherwise)."""
    from backstop import history as H
    from backstop.simulate_run import LIQUIDATION_KINDS
    named = set(H.FLOW_KINDS) | set(H.SETTLEMENT_KINDS) | set(LIQUIDATION_KINDS)
    assert named <= {k.value for k in RecordKind}
    assert len(named) == 11                       # 7 flows, 2 settlements, 2 liquidation kinds (by hand)
    assert str(RecordKind.TOP_UP) == "top-up" and RecordKind("adl") is RecordKind.ADL
