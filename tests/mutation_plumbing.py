"""Planted bugs in the plumbing: AST mutants of ``reference/step.py`` and ``reference/fundbook.py``,
screened concretely and then judged by the whole-loop Z3 obligations (OBL-INV-024, OBL-INV-025a-e).

The rule modules have their own kill tables (tests/mutation.py); the code here mutates the code
*between* the rules -- what is credited to whom, what is booked to the fund, what stays open, in
which order -- which only an obligation that runs :func:`~backstop.reference.step.process_event`
itself can see.

Operators (one change per mutant):

* ``cmp``   -- a comparison's strictness flipped (``<`` <-> ``<=``, ``>`` <-> ``>=``) or an
  (in)equality / identity / membership negated (``==`` <-> ``!=``, ``is`` <-> ``is not``,
  ``in`` <-> ``not in``);
* ``arith`` -- ``+`` <-> ``-`` on numbers (a ``+`` that concatenates tuples or lists is not
  mutated: it would raise TypeError, a crash, not a planted bug);
* ``not``   -- a ``not`` dropped;
* ``bool``  -- ``and`` <-> ``or``;
* ``cond``  -- ``if x`` -> ``if not x`` (statements, conditional expressions and comprehension
  filters; not when ``x`` is an (in)equality, whose negation is already a ``cmp`` mutant);
* ``drop``  -- one simple statement of the body replaced by ``pass``: an assignment that rebinds a
  name (or stores into a subscript), an augmented assignment, an expression statement,
  ``continue``/``break``, a ``return`` nested in a branch or loop (an early exit).  The first
  binding of a local is not dropped (the next use raises NameError: a crash, not a bug);
* ``swap``  -- two adjacent positional arguments of one call exchanged, when their texts differ.

Each mutant is compiled from the function's own source in its module's namespace and
monkeypatched into the module for the duration of one run (as ``_planted`` was).  The oracle is
kept pristine: the claims of proofs/loop.py and proofs/loop_wide.py read the fund through
``fundbook`` views and revalue through ``step.process_mark``; while a mutant is planted those
modules see untouched copies (taken at import), so a mutant of a view cannot change the claim that
judges it.

Judging a mutant (:func:`judge`):

1. *screen* -- run every scenario's ``run`` + ``claim(symbolic=False)`` on a fixed set of concrete
   inputs: one witness of every path of the *original* plumbing (from a full path exploration of
   each obligation's domain, cached under /tmp) plus a few hand-picked inputs per row.  The screen
   also counts the calls of the mutated function;
2. *unreached* -- a function the original never calls on any path of any obligation's domain is
   not exercised by the obligations at all: its mutants are reported as holes of the domain
   (no Z3 run can kill them), not as equivalents;
3. *prove* -- first on the *path* of the input that broke a claim in the screen (and of up to
   three inputs per obligation whose states differed): the obligation's premises and its claim on
   the terms of that path, which is exactly the formula the obligation's body returns when a
   path's witness breaks the claim (``prove_by_paths``' early exit) -- seconds, where the whole
   obligation must first explore every path of the row under the mutant (minutes; some mutants
   multiply the paths until the obligation's limit: ``unknown``).  Killed ``(path)``: a
   counterexample of that formula inside the obligation's premises whose replay through the
   concrete (mutated) reference is ``confirmed``.  Then (``full``) the whole obligations,
   OBL-INV-024 then OBL-INV-025a-e, with the screen's row first, a 60 s limit and then their
   own.  A mutant the screen sees crash is an *error* (reported apart, never a kill);
4. *equivalence* -- a mutant that every obligation proves is checked against the original by a
   product exploration: both run on the same shadowed inputs, every path of the pair is explored,
   and the solver shows every number of every state after every event equal on each path
   (fund records excepted: records are not money).  Equivalent, or a *survivor* (a hole).
"""

from __future__ import annotations

import __future__
import ast
import copy
import dataclasses
import hashlib
import inspect
import json
import sys
import textwrap
import time
import traceback
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import z3

from backstop.proofs import loop as PL
from backstop.proofs import loop_wide as PW
from backstop.proofs.concolic import HarnessError, concolic, explore, leaves
from backstop.proofs.kernel import SEED, Result, prove
from backstop.proofs.registry import Context, Instance, instances
from backstop.reference import fundbook as FB
from backstop.reference import step as S
from backstop.reference.profile import Profile, load_profile, load_profile_text

MODULES = {"step": S, "fundbook": FB}

# Profile variants a mutant may be judged on: code that runs only under an option no shipped profile
# sets (the overlays of tests/test_proofs_conventions.py, whose OBL-INV-024/025 are proved there).
VARIANTS: dict[str, str] = {
    "okx+capped": ('extends = "okx"\nname = "okx+capped"\n[liquidation]\n'
                   'fund_share = "capped_by_fee_rate"\nfund_share_rate = "0.005"\n'),
    "okx+bpfee": 'extends = "okx"\nname = "okx+bpfee"\n[margin]\nbankruptcy_includes_close_fee = true\n',
    # notional tiers with partial liquidation (tests/test_proofs_partial_variants.py): where a LIQ-005 step can
    # close a whole position (OBL-INV-025j)
    "binance+partial": 'extends = "binance"\nname = "binance+partial"\n[liquidation]\npartial = "two_tiers"\n',
}

# a variant judges only with the obligations proved on it (okx+bpfee: OBL-INV-025a-e; its OBL-INV-024
# was not proved when the table was run, and a claim the original does not keep cannot judge a mutant)
VARIANT_JUDGES: dict[str, tuple[str, ...]] = {
    "binance+partial": ("OBL-INV-025j",),
    "okx+bpfee": ("OBL-INV-025a", "OBL-INV-025b", "OBL-INV-025c", "OBL-INV-025d", "OBL-INV-025e", "OBL-INV-025f",
                  "OBL-INV-025g", "OBL-INV-025h", "OBL-INV-025i"),
}


def profile_named(name: str) -> Profile:
    """A shipped profile, a TOML file, or one of :data:`VARIANTS` by its name."""
    if name in VARIANTS:
        return load_profile_text(VARIANTS[name], name)
    return load_profile(name)

# ---------------------------------------------------------------- what is mutated, what is not (and why)

TARGETS: dict[str, tuple[str, ...]] = {
    "step": ("process_event", "process_mark_event", "process_book_event", "process_settlement", "process_mark",
             "process_book", "_with_account", "_set_balance", "_replace_position", "_add_dust", "_available",
             "_fund_result", "_consume", "_engine_close", "_engine_walk", "_pay_close_fee", "_hand_over_partial",
             "_hand_over_full", "_liquidate_isolated", "process_isolated_positions", "_cross_group",
             "_liquidate_cross", "process_cross_accounts", "_history", "_deleverage", "_work_remainder",
             "process_remainders", "process_recheck"),
    "fundbook": ("book_entry", "_value", "_fields", "_apply", "_point", "_settlement_record", "_result",
                 "apply_liquidation_result", "apply_adl_result", "apply_fee", "_platform", "top_up", "withdraw",
                 "settle", "settled_balance", "pending_balance", "available_balance", "withdrawable",
                 "balance_history"),
}

VALIDATION = ("refused inputs are the unit tests' (tests/unit/test_step.py, test_fundbook): a Z3 obligation "
              "ranges over valid inputs only and cannot see a check that is dropped or inverted")
