"""Planted bugs (mutation testing) -- the slice's acceptance check:

    a bug planted in any rule function of this slice (a flipped comparison, a wrong sign, a wrong
    rounding direction) makes at least one Z3 obligation fail with a readable counterexample.

Mutants are generated from the SOURCE of every function of ``reference/margin.py`` and of the
rounding helpers of ``reference/num.py`` that margin.py uses, with the :mod:`ast` module:

* ``cmp``    -- flip a comparison's strictness (``<`` <-> ``<=``, ``>`` <-> ``>=``) or negate it
  (``==`` <-> ``!=``, ``is`` <-> ``is not``);
* ``arith``  -- swap ``+`` and ``-`` in one binary operation;
* ``sign``   -- negate the position's sign (``pos.sign`` -> ``-pos.sign``, ``s`` -> ``-s``) or drop
  one unary minus;
* ``round``  -- floor <-> ceil (``num.floor``/``num.ceil``, ``floor_to_step``/``ceil_to_step``,
  ``math.floor``/``math.ceil``);
* ``const``  -- replace a profile/instrument constant (``close_fee_rate``, ``mmr``,
  ``mm_deduction`` by 0; ``contract_value``, ``scale`` by 1);
* ``ite``    -- swap the two branches of one ``ite``.

Each mutant is compiled into a copy of its module's namespace and monkeypatched into the module
(and into any module-level table that holds the original function, such as ``_PRICE_SOLVERS``);
then the obligations of the okx profile are proved, then bybit's (MM valued at entry, notional
tiers), then binance's (notional tiers valued at mark, with deductions), until one fails with a
``counterexample`` whose replay through the concrete (mutated) reference is ``confirmed``.  That
obligation *kills* the mutant.  Mutants that no obligation can kill because they are equivalent on
every shipped profile are listed in :data:`EQUIVALENT`, each with its reason; mutants that are real
bugs no obligation catches are listed in :data:`HOLES` and marked ``xfail(strict=True)``.

Run ``python tests/test_planted_bugs.py`` for the kill table (``--only SUBSTRING`` to filter).
"""

from __future__ import annotations

import __future__
import ast
import copy
import dataclasses
import inspect
import sys
import textwrap
import time
from fractions import Fraction
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest

from backstop.proofs.kernel import Result, format_counterexample, prove
from backstop.proofs.registry import Context, Expect, Instance, instances
from backstop.reference import margin as margin_mod
from backstop.reference import num as num_mod
from backstop.reference.profile import PriceBasis, Profile, load_profile
from backstop.reference.types import Tier, TierBasis, TierTable

LIMIT_SECONDS = 5.0         # per obligation instance (a kill takes at most ~3.5s here)
RETRY_LIMIT_SECONDS = 30.0  # for instances that were unknown, when nothing else killed the mutant
# okx first; bybit reaches MM at entry and linear deductions, binance deductions valued at mark, the
# synthetic profiles inverse contracts with deductions (see synthetic_inverse_profile).
PROFILE_CHAIN = ("okx", "bybit", "binance", "synthetic-inverse-mark", "synthetic-inverse-entry")
NUM_TARGETS = ("floor", "ceil", "floor_to_step", "ceil_to_step", "round_to_step_toward")


# ---------------------------------------------------------------- mutant generation

@dataclass(frozen=True)
class Mutant:
    module: str     # "margin" or "num"
    function: str
    line: int       # line of the mutated node, relative to the function's ``def`` line
    op: str
    before: str
    after: str
    occurrence: int  # among mutants of this function with the same line/op/before/after
    site: int        # index of the node in ast.walk order of the function (internal)

    @property
    def key(self) -> str:
        n = f" #{self.occurrence}" if self.occurrence > 1 else ""
        return f"{self.module}.{self.function}:+{self.line} {self.op} `{self.before}` -> `{self.after}`{n}"


_MODULES: dict[str, ModuleType] = {"margin": margin_mod, "num": num_mod}
_CMP_FLIP: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                               ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_ROUND_SWAP = {"floor": "ceil", "ceil": "floor", "floor_to_step": "ceil_to_step", "ceil_to_step": "floor_to_step",
               "div_floor": "div_ceil", "div_ceil": "div_floor"}
_CONST_ZERO = ("close_fee_rate", "mmr", "mm_deduction")
_CONST_ONE = ("contract_value", "scale")
_SIGN_NAMES = ("s", "sign")


