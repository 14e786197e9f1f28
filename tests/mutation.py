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

A mutant no obligation kills goes to :func:`check_equivalence`: the solver compares it with the
original at every call the obligations' bodies make, under their premises.  It is then proved
``equivalent`` (it leaves the score), shown to ``differ`` (a hole, with a distinguishing model) or
``unknown`` (never counted as equivalent).  So the kill score ``killed / (generated - proved
equivalent)`` that :func:`main` prints is exact when no survivor is unknown.

Test modules (``tests/test_planted_bugs*.py``) call :func:`generate_mutants` with their modules,
list the survivors shown to differ (holes) and the undecided ones with reasons -- there is no list
of equivalent mutants -- and parametrize over :func:`params`; :func:`assert_caught` is the test.
"""

from __future__ import annotations

import __future__
import ast
import copy
import dataclasses
import enum
import inspect
import textwrap
import time
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest
import z3

from backstop.proofs.kernel import SEED, Result, format_counterexample, format_value, prove
from backstop.reference import num
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


PROBE = "__mutation_probe__"  # the name the probed mutant calls at its mutated node


def _mutated_def(m: Mutant, probe: bool = False) -> ast.FunctionDef:
    """The mutated function's definition; with ``probe``, the mutated node's new expression is
    wrapped in a call ``__mutation_probe__(<expr>)`` that counts its evaluations (and returns the
    value unchanged), so the equivalence check can tell whether the solver ever saw it."""
    (fdef,) = [d for d in _function_defs(m.module) if d.name == m.function]
    fdef = copy.deepcopy(fdef)
    nodes = _body_nodes(fdef)
    target = nodes[m.site]
    (transform,) = [t for op, t in _mutations(target, m.function, EXTENDED.get(m.module, False)) if op == m.op and _describe(target, t)[1] == m.after]
    if probe:
        plain = transform

        def transform(n: ast.AST, plain: Callable[[ast.AST], ast.AST] = plain) -> ast.AST:
            return ast.Call(func=ast.Name(id=PROBE, ctx=ast.Load()), args=[plain(n)], keywords=[])
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

def _compile(m: Mutant, probe: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    mod = MODULES[m.module]
    tree = ast.Module(body=[_mutated_def(m, probe is not None)], type_ignores=[])
    code = compile(tree, f"<mutant {m.key}>", "exec",
                   flags=__future__.annotations.compiler_flag, dont_inherit=True)
    namespace = dict(vars(mod))  # the module's globals; calls to other functions go through them
    if probe is not None:
        namespace[PROBE] = probe
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
    with _patched(m, _Counting(_compile(m))) as fn:
        yield fn


@contextmanager
def _patched(m: Mutant, fn: Any) -> Iterator[Any]:
    """Put ``fn`` in place of the mutated function: in its module and in module-level dicts."""
    mod = MODULES[m.module]
    original = getattr(mod, m.function)
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
    equivalence: "Equivalence | None" = None  # for a survivor: the solver's equivalence verdict


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


# ---------------------------------------------------------------- proving a survivor equivalent
#
# Rule functions run on Z3 terms, so a mutant that no obligation kills can be compared with the
# original by the solver.  Each obligation body that calls the function is run (symbolically, with
# the ORIGINAL function in place) and every call's arguments and result are recorded; then, for
# each distinct call, the mutant is applied to the same arguments and the solver is asked whether
#
#     premises of the obligation  AND  original(args) != mutant(args)
#
# is satisfiable, the outputs compared leaf by leaf (every number and bool of the frozen
# dataclasses, tuples, lists and dicts; any other leaf -- an enum, a string, None -- must be the
# same object or equal; a difference of structure or of exception is a difference).
#
# * ``equivalent`` -- unsat for every call, on every obligation instance of every chain profile
#   that calls the function, AND the mutated node was evaluated on Z3 terms at least once.  By
#   induction over the calls of a body (each call receives arguments equal, under the premises, to
#   the original run's), the mutated body states the same premises and the same claim as the
#   original one, so no obligation can tell them apart: the mutant leaves the kill score.  (This
#   relies on what the numeric kernel is built for: a rule function's value depends on the values of
#   its arguments, not on whether they are terms or numbers.)
# * ``differs``    -- a call whose outputs differ under the premises: a hole, with the model (the
#   obligation's variables) and both outputs as the distinguishing input.  Calls are recorded on
#   both branches of every ``ite``, so a difference is on inputs the obligation passes the function
#   under its premises, though perhaps on a branch the obligation then discards.
#   When the mutated node never ran on Z3 terms (code that runs only on concrete numbers, such as
#   the concrete branch of ``num.floor``, is invisible to the solver), up to CONCRETE_SAMPLES calls
#   are evaluated concretely at a model of their premises; a disagreement there is ``differs`` too.
# * ``unknown``    -- a check timed out, a body could not be built, no obligation calls the
#   function, or the mutated node never ran on Z3 terms and the sampled models found no difference.
#   Never counted as equivalent.
#
# Every check is a fresh Z3 context with the kernel's fixed seed and EQUIV_LIMIT_SECONDS.

EQUIV_LIMIT_SECONDS = 10.0    # per solver check of one call
EQUIV_BUDGET_SECONDS = 600.0  # per mutant, all calls of all instances together


class MutantIsAHole(AssertionError):
    """A surviving mutant that the solver shows to differ from the original (a real hole)."""


class MutantIsUndecided(AssertionError):
    """A surviving mutant whose equivalence the solver could not decide (never counted as equivalent)."""


class _Recording:
    """The original function, recording every call: (args, kwargs, result, exception)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any], Any, BaseException | None]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            r = self.fn(*args, **kwargs)
        except Exception as e:
            self.calls.append((args, kwargs, None, e))
            raise
        self.calls.append((args, kwargs, r, None))
        return r


