"""``backstop conform``: check a foreign implementation against backstop, hunt for disagreements
around every one found, and shrink each to the smallest request that still disagrees.

**The adapter protocol.**  The implementation is a command (split with :func:`shlex.split`, run
without a shell) that reads one JSON request per line on stdin -- exactly a ``backstop eval``
request -- and writes one JSON line per request on stdout: the response object, in the shape
``backstop eval`` answers (any subset of its fields; a quantity is ``{"value": ...}`` or the bare
value; numbers as JSON numbers or exact strings), or ``{"error": {...}}`` when it refuses the
request, or ``{"unsupported": "reason"}`` when it does not implement what is asked.  Each request
has ``--timeout`` seconds; the process is started once and restarted after a crash or a timeout;
its stderr is kept for the report.

**Cases.**  With ``--vectors DIR``: every case of the layout ``DIR/v1/<profile>/<operation>/<rule>/
<region-id>/<case>.json`` (``{"format": "backstop-vector/1", "request", "response" | "error",
...}``); without it, a fixed seed set of ``margin`` and ``cross`` requests (okx, binance, and
binance with ETHUSDT) answered in-process by :func:`backstop.inputs.evaluate`.

**Comparison.**  Every field the implementation gives is compared with backstop's at the same
place; fields it leaves out are not compared.  Numbers compare exactly (``"0.5"`` equals
``"1/2"``), or with ``--rel-tol X``: ``|a - b| <= X * max(|a|, |b|)``; tiers (fields named
``tier*``), booleans, strings and null always exactly.  A case is classified ``agrees``,
``differs`` (naming the first differing field: tiers first, then rates, deductions, other
amounts, prices, decisions), ``unsupported``, ``refused`` (refused where backstop answers),
``answered`` (answered where backstop refuses) or ``error`` (the implementation crashed, hung, or
wrote a line that is not a JSON object).  Both refusing agrees.

**Hunting and shrinking.**  Around every disagreement ``--hunt N`` variants of its request are
tried (at most ``25 N`` in all, the first disagreements first; seeded by ``--seed``): random perturbations of its numbers (sizes on the lot grid, prices on
the tick grid, money on the currency's grid) and region boundaries (a notional or a size at a tier
cap, a margin that puts the liquidation price at a cap), each answered by backstop in-process.
Disagreements are grouped by cause (operation, classification, field); the smallest of each cause
is shrunk greedily (fewer positions, then smaller and rounder numbers) while it keeps its cause.

**Exit codes.**  0 every compared case agrees; 1 some disagreement; 2 could not run (the command
cannot be started, crashed, hung or spoke something else than the protocol on some case, the
vectors cannot be read, or no case could be compared).
"""

from __future__ import annotations

import argparse
import html as _html
import json
import math
import queue
import random
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field as _field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

from backstop.jsonio import JsonFloat, loads as exact_loads
from backstop.reference.errors import BackstopError

__all__ = ["register_cli", "run_conform", "seed_cases", "load_vectors", "compare", "Implementation",
           "EXIT_AGREE", "EXIT_DISAGREE", "EXIT_CANNOT_RUN", "CLASSES"]

EXIT_AGREE, EXIT_DISAGREE, EXIT_CANNOT_RUN = 0, 1, 2
VECTOR_FORMAT = "backstop-vector/1"
CLASSES = ("agrees", "differs", "unsupported", "refused", "answered", "error")
CLASS_WORDS = {"agrees": "agrees", "differs": "differs", "unsupported": "unsupported",
               "refused": "refused where backstop answers", "answered": "answered where backstop refuses",
               "error": "could not run"}
DISAGREE = ("differs", "refused", "answered")
MAX_CONSECUTIVE_FAILURES = 3
HUNT_TOTAL_FACTOR = 25      # at most --hunt x 25 hunting requests in all (the first disagreements first)
STDERR_KEEP = 20_000


# ================================================================ cases

@dataclass
class Case:
    id: str
    request: Any                       # as parsed by backstop.jsonio.loads (JSON floats kept as JsonFloat)
    expected: tuple[str, Any]          # ("answer", response) or ("error", {"field", "rule", "type"})
    operation: str = "margin"
    rules: tuple[str, ...] = ()
    region: str = ""
    origin: str = "seed"               # seed | vector | hunt | shrink


def backstop_answer(req: Any, cache: dict[Any, Any] | None = None) -> tuple[str, Any]:
    """Backstop's own answer, in-process: ("answer", response) or ("error", {...})."""
    from backstop.inputs import evaluate
    try:
        return "answer", evaluate(req, cache)
    except BackstopError as e:
        return "error", {"field": getattr(e, "field", ""), "rule": getattr(e, "rule", ""),
                         "type": type(e).__name__, "reason": getattr(e, "reason", str(e))}


def _op(req: Any) -> str:
    return req.get("operation", "margin") if isinstance(req, dict) and isinstance(req.get("operation", ""), str) \
        else "margin"


# The binance profile plus ETHUSDT (Binance's 2021 ETHUSDT brackets, as in tests/unit/test_oracle_examples.py),
# so that a cross account can hold two instruments.
BINANCE_ETH = '''extends = "binance"
name = "binance-eth"

[tier_tables.ETHUSDT]
basis = "notional"
tiers = [
  { cap = "10000",    mmr = "0.005",  imr = "0.01",  max_leverage = "100", mm_deduction = 0 },
  { cap = "100000",   mmr = "0.0065", imr = "0.013", max_leverage = "75",  mm_deduction = 1500000000 },
  { cap = "500000",   mmr = "0.01",   imr = "0.02",  max_leverage = "50",  mm_deduction = 36500000000 },
  { cap = "1000000",  mmr = "0.02",   imr = "0.04",  max_leverage = "25",  mm_deduction = 536500000000 },
  { cap = "2000000",  mmr = "0.05",   imr = "0.1",   max_leverage = "10",  mm_deduction = 3536500000000 },
  { cap = "5000000",  mmr = "0.1",    imr = "0.2",   max_leverage = "5",   mm_deduction = 13536500000000 },
  { cap = "10000000", mmr = "0.125",  imr = "0.25",  max_leverage = "4",   mm_deduction = 26036500000000 },
]

[instruments.ETHUSDT]
business_line = "perpetual_futures"
underlying = "ETH-USDT"
kind = "linear"
settle_currency = "USDT"
contract_value = "1"
tick_size = "0.01"
lot_size = "0.001"
tier_table = "ETHUSDT"
'''


def _iso(profile: Any, inst: str, side: str, size: str, entry: str, mark: str, **kw: Any) -> dict[str, Any]:
    return {"profile": profile, "positions": [{"instrument": inst, "side": side, "size": size, "entry_price": entry, **kw}],
            "mark_prices": {inst: mark}}