SKIPPED: dict[str, dict[str, str]] = {
    "step": {
        "check_book": VALIDATION, "check_account": VALIDATION, "_levels": VALIDATION, "_time": VALIDATION,
        "_instrument": VALIDATION, "_check_event": VALIDATION,
        "check_invariants": "a concrete checker used by tests and the soak, not part of the transition",
        "state_json": "output formatting, not part of the transition",
        "initial_state": "builds the obligations' own starting state: every claim measures changes from it, "
                         "so a mutant there moves the premise, not the transition (its checks are TRN-007's unit tests)",
        "_trigger_record": "builds the 'liquidation trigger' record only, a kind no claim reads (records are not money)",
        "_partial_record": "builds the 'partial liquidation' record only, a kind no claim reads (records are not money)",
        "_side": "the words 'long'/'short' of records only (records are not money)",
        "SimState.*": "accessors of the frozen state (mark, book, account, is_adl_active, ...): the claims read "
                      "the state through them, so a mutant there changes the oracle as well as the code",
    },
    "fundbook": {
        "_int": VALIDATION, "check_entry": VALIDATION, "_fund": VALIDATION, "_check_scope": VALIDATION,
        "_accept": VALIDATION,
        "new_state": "builds the empty funds of the starting state (as step.initial_state)",
        "FundState.*": "the book/rules properties: accessors the claims read as well",
    },
}

# ---------------------------------------------------------------- mutants

_CMP_FLIP: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                               ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
                               ast.In: ast.NotIn, ast.NotIn: ast.In}
_NEGATING = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot, ast.In, ast.NotIn)
_SEQ_NAMES = {"recs", "r", "r2", "records", "out", "points"}
_SEQ_ATTRS = {"records", "remainders", "entries", "fields", "steps"}


@dataclass(frozen=True)
class Mutant:
    module: str
    function: str
    line: int        # line of the mutated node in the module's source file
    op: str
    before: str
    after: str
    site: int        # index of the node in ast.walk order of the function
    variant: int = 0  # which mutation of that node (cmp chains, swap pairs)
    stmt_line: int = 0  # first line of the statement that holds the node (the node runs only if it runs)

    occurrence: int = 1  # among the function's mutants with the same op and texts (for :attr:`stable`)

    @property
    def key(self) -> str:
        return f"{self.module}.{self.function}:{self.line} {self.op} `{self.before}` -> `{self.after}`"

    @property
    def stable(self) -> str:
        """The key without the line number (which moves with every edit of the module)."""
        n = f" #{self.occurrence}" if self.occurrence > 1 else ""
        return f"{self.module}.{self.function} {self.op} `{self.before}` -> `{self.after}`{n}"


def _source(module: str, function: str) -> tuple[ast.FunctionDef, int]:
    fn = getattr(MODULES[module], function)
    lines, start = inspect.getsourcelines(fn)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    (fdef,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    return fdef, start - 1


def _is_seq(n: ast.AST) -> bool:
    if isinstance(n, (ast.Tuple, ast.List, ast.ListComp, ast.JoinedStr)):
        return True
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("tuple", "list"):
        return True
    if isinstance(n, ast.Name) and n.id in _SEQ_NAMES:
        return True
    if isinstance(n, ast.Attribute) and n.attr in _SEQ_ATTRS:
        return True
    if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == "history":
        return True
    if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
        return _is_seq(n.left) or _is_seq(n.right)
    return False


# calls whose arguments are not swapped: record and error constructors, validation and look-ups
_NO_SWAP_CALLS = {"Record", "InvalidInput", "CurrencyMismatch", "_int", "_fund", "_check_scope", "isinstance", "getattr",
                  "check_entry", "_check_event", "_trigger_record", "_partial_record", "_settlement_record", "zip"}
_TAGS = {"state": "state", "acct": "state", "ledger": "state", "funds": "state", "t": "time", "time_ms": "time",
         "now_ms": "time", "since_ms": "time", "inst": "instrument", "R": "rules", "p": "profile", "profile": "profile",
         "fund": "fund", "key": "fund", "acct_id": "label", "account": "label", "code": "label", "why": "label",
         "what": "label", "rule": "label", "kind": "label", "step_name": "label", "name": "label", "instrument": "label",
         "currency": "label", "sign": "sign", "view": "view"}
_ATTR_TAGS = {"funds": "state", "ledger": "state", "time_ms": "time", "margin": "profile", "liquidation": "profile",
              "adl": "profile", "rules": "profile", "profile": "profile", "id": "label", "account": "label",
              "instrument": "label", "sign": "sign", "balance_view": "view", "book": "state"}


def _tag(n: ast.AST) -> str | None:
    """A coarse type of an argument, read off its name (None: a number or unknown)."""
    if isinstance(n, ast.Constant) and isinstance(n.value, str):
        return "label"
    if isinstance(n, ast.Name):
        return _TAGS.get(n.id)
    if isinstance(n, ast.Attribute):
        return _ATTR_TAGS.get(n.attr)
    return None


def _swappable(call: ast.Call, a: ast.AST, b: ast.AST) -> tuple[bool, str]:
    f = call.func
    callee = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    if callee in _NO_SWAP_CALLS:
        return False, "record/validation call"
    ta, tb = _tag(a), _tag(b)
    if ta != tb and (ta or tb):
        return False, "type-changing swap"
    if ta in ("label", "state", "rules", "profile", "instrument", "time"):
        return False, "type-changing swap" if ta != "label" else "label swap"
    return True, ""


def _stmt_lists(fdef: ast.FunctionDef) -> Iterator[tuple[list[ast.stmt], bool]]:
    """Every statement list of the function with whether it is the function's top-level body."""
    yield fdef.body, True
    for n in ast.walk(fdef):
        if n is fdef:
            continue
        for name in ("body", "orelse", "finalbody"):
            b = getattr(n, name, None)
            if isinstance(b, list) and b and isinstance(b[0], ast.stmt):
                yield b, False


def _bound_before(fdef: ast.FunctionDef, stmt: ast.stmt) -> set[str]:
    names = {a.arg for a in fdef.args.args + fdef.args.kwonlyargs + fdef.args.posonlyargs}
    for n in ast.walk(fdef):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.lineno < stmt.lineno:
            names.add(n.id)
        if isinstance(n, ast.For) and n.lineno < stmt.lineno:  # loop targets bound for the body
            names |= {x.id for x in ast.walk(n.target) if isinstance(x, ast.Name)}
    return names


_VALIDATORS = {"_int", "_check_scope", "check_entry", "_accept", "_fund", "_check_event"}


def _validation_only(st: ast.stmt) -> bool:
    """A statement that only checks (a call of a validation helper, or ``event = _check_event(...)``)."""
    value = st.value if isinstance(st, (ast.Expr, ast.Assign)) else None
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in _VALIDATORS
            and (isinstance(st, ast.Expr) or value.func.id == "_check_event"))


def _droppable(fdef: ast.FunctionDef, st: ast.stmt, top: bool, last: bool) -> tuple[bool, str]:
    if _validation_only(st):
        return False, "validation-only statement (refused inputs are the unit tests')"
    if isinstance(st, ast.Expr):
        if isinstance(st.value, ast.Constant) and isinstance(st.value.value, str):
            return False, "docstring"
        return True, ""
    if isinstance(st, (ast.AugAssign, ast.Continue, ast.Break)):
        return True, ""
    if isinstance(st, ast.Return):
        return (not (top and last), "the function's final return" if top and last else "")
    if isinstance(st, (ast.Assign, ast.AnnAssign)):
        targets = st.targets if isinstance(st, ast.Assign) else [st.target]
        names = {x.id for t in targets for x in ast.walk(t) if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Store)}
        new = names - _bound_before(fdef, st)
        if new:
            return False, f"first binding of {', '.join(sorted(new))}"
        return True, ""
    return False, "compound"