class _Probe:
    def __init__(self) -> None:
        self.hits = 0

    def __call__(self, v: Any) -> Any:
        self.hits += 1
        return v


_ATOMS = (bool, int, Fraction, str, bytes, type(None), enum.Enum)


def _has_term(x: Any, _depth: int = 0) -> bool:
    """Does ``x`` (arguments: nested tuples, lists, dicts, dataclasses) hold a Z3 term?"""
    if isinstance(x, z3.ExprRef):
        return True
    if isinstance(x, _ATOMS) or _depth > 50:
        return False
    if isinstance(x, (tuple, list)):
        return any(_has_term(v, _depth + 1) for v in x)
    if isinstance(x, dict):
        return any(_has_term(v, _depth + 1) for v in x.values())
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return any(_has_term(getattr(x, f.name), _depth + 1) for f in dataclasses.fields(x))
    return False


def _key(x: Any) -> Any:
    """A hashable key of a call's arguments (terms by their AST id: hash-consed, so the same term
    has the same id), to check each distinct call once per obligation instance."""
    if isinstance(x, z3.ExprRef):
        return ("z3", x.get_id())
    if isinstance(x, (tuple, list)):
        return (type(x).__name__,) + tuple(_key(v) for v in x)
    if isinstance(x, dict):
        return ("dict",) + tuple((k, _key(v)) for k, v in x.items())
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__qualname__,) + tuple(_key(getattr(x, f.name)) for f in dataclasses.fields(x))
    try:
        hash(x)
        return ("v", type(x).__qualname__, x)
    except TypeError:
        return ("id", id(x))


def _is_number(x: Any) -> bool:
    return (isinstance(x, (int, Fraction)) and not isinstance(x, bool)) or isinstance(x, z3.ArithRef)


def _is_boolean(x: Any) -> bool:
    return isinstance(x, bool) or isinstance(x, z3.BoolRef)


