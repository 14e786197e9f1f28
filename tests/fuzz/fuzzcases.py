"""Generated malformed (and valid) inputs for every input boundary of the command line, and the
in-process runner that judges each answer (issue 12, "Inputs that never crash").

A case is a command line (``backstop eval``, ``eval --jsonl``, ``simulate``, ``profiles show``,
``fund-history``, ``check-trace``), the files it reads and its stdin, and what the generator knows
about it: ``expect`` is ``"ok"`` (a valid input: exit 0, and for an equivalent rewrite of a shipped
example the very same stdout), ``"refuse"`` (exit 2, one line ``error: ...`` on stderr naming
``field``, no traceback, nothing left behind), ``"differ"`` (check-trace: exit 1, the log differs)
or ``"either"`` (a value within the documented bounds whose validity depends on the rules, such as
a price of 10^50: an answer or a refusal, never a crash).

Every case is built from the shipped examples (``examples/*.json``, ``examples/*.toml``, the
shipped profiles, and the logs ``simulate`` writes for the example scenarios) by one mutation whose
validity is known from the input layer's documented rules (``README.md`` "Input bounds"): a float,
NaN or infinity, a bool as a number, an integer beyond Python's int-string digit limit, deep
nesting, Unicode digits, a far-future, negative or fractional time, a missing or unknown field, a
non-positive price or size, a wrong currency, a bad path, or an equivalent rewrite (``"29000"`` as
``29000``, ``"58000/2"``, ``{"amount", "currency"}``) that must give the same answer.

``run_case`` calls ``backstop.cli.main(argv)`` with redirected stdin/stdout/stderr in a temporary
folder and returns a :class:`Verdict`; ``run_subprocess`` runs the same case as a process.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PROFILES_DIR = ROOT / "spec" / "profiles"
MAX_LINE = 400          # a refusal is one line of at most this many characters
DIGITS = 60             # README "Input bounds": an exact number has at most 60 digits
TIME_BOUND_MS = 32503680000000  # 3000-01-01T00:00:00Z: times are before it

COMMANDS = ("eval", "eval --jsonl", "simulate", "profiles show", "fund-history", "check-trace")


@dataclass
class Case:
    command: str
    argv: list[str]
    expect: str                      # ok | refuse | differ | either
    fields: tuple[str, ...] = ()     # a refusal's line must name one of these
    files: dict[str, bytes] = dc_field(default_factory=dict)
    stdin: str = ""
    same_stdout: str | None = None   # an equivalent rewrite: the answer of the original
    lines: list[tuple[str, tuple[str, ...]]] | None = None  # eval --jsonl: per request (expect, field)
    what: str = ""

    def describe(self) -> str:
        return f"[{self.command}] {self.what} argv={self.argv!r}"


@dataclass
class Verdict:
    case: Case
    code: int | None
    stdout: str
    stderr: str
    outcome: str          # answered | refused | differs
    problem: str = ""     # "" or: crash, silent accept, false refusal, bad refusal, leftover, wrong answer

    def __str__(self) -> str:
        return (f"{self.problem}: {self.case.describe()}\n  exit {self.code}\n  stderr: {self.stderr[:1500]!r}\n"
                f"  stdout: {self.stdout[:300]!r}")


# ================================================================ bad values


HUGE_DIGITS = "9" * 5000         # beyond sys.int_info.default_max_str_digits (4300)
OVER_BOUND = "1" + "0" * DIGITS      # 61 digits: over the documented bound
NEAR_BOUND = "1" + "0" * 50          # within the bound, huge: the rules decide


class _Raw:
    """A JSON fragment written as it is (a float literal, NaN, a huge integer, deep nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _deep(n: int) -> _Raw:
    return _Raw("[" * n + "]" * n)


# JSON values that no number / amount / time / string / enum field of eval accepts
JSON_NOT_ANY = [_Raw("1.5"), _Raw("NaN"), _Raw("Infinity"), _Raw("-Infinity"), _Raw("1e3"), _Raw("-0.0"),
                True, False, [], _Raw(HUGE_DIGITS), _deep(20), _deep(100_000), [1, 2]]
NUM_TEXT_BAD = ["\u0661\u0660\u0660", "1e3", "", "abc", "1/0", " 1", "1 ", "1_000", "0x10", "\uff11", "1..2", "--1",
                "1/", "/2", "NaN", "inf", HUGE_DIGITS, OVER_BOUND, "0." + "0" * 70 + "1", "1/" + "3" * 70,
                "\u0661", "12\u00a0", "\u0000", "1/0000"]
TIME_BAD = [-1, "-1", "abc", "2026-01-05T08:00:00", "2026-01-05T08:00:00.0005Z", "9999-12-31T23:59:59Z",
            TIME_BOUND_MS, str(TIME_BOUND_MS), 10 ** 18, "1969-12-31T23:59:59Z", "\u0661\u0662\u0663",
            "2026-13-01T00:00:00Z", "99999-01-01T00:00:00Z", HUGE_DIGITS, "2026-01-05"]
ENUM_BAD = ["", "LONG", "x", 1, "long ", " long"]
ID_BAD = ["", 1, "BTC-USDT-SWAP ", "btc-usdt-swap", "NOPE-SWAP"]

NUM_KEYS = {"size", "entry_price", "price", "takeover_price", "fill_price", "bankruptcy_price", "mark_price",
            "leverage", "unplaced", "remainder_size"}
POSITIVE_KEYS = {"size", "entry_price", "price", "takeover_price", "fill_price", "bankruptcy_price", "mark_price",
                 "leverage"}
AMOUNT_KEYS = {"margin", "fund_available", "settled", "balance", "amount", "uncovered"}
TIME_KEYS = {"time_ms", "now_ms", "start_ms", "time", "start"}
ENUM_KEYS = {"side", "margin_mode", "type", "operation"}
ID_KEYS = {"instrument"}


def _dump(v: Any) -> str:
    """JSON text of ``v`` with :class:`_Raw` fragments spliced in."""
    if isinstance(v, _Raw):
        return v.text
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_dump(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_dump(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


# ================================================================ the corpus (built once)

class Corpus:
    """The shipped examples and their answers, and the logs of the example scenarios."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.requests: list[tuple[str, Any, str]] = []   # (name, request, stdout of eval)
        for f in sorted(EXAMPLES.glob("eval-*.json")):
            req = json.loads(f.read_text(encoding="utf-8"))
            v = run_case(Case("eval", ["eval", "{D}/req.json"], "ok", files={"req.json": f.read_bytes()}), cache)
            assert v.code == 0, v
            self.requests.append((f.name, req, v.stdout))
        self.scenarios = {f.name: f.read_text(encoding="utf-8") for f in sorted(EXAMPLES.glob("*.toml"))}
        self.profiles = {f.name: f.read_text(encoding="utf-8") for f in sorted(PROFILES_DIR.glob("*.toml"))}
        self.logs: dict[str, dict[str, str]] = {}
        for name, text in self.scenarios.items():
            d = cache / f"sim-{name[:-5]}"
            v = run_case(Case("simulate", ["simulate", "{D}/s.toml", "--out", str(d), "--quiet"], "ok",
                              files={"s.toml": text.encode()}), cache)
            assert v.code == 0, v
            funds = sorted(p.name for p in d.glob("fund_*.csv"))
            self.logs[name[:-5]] = {"events": (d / "events.jsonl").read_text(encoding="utf-8"),
                                    "trace": (d / "trace.jsonl").read_text(encoding="utf-8"),
                                    "profile": re.search(r'^profile = "(\w+)"', text, re.M).group(1),
                                    "funds": funds}
        self.fund_ids = {n: sorted({json.loads(l)["fund"] for l in lg["events"].splitlines()
                                    if l.strip() and "fund" in json.loads(l)}) for n, lg in self.logs.items()}


# ================================================================ JSON request mutations

def _leaves(obj: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _leaves(v, path + (i,))
    else:
        out.append((path, obj))
    return out


def _dicts(obj: Any, path: tuple = ()) -> list[tuple[tuple, dict]]:
    out = []
    if isinstance(obj, dict):
        out.append((path, obj))
        for k, v in obj.items():
            out += _dicts(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _dicts(v, path + (i,))
    return out


def _set(obj: Any, path: tuple, v: Any) -> Any:
    obj = copy.deepcopy(obj)
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = v
    return obj


def _field(path: tuple) -> str:
    s = ""
    for p in path:
        s = f"{s}[{p}]" if isinstance(p, int) else (f"{s}.{p}" if s else str(p))
    return s


_NUMERIC = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_AMOUNT = re.compile(r"([0-9]+(?:\.[0-9]+)?) ([A-Z]{2,12})")
_DECIMALS = {"USDT": 6, "BTC": 8, "USD": 2, "ETH": 8, "USDC": 6}


def _key_of(path: tuple) -> str:
    for p in reversed(path):
        if isinstance(p, str):
            return p
    return ""


def _in_scenario(path: tuple) -> bool:
    return bool(path) and path[0] == "scenario"


def _json_mutation(rng: random.Random, req: Any) -> tuple[Any, str, tuple[str, ...], str] | None:
    """(mutated request, expect, fields, what) for one leaf/structure mutation of ``req``."""
    leaves = [(p, v) for p, v in _leaves(req) if p and p[0] != "profile"]
    kind = rng.random()
    if kind < 0.12:  # an unknown key in some object
        dicts = [(p, d) for p, d in _dicts(req) if not p or _key_of(p) not in ("mark_prices", "balances", "funds", "marks")]
        p, d = rng.choice(dicts)
        nk = rng.choice(["zz_unknown", "sizee", "Size", "size ", "\u0455ize"])
        if nk in d:
            return None
        return _set(req, p + (nk,), "1") if p else {**req, nk: "1"}, "refuse", (_field(p + (nk,)), nk), f"unknown key {nk!r}"
    if kind < 0.2:  # a required key missing
        cands = [(p, v) for p, v in _leaves(req) if isinstance(p[-1], str) and (
            _key_of(p) in ("size", "side", "instrument", "price", "time_ms")
            or _key_of(p) == "entry_price" and "positions" in p)]
        if not cands:
            return None
        p, _ = rng.choice(cands)
        obj = copy.deepcopy(req)
        cur = obj
        for q in p[:-1]:
            cur = cur[q]
        del cur[p[-1]]
        return obj, "refuse", (_field(p), p[-1]), f"missing {_field(p)}"
    p, v = rng.choice(leaves)
    key = _key_of(p)
    f = _field(p)
    fields = (f, key) if not _in_scenario(p) else (key,)
    if isinstance(p[-1], int) and key in ("bids", "asks"):  # a book level [price, size] in a scenario
        return None
    if key in TIME_KEYS:
        if rng.random() < 0.25 and isinstance(v, int):
            return _set(req, p, str(v)), "same", (), f"{f} as a digit string"
        return _set(req, p, _badval(rng, TIME_BAD + JSON_NOT_ANY)), "refuse", fields, f"bad time at {f}"
    if key in ENUM_KEYS:
        return _set(req, p, _badval(rng, ENUM_BAD + JSON_NOT_ANY)), "refuse", fields, f"bad enum at {f}"
    if key in ID_KEYS:
        return _set(req, p, _badval(rng, ID_BAD + JSON_NOT_ANY)), "refuse", fields, f"bad id at {f}"
    if key == "account":
        return _set(req, p, _badval(rng, ["", 1] + JSON_NOT_ANY)), "refuse", fields, f"bad account at {f}"
    if isinstance(v, str) and _AMOUNT.fullmatch(v) and not _in_scenario(p):
        num, code = _AMOUNT.fullmatch(v).groups()
        r = rng.random()
        if r < 0.3:
            return _set(req, p, {"amount": num, "currency": code}), "same", (), f"{f} as {{amount, currency}}"
        if r < 0.5:
            other = rng.choice([c for c in ("USDT", "BTC", "ETH", "USD", "XYZ") if c != code])
            return _set(req, p, f"{num} {other}"), "refuse", fields, f"wrong currency at {f}"
        if r < 0.65:
            return _set(req, p, f"{num}.{'1' * 19} {code}"), "refuse", fields, f"too many decimals at {f}"
        return _set(req, p, _badval(rng, JSON_NOT_ANY + NUM_TEXT_BAD)), "refuse", fields, f"bad amount at {f}"
    numeric = (isinstance(v, str) and _NUMERIC.fullmatch(v)) or (isinstance(v, int) and not isinstance(v, bool))
    if numeric and (key in NUM_KEYS or key in AMOUNT_KEYS or _key_of(p[:-1]) in ("mark_prices", "balances", "marks", "funds")
                    or key in ("mark_prices", "balances", "marks", "funds") or isinstance(p[-1], int)):
        s = str(v)
        r = rng.random()
        if r < 0.1 and "." not in s:
            return _set(req, p, s + ".0"), "same", (), f"{f} with .0"
        if r < 0.18 and "." not in s and not s.startswith("-"):
            return _set(req, p, f"{int(s) * 7}/7"), "same", (), f"{f} as a ratio"
        if r < 0.25 and isinstance(v, str) and "." not in s and not _in_scenario(p):
            return _set(req, p, int(s)), "same", (), f"{f} as a JSON integer"
        if r < 0.33:
            return _set(req, p, rng.choice([NEAR_BOUND, "0." + "0" * 40 + "1", int(NEAR_BOUND)])), "either", fields, f"huge within bounds at {f}"
        if r < 0.45 and key in POSITIVE_KEYS and "book" not in p:
            return _set(req, p, rng.choice(["0", "-1", 0, -5, "-0.5"])), "refuse", fields, f"non-positive at {f}"
        return _set(req, p, _badval(rng, JSON_NOT_ANY + NUM_TEXT_BAD)), "refuse", fields, f"bad number at {f}"
    return None


def _badval(rng: random.Random, pool: list[Any]) -> Any:
    return rng.choice(pool)


def _doc_mutation(rng: random.Random, text: str) -> tuple[str, str]:
    """A whole-document mutation of JSON text: (text, what); always invalid."""
    r = rng.randrange(9)
    if r == 0:
        return text[: rng.randrange(1, max(2, len(text) - 1))], "truncated JSON"
    if r == 1:
        return "", "empty document"
    if r == 2:
        return rng.choice(["[]", "null", "1.5", "\"x\"", "42", "true", "NaN"]), "not an object"
    if r == 3:
        return "[" * 100_000 + "]" * 100_000, "deeply nested list"
    if r == 4:
        return "{\"positions\": " + "{\"a\": " * 50_000 + "1" + "}" * 50_001, "deeply nested objects"
    if r == 5:
        return HUGE_DIGITS, "a huge integer document"
    if r == 6:
        return text.replace("{", "{\"operation\": \"margin\", ", 1) if "\"operation\"" in text else \
            text.replace("{", "{\"profile\": \"okx\", ", 1) if "\"profile\"" in text else text + "x", "a duplicate key"
    if r == 7:
        return text + " {}", "trailing data"
    return "\ufeff" + text if rng.random() < 0.5 else text.replace("\"", "'", 2), "a BOM or single quotes"


def gen_eval(rng: random.Random, corpus: Corpus) -> Case:
    name, req, answer = rng.choice(corpus.requests)
    base_text = json.dumps(req)
    stdin_mode = rng.random() < 0.3
    r = rng.random()
    if r < 0.12:
        text, what = _doc_mutation(rng, base_text)
        expect, fields, same = "refuse", ("<stdin>", "request", "{D}/req.json"), None
    elif r < 0.2:
        # bad paths
        which = rng.randrange(3)
        if which == 0:
            return Case("eval", ["eval", "{D}/missing.json"], "refuse", ("missing.json",), what="a missing file")
        if which == 1:
            return Case("eval", ["eval", "{D}"], "refuse", ("{D}",), what="a folder as the file")
        return Case("eval", ["eval", "{D}/req.json"], "refuse", ("req.json",), files={"req.json": b"\xff\xfe{"},
                    what="not UTF-8")
    elif r < 0.25:
        return Case("eval", ["eval", "{D}/req.json"], "ok", files={"req.json": base_text.encode()},
                    same_stdout=answer, what=f"{name} as shipped")
    else:
        m = None
        while m is None:
            m = _json_mutation(rng, req)
        new, expect, fields, what = m
        text = _dump(new)
        if any(x in text for x in (HUGE_DIGITS, "[[[[[[[[[[")):  # the JSON parser refuses it: names the document
            fields = fields + ("<stdin>", "{D}/req.json")
        same = answer if expect == "same" else None
        expect = "ok" if expect == "same" else expect
        what = f"{name}: {what}"
    if stdin_mode:
        return Case("eval", ["eval"], expect, tuple(f.replace("{D}/req.json", "<stdin>") for f in fields), stdin=text,
                    same_stdout=same, what=what)
    return Case("eval", ["eval", "{D}/req.json"], expect, fields, files={"req.json": text.encode("utf-8")},
                same_stdout=same, what=what)


def gen_jsonl(rng: random.Random, corpus: Corpus) -> Case:
    lines, texts = [], []
    for _ in range(rng.randint(1, 4)):
        c = gen_eval(rng, corpus)
        if c.stdin == "" and "req.json" not in c.files or c.what == "not UTF-8":
            continue  # a path case: not a line
        text = c.stdin or c.files["req.json"].decode("utf-8", "replace")
        if "\n" in text or not text.strip() or text.startswith("\ufeff"):
            continue
        texts.append(text)
        lines.append((c.expect, tuple(f for f in c.fields if f not in ("<stdin>", "request", "{D}/req.json"))))
    if not lines:
        return Case("eval --jsonl", ["eval", "--jsonl", "{D}/missing.jsonl"], "refuse", ("missing.jsonl",),
                    what="a missing file")
    text = "\n".join(texts) + "\n"
    expect = "refuse" if any(e == "refuse" for e, _ in lines) else ("either" if any(e == "either" for e, _ in lines) else "ok")
    if rng.random() < 0.5:
        return Case("eval --jsonl", ["eval", "--jsonl"], expect, stdin=text, lines=lines, what=f"{len(lines)} lines")
    return Case("eval --jsonl", ["eval", "--jsonl", "{D}/r.jsonl"], expect, files={"r.jsonl": text.encode()},
                lines=lines, what=f"{len(lines)} lines")


# ================================================================ TOML text mutations

_ASSIGN = re.compile(r'(?<![\w."-])([A-Za-z0-9_]+) = ("[^"\n]*"|-?[0-9]+(?![0-9.:-])|true|false)')
TOML_NOT_ANY = ["1.5", "nan", "inf", "-inf", "1e3", HUGE_DIGITS, "[" * 3000 + "]" * 3000,
                "1979-05-27T07:32:00Z", "07:32:00", "[]", "{}"]
TOML_TEXT_BAD = ['"' + s + '"' for s in NUM_TEXT_BAD if '"' not in s and "\\" not in s and "\x00" not in s]
FREE_TEXT_KEYS = {"name", "title", "description", "id", "account", "scenario"}
TOML_ENUMS = {"side", "type", "margin_mode", "mm_price_basis", "trigger", "partial", "fee_receiver", "execution_price",
              "ranking", "balance_view", "business_line", "kind", "basis", "settle_currency", "tier_table",
              "underlying", "instrument", "profile"}
TOML_POSITIVE = {"size", "entry_price", "price", "contract_value", "tick_size", "lot_size", "cap", "max_leverage"}


def _comment_start(line: str) -> int:
    q = False
    for i, ch in enumerate(line):
        if ch == '"':
            q = not q
        elif ch == "#" and not q:
            return i
    return len(line)


def _toml_sites(text: str) -> list[tuple[int, re.Match]]:
    out = []
    for n, line in enumerate(text.split("\n")):
        if line.lstrip().startswith("#"):
            continue
        end = _comment_start(line)
        for m in _ASSIGN.finditer(line[:end]):
            if line[: m.start()].count('"') % 2 == 0:  # not inside a string
                out.append((n, m))
    return out


def _toml_mutation(rng: random.Random, text: str, time_keys: set[str]) -> tuple[str, str, tuple[str, ...], str] | None:
    sites = _toml_sites(text)
    n, m = rng.choice(sites)
    key, val = m.group(1), m.group(2)
    lines = text.split("\n")
    line = lines[n]

    def put(new: str) -> str:
        out = lines[:]
        out[n] = line[: m.start(2)] + new + line[m.end(2):]
        return "\n".join(out)

    inner = val[1:-1] if val.startswith('"') else None
    r = rng.random()
    if r < 0.06:  # an unknown key next to it
        out = lines[:]
        nk = rng.choice(["zz_unknown", key + "e", key.upper() if key.upper() != key else key + "_x"])
        if re.search(rf'(?<![\w."-]){re.escape(nk)} =', text):
            return None
        if m.start() == len(line) - len(line.lstrip()) and "{" not in line[: m.start()]:
            out.insert(n + 1, f'{nk} = "1"')
        else:
            out[n] = line[: m.end(2)] + f', {nk} = "1"' + line[m.end(2):]
        return "\n".join(out), "refuse", (nk,), f"unknown key {nk!r} at line {n + 1}"
    if key in time_keys and inner is not None:
        bad = rng.choice(TIME_BAD)
        return put(_toml_scalar(bad)), "refuse", (key,), f"bad time {key}={bad!r}"
    if inner is not None and _NUMERIC.fullmatch(inner):
        if r < 0.15 and "." not in inner and not inner.startswith("-"):
            return put(f'"{int(inner) * 3}/3"'), "ok", (), f"{key} as a ratio"
        if r < 0.22 and "." not in inner and len(inner) < 15:
            return put(inner), "ok", (), f"{key} as a TOML integer"
        if r < 0.3 and key in TOML_POSITIVE:
            return put(rng.choice(['"0"', '"-1"', '"-0.5"'])), "refuse", (key,), f"non-positive {key}"
        if r < 0.33:
            return put(f'"{NEAR_BOUND}"'), "either", (key,), f"huge within bounds {key}"
        bad = rng.choice(TOML_NOT_ANY + TOML_TEXT_BAD)
        return put(bad), "refuse", (key,), f"bad number {key}={bad[:20]!r}"
    if inner is not None:
        if key in FREE_TEXT_KEYS:
            bad = rng.choice(TOML_NOT_ANY + ["true", "1"])
        elif key in TOML_ENUMS:
            bad = rng.choice(TOML_NOT_ANY + ["true", "1", '""', f'"{inner} "', f'" {inner}"', f'"{inner.lower()}x"'])
        else:
            return None
        return put(bad), "refuse", (key,), f"bad string {key}={bad[:20]!r}"
    if val in ("true", "false"):
        bad = rng.choice(["1", "0", '"true"', "1.5", "nan"])
        return put(bad), "refuse", (key,), f"bad bool {key}={bad}"
    # an integer literal
    if r < 0.3 and key in time_keys:
        return put(f'"{val}"'), "ok", (), f"{key} as a digit string"
    bad = rng.choice(TOML_NOT_ANY + ['"\u0661\u0660"', "true"])
    return put(bad), "refuse", (key,), f"bad integer {key}={bad[:20]!r}"


def _toml_scalar(v: Any) -> str:
    if isinstance(v, int):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


def gen_simulate(rng: random.Random, corpus: Corpus) -> Case:
    name, text = rng.choice(sorted(corpus.scenarios.items()))
    out = "{D}/out"
    r = rng.random()
    if r < 0.08:
        which = rng.randrange(5)
        files = {"s.toml": text.encode()}
        if which == 0:
            return Case("simulate", ["simulate", "{D}/s.toml", "--out", "{D}/f.txt"], "refuse", ("--out", "f.txt"),
                        files={**files, "f.txt": b"keep me"}, what="--out on an existing file")
        if which == 1:
            return Case("simulate", ["simulate", "{D}/s.toml", "--out", "{D}/f.txt/sub"], "refuse", ("--out", "f.txt"),
                        files={**files, "f.txt": b"keep me"}, what="--out below a file")
        if which == 2:
            return Case("simulate", ["simulate", "{D}/missing.toml", "--out", out], "refuse", ("missing.toml",),
                        what="a missing scenario file")
        if which == 3:
            return Case("simulate", ["simulate", "{D}/s.toml", "--out", out], "refuse", ("s.toml",),
                        files={"s.toml": b"\xff\xfe\x00bad"}, what="not UTF-8")
        return Case("simulate", ["simulate", "{D}", "--out", out], "refuse", ("{D}",), what="a folder as the file")
    if r < 0.083:  # a valid run draws a chart (matplotlib, about a second): a few
        return Case("simulate", ["simulate", "{D}/s.toml", "--out", out, "--quiet"], "ok", files={"s.toml": text.encode()},
                    what=f"{name} as shipped")
    if r < 0.13:
        bad = rng.choice(["x = ", "[[events]\n", "a = 1\na = 2\n", "\x00", "start = 1979-05-27T07:32:00\n"])
        return Case("simulate", ["simulate", "{D}/s.toml", "--out", out], "refuse", ("s.toml",),
                    files={"s.toml": (text + "\n" + bad).encode()}, what=f"bad TOML {bad!r}")
    m = None
    while m is None:
        m = _toml_mutation(rng, text, {"start", "time"})
    new, expect, fields, what = m
    if expect in ("ok", "either") and rng.random() < 0.9:   # valid runs are slow (a chart): keep a few
        return gen_simulate(rng, corpus)
    fields = fields + ("s.toml:",)  # a value the TOML parser itself refuses names the file (and line)
    return Case("simulate", ["simulate", "{D}/s.toml", "--out", out, "--quiet"], expect, fields,
                files={"s.toml": new.encode("utf-8")}, what=f"{name}: {what}")


def gen_profile(rng: random.Random, corpus: Corpus) -> Case:
    name, text = rng.choice(sorted(corpus.profiles.items()))
    r = rng.random()
    if r < 0.05:
        return Case("profiles show", ["profiles", "show", "{D}/missing.toml"], "refuse", ("missing.toml",),
                    what="a missing profile file")
    if r < 0.07:
        return Case("profiles show", ["profiles", "show", "nosuchprofile"], "refuse", ("nosuchprofile",),
                    what="an unknown profile name")
    if r < 0.09:
        return Case("profiles show", ["profiles", "show", "{D}/p.toml"], "refuse", ("p.toml",),
                    files={"p.toml": b"\xff\xfe"}, what="not UTF-8")
    if r < 0.12:
        return Case("profiles show", ["profiles", "show", "{D}/p.toml"], "ok", files={"p.toml": text.encode()},
                    what=f"{name} as shipped")
    if r < 0.22:  # the case: an underlying with a trailing space, or other id flaws
        target = rng.choice(["underlying", "settle_currency", "tier_table"])
        sites = [(n, m) for n, m in _toml_sites(text) if m.group(1) == target]
        if sites:
            n, m = rng.choice(sites)
            lines = text.split("\n")
            inner = m.group(2)[1:-1]
            bad = rng.choice([x for x in (inner + " ", " " + inner, inner.lower(), inner.replace("-", "_"), inner + "\t", "")
                              if x != inner])
            lines[n] = lines[n][: m.start(2)] + json.dumps(bad) + lines[n][m.end(2):]
            return Case("profiles show", ["profiles", "show", "{D}/p.toml"], "refuse", (target, "instruments."),
                        files={"p.toml": "\n".join(lines).encode()}, what=f"{name}: {target}={bad!r}")
    m = None
    while m is None:
        m = _toml_mutation(rng, text, set())
    new, expect, fields, what = m
    fields = fields + ("p.toml",)  # a value the TOML parser itself refuses names the file
    return Case("profiles show", ["profiles", "show", "{D}/p.toml"], expect, fields, files={"p.toml": new.encode()},
                what=f"{name}: {what}")


# ================================================================ logs (fund-history, check-trace)

def _line_mutation(rng: random.Random, lines: list[str], n: int) -> tuple[list[str], str, tuple[str, ...], str] | None:
    obj = json.loads(lines[n])
    keys = [k for k in obj if k != "rules"]
    k = rng.choice(keys)
    v = obj[k]
    if k == "kind":
        bad = rng.choice(["", 1, None, _Raw("1.5"), [], True])
    elif k == "time_ms":
        bad = rng.choice([-1, "abc", _Raw("1.5"), True, str(HUGE_DIGITS), _Raw(HUGE_DIGITS), TIME_BOUND_MS, 10 ** 20,
                          "\u0661\u0662", None, [], "2026-01-05T08:00:00"])
    elif isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        bad = rng.choice([_Raw("1.5"), _Raw("NaN"), True, "\u0661\u0660", HUGE_DIGITS, _Raw(HUGE_DIGITS), "",
                          "abc", None, [], {}, "1e3", " 1"])
    elif k in ("fund", "instrument", "account"):
        bad = rng.choice([1, "", None, _Raw("1.5"), [], True])
    else:
        return None
    obj[k] = bad
    new = lines[:]
    new[n] = _dump(obj)
    return new, k, (f":{n + 1}", f"line {n + 1}"), f"line {n + 1}: {k}={_dump(bad)[:20]}"


def gen_fund_history(rng: random.Random, corpus: Corpus) -> Case:
    name = rng.choice(sorted(corpus.logs))
    log = corpus.logs[name]
    text = log["events"]
    funds = corpus.fund_ids[name]
    fund = rng.choice(funds)
    fmt = rng.choice(["text", "csv", "json"])
    base = ["fund-history", "{D}/events.jsonl", "--fund", fund, "--format", fmt]
    files = {"events.jsonl": text.encode()}
    r = rng.random()
    if r < 0.06:
        return Case("fund-history", base, "ok", files=files, what=f"{name} as written")
    if r < 0.063:   # a chart is slow (matplotlib): a few
        return Case("fund-history", base + ["--svg", "{D}/c.svg"], "ok", files=files, what=f"{name} with --svg")
    if r < 0.2:
        which = rng.randrange(7)
        if which == 0:
            return Case("fund-history", base + ["--svg", "{D}/nodir/c.svg"], "refuse", ("--svg", "nodir"), files=files,
                        what="--svg into a missing folder")
        if which == 1:
            return Case("fund-history", ["fund-history", "{D}/events.jsonl", "--fund", "perpetual_futures/NOPE-USDT/USDT"],
                        "refuse", ("--fund",), files=files, what="an unknown --fund")
        if which == 2:
            other = rng.choice([p for p in ("okx", "binance", "bybit") if p != log["profile"]])
            return Case("fund-history", base + ["--profile", other], "refuse", ("--profile", "profile"), files=files,
                        what=f"--profile {other} on a {log['profile']} log")
        if which == 3:
            return Case("fund-history", base + ["--profile", "{D}/nope.toml"], "refuse", ("nope.toml",), files=files,
                        what="a missing --profile file")
        if which == 4:
            return Case("fund-history", ["fund-history", "{D}/missing.jsonl"], "refuse", ("missing.jsonl",),
                        what="a missing log")
        if which == 5:
            return Case("fund-history", base + ["--svg", "{D}"], "refuse", ("--svg",), files=files,
                        what="--svg onto a folder")
        return Case("fund-history", ["fund-history", "{D}/events.jsonl", "--fund", rng.choice(["", "x", "a/b", "a/b/c/d"])],
                    "refuse", ("--fund",), files=files, what="a malformed --fund")
    lines = text.rstrip("\n").split("\n")
    if r < 0.28:
        n = rng.randrange(len(lines))
        bad = rng.choice(["{", "[]", "1.5", "null", "[" * 100_000 + "]" * 100_000, HUGE_DIGITS, "{\"kind\": \"top-up\"}",
                          "\"x\""])
        new = lines[:]
        new[n] = bad
        return Case("fund-history", base, "refuse", (f":{n + 1}", f"line {n + 1}"),
                    files={"events.jsonl": ("\n".join(new) + "\n").encode()}, what=f"line {n + 1} = {bad[:20]!r}")
    if r < 0.34:   # the header (the profile and decimals the log was written with)
        hdr = json.loads(lines[0])
        if hdr.get("kind") == "log":
            k = rng.choice(["profile", "currencies"])
            hdr[k] = rng.choice([{"USDT": 2, "BTC": 8}, "bybit", 1, None, {"USDT": "x"}, {}]) if k == "currencies" else \
                rng.choice(["bybit", "nope", 1, None, ""])
            if k == "profile" and hdr[k] == "bybit" and log["profile"] == "bybit":
                hdr[k] = "okx"
            new = [_dump(hdr)] + lines[1:]
            return Case("fund-history", base, "refuse", ("line 1", ":1", "profile", "currencies"),
                        files={"events.jsonl": ("\n".join(new) + "\n").encode()}, what=f"header {k}={hdr[k]!r}")
    m = None
    while m is None:
        n = rng.randrange(1 if json.loads(lines[0]).get("kind") == "log" else 0, len(lines))
        m = _line_mutation(rng, lines, n)
    new, k, fields, what = m
    return Case("fund-history", base, "refuse", fields, files={"events.jsonl": ("\n".join(new) + "\n").encode()},
                what=f"{name}: {what}")


def gen_check_trace(rng: random.Random, corpus: Corpus) -> Case:
    name = rng.choice(sorted(corpus.logs))
    text = corpus.logs[name]["trace"]
    base = ["check-trace", "{D}/trace.jsonl"]
    r = rng.random()
    if r < 0.05:
        return Case("check-trace", base, "ok", files={"trace.jsonl": text.encode()}, what=f"{name} as written")
    if r < 0.08:
        return Case("check-trace", ["check-trace", "{D}/missing.jsonl"], "refuse", ("missing.jsonl",), what="a missing log")
    lines = text.rstrip("\n").split("\n")
    if r < 0.15:
        n = rng.randrange(len(lines))
        bad = rng.choice(["{", "[]", "1.5", "[" * 100_000 + "]" * 100_000, HUGE_DIGITS, "\"x\""])
        new = lines[:]
        new[n] = bad
        return Case("check-trace", base, "refuse", (f":{n + 1}", f"line {n + 1}"),
                    files={"trace.jsonl": ("\n".join(new) + "\n").encode()}, what=f"line {n + 1} = {bad[:20]!r}")
    outputs = [i for i, l in enumerate(lines) if json.loads(l)["kind"] not in ("log", "input")]
    inputs = [i for i, l in enumerate(lines) if json.loads(l)["kind"] == "input"]
    if r < 0.3 and outputs:   # an output record with another valid amount: the log differs
        n = rng.choice(outputs)
        obj = json.loads(lines[n])
        ks = [k for k, v in obj.items() if isinstance(v, str) and re.fullmatch(r"[0-9]+", v) and k != "time_ms"]
        if ks:
            k = rng.choice(ks)
            obj[k] = str(int(obj[k]) + rng.choice([1, 10 ** 6, 7]))
            new = lines[:]
            new[n] = json.dumps(obj)
            return Case("check-trace", base, "differ", files={"trace.jsonl": ("\n".join(new) + "\n").encode()},
                        what=f"{name}: line {n + 1} {k} changed")
    m = None
    while m is None:
        n = rng.choice(inputs + [0])
        m = _line_mutation(rng, lines, n)
        if m is not None and m[1] in ("kind",) and n != 0:
            m = None  # an input line of another kind is an output record: differs, not refused
    new, k, fields, what = m
    return Case("check-trace", base, "refuse", fields, files={"trace.jsonl": ("\n".join(new) + "\n").encode()},
                what=f"{name}: {what}")


GENERATORS: dict[str, Callable[[random.Random, Corpus], Case]] = {
    "eval": gen_eval, "eval --jsonl": gen_jsonl, "simulate": gen_simulate, "profiles show": gen_profile,
    "fund-history": gen_fund_history, "check-trace": gen_check_trace,
}
WEIGHTS = {"eval": 35, "eval --jsonl": 10, "simulate": 15, "profiles show": 15, "fund-history": 15, "check-trace": 10}


def generate(seed: int, n: int, corpus: Corpus, only: str | None = None, part: tuple[int, int] = (0, 1)) -> list[Case]:
    """``n`` cases, case ``i`` from its own ``Random(f"{seed}:{i}")`` (each reproducible alone);
    ``part=(j, k)`` keeps the cases ``i`` with ``i % k == j`` (one of ``k`` workers)."""
    names = [only] if only else list(WEIGHTS)
    weights = [WEIGHTS[k] for k in names]
    out = []
    for i in range(part[0], n, part[1]):
        rng = random.Random(f"{seed}:{i}")
        cmd = rng.choices(names, weights)[0]
        out.append(GENERATORS[cmd](rng, corpus))
    return out


# ================================================================ running and judging

def _listing(d: Path) -> dict[str, str]:
    out = {}
    for p in sorted(d.rglob("*")):
        out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _argv(case: Case, d: Path) -> list[str]:
    return [a.replace("{D}", str(d)) for a in case.argv]


_FAST = False


def _speed_up() -> None:
    """Two caches for the in-process runner (the subprocess runner has neither, and
    ``test_the_in_process_runner_matches_a_process`` shows they answer alike): the argument parser is
    built once (argparse parsers are reusable: each ``parse_args`` makes a new namespace), and a
    *shipped* profile, given by name, is loaded once (profiles are immutable values; a profile given
    as a file, which the fuzz cases mutate, is always read afresh)."""
    global _FAST
    if _FAST:
        return
    _FAST = True
    import functools
    from backstop import cli
    from backstop.reference import profile as P
    parser = cli.build_parser()  # the full parser answers every command the core one does
    cli.build_parser = lambda core_only=False: parser  # type: ignore[assignment]
    shipped = set(P.profile_names())
    original = P.load_profile

    @functools.lru_cache(maxsize=None)
    def _shipped(name: str) -> Any:
        return original(name)

    def load_profile(name_or_path: Any = P.DEFAULT_PROFILE) -> Any:
        if isinstance(name_or_path, str) and name_or_path in shipped and not Path(name_or_path).exists():
            return _shipped(name_or_path)
        return original(name_or_path)

    P.load_profile = load_profile  # type: ignore[assignment]


def run_case(case: Case, workdir: Path | None = None) -> Verdict:
    """Run ``case`` in-process (``backstop.cli.main``) in a fresh folder below ``workdir``."""
    from backstop.cli import main
    _speed_up()
    base = Path(tempfile.mkdtemp(prefix="fz", dir=workdir))
    try:
        for rel, data in case.files.items():
            (base / rel).write_bytes(data)
        before = _listing(base)
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(case.stdin)
        crash = ""
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(_argv(case, base))
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # noqa: BLE001  (the point: nothing may escape)
            if isinstance(e, KeyboardInterrupt):
                raise
            code, crash = None, "".join(traceback.format_exception(e))[-3000:]
        finally:
            sys.stdin = old_stdin
        after = _listing(base)
        return judge(case, code, out.getvalue(), err.getvalue() + crash, before, after, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_subprocess(case: Case, workdir: Path | None = None) -> Verdict:
    """The same case as a process (``python -m backstop``), to show the in-process runner agrees."""
    base = Path(tempfile.mkdtemp(prefix="fz", dir=workdir))
    try:
        for rel, data in case.files.items():
            (base / rel).write_bytes(data)
        before = _listing(base)
        p = subprocess.run([sys.executable, "-m", "backstop", *_argv(case, base)], input=case.stdin.encode(),
                           capture_output=True, timeout=300, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        return judge(case, p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"),
                     before, _listing(base), base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _refusal_ok(stderr: str, fields: tuple[str, ...], d: Path) -> str:
    lines = stderr.splitlines()
    if len(lines) != 1:
        return f"{len(lines)} lines on stderr"
    line = lines[0]
    if not line.startswith("error: "):
        return "not 'error: ...'"
    if len(line) > MAX_LINE:
        return f"a {len(line)}-character line"
    want = [f.replace("{D}", str(d)) for f in fields]
    if want and not any(w in line for w in want):
        return f"names none of {want}"
    return ""


def judge(case: Case, code: int | None, stdout: str, stderr: str, before: dict[str, str], after: dict[str, str],
          d: Path) -> Verdict:
    outcome = {0: "answered", 1: "differs", 2: "refused"}.get(code, "crash")  # type: ignore[arg-type]
    v = Verdict(case, code, stdout, stderr, outcome)
    if code is None or "Traceback" in stderr or code not in (0, 1, 2):
        v.problem = "crash"
        return v
    if code == 1 and case.command != "check-trace":
        v.problem = "crash"  # exit 1 means an obligation is not ok
        return v
    if case.lines is not None:  # eval --jsonl: one answer per request line
        return _judge_jsonl(v, d)
    if code == 2:
        if case.expect in ("ok", "differ"):
            v.problem = "false refusal"
        why = _refusal_ok(stderr, case.fields, d)
        if why and not v.problem:
            v.problem = f"bad refusal ({why})"
        elif not v.problem and after != before:
            v.problem = "leftover"
        return v
    if case.expect == "refuse":
        v.problem = "silent accept"
    elif code == 1 and case.expect != "differ":
        v.problem = "wrong answer" if case.expect == "ok" else "silent accept"
    elif code == 0 and case.expect == "differ":
        v.problem = "silent accept"
    elif case.same_stdout is not None and stdout != case.same_stdout:
        v.problem = "wrong answer"
    elif stderr.strip() and case.command != "check-trace":
        v.problem = "bad refusal (stderr on an answer)"
    return v


def _judge_jsonl(v: Verdict, d: Path) -> Verdict:
    case = v.case
    assert case.lines is not None
    if v.stderr.strip() and v.code != 2 or (v.code == 2 and not any(e == "refuse" for e, _ in case.lines)
                                            and not any(e == "either" for e, _ in case.lines)):
        v.problem = "false refusal" if v.code == 2 else "bad refusal (stderr)"
        return v
    outs = v.stdout.splitlines()
    if len(outs) != len(case.lines):
        v.problem = f"crash ({len(outs)} answers to {len(case.lines)} lines)"
        return v
    refused = 0
    for n, ((expect, fields), text) in enumerate(zip(case.lines, outs), start=1):
        obj = json.loads(text)
        if "error" in obj:
            refused += 1
            if expect == "ok":
                v.problem = f"false refusal (line {n})"
                return v
            msg = obj["error"].get("message", "")
            parser = msg.startswith(f"error: line {n}: ")  # the JSON parser refused the line itself
            if obj.get("line") != n or "\n" in msg or len(msg) > MAX_LINE or (
                    fields and not parser and not any(f in msg or f in obj["error"].get("field", "") for f in fields)):
                v.problem = f"bad refusal (line {n}: {msg[:200]!r})"
                return v
        elif expect == "refuse":
            v.problem = f"silent accept (line {n})"
            return v
    if (v.code == 2) != (refused > 0):
        v.problem = "crash (exit code vs refusals)"
    v.outcome = "refused" if refused else "answered"
    return v