def _mutations(fdef: ast.FunctionDef) -> list[tuple[int, int, str, ast.AST, Callable[[ast.AST], Any]]]:
    """(site, variant, op, node, transform) for every mutation of the function; ``transform``
    returns the replacement node (or ``ast.Pass()``)."""
    nodes = list(ast.walk(fdef))
    out: list[tuple[int, int, str, ast.AST, Callable[[ast.AST], Any]]] = []
    stmt_info: dict[int, tuple[bool, bool]] = {}
    for body, top in _stmt_lists(fdef):
        for i, st in enumerate(body):
            stmt_info[id(st)] = (top, i == len(body) - 1)
    negated_tests: set[int] = set()
    for n in nodes:
        if isinstance(n, (ast.If, ast.IfExp, ast.While)):
            negated_tests.add(id(n.test))
        if isinstance(n, ast.comprehension):
            negated_tests |= {id(x) for x in n.ifs}
    for site, n in enumerate(nodes):
        if isinstance(n, ast.Compare):
            for k, o in enumerate(n.ops):
                if type(o) in _CMP_FLIP:
                    def flip(x: ast.AST, k: int = k) -> ast.AST:
                        x.ops[k] = _CMP_FLIP[type(x.ops[k])]()
                        return x
                    out.append((site, k, "cmp", n, flip))
        elif isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            if not (_is_seq(n.left) or _is_seq(n.right)):
                def arith(x: ast.AST) -> ast.AST:
                    x.op = ast.Sub() if isinstance(x.op, ast.Add) else ast.Add()
                    return x
                out.append((site, 0, "arith", n, arith))
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            out.append((site, 0, "not", n, lambda x: x.operand))
        elif isinstance(n, ast.BoolOp):
            def boolop(x: ast.AST) -> ast.AST:
                x.op = ast.Or() if isinstance(x.op, ast.And) else ast.And()
                return x
            out.append((site, 0, "bool", n, boolop))
        elif isinstance(n, ast.Call):
            args = n.args
            for k in range(len(args) - 1):
                a, b = args[k], args[k + 1]
                if isinstance(a, ast.Starred) or isinstance(b, ast.Starred) or ast.dump(a) == ast.dump(b):
                    continue
                if not _swappable(n, a, b)[0]:
                    continue
                def swap(x: ast.AST, k: int = k) -> ast.AST:
                    x.args[k], x.args[k + 1] = x.args[k + 1], x.args[k]
                    return x
                out.append((site, k, "swap", n, swap))
        if id(n) in negated_tests and not (isinstance(n, ast.Compare) and len(n.ops) == 1
                                           and isinstance(n.ops[0], _NEGATING)) \
                and not (isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not)):
            out.append((site, 1, "cond", n, lambda x: ast.UnaryOp(ast.Not(), x)))
        if isinstance(n, ast.stmt) and id(n) in stmt_info and n is not fdef:
            top, last = stmt_info[id(n)]
            ok, _ = _droppable(fdef, n, top, last)
            if ok:
                out.append((site, 2, "drop", n, lambda x: ast.Pass()))
    return out


def _text(n: ast.AST) -> str:
    s = ast.unparse(n).replace("\n", "; ")
    return s if len(s) <= 90 else s[:87] + "..."


def generate(modules: tuple[str, ...] = ("step", "fundbook")) -> list[Mutant]:
    out: list[Mutant] = []
    for mod in modules:
        for fname in TARGETS[mod]:
            fdef, offset = _source(mod, fname)
            seen: set[str] = set()
            holder: dict[int, int] = {}  # node -> first line of its innermost statement
            for st in ast.walk(fdef):  # breadth first: an inner statement comes after its outer ones
                if isinstance(st, ast.stmt) and st is not fdef:
                    for x in ast.walk(st):
                        holder[id(x)] = st.lineno
            for site, variant, op, node, transform in _mutations(fdef):
                before = _text(node)
                new = transform(copy.deepcopy(node))
                after = "pass" if isinstance(new, ast.Pass) else _text(new)
                m = Mutant(mod, fname, node.lineno + offset, op, before, after, site, variant,
                           holder.get(id(node), node.lineno) + offset)
                if m.key in seen:  # the same text twice on one line: number it
                    m = dataclasses.replace(m, after=f"{after} #{variant}{site}")
                seen.add(m.key)
                same = sum(1 for x in out if (x.module, x.function, x.op, x.before, x.after)
                           == (m.module, m.function, m.op, m.before, m.after))
                out.append(dataclasses.replace(m, occurrence=same + 1))
    return out


def skipped_statements(modules: tuple[str, ...] = ("step", "fundbook")) -> dict[str, int]:
    """How many statements of the target functions are not dropped, by reason."""
    counts: dict[str, int] = {}
    for mod in modules:
        for fname in TARGETS[mod]:
            fdef, _ = _source(mod, fname)
            for body, top in _stmt_lists(fdef):
                for i, st in enumerate(body):
                    ok, why = _droppable(fdef, st, top, i == len(body) - 1)
                    if not ok and why != "compound":
                        why = "first binding of a local" if why.startswith("first binding") else why
                        counts[why] = counts.get(why, 0) + 1
            for n in ast.walk(fdef):
                if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add) and (_is_seq(n.left) or _is_seq(n.right)):
                    counts["'+' on sequences"] = counts.get("'+' on sequences", 0) + 1
                if isinstance(n, ast.Call):
                    for k in range(len(n.args) - 1):
                        a, b = n.args[k], n.args[k + 1]
                        if isinstance(a, ast.Starred) or isinstance(b, ast.Starred) or ast.dump(a) == ast.dump(b):
                            continue
                        ok, why = _swappable(n, a, b)
                        if not ok:
                            counts[f"swap: {why}"] = counts.get(f"swap: {why}", 0) + 1
    return counts


def compile_mutant(m: Mutant) -> Callable[..., Any]:
    fdef, offset = _source(m.module, m.function)
    nodes = list(ast.walk(fdef))
    target = nodes[m.site]
    (transform,) = [t for s, v, op, _, t in _mutations(fdef) if s == m.site and v == m.variant and op == m.op]

    class Replace(ast.NodeTransformer):
        def visit(self, node: ast.AST) -> Any:
            if node is target:
                return transform(node)
            return super().visit(node)

    fdef = Replace().visit(fdef)
    ast.fix_missing_locations(fdef)
    ast.increment_lineno(fdef, offset)
    code = compile(ast.Module([fdef], []), f"<mutant {m.key}>", "exec",
                   flags=__future__.annotations.compiler_flag, dont_inherit=True)
    module = MODULES[m.module]
    namespace: dict[str, Any] = {}
    exec(code, vars(module), namespace)
    fn = namespace[m.function]
    fn.__kwdefaults__ = getattr(module, m.function).__kwdefaults__
    fn.__defaults__ = getattr(module, m.function).__defaults__
    return fn


# ---------------------------------------------------------------- a pristine oracle

def _pristine(module: Any) -> types.SimpleNamespace:
    """Copies of a module's functions bound to a snapshot of its namespace (taken now, before any
    mutant is planted)."""
    snap = dict(vars(module))
    for name, f in list(snap.items()):
        if inspect.isfunction(f) and f.__module__ == module.__name__:
            g = types.FunctionType(f.__code__, snap, name, f.__defaults__, f.__closure__)
            g.__kwdefaults__ = f.__kwdefaults__
            snap[name] = g
    return types.SimpleNamespace(**{k: v for k, v in snap.items() if not k.startswith("__")})


_PRISTINE_FB = _pristine(FB)
_PRISTINE_S = _pristine(S)


class _OracleStep:
    """What proofs/loop_wide.py sees as ``S``: the live step module (so ``run`` goes through the
    planted mutant) except ``process_mark``, which its claim uses to revalue the state before."""

    def __getattr__(self, name: str) -> Any:
        return _PRISTINE_S.process_mark if name == "process_mark" else getattr(S, name)


