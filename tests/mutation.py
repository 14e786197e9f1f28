"""A generic mutation harness: plant bugs in reference modules and ask the Z3 obligations to catch them.

Mutants are generated from the SOURCE of the functions of the given modules with :mod:`ast`:

* ``cmp``    -- flip a comparison's strictness (``<`` <-> ``<=``, ``>`` <-> ``>=``) or negate it
  (``==`` <-> ``!=``, ``is`` <-> ``is not``);
* ``arith``  -- swap ``+`` and ``-`` in one binary operation;
* ``sign``   -- negate the position's sign (``pos.sign`` -> ``-pos.sign``, ``s`` -> ``-s``) or drop
  one unary minus;
* ``round``  -- floor <-> ceil (``num.floor``/``num.ceil``, ``floor_to_step``/``ceil_to_step``,
  ``div_floor``/``div_ceil``, ``math.floor``/``math.ceil``);
* ``const``  -- replace a profile/instrument constant (``close_fee_rate``, ``mmr``,
  ``mm_deduction``, ``liquidation_fee_rate``, ``drawdown_fraction`` by 0; ``contract_value``,
  ``scale``, ``lot_size``, ``tick_size`` by 1);
* ``ite``    -- swap the two branches of one ``ite``;
* ``minmax`` -- ``num.min_`` <-> ``num.max_``.

Each mutant is compiled into a copy of its module's namespace and monkeypatched into the module
(and into any module-level dict that holds the original function).  :func:`run_mutant` then
proves the obligations of each profile of ``chain`` that *call* the mutated function, until one
fails with a ``counterexample`` whose replay through the concrete (mutated) reference is
``confirmed``: that obligation kills the mutant.

Test modules (``tests/test_planted_bugs*.py``) call :func:`generate_mutants` with their modules,
list equivalent mutants and known holes with reasons, and parametrize over :func:`params`.
"""

from __future__ import annotations

import __future__
import ast
import copy
import dataclasses
import inspect
import textwrap
import time
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest

from backstop.proofs.kernel import Result, format_counterexample, prove
from backstop.proofs.registry import Context, Expect, Instance, instances
from backstop.reference.profile import Profile, load_profile

LIMIT_SECONDS = 5.0         # per obligation instance (a kill takes at most ~3.5s here)
RETRY_LIMIT_SECONDS = 30.0  # for instances that were unknown, when nothing else killed the mutant


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


MODULES: dict[str, ModuleType] = {}                  # name -> module, filled by generate_mutants
TARGETS: dict[str, tuple[str, ...] | None] = {}      # name -> the functions to mutate (None: all)
_CMP_FLIP: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                               ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_ROUND_SWAP = {"floor": "ceil", "ceil": "floor", "floor_to_step": "ceil_to_step", "ceil_to_step": "floor_to_step",
               "div_floor": "div_ceil", "div_ceil": "div_floor"}
_CONST_ZERO = ("close_fee_rate", "mmr", "mm_deduction")
_CONST_ONE = ("contract_value", "scale")
# opt-in per module (generate_mutants(..., extended=True)); the margin suite keeps the base set
_EXT_CONST_ZERO = ("liquidation_fee_rate", "drawdown_fraction")
_EXT_CONST_ONE = ("lot_size", "tick_size")
_MINMAX_SWAP = {"min_": "max_", "max_": "min_"}
EXTENDED: dict[str, bool] = {}  # module name -> extended operator set
_SIGN_NAMES = ("s", "sign")


def _function_defs(module: str) -> list[ast.FunctionDef]:
    mod = MODULES[module]
    tree = ast.parse(inspect.getsource(mod))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    wanted = TARGETS.get(module)
    if wanted is not None:
        defs = [d for d in defs if d.name in wanted]
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