def _cross(profile: Any, balance: str, positions: list[tuple[str, str, str, str]], marks: dict[str, str]) -> dict[str, Any]:
    return {"operation": "cross", "profile": profile, "balances": {"USDT": balance},
            "positions": [{"instrument": i, "side": s, "size": n, "entry_price": e} for i, s, n, e in positions],
            "mark_prices": marks}


def seed_requests() -> list[tuple[str, dict[str, Any]]]:
    """The fixed seed set used without ``--vectors``: margin and cross requests on okx (the default
    profile), binance, and binance with ETHUSDT; valid and invalid ones."""
    bx = {"toml": BINANCE_ETH}
    out: list[tuple[str, dict[str, Any]]] = [
        ("okx/margin/long", _iso("okx", "BTC-USDT-SWAP", "long", "100", "30000", "29000", margin=1500000000)),
        ("okx/margin/short-inverse", _iso("okx", "BTC-USD-SWAP", "short", "300", "30000", "31000", margin="0.05 BTC")),
        ("okx/margin/tier-3", _iso("okx", "BTC-USDT-SWAP", "long", "4000", "30000", "29000", margin="50000 USDT")),
        ("okx/cross/two", _cross("okx", "10000 USDT", [("BTC-USDT-SWAP", "long", "100", "30000"),
                                                       ("ETH-USDT-SWAP", "short", "100", "2000")],
                                 {"BTC-USDT-SWAP": "25000", "ETH-USDT-SWAP": "2300"})),
        ("binance/margin/bracket-3", _iso("binance", "BTCUSDT", "long", "5", "60000", "60000", margin="30000 USDT")),
        ("binance/margin/faq-isolated", _iso("binance", "BTCUSDT", "long", "109.488", "32481.98", "31967.27",
                                             margin="1535443.01 USDT")),
        ("binance/margin/short", _iso("binance", "BTCUSDT", "short", "2", "30000", "30500", margin="3000 USDT")),
        ("binance/margin/short-bracket-2", _iso("binance", "BTCUSDT", "short", "3", "30000", "29000", margin="9000 USDT")),
        ("binance/margin/leverage", _iso("binance", "BTCUSDT", "long", "0.5", "40000", "39000", leverage="20")),
        ("binance/margin/small", _iso("binance", "BTCUSDT", "long", "0.01", "30000", "30100", margin=1500000000)),
        ("binance/margin/at-cap", _iso("binance", "BTCUSDT", "short", "20", "50000", "50000", margin="100000 USDT")),
        ("binance/margin/margin-above-notional-bracket", _iso("binance", "BTCUSDT", "long", "1", "100000", "100000",
                                                              margin="60000 USDT")),
        ("binance/margin/no-liquidation-price", _iso("binance", "BTCUSDT", "long", "1", "30000", "30000",
                                                     margin="30000 USDT")),
        ("binance/margin/two-positions", {"profile": "binance", "positions": [
            {"instrument": "BTCUSDT", "side": "long", "size": "10", "entry_price": "30000", "margin": "20000 USDT"},
            {"instrument": "BTCUSDT", "side": "short", "size": "0.3", "entry_price": "30000", "margin": "500 USDT"}],
            "mark_prices": {"BTCUSDT": "30000"}}),
        ("binance/margin/invalid-size-zero", _iso("binance", "BTCUSDT", "long", "0", "30000", "30000", margin="100 USDT")),
        ("binance/margin/invalid-lot", _iso("binance", "BTCUSDT", "long", "0.0005", "30000", "30000", margin="100 USDT")),
        ("binance/margin/invalid-beyond-brackets", _iso("binance", "BTCUSDT", "long", "2000", "60000", "60000",
                                                        margin="1000000 USDT")),
        ("binance/cross/single", _cross("binance", "5000 USDT", [("BTCUSDT", "long", "2", "30000")], {"BTCUSDT": "29000"})),
        ("binance/cross/hedge", _cross("binance", "5000 USDT", [("BTCUSDT", "long", "2", "30000"),
                                                              ("BTCUSDT", "short", "1", "30000")], {"BTCUSDT": "29000"})),
        ("binance-eth/cross/faq", _cross(bx, "1535443.01 USDT", [("BTCUSDT", "long", "109.488", "32481.98"),
                                                               ("ETHUSDT", "long", "3683.979", "1456.84")],
                                         {"BTCUSDT": "31967.27", "ETHUSDT": "1335.18"})),
        ("binance-eth/cross/long-short", _cross(bx, "20000 USDT", [("BTCUSDT", "long", "4", "30000"),
                                                                 ("ETHUSDT", "short", "30", "2000")],
                                                {"BTCUSDT": "28000", "ETHUSDT": "2100"})),
        ("binance-eth/cross/short-long", _cross(bx, "8000 USDT", [("BTCUSDT", "short", "1", "30000"),
                                                                ("ETHUSDT", "long", "10", "2000")],
                                                {"BTCUSDT": "30500", "ETHUSDT": "1900"})),
    ]
    return out


def seed_cases() -> list[Case]:
    cache: dict[Any, Any] = {}
    cases = []
    for cid, req in seed_requests():
        cases.append(Case(cid, req, backstop_answer(req, cache), _op(req), origin="seed"))
    return cases


class VectorError(BackstopError):
    """The vectors directory cannot be read (exit 2)."""


def load_vectors(root: str | Path) -> list[Case]:
    """Every case of ``DIR/v1/<profile>/<operation>/<rule>/<region-id>/<case>.json`` (layout.md),
    in path order.  ``DIR/v1/index.json``, when present, must list exactly these paths."""
    base = Path(root) / "v1"
    if not base.is_dir():
        raise VectorError(f"{root}: no v1/ directory (the layout is DIR/v1/<profile>/<operation>/<rule>/<region>/<case>.json)")
    files = sorted(p for p in base.glob("*/*/*/*/*.json"))
    if not files:
        raise VectorError(f"{base}: no vector files")
    index = base / "index.json"
    if index.exists():
        listed = _index_paths(index)
        found = {p.relative_to(base).as_posix() for p in files}
        if listed is not None and listed != found:
            extra, missing = sorted(listed - found), sorted(found - listed)
            raise VectorError(f"{index}: does not match the files (listed but absent: {extra[:3]}; present but not "
                              f"listed: {missing[:3]})")
    cases = []
    for p in files:
        rel = p.relative_to(base).as_posix()
        try:
            v = exact_loads(p.read_text(encoding="utf-8"), rel)
        except (OSError, UnicodeDecodeError, BackstopError) as e:
            raise VectorError(f"{rel}: cannot read: {e}") from None
        if not isinstance(v, dict) or v.get("format") != VECTOR_FORMAT or "request" not in v \
                or ("response" in v) == ("error" in v):
            raise VectorError(f"{rel}: not a {VECTOR_FORMAT} vector (format, request, and one of response / error)")
        expected = ("answer", v["response"]) if "response" in v else ("error", v["error"])
        region = v.get("region") or {}
        cases.append(Case(rel, v["request"], expected, v.get("operation") or _op(v["request"]),
                          tuple(v.get("rules") or ()), region.get("id", "") if isinstance(region, dict) else str(region),
                          origin="vector"))
    return cases