@contextmanager
def planted(m: Mutant | None, counter: list[int] | None = None) -> Iterator[None]:
    """Plant ``m`` (None: nothing) for the block; the oracles keep the pristine views."""
    undo: list[Callable[[], None]] = []

    def put(obj: Any, name: str, value: Any) -> None:
        old = getattr(obj, name)
        setattr(obj, name, value)
        undo.append(lambda: setattr(obj, name, old))

    try:
        put(PL, "FB", _PRISTINE_FB)
        put(PW, "FB", _PRISTINE_FB)
        put(PW, "S", _OracleStep())
        if m is not None:
            fn = compile_mutant(m)
            if counter is not None:
                inner = fn

                def fn(*a: Any, **k: Any) -> Any:  # noqa: F811 -- counts the calls, same behaviour
                    counter[0] += 1
                    return inner(*a, **k)
            put(MODULES[m.module], m.function, fn)
        yield
    finally:
        for u in reversed(undo):
            u()


# ---------------------------------------------------------------- the scenarios of the obligations

OBLIGATIONS = ("OBL-INV-024", "OBL-INV-025a", "OBL-INV-025b", "OBL-INV-025c", "OBL-INV-025d", "OBL-INV-025e",
               "OBL-INV-025f", "OBL-INV-025g", "OBL-INV-025h", "OBL-INV-025i", "OBL-INV-025j")
_APPLICABLE: dict[str, tuple[str, ...]] = {}


def obligations(profile: Profile) -> tuple[str, ...]:
    """The whole-loop obligations that apply on ``profile`` (OBL-INV-025 needs partial liquidation
    and the drawdown trigger: okx only among the shipped profiles)."""
    if profile.name not in _APPLICABLE:
        _APPLICABLE[profile.name] = tuple(ob for ob in OBLIGATIONS if instances(profile, [ob]))
    judges = VARIANT_JUDGES.get(profile.name, OBLIGATIONS)
    return tuple(ob for ob in _APPLICABLE[profile.name] if ob in judges and (not ONLY or ob in ONLY))


# the judges a run may use (empty: all that apply); e.g. okx+bpfee, whose OBL-INV-025a-e are proved
# and whose OBL-INV-024 is not (yet): a claim the original does not keep cannot judge a mutant
ONLY: tuple[str, ...] = ()


def scenario(profile: Profile, ob_id: str) -> tuple[Any, tuple[int, ...]]:
    if ob_id == "OBL-INV-024":
        sc = PL.LoopScenario(profile, PL.loop_instrument(profile))
        return sc, tuple(range(len(sc.GRID)))
    if ob_id == "OBL-INV-025e":
        return PW.EventsScenario(profile, PW.wide_instruments(profile)), PW.EventsScenario.EVENT_ROWS
    if ob_id == "OBL-INV-025g":
        return PW.CrossOnlyScenario(profile, PW.wide_instruments(profile)), PW.CrossOnlyScenario.G_ROWS
    if ob_id == "OBL-INV-025i":
        return PW.QOnlyScenario(profile, PW.wide_instruments(profile)), PW.QOnlyScenario.I_ROWS
    if ob_id == "OBL-INV-025j":
        sc = PW.NotionalScenario(profile, PW.notional_partial_instrument(profile))
        return sc, sc.J_ROWS
    if ob_id == "OBL-INV-025h":
        return PW.TwoCandidateScenario(profile, PW.two_candidate_instruments(profile)), PW.TwoCandidateScenario.H_ROWS
    sc = PW.WideScenario(profile, PW.wide_instruments(profile))
    return sc, PW.WideScenario.ROWS[ob_id[-1]]


def _declare(sc: Any, ctx: Context, ob_id: str, rows: tuple[int, ...]) -> dict[str, Any]:
    return sc.declare(ctx) if ob_id == "OBL-INV-024" else sc.declare(ctx, rows)


def _fixed_inputs(sc: Any, rows: tuple[int, ...]) -> list[dict[str, Any]]:
    """Two hand-picked inputs per row: no cash and a rich fund, some cash and a poor fund (the wide
    scenario's fund is a row constant: only its cash balances vary)."""
    big, mid = 10**12, 10**8
    out = []
    for g in rows:
        for cash, fund in ((0, big), (mid, 1)):
            v = {n: (fund if n == "fund" else cash) for n in sc.NAMES}
            v["price path"] = g
            out.append(v)
    return out


def _cache_path(profile: Profile) -> Path:
    # the paths are those of the scenarios' ``run`` over their domains: the step and fund modules,
    # and each scenario's set-up (not its claim, which an added statement changes without moving a path)
    h = hashlib.sha256()
    for mod in (S, FB):
        h.update(inspect.getsource(mod).encode())
    for sc in (PL.LoopScenario, PW.WideScenario, PW.EventsScenario, PW.CrossOnlyScenario, PW.TwoCandidateScenario, PW.QOnlyScenario,
               PW.NotionalScenario):
        for name in ("__init__", "declare", "run", "no_mark_instrument", "extra_accounts"):
            if name in vars(sc):
                h.update(inspect.getsource(getattr(sc, name)).encode())
        h.update(repr((sc.GRID, getattr(sc, "ROWS", None), sc.MAX_PATHS, getattr(sc, "NAMES", None))).encode())
    h.update(repr((PL.T0, PL.T1, PL.T2)).encode())
    h.update(repr(obligations(profile)).encode())  # the obligations the witnesses are drawn for
    return Path(f"/tmp/backstop-mutstep-witnesses-{profile.name}-{h.hexdigest()[:12]}.json")


# the wide scenario's concolic runs are slow (minutes per row on a loaded machine): its witness
# sets may stop early ("timeout"); they are then a sample of its paths, and say so
ROW_SECONDS = {"OBL-INV-024": 300, "OBL-INV-025h": 30, "OBL-INV-025i": 30, "OBL-INV-025j": 30, "OBL-INV-025a": 75, "OBL-INV-025b": 75, "OBL-INV-025c": 75, "OBL-INV-025d": 75,
               "OBL-INV-025e": 75, "OBL-INV-025f": 75,
               "OBL-INV-025g": 75}


def path_witnesses(profile: Profile, log: Callable[[str], None] = print) -> dict[str, list[dict[str, Any]]]:
    """One input of every path of the original plumbing on each obligation's domain (a full path
    exploration, as the obligation's own; cached under /tmp by the sources' hash)."""
    cache = _cache_path(profile)
    if cache.exists():
        return json.loads(cache.read_text())
    out: dict[str, list[dict[str, Any]]] = {}
    with planted(None):
        for ob_id in obligations(profile):
            t0 = time.perf_counter()
            sc, rows = scenario(profile, ob_id)
            ctx = Context(profile, None)
            variables = _declare(sc, ctx, ob_id, rows)
            premises = [p for p in ctx.premises if isinstance(p, z3.ExprRef)]
            ws: list[dict[str, Any]] = []
            statuses = []
            for g in rows:
                paths, status = explore(variables, premises + [variables["price path"] == g],
                                        lambda vals: sc.run(vals, variables), seed=SEED,
                                        deadline=time.perf_counter() + ROW_SECONDS.get(ob_id, 300),
                                        max_paths=sc.MAX_PATHS)
                statuses.append(f"row {g}: {len(paths)} paths, {status}")
                ws += [p.witness for p in paths]
            out[ob_id] = ws
            out[f"{ob_id} status"] = statuses  # type: ignore[assignment]
            log(f"witnesses {ob_id}: {len(ws)} paths in {time.perf_counter() - t0:.0f}s ({'; '.join(statuses)})")
    cache.write_text(json.dumps(out))
    return out


# ---------------------------------------------------------------- judging one mutant

