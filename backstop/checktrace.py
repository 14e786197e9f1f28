"""``backstop check-trace``: replay an engine's log through the reference and find the first output
that differs.

A trace (``spec/schema/trace.schema.json``, format ``backstop-trace/1``) is JSON lines, one object
per line, every line with a ``kind`` and a ``time_ms`` (so ``backstop fund-history`` reads it too):

1. a header ``{"kind": "log", "format": "backstop-trace/1", "profile": ..., "currencies": {...}}``;
2. the opening state ``{"kind": "input", "type": "state", "accounts": [...], "marks": {...},
   "books": {...}, "funds": {...}}``, then the records it emits (the opening top-ups);
3. each input event (``{"kind": "input", "type": "mark" | "book" | "top_up" | "withdraw" |
   "settle", ...}``), each followed by the output records the engine emitted for it.

Money is in smallest units of its currency (integer strings); prices and sizes are exact strings
(``"29000"``, ``"66.66"``, ``"85000/3"``); a JSON float is refused.  ``backstop simulate`` writes
such a log as ``DIR/trace.jsonl``.

The check builds the opening state with :func:`backstop.reference.step.initial_state` and feeds each
input to :func:`backstop.reference.step.process_event`; the records the reference emits (only the
kinds listed in the header's ``outputs``, when it has one) are compared, in order, with the
output lines that follow that input.  Two records agree when they have the same fields with equal
values (numbers compared as exact values, so ``"29000.0"`` equals ``"29000"``); ``rules`` is
compared only when the log's line carries it.  The first disagreement is reported with its line,
the log's record and the reference's, the differing fields and the rule IDs of the reference's
record: a *different* record, a *missing* one (the reference emits a record the log lacks) or an
*extra* one (the log has a record the reference does not emit).

Exit codes: 0 consistent, 1 differs, 2 the log could not be read (not JSON, a line without kind or
time_ms, an output of an unknown kind or with a field not of its kind's type, no header, an unknown profile, decimals that are not the profile's, an input that the
reference refuses) -- each error names the line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from backstop.reference.errors import BackstopError, InvalidInput
from backstop.reference.types import Account, MarginMode, Position, Side, exact, money, parse_exact
from backstop.simulate_run import TRACE_FORMAT  # the writer and the reader share one format name

__all__ = ["TRACE_FORMAT", "TraceError", "Difference", "CheckResult", "read_trace", "check_trace", "check_lines",
           "register_cli", "cmd_check_trace", "INPUT_TYPES"]

EXIT_OK, EXIT_DIFFERS, EXIT_INPUT = 0, 1, 2
INPUT_TYPES = ("state", "mark", "book", "top_up", "withdraw", "settle")


class TraceError(BackstopError):
    """The log cannot be read or replayed (exit 2); ``line`` is 1-based (0: the file itself)."""

    def __init__(self, line: int, message: str, rule: str = "") -> None:
        super().__init__(message)
        self.line, self.message, self.rule = line, message, rule

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message}" + (f" [{self.rule}]" if self.rule else "")


@dataclass(frozen=True)
class Line:
    number: int
    obj: dict[str, Any]

    @property
    def is_input(self) -> bool:
        return self.obj.get("kind") == "input"


@dataclass(frozen=True)
class Difference:
    """The first disagreement: ``what`` is ``differs``, ``missing`` or ``extra``."""

    what: str
    line: int                       # the log line of the record (missing: the line it should precede)
    input_line: int                 # the input whose outputs disagree
    expected: dict[str, Any] | None  # the reference's record (None for an extra record)
    got: dict[str, Any] | None       # the log's record (None for a missing record)
    fields: tuple[tuple[str, Any, Any], ...] = ()  # (field, expected, got) of a differing record
    rules: tuple[str, ...] = ()
    input: dict[str, Any] | None = None  # the input line's object

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "line": self.line, "input_line": self.input_line, "expected": self.expected,
                "got": self.got, "fields": [{"field": f, "expected": e, "got": g} for f, e, g in self.fields],
                "rules": list(self.rules)}


from backstop.reference.read import MAX_TIME_MS  # noqa: E402


@dataclass
class CheckResult:
    profile: str
    inputs: int = 0              # input lines replayed (the opening state counts as one)
    outputs: int = 0             # output records that agreed
    difference: Difference | None = None
    lines: int = 0

    @property
    def consistent(self) -> bool:
        return self.difference is None


# ================================================================ reading

def _refuse_float(text: str) -> Any:
    raise ValueError(f"a JSON float ({text}) is not exact; write numbers as strings such as \"0.005\"")


def read_trace(lines: Iterable[str]) -> list[Line]:
    """Parse the JSON lines (blank lines skipped); every line an object with ``kind`` and ``time_ms``."""
    out: list[Line] = []
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text, parse_float=_refuse_float, parse_constant=_refuse_float)
        except json.JSONDecodeError as e:
            raise TraceError(n, f"not JSON: {e.msg} (column {e.colno})") from None
        except RecursionError:
            raise TraceError(n, "nested too deeply to read (the input bound, README \"Input bounds\")") from None
        except ValueError as e:
            raise TraceError(n, str(e)[:200]) from None
        if not isinstance(obj, dict):
            raise TraceError(n, "a line must be a JSON object")
        if not isinstance(obj.get("kind"), str) or not obj["kind"]:
            raise TraceError(n, "a line needs a 'kind' (a non-empty string)")
        t = obj.get("time_ms")
        if isinstance(t, str) and t.isascii() and t.isdigit() and len(t) <= 20:
            obj["time_ms"] = t = int(t)
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < MAX_TIME_MS:
            from backstop.reference.read import shorten
            raise TraceError(n, f"time_ms must be an integer >= 0 (ms since the epoch) before 3000-01-01T00:00:00Z "
                                f"(the input bound), got {shorten(t)}")
        out.append(Line(n, obj))
    return out


# ================================================================ inputs -> reference values

def _get(line: Line, key: str, kinds: type | tuple[type, ...] = str) -> Any:
    if key not in line.obj:
        raise TraceError(line.number, f"{key}: is required for an input of type {line.obj.get('type')!r}")
    v = line.obj[key]
    if not isinstance(v, kinds) or isinstance(v, bool):
        raise TraceError(line.number, f"{key}: must be {'a string' if kinds is str else 'a string or an integer'}, got {v!r}")
    return v


def _levels(line: Line, where: str, v: Any) -> tuple[Any, ...]:
    from backstop.reference.engine import Level
    if not isinstance(v, list):
        raise TraceError(line.number, f"{where}: a list of [price, size] levels, best first")
    out = []
    for i, lv in enumerate(v):
        if not isinstance(lv, list) or len(lv) != 2:
            raise TraceError(line.number, f"{where}[{i}]: a level is [price, size]")
        out.append(Level(exact(f"{where}[{i}].price", lv[0], "ENG-001", positive=True),
                         exact(f"{where}[{i}].size", lv[1], "ENG-001", nonnegative=True)))
    return tuple(out)


def _book(line: Line, where: str, v: Any) -> Any:
    from backstop.reference.step import Book
    if not isinstance(v, dict) or set(v) - {"bids", "asks"}:
        raise TraceError(line.number, f"{where}: an object with 'bids' and 'asks'")
    return Book(_levels(line, f"{where}.bids", v.get("bids", [])), _levels(line, f"{where}.asks", v.get("asks", [])))


def _accounts(line: Line, v: Any) -> list[Account]:
    if not isinstance(v, list):
        raise TraceError(line.number, "accounts: a list of accounts")
    out = []
    for i, a in enumerate(v):
        w = f"accounts[{i}]"
        if not isinstance(a, dict) or not isinstance(a.get("id"), str):
            raise TraceError(line.number, f"{w}: an object with an 'id', 'balances' and 'positions'")
        bal = a.get("balances", {})
        if not isinstance(bal, dict):
            raise TraceError(line.number, f"{w}.balances: an object from currency to amount (smallest units)")
        balances = tuple(sorted((c, money(f"{w}.balances.{c}", u, "MRG-003")) for c, u in bal.items()))
        positions = []
        raw = a.get("positions", [])
        if not isinstance(raw, list):
            raise TraceError(line.number, f"{w}.positions: a list of positions")
        for j, p in enumerate(raw):
            pw = f"{w}.positions[{j}]"
            if not isinstance(p, dict):
                raise TraceError(line.number, f"{pw}: an object")
            for k in ("instrument", "side", "size", "entry_price"):
                if k not in p:
                    raise TraceError(line.number, f"{pw}.{k}: is required")
            try:
                side = Side(p["side"])
                mode = MarginMode(p.get("margin_mode", "isolated"))
            except ValueError:
                raise TraceError(line.number, f"{pw}: side is 'long' or 'short', margin_mode 'isolated' or 'cross'") from None
            positions.append(Position(p["instrument"], side, exact(f"{pw}.size", p["size"], "MRG-001", positive=True),
                                      exact(f"{pw}.entry_price", p["entry_price"], "MRG-002", positive=True), mode,
                                      money(f"{pw}.margin", p.get("margin", "0"), "MRG-003")))
        out.append(Account(a["id"], balances, tuple(positions)))
    return out


def _initial(profile: Any, line: Line) -> Any:
    from backstop.reference import step as S
    o = line.obj
    marks = o.get("marks", {})
    books = o.get("books", {})
    funds = o.get("funds", {})
    for key, v in (("marks", marks), ("books", books), ("funds", funds)):
        if not isinstance(v, dict):
            raise TraceError(line.number, f"{key}: an object keyed by {'fund id' if key == 'funds' else 'instrument id'}")
    mk = {i: exact(f"marks.{i}", p, "MRG-002", positive=True) for i, p in marks.items()}
    bk = {i: _book(line, f"books.{i}", b) for i, b in books.items()}
    fb = {f: money(f"funds.{f}", u, "INS-006") for f, u in funds.items()}
    return S.initial_state(profile, _accounts(line, o.get("accounts", [])), mk, bk, fb, o["time_ms"])


def _event(line: Line) -> Any:
    from backstop.reference import step as S
    o, t = line.obj, line.obj["time_ms"]
    typ = o.get("type")
    if typ == "mark":
        return S.MarkEvent(t, _get(line, "instrument"), exact("price", _get(line, "price", (str, int)), "MRG-002",
                                                               positive=True))
    if typ == "book":
        b = _book(line, "book", {k: o[k] for k in ("bids", "asks") if k in o})
        return S.BookEvent(t, _get(line, "instrument"), b.bids, b.asks)
    if typ in ("top_up", "withdraw"):
        rule = "INS-006" if typ == "top_up" else "INS-007"
        amount = money("amount", _get(line, "amount", (str, int)), rule)
        if amount <= 0:
            raise InvalidInput("amount", o["amount"], "must be > 0", rule)
        cls = S.TopUpEvent if typ == "top_up" else S.WithdrawEvent
        return cls(t, _get(line, "fund"), amount)
    if typ == "settle":
        return S.SettleEvent(t)
    raise TraceError(line.number, f"type: {typ!r} is not an input type (one of {', '.join(INPUT_TYPES[1:])})")


# ================================================================ comparing

def _same(expected: Any, got: Any) -> bool:
    if expected == got and type(expected) is type(got):
        return True
    if isinstance(expected, bool) or isinstance(got, bool):
        return False
    if isinstance(expected, (str, int)) and isinstance(got, (str, int)):
        try:
            return parse_exact("", expected) == parse_exact("", got)
        except (InvalidInput, ValueError, ZeroDivisionError):
            return False
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(_same(e, g) for e, g in zip(expected, got))
    return False


def _field_diffs(expected: dict[str, Any], got: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    out = []
    for k in sorted(set(expected) | set(got)):
        if k == "rules" and k not in got:
            continue  # an engine's log need not name the rules
        e, g = expected.get(k), got.get(k)
        if k not in got or k not in expected or not _same(e, g):
            out.append((k, e if k in expected else None, g if k in got else None))
    return tuple(out)


def _compare(inp: Line, expected: list[dict[str, Any]], got: list[Line], next_line: int) -> tuple[int, Difference | None]:
    """Compare one input's records; returns (records that agreed, the first difference)."""
    k = 0
    while k < len(expected) and k < len(got):
        if _field_diffs(expected[k], got[k].obj):
            break
        k += 1
    if k == len(expected) == len(got):
        return k, None
    if k == len(got):  # the log has fewer records than the reference emits
        e = expected[k]
        return k, Difference("missing", next_line, inp.number, e, None, (), tuple(e.get("rules", ())))
    if k == len(expected):  # the log has more
        g = got[k].obj
        return k, Difference("extra", got[k].number, inp.number, None, g, (), tuple(g.get("rules", ()) or ()))
    e, gl = expected[k], got[k]
    if k + 1 < len(expected) and not _field_diffs(expected[k + 1], gl.obj):
        return k, Difference("missing", gl.number, inp.number, e, None, (), tuple(e.get("rules", ())))
    if k + 1 < len(got) and not _field_diffs(e, got[k + 1].obj):
        return k, Difference("extra", gl.number, inp.number, None, gl.obj, (), tuple(gl.obj.get("rules", ()) or ()))
    return k, Difference("differs", gl.number, inp.number, e, gl.obj, _field_diffs(e, gl.obj), tuple(e.get("rules", ())))