def _index_paths(index: Path) -> set[str] | None:
    """The case paths ``index.json`` lists (relative to v1/), whatever its outer shape: a list, or an
    object holding one under "cases"/"vectors"; entries are paths or objects with a "path"."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise VectorError(f"{index}: cannot read: {e}") from None
    items = data if isinstance(data, list) else next(
        (data[k] for k in ("cases", "vectors", "files") if isinstance(data, dict) and isinstance(data.get(k), list)), None)
    if items is None:
        return None
    out = set()
    for it in items:
        p = it if isinstance(it, str) else it.get("path") if isinstance(it, dict) else None
        if not isinstance(p, str):
            return None
        out.add(p[3:] if p.startswith("v1/") else p)
    return out


# ================================================================ the implementation

class CannotStart(BackstopError):
    """The foreign implementation cannot be started or stopped answering (exit 2)."""


class Implementation:
    """The foreign implementation as a subprocess speaking the adapter protocol."""

    def __init__(self, command: str, timeout: float = 10.0, cwd: str | None = None) -> None:
        self.command = command
        self.argv = shlex.split(command)
        if not self.argv:
            raise CannotStart("--impl is empty")
        self.timeout, self.cwd = timeout, cwd
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_chunks: list[str] = []
        self._err: Any = None
        self.starts = 0
        self.calls = 0
        self.extra_lines = 0          # lines written beyond one per request (found when a process ends)
        self._reader: threading.Thread | None = None

    def _start(self) -> None:
        self._err = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
                                         text=True, encoding="utf-8", errors="replace", bufsize=1, cwd=self.cwd)
        except OSError as e:
            raise CannotStart(f"cannot start {self.argv[0]!r}: {e.strerror or e}") from None
        self.starts += 1
        self.lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True)
        self._reader.start()

    @staticmethod
    def _read(stream: Any, q: queue.Queue[str | None]) -> None:
        for line in stream:
            q.put(line)
        q.put(None)

    def _collect_stderr(self) -> None:
        if self._err is not None:
            try:
                self._err.seek(0)
                text = self._err.read()
                if text:
                    self.stderr_chunks.append(text)
                self._err.close()
            except (OSError, ValueError):
                pass
            self._err = None

    def stop(self) -> None:
        p = self.proc
        if p is not None:
            try:
                if p.stdin:
                    p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if self._reader is not None:
                self._reader.join(timeout=2)
            while not self.lines.empty():
                if self.lines.get() is not None:
                    self.extra_lines += 1
        self.proc = None
        self._collect_stderr()

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self._collect_stderr()

    def ask(self, req: Any) -> tuple[str, Any]:
        """One request: ("answer", obj), ("error", obj), ("unsupported", reason) or
        ("failure", description) when the implementation crashed, hung or broke the protocol."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self._kill()
            self._start()
        self.calls += 1
        if not self.lines.empty():  # a line nobody asked for: the answers would be out of step
            extra = self.lines.get()
            self._kill()
            return "failure", f"wrote more than one line for the previous request: {str(extra).strip()[:200]!r}"
        line = json.dumps(_plain(req), ensure_ascii=False) + "\n"
        try:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            code = self.proc.wait() if self.proc else None
            self._kill()
            return "failure", f"the implementation exited (code {code}) before reading the request"
        try:
            out = self.lines.get(timeout=self.timeout)
        except queue.Empty:
            self._kill()
            return "failure", f"no answer within {self.timeout:g} s (timeout; the process was killed)"
        if out is None:
            code = self.proc.wait() if self.proc else None
            self._kill()
            return "failure", f"the implementation exited (code {code}) without answering"
        try:
            obj = json.loads(out)
        except ValueError:
            return "failure", f"not a JSON line: {out.strip()[:200]!r}"
        if not isinstance(obj, dict):
            return "failure", f"not a JSON object: {out.strip()[:200]!r}"
        if "unsupported" in obj and len(obj) == 1:
            return "unsupported", str(obj["unsupported"])
        if "error" in obj and set(obj) <= {"error", "line"}:
            return "error", obj["error"]
        return "answer", obj

    @property
    def stderr(self) -> str:
        text = "".join(self.stderr_chunks)
        return text if len(text) <= STDERR_KEEP else "...\n" + text[-STDERR_KEEP:]


def _plain(obj: Any) -> Any:
    """A request as plain JSON (a kept JSON float literal becomes a float again)."""
    if isinstance(obj, JsonFloat):
        try:
            return float(obj.text)
        except ValueError:
            return obj.text
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


# ================================================================ comparison

@dataclass
class Diff:
    path: str
    name: str
    expected: Any
    got: Any
    rank: int


def _rank(name: str, value: Any) -> int:
    """Causal order of intermediates: tier, rate, deduction, other amounts, prices, decisions."""
    n = name.lower()
    if n.startswith("tier") or "_tier" in n:
        return 0
    if "mmr" in n or "rate" in n:
        return 1
    if "deduction" in n:
        return 2
    if "price" in n:
        return 4
    if isinstance(value, bool) or (isinstance(value, str) and _num(value) is None):
        return 5
    return 3


def _num(v: Any) -> Fraction | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, float):
        return Fraction(v) if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            return Fraction(v.strip())
        except (ValueError, ZeroDivisionError):
            return None
    return None


def _same(e: Any, g: Any, name: str, rel_tol: float) -> bool:
    if e is None or isinstance(e, bool) or g is None or isinstance(g, bool):
        return e is g or (e == g and type(e) is type(g))
    a, b = _num(e), _num(g)
    if a is None or b is None:
        return a is None and b is None and e == g
    if a == b:
        return True
    if rel_tol <= 0 or name.lower().startswith("tier"):
        return False
    return abs(a - b) <= Fraction(rel_tol) * max(abs(a), abs(b))


def _is_quantity(x: Any) -> bool:
    return isinstance(x, dict) and "value" in x and set(x) <= {"value", "unit", "rules"}