@dataclass
class Outcome:
    key: str
    verdict: str                    # killed | survived | equivalent | unreached | error
    killed_by: str = ""
    seconds: float = 0.0
    screen: str = ""                # breaks-claim | differs | records-only | same | crash | unreached
    screen_row: dict[str, int] = field(default_factory=dict)
    detail: str = ""
    attempts: list[tuple[str, str, float]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_BASELINE: dict[tuple[str, str], list[Any]] = {}
_COVERED: dict[str, set[tuple[str, int]]] = {}   # profile -> (module, line) run by the original on some input
_FILES = {inspect.getsourcefile(S): "step", inspect.getsourcefile(FB): "fundbook"}


@contextmanager
def _coverage(lines: set[tuple[str, int]]) -> Iterator[None]:
    def tracer(frame: Any, event: str, arg: Any) -> Any:
        mod = _FILES.get(frame.f_code.co_filename)
        if mod is None:
            return None
        if event == "line" or event == "call":
            lines.add((mod, frame.f_lineno))
        return tracer
    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(old)


def _inputs(profile: Profile) -> dict[str, list[dict[str, Any]]]:
    ws = path_witnesses(profile)
    out = {}
    for ob_id in obligations(profile):
        sc, rows = scenario(profile, ob_id)
        fixed = _fixed_inputs(sc, rows)
        # the wide scenarios' fund is a row constant and each row has one path: the witness and
        # the input without cash are enough (the rich-cash input runs the same path)
        out[ob_id] = ws[ob_id] + (fixed if ob_id == "OBL-INV-024" else fixed[::2])
    return out


FIRST_BREAK = False  # screen: stop at the first obligation whose claim breaks (the script's default)


def _baseline(profile: Profile) -> dict[str, list[Any]]:
    res = {}
    inputs = _inputs(profile)
    for ob_id in obligations(profile):
        if (profile.name, ob_id) not in _BASELINE:
            sc, _ = scenario(profile, ob_id)
            covered = _COVERED.setdefault(profile.name, set())
            with planted(None), _coverage(covered):
                _BASELINE[(profile.name, ob_id)] = [sc.run(v) for v in inputs[ob_id]]
        res[ob_id] = _BASELINE[(profile.name, ob_id)]
    return res


BROKEN: dict[tuple[str, str, str], dict[str, Any]] = {}  # (mutant, profile, obligation) -> the input that broke the claim
DIFFERS: dict[tuple[str, str, str], list[dict[str, Any]]] = {}  # ... -> up to 3 inputs (other rows) with other states


def screen(m: Mutant, profile: Profile) -> tuple[str, dict[str, int], str]:
    """Run the mutant concretely on every screening input: ``breaks-claim`` (with the first row
    per obligation where the claim fails), ``differs`` (other states, the claims hold),
    ``records-only`` (the same states, other records), ``same``, ``crash`` (with the exception) or
    ``unreached`` (the statement is never run by the original on any path of any domain)."""
    inputs, base = _inputs(profile), _baseline(profile)
    if (m.module, m.stmt_line) not in _COVERED[profile.name]:
        # the original never runs this statement on any path of any domain (the witnesses cover
        # every path): the mutant runs exactly as the original there
        return "unreached", {}, ""
    calls = [0]
    rows: dict[str, int] = {}
    differs = states_differ = False
    crash = ""
    with planted(m, calls):
        # the wide domains first: they hold every step of the transition, and their inputs are fewer
        for ob_id in sorted(obligations(profile), key=lambda o: o == "OBL-INV-024"):
            if FIRST_BREAK and rows:
                break
            sc, _ = scenario(profile, ob_id)
            for v, b in zip(inputs[ob_id], base[ob_id]):
                try:
                    out = sc.run(v)
                    ok = sc.claim(out, symbolic=False)
                except Exception as e:  # noqa: BLE001 -- a crash is its own verdict
                    crash = crash or f"{ob_id} {v}: {type(e).__name__}: {e}"
                    break
                if ok is not True:
                    rows.setdefault(ob_id, v["price path"])
                    BROKEN[(m.key, profile.name, ob_id)] = v
                    break  # the first input per obligation is all the prover needs
                if out != b:
                    differs = True
                    states_differ = states_differ or out["states"] != b["states"]
                    seen = DIFFERS.setdefault((m.key, profile.name, ob_id), [])
                    if len(seen) < 3 and all(x["price path"] != v["price path"] for x in seen):
                        seen.append(v)
    if rows:
        return "breaks-claim", rows, crash
    if crash:
        return "crash", rows, crash
    if calls[0] == 0:
        return "unreached", rows, ""
    return ("differs" if states_differ else "records-only" if differs else "same"), rows, ""


FAST_SECONDS = 60.0  # a first, shorter limit per obligation: a kill takes seconds, a mutant can slow the paths down


def _instance(profile: Profile, ob_id: str, first: int | None, limit: float | None = None) -> Instance:
    """The obligation as registered -- its scenario, domain and claim -- with the row the screen
    broke explored first, and optionally a shorter time limit."""
    (inst,) = instances(profile, [ob_id])
    rows = scenario(profile, ob_id)[1]
    order = ((first,) + tuple(r for r in rows if r != first)) if first in rows else rows

    def body(ctx: Context) -> Any:
        sc, _ = scenario(ctx.profile, ob_id)
        if limit is not None:
            sc.LIMIT = limit
        if ob_id != "OBL-INV-024":
            sc.declare = (lambda c, _d=sc.declare: _d(c, rows))  # type: ignore[method-assign]
        return PL.prove_by_paths(ctx, sc, order)

    ob = dataclasses.replace(inst.obligation, body=body)
    if limit is not None:
        ob = dataclasses.replace(ob, limit_seconds=limit)
    return Instance(ob, profile, None)


def _path_instance(profile: Profile, ob_id: str, v: dict[str, Any]) -> Instance:
    """The obligation restricted to the path of one input ``v``: its premises, and its claim on the
    terms of the path ``v`` drives -- the very formula the obligation's body returns when a path's
    witness breaks its claim (prove_by_paths' early exit), with ``v`` as the witness.  The replay
    is the obligation's own: ``run`` + ``claim`` on the model's values through the mutant."""
    (inst,) = instances(profile, [ob_id])
    rows = scenario(profile, ob_id)[1]

    def body(ctx: Context) -> Any:
        sc, _ = scenario(ctx.profile, ob_id)
        variables = _declare(sc, ctx, ob_id, rows)
        if not ctx.symbolic:
            return sc.claim(sc.run(variables), symbolic=False)
        with concolic() as pc:
            out = sc.run(v, variables)
            cond = z3.And(*pc) if pc else z3.BoolVal(True)
        return z3.Implies(z3.And(variables["price path"] == v["price path"], cond), sc.claim(out, symbolic=True))

    return Instance(dataclasses.replace(inst.obligation, body=body, limit_seconds=FAST_SECONDS), profile, None)


def prove_mutant(m: Mutant, profile: Profile, rows: dict[str, int], chain: tuple[str, ...] = (),
                 full: bool = True) -> tuple[str, str, list[tuple[str, str, float]], str]:
    """(verdict, killed_by, attempts, detail): the obligations of ``chain`` (default: every one that
    applies) in order (those where the screen broke the claim first), until a confirmed
    counterexample."""
    chain = chain or obligations(profile)
    order = sorted(chain, key=lambda o: (o not in rows, chain.index(o)))
    attempts: list[tuple[str, str, float]] = []
    errors = []
    final: dict[str, str] = {}
    with planted(m):
        # first: the path of the input that broke the claim in the screen (seconds)
        for ob_id in order:
            v = BROKEN.get((m.key, profile.name, ob_id))
            if v is None:
                continue
            r = prove(_path_instance(profile, ob_id, v))
            attempts.append((f"{ob_id}[{profile.name}] on the path of {v}", f"{r.verdict}/{r.replay}" if r.replay
                             else r.verdict, round(r.seconds, 1)))
            if r.verdict == "counterexample" and r.replay == "confirmed":
                return "killed", f"{ob_id}[{profile.name}] (path)", attempts, _cex(r)
        # then: the paths of inputs where the mutant's states differ from the original's, the
        # claim held on the input itself, but the solver ranges over the whole path
        for ob_id in order:
            for v in DIFFERS.get((m.key, profile.name, ob_id), []):
                r = prove(_path_instance(profile, ob_id, v))
                attempts.append((f"{ob_id}[{profile.name}] on the path of {v}", f"{r.verdict}/{r.replay}" if r.replay
                                 else r.verdict, round(r.seconds, 1)))
                if r.verdict == "counterexample" and r.replay == "confirmed":
                    return "killed", f"{ob_id}[{profile.name}] (path)", attempts, _cex(r)
        if not full:
            return "survived-paths", "", attempts, "no counterexample on the paths tried; the whole obligations not run"
        for limit, obs in ((FAST_SECONDS, order), (None, "unknown")):
            if obs == "unknown":
                obs = [o for o in order if final.get(o) == "unknown"]
            for ob_id in obs:
                r: Result = prove(_instance(profile, ob_id, rows.get(ob_id), limit))
                lim = f" (limit {limit:.0f}s)" if limit else ""
                attempts.append((f"{ob_id}[{profile.name}]{lim}", f"{r.verdict}/{r.replay}" if r.replay else r.verdict,
                                 round(r.seconds, 1)))
                final[ob_id] = r.verdict
                if r.verdict == "counterexample" and r.replay == "confirmed":
                    return "killed", f"{ob_id}[{profile.name}]", attempts, _cex(r)
                if r.verdict == "error":
                    errors.append(f"{ob_id}: {r.detail.splitlines()[0] if r.detail else ''}")
    if errors and not any(v == "proved" for v in final.values()):
        return "error", "", attempts, "; ".join(errors)
    if any(v != "proved" for v in final.values()):
        return "unknown", "", attempts, "; ".join(errors) or "not every obligation proved or refuted"
    return "survived", "", attempts, ""


def _cex(r: Result) -> str:
    return ", ".join(f"{k}={v}" for k, v in r.counterexample.items())


# ---------------------------------------------------------------- equivalence by a product exploration

_MONEY_STATE_SKIP = (".funds.records",)


def _state_leaves(out: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(n, v) for n, v in leaves(out["states"], "states") if not any(s in n for s in _MONEY_STATE_SKIP)]


def equivalent(m: Mutant, profile: Profile, seconds: float = 400.0,
               only: tuple[str, ...] = ()) -> tuple[bool | None, str]:
    """Run the original and the mutant on the same shadowed inputs, explore every path of the pair
    on every obligation's domain, and ask the solver whether every number of every state (after
    every event) is equal on each path.  True: equivalent on the domains; False: a path where they
    differ (the mutant changes the state without breaking a claim); None: undecided."""
    deadline = time.perf_counter() + seconds
    npaths = 0
    fn = compile_mutant(m)
    module = MODULES[m.module]
    original = getattr(module, m.function)
    domains = tuple(o for o in obligations(profile) if not only or o in only)
    for ob_id in domains:
        sc, rows = scenario(profile, ob_id)
        ctx = Context(profile, None)
        variables = _declare(sc, ctx, ob_id, rows)
        premises = [p for p in ctx.premises if isinstance(p, z3.ExprRef)]

        def pair(vals: dict[str, Any]) -> Any:
            a = sc.run(vals, variables)
            setattr(module, m.function, fn)
            try:
                b = sc.run(vals, variables)
            finally:
                setattr(module, m.function, original)
            return a, b

        with planted(None):
            for g in rows:
                dom = premises + [variables["price path"] == g]
                try:
                    paths, status = explore(variables, dom, pair, seed=SEED, deadline=deadline, max_paths=4 * sc.MAX_PATHS)
                except (HarnessError, Exception) as e:  # noqa: BLE001
                    return None, f"{ob_id} row {g}: {type(e).__name__}: {e}"
                if status != "complete":
                    return None, f"{ob_id} row {g}: product exploration {status}"
                for pt in paths:
                    a, b = pt.result
                    la, lb = _state_leaves(a), _state_leaves(b)
                    if [n for n, _ in la] != [n for n, _ in lb]:
                        return False, f"{ob_id} row {g}: the states differ in shape at input {pt.witness}"
                    eqs = [_zterm(x) == _zterm(y) for (_, x), (_, y) in zip(la, lb)]
                    s = z3.Solver()
                    s.set("timeout", max(1, int((deadline - time.perf_counter()) * 1000)))
                    s.add(*dom, pt.condition, z3.Not(z3.And(*eqs)) if eqs else z3.BoolVal(False))
                    r = s.check()
                    if r == z3.sat:
                        return False, f"{ob_id} row {g}: a state differs on the path of input {pt.witness}"
                    if r != z3.unsat:
                        return None, f"{ob_id} row {g}: solver {r}"
                npaths += len(paths)
    return True, (f"same states on all {npaths} paths of the product exploration "
                  f"({', '.join(domains)} domains on {profile.name})")


def _zterm(x: Any) -> Any:
    if hasattr(x, "z"):
        return x.z
    if isinstance(x, bool):
        return z3.BoolVal(x)
    return z3.RealVal(str(Fraction(x)))


# ---------------------------------------------------------------- the whole judgement

def judge(m: Mutant, profile_name: str = "okx", prove_same: bool = True, check_equivalence: bool = True,
          log: Callable[[str], None] = print) -> Outcome:
    profile = profile_named(profile_name)
    t0 = time.perf_counter()
    try:
        kind, rows, crash = screen(m, profile)
    except Exception as e:  # noqa: BLE001
        return Outcome(m.key, "error", seconds=time.perf_counter() - t0, screen="harness",
                       detail=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
    o = Outcome(m.key, "", screen=kind, screen_row=rows, detail=crash)
    if kind == "crash":  # the concolic run crashes the same way: an error, never a kill
        o.verdict, o.seconds = "error", round(time.perf_counter() - t0, 1)
        return o
    if kind == "unreached":
        o.verdict, o.seconds = "unreached", time.perf_counter() - t0
        o.detail = "the original never calls this function on any path of any obligation's domain"
        return o
    if kind == "same" and not prove_same:
        o.verdict, o.seconds = "survived", time.perf_counter() - t0
        o.detail = "no screening input distinguishes it (not proved: --no-prove-same)"
        return o
    _decide(o, m, profile, kind, rows, check_equivalence)
    o.seconds = round(time.perf_counter() - t0, 1)
    return o


def _decide(o: Outcome, m: Mutant, profile: Profile, kind: str, rows: dict[str, int], check_equivalence: bool,
            full: bool = True) -> None:
    """Prove, then check a survivor for equivalence; a mutant the screen could not tell from the
    original (same states everywhere) is checked for equivalence first, which spares its proofs."""
    if check_equivalence and kind in ("same", "records-only"):
        eq, why = equivalent(m, profile)
        if eq is True:
            o.verdict, o.detail = "equivalent", why
            return
        o.detail = why
    verdict, by, attempts, detail = prove_mutant(m, profile, rows, full=full)
    o.verdict, o.killed_by, o.attempts = verdict, by, attempts
    o.detail = detail or o.detail
    if verdict == "survived" and check_equivalence and kind not in ("same", "records-only"):
        eq, why = equivalent(m, profile)
        o.verdict = "equivalent" if eq is True else "survived"
        o.detail = why


# ---------------------------------------------------------------- equivalence shown by the solver, per call site

_PURE_READS = {"balance", "get", "is_adl_active"}


def _pure(n: ast.AST) -> bool:
    """An argument whose evaluation has no effect (so swapping two changes only which value goes where)."""
    if isinstance(n, (ast.Name, ast.Constant)):
        return True
    if isinstance(n, ast.Attribute):
        return _pure(n.value)
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _PURE_READS:
        return _pure(n.func.value) and all(_pure(a) for a in n.args)
    return False


def _node(m: Mutant) -> ast.AST:
    fdef, _ = _source(m.module, m.function)
    return list(ast.walk(fdef))[m.site]


def _swapped_rule_call(m: Mutant) -> tuple[ast.Call, Any, Any, str]:
    """The call a swap mutant changes, when it is ``R.X.f(...)`` with positional arguments whose two
    swapped ones are pure reads: (the call, the rule function ``f``, its ``R.X.f`` attribute node, why
    not -- empty when it is)."""
    from backstop.reference.rules import RULES
    n = _node(m)
    if m.op != "swap" or not isinstance(n, ast.Call):
        return n, None, None, "not a swap of call arguments"  # type: ignore[return-value]
    f = n.func
    if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) and isinstance(f.value.value, ast.Name)
            and f.value.value.id == "R") or n.keywords:
        return n, None, None, "not a positional call of a rule function through R"
    k = m.variant
    if not (_pure(n.args[k]) and _pure(n.args[k + 1])):
        return n, None, None, "a swapped argument is not a pure read"
    return n, getattr(getattr(RULES, f.value.attr), f.attr), f, ""