def _function_defs(module: str) -> list[ast.FunctionDef]:
    mod = _MODULES[module]
    tree = ast.parse(inspect.getsource(mod))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if module == "num":
        defs = [d for d in defs if d.name in NUM_TARGETS]
    return defs


def _body_nodes(fdef: ast.FunctionDef) -> list[ast.AST]:
    """Nodes in ast.walk order (the site numbering), docstring and annotations excluded."""
    out: list[ast.AST] = []
    body = fdef.body[1:] if ast.get_docstring(fdef) is not None else fdef.body
    for stmt in body:
        out.extend(ast.walk(stmt))
    return out


def _is_call_to(node: ast.AST, name: str) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr == name and isinstance(f.value, ast.Name)
            and f.value.id == "num") or (isinstance(f, ast.Name) and f.id == name)


def _mutations(node: ast.AST, fname: str) -> list[tuple[str, Callable[[ast.AST], ast.AST]]]:
    """(op, transform) pairs applicable at ``node``; a transform returns the replacement node."""
    out: list[tuple[str, Callable[[ast.AST], ast.AST]]] = []
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP_FLIP:
        def flip(n: ast.AST) -> ast.AST:
            n.ops = [_CMP_FLIP[type(n.ops[0])]()]
            return n
        out.append(("cmp", flip))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        def swap_op(n: ast.AST) -> ast.AST:
            n.op = ast.Sub() if isinstance(n.op, ast.Add) else ast.Add()
            return n
        out.append(("arith", swap_op))
    is_sign = ((isinstance(node, ast.Attribute) and node.attr == "sign" and isinstance(node.ctx, ast.Load))
               or (isinstance(node, ast.Name) and node.id in _SIGN_NAMES and isinstance(node.ctx, ast.Load)))
    if is_sign:
        out.append(("sign", lambda n: ast.UnaryOp(op=ast.USub(), operand=n)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        out.append(("sign", lambda n: n.operand))
    # floor <-> ceil: num.floor / math.floor attributes, or bare names inside num.py
    if (isinstance(node, ast.Attribute) and node.attr in _ROUND_SWAP and isinstance(node.value, ast.Name)
            and node.value.id in ("num", "math") and isinstance(node.ctx, ast.Load)):
        def swap_attr(n: ast.AST) -> ast.AST:
            n.attr = _ROUND_SWAP[n.attr]
            return n
        out.append(("round", swap_attr))
    if (isinstance(node, ast.Name) and node.id in _ROUND_SWAP and isinstance(node.ctx, ast.Load)
            and _ROUND_SWAP[node.id] != fname):  # never make a helper call itself
        def swap_name(n: ast.AST) -> ast.AST:
            n.id = _ROUND_SWAP[n.id]
            return n
        out.append(("round", swap_name))
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and node.attr in _CONST_ZERO + _CONST_ONE:
        v = 0 if node.attr in _CONST_ZERO else 1
        out.append(("const", lambda n, v=v: ast.Constant(value=v)))
    if (_is_call_to(node, "ite") and len(node.args) == 3) and not node.keywords:  # type: ignore[attr-defined]
        def swap_branches(n: ast.AST) -> ast.AST:
            c, a, b = n.args
            n.args = [c, b, a]
            return n
        out.append(("ite", swap_branches))
    return out


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, transform: Callable[[ast.AST], ast.AST]) -> None:
        self.target, self.transform, self.done = target, transform, False

    def visit(self, node: ast.AST) -> Any:
        if node is self.target:
            self.done = True
            return self.transform(node)
        return super().visit(node)


def _mutated_def(m: Mutant) -> ast.FunctionDef:
    (fdef,) = [d for d in _function_defs(m.module) if d.name == m.function]
    fdef = copy.deepcopy(fdef)
    nodes = _body_nodes(fdef)
    target = nodes[m.site]
    (transform,) = [t for op, t in _mutations(target, m.function) if op == m.op and _describe(target, t)[1] == m.after]
    r = _Replace(target, transform)
    new = r.visit(fdef)
    assert r.done
    return ast.fix_missing_locations(new)


def _describe(node: ast.AST, transform: Callable[[ast.AST], ast.AST]) -> tuple[str, str]:
    before = ast.unparse(node)
    after = ast.unparse(transform(copy.deepcopy(node)))
    return before, after


def generate_mutants() -> list[Mutant]:
    out: list[Mutant] = []
    for module in ("margin", "num"):
        for fdef in _function_defs(module):
            seen: dict[tuple[int, str, str, str], int] = {}
            for site, node in enumerate(_body_nodes(fdef)):
                for op, transform in _mutations(node, fdef.name):
                    before, after = _describe(node, transform)
                    if before == after:
                        continue
                    line = node.lineno - fdef.lineno  # type: ignore[attr-defined]
                    n = seen[(line, op, before, after)] = seen.get((line, op, before, after), 0) + 1
                    out.append(Mutant(module, fdef.name, line, op, before, after, n, site))
    return out


# ---------------------------------------------------------------- applying a mutant

def _compile(m: Mutant) -> Callable[..., Any]:
    mod = _MODULES[m.module]
    tree = ast.Module(body=[_mutated_def(m)], type_ignores=[])
    code = compile(tree, f"<mutant {m.key}>", "exec",
                   flags=__future__.annotations.compiler_flag, dont_inherit=True)
    namespace = dict(vars(mod))  # the module's globals; calls to other functions go through them
    exec(code, namespace)
    return namespace[m.function]


class _Counting:
    """The mutant, counting its calls (an obligation that never calls it cannot kill it)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


@contextmanager
def applied(m: Mutant) -> Iterator[_Counting]:
    """Monkeypatch the mutant into its module (and module-level dicts holding the original)."""
    mod = _MODULES[m.module]
    original = getattr(mod, m.function)
    fn = _Counting(_compile(m))
    undo: list[Callable[[], None]] = []
    try:
        setattr(mod, m.function, fn)
        undo.append(lambda: setattr(mod, m.function, original))
        for table in list(vars(mod).values()):
            if isinstance(table, dict):
                for k, v in list(table.items()):
                    if v is original:
                        table[k] = fn
                        undo.append(lambda t=table, k=k: t.__setitem__(k, original))
        yield fn
    finally:
        for u in reversed(undo):
            u()


# ---------------------------------------------------------------- running obligations against a mutant

def synthetic_inverse_profile(basis: PriceBasis) -> Profile:
    """okx's rules with its inverse swap on a notional-basis table with deductions (continuous
    at every cap, as the loader demands), MM valued at ``basis``.  No shipped profile has an
    inverse contract with deductions; without this, ``d`` in the inverse closed forms of
    ``_solve_price`` would only ever be 0."""
    okx = load_profile("okx")
    inst = okx.instruments["BTC-USD-SWAP"]
    caps = [Fraction(10), Fraction(50), Fraction(200), None]  # whole BTC
    mmrs = [Fraction(4, 1000), Fraction(5, 1000), Fraction(1, 100), Fraction(2, 100)]
    tiers, ded = [], 0
    for i, (cap, mmr) in enumerate(zip(caps, mmrs)):
        if i:
            ded += int(caps[i - 1] * inst.scale * (mmr - mmrs[i - 1]))  # type: ignore[operator]
        tiers.append(Tier(i + 1, cap, mmr, 2 * mmr, 1 / (2 * mmr), ded))
    table = TierTable("BTC-INVERSE-NOTIONAL", TierBasis.NOTIONAL, tuple(tiers))
    inverse = dataclasses.replace(inst, tier_table=table)
    return dataclasses.replace(okx, name=f"synthetic-inverse-{basis.value}", tier_tables={table.name: table},
                               instruments={inverse.id: inverse},
                               margin=dataclasses.replace(okx.margin, mm_price_basis=basis))


_PROFILES: dict[str, Profile] = {}


def _profile(name: str) -> Profile:
    if name not in _PROFILES:
        if name.startswith("synthetic-inverse-"):
            _PROFILES[name] = synthetic_inverse_profile(PriceBasis(name.rsplit("-", 1)[1]))
        else:
            _PROFILES[name] = load_profile(name)
    return _PROFILES[name]


def _instances(profile_name: str) -> list[Instance]:
    out = []
    for inst in instances(_profile(profile_name)):
        if inst.obligation.expect is not Expect.PROVED:
            continue
        ob = dataclasses.replace(inst.obligation, limit_seconds=min(inst.obligation.limit_seconds, LIMIT_SECONDS))
        out.append(Instance(ob, inst.profile, inst.instrument))
    return out


def _reaches(inst: Instance, fn: _Counting) -> bool:
    """Does the obligation's body call the mutated function at all?  (Building the body is
    cheap; an obligation that never calls it states the very same formula as without the
    mutant, which is proved, so it cannot kill it.)"""
    before = fn.calls
    try:
        inst.obligation.body(Context(inst.profile, inst.instrument))
    except Exception:
        return True  # let the prover report it
    return fn.calls > before


@dataclass
class Outcome:
    mutant: Mutant
    killed_by: str = ""       # "profile:key" of the obligation instance that killed it
    kill_seconds: float = 0.0  # the killing proof's own time (against LIMIT_SECONDS)
    report: str = ""          # its readable counterexample
    seconds: float = 0.0
    tried: int = 0
    others: list[str] = dataclasses.field(default_factory=list)  # non-kill failures seen (unknown, error, ...)


def run_mutant(m: Mutant, retry: bool = True) -> Outcome:
    """Prove the obligations against the mutant, profile after profile, until one kills it.
    Instances that come back ``unknown`` within LIMIT_SECONDS are tried again with
    RETRY_LIMIT_SECONDS when nothing else killed the mutant (a slow machine must not turn a kill
    into a survivor); known holes skip the retry, to keep the suite affordable."""
    t0 = time.perf_counter()
    out = Outcome(m)
    unknown: list[tuple[str, Instance]] = []

    def attempt(profile_name: str, inst: Instance) -> bool:
        r: Result = prove(inst)
        out.tried += 1
        if r.verdict == "counterexample" and r.replay == "confirmed":
            out.killed_by = f"{profile_name}:{r.key}"
            out.kill_seconds = r.seconds
            out.report = format_counterexample(inst, r)
            return True
        if r.verdict == "unknown":
            unknown.append((profile_name, inst))
        if not r.ok:
            first = r.detail.splitlines()[0] if r.detail else ""
            out.others.append(f"{profile_name}:{r.key} {r.verdict} {r.replay} {first}")
        return False

    with applied(m) as fn:
        done = False
        for profile_name in PROFILE_CHAIN:
            for inst in _instances(profile_name):
                if _reaches(inst, fn) and attempt(profile_name, inst):
                    done = True
                    break
            if done:
                break
        if not done and retry:
            for profile_name, inst in list(unknown):
                longer = dataclasses.replace(inst.obligation, limit_seconds=RETRY_LIMIT_SECONDS)
                if attempt(profile_name, Instance(longer, inst.profile, inst.instrument)):
                    break
    out.seconds = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- equivalent mutants and holes

EQUIVALENT: dict[str, str] = {
    "margin.compute_bankruptcy_price:+6 const `rules.close_fee_rate` -> `0`":
        "zero_rules.close_fee_rate is never read: _solve_price takes the rate (0) and deduction (0) as arguments",
    "num.round_to_step_toward:+2 cmp `sign > 0` -> `sign >= 0`":
        "sign is +1 or -1 (a position's side); the two conditions differ only at sign = 0",
}

HOLES: dict[str, str] = {
    "margin.is_within_tiers:+3 cmp `compute_tier_basis(inst, size, price) <= table.max_cap` -> "
    "`compute_tier_basis(inst, size, price) < table.max_cap`":
        "is_within_tiers is only ever a premise, never claimed: no obligation says a position exactly at "
        "the last cap (okx: 60000 contracts) is within the table, so refusing it goes unnoticed",
    "margin._solve_price:+13 cmp `value > 0` -> `value >= 0`":
        "OBL-LIQ-002 finds the model (bp defined with value 0) but its replay raises ZeroDivisionError: "
        "it evaluates compute_equity at bp.value = 0 and compute_unrealized_pnl computes div(1, mark) "
        "for linear instruments too; so the counterexample is never confirmed",
    "num.floor:+5 round `math.floor` -> `math.ceil`":
        "the concrete branch of num.floor is invisible to Z3: the obligations run on the symbolic branch "
        "(z3.ToInt), and a replay runs only after a symbolic counterexample",
}


MUTANTS = generate_mutants()


def _param(m: Mutant) -> Any:
    marks = []
    if m.key in HOLES:
        marks.append(pytest.mark.xfail(strict=True, reason=f"HOLE: {HOLES[m.key]}"))
    return pytest.param(m, id=m.key, marks=marks)


@pytest.mark.rules("NUM-001", "NUM-002", "MRG-001", "MRG-002", "MRG-003", "MRG-004", "MRG-005", "MRG-006",
                   "MRG-007", "MRG-008", "LIQ-001", "LIQ-002", "LIQ-003")
@pytest.mark.parametrize("mutant", [_param(m) for m in MUTANTS if m.key not in EQUIVALENT])
def test_planted_bug_is_caught_by_an_obligation(mutant: Mutant) -> None:
    out = run_mutant(mutant, retry=mutant.key not in HOLES)
    assert out.killed_by, (f"mutant survived every obligation on {', '.join(PROFILE_CHAIN)}: {mutant.key}\n"
                           + "\n".join(out.others))
    assert "replay through the concrete reference: confirmed" in out.report
    assert "claim: " in out.report


def test_mutants_are_applied_and_then_restored():
    """A mutant replaces its function in the module and in module-level tables holding it
    (such as _solve_price's table of closed forms), and everything is restored afterwards."""
    def snapshot() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mod_name, mod in _MODULES.items():
            for name, v in vars(mod).items():
                out[f"{mod_name}.{name}"] = dict(v) if isinstance(v, dict) and not name.startswith("__") else v
        return out

    before = snapshot()
    in_tables = [m for m in MUTANTS if any(isinstance(v, dict) and getattr(margin_mod, m.function) in v.values()
                                           for v in vars(margin_mod).values() if m.module == "margin")]
    some = in_tables[:1] + [m for m in MUTANTS if m.module == "margin"][:2] + [m for m in MUTANTS if m.module == "num"][:1]
    assert in_tables, "expected a mutant of a function held in a module-level table"
    for m in some:
        mod = _MODULES[m.module]
        original = getattr(mod, m.function)
        with applied(m) as fn:
            assert getattr(mod, m.function) is fn
            for v in vars(mod).values():
                if isinstance(v, dict):
                    assert original not in v.values()
        assert getattr(mod, m.function) is original
    assert snapshot() == before


def test_mutant_set_is_focused_and_uses_every_operator():
    assert 40 <= len(MUTANTS) <= 120, len(MUTANTS)
    assert len({m.key for m in MUTANTS}) == len(MUTANTS), "mutant keys must be unique"
    assert {m.op for m in MUTANTS} == {"cmp", "arith", "sign", "round", "const", "ite"}
    assert {m.function for m in MUTANTS if m.module == "num"} == set(NUM_TARGETS)


def test_equivalence_and_hole_lists_name_existing_mutants():
    keys = {m.key for m in MUTANTS}
    stale = sorted((set(EQUIVALENT) | set(HOLES)) - keys)
    assert not stale, f"allow-list entries that no longer match a generated mutant: {stale}"
    assert not set(EQUIVALENT) & set(HOLES)


# ---------------------------------------------------------------- script mode: the kill table

def main(argv: list[str]) -> int:
    only = argv[argv.index("--only") + 1] if "--only" in argv else ""
    chosen = [m for m in MUTANTS if only in m.key]
    print(f"{len(chosen)} mutants ({len(MUTANTS)} generated, {len(EQUIVALENT)} allow-listed as equivalent, "
          f"{len(HOLES)} known holes)")
    t0 = time.perf_counter()
    survived = 0
    for m in chosen:
        if m.key in EQUIVALENT:
            print(f"EQUIV    {m.key}\n         {EQUIVALENT[m.key]}")
            continue
        out = run_mutant(m, retry=m.key not in HOLES)
        status = "killed" if out.killed_by else ("HOLE" if m.key in HOLES else "SURVIVED")
        survived += not out.killed_by and m.key not in HOLES
        print(f"{status:8s} {m.key}\n         by {out.killed_by or '-'} in {out.kill_seconds:.1f}s "
              f"({out.tried} tried, {out.seconds:.1f}s in all)", flush=True)
        if "-v" in argv and out.report:
            print(textwrap.indent(out.report, "           | "))
        if not out.killed_by and out.others:
            print(textwrap.indent("\n".join(out.others), "           ~ "))
    print(f"total {time.perf_counter() - t0:.1f}s; {survived} unexpected survivors")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
