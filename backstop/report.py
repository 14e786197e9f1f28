"""Reports of a proof run: the console table, the JSON records, JUnit XML, and the audit report.

Every function here is pure: it takes the results of a run (pairs of
:class:`~backstop.proofs.registry.Instance` and :class:`~backstop.proofs.kernel.Result`), the
traceability (:class:`~backstop.trace.Trace`) and a :class:`Meta`, and returns a string or plain
data.  Running the solver and writing files is the job of :mod:`backstop.cli`.
"""

from __future__ import annotations

import hashlib
import html
import re
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from backstop.jsonio import to_json
from backstop.proofs.kernel import Result, format_counterexample
from backstop.proofs.registry import Instance, Obligation
from backstop.trace import Trace

__all__ = [
    "Meta", "Run", "Totals", "totals", "progress_line", "summary_table", "totals_line",
    "failure_text", "proof_records", "junit_xml", "rule_rows", "audit_failed", "audit_problems",
    "ScenarioOutcome", "AuditScope", "profile_assumptions", "out_of_scope_rows", "proof_limits", "sha256_hex",
    "inline_svg", "render_markdown", "audit_json", "audit_junit", "audit_markdown", "audit_html",
]

Run = tuple[Instance, Result]


@dataclass(frozen=True)
class Meta:
    """What identifies a run: the profile, the solver, the seed, the code."""

    profile: str
    profile_title: str = ""
    profile_sources: tuple[str, ...] = ()
    z3_version: str = ""
    seed: int = 0
    backstop_version: str = ""
    commit: str = ""  # "" when not known (not a git checkout)
    date_utc: str = ""          # when the report was made, ISO 8601 in UTC
    python: str = ""            # "3.11.7 (CPython)"
    os: str = ""                # platform.platform()
    profile_file: str = ""      # the shipped file (backstop.spec/profiles/okx.toml) or the path given
    profile_sha256: str = ""    # SHA-256 of that file's bytes (for an overlay: of the overlay's text)
    profile_base: str = ""      # for an overlay: "okx (sha256 ...)", the shipped profile it extends
    only: tuple[str, ...] = ()  # a partial run: the --only selection


@dataclass(frozen=True)
class Totals:
    count: int
    proved: int       # ok with verdict "proved"
    witnessed: int    # ok with verdict "counterexample" (sanity obligations that expect one)
    failed: int       # not ok, and not unknown
    unknown: int      # not ok because the solver gave up (never a pass)
    seconds: float
    slowest: Result | None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.unknown == 0


def totals(results: Iterable[Result]) -> Totals:
    rs = list(results)
    proved = sum(1 for r in rs if r.ok and r.verdict == "proved")
    witnessed = sum(1 for r in rs if r.ok and r.verdict != "proved")
    unknown = sum(1 for r in rs if not r.ok and r.verdict == "unknown")
    failed = len(rs) - proved - witnessed - unknown
    slowest = max(rs, key=lambda r: r.seconds) if rs else None
    return Totals(len(rs), proved, witnessed, failed, unknown, sum(r.seconds for r in rs), slowest)


def _status(r: Result) -> str:
    """The verdict as shown to a person: the solver's verdict, with FAIL when it is not ok."""
    return r.verdict if r.ok else f"FAIL {r.verdict}"


# ---------------------------------------------------------------- console

def progress_line(r: Result, n: int | None = None, total: int | None = None) -> str:
    """One finished instance; with ``n`` and ``total``, led by the counter ``[n/total]``."""
    line = f"{_status(r):<20} {r.key:<34} {r.seconds:8.2f}s"
    if n is None or not total:
        return line
    return f"[{n:>{len(str(total))}}/{total}] {line}"


def summary_table(results: Sequence[Result]) -> str:
    head = ("ID", "instrument", "verdict", "time", "limit")
    rows = [(r.obligation_id, r.instrument or "-", _status(r), f"{r.seconds:.2f}s", f"{r.limit_seconds:g}s")
            for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    right = {3, 4}

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def totals_line(t: Totals) -> str:
    parts = [f"{t.count} obligation instance(s): {t.proved} proved"]
    if t.witnessed:
        parts.append(f"{t.witnessed} witnessed (expected counterexample found and replayed)")
    parts += [f"{t.failed} failed", f"{t.unknown} unknown"]
    s = ", ".join(parts)
    if t.slowest is not None:
        s += f"; slowest {t.slowest.key} {t.slowest.seconds:.2f}s"
    return s + f"; total {t.seconds:.2f}s"


def failure_text(inst: Instance, r: Result) -> str:
    """What a person needs to act on one failure: the scenario, or why there is none."""
    if r.counterexample:
        text = format_counterexample(inst, r)
        if r.ok is False and r.expected == "counterexample":
            text += "\n  (a counterexample was expected here, but it was not confirmed by replay)"
        if r.detail:
            text += f"\n  solver: {r.detail}"
        return text
    ob = inst.obligation
    lines = [f"{r.key}: {ob.title}", f"  verdict: {r.verdict} (expected {r.expected})",
             f"  claim: {ob.statement}", f"  premises: {ob.premises}"]
    if r.verdict == "proved" and r.expected == "counterexample":
        lines.append("  the claim was proved, but this sanity obligation expects the solver to find a witness")
    if r.verdict == "unknown":
        lines.append(f"  the solver gave up within {r.limit_seconds:g}s; unknown is never a pass")
    if r.detail:
        lines.append("  detail: " + r.detail.rstrip().replace("\n", "\n    "))
    return "\n".join(lines)


# ---------------------------------------------------------------- JSON and JUnit

def proof_records(runs: Sequence[Run], meta: Meta) -> list[dict[str, Any]]:
    """One JSON record per obligation instance; exact values as strings."""
    out = []
    for inst, r in runs:
        out.append({
            "id": r.obligation_id,
            "instance": r.key,
            "title": inst.obligation.title,
            "rules": list(r.rules),
            "instrument": r.instrument,
            "verdict": r.verdict,
            "expected": r.expected,
            "ok": r.ok,
            "seconds": round(r.seconds, 4),
            "limit_seconds": r.limit_seconds,
            "counterexample": to_json(r.counterexample) if r.counterexample else None,
            "observed": to_json(r.observed) if r.observed else None,
            "replay": r.replay,
            "detail": r.detail,
            "profile": meta.profile,
            "z3_version": meta.z3_version,
            "seed": meta.seed,
        })
    return out


def junit_xml(runs: Sequence[Run], meta: Meta) -> str:
    """A JUnit XML document: one testsuite, one testcase per obligation instance, a
    ``failure`` element (type = verdict) for every instance that is not ok."""
    t = totals(r for _, r in runs)
    suite = ET.Element("testsuite", {
        "name": f"backstop.proofs[{meta.profile}]",
        "tests": str(t.count), "failures": str(t.failed + t.unknown), "errors": "0", "skipped": "0",
        "time": f"{t.seconds:.3f}",
    })
    props = ET.SubElement(suite, "properties")
    for k, v in (("profile", meta.profile), ("z3_version", meta.z3_version), ("seed", str(meta.seed)),
                 ("backstop_version", meta.backstop_version), ("commit", meta.commit)):
        ET.SubElement(props, "property", {"name": k, "value": v})
    for inst, r in runs:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"backstop.proofs.{meta.profile}.{r.obligation_id}",
            "name": r.key, "time": f"{r.seconds:.3f}",
        })
        if not r.ok:
            fail = ET.SubElement(case, "failure", {
                "type": r.verdict,
                "message": f"{r.key}: {r.verdict} (expected {r.expected})" + (f": {r.detail.splitlines()[0]}" if r.detail else ""),
            })
            fail.text = failure_text(inst, r)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