def compare(expected: Any, got: Any, rel_tol: float = 0.0) -> tuple[list[Diff], list[str]]:
    """The differences between backstop's response and the implementation's (at the fields the
    implementation gives), in causal order, and the paths it gave that backstop's response lacks."""
    diffs: list[Diff] = []
    extra: list[str] = []

    def walk(e: Any, g: Any, path: str, name: str) -> None:
        if _is_quantity(e):
            gv = g["value"] if isinstance(g, dict) and "value" in g else g
            walk(e["value"], gv, path, name)
            return
        if isinstance(e, dict):
            if not isinstance(g, dict):
                diffs.append(Diff(path, name, e, g, _rank(name, e)))
                return
            for k, ev in e.items():
                if k in g:
                    walk(ev, g[k], f"{path}.{k}" if path else k, k if k not in ("quantities", "value") else name)
            extra.extend(f"{path}.{k}" if path else k for k in g if k not in e)
            return
        if isinstance(e, list):
            if not isinstance(g, list):
                diffs.append(Diff(path, name, e, g, _rank(name, e)))
                return
            for n, (ev, gv) in enumerate(zip(e, g)):
                walk(ev, gv, f"{path}[{n}]", name)
            if len(e) != len(g):
                diffs.append(Diff(f"{path}.length", name, len(e), len(g), 5))
            return
        if not _same(e, g, name, rel_tol):
            diffs.append(Diff(path, name, e, g, _rank(name, e)))

    walk(expected, got, "", "")
    order = {id(d): n for n, d in enumerate(diffs)}
    diffs.sort(key=lambda d: (d.rank, order[id(d)]))
    return diffs, extra


@dataclass
class Outcome:
    case: Case
    klass: str
    field: str = ""                    # the first differing field's name (differs), or the refusal's field
    path: str = ""
    expected: Any = None
    got: Any = None
    detail: str = ""
    diffs: list[Diff] = _field(default_factory=list)
    extra: list[str] = _field(default_factory=list)

    @property
    def cause(self) -> str:
        if self.klass == "differs":
            return f"{self.case.operation}: differs at {self.field}"
        if self.klass == "refused":
            return f"{self.case.operation}: refused where backstop answers"
        if self.klass == "answered":
            return f"{self.case.operation}: answered where backstop refuses ({self.field or 'input'})"
        return f"{self.case.operation}: {self.klass}"


def _generic_field(f: str) -> str:
    import re
    return re.sub(r"\[\d+\]", "[]", f or "")


def classify(case: Case, answer: tuple[str, Any], rel_tol: float) -> Outcome:
    kind, obj = answer
    exp_kind, exp = case.expected
    if kind == "failure":
        return Outcome(case, "error", detail=str(obj))
    if kind == "unsupported":
        return Outcome(case, "unsupported", detail=str(obj))
    if exp_kind == "error":
        bf = _generic_field(exp.get("field", "")) if isinstance(exp, dict) else ""
        if kind == "error":
            return Outcome(case, "agrees", detail="both refuse", field=bf)
        return Outcome(case, "answered", field=bf, expected=exp, got=obj,
                       detail=f"backstop refuses: {exp.get('field', '')} [{exp.get('rule', '')}] {exp.get('reason', '')}".strip())
    if kind == "error":
        return Outcome(case, "refused", expected=None, got=obj, detail=json.dumps(obj)[:300])
    diffs, extra = compare(exp, obj, rel_tol)
    if not diffs:
        return Outcome(case, "agrees", extra=extra)
    d = diffs[0]
    return Outcome(case, "differs", field=d.name, path=d.path, expected=d.expected, got=d.got, diffs=diffs, extra=extra)


# ================================================================ hunting and shrinking

_SIZE_KEYS = {"size", "contracts"}
_MONEY_KEYS = {"margin", "fund_available", "amount", "balance", "collateral", "settled", "uncovered"}
_SKIP_KEYS = {"operation", "profile", "instrument", "side", "margin_mode", "account", "time_ms", "now_ms", "start_ms",
              "type", "fund", "symbol", "marginMode", "name", "start", "time", "id"}


@dataclass
class Leaf:
    path: tuple[Any, ...]
    kind: str                 # size | price | money | number
    value: Fraction
    style: str                # str | int | amount (a "<decimal> <CODE>" string)
    code: str = ""
    instrument: str = ""


def _leaves(req: Any) -> list[Leaf]:
    out: list[Leaf] = []

    def visit(x: Any, path: tuple[Any, ...], key: str, inst: str, parent: str) -> None:
        if isinstance(x, dict):
            here = x.get("instrument") if isinstance(x.get("instrument"), str) else inst
            for k, v in x.items():
                if k in _SKIP_KEYS or k == "scenario":
                    continue
                visit(v, path + (k,), k, k if key == "mark_prices" else here, key)  # type: ignore[arg-type]  # here: a str (isinstance above) or inst
            return
        if isinstance(x, list):
            for n, v in enumerate(x):
                visit(v, path + (n,), key, inst, parent)
            return
        if isinstance(x, bool) or x is None or isinstance(x, JsonFloat):
            return
        style, code, val = "", "", None
        if isinstance(x, int):
            style, val = "int", Fraction(x)
        elif isinstance(x, str):
            parts = x.split()
            if len(parts) == 2 and parts[1].isalnum() and parts[1].isupper():
                style, code, val = "amount", parts[1], _num(parts[0])
            else:
                style, val = "str", _num(x)
        if val is None or val <= 0:
            return
        if parent == "mark_prices" or "price" in key:
            kind = "price"
        elif key in _SIZE_KEYS:
            kind = "size"
        elif key in _MONEY_KEYS or parent == "balances":
            kind = "money"
        else:
            kind = "number"
        out.append(Leaf(path, kind, val, style, code, inst))

    if isinstance(req, dict):
        top_inst = req.get("instrument") if isinstance(req.get("instrument"), str) else ""
        visit(req, (), "", top_inst, "")  # type: ignore[arg-type]  # top_inst: a str (isinstance above) or ""
    return out