def _swap_differs(fn: Callable[..., Any], xs: list[Any], i: int) -> tuple[Any, Any]:
    """Z3's answer to "``fn(*xs)`` differs from ``fn`` with ``xs[i]`` and ``xs[i + 1]`` swapped" (unsat: it
    never does), and the solver, for its model; raises when ``fn`` does not take these terms."""
    ys = list(xs)
    ys[i], ys[i + 1] = ys[i + 1], ys[i]
    a, b = fn(*xs), fn(*ys)
    s = z3.Solver()
    s.set("timeout", 10_000)
    s.add(z3.Xor(a, b) if isinstance(a, z3.BoolRef) else a != b)
    return s.check(), s


def swap_commutes(m: Mutant) -> tuple[bool | None, str]:
    """A swap of two pure arguments of a rule function called through the rules namespace
    (``R.T.f(a, b, c)``): equivalent when Z3 proves ``f`` returns the same term with the two swapped
    for every value of every argument (all real, or all Boolean: a superset of what the plumbing
    passes).  (True, how) when proved; (None, why not) when the call is not of that form or the
    solver does not prove it; (False, ...) when it finds arguments that tell the two apart."""
    n, fn, f, why = _swapped_rule_call(m)
    if why:
        return None, why
    k = m.variant
    arity = len(n.args)
    for sort, make in (("real", z3.Real), ("Boolean", z3.Bool)):
        xs = [make(f"x{i}") for i in range(arity)]
        try:
            r, s = _swap_differs(fn, xs, k)
        except Exception:  # noqa: BLE001 -- the function does not take this sort: try the next
            continue
        name = f"R.{f.value.attr}.{f.attr}"
        if r == z3.unsat:
            return True, (f"Z3: {name}(x0..x{arity - 1}) == {name} with x{k}, x{k + 1} swapped, for all {sort} "
                          f"x0..x{arity - 1} (unsat negation); the swapped arguments are pure reads")
        if r == z3.sat:
            return False, f"Z3: {name} differs at {s.model()}"
        return None, f"Z3: {r}"
    return None, "the rule function takes neither all-real nor all-Boolean arguments"


