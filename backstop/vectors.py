"""Test vectors by region (issue 11): ``backstop vectors --out DIR`` and ``backstop vectors --check DIR``.

Layout (``/work/notes/layout.md``, documented in README "Test vectors")::

    DIR/v1/<profile>/<operation>/<rule>/<region-id>/<case>.json
    DIR/v1/index.json

Each file is one JSON object: ``format`` (``backstop-vector/1``), ``profile``, ``operation``, ``rules``,
``region`` (``id``, ``description``, ``constraints``), ``request`` (a ``backstop eval`` request) and
either ``response`` (exactly what ``backstop eval`` answers) or ``error`` (``field``, ``rule``, ``type``:
the refusal, and no response).

Three kinds of vector:

* **region** vectors: for every rule function of the operations in
  :data:`backstop.proofs.regions.OPERATIONS_COVERED`, every instrument and side, one witness per
  feasible region of the function's own branch conditions (``backstop.proofs.regions``);
* **invalid** vectors: inputs the oracle refuses (a JSON float, a bool, a zero size, a non-positive
  price, a wrong currency, an unknown key, an unknown instrument, a size off the lot grid, above the
  last tier...), each with the field, rule and error type of the refusal;
* **example** and **scenario** vectors: the shipped ``examples/eval-<profile>-*.json`` requests and
  the scenarios ``examples/*.toml`` through the eval ``transition`` operation (worked cases next to
  the region witnesses; the region witnesses are what the coverage audit counts).

The output is deterministic: sorted keys, stable region ids (a hash of the region's constraints)
and case names, files written in sorted order.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from backstop.reference.errors import BackstopError, InvalidInput
from backstop.reference.profile import Profile, load_profile, profile_names

__all__ = ["FORMAT", "generate", "check", "region_vectors", "invalid_vectors", "example_vectors",
           "register_cli", "REPO"]

FORMAT = "backstop-vector/1"
REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def _eval(req: dict[str, Any]) -> dict[str, Any]:
    from backstop.inputs import evaluate
    return evaluate(copy.deepcopy(req))


def _refusal(req: dict[str, Any]) -> dict[str, str] | None:
    try:
        _eval(req)
    except InvalidInput as e:
        return {"field": e.field, "rule": e.rule, "type": type(e).__name__}
    except BackstopError as e:  # pragma: no cover - every refusal of eval is an InvalidInput
        return {"field": "", "rule": "", "type": type(e).__name__}
    return None


def _vector(profile: str, operation: str, rules: list[str], rid: str, description: str,
            constraints: list[str], request: dict[str, Any], *, invalid: bool = False) -> dict[str, Any]:
    v: dict[str, Any] = {"format": FORMAT, "profile": profile, "operation": operation, "rules": rules,
                         "region": {"id": rid, "description": description, "constraints": constraints},
                         "request": request}
    if invalid:
        err = _refusal(request)
        if err is None:
            raise AssertionError(f"invalid vector {rid} of {profile} was answered")
        v["error"] = err
    else:
        v["response"] = _eval(request)
    return v


# ---------------------------------------------------------------- region vectors

def region_vectors(profile: Profile, *, rules: set[str] | None = None, instruments: set[str] | None = None,
                   stats: list[Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(relative path, vector)`` for one witness of every feasible region of every rule function."""
    from backstop.proofs import regions as RG
    out = []
    for rr in RG.regions_for(profile, rules=rules, instruments=instruments):
        if stats is not None:
            stats.append(rr)
        for g in rr.regions:
            rid = g.id
            words = f"{rr.function} on {rr.instrument}: {g.description} (witness: {g.readable})"
            try:
                v = _vector(profile.name, rr.operation, [rr.rule], rid, words, list(g.constraints), g.request,
                            invalid=g.refused)
            except InvalidInput as e:  # a witness outside eval's domain: a defect of the spec, reported
                rr.note = (rr.note + "; " if rr.note else "") + f"witness {rid} refused by eval: {e}"
                rr.complete = False
                continue
            except AssertionError as e:  # a refusal region whose witness eval answered: a defect, reported
                rr.note = (rr.note + "; " if rr.note else "") + str(e)
                rr.complete = False
                continue
            out.append((f"{profile.name}/{rr.operation}/{rr.rule}/{rid}/witness.json", v))
    return out