def _mutations(node: ast.AST, fname: str, extended: bool = False) -> list[tuple[str, Callable[[ast.AST], ast.AST]]]:
    """(op, transform) pairs applicable at ``node``; a transform returns the replacement node."""
    out: list[tuple[str, Callable[[ast.AST], ast.AST]]] = []
    zero = _CONST_ZERO + (_EXT_CONST_ZERO if extended else ())
    one = _CONST_ONE + (_EXT_CONST_ONE if extended else ())
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
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and node.attr in zero + one:
        v = 0 if node.attr in zero else 1
        out.append(("const", lambda n, v=v: ast.Constant(value=v)))
    if (_is_call_to(node, "ite") and len(node.args) == 3) and not node.keywords:  # type: ignore[attr-defined]
        def swap_branches(n: ast.AST) -> ast.AST:
            c, a, b = n.args
            n.args = [c, b, a]
            return n
        out.append(("ite", swap_branches))
    if (extended and isinstance(node, ast.Attribute) and node.attr in _MINMAX_SWAP
            and isinstance(node.value, ast.Name) and node.value.id == "num" and isinstance(node.ctx, ast.Load)):
        def swap_minmax(n: ast.AST) -> ast.AST:
            n.attr = _MINMAX_SWAP[n.attr]
            return n
        out.append(("minmax", swap_minmax))
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
    (transform,) = [t for op, t in _mutations(target, m.function, EXTENDED.get(m.module, False)) if op == m.op and _describe(target, t)[1] == m.after]
    r = _Replace(target, transform)
    new = r.visit(fdef)
    assert r.done
    return ast.fix_missing_locations(new)


def _describe(node: ast.AST, transform: Callable[[ast.AST], ast.AST]) -> tuple[str, str]:
    before = ast.unparse(node)
    after = ast.unparse(transform(copy.deepcopy(node)))
    return before, after


def generate_mutants(modules: dict[str, ModuleType],
                     targets: dict[str, tuple[str, ...]] | None = None, *, extended: bool = True) -> list[Mutant]:
    """Every mutant of every function of ``modules`` (name -> module), or only of the functions
    ``targets[name]`` lists.  The names become the first part of each mutant's key.  ``extended``
    adds the ``minmax`` operator and the fee-rate / drawdown / lot / tick constants."""
    for name, mod in modules.items():
        if MODULES.get(name, mod) is not mod:
            raise ValueError(f"module name {name!r} already registered for another module")
        MODULES[name] = mod
        TARGETS[name] = (targets or {}).get(name)
        EXTENDED[name] = extended
    out: list[Mutant] = []
    for module in modules:
        for fdef in _function_defs(module):
            seen: dict[tuple[int, str, str, str], int] = {}
            for site, node in enumerate(_body_nodes(fdef)):
                for op, transform in _mutations(node, fdef.name, EXTENDED[module]):
                    before, after = _describe(node, transform)
                    if before == after:
                        continue
                    line = node.lineno - fdef.lineno  # type: ignore[attr-defined]
                    n = seen[(line, op, before, after)] = seen.get((line, op, before, after), 0) + 1
                    out.append(Mutant(module, fdef.name, line, op, before, after, n, site))
    return out


# ---------------------------------------------------------------- applying a mutant

def _compile(m: Mutant) -> Callable[..., Any]:
    mod = MODULES[m.module]
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
    mod = MODULES[m.module]
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

_PROFILES: dict[str, Profile] = {}
PROFILE_FACTORIES: dict[str, Callable[[], Profile]] = {}  # synthetic profiles, by name


def register_profile(name: str, factory: Callable[[], Profile]) -> None:
    """Make a synthetic profile available to ``chain`` under ``name``."""
    PROFILE_FACTORIES[name] = factory


def profile(name: str) -> Profile:
    if name not in _PROFILES:
        _PROFILES[name] = PROFILE_FACTORIES[name]() if name in PROFILE_FACTORIES else load_profile(name)
    return _PROFILES[name]


# The whole-loop obligation explores every path of the step function (about a minute per profile,
# and building its body is the exploration itself).  The rule modules' kill tables do not try it:
# each rule function has obligations of its own, and tests/test_planted_bugs_step.py plants bugs
# in the step function, which only it can see.
WHOLE_LOOP = {"OBL-INV-024"}