def swap_flows_into_symmetric(m: Mutant) -> tuple[bool | None, str]:
    """A swap of two pure arguments of a rule function ``f`` (``R.X.f(..., a, b, ...)``) whose two
    parameters are each read exactly once in ``f``'s body, side by side as the positional arguments of
    one call of a rule function ``g`` of ``f``'s module: equivalent when Z3 proves ``g`` symmetric in
    those two positions (for all real values of all its arguments).  ``f``'s result then depends on
    the two only through ``g``, whose value the swap does not change."""
    import inspect
    import textwrap
    n, fn, f, why = _swapped_rule_call(m)
    if why:
        return None, why
    k = m.variant
    fdef = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    if not isinstance(fdef, ast.FunctionDef) or fdef.args.vararg or fdef.args.kwonlyargs or len(fdef.args.args) != len(n.args):
        return None, "the rule function's parameters are not plain positional ones"
    pa, pb = fdef.args.args[k].arg, fdef.args.args[k + 1].arg
    reads = [x for x in ast.walk(fdef) if isinstance(x, ast.Name) and x.id in (pa, pb)]
    calls = [c for c in ast.walk(fdef) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and not c.keywords
             and any(isinstance(a, ast.Name) and a.id == pa for a in c.args)]
    if len(reads) != 2 or len(calls) != 1:
        return None, f"{pa} and {pb} are not each read once, in one call"
    call = calls[0]
    j = next(i for i, a in enumerate(call.args) if isinstance(a, ast.Name) and a.id == pa)
    if j + 1 >= len(call.args) or not (isinstance(call.args[j + 1], ast.Name) and call.args[j + 1].id == pb):
        return None, f"{pa} and {pb} are not side by side in the call"
    g = getattr(inspect.getmodule(fn), call.func.id, None)  # type: ignore[attr-defined]
    if g is None or not callable(g):
        return None, f"{call.func.id} is not a function of {fn.__module__}"
    xs = [z3.Real(f"x{i}") for i in range(len(call.args))]
    try:
        r, _ = _swap_differs(g, xs, j)
    except Exception:  # noqa: BLE001 -- g does not take real arguments: no verdict
        return None, f"{call.func.id} does not take real arguments"
    name = f"R.{f.value.attr}.{f.attr}"
    if r == z3.unsat:
        return True, (f"Z3: {name} reads {pa} and {pb} only as the arguments {j} and {j + 1} of {call.func.id}, and "
                      f"{call.func.id}(x0..x{len(xs) - 1}) == {call.func.id} with x{j}, x{j + 1} swapped for all real "
                      f"values (unsat negation); the swapped arguments are pure reads")
    # g not symmetric does not show f differs (f may not depend on g's value there): no verdict
    return None, f"Z3: {call.func.id} is not shown symmetric ({r})"


# premises a comparison's variable (a name, or a dotted read such as ``s.position.size``; ``function:name``
# for one function only) meets on every input of process_event: (the premise, why, the obligations that
# prove it -- none for a fact of the types)
PREMISES: dict[str, tuple[Callable[[Any], Any], str, tuple[str, ...]]] = {
    "sign": (lambda v: z3.Or(v == 1, v == -1),
             "a position's sign is +1 or -1 (PositionTerms.sign of a Side: LONG +1, SHORT -1)", ()),
}


