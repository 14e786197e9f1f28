"""A verdict cache for solver queries, keyed by the exact query.

A key is the SHA-256 of the query's SMT-LIB text (the solver's assertions, ``Solver.sexpr()``),
the Z3 version, the random seed and the time limit.  Two kinds of entries exist:

* ``unsat`` -- stored only when the solver answered ``unsat`` to a question whose *goal* is
  ``unsat`` (premises AND NOT claim, a case split's exhaustiveness, a path exploration's "no input
  outside the paths").  A hit skips the solver: the same text, the same solver, the same answer.
  ``unknown`` and ``sat`` are never stored as verdicts.
* ``witness`` -- for a question whose answer is used as a *model* (the vacuity check, the path
  exploration's next input): the values of the named variables.  A hit is never trusted as it
  stands: the values are substituted into the assertions and the result must simplify to
  ``true`` (a certificate checked on every use); otherwise the solver is asked.

Any change of an obligation (a reference function, a premise, a claim) changes the query text and
so the key: a changed obligation is a cache miss and is proved again, never a stale pass.

Location: ``$BACKSTOP_CACHE``, else ``$XDG_CACHE_HOME/backstop/proofs``, else
``~/.cache/backstop/proofs`` -- never inside the checkout.  ``BACKSTOP_NO_CACHE=1`` (or
``backstop prove --no-cache``) disables it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = ["cache_dir", "enabled", "set_enabled", "query_key", "has_unsat", "put_unsat",
           "get_witness", "put_witness", "lookup", "solver_text", "model_constants", "witness_holds", "stats", "reset_stats"]

_ENABLED: bool | None = None   # None: read BACKSTOP_NO_CACHE
_STATS = {"hits": 0, "misses": 0, "stores": 0}


def cache_dir() -> Path:
    env = os.environ.get("BACKSTOP_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "backstop" / "proofs"


def enabled() -> bool:
    if _ENABLED is not None:
        return _ENABLED
    return os.environ.get("BACKSTOP_NO_CACHE", "") not in ("1", "true", "yes")


def set_enabled(on: bool | None) -> None:
    """``True``/``False`` override the environment; ``None`` reads it again."""
    global _ENABLED
    _ENABLED = on


def stats() -> dict[str, int]:
    return dict(_STATS)


def reset_stats() -> None:
    for k in _STATS:
        _STATS[k] = 0


def _z3_version() -> str:
    import z3
    version: str = z3.get_version_string()  # z3 is untyped (Any)
    return version


def query_key(text: str, *, seed: int, limit: Any, kind: str = "") -> str:
    h = hashlib.sha256()
    h.update(f"backstop-proof-cache/1\nz3 {_z3_version()}\nseed {seed}\nlimit {limit}\nkind {kind}\n".encode())
    h.update(text.encode())
    return h.hexdigest()


def _path(key: str) -> Path:
    return cache_dir() / key[:2] / key


def _write(key: str, body: str) -> None:
    p = _path(key)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, p)   # atomic: a concurrent reader sees the whole entry or none
        _STATS["stores"] += 1
    except OSError:
        pass  # a cache that cannot be written only costs time


def _read(key: str) -> str | None:
    try:
        return _path(key).read_text(encoding="utf-8")
    except OSError:
        return None


def lookup(key: str) -> tuple[str, Any] | None:
    """``("unsat", None)``, ``("witness", values)`` (unchecked) or ``None``."""
    if not enabled():
        return None
    body = _read(key)
    if body == "unsat\n":
        _STATS["hits"] += 1
        return "unsat", None
    if body is not None and body.startswith("{"):
        try:
            vals = {k: _dec(v) for k, v in json.loads(body).items()}
        except (ValueError, TypeError, KeyError):
            vals = None
        if vals is not None:
            _STATS["hits"] += 1
            return "witness", vals
    _STATS["misses"] += 1
    return None


def solver_text(assertions: list[Any], ctx: Any) -> str:
    """The SMT-LIB text of ``assertions`` (declarations and asserts, as ``Solver.sexpr()``)."""
    import z3
    s = z3.Solver(ctx=ctx)
    s.add(*assertions)
    text: str = s.sexpr()  # z3 is untyped (Any)
    return text


def has_unsat(key: str) -> bool:
    if not enabled():
        return False
    hit = _read(key) == "unsat\n"
    _STATS["hits" if hit else "misses"] += 1
    return hit


def put_unsat(key: str) -> None:
    if enabled():
        _write(key, "unsat\n")


def _enc(v: Any) -> Any:
    if isinstance(v, bool):
        return {"b": v}
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, Fraction):
        return {"q": f"{v.numerator}/{v.denominator}"}
    raise TypeError(type(v).__name__)


def _dec(d: dict[str, str]) -> Any:
    if "b" in d:
        return bool(d["b"])
    if "i" in d:
        return int(d["i"])
    return Fraction(d["q"])


def get_witness(key: str) -> dict[str, Any] | None:
    """The stored values (unchecked: the caller substitutes them and checks the assertions)."""
    if not enabled():
        return None
    body = _read(key)
    if body is None or not body.startswith("{"):
        _STATS["misses"] += 1
        return None
    try:
        out = {k: _dec(v) for k, v in json.loads(body).items()}
    except (ValueError, TypeError, KeyError):
        _STATS["misses"] += 1
        return None
    _STATS["hits"] += 1
    return out


def put_witness(key: str, values: dict[str, Any]) -> None:
    if not enabled():
        return
    try:
        body = json.dumps({k: _enc(v) for k, v in values.items()}, sort_keys=True)
    except TypeError:
        return
    _write(key, body)


# ---------------------------------------------------------------- witnesses (certificates, checked on use)

def model_constants(model: Any) -> dict[str, Any] | None:
    """The model's value of every constant (0-ary symbol) as int / Fraction / bool; ``None`` when
    the model interprets a function or holds a value that is not rational (nothing is stored)."""
    import z3
    out: dict[str, Any] = {}
    for d in model.decls():
        if d.arity() != 0:
            return None
        v = model[d]
        if z3.is_int_value(v):
            out[f"Int:{d.name()}"] = v.as_long()
        elif z3.is_rational_value(v):
            out[f"Real:{d.name()}"] = Fraction(v.numerator_as_long(), v.denominator_as_long())
        elif z3.is_true(v) or z3.is_false(v):
            out[f"Bool:{d.name()}"] = z3.is_true(v)
        else:
            return None
    return out


def witness_holds(assertions: list[Any], values: dict[str, Any], ctx: Any) -> Any:
    """Substitute ``values`` (from :func:`model_constants`) into ``assertions``; returns a Z3 model
    of them built from the values when every assertion simplifies to ``true``, else ``None``."""
    import z3
    pairs = []
    s = z3.Solver(ctx=ctx)
    try:
        for k, v in values.items():
            sort, name = k.split(":", 1)
            if sort == "Int":
                pairs.append((z3.Int(name, ctx), z3.IntVal(v, ctx)))
            elif sort == "Real":
                pairs.append((z3.Real(name, ctx), z3.RealVal(v, ctx) if not isinstance(v, Fraction)
                              else z3.Q(v.numerator, v.denominator, ctx)))
            else:
                pairs.append((z3.Bool(name, ctx), z3.BoolVal(v, ctx)))
        for a in assertions:
            if not z3.is_true(z3.simplify(z3.substitute(a, *pairs) if pairs else a)):
                return None
        # a model that is exactly these values (the check is trivial: every constant is fixed)
        s.add(*[c == v for c, v in pairs])
        if s.check() != z3.sat:
            return None
        return s.model()
    except (z3.Z3Exception, ValueError, TypeError):
        return None