# ================================================================ the check

def _initial_records(state: Any) -> tuple[Any, ...]:
    """The records of the opening state (its funds' opening top-ups), as ``backstop simulate`` logs them."""
    from backstop.simulate_run import initial_records as opening
    return opening(state)


def _header(lines: list[Line], profile_arg: str | None) -> tuple[Any, Any]:
    from backstop.reference.profile import load_profile
    if not lines:
        raise TraceError(0, "the log is empty (it needs a header line and an input state)")
    h = lines[0]
    if h.obj.get("kind") != "log":
        raise TraceError(h.number, f"the first line must be the header {{\"kind\": \"log\", \"format\": \"{TRACE_FORMAT}\", ...}}")
    if h.obj.get("format") != TRACE_FORMAT:
        raise TraceError(h.number, f"format: {h.obj.get('format')!r} is not {TRACE_FORMAT!r}")
    name = h.obj.get("profile")
    if not isinstance(name, str) or not name:
        raise TraceError(h.number, "profile: the header must name the profile the engine ran")
    try:
        profile = load_profile(profile_arg or name)
    except (BackstopError, OSError) as e:
        raise TraceError(h.number if profile_arg is None else 0,
                         f"profile {profile_arg or name!r}: {e}" + ("" if profile_arg else " (give --profile PATH)")) from None
    if profile.name != name:
        raise TraceError(h.number, f"profile: the log was written with profile {name!r}, --profile gives {profile.name!r}")
    cur = h.obj.get("currencies")
    if not isinstance(cur, dict) or not cur:
        raise TraceError(h.number, "currencies: an object from currency code to its decimals, such as {\"USDT\": 6}")
    for code, dec in cur.items():
        if code not in profile.currencies:
            raise TraceError(h.number, f"currencies.{code}: not a currency of profile {profile.name!r}")
        if dec != profile.currencies[code].decimals:
            raise TraceError(h.number, f"currencies.{code}: the log counts {dec!r} decimals, profile {profile.name!r} "
                                       f"{profile.currencies[code].decimals}: its amounts would be misread")
    outs = h.obj.get("outputs")
    if outs is not None and (not isinstance(outs, list) or not all(isinstance(x, str) for x in outs)):
        raise TraceError(h.number, "outputs: a list of the record kinds the log carries")
    from backstop.reference.events import RecordKind
    unknown = sorted(set(outs or ()) - {k.value for k in RecordKind})
    if unknown:
        raise TraceError(h.number, f"outputs: {unknown[0]!r} is not a record kind (README 'Record kinds' lists them)")
    return profile, (set(outs) if outs is not None else None)