def _differences(a: Any, b: Any, path: str = "result") -> list[tuple[str, Any, Any, Any]]:
    """Where the original's output ``a`` and the mutant's ``b`` may differ: ``(path, a_leaf, b_leaf,
    condition)``, the condition ``True`` (they differ whatever the values), or a Z3 formula."""
    if _is_number(a) and _is_number(b):
        if not (isinstance(a, z3.ExprRef) or isinstance(b, z3.ExprRef)):
            return [] if a == b else [(path, a, b, True)]
        ta, tb = num.lift(a), num.lift(b)
        return [] if ta.eq(tb) else [(path, a, b, ta != tb)]
    if _is_boolean(a) and _is_boolean(b):
        if not (isinstance(a, z3.ExprRef) or isinstance(b, z3.ExprRef)):
            return [] if a == b else [(path, a, b, True)]
        ta = a if isinstance(a, z3.ExprRef) else z3.BoolVal(a)
        tb = b if isinstance(b, z3.ExprRef) else z3.BoolVal(b)
        return [] if ta.eq(tb) else [(path, a, b, z3.Xor(ta, tb))]
    if isinstance(a, z3.ExprRef) or isinstance(b, z3.ExprRef):
        return [(path, a, b, True)]  # a term against something that is neither a number nor a bool
    if type(a) is not type(b):
        return [(path, a, b, True)]
    if isinstance(a, (tuple, list)):
        if len(a) != len(b):
            return [(path, a, b, True)]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, dict):
        if list(a) != list(b):
            return [(path, a, b, True)]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}[{k!r}]")]
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return [d for f in dataclasses.fields(a)
                for d in _differences(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")]
    return [] if (a is b or a == b) else [(path, a, b, True)]


def _fresh_solver(limit_seconds: float) -> tuple[z3.Context, z3.Solver]:
    """A solver in a fresh Z3 context, with the kernel's fixed seed and a time limit."""
    zctx = z3.Context()
    s = z3.Solver(ctx=zctx)
    s.set("random_seed", SEED)
    s.set("timeout", max(1, int(limit_seconds * 1000)))
    return zctx, s


def _show(x: Any, model: Any = None, zctx: Any = None) -> str:
    if isinstance(x, z3.ExprRef):
        if model is None:
            return str(x)
        try:
            return format_value(num.value_of(x.translate(zctx), model))
        except Exception:
            return str(model.eval(x.translate(zctx), model_completion=True))
    if isinstance(x, BaseException):
        return f"raises {type(x).__name__}: {x}"
    if _is_number(x) or isinstance(x, bool):
        return format_value(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type) and not _has_term(x):
        short = repr(x)  # a profile's object (an instrument, rules): its id or a short repr
        return f"{type(x).__name__}({x.id})" if isinstance(getattr(x, "id", None), str) else (
            short if len(short) <= 160 else short[:157] + "...")
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return f"{type(x).__name__}(" + ", ".join(f"{f.name}={_show(getattr(x, f.name), model, zctx)}"
                                                 for f in dataclasses.fields(x)) + ")"
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(_show(v, model, zctx) for v in x) + ")"
    return repr(x)


@dataclass
class CallCheck:
    """One distinct recorded call, checked: equal, differs (with a witness) or unknown."""

    instance: str     # "profile:key"
    verdict: str      # "equal" | "differs" | "unknown"
    solver: bool      # needed the solver (else: identical terms, or concrete values compared)
    seconds: float
    detail: str = ""
    model: dict[str, Any] = dataclasses.field(default_factory=dict)  # differs: the obligation's variables


@dataclass
class Equivalence:
    mutant: Mutant
    verdict: str = "unknown"   # "equivalent" | "differs" | "unknown"
    obligations: dict[str, str] = dataclasses.field(default_factory=dict)  # obligation id -> its premises
    instances: list[str] = dataclasses.field(default_factory=list)          # "profile:key" that call it
    calls: int = 0          # distinct calls checked
    solver_calls: int = 0   # of which the solver decided (the others: identical terms or concrete values)
    seconds: float = 0.0
    witness: str = ""       # differs: the distinguishing input and both outputs
    model: dict[str, Any] = dataclasses.field(default_factory=dict)  # differs: its variables' values
    detail: str = ""        # unknown: why

    def summary(self) -> str:
        head = (f"{self.verdict} over {self.calls} call(s) ({self.solver_calls} by the solver) in "
                f"{len(self.instances)} obligation instance(s), {self.seconds:.1f}s")
        lines = [head]
        if self.verdict == "differs":
            lines.append(self.witness)
        elif self.verdict == "unknown":
            lines.append(f"unknown: {self.detail}")
        if self.obligations:
            lines.append("premises:")
            lines += [f"  {oid}: {prem}" for oid, prem in self.obligations.items()]
        return "\n".join(lines)


def _check_call(m: Mutant, label: str, ctx: Context, call: tuple[Any, ...], mutant: Callable[..., Any],
                premises: list[Any], limit: float) -> CallCheck:
    args, kwargs, result, error = call
    t0 = time.perf_counter()
    try:
        mine, mine_error = mutant(*args, **kwargs), None
    except Exception as e:
        mine, mine_error = None, e
    if error is not None or mine_error is not None:
        same = error is not None and mine_error is not None and type(error) is type(mine_error)
        diffs = [] if same else [("result", error or result, mine_error or mine, True)]
    else:
        diffs = _differences(result, mine)
    if not diffs:
        return CallCheck(label, "equal", False, time.perf_counter() - t0)
    zctx, s = _fresh_solver(limit)
    for p in premises:
        s.add(p.translate(zctx))
    if not any(c is True for _, _, _, c in diffs):
        s.add(z3.Or(*[c for _, _, _, c in diffs]).translate(zctx))
    r = s.check()
    secs = time.perf_counter() - t0
    if r == z3.unsat:
        if any(c is True for _, _, _, c in diffs):  # the premises themselves are unsatisfiable
            return CallCheck(label, "unknown", True, secs, "the premises are unsatisfiable")
        return CallCheck(label, "equal", True, secs)
    if r == z3.unknown:
        return CallCheck(label, "unknown", True, secs, f"{label}: solver unknown ({s.reason_unknown()}) "
                         f"after {secs:.1f}s on a call of {m.function}")
    model = s.model()
    values: dict[str, Any] = {}
    for name, (kind, v) in ctx.vars.items():
        try:
            values[name] = num.value_of(v.translate(zctx), model) if isinstance(v, z3.ExprRef) else v
        except Exception:
            values[name] = str(model.eval(v.translate(zctx), model_completion=True))
    inputs = ", ".join(f"{name} = {_show(v, model, zctx)}" for name, (kind, v) in ctx.vars.items())
    shown = [f"    {path}: original {_show(x, model, zctx)}, mutant {_show(y, model, zctx)}"
             for path, x, y, c in diffs
             if c is True or z3.is_true(model.eval(c.translate(zctx), model_completion=True))]
    argv = ", ".join([_show(a, model, zctx) for a in args] + [f"{k}={_show(v, model, zctx)}" for k, v in kwargs.items()])
    witness = "\n".join([f"  {label}: a model of the premises where {m.function} differs",
                         f"    inputs: {inputs or '(none)'}",
                         f"    call: {m.function}({argv})"[:2000]] + shown)
    return CallCheck(label, "differs", True, secs, witness, values)


CONCRETE_SAMPLES = 40  # calls evaluated at a model when the mutated node never ran on terms


def _concretize(x: Any, model: Any, zctx: Any) -> Any:
    """``x`` with every Z3 leaf replaced by its exact value in ``model`` (a whole Int-sorted value
    as ``int``, any other number as ``Fraction``, a bool as ``bool``)."""
    if isinstance(x, z3.ExprRef):
        v = num.value_of(x.translate(zctx), model)
        if isinstance(v, Fraction) and v.denominator == 1 and (
                (isinstance(x, z3.ArithRef) and x.is_int())
                or (z3.is_app_of(x, z3.Z3_OP_TO_REAL) and x.arg(0).is_int())):
            return int(v)
        return v
    if isinstance(x, _ATOMS) or not _has_term(x):
        return x
    if isinstance(x, tuple):
        return type(x)(_concretize(v, model, zctx) for v in x)
    if isinstance(x, list):
        return [_concretize(v, model, zctx) for v in x]
    if isinstance(x, dict):
        return {k: _concretize(v, model, zctx) for k, v in x.items()}
    return dataclasses.replace(x, **{f.name: _concretize(getattr(x, f.name), model, zctx)
                                     for f in dataclasses.fields(x) if f.init})


def _sample_call(m: Mutant, label: str, ctx: Context, call: tuple[Any, ...], mutant: Callable[..., Any],
                 premises: list[Any], limit: float) -> CallCheck | None:
    """A call whose arguments hold terms, evaluated concretely at a model of the premises: a
    ``differs`` check when the original and the mutant disagree there, else None."""
    args, kwargs, _, _ = call
    t0 = time.perf_counter()
    zctx, s = _fresh_solver(limit)
    for p in premises:
        s.add(p.translate(zctx))
    if s.check() != z3.sat:
        return None
    model = s.model()
    try:
        cargs, ckwargs = _concretize((args, kwargs), model, zctx)
        original = getattr(MODULES[m.module], m.function)(*cargs, **ckwargs)
    except Exception:
        return None  # irrational values, or the original refuses these values: no verdict here
    try:
        mine: Any = mutant(*cargs, **ckwargs)
    except Exception as e:
        mine = e
    diffs = [("result", original, mine, True)] if isinstance(mine, BaseException) else _differences(original, mine)
    if not diffs:
        return None
    values = {name: (_concretize(v, model, zctx) if isinstance(v, z3.ExprRef) else v)
              for name, (kind, v) in ctx.vars.items()}
    inputs = ", ".join(f"{name} = {_show(v)}" for name, v in values.items())
    argv = ", ".join([_show(a) for a in cargs] + [f"{k}={_show(v)}" for k, v in ckwargs.items()])
    witness = "\n".join([f"  {label}: a model of the premises where {m.function}, evaluated concretely, differs",
                         f"    inputs: {inputs or '(none)'}",
                         f"    call: {m.function}({argv})"[:2000]]
                        + [f"    {path}: original {_show(x)}, mutant {_show(y)}" for path, x, y, _ in diffs])
    return CallCheck(label, "differs", True, time.perf_counter() - t0, witness, values)


def check_equivalence(m: Mutant, chain: tuple[str, ...] = ("okx",), limit: float = EQUIV_LIMIT_SECONDS,
                      budget: float = EQUIV_BUDGET_SECONDS, whole_loop: bool = False,
                      instances_of: Callable[[str], list[Instance]] | None = None) -> Equivalence:
    """Prove the mutant equivalent to the original on the premises of every obligation instance (of
    every profile of ``chain``) that calls it, or find a distinguishing input (see above).
    ``instances_of(profile name)`` gives the instances (default: the kill run's, which are every
    PROVED obligation of the registry on that profile but the whole-loop one)."""
    if instances_of is None:
        def instances_of(name: str) -> list[Instance]:
            return _instances(name, LIMIT_SECONDS, whole_loop)
    t0 = time.perf_counter()
    out = Equivalence(m)
    mod = MODULES[m.module]
    probe = _Probe()
    mutant = _compile(m, probe)
    symbolic_hits = 0
    unknown: list[str] = []
    unseen: list[tuple[str, Context, tuple[Any, ...], list[Any]]] = []  # term calls that missed the node
    for profile_name in chain:
        for inst in instances_of(profile_name):
            label = f"{profile_name}:{inst.key}"
            rec = _Recording(getattr(mod, m.function))
            ctx = Context(inst.profile, inst.instrument)
            try:
                with _patched(m, rec):
                    inst.obligation.body(ctx)
            except Exception as e:  # Inconclusive included: the instance says nothing
                if rec.calls:
                    out.instances.append(label)
                    unknown.append(f"{label}: the body could not be built ({type(e).__name__}: {e})")
                continue
            if not rec.calls:
                continue
            out.instances.append(label)
            out.obligations.setdefault(inst.obligation.id, inst.obligation.premises)
            premises = [p for p in ctx.premises if isinstance(p, z3.ExprRef)]
            seen: set[Any] = set()
            for call in rec.calls:
                k = _key((call[0], call[1]))
                if k in seen:
                    continue
                seen.add(k)
                if time.perf_counter() - t0 > budget:
                    out.verdict, out.detail = "unknown", f"budget of {budget:.0f}s spent after {out.calls} call(s)"
                    out.seconds = time.perf_counter() - t0
                    return out
                before = probe.hits
                c = _check_call(m, label, ctx, call, mutant, premises, limit)
                if _has_term((call[0], call[1])):
                    if probe.hits > before:
                        symbolic_hits += 1
                    elif len(unseen) < CONCRETE_SAMPLES:
                        unseen.append((label, ctx, call, premises))
                out.calls += 1
                out.solver_calls += c.solver
                if c.verdict == "differs":
                    out.verdict, out.witness, out.model = "differs", c.detail, c.model
                    out.seconds = time.perf_counter() - t0
                    return out
                if c.verdict == "unknown":
                    unknown.append(c.detail)
    out.seconds = time.perf_counter() - t0
    if unknown:
        out.detail = "; ".join(unknown[:3]) + (f" (and {len(unknown) - 3} more)" if len(unknown) > 3 else "")
    elif not out.instances:
        out.detail = f"no obligation on {', '.join(chain)} calls {m.function}"
    elif not symbolic_hits:
        # The solver never saw the mutated node.  Evaluate some of the calls at a model of their
        # obligation's premises, concretely: the node may run there (a concrete branch).
        for label, ctx, call, premises in unseen:
            c = _sample_call(m, label, ctx, call, mutant, premises, limit)
            out.seconds = time.perf_counter() - t0
            if c is not None:
                out.verdict, out.witness, out.model = "differs", c.detail, c.model
                return out
        out.detail = ("the mutated code was never evaluated on Z3 terms (it runs only on concrete values, "
                      "or on none of the obligations' calls), so the solver has not seen it"
                      + (f"; {len(unseen)} call(s) evaluated at a model of their premises agree" if unseen else ""))
    else:
        out.verdict = "equivalent"
    return out


# ---------------------------------------------------------------- helpers for test modules

def params(mutants: list[Mutant], holes: dict[str, str], undecided: dict[str, str] | None = None) -> list[Any]:
    """pytest params of every mutant.  Known holes are strict xfails that expect
    :class:`MutantIsAHole` (the solver showed the survivor to differ from the original); listed
    ``undecided`` survivors are strict xfails that expect :class:`MutantIsUndecided` (the solver
    could not decide it).  A listed mutant that gets killed, is proved equivalent or changes
    category fails the run.  There is no list of equivalent mutants: the solver proves them."""
    undecided = undecided or {}
    out = []
    for m in mutants:
        marks = []
        if m.key in holes:
            marks = [pytest.mark.xfail(strict=True, raises=MutantIsAHole, reason=f"HOLE: {holes[m.key]}")]
        elif m.key in undecided:
            marks = [pytest.mark.xfail(strict=True, raises=MutantIsUndecided, reason=f"UNDECIDED: {undecided[m.key]}")]
        out.append(pytest.param(m, id=m.key, marks=marks))
    return out


def assert_killed(m: Mutant, chain: tuple[str, ...] = ("okx",), holes: dict[str, str] | None = None) -> Outcome:
    out = run_mutant(m, chain=chain, retry=m.key not in (holes or {}))
    assert out.killed_by, (f"mutant survived every obligation on {', '.join(chain)}: {m.key}\n"
                           + "\n".join(out.others))
    assert "replay through the concrete reference: confirmed" in out.report
    assert "claim: " in out.report
    return out


def classify(m: Mutant, chain: tuple[str, ...] = ("okx",), holes: dict[str, str] | None = None,
             kill: bool = True, equiv_limit: float = EQUIV_LIMIT_SECONDS,
             equiv_budget: float = EQUIV_BUDGET_SECONDS) -> Outcome:
    """Kill the mutant (:func:`run_mutant`); if no obligation does, check it for equivalence
    (:func:`check_equivalence`).  ``kill=False`` skips the kill attempt (for re-checking known
    survivors cheaply; an equivalent mutant cannot be killed, so its verdict is the same)."""
    out = run_mutant(m, chain=chain, retry=m.key not in (holes or {})) if kill else Outcome(m)
    if not out.killed_by:
        out.equivalence = check_equivalence(m, chain, limit=equiv_limit, budget=equiv_budget)
        out.seconds += out.equivalence.seconds
    return out


def status(out: Outcome) -> str:
    """killed | equivalent | differs | unknown"""
    if out.killed_by:
        return "killed"
    return out.equivalence.verdict if out.equivalence else "unknown"


def assert_caught(m: Mutant, chain: tuple[str, ...] = ("okx",), holes: dict[str, str] | None = None) -> Outcome:
    """The mutant is killed by an obligation (with a confirmed counterexample) or proved equivalent
    by the solver; a survivor that differs raises :class:`MutantIsAHole`, an undecided one
    :class:`MutantIsUndecided` (both AssertionErrors: the test fails unless the mutant is listed)."""
    out = classify(m, chain, holes)
    if out.killed_by:
        assert "replay through the concrete reference: confirmed" in out.report
        assert "claim: " in out.report
        return out
    eq = out.equivalence
    assert eq is not None
    msg = (f"mutant survived every obligation on {', '.join(chain)}: {m.key}\n" + "\n".join(out.others)
           + "\nequivalence check: " + eq.summary())
    if eq.verdict == "equivalent":
        return out
    if eq.verdict == "differs":
        raise MutantIsAHole(msg)
    raise MutantIsUndecided(msg)


def check_lists(mutants: list[Mutant], holes: dict[str, str], undecided: dict[str, str] | None = None) -> None:
    """The listed survivors name existing mutants, no mutant is listed twice, keys are unique."""
    undecided = undecided or {}
    keys = {m.key for m in mutants}
    stale = sorted((set(holes) | set(undecided)) - keys)
    assert not stale, f"entries that no longer match a generated mutant: {stale}"
    assert not set(holes) & set(undecided)
    assert len(keys) == len(mutants), "mutant keys must be unique"


def main(argv: list[str], mutants: list[Mutant], holes: dict[str, str], chain: tuple[str, ...],
         undecided: dict[str, str] | None = None) -> int:
    """Script mode: print the kill table and its exact score.

    ``--only SUBSTRING`` (repeatable: any of them) filters by key, ``--equivalence-only`` skips the
    kill attempts (for re-checking survivors), ``--equiv-limit SECONDS`` sets the time limit of each
    equivalence check and ``--equiv-budget SECONDS`` a mutant's in all, ``-v`` shows counterexamples."""
    only = [argv[i + 1] for i, a in enumerate(argv) if a == "--only"]
    equiv_limit = float(argv[argv.index("--equiv-limit") + 1]) if "--equiv-limit" in argv else EQUIV_LIMIT_SECONDS
    equiv_budget = float(argv[argv.index("--equiv-budget") + 1]) if "--equiv-budget" in argv else EQUIV_BUDGET_SECONDS
    kill = "--equivalence-only" not in argv
    chosen = [m for m in mutants if not only or any(o in m.key for o in only)]
    undecided = undecided or {}
    print(f"{len(chosen)} mutants ({len(mutants)} generated, {len(holes)} known holes, {len(undecided)} listed undecided)"
          + ("" if kill else "; equivalence checks only, no kill attempts"))
    t0 = time.perf_counter()
    counts = {"killed": 0, "equivalent": 0, "differs": 0, "unknown": 0}
    unexpected = 0
    for m in chosen:
        out = classify(m, chain, {**holes, **undecided}, kill=kill, equiv_limit=equiv_limit, equiv_budget=equiv_budget)
        st = status(out)
        counts[st] += 1
        listed = {"differs": m.key in holes, "unknown": m.key in undecided}.get(st, False)
        stale = st not in ("differs", "unknown") and (m.key in holes or m.key in undecided) or (
            st == "differs" and m.key in undecided) or (st == "unknown" and m.key in holes)
        unexpected += (st in ("differs", "unknown") and not listed) or stale
        label = {"killed": "killed", "equivalent": "EQUIV", "differs": "HOLE" if listed else "SURVIVED",
                 "unknown": "UNDECIDED" if listed else "UNKNOWN"}[st]
        if stale:
            label += "!"  # listed as a hole / undecided, and it is not (any more)
        print(f"{label:8s} {m.key}", flush=True)
        if out.killed_by:
            print(f"         by {out.killed_by} in {out.kill_seconds:.1f}s ({out.tried} tried, {out.seconds:.1f}s in all)")
        else:
            eq = out.equivalence
            assert eq is not None
            print(f"         no kill ({out.tried} tried); equivalence: {eq.verdict} over {eq.calls} call(s) "
                  f"({eq.solver_calls} by the solver) in {len(eq.instances)} instance(s), {eq.seconds:.1f}s "
                  f"({out.seconds:.1f}s in all)", flush=True)
            if eq.verdict == "equivalent":
                print(textwrap.indent("\n".join(f"{k}: {v}" for k, v in eq.obligations.items()), "           premises "))
            elif eq.verdict == "differs":
                print(textwrap.indent(eq.witness, "           | "))
            else:
                print(textwrap.indent(eq.detail, "           ? "))
            if m.key in holes or m.key in undecided:
                print(f"           listed: {holes.get(m.key) or undecided[m.key]}")
        if "-v" in argv and out.report:
            print(textwrap.indent(out.report, "           | "))
        if not out.killed_by and out.others:
            print(textwrap.indent("\n".join(out.others), "           ~ "))
    n, k, e, u = len(chosen), counts["killed"], counts["equivalent"], counts["unknown"]
    print(f"total {time.perf_counter() - t0:.1f}s; {k} killed, {e} proved equivalent, {counts['differs']} holes "
          f"(differ from the original), {u} unknown; {unexpected} unexpected")
    if kill and n - e:
        exact = "exact" if not u else f"a lower bound: {u} unknown counted as not equivalent"
        print(f"kill score: {k}/{n - e} = {100 * k / (n - e):.1f}% of non-equivalent mutants ({exact})")
    return 1 if unexpected else 0