def cmp_under_premise(m: Mutant) -> tuple[bool | None, str]:
    """A flipped comparison ``v OP c`` (a name against a constant) with a premise on ``v`` in
    :data:`PREMISES`: equivalent when Z3 proves the two comparisons agree on every ``v`` of the premise."""
    n = _node(m)
    if m.op != "cmp" or not isinstance(n, ast.Compare) or len(n.ops) != 1:
        return None, "not a single comparison"
    left, right = n.left, n.comparators[0]
    name = ast.unparse(left)
    key = next((k for k in (f"{m.function}:{name}", name) if k in PREMISES), None)
    if not (isinstance(left, (ast.Name, ast.Attribute)) and key is not None and isinstance(right, ast.Constant)):
        return None, "not a premised name against a constant"
    premise, why, cited = PREMISES[key]
    v = z3.Real(name)
    ops = {ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b, ast.Lt: lambda a, b: a < b,
           ast.LtE: lambda a, b: a <= b, ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}
    before = ops[type(n.ops[0])](v, right.value)
    after = ops[_CMP_FLIP[type(n.ops[0])]](v, right.value)
    s = z3.Solver()
    s.add(premise(v), z3.Xor(before, after))
    r = s.check()
    if r == z3.unsat:
        by = f"; the premise is proved by {', '.join(cited)}" if cited else ""
        return True, f"Z3: `{m.before}` == `{m.after}` for every {name} with {why} (unsat negation){by}"
    return (False if r == z3.sat else None), f"Z3: {r}"


@dataclass(frozen=True)
class LemmaSite:
    """A mutated site whose two versions agree under a premise that an obligation of its own proves
    (not a whole-loop claim): ``check`` asks Z3 whether they agree on every value the premise admits."""

    function: str
    op: str
    before: str
    after: str
    premise: str
    obligations: tuple[str, ...]
    check: Callable[[], Any]   # a Z3 formula: the premise and "the two versions differ" (unsat: equivalent)


def _escalation_differs() -> Any:
    """``decide_cross_round(d, funded, k == rounds - 1)`` against ``... k == rounds + 1`` for a round
    index ``k`` of ``range(rounds)``, where the last round's decision is never PARTIAL."""
    from backstop.reference import liquidation as L
    from backstop.reference import transition as T
    d, k, r, f = z3.Int("decision"), z3.Int("k"), z3.Int("rounds"), z3.Bool("funded")
    premise = z3.And(r >= 1, k >= 0, k <= r - 1, d >= L.NONE, d <= L.FULL, z3.Implies(k == r - 1, d != L.PARTIAL))
    return z3.And(premise, T.decide_cross_round(d, f, k == r - 1) != T.decide_cross_round(d, f, k == r + 1))


LEMMA_SITES: tuple[LemmaSite, ...] = (
    LemmaSite("_liquidate_cross", "arith", "rounds - 1", "rounds + 1",
              "the last round of max_cross_rounds never decides PARTIAL: no candidate is left after max_partial_steps "
              "rounds, and PARTIAL needs a candidate", ("OBL-TRN-004b", "OBL-TRN-003"), _escalation_differs),
)


def _step_calls(fn: str) -> list[ast.Call]:
    """Every call ``FB.<fn>(...)`` in reference/step.py: the only caller of fundbook inside process_event."""
    from backstop.reference import step as S
    tree = ast.parse(Path(S.__file__).read_text(encoding="utf-8"))
    return [c for c in ast.walk(tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
            and c.func.attr == fn and isinstance(c.func.value, ast.Name) and c.func.value.id == "FB"]


def _view_args(fn: str) -> set[str]:
    """The source of the ``view`` argument (the third positional) of every step.py call of ``FB.<fn>``."""
    calls = _step_calls(fn)
    assert calls, fn
    return {ast.unparse(c.args[2]) if len(c.args) > 2 else "<none>" for c in calls}


def _identity_on_enum(enum: Any) -> bool:
    """The conversion ``enum(v)`` returns ``v`` itself for every member ``v`` (so dropping it changes nothing)."""
    return all(enum(v) is v for v in enum)


def _view_given_enum() -> Any:
    from backstop.reference.profile import BalanceView
    args = _view_args("available_balance")
    ok = all(a.startswith("BalanceView.") and a.split(".", 1)[1] in BalanceView.__members__ for a in args)
    return z3.BoolVal(not (ok and _identity_on_enum(BalanceView)))


def _view_spp_symmetric() -> Any:
    from backstop.reference import fund as F
    from backstop.reference.profile import BalanceView
    if _view_args("available_balance") != {"BalanceView.SETTLED_PLUS_PENDING"}:
        return z3.BoolVal(True)
    x, y = z3.Real("settled"), z3.Real("pending")
    v = BalanceView.SETTLED_PLUS_PENDING
    return F.balance_in_view(v, x, y) != F.balance_in_view(v, y, x)


def _history_view_enum() -> Any:
    import typing
    from backstop.reference import profile as P
    typed = typing.get_type_hints(P.AdlRules).get("balance_view") is P.BalanceView
    return z3.BoolVal(not (_view_args("balance_history") == {"state.profile.adl.balance_view"} and typed
                           and _identity_on_enum(P.BalanceView)))


def _fee_receiver_enum() -> Any:
    import typing
    from backstop.reference import profile as P
    calls = _step_calls("apply_fee")
    omitted = all(len(c.args) <= 4 and not any(k.arg == "receiver" for k in c.keywords) for c in calls)
    typed = typing.get_type_hints(P.LiquidationRules).get("fee_receiver") is P.FeeReceiver
    return z3.BoolVal(not (calls and omitted and typed and _identity_on_enum(P.FeeReceiver)))


# fundbook's API conversions, seen from process_event's calls (the premise is read from step.py's source)
CALLER_SITES: tuple[LemmaSite, ...] = (
    LemmaSite("available_balance", "drop", "view = BalanceView(view) if view is not None else state.profile.adl.balance_view",
              "pass", "every step.py call of FB.available_balance passes a BalanceView member as the view, and BalanceView(v) "
              "is v for every member", (), _view_given_enum),
    LemmaSite("available_balance", "swap",
              "R.F.balance_in_view(view, R.F.settled_balance(state.book, key), R.F.pending_balance(sta...",
              "R.F.balance_in_view(view, R.F.pending_balance(state.book, key), R.F.settled_balance(sta...",
              "every step.py call of FB.available_balance passes BalanceView.SETTLED_PLUS_PENDING, in which balance_in_view "
              "is symmetric in the settled and the pending balance", (), _view_spp_symmetric),
    LemmaSite("balance_history", "drop", "view = BalanceView(view) if view is not None else state.profile.adl.balance_view",
              "pass", "the one step.py call of FB.balance_history passes the profile's adl.balance_view, a BalanceView (the "
              "profile's type, validated on load), and BalanceView(v) is v for every member", (), _history_view_enum),
    LemmaSite("apply_fee", "drop", "receiver = FeeReceiver(receiver)", "pass",
              "no step.py call of FB.apply_fee passes a receiver, so it is the profile's liquidation.fee_receiver, a "
              "FeeReceiver (the profile's type, validated on load), and FeeReceiver(v) is v for every member", (),
              _fee_receiver_enum),
)


def lemma_equivalent(m: Mutant) -> tuple[bool | None, str]:
    """A mutant at a :data:`LEMMA_SITES` site: equivalent when Z3 shows the two versions agree under the
    site's premise, which the cited obligations prove."""
    for site in LEMMA_SITES + CALLER_SITES:
        if (m.function, m.op, m.before, m.after) == (site.function, site.op, site.before, site.after) and m.occurrence == 1:
            s = z3.Solver()
            s.set("timeout", 10_000)
            s.add(site.check())
            r = s.check()
            if r == z3.unsat:
                by = f"; the premise is proved by {', '.join(site.obligations)}" if site.obligations else ""
                return True, f"Z3: `{m.before}` and `{m.after}` agree under the premise that {site.premise} (unsat negation){by}"
            return (False if r == z3.sat else None), f"Z3: {r} under the premise that {site.premise}"
    return None, "not a lemma site"


def proved_equivalent(m: Mutant) -> tuple[bool | None, str]:
    """The per-site equivalence checks, in turn."""
    for check in (swap_commutes, swap_flows_into_symmetric, cmp_under_premise, lemma_equivalent):
        eq, why = check(m)
        if eq is not None:
            return eq, why
    return None, "no per-site check applies"