def _check_output(ln: Line) -> None:
    """An output line is a record of a known kind whose fields have their kind's types
    (``backstop.reference.events.check_record``, not ``complete``: a missing or an extra field is a
    difference, found by the comparison)."""
    from backstop.reference.events import check_record
    try:
        check_record(ln.obj, complete=False)
    except InvalidInput as e:
        from backstop.reference.read import shorten
        got = f" (got {shorten(e.value)})" if e.value is not None else ""
        raise TraceError(ln.number, f"{e.field}: {e.reason}{got}", e.rule) from None


def check_lines(lines: list[Line], profile_arg: str | None = None) -> CheckResult:
    """Replay a parsed trace; raises :class:`TraceError` when it cannot be read or replayed."""
    from backstop.reference import step as S
    profile, kinds = _header(lines, profile_arg)
    res = CheckResult(profile.name, lines=lines[-1].number)
    body = lines[1:]
    if not body or not (body[0].is_input and body[0].obj.get("type") == "state"):
        where = body[0].number if body else lines[0].number + 1
        raise TraceError(where, "the header must be followed by the opening state {\"kind\": \"input\", \"type\": \"state\", ...}")
    # group: each input line and the output lines after it
    groups: list[tuple[Line, list[Line]]] = []
    for ln in body:
        if ln.is_input:
            groups.append((ln, []))
        elif ln.obj.get("kind") == "log":
            raise TraceError(ln.number, "a second header line")
        else:
            _check_output(ln)
            groups[-1][1].append(ln)
    state: Any = None  # the opening state from the first group on (the checker cannot follow n == 0)
    for n, (inp, outs) in enumerate(groups):
        next_line = groups[n + 1][0].number if n + 1 < len(groups) else lines[-1].number + 1
        try:
            if n == 0:
                state = _initial(profile, inp)
                records = _initial_records(state)
            else:
                if inp.obj.get("type") == "state":
                    raise TraceError(inp.number, "a second opening state")
                state, records = S.process_event(state, _event(inp))
        except InvalidInput as e:
            got = f" (got {e.value!r})" if e.value is not None else ""
            raise TraceError(inp.number, f"input {inp.obj.get('type')}: {e.field}: {e.reason}{got}: "
                                         f"the reference refuses this input", e.rule) from None
        expected = [r.to_json() for r in records if kinds is None or r.kind in kinds]
        agreed, diff = _compare(inp, expected, outs, next_line)
        res.inputs += 1
        res.outputs += agreed
        if diff is not None:
            res.difference = dataclasses.replace(diff, input=inp.obj)
            return res
    return res