# ---------------------------------------------------------------- invalid inputs

def _base_margin(profile: Profile) -> tuple[dict[str, Any], Any]:
    inst = sorted(profile.instruments.values(), key=lambda i: (not i.is_linear, i.id))[0]
    lot = inst.lot_size
    from backstop.reference.types import format_exact as fx
    req = {"operation": "margin", "profile": profile.name,
           "positions": [{"instrument": inst.id, "side": "long", "size": fx(lot * 100), "entry_price": "30000",
                          "margin": 10 ** inst.settle_currency.decimals * 1000}],
           "mark_prices": {inst.id: "29000"}}
    return req, inst


def invalid_vectors(profile: Profile) -> list[tuple[str, dict[str, Any]]]:
    """Requests the oracle refuses, each with the refusal's field, rule and type."""
    from backstop.reference.types import format_exact as fx
    base, inst = _base_margin(profile)
    other = next((c for c in sorted(profile.currencies) if c != inst.settle_currency.code), None)
    cases: list[tuple[str, str, Any]] = []

    def pos(**kw: Any) -> dict[str, Any]:
        r = copy.deepcopy(base)
        r["positions"][0].update(kw)
        return r

    def top(**kw: Any) -> dict[str, Any]:
        r = copy.deepcopy(base)
        r.update(kw)
        return r

    cases += [
        ("float-size", "a JSON float as the size", pos(size=0.5)),
        ("float-entry", "a JSON float as the entry price", pos(entry_price=30000.0)),
        ("float-mark", "a JSON float as the mark price", top(mark_prices={inst.id: 2.9e4})),
        ("bool-size", "a bool as the size", pos(size=True)),
        ("bool-margin", "a bool as the margin", pos(margin=False)),
        ("zero-size", "a zero size", pos(size="0")),
        ("negative-size", "a negative size", pos(size="-1")),
        ("zero-entry", "a zero entry price", pos(entry_price="0")),
        ("negative-mark", "a negative mark price", top(mark_prices={inst.id: "-5"})),
        ("zero-mark", "a zero mark price", top(mark_prices={inst.id: "0"})),
        ("off-lot", "a size off the lot grid", pos(size=fx(inst.lot_size * 3 / 2))),
        ("above-last-tier", "a size above the last tier's cap", pos(size=fx(_too_big(inst)))),
        ("unknown-key-top", "an unknown top-level key", top(marks={inst.id: "29000"})),
        ("unknown-key-position", "an unknown position key", pos(lev="10")),
        ("unknown-instrument", "an instrument the profile lacks", pos(instrument="NOPE-SWAP")),
        ("unknown-operation", "an operation eval does not know", top(operation="margins")),
        ("unknown-profile", "a profile that is not shipped", top(profile="nope")),
        ("bad-side", "a side that is neither long nor short", pos(side="buy")),
        ("margin-and-leverage", "both a margin and a leverage", pos(leverage="10")),
        ("fractional-margin", "a margin that is not a whole number of smallest units", pos(margin="1/2")),
        ("negative-margin", "a negative margin", pos(margin=-1)),
        ("missing-mark", "no mark price for the position's instrument", top(mark_prices={})),
        ("empty-positions", "no positions", top(positions=[])),
        ("nan-string", "NaN as a number", pos(entry_price="NaN")),
    ]
    if other is not None:
        cases.append(("wrong-currency", f"a margin in {other}, not {inst.settle_currency.code}",
                      pos(margin=f"1000 {other}")))
    eng = {"operation": "engine", "profile": profile.name, "instrument": inst.id, "side": "long",
           "size": fx(inst.lot_size * 10), "takeover_price": "27000", "fill_price": "26000"}
    cases += [
        ("engine-zero-size", "an engine close of zero contracts", {**eng, "size": "0"}),
        ("engine-book-and-fill", "both a book and a fill price", {**eng, "book": [{"price": "1", "size": "1"}]}),
        ("engine-float-price", "a JSON float as the takeover price", {**eng, "takeover_price": 27000.5}),
    ]
    out = []
    for name, words, req in cases:
        err = _refusal(req)
        if err is None:
            raise AssertionError(f"invalid case {name} was answered by eval")
        op = req.get("operation", "margin") if isinstance(req.get("operation"), str) else "margin"
        op = op if op in ("margin", "engine") else "margin"
        rule = err["rule"] or "INPUT"
        rid = f"invalid-{name}"
        v = _vector(profile.name, op, [err["rule"]] if err["rule"] else [], rid, f"refused: {words}",
                    [f"refused at {err['field']}"], req, invalid=True)
        out.append((f"{profile.name}/{op}/{rule}/{rid}/refused.json", v))
    return out