def _instances(profile_name: str, limit: float, whole_loop: bool = False) -> list[Instance]:
    out = []
    for inst in instances(profile(profile_name)):
        if inst.obligation.expect is not Expect.PROVED:
            continue
        if inst.obligation.id in WHOLE_LOOP and not whole_loop:
            continue
        ob = dataclasses.replace(inst.obligation, limit_seconds=min(inst.obligation.limit_seconds, limit))
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


def run_mutant(m: Mutant, chain: tuple[str, ...] = ("okx",), retry: bool = True,
               limit: float = LIMIT_SECONDS, retry_limit: float = RETRY_LIMIT_SECONDS) -> Outcome:
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
        for profile_name in chain:
            for inst in _instances(profile_name, limit):
                if _reaches(inst, fn) and attempt(profile_name, inst):
                    done = True
                    break
            if done:
                break
        if not done and retry:
            for profile_name, inst in list(unknown):
                longer = dataclasses.replace(inst.obligation, limit_seconds=retry_limit)
                if attempt(profile_name, Instance(longer, inst.profile, inst.instrument)):
                    break
    out.seconds = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- helpers for test modules

def params(mutants: list[Mutant], equivalent: dict[str, str], holes: dict[str, str]) -> list[Any]:
    """pytest params of the mutants that are not equivalent; known holes are strict xfails."""
    out = []
    for m in mutants:
        if m.key in equivalent:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=f"HOLE: {holes[m.key]}")] if m.key in holes else []
        out.append(pytest.param(m, id=m.key, marks=marks))
    return out


def assert_killed(m: Mutant, chain: tuple[str, ...] = ("okx",), holes: dict[str, str] | None = None) -> Outcome:
    out = run_mutant(m, chain=chain, retry=m.key not in (holes or {}))
    assert out.killed_by, (f"mutant survived every obligation on {', '.join(chain)}: {m.key}\n"
                           + "\n".join(out.others))
    assert "replay through the concrete reference: confirmed" in out.report
    assert "claim: " in out.report
    return out


def check_lists(mutants: list[Mutant], equivalent: dict[str, str], holes: dict[str, str]) -> None:
    """The allow-lists name existing mutants, and no mutant is both equivalent and a hole."""
    keys = {m.key for m in mutants}
    stale = sorted((set(equivalent) | set(holes)) - keys)
    assert not stale, f"allow-list entries that no longer match a generated mutant: {stale}"
    assert not set(equivalent) & set(holes)
    assert len(keys) == len(mutants), "mutant keys must be unique"


def main(argv: list[str], mutants: list[Mutant], equivalent: dict[str, str], holes: dict[str, str],
         chain: tuple[str, ...]) -> int:
    """Script mode: print the kill table (``--only SUBSTRING`` filters, ``-v`` shows reports)."""
    only = argv[argv.index("--only") + 1] if "--only" in argv else ""
    chosen = [m for m in mutants if only in m.key]
    print(f"{len(chosen)} mutants ({len(mutants)} generated, {len(equivalent)} allow-listed as equivalent, "
          f"{len(holes)} known holes)")
    t0 = time.perf_counter()
    survived = 0
    for m in chosen:
        if m.key in equivalent:
            print(f"EQUIV    {m.key}\n         {equivalent[m.key]}")
            continue
        out = run_mutant(m, chain=chain, retry=m.key not in holes)
        status = "killed" if out.killed_by else ("HOLE" if m.key in holes else "SURVIVED")
        survived += not out.killed_by and m.key not in holes
        print(f"{status:8s} {m.key}\n         by {out.killed_by or '-'} in {out.kill_seconds:.1f}s "
              f"({out.tried} tried, {out.seconds:.1f}s in all)", flush=True)
        if "-v" in argv and out.report:
            print(textwrap.indent(out.report, "           | "))
        if not out.killed_by and out.others:
            print(textwrap.indent("\n".join(out.others), "           ~ "))
    print(f"total {time.perf_counter() - t0:.1f}s; {survived} unexpected survivors")
    return 1 if survived else 0