# ---------------------------------------------------------------- audit: inputs

def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


@dataclass(frozen=True)
class ScenarioOutcome:
    """One scenario of ``audit --scenarios``: what it did, whether its invariants held, its chart."""

    name: str                   # the file's stem
    source: str                 # the file
    events: int                 # events in the file
    processed: int = 0          # events processed before a violation or an error
    liquidations: int = 0
    adl_fills: int = 0
    violation: str = ""         # the first invariant violation
    error: str = ""             # a refused event or a failed write (the run stopped)
    funds: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # summary()["funds"]
    chart_svg: str = ""         # the chart, inlined into the HTML report
    outputs: tuple[str, ...] = ()  # files written, relative to the report's folder
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and not self.violation and self.processed == self.events

    @property
    def verdict(self) -> str:
        if self.error:
            return f"ERROR: {self.error}"
        if self.violation:
            return f"VIOLATED: {self.violation}"
        if self.processed != self.events:
            return f"INCOMPLETE: {self.processed} of {self.events} events"
        return "all hold"


@dataclass(frozen=True)
class AuditScope:
    """What the audit takes as given: assumed profile values and source sentences out of scope."""

    assumptions: tuple[tuple[str, str, str], ...] = ()        # (file, value path, the comment)
    out_of_scope: tuple[tuple[str, str, str, str], ...] = ()  # (row id, where, sentence, reason)


_TABLE_RE = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?$")
_KEY_RE = re.compile(r'^("[^"]*"|\'[^\']*\'|[A-Za-z0-9_.\-]+)\s*=')
_ASSUMED_RE = re.compile(r"\bassum(?:ed|ption|ptions|e)\b", re.I)


def _split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of one TOML line: the first ``#`` outside a string starts the comment."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i].strip(), line[i + 1:].strip()
    return line.strip(), ""