def check_trace(path: str | Path, profile: str | None = None) -> CheckResult:
    """Read and replay the trace at ``path`` (``-``: stdin)."""
    if str(path) == "-":
        return check_lines(read_trace(sys.stdin), profile)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = read_trace(fh)
    except OSError as e:
        raise TraceError(0, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise TraceError(0, "not UTF-8 text") from None
    return check_lines(lines, profile)


# ================================================================ reporting

def _short(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v


def _describe(rec: dict[str, Any]) -> str:
    who = " ".join(f"{k} {rec[k]}" for k in ("account", "instrument", "fund") if rec.get(k))
    return f"{rec.get('kind')}" + (f" ({who})" if who else "") + f" at time_ms {rec.get('time_ms')}"


def _input_text(obj: dict[str, Any]) -> str:
    typ = obj.get("type")
    if typ == "mark":
        return f"mark {obj.get('instrument')} {obj.get('price')}"
    if typ == "book":
        return f"book {obj.get('instrument')}"
    if typ in ("top_up", "withdraw"):
        return f"{typ} {obj.get('fund')} {obj.get('amount')}"
    return str(typ)


def report_text(path: str, res: CheckResult) -> str:
    if res.difference is None:
        return (f"{path}: consistent: {res.inputs} inputs replayed (the opening state and {res.inputs - 1} events), "
                f"{res.outputs} output records agree with the reference (profile {res.profile})\n")
    d = res.difference
    input_obj = d.input
    head = {"differs": "a record differs", "missing": "a record is missing", "extra": "an extra record"}[d.what]
    out = [f"{path}:{d.line}: {head} (outputs of the input at line {d.input_line}"
           + (f": {_input_text(input_obj)}" if input_obj else "") + ")"]
    if d.what == "differs":
        out.append(f"  record: {_describe(d.got or {})}")
        for f, e, g in d.fields:
            out.append(f"  {f}: expected {_short(e) if e is not None else '(absent)'}, got {_short(g) if g is not None else '(absent)'}")
    elif d.what == "missing":
        out.append(f"  expected: {_describe(d.expected or {})}, which the log does not have "
                   f"{'before this line' if d.line <= res.lines else 'at the end'}")
    else:
        out.append(f"  got: {_describe(d.got or {})}, which the reference does not emit here")
    rules = ", ".join(d.rules) or "none named"
    out.append(f"  rule(s): {rules}" + ("  (named by the log's record)" if d.what == "extra" and d.rules else ""))
    out.append(f"  {res.outputs} output records agreed before it; {res.inputs} inputs replayed")
    return "\n".join(out) + "\n"


def report_json(path: str, res: CheckResult | None, error: TraceError | None = None) -> dict[str, Any]:
    if error is not None:
        return {"format": "backstop-check-trace/1", "log": path, "result": "error",
                "error": {"line": error.line, "message": error.message, "rule": error.rule}}
    assert res is not None
    return {"format": "backstop-check-trace/1", "log": path, "result": "consistent" if res.consistent else "differs",
            "profile": res.profile, "inputs": res.inputs, "outputs_agreed": res.outputs,
            "difference": res.difference.to_json() if res.difference else None}


# ================================================================ command line

def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``backstop check-trace`` to an argparse subparsers object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "check-trace", help="replay an engine's JSON-lines log through the reference; report the first output that differs",
        description="Read a trace (JSON lines: a header, the opening state, each input followed by the engine's output "
                    "records; spec/schema/trace.schema.json), replay the inputs through the reference step function "
                    "and report the first output record that differs, is missing or is extra, with the rule IDs of "
                    "the reference's record. backstop simulate writes such a log as DIR/trace.jsonl. "
                    "Exit 0 consistent, 1 differs, 2 the log could not be read.")
    p.add_argument("log", metavar="LOG", help="the trace (JSON lines), or - for stdin")
    p.add_argument("--profile", metavar="NAME|PATH", help="the venue profile (default: the one the header names)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON here")
    p.set_defaults(func=cmd_check_trace)
    return p


def _write_json(path: str | None, obj: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def cmd_check_trace(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    try:
        res = check_trace(args.log, args.profile)
    except TraceError as e:
        from backstop.cli import error_line
        print(f"error: {error_line(BackstopError(f'{args.log}: {e}'))}", file=sys.stderr)
        _write_json(args.json, report_json(args.log, None, e))
        return EXIT_INPUT
    out.write(report_text(args.log, res))
    _write_json(args.json, report_json(args.log, res))
    return EXIT_OK if res.consistent else EXIT_DIFFERS


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m backstop.checktrace LOG [--profile NAME|PATH] [--json FILE]``."""
    ap = argparse.ArgumentParser(prog="backstop")
    sub = ap.add_subparsers(dest="command")
    register_cli(sub)
    args = ap.parse_args(["check-trace", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)  # the command's exit status (argparse's Namespace is untyped)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