def _too_big(inst: Any) -> Any:
    table = inst.tier_table
    cap = table.tiers[-1].cap
    if cap is None:  # an unbounded table: nothing is too big; a size off the table cannot be built
        return inst.lot_size * 10 ** 12
    # size basis: one lot above the cap; notional: far above at the price 30000
    return (cap + inst.lot_size) if table.basis.value == "size" else inst.lot_size * 10 ** 12


# ---------------------------------------------------------------- examples and scenarios

_EXAMPLE_RULES = {"cross": ["LIQ-008", "LIQ-009", "LIQ-010"], "cross_liquidation": ["LIQ-008", "LIQ-009"],
                  "fund_drawdown": ["ADL-001", "ADL-002", "ADL-003"], "fund_window": ["INS-002", "INS-003", "INS-008"],
                  "adl": ["ADL-004", "ADL-005", "ADL-006", "ADL-007", "ADL-008", "ADL-009"],
                  "transition": ["TRN-001", "TRN-002"], "margin": ["MRG-001"], "liquidation": ["LIQ-004"],
                  "engine": ["ENG-001"]}


def example_vectors(profile: Profile) -> list[tuple[str, dict[str, Any]]]:
    """The shipped eval examples of the profile and its scenarios, as transition vectors."""
    out = []
    for f in sorted(EXAMPLES.glob(f"eval-{profile.name}-*.json")):
        req = json.loads(f.read_text(encoding="utf-8"))
        op = req.get("operation", "margin")
        name = f.stem[len(f"eval-{profile.name}-"):]
        rule = _EXAMPLE_RULES[op][0]
        rid = f"example-{name}"
        v = _vector(profile.name, op, _EXAMPLE_RULES[op], rid, f"the shipped example {f.name}",
                    ["an example request, not a region witness"], req)
        out.append((f"{profile.name}/{op}/{rule}/{rid}/{name}.json", v))
    for f in sorted(EXAMPLES.glob("*.toml")):
        data = tomllib.loads(f.read_text(encoding="utf-8"))
        if data.get("profile") != profile.name:
            continue
        req = {"operation": "transition", "profile": profile.name, "scenario": data}
        rid = f"scenario-{f.stem}"
        v = _vector(profile.name, "transition", ["TRN-001", "TRN-002", "INV-024", "INV-025"], rid,
                    f"the scenario {f.name}: {data.get('description', '')}".strip(),
                    ["every event of the scenario, in order, through the step function"], req)
        out.append((f"{profile.name}/transition/TRN-001/{rid}/{f.stem}.json", v))
    return out


# ---------------------------------------------------------------- writing, the index, the audit