def _has_path(data: Any, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(data, dict) or part.strip("\"'") not in data:
            return False
        data = data[part.strip("\"'")]
    return True


def profile_assumptions(files: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Every value or table a profile file marks as assumed, as ``(file, path, comment)``.

    A profile marks an assumed value with a comment that says so ("an assumption"): on the value's
    own line (``close_fee_rate = "0.0005"  # ...; an assumption, see ...``) or in the comment block
    right above a key or a table (``# ETH rows are an assumption ...`` above ``[tier_tables.ETH]``).
    ``files`` is the profile first, then the shipped profiles it extends (an overlay); a base's
    assumption whose value the overlay sets again is no longer one."""
    out: list[tuple[str, str, str]] = []
    overriding: list[Any] = []
    for label, text in files:
        table, pending = "", []
        found: list[tuple[str, str, str]] = []
        for raw in text.splitlines():
            code, comment = _split_comment(raw)
            if not code:
                if comment:
                    pending.append(comment)
                else:
                    pending = []
                continue
            m = _TABLE_RE.match(code)
            if m:
                table = m.group(1)
                path = table
            else:
                k = _KEY_RE.match(code)
                path = (f"{table}.{k.group(1)}" if table else k.group(1)) if k else ""
            note = " ".join(pending + ([comment] if comment else []))
            pending = []
            if path and _ASSUMED_RE.search(note):
                found.append((label, path, note))
        out += [f for f in found if not any(_has_path(d, f[1]) for d in overriding)]
        try:
            overriding.append(tomllib.loads(text))
        except tomllib.TOMLDecodeError:
            pass
    return out


def out_of_scope_rows(sources_md: str) -> list[tuple[str, str, str, str]]:
    """The rows of ``spec/99-sources.md`` whose "maps to" cell says *out of scope*:
    ``(id, "seed 000, section", sentence, what the cell says)``."""
    rows = []
    seed = ""
    for line in sources_md.splitlines():
        h = re.match(r"^##\s+`?(\d{3})`?", line)
        if h:
            seed = h.group(1)
            continue
        if line.startswith("## "):
            seed = ""
        if not (seed and line.startswith("|")):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.fullmatch(r"\d{3}\.\d+", cells[0]):
            continue
        if "out of scope" in cells[-1].lower():
            rows.append((cells[0], f"seed {seed}, {cells[1]}", cells[2], cells[-1]))
    return rows


def proof_limits(runs: Sequence[Run]) -> list[tuple[Obligation, int]]:
    """Every obligation of the run once (registry order) with its number of instances: its scope
    and premises state the domain the proof covers and nothing beyond."""
    seen: dict[str, tuple[Obligation, int]] = {}
    for inst, _ in runs:
        ob = inst.obligation
        n = seen.get(ob.id, (ob, 0))[1]
        seen[ob.id] = (ob, n + 1)
    return list(seen.values())


# ---------------------------------------------------------------- audit: rows and verdict

@dataclass(frozen=True)
class RuleRow:
    id: str
    title: str
    statement: str
    source: str
    rounding: str
    status: str                 # spec status ("" or "retired")
    spec_at: str                # spec/20-liquidation.md:12
    code: tuple[str, ...]       # "reference/margin.py:30 compute_position_value"
    obligations: tuple[tuple[str, str, tuple[tuple[str, str, bool], ...]], ...]
    #  (obligation id, note, ((instance key, "proved 0.02s", ok), ...))
    tests: tuple[str, ...]      # "tests/unit/test_margin.py:12 test_MRG_001_value": tests naming it specifically
    verdict: str                # "ok" | "failed" | "gap" | "retired"
    body: str = ""              # the rule's Markdown text in spec/
    uncounted: tuple[str, ...] = ()  # tests citing it that cannot cover it (catch-alls, proof runs)


def rule_rows(runs: Sequence[Run], trace: Trace, registry: Mapping[str, Obligation],
              partial: bool = False) -> list[RuleRow]:
    """One row per spec rule, in spec order.  A rule's tests are only those that name it
    specifically (``trace.tests``); tests that cite it among many rules, or that re-run a proof,
    are listed apart (``uncounted``) and never as its tests."""
    by_ob: dict[str, list[Result]] = {}
    for _, r in runs:
        by_ob.setdefault(r.obligation_id, []).append(r)
    gap_ids = {g.split(":", 1)[0] for g in trace.gaps()}
    rows = []
    for rid, rule in trace.rules.items():
        obs = []
        all_ok = True
        for oid in trace.obligations.get(rid, []):
            rs = by_ob.get(oid, [])
            ob = registry.get(oid)
            note = ""
            if not rs:
                if partial:
                    note = "not run (--only)"
                else:
                    note = "not instantiated for this profile"
                    if ob is not None and ob.applies_note:
                        note += f" (applies to {ob.applies_note})"
            all_ok &= all(r.ok for r in rs)
            obs.append((oid, note, tuple((r.key, f"{_status(r)} {r.seconds:.2f}s", r.ok) for r in rs)))
        if rule.retired:
            verdict = "retired"
        elif partial and obs and not any(insts for _, _, insts in obs):
            verdict = "not run"
        elif not all_ok:
            verdict = "failed"
        elif rid in gap_ids:
            verdict = "gap"
        else:
            verdict = "ok"
        rows.append(RuleRow(
            rid, rule.title, rule.statement, rule.source, rule.rounding, rule.status, f"{rule.file}:{rule.line}",
            tuple(f"{c.file}:{c.line} {c.where}" for c in trace.code.get(rid, [])),
            tuple(obs),
            tuple(f"{c.file}:{c.line} {c.where}" for c in trace.tests.get(rid, [])),
            verdict, rule.body,
            tuple(sorted({f"{c.file}:{c.line} {c.where} ({c.kind})" for c in trace.uncounted.get(rid, [])})),
        ))
    return rows


def audit_problems(runs: Sequence[Run], trace: Trace, scenarios: Sequence[ScenarioOutcome] = (),
                   errors: Sequence[str] = ()) -> list[str]:
    """Why the audit fails, one phrase per kind; empty when it passes."""
    out = []
    bad = sum(1 for _, r in runs if not r.ok)
    if bad:
        out.append(f"{bad} obligation instance(s) not ok")
    gaps = len(trace.gaps())
    if gaps:
        out.append(f"{gaps} traceability gap(s)")
    sc = sum(1 for s in scenarios if not s.ok)
    if sc:
        out.append(f"{sc} scenario(s) not ok")
    if errors:
        out.append(f"{len(errors)} error(s)")
    return out


def audit_failed(runs: Sequence[Run], trace: Trace, scenarios: Sequence[ScenarioOutcome] = (),
                 errors: Sequence[str] = ()) -> bool:
    """True when the audit must fail: an obligation instance is not ok, a traceability gap, a
    scenario that violates an invariant or did not finish, or any error of the run."""
    return bool(audit_problems(runs, trace, scenarios, errors))


def _verdict_word(failed: bool) -> str:
    return "FAILED" if failed else "PASSED"


def _verdict_line(runs: Sequence[Run], trace: Trace, scenarios: Sequence[ScenarioOutcome],
                  errors: Sequence[str], meta: Meta) -> str:
    probs = audit_problems(runs, trace, scenarios, errors)
    s = _verdict_word(bool(probs)) + (": " + ", ".join(probs) if probs else "")
    if meta.only:
        s += f" (partial run: --only {' '.join(meta.only)})"
    return s


def _header_facts(meta: Meta, t: Totals, trace: Trace, scenarios: Sequence[ScenarioOutcome] = ()) -> list[tuple[str, str]]:
    facts = [("Date (UTC)", meta.date_utc or "unknown"),
             ("Profile", f"{meta.profile} — {meta.profile_title}" if meta.profile_title else meta.profile),
             ("Profile file", meta.profile_file or "unknown"),
             ("Profile SHA-256", meta.profile_sha256 or "unknown")]
    if meta.profile_base:
        facts.append(("Extends", meta.profile_base))
    facts += [("backstop", meta.backstop_version), ("Commit", meta.commit or "unknown (not a git checkout)"),
              ("Python", meta.python or "unknown"), ("OS", meta.os or "unknown"),
              ("Z3", meta.z3_version), ("Seed", str(meta.seed))]
    if meta.only:
        facts.append(("Selection", "partial run: --only " + " ".join(meta.only)))
    facts += [("Obligation instances", totals_line(t)),
              ("Slowest proof", f"{t.slowest.key} ({t.slowest.seconds:.2f}s of {t.slowest.limit_seconds:g}s)" if t.slowest else "-"),
              ("Rules", f"{len(trace.rules)} in spec/ ({sum(1 for r in trace.rules.values() if r.retired)} retired)"),
              ("Gaps", str(len(trace.gaps())))]
    if scenarios:
        facts.append(("Scenarios", f"{len(scenarios)} run, {sum(1 for s in scenarios if not s.ok)} not ok"))
    return facts


# ---------------------------------------------------------------- audit: JSON and JUnit

AUDIT_FORMAT = "backstop-audit/1"


def _meta_json(meta: Meta) -> dict[str, Any]:
    return {"date_utc": meta.date_utc, "profile": meta.profile, "profile_title": meta.profile_title,
            "profile_file": meta.profile_file, "profile_sha256": meta.profile_sha256,
            "profile_base": meta.profile_base, "backstop_version": meta.backstop_version,
            "commit": meta.commit, "python": meta.python, "os": meta.os, "z3_version": meta.z3_version,
            "seed": meta.seed, "only": list(meta.only)}


def _scenario_json(s: ScenarioOutcome) -> dict[str, Any]:
    return {"name": s.name, "source": s.source, "ok": s.ok, "verdict": s.verdict, "events": s.events,
            "processed": s.processed, "liquidations": s.liquidations, "adl_fills": s.adl_fills,
            "violation": s.violation, "error": s.error, "funds": {k: dict(v) for k, v in s.funds.items()},
            "outputs": list(s.outputs), "seconds": round(s.seconds, 4)}


def audit_json(meta: Meta, runs: Sequence[Run], trace: Trace, registry: Mapping[str, Obligation], *,
               scenarios: Sequence[ScenarioOutcome] = (), errors: Sequence[str] = (),
               scope: AuditScope | None = None, skipped: Sequence[str] = ()) -> dict[str, Any]:
    """The whole audit as one JSON object: verdict, header, proof records, rules, gaps, scenarios,
    errors, assumptions and scope."""
    probs = audit_problems(runs, trace, scenarios, errors)
    scope = scope or AuditScope()
    return {
        "format": AUDIT_FORMAT,
        "verdict": _verdict_word(bool(probs)),
        "problems": probs,
        "meta": _meta_json(meta),
        "obligations": proof_records(runs, meta),
        "rules": [{"id": r.id, "title": r.title, "status": r.verdict, "spec": r.spec_at, "code": list(r.code),
                   "obligations": [{"id": oid, "note": note, "instances": [{"key": k, "status": st, "ok": ok}
                                                                            for k, st, ok in insts]}
                                   for oid, note, insts in r.obligations],
                   "tests": list(r.tests)} for r in rule_rows(runs, trace, registry, bool(meta.only))],
        "gaps": trace.gaps(),
        "scenarios": [_scenario_json(s) for s in scenarios],
        "scenarios_skipped": list(skipped),
        "errors": list(errors),
        "assumptions": [{"file": f, "path": p, "note": n} for f, p, n in scope.assumptions],
        "out_of_scope": [{"id": i, "where": w, "sentence": s, "reason": r} for i, w, s, r in scope.out_of_scope],
        "proof_limits": [{"id": ob.id, "scope": ob.scope.value, "premises": ob.premises,
                          "limit_seconds": ob.limit_seconds, "instances": n} for ob, n in proof_limits(runs)],
    }


def audit_junit(meta: Meta, runs: Sequence[Run], trace: Trace, *, scenarios: Sequence[ScenarioOutcome] = (),
                errors: Sequence[str] = ()) -> str:
    """JUnit XML of the whole audit: a ``testsuites`` document with the proofs (one testcase per
    obligation instance), the traceability (one testcase per rule, a failure per gap, one for the
    cited IDs spec/ does not define), the scenarios (one testcase each) and the run's errors."""
    proofs = ET.fromstring(junit_xml(runs, meta).split("\n", 1)[1])
    root = ET.Element("testsuites", {"name": f"backstop.audit[{meta.profile}]"})
    root.append(proofs)

    gaps = trace.gaps()
    by_rule: dict[str, list[str]] = {}
    loose: list[str] = []
    for g in gaps:
        rid = g.split(":", 1)[0]
        (by_rule.setdefault(rid, []) if rid in trace.rules else loose).append(g)
    tr = ET.SubElement(root, "testsuite", {"name": f"backstop.traceability[{meta.profile}]",
                                           "tests": str(len(trace.rules) + 1),
                                           "failures": str(len(by_rule) + (1 if loose else 0)),
                                           "errors": "0", "skipped": str(sum(1 for r in trace.rules.values() if r.retired))})
    for rid, rule in trace.rules.items():
        case = ET.SubElement(tr, "testcase", {"classname": "backstop.traceability", "name": rid})
        if rule.retired:
            ET.SubElement(case, "skipped", {"message": "retired"})
        elif rid in by_rule:
            f = ET.SubElement(case, "failure", {"type": "gap", "message": by_rule[rid][0]})
            f.text = "\n".join(by_rule[rid])
    case = ET.SubElement(tr, "testcase", {"classname": "backstop.traceability", "name": "cited IDs are defined"})
    if loose:
        f = ET.SubElement(case, "failure", {"type": "gap", "message": loose[0]})
        f.text = "\n".join(loose)

    if scenarios:
        sc = ET.SubElement(root, "testsuite", {
            "name": f"backstop.scenarios[{meta.profile}]", "tests": str(len(scenarios)),
            "failures": str(sum(1 for s in scenarios if not s.ok and not s.error)),
            "errors": str(sum(1 for s in scenarios if s.error)), "skipped": "0",
            "time": f"{sum(s.seconds for s in scenarios):.3f}"})
        for s in scenarios:
            case = ET.SubElement(sc, "testcase", {"classname": "backstop.scenarios", "name": s.name,
                                                  "time": f"{s.seconds:.3f}"})
            if s.error:
                ET.SubElement(case, "error", {"type": "error", "message": s.error}).text = s.verdict
            elif not s.ok:
                ET.SubElement(case, "failure", {"type": "invariant", "message": s.verdict}).text = s.verdict
    if errors:
        er = ET.SubElement(root, "testsuite", {"name": "backstop.audit", "tests": str(len(errors)),
                                               "failures": "0", "errors": str(len(errors)), "skipped": "0"})
        for n, e in enumerate(errors, start=1):
            case = ET.SubElement(er, "testcase", {"classname": "backstop.audit", "name": f"error {n}"})
            ET.SubElement(case, "error", {"type": "error", "message": e}).text = e
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- audit: Markdown

def _md(s: str) -> str:
    """Text safe inside a Markdown table cell."""
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def audit_markdown(meta: Meta, runs: Sequence[Run], trace: Trace, registry: Mapping[str, Obligation], *,
                   scenarios: Sequence[ScenarioOutcome] = (), errors: Sequence[str] = (),
                   scope: AuditScope | None = None, skipped: Sequence[str] = ()) -> str:
    t = totals(r for _, r in runs)
    gaps = trace.gaps()
    scope = scope or AuditScope()
    out = [f"# backstop audit — profile `{meta.profile}`: {_verdict_line(runs, trace, scenarios, errors, meta)}", ""]
    for k, v in _header_facts(meta, t, trace, scenarios):
        out.append(f"- **{k}:** {_md(v)}")
    out.append("")
    if meta.profile_sources:
        out += ["## Profile sources", ""] + [f"- {_md(s)}" for s in meta.profile_sources] + [""]

    if errors:
        out += ["## Errors", ""] + [f"- {_md(e)}" for e in errors] + [""]

    out += ["## Gaps", ""]
    out += ([f"- {_md(g)}" for g in gaps] if gaps else ["None: every rule has implementing code and a test, "
                                                          "every invariant an obligation, every cited ID is defined."])
    out.append("")

    fails = [(i, r) for i, r in runs if not r.ok]
    if fails:
        out += ["## Failed obligations", ""]
        for inst, r in fails:
            out += ["```", failure_text(inst, r), "```", ""]

    out += _scope_markdown(scope, runs)

    out += ["## Rules", "",
            "A rule's tests are the tests that name it specifically (at most "
            "4 rule IDs in all, and not a proof run); tests that cite it among many rules are not counted.", "",
            "| ID | Title | Statement | Source | Rounding | Code | Obligations | Tests | Status |",
            "|---|---|---|---|---|---|---|---|---|"]
    for row in rule_rows(runs, trace, registry, bool(meta.only)):
        obs = []
        for oid, note, insts in row.obligations:
            if note:
                obs.append(f"{oid}: {note}")
            for key, status, _ in insts:
                obs.append(f"{key}: {status}")
        cells = [f"{row.id} ({_md(row.spec_at)})", _md(row.title + (f" ({row.status})" if row.status else "")),
                 _md(row.statement) or "—", _md(row.source) or "—", _md(row.rounding) or "—",
                 "<br>".join(f"`{_md(c)}`" for c in row.code) or "—",
                 "<br>".join(_md(o) for o in obs) or "—",
                 "<br>".join(f"`{_md(c)}`" for c in row.tests) or "—",
                 row.verdict]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")

    out += ["## Obligation instances", "",
            "| Instance | Rules | Verdict | Time | Limit | Claim |", "|---|---|---|---:|---:|---|"]
    for inst, r in runs:
        out.append(f"| `{r.key}` | {', '.join(r.rules)} | {_status(r)} | {r.seconds:.2f}s | {r.limit_seconds:g}s | "
                   f"{_md(inst.obligation.statement)} |")
    out.append("")

    if scenarios or skipped:
        out += ["## Scenarios", "",
                "Every scenario run through the reference with every invariant checked after every event "
                "(`backstop simulate --check`).", "",
                "| scenario | events | liquidations | ADL fills | invariants | outputs |", "|---|---|---|---|---|---|"]
        for s in scenarios:
            outs = ", ".join(f"[{o.rsplit('/', 1)[-1]}]({o})" for o in s.outputs) or "—"
            out.append(f"| {_md(s.name)} | {s.processed} of {s.events} | {s.liquidations} | {s.adl_fills} | "
                       f"{_md(s.verdict)} | {outs} |")
        out.append("")
        if skipped:
            out += [f"Skipped (written for another profile): {_md(', '.join(skipped))}.", ""]
    return "\n".join(out)


def _scope_markdown(scope: AuditScope, runs: Sequence[Run]) -> list[str]:
    out = ["## Assumptions and scope", "", "### Profile values marked as assumed", ""]
    out += [f"- `{_md(p)}` ({_md(f)}): {_md(n)}" for f, p, n in scope.assumptions] or ["None marked."]
    out += ["", "### Source sentences out of scope (spec/99-sources.md)", ""]
    out += [f"- {i} ({_md(w)}): {_md(s)} — {_md(r)}" for i, w, s, r in scope.out_of_scope] or ["None."]
    out += ["", "### Limits of the proofs", "",
            "Each obligation is proved on the domain its premises state and nothing beyond; an `unknown` "
            "or a timeout never counts as proved.", "",
            "| Obligation | Scope | Premises (the domain proved) | Instances | Time limit |", "|---|---|---|---:|---:|"]
    out += [f"| {ob.id} | {ob.scope.value} | {_md(ob.premises)} | {n} | {ob.limit_seconds:g}s |"
            for ob, n in proof_limits(runs)]
    return out + [""]


# ---------------------------------------------------------------- audit: HTML

_CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;margin:1.5em auto;
 padding:0 1.5em;max-width:1280px;color:#1b1f24;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de}h3{font-size:1.05em}
table{border-collapse:collapse;width:100%;font-size:.85em;table-layout:fixed}
th,td{border:1px solid #d0d7de;padding:.35em .5em;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th{background:#f6f8fa}
td.num,th.num{text-align:right;white-space:nowrap}td.id{white-space:nowrap;overflow-wrap:normal}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f6f8fa;padding:.8em;border:1px solid #d0d7de;white-space:pre-wrap;overflow-wrap:anywhere}
ul.plain{list-style:none;margin:0;padding:0}
details>summary{cursor:pointer}
details .body{margin:.4em 0 .2em;padding:.2em .6em;border-left:3px solid #d0d7de}
details .body table{font-size:1em}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.gap{color:#9a6700;font-weight:600}.muted{color:#656d76}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2em 1em}dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.banner{padding:.5em .8em;border-radius:4px;display:inline-block;font-size:1.1em}
.banner.ok{background:#dafbe1}.banner.bad{background:#ffebe9}
.chart svg{max-width:100%;height:auto;display:block}
nav.toc a{margin-right:1em}
@media print{@page{size:A4;margin:12mm}
 body{max-width:none;margin:0;padding:0;font-size:9pt}nav.toc{display:none}
 table{font-size:8pt}.chart,pre{break-inside:avoid}h2,h3{break-after:avoid}
 .banner{border:1px solid #000}}
"""


def _e(s: str) -> str:
    return html.escape(s, quote=True)


def _cls(verdict: str) -> str:
    return {"ok": "ok", "failed": "bad", "gap": "gap", "retired": "muted", "not run": "muted"}.get(verdict, "")


_MD: Any = None


def render_markdown(text: str, inline: bool = False) -> str:
    """Spec Markdown as HTML (markdown-it-py, CommonMark with tables; raw HTML in the text is
    escaped, not passed through)."""
    global _MD
    if _MD is None:
        from markdown_it import MarkdownIt
        _MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    html: str = _MD.renderInline(text) if inline else _MD.render(text)
    return html


# A rule's fields (**Statement.**, **Source.**, ...) start their own paragraph in the report.
_FIELD_BREAK_RE = re.compile(r"\n(?=[ \t]*(?:[-*][ \t]+)?\*\*(?:Statement|Source|Rounding|Status|Resolution)[.:]\*\*)")
_PROLOG_RE = re.compile(r"\A\s*(?:<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*|<!--.*?-->\s*)*", re.S)


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG document ready to sit inside HTML: its XML prolog and doctype dropped, and every
    ``id`` (with the ``url(#..)`` and ``href="#.."`` that point at it) prefixed, so that two charts
    on one page cannot take each other's gradients, clip paths or markers."""
    body = _PROLOG_RE.sub("", svg, count=1).strip()
    ids = set(re.findall(r'\bid="([^"]+)"', body))
    if not ids:
        return body
    body = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', body)
    body = re.sub(r"url\(#([^)\s]+)\)", lambda m: f"url(#{prefix}{m.group(1)})" if m.group(1) in ids else m.group(0), body)
    return re.sub(r'((?:xlink:)?href)="#([^"]+)"',
                  lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"' if m.group(2) in ids else m.group(0), body)


def _lst(xs: Sequence[str]) -> str:
    if not xs:
        return '<span class="muted">—</span>'
    return '<ul class="plain">' + "".join(f"<li><code>{_e(x)}</code></li>" for x in xs) + "</ul>"


def _scope_html(scope: AuditScope, runs: Sequence[Run]) -> list[str]:
    h = ['<h2 id="assumptions">Assumptions and scope</h2>',
         f"<h3>Profile values marked as assumed ({len(scope.assumptions)})</h3>"]
    if scope.assumptions:
        h.append("<table><colgroup><col style=\"width:22%\"><col style=\"width:18%\"><col></colgroup>"
                 "<thead><tr><th>Value</th><th>File</th><th>What the profile says</th></tr></thead><tbody>"
                 + "".join(f"<tr><td><code>{_e(p)}</code></td><td>{_e(f)}</td><td>{_e(n)}</td></tr>"
                           for f, p, n in scope.assumptions) + "</tbody></table>")
    else:
        h.append('<p class="muted">The profile marks no value as assumed.</p>')
    h.append(f"<h3>Source sentences out of scope ({len(scope.out_of_scope)})</h3>"
             "<p>Rows of <code>spec/99-sources.md</code> that no rule implements, with the reason.</p>")
    if scope.out_of_scope:
        h.append("<details><summary>Show the sentences</summary><div class=\"body\"><table><colgroup>"
                 "<col style=\"width:8%\"><col style=\"width:17%\"><col style=\"width:40%\"><col></colgroup>"
                 "<thead><tr><th>#</th><th>Where</th><th>Sentence</th><th>Why out of scope</th></tr></thead><tbody>"
                 + "".join(f'<tr><td class="id">{_e(i)}</td><td>{_e(w)}</td><td>{render_markdown(s, True)}</td>'
                           f"<td>{render_markdown(r, True)}</td></tr>" for i, w, s, r in scope.out_of_scope)
                 + "</tbody></table></div></details>")
    limits = proof_limits(runs)
    h.append(f"<h3>Limits of the proofs ({len(limits)} obligations)</h3>"
             "<p>Each obligation is proved on the domain its premises state and nothing beyond: "
             "<em>bounded</em> obligations over bounded values or histories, <em>modular</em> ones for one "
             "object against an abstract rest. An <code>unknown</code> or a timeout never counts as proved.</p>")
    counts: dict[str, int] = {}
    for ob, _ in limits:
        counts[ob.scope.value] = counts.get(ob.scope.value, 0) + 1
    h.append("<p>" + _e(", ".join(f"{n} {k}" for k, n in counts.items())) + "</p>")
    if limits:
        h.append("<details><summary>Show every obligation's domain</summary><div class=\"body\"><table><colgroup>"
                 "<col style=\"width:14%\"><col style=\"width:9%\"><col><col style=\"width:8%\"><col style=\"width:7%\">"
                 "</colgroup><thead><tr><th>Obligation</th><th>Scope</th><th>Premises (the domain proved)</th>"
                 '<th class="num">Instances</th><th class="num">Limit</th></tr></thead><tbody>'
                 + "".join(f"<tr><td><code>{_e(ob.id)}</code></td><td>{_e(ob.scope.value)}</td><td>{_e(ob.premises)}</td>"
                           f'<td class="num">{n}</td><td class="num">{ob.limit_seconds:g}s</td></tr>'
                           for ob, n in limits) + "</tbody></table></div></details>")
    return h


def _scenarios_html(scenarios: Sequence[ScenarioOutcome], skipped: Sequence[str] = ()) -> list[str]:
    h = ['<h2 id="scenarios">Scenarios</h2>',
         "<p>Every scenario run through the reference with every invariant checked after every event "
         "(<code>backstop simulate --check</code>). Charts are inline.</p>",
         '<table><thead><tr><th>Scenario</th><th class="num">Events</th><th class="num">Liquidations</th>'
         '<th class="num">ADL fills</th><th style="width:45%">Invariants</th></tr></thead><tbody>']
    for s in scenarios:
        h.append(f'<tr><td><a href="#scenario-{_e(s.name)}">{_e(s.name)}</a></td>'
                 f'<td class="num">{s.processed} of {s.events}</td><td class="num">{s.liquidations}</td>'
                 f'<td class="num">{s.adl_fills}</td><td class="{"ok" if s.ok else "bad"}">{_e(s.verdict)}</td></tr>')
    h.append("</tbody></table>")
    if skipped:
        h.append(f'<p class="muted">Skipped (written for another profile): {_e(", ".join(skipped))}.</p>')
    for n, s in enumerate(scenarios):
        h.append(f'<h3 id="scenario-{_e(s.name)}">{_e(s.name)} <span class="muted">({_e(s.source)})</span></h3>'
                 f'<p>{s.processed} of {s.events} events, {s.liquidations} liquidations, {s.adl_fills} ADL fills; '
                 f'invariants <span class="{"ok" if s.ok else "bad"}">{_e(s.verdict)}</span></p>')
        if s.chart_svg:
            h.append(f'<div class="chart" role="img" aria-label="{_e(s.name)} chart">'
                     f"{inline_svg(s.chart_svg, f's{n}-')}</div>")
        if s.funds:
            h.append('<table><thead><tr><th>Fund</th><th class="num">Opening</th><th class="num">Settled</th>'
                     '<th class="num">Available</th><th class="num">Lowest available</th></tr></thead><tbody>'
                     + "".join(f'<tr><td>{_e(fid)}</td><td class="num">{_e(str(v.get("opening", "")))}</td>'
                               f'<td class="num">{_e(str(v.get("settled", "")))}</td>'
                               f'<td class="num">{_e(str(v.get("available", "")))}</td>'
                               f'<td class="num">{_e(str(v.get("lowest_available", "")))}</td></tr>'
                               for fid, v in s.funds.items()) + "</tbody></table>")
        if s.outputs:
            h.append('<p class="muted">Written beside this report: ' + ", ".join(f"<code>{_e(o)}</code>" for o in s.outputs) + "</p>")
    return h


def audit_html(meta: Meta, runs: Sequence[Run], trace: Trace, registry: Mapping[str, Obligation], *,
               scenarios: Sequence[ScenarioOutcome] = (), errors: Sequence[str] = (),
               scope: AuditScope | None = None, skipped: Sequence[str] = ()) -> str:
    """One self-contained HTML page: inline CSS, charts as inline SVG, no external file."""
    t = totals(r for _, r in runs)
    failed = audit_failed(runs, trace, scenarios, errors)
    gaps = trace.gaps()
    scope = scope or AuditScope()
    title = f"backstop audit — profile {meta.profile}"
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{_e(title)}</title>", f"<style>{_CSS}</style></head><body>",
         f"<h1>{_e(title)}</h1>",
         f'<p class="banner {"bad" if failed else "ok"}" id="verdict">{_e(_verdict_line(runs, trace, scenarios, errors, meta))}</p>',
         '<nav class="toc">' + "".join(f'<a href="#{a}">{_e(b)}</a>' for a, b in (
             ("gaps", "Gaps"), ("assumptions", "Assumptions and scope"), ("rules", "Rules"),
             ("obligations", "Obligation instances")) + ((("scenarios", "Scenarios"),) if scenarios or skipped else ())) + "</nav>",
         '<dl class="facts">']
    for k, v in _header_facts(meta, t, trace, scenarios):
        h.append(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>")
    h.append("</dl>")
    if meta.profile_sources:
        h.append("<h2>Profile sources</h2><ul>" + "".join(f"<li>{_e(s)}</li>" for s in meta.profile_sources) + "</ul>")

    if errors:
        h.append(f'<h2 id="errors">Errors ({len(errors)})</h2><ul>' + "".join(f'<li class="bad">{_e(e)}</li>' for e in errors) + "</ul>")

    h.append(f'<h2 id="gaps">Gaps ({len(gaps)})</h2>')
    if gaps:
        h.append("<ul>" + "".join(f'<li class="gap">{_e(g)}</li>' for g in gaps) + "</ul>")
    else:
        h.append('<p class="ok">None: every rule has implementing code and a test, every invariant an '
                 "obligation, every cited ID is defined.</p>")

    fails = [(i, r) for i, r in runs if not r.ok]
    if fails:
        h.append("<h2>Failed obligations</h2>")
        h += [f"<pre>{_e(failure_text(i, r))}</pre>" for i, r in fails]

    h += _scope_html(scope, runs)

    h.append('<h2 id="rules">Rules</h2>'
             "<p>Counts per rule; open a rule for its text (from <code>spec/</code>), the implementing code, the "
             "obligation instances and the tests. A rule's tests are the tests that name it specifically; tests "
             "that cite it among many rules, or re-run its proofs, are not counted.</p>"
             '<table><colgroup><col style="width:11%"><col><col style="width:7%"><col style="width:14%">'
             '<col style="width:7%"><col style="width:8%"></colgroup><thead><tr>'
             '<th>ID</th><th>Title and text</th><th class="num">Code</th><th>Obligations</th>'
             '<th class="num">Tests</th><th>Status</th></tr></thead><tbody>')
    for row in rule_rows(runs, trace, registry, bool(meta.only)):
        insts = [i for _, _, ii in row.obligations for i in ii]
        n_ok = sum(1 for _, _, ok in insts if ok)
        ob_cell = (f'<span class="{"ok" if n_ok == len(insts) else "bad"}">{n_ok}/{len(insts)} ok</span>'
                   if insts else "")
        ob_cell += (f' <span class="muted">({len(row.obligations)} obl.)</span>' if row.obligations
                    else '<span class="muted">—</span>')
        obs = []
        for oid, note, ii in row.obligations:
            items = "".join(f'<li><code>{_e(k)}</code> <span class="{"ok" if ok else "bad"}">{_e(s)}</span></li>'
                            for k, s, ok in ii)
            obs.append(f"<li><code>{_e(oid)}</code>" + (f' <span class="muted">{_e(note)}</span>' if note else "")
                       + (f'<ul class="plain">{items}</ul>' if items else "") + "</li>")
        body = render_markdown(_FIELD_BREAK_RE.sub("\n\n", row.body)) if row.body.strip() else ""
        details = (f'<details><summary>{_e(row.title)}'
                   + (f' <span class="muted">({_e(row.status)})</span>' if row.status else "") + "</summary>"
                   f'<div class="body">{body}'
                   f"<h4>Code</h4>{_lst(row.code)}"
                   f"<h4>Obligations</h4>" + (('<ul class="plain">' + "".join(obs) + "</ul>") if obs else '<span class="muted">—</span>')
                   + f"<h4>Tests (naming {_e(row.id)} specifically)</h4>{_lst(row.tests)}"
                   + (f'<p class="muted">Also cited by {len(row.uncounted)} test(s) that cannot cover it '
                      f"(catch-alls, proof runs); not counted.</p>" if row.uncounted else "")
                   + "</div></details>")
        h.append(f'<tr id="{_e(row.id)}"><td><code>{_e(row.id)}</code><br><span class="muted">{_e(row.spec_at)}</span></td>'
                 f'<td>{details}</td><td class="num">{len(row.code)}</td><td>{ob_cell}</td>'
                 f'<td class="num">{len(row.tests)}</td><td class="{_cls(row.verdict)}">{_e(row.verdict)}</td></tr>')
    h.append("</tbody></table>")

    h.append('<h2 id="obligations">Obligation instances</h2>'
             '<table><colgroup><col style="width:30%"><col style="width:16%"><col style="width:16%">'
             '<col style="width:8%"><col style="width:8%"><col></colgroup><thead><tr><th>Instance</th><th>Rules</th>'
             '<th>Verdict</th><th class="num">Time</th><th class="num">Limit</th><th>Claim</th></tr></thead><tbody>')
    for inst, r in runs:
        ob = inst.obligation
        h.append(f"<tr><td><code>{_e(r.key)}</code><br>{_e(ob.title)}</td>"
                 f"<td>{_e(', '.join(r.rules))}</td>"
                 f'<td class="{"ok" if r.ok else "bad"}">{_e(_status(r))}'
                 + (f'<br><span class="muted">{_e(r.detail.splitlines()[0])}</span>' if r.detail else "")
                 + f'</td><td class="num">{r.seconds:.2f}s</td><td class="num">{r.limit_seconds:g}s</td>'
                 f"<td><details><summary>claim and premises</summary><div class=\"body\"><p>{_e(ob.statement)}</p>"
                 f"<p><strong>Premises ({_e(ob.scope.value)}):</strong> {_e(ob.premises)}</p></div></details></td></tr>")
    h.append("</tbody></table>")
    if scenarios or skipped:
        h += _scenarios_html(scenarios, skipped)
    h.append("</body></html>")
    return "\n".join(h) + "\n"