def _get(req: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        req = req[p]
    return req


def _set(req: Any, path: tuple[Any, ...], value: Any) -> Any:
    new = json.loads(json.dumps(_plain(req)))
    cur = new
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return new


def _fmt(x: Fraction) -> str:
    from backstop.jsonio import dump_number
    text: str = dump_number(x)
    return text


class Grids:
    """Lot, tick and currency grids of a request's profile (loaded in-process)."""

    def __init__(self) -> None:
        self.cache: dict[Any, Any] = {}

    def profile(self, req: Any) -> Any:
        from backstop.inputs import request_profile
        raw = req.get("profile") if isinstance(req, dict) else None
        key = raw if isinstance(raw, (str, type(None))) else json.dumps(raw, sort_keys=True)
        if key not in self.cache:
            try:
                self.cache[key] = request_profile(raw)
            except BackstopError:
                self.cache[key] = None
        return self.cache[key]

    def step(self, req: Any, leaf: Leaf) -> Fraction:
        prof = self.profile(req)
        inst = prof.instruments.get(leaf.instrument) if prof is not None else None
        if leaf.kind == "size" and inst is not None:
            return Fraction(inst.lot_size)
        if leaf.kind == "price" and inst is not None:
            return Fraction(inst.tick_size)
        if leaf.kind == "money":
            if leaf.style == "amount" and prof is not None and leaf.code in prof.currencies:
                return Fraction(1, prof.currencies[leaf.code].scale)
            return Fraction(1)
        return Fraction(1, 100) if leaf.value.denominator != 1 else Fraction(1)

    def render(self, leaf: Leaf, x: Fraction) -> Any:
        if leaf.style == "int":
            return int(x)
        if leaf.style == "amount":
            return f"{_fmt(x)} {leaf.code}"
        return _fmt(x)


def _snap(x: Fraction, step: Fraction) -> Fraction:
    n = math.floor(x / step)
    return max(step, n * step)


def _boundaries(req: Any, leaf: Leaf, grids: Grids) -> list[Fraction]:
    """Region-boundary values for one number of a request: a notional (or a size) at a tier cap,
    one grid step either side; a margin that puts the isolated liquidation price at a cap."""
    prof = grids.profile(req)
    if prof is None or leaf.instrument not in prof.instruments:
        return []
    inst = prof.instruments[leaf.instrument]
    table = inst.tier_table
    caps = [Fraction(t.cap) for t in table.tiers if t.cap is not None] if hasattr(table, "tiers") else []
    step = grids.step(req, leaf)
    out: list[Fraction] = []
    pos = _get(req, leaf.path[:-1]) if len(leaf.path) >= 2 else {}
    size = _num(pos.get("size")) if isinstance(pos, dict) and not isinstance(pos, list) else None
    basis = getattr(table, "basis", "size")
    basis = getattr(basis, "value", basis)
    cv = Fraction(inst.contract_value)
    linear = getattr(getattr(inst, "kind", ""), "value", getattr(inst, "kind", "")) == "linear"
    for cap in caps:
        if leaf.kind == "size" and basis == "size":
            out += [cap, cap + step]
        elif leaf.kind == "size" and basis == "notional" and linear:
            price = _num(pos.get("entry_price")) if isinstance(pos, dict) else None
            if price:
                c = _snap(cap / (price * cv), step)
                out += [c, c + step]
        elif leaf.kind == "price" and basis == "notional" and linear:
            sz = size
            if sz is None and isinstance(req, dict):  # a mark price: the first position on that instrument
                sz = next((_num(p.get("size")) for p in req.get("positions", []) if isinstance(p, dict)
                           and p.get("instrument") == leaf.instrument), None)
            if sz:
                c = _snap(cap / (sz * cv), step)
                out += [c, c + step]
    if leaf.kind == "money" and leaf.path[-1] == "margin" and linear and size and isinstance(pos, dict) and basis == "notional":
        try:
            s = 1 if pos.get("side") == "long" else -1
            e = _num(pos.get("entry_price"))
            scale = inst.settle_currency.scale
            k = size * cv * scale
            fee = Fraction(prof.margin.close_fee_rate) if hasattr(prof.margin, "close_fee_rate") else Fraction(0)
            for t in table.tiers:
                if t.cap is None:
                    continue
                lp = Fraction(t.cap) / (size * cv)
                m = lp * k * (Fraction(t.mmr) + fee - s) + s * k * e - Fraction(t.mm_deduction)
                if m > 0:
                    units = math.floor(m)
                    out += [Fraction(units, scale) if leaf.style == "amount" else Fraction(units)]
        except (AttributeError, TypeError, ZeroDivisionError):
            pass
    return [x for x in out if x > 0]


def variants(req: Any, n: int, rng: random.Random, grids: Grids) -> Iterator[Any]:
    """``n`` variants of a request: boundary values first, then random perturbations on the grids."""
    leaves = _leaves(req)
    if not leaves:
        return
    made = 0
    seen = {json.dumps(_plain(req), sort_keys=True)}

    def fresh(v: Any) -> bool:
        key = json.dumps(v, sort_keys=True)
        if key in seen:
            return False
        seen.add(key)
        return True

    bounds = [(leaf, x) for leaf in leaves for x in _boundaries(req, leaf, grids)]
    rng.shuffle(bounds)
    for leaf, x in bounds[: max(1, n // 2)]:
        v = _set(req, leaf.path, grids.render(leaf, x))
        if fresh(v):
            made += 1
            yield v
            if made >= n:
                return
    tries = 0
    while made < n and tries < 20 * n:
        tries += 1
        v = json.loads(json.dumps(_plain(req)))
        for leaf in rng.sample(leaves, rng.randint(1, min(3, len(leaves)))):
            step = grids.step(req, leaf)
            r = rng.random()
            if r < 0.4:
                x = leaf.value * Fraction(math.exp(rng.uniform(-1.4, 1.4))).limit_denominator(1000)
            elif r < 0.8:
                x = leaf.value + step * rng.choice([-3, -2, -1, 1, 2, 3])
            else:
                x = leaf.value * rng.choice([Fraction(1, 10), Fraction(1, 2), 2, 10])  # type: ignore[operator]  # the checker joins Fraction and int as _RealLike
            x = _snap(x, step)
            if leaf.style == "int":
                x = Fraction(max(1, math.floor(x)))
            v = _set(v, leaf.path, grids.render(leaf, x))
        if fresh(v):
            made += 1
            yield v


def _digits(x: Fraction) -> tuple[int, int]:
    """(digits written, significant digits) of an exact number in decimal (``"0.05"``: 3 and 1); a
    number whose decimal does not end counts as big."""
    d = x.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return 40, 40
    places = max(twos, fives)
    n = abs(x.numerator) * (10 ** places) // x.denominator
    whole = len(str(n // 10 ** places)) if places else len(str(n))
    return whole + places, len(str(n).strip("0") or "0")


def size_of(req: Any) -> tuple[Any, ...]:
    """How big a request is, to shrink it (compared in this order): list elements (positions, book
    levels, events, marks, balances), digits written, significant digits, the sum of the numbers."""
    elems = 0
    if isinstance(req, dict):
        for k in ("positions", "book", "events", "history"):
            if isinstance(req.get(k), list):
                elems += len(req[k])
        for k in ("mark_prices", "balances"):
            if isinstance(req.get(k), dict):
                elems += len(req[k])
    tot = sig = 0
    total = Fraction(0)
    for leaf in _leaves(req):
        a, b = _digits(leaf.value)
        tot, sig, total = tot + a, sig + b, total + leaf.value
    return elems, tot, sig, total


def _simpler(leaf: Leaf, step: Fraction) -> list[Fraction]:
    v = leaf.value
    c: list[Fraction] = [step, Fraction(1)]
    k = 1
    while k <= v * 10 and len(c) < 40:
        c.append(Fraction(k))
        k *= 10
    for sig in (1, 2, 3):
        if v >= 1:
            mag = 10 ** max(0, len(str(int(v))) - sig)
            c += [Fraction(int(v) // mag * mag), Fraction((int(v) // mag + 1) * mag)]
    c += [Fraction(math.floor(v)), v - 1, v - step, v / 2, v / 10]
    out = []
    for x in c:
        x = _snap(x, step) if x >= step else step
        if leaf.style == "int":
            x = Fraction(max(1, math.floor(x)))
        if x != v and x > 0 and x not in out:
            out.append(x)
    return out


def shrink(req: Any, still: Callable[[Any], bool], grids: Grids, budget: int = 300) -> tuple[Any, int]:
    """Greedy shrinking: drop list elements (and then unused marks and balances), then replace
    numbers by smaller, rounder ones on their grids, while ``still(request)`` holds."""
    cur = json.loads(json.dumps(_plain(req)))
    tried = 0
    improved = True
    while improved and tried < budget:
        improved = False
        cands: list[Any] = []
        for k in ("positions", "book", "events", "history"):
            if isinstance(cur.get(k), list) and len(cur[k]) > 1:
                for n in range(len(cur[k])):
                    c = json.loads(json.dumps(cur))
                    del c[k][n]
                    cands.append(c)
        for k in ("mark_prices", "balances"):
            if isinstance(cur.get(k), dict) and len(cur[k]) > 1:
                for key in list(cur[k]):
                    c = json.loads(json.dumps(cur))
                    del c[k][key]
                    cands.append(c)
        for pos in range(len(cur.get("positions", []) or [])):
            p = cur["positions"][pos]
            if isinstance(p, dict) and "margin_mode" in p:
                c = json.loads(json.dumps(cur))
                del c["positions"][pos]["margin_mode"]
                cands.append(c)
        for leaf in _leaves(cur):
            step = grids.step(cur, leaf)
            cands += [_set(cur, leaf.path, grids.render(leaf, x)) for x in _simpler(leaf, step)]
        here = size_of(cur)
        for c in cands:
            if size_of(c) >= here:
                continue
            if tried >= budget:
                break
            tried += 1
            if still(c):
                cur, improved = c, True
                break
    return cur, tried


# ================================================================ the run

@dataclass
class Report:
    command: str
    source: str
    rel_tol: float
    timeout: float
    seed: int
    hunt: int
    outcomes: list[Outcome]
    hunted: list[Outcome]
    causes: list[dict[str, Any]]
    stderr: str
    exit_code: int
    message: str
    seconds: float
    starts: int
    calls: int

    def counts(self, outs: list[Outcome] | None = None) -> dict[str, int]:
        c = {k: 0 for k in CLASSES}
        for o in self.outcomes if outs is None else outs:
            c[o.klass] += 1
        return c


def run_conform(command: str, vectors: str | None = None, rel_tol: float = 0.0, timeout: float = 10.0,
                hunt: int = 40, seed: int = 20261127, shrink_budget: int = 300, cwd: str | None = None) -> Report:
    t0 = time.monotonic()
    source = f"vectors {vectors}" if vectors else "the seed set (no --vectors)"
    try:
        cases = load_vectors(vectors) if vectors else seed_cases()
    except VectorError as e:
        return Report(command, source, rel_tol, timeout, seed, hunt, [], [], [], "", EXIT_CANNOT_RUN,
                      f"cannot read the vectors: {e}", time.monotonic() - t0, 0, 0)
    try:
        impl = Implementation(command, timeout, cwd)
    except (CannotStart, ValueError) as e:
        return Report(command, source, rel_tol, timeout, seed, hunt, [], [], [], "", EXIT_CANNOT_RUN,
                      f"cannot start the implementation: {e}", time.monotonic() - t0, 0, 0)
    outcomes: list[Outcome] = []
    hunted: list[Outcome] = []
    causes: list[dict[str, Any]] = []
    fatal = ""
    failures = 0
    try:
        for case in cases:
            if failures >= MAX_CONSECUTIVE_FAILURES:
                outcomes.append(Outcome(case, "error", detail="not run: the implementation failed "
                                        f"{MAX_CONSECUTIVE_FAILURES} times in a row"))
                continue
            o = classify(case, impl.ask(case.request), rel_tol)
            failures = failures + 1 if o.klass == "error" else 0
            outcomes.append(o)
        if failures < MAX_CONSECUTIVE_FAILURES:
            hunted, causes = _hunt_and_shrink(impl, outcomes, rel_tol, hunt, seed, shrink_budget)
    except CannotStart as e:
        fatal = f"cannot start the implementation: {e}"
    finally:
        impl.stop()
    report = Report(command, source, rel_tol, timeout, seed, hunt, outcomes, hunted, causes, impl.stderr, 0, "",
                    time.monotonic() - t0, impl.starts, impl.calls)
    c = report.counts()
    ch = report.counts(hunted)
    compared = c["agrees"] + c["differs"] + c["refused"] + c["answered"]
    if fatal:
        report.exit_code, report.message = EXIT_CANNOT_RUN, fatal
    elif impl.extra_lines:
        report.exit_code = EXIT_CANNOT_RUN
        report.message = (f"the implementation wrote {impl.extra_lines} line(s) more than it was asked for: "
                          "its answers are out of step with the requests")
    elif c["error"] or ch["error"]:
        report.exit_code = EXIT_CANNOT_RUN
        report.message = f"could not run the implementation on {c['error'] + ch['error']} request(s)"
    elif compared == 0:
        report.exit_code, report.message = EXIT_CANNOT_RUN, "no case could be compared (every case unsupported)"
    elif causes:
        report.exit_code = EXIT_DISAGREE
        report.message = f"{len(causes)} cause(s) of disagreement"
    else:
        report.exit_code, report.message = EXIT_AGREE, "no disagreement"
    return report


def _hunt_and_shrink(impl: Implementation, outcomes: list[Outcome], rel_tol: float, hunt: int, seed: int,
                     budget: int) -> tuple[list[Outcome], list[dict[str, Any]]]:
    rng = random.Random(seed)
    grids = Grids()
    cache: dict[Any, Any] = {}
    first = [o for o in outcomes if o.klass in DISAGREE]
    hunted: list[Outcome] = []

    def probe(req: Any, origin: str) -> Outcome:
        case = Case(f"{origin}", req, backstop_answer(exact_loads(json.dumps(req)), cache), _op(req), origin=origin)
        return classify(case, impl.ask(req), rel_tol)

    total = hunt * HUNT_TOTAL_FACTOR
    for o in first:
        if hunt <= 0 or len(hunted) >= total:
            break
        for n, v in enumerate(variants(o.case.request, min(hunt, total - len(hunted)), rng, grids)):
            h = probe(v, "hunt")
            h.case.id = f"hunt {o.case.id} #{n}"
            hunted.append(h)
            if h.klass == "error":
                return hunted, []
    groups: dict[str, list[Outcome]] = {}
    for o in first + [h for h in hunted if h.klass in DISAGREE]:
        groups.setdefault(o.cause, []).append(o)
    causes = []
    for cause, members in groups.items():
        start = min(members, key=lambda m: size_of(m.case.request))

        def still(req: Any, cause: str = cause) -> bool:
            return probe(req, "shrink").cause == cause

        small, tried = shrink(start.case.request, still, grids, budget)
        final = probe(small, "shrink")
        final.case.id = "shrunk"
        causes.append({"cause": cause, "operation": start.case.operation, "class": start.klass, "field": start.field,
                       "count": len(members), "in_cases": sum(1 for m in members if m.case.origin != "hunt"),
                       "first": first_of(members), "shrunk_from": start.case.id,
                       "shrunk_from_size": _size_json(start.case.request),
                       "shrunk": small, "shrunk_size": _size_json(small), "shrink_probes": tried,
                       "shrunk_outcome": final})
    causes.sort(key=lambda c: (-c["in_cases"], -c["count"], c["cause"]))
    return hunted, causes


def _size_json(req: Any) -> list[Any]:
    e, t, s, total = size_of(req)
    return [e, t, s, _fmt(total)]


def _size_words(z: list[Any]) -> str:
    return f"{z[0]} list elements and {z[1]} digits"


def first_of(members: list[Outcome]) -> Outcome:
    return members[0]


# ================================================================ reports

def _val(x: Any) -> str:
    if isinstance(x, (dict, list)):
        return json.dumps(_plain(x), ensure_ascii=False)
    return json.dumps(x) if not isinstance(x, str) else x


def _outcome_json(o: Outcome) -> dict[str, Any]:
    d: dict[str, Any] = {"id": o.case.id, "operation": o.case.operation, "class": o.klass,
                         "rules": list(o.case.rules), "region": o.case.region}
    if o.klass == "differs":
        d.update({"field": o.field, "path": o.path, "backstop": _plain(o.expected), "implementation": _plain(o.got),
                  "differences": [{"path": x.path, "backstop": _plain(x.expected), "implementation": _plain(x.got)}
                                  for x in o.diffs[:20]]})
    elif o.field:
        d["field"] = o.field
    if o.detail:
        d["detail"] = o.detail
    if o.extra:
        d["fields_backstop_does_not_have"] = o.extra[:20]
    return d


def report_json(r: Report) -> dict[str, Any]:
    from backstop import __version__
    return {"format": "backstop-conform/1", "backstop_version": __version__, "implementation": r.command,
            "source": r.source, "rel_tol": r.rel_tol, "timeout_seconds": r.timeout, "seed": r.seed, "hunt": r.hunt,
            "exit_code": r.exit_code, "verdict": r.message, "counts": r.counts(), "hunted": len(r.hunted),
            "hunted_counts": r.counts(r.hunted), "process_starts": r.starts, "requests": r.calls,
            "causes": [{"cause": c["cause"], "operation": c["operation"], "class": c["class"], "field": c["field"],
                        "disagreements": c["count"], "in_cases": c["in_cases"], "first": _outcome_json(c["first"]),
                        "shrunk_from": c["shrunk_from"], "shrunk_from_size": c["shrunk_from_size"],
                        "shrunk_request": c["shrunk"], "shrunk_size": c["shrunk_size"],
                        "shrink_probes": c["shrink_probes"], "shrunk_outcome": _outcome_json(c["shrunk_outcome"])}
                       for c in r.causes],
            "cases": [_outcome_json(o) for o in r.outcomes],
            "stderr": r.stderr}


def _counts_line(c: dict[str, int]) -> str:
    return ", ".join(f"{CLASS_WORDS[k]} {c[k]}" for k in CLASSES)


def _shrunk_words(c: dict[str, Any]) -> str:
    o: Outcome = c["shrunk_outcome"]
    if o.klass == "differs":
        return f"at {o.path}: backstop {_val(o.expected)}, implementation {_val(o.got)}"
    return o.detail


def report_markdown(r: Report) -> str:
    L = [f"# backstop conform: {'PASSED' if r.exit_code == 0 else 'FAILED'}", "",
         f"- implementation: `{r.command}`", f"- cases: {r.source}", f"- relative tolerance: {r.rel_tol:g}",
         f"- timeout per request: {r.timeout:g} s; seed {r.seed}; hunt {r.hunt} variants per disagreement",
         f"- verdict: {r.message} (exit {r.exit_code})", "",
         "| class | cases |", "|---|---|"]
    L += [f"| {CLASS_WORDS[k]} | {v} |" for k, v in r.counts().items()]
    L += ["", f"Hunting: {len(r.hunted)} requests around the disagreements ({_counts_line(r.counts(r.hunted))}).", ""]
    L += ["## Disagreements by cause", ""]
    if not r.causes:
        L += ["None.", ""]
    for c in r.causes:
        f: Outcome = c["first"]
        L += [f"### {c['cause']}", "",
              f"{c['count']} disagreement(s), {c['in_cases']} of them among the cases; first: `{f.case.id}`"
              + (f" at `{f.path}`: backstop `{_val(f.expected)}`, implementation `{_val(f.got)}`" if f.klass == "differs"
                 else f" ({f.detail})"), "",
              f"Shrunk (from `{c['shrunk_from']}`, {_size_words(c['shrunk_from_size'])} to {_size_words(c['shrunk_size'])} "
              f"in {c['shrink_probes']} probes): {_shrunk_words(c)}", "",
              "```json", json.dumps(c["shrunk"], ensure_ascii=False), "```", ""]
    L += ["## Cases", "", "| case | operation | class | detail |", "|---|---|---|---|"]
    for o in r.outcomes:
        det = f"{o.path}: backstop {_val(o.expected)}, implementation {_val(o.got)}" if o.klass == "differs" else o.detail
        L.append(f"| `{o.case.id}` | {o.case.operation} | {CLASS_WORDS[o.klass]} | {det.replace('|', '/')} |")
    L += ["", "## The implementation's stderr", "", "```", r.stderr.rstrip() or "(empty)", "```", ""]
    return "\n".join(L)


def report_html(r: Report) -> str:
    e = _html.escape
    rows = "".join(f"<tr><td>{e(CLASS_WORDS[k])}</td><td>{v}</td></tr>" for k, v in r.counts().items())
    cause_html = "".join(
        f"<h3>{e(c['cause'])}</h3><p>{c['count']} disagreement(s), {c['in_cases']} among the cases; shrunk from "
        f"<code>{e(c['shrunk_from'])}</code> in {c['shrink_probes']} probes: {e(_shrunk_words(c))}</p>"
        f"<pre>{e(json.dumps(c['shrunk'], ensure_ascii=False, indent=1))}</pre>" for c in r.causes) or "<p>None.</p>"
    case_rows = "".join(
        f"<tr class='{o.klass}'><td><code>{e(o.case.id)}</code></td><td>{e(o.case.operation)}</td>"
        f"<td>{e(CLASS_WORDS[o.klass])}</td><td>{e(o.path + ': backstop ' + _val(o.expected) + ', implementation ' + _val(o.got) if o.klass == 'differs' else o.detail)}</td></tr>"
        for o in r.outcomes)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>backstop conform</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}.differs,.refused,.answered{background:#fdd}"
            ".error{background:#fec}.unsupported{color:#777}pre{background:#f6f6f6;padding:.5em;overflow:auto}"
            f"</style></head><body><h1>backstop conform: {'PASSED' if r.exit_code == 0 else 'FAILED'}</h1>"
            f"<p>implementation <code>{e(r.command)}</code>; cases: {e(r.source)}; relative tolerance {r.rel_tol:g}; "
            f"verdict: {e(r.message)} (exit {r.exit_code})</p><table><tr><th>class</th><th>cases</th></tr>{rows}</table>"
            f"<p>Hunting: {len(r.hunted)} requests ({e(_counts_line(r.counts(r.hunted)))}).</p>"
            f"<h2>Disagreements by cause</h2>{cause_html}<h2>Cases</h2><table><tr><th>case</th><th>operation</th>"
            f"<th>class</th><th>detail</th></tr>{case_rows}</table><h2>The implementation's stderr</h2>"
            f"<pre>{e(r.stderr) or '(empty)'}</pre></body></html>\n")


def report_junit(r: Report) -> str:
    suite = ET.Element("testsuite", name="backstop.conform", tests="0", failures="0", errors="0", skipped="0",
                       time=f"{r.seconds:.3f}")
    props = ET.SubElement(suite, "properties")
    for k, v in (("implementation", r.command), ("source", r.source), ("rel_tol", f"{r.rel_tol:g}"),
                 ("seed", str(r.seed)), ("exit_code", str(r.exit_code))):
        ET.SubElement(props, "property", name=k, value=v)
    n = fails = errs = skips = 0
    for o in r.outcomes:
        n += 1
        tc = ET.SubElement(suite, "testcase", classname=f"backstop.conform.{o.case.operation}", name=o.case.id)
        if o.klass in DISAGREE:
            fails += 1
            msg = (f"{o.path}: backstop {_val(o.expected)}, implementation {_val(o.got)}" if o.klass == "differs"
                   else f"{CLASS_WORDS[o.klass]}: {o.detail}")
            ET.SubElement(tc, "failure", type=o.klass, message=msg[:500]).text = msg
        elif o.klass == "error":
            errs += 1
            ET.SubElement(tc, "error", type="could not run", message=o.detail[:500]).text = o.detail
        elif o.klass == "unsupported":
            skips += 1
            ET.SubElement(tc, "skipped", message=o.detail[:500])
    for c in r.causes:
        n += 1
        fails += 1
        tc = ET.SubElement(suite, "testcase", classname="backstop.conform.cause", name=c["cause"])
        text = f"{_shrunk_words(c)}\nshrunk request: {json.dumps(c['shrunk'], ensure_ascii=False)}"
        ET.SubElement(tc, "failure", type=c["class"], message=_shrunk_words(c)[:500]).text = text
    if r.stderr:
        ET.SubElement(suite, "system-err").text = r.stderr
    suite.set("tests", str(n))
    suite.set("failures", str(fails))
    suite.set("errors", str(errs))
    suite.set("skipped", str(skips))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_reports(r: Report, prefix: str | Path) -> list[Path]:
    p = Path(prefix)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext, text in ((".md", report_markdown(r)), (".html", report_html(r)),
                      (".json", json.dumps(report_json(r), indent=2, ensure_ascii=False) + "\n"),
                      (".xml", report_junit(r))):
        f = p.with_name(p.name + ext)
        f.write_text(text, encoding="utf-8")
        out.append(f)
    return out


def print_summary(r: Report, paths: list[Path], out: Any) -> None:
    print(f"conform: {r.command} against {r.source}", file=out)
    if r.outcomes:
        print(f"  {len(r.outcomes)} cases: {_counts_line(r.counts())}", file=out)
    if r.hunted:
        dis = sum(1 for h in r.hunted if h.klass in DISAGREE)
        print(f"  hunted {len(r.hunted)} requests around the disagreements: {dis} disagree", file=out)
    for c in r.causes:
        print(f"  cause {c['cause']}: {c['count']} disagreement(s)", file=out)
        print(f"    shrunk: {json.dumps(c['shrunk'], ensure_ascii=False)}", file=out)
        print(f"    {_shrunk_words(c)}", file=out)
    for o in r.outcomes:
        if o.klass == "error":
            print(f"  could not run {o.case.id}: {o.detail}", file=out)
            break
    if paths:
        print(f"  wrote {', '.join(str(p) for p in paths)}", file=out)
    print(f"conform {'PASSED' if r.exit_code == 0 else 'FAILED'}: {r.message} (exit {r.exit_code})", file=out)


# ================================================================ CLI

def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``backstop conform`` to an argparse subparsers object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "conform", help="check a foreign implementation against backstop (vectors, hunting, shrinking)",
        description="Run a foreign implementation (one JSON request per line in, one JSON answer per line out) on "
                    "the vectors (or the seed set), compare with backstop, hunt around every disagreement and shrink "
                    "it. Exit 0 agree, 1 disagree, 2 could not run.")
    p.add_argument("--impl", required=True, metavar="'CMD ARGS'", help="the implementation's command (no shell)")
    p.add_argument("--vectors", metavar="DIR", help="vectors directory (DIR/v1/...); default: the built-in seed set")
    p.add_argument("--rel-tol", type=float, default=0.0, metavar="X",
                   help="relative tolerance for numbers (default 0: exact)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per request (default 10)")
    p.add_argument("--report", default="build/conform/report", metavar="PREFIX",
                   help="write PREFIX.md, .html, .json and .xml (JUnit) (default build/conform/report)")
    p.add_argument("--hunt", type=int, default=40, metavar="N", help="variants tried around each disagreement (default 40)")
    p.add_argument("--seed", type=int, default=20261127, metavar="N", help="random seed of the hunt (default 20261127)")
    p.set_defaults(func=cmd_conform)
    return p


def cmd_conform(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    if not (args.rel_tol >= 0 and math.isfinite(args.rel_tol)) or not args.timeout > 0 or args.hunt < 0:
        print("error: --rel-tol must be >= 0, --timeout > 0, --hunt >= 0", file=sys.stderr)
        return EXIT_CANNOT_RUN
    r = run_conform(args.impl, args.vectors, args.rel_tol, args.timeout, args.hunt, args.seed)
    try:
        paths = write_reports(r, args.report)
    except OSError as e:
        print(f"error: {args.report}: cannot write the report: {e.strerror or e}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    print_summary(r, paths, out)
    return r.exit_code