def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def generate(out: Path, profiles: list[str], *, rules: set[str] | None = None,
             instruments: set[str] | None = None, examples: bool = True,
             invalid: bool = True, stats: list[Any] | None = None) -> dict[str, Any]:
    """Write every vector of ``profiles`` under ``out/v1`` and the index; returns the index."""
    root = Path(out) / "v1"
    files: dict[str, dict[str, Any]] = {}
    for name in profiles:
        profile = load_profile(name)
        items = region_vectors(profile, rules=rules, instruments=instruments, stats=stats)
        if invalid:
            items += invalid_vectors(profile)
        if examples:
            items += example_vectors(profile)
        for rel, v in items:
            if rel in files:
                raise AssertionError(f"two vectors at {rel}")
            files[rel] = v
    for rel in sorted(files):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(_dump(files[rel]), encoding="utf-8")
    index = {"format": FORMAT, "profiles": sorted(profiles), "cases": [
        {"path": rel, "profile": v["profile"], "operation": v["operation"], "rules": v["rules"],
         "region": v["region"]["id"], "kind": "invalid" if "error" in v else "valid"}
        for rel, v in sorted(files.items())]}
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.json").write_text(_dump(index), encoding="utf-8")
    return index


def _not_enumerated(rules: set[str] | None, profiles: list[str]) -> list[tuple[str, str]]:
    """(what, why) of every eval operation and rule function whose regions are not enumerated on one
    of ``profiles``: each is a coverage failure of the audit (C69), never a silent gap."""
    from backstop.inputs import OPERATIONS
    from backstop.proofs import regions as RG
    loaded = [load_profile(n) for n in profiles]

    def where(key: str) -> list[str]:
        on = RG.NOT_ON.get(key)
        return [p.name for p in loaded if on is None or on(p)]

    out = []
    for op in OPERATIONS:
        if op in RG.OPERATIONS_COVERED and op not in RG.NOT_COVERED_WHY:
            continue
        if rules and not rules & set(_EXAMPLE_RULES.get(op, [])):
            continue
        names = where(op)
        if names:
            out.append((f"operation {op} on {', '.join(names)}", RG.NOT_COVERED_WHY.get(op, "no region enumeration")))
    for rule, why in sorted(RG.NOT_ENUMERATED.items()):
        names = where(rule)
        if names and (not rules or rule in rules):
            out.append((f"{rule} on {', '.join(names)}", why))
    return out


def check(out: Path, profiles: list[str], *, rules: set[str] | None = None,
          instruments: set[str] | None = None, stats: list[Any] | None = None,
          enumerated: list[Any] | None = None) -> tuple[bool, list[str]]:
    """The coverage audit: re-enumerates the regions of every rule function from the code and fails
    when a feasible region has no vector in ``out``, when an enumeration did not finish (a solver
    ``unknown`` is neither feasible nor infeasible: a coverage failure, C68), or when an eval
    operation's regions are not enumerated at all (C69).  Returns ``(ok, report lines)``: region
    counts per rule and profile (regions found, with a vector, enumerations unfinished), then the
    problems.  ``enumerated``: the regions this process has just enumerated for ``profiles`` (what
    ``generate`` collected in its ``stats``), audited instead of enumerating them again (``--out DIR
    --check DIR``: one enumeration for both)."""
    from backstop.proofs import regions as RG
    root = Path(out) / "v1"
    lines: list[str] = []
    problems: list[str] = []
    counts: dict[tuple[str, str, str], list[int]] = {}
    for name in profiles:
        profile = load_profile(name)
        found = ([rr for rr in enumerated if rr.profile == profile.name] if enumerated is not None
                 else RG.regions_for(profile, rules=rules, instruments=instruments))
        for rr in found:
            if stats is not None:
                stats.append(rr)
            c = counts.setdefault((name, rr.operation, rr.rule), [0, 0, 0])
            for g in rr.regions:
                c[0] += 1
                d = root / name / rr.operation / rr.rule / g.id
                if not any(d.glob("*.json")):
                    problems.append(f"no vector: {name}/{rr.operation}/{rr.rule}/{g.id}: {g.description}")
                else:
                    c[1] += 1
            if not rr.complete:
                c[2] += 1
                problems.append(f"enumeration incomplete: {name}/{rr.rule} {rr.function} {rr.instrument} {rr.side}: {rr.note}")
    lines.append(f"{'profile':8}  {'operation':17}  {'rule':8}  {'regions':>7}  {'covered':>7}  {'unfinished':>10}")
    for (p, op, rule), (n, k, u) in sorted(counts.items()):
        lines.append(f"{p:8}  {op:17}  {rule:8}  {n:7d}  {k:7d}  {u:10d}")
    total = sum(c[0] for c in counts.values())
    covered = sum(c[1] for c in counts.values())
    unfinished = sum(c[2] for c in counts.values())
    lines.append(f"{total} feasible region(s), {covered} with a vector "
                 f"({100 * covered // total if total else 100} %), {unfinished} enumeration(s) unfinished")
    for what, why in _not_enumerated(rules, profiles):
        problems.append(f"not enumerated: {what}: {why}")
    lines += problems
    return not problems, lines


# ---------------------------------------------------------------- the command line

def _cmd(args: argparse.Namespace) -> int:
    profiles = args.profile or profile_names()
    rules = set(args.rule) if args.rule else None
    t0 = time.perf_counter()
    try:
        if args.check and not args.out:
            ok, lines = check(Path(args.check), profiles, rules=rules)
            print("\n".join(lines))
            print(f"coverage {'PASSED' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s")
            return 0 if ok else 1
        if not args.out:
            print("error: --out DIR or --check DIR is required", file=sys.stderr)
            return 2
        stats: list[Any] = []
        index = generate(Path(args.out), profiles, rules=rules, stats=stats)
    except InvalidInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = len(index["cases"])
    bad = sum(1 for c in index["cases"] if c["kind"] == "invalid")
    regions = sum(len(r.regions) for r in stats)
    refusals = sum(g.refused for r in stats for g in r.regions)  # region witnesses eval refuses (C77): invalid too
    bad -= refusals
    incomplete = [r for r in stats if not r.complete]
    print(f"wrote {n} vector(s) to {Path(args.out) / 'v1'} ({regions} region witnesses"
          f"{f' ({refusals} of them refusals)' if refusals else ''}, {bad} invalid, "
          f"{n - regions - bad} examples and scenarios) for {', '.join(profiles)} in {time.perf_counter() - t0:.1f} s")
    if args.check:  # audit DIR against the regions just enumerated (one enumeration for both)
        t1 = time.perf_counter()
        ok, lines = check(Path(args.check), profiles, rules=rules, enumerated=stats)
        print("\n".join(lines))
        print(f"coverage {'PASSED' if ok else 'FAILED'} in {time.perf_counter() - t1:.1f} s")
        return 0 if ok else 1
    for r in incomplete:
        print(f"warning: enumeration incomplete: {r.profile}/{r.rule} {r.function} {r.instrument} {r.side}: {r.note}")
    return 0  # the writing succeeded; --check is the gate (it fails on an incomplete enumeration too)


def register_cli(sub: Any) -> None:
    p = sub.add_parser("vectors", help="write test vectors by region (and audit their coverage)",
                       description="Write language-neutral JSON test vectors: one witness per feasible region of "
                                   "every rule function, invalid inputs with the expected error, the examples and "
                                   "scenarios; or (--check) audit that every feasible region has a vector.")
    p.add_argument("--out", metavar="DIR", help="write the vectors under DIR/v1")
    p.add_argument("--check", metavar="DIR", help="audit DIR: fail when a feasible region has no vector (with --out: "
                                                  "audit the regions just enumerated, not a second enumeration)")
    p.add_argument("--profile", action="append", metavar="NAME", help="a shipped profile (repeatable; default: all)")
    p.add_argument("--rule", action="append", metavar="ID", help="only the region vectors of this rule (repeatable)")
    p.set_defaults(func=_cmd)
