"""Reports of a proof run: the console table, the JSON records, JUnit XML, and the audit report.

Every function here is pure: it takes the results of a run (pairs of
:class:`~backstop.proofs.registry.Instance` and :class:`~backstop.proofs.kernel.Result`), the
traceability (:class:`~backstop.trace.Trace`) and a :class:`Meta`, and returns a string or plain
data.  Running the solver and writing files is the job of :mod:`backstop.cli`.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from backstop.jsonio import to_json
from backstop.proofs.kernel import Result, format_counterexample
from backstop.proofs.registry import Instance, Obligation
from backstop.trace import Trace

__all__ = [
    "Meta", "Run", "Totals", "totals", "progress_line", "summary_table", "totals_line",
    "failure_text", "proof_records", "junit_xml", "rule_rows", "audit_failed",
    "audit_markdown", "audit_html",
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

def progress_line(r: Result) -> str:
    return f"{_status(r):<20} {r.key:<34} {r.seconds:8.2f}s"


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


# ---------------------------------------------------------------- audit

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
    tests: tuple[str, ...]      # "tests/unit/test_margin.py:12 test_MRG_001_value"
    verdict: str                # "ok" | "failed" | "gap" | "retired"


def rule_rows(runs: Sequence[Run], trace: Trace, registry: Mapping[str, Obligation]) -> list[RuleRow]:
    """One row per spec rule, in spec order."""
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
                note = "not instantiated for this profile"
                if ob is not None and ob.applies_note:
                    note += f" (applies to {ob.applies_note})"
            all_ok &= all(r.ok for r in rs)
            obs.append((oid, note, tuple((r.key, f"{_status(r)} {r.seconds:.2f}s", r.ok) for r in rs)))
        if rule.retired:
            verdict = "retired"
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
            verdict,
        ))
    return rows


def audit_failed(runs: Sequence[Run], trace: Trace) -> bool:
    """True when the audit must fail: an obligation instance is not ok, or a traceability gap."""
    return any(not r.ok for _, r in runs) or bool(trace.gaps())


def _header_facts(meta: Meta, t: Totals, trace: Trace) -> list[tuple[str, str]]:
    facts = [("Profile", f"{meta.profile} — {meta.profile_title}" if meta.profile_title else meta.profile),
             ("backstop", meta.backstop_version), ("Commit", meta.commit or "unknown"),
             ("Z3", meta.z3_version), ("Seed", str(meta.seed)),
             ("Obligation instances", totals_line(t)),
             ("Slowest proof", f"{t.slowest.key} ({t.slowest.seconds:.2f}s of {t.slowest.limit_seconds:g}s)" if t.slowest else "-"),
             ("Rules", f"{len(trace.rules)} in spec/ ({sum(1 for r in trace.rules.values() if r.retired)} retired)"),
             ("Gaps", str(len(trace.gaps())))]
    return facts


def _verdict_word(failed: bool) -> str:
    return "FAILED" if failed else "PASSED"


def _md(s: str) -> str:
    """Text safe inside a Markdown table cell."""
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def audit_markdown(meta: Meta, runs: Sequence[Run], trace: Trace, registry: Mapping[str, Obligation]) -> str:
    t = totals(r for _, r in runs)
    failed = audit_failed(runs, trace)
    gaps = trace.gaps()
    out = [f"# backstop audit — profile `{meta.profile}`: {_verdict_word(failed)}", ""]
    for k, v in _header_facts(meta, t, trace):
        out.append(f"- **{k}:** {_md(v)}")
    out.append("")
    if meta.profile_sources:
        out += ["## Profile sources", ""] + [f"- {_md(s)}" for s in meta.profile_sources] + [""]

    out += ["## Gaps", ""]
    out += ([f"- {_md(g)}" for g in gaps] if gaps else ["None: every rule has implementing code and a test, "
                                                          "every invariant an obligation, every cited ID is defined."])
    out.append("")

    fails = [(i, r) for i, r in runs if not r.ok]
    if fails:
        out += ["## Failed obligations", ""]
        for inst, r in fails:
            out += ["```", failure_text(inst, r), "```", ""]

    out += ["## Rules", "",
            "| ID | Title | Statement | Source | Rounding | Code | Obligations | Tests | Status |",
            "|---|---|---|---|---|---|---|---|---|"]
    for row in rule_rows(runs, trace, registry):
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
    return "\n".join(out)


_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em;color:#1b1f24;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:.85em}
th,td{border:1px solid #d0d7de;padding:.35em .5em;vertical-align:top;text-align:left}
th{background:#f6f8fa;position:sticky;top:0}
td.num{text-align:right;white-space:nowrap}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;border:1px solid #d0d7de}
ul.plain{list-style:none;margin:0;padding:0}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.gap{color:#9a6700;font-weight:600}.muted{color:#656d76}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dl.facts dt{font-weight:600}dl.facts dd{margin:0}
.banner{padding:.5em .8em;border-radius:4px;display:inline-block}
.banner.ok{background:#dafbe1}.banner.bad{background:#ffebe9}
"""


def _e(s: str) -> str:
    return html.escape(s, quote=True)


def _cls(verdict: str) -> str:
    return {"ok": "ok", "failed": "bad", "gap": "gap", "retired": "muted"}.get(verdict, "")


def audit_html(meta: Meta, runs: Sequence[Run], trace: Trace, registry: Mapping[str, Obligation]) -> str:
    t = totals(r for _, r in runs)
    failed = audit_failed(runs, trace)
    gaps = trace.gaps()
    title = f"backstop audit — profile {meta.profile}"
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>{_e(title)}</title>", f"<style>{_CSS}</style></head><body>",
         f"<h1>{_e(title)}</h1>",
         f'<p class="banner {"bad" if failed else "ok"}">{_verdict_word(failed)}</p>',
         '<dl class="facts">']
    for k, v in _header_facts(meta, t, trace):
        h.append(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>")
    h.append("</dl>")
    if meta.profile_sources:
        h.append("<h2>Profile sources</h2><ul>" + "".join(f"<li>{_e(s)}</li>" for s in meta.profile_sources) + "</ul>")

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

    h.append('<h2 id="rules">Rules</h2><table><thead><tr>'
             "<th>ID</th><th>Title</th><th>Statement</th><th>Source</th><th>Rounding</th>"
             "<th>Code</th><th>Obligations</th><th>Tests</th><th>Status</th></tr></thead><tbody>")
    for row in rule_rows(runs, trace, registry):
        obs = []
        for oid, note, insts in row.obligations:
            items = "".join(f'<li><code>{_e(k)}</code> <span class="{"ok" if ok else "bad"}">{_e(s)}</span></li>'
                            for k, s, ok in insts)
            obs.append(f"<li><code>{_e(oid)}</code>" + (f' <span class="muted">{_e(note)}</span>' if note else "")
                       + (f'<ul class="plain">{items}</ul>' if items else "") + "</li>")

        def lst(xs: Sequence[str]) -> str:
            return ('<ul class="plain">' + "".join(f"<li><code>{_e(x)}</code></li>" for x in xs) + "</ul>") if xs else '<span class="muted">—</span>'

        title_cell = _e(row.title) + (f' <span class="muted">({_e(row.status)})</span>' if row.status else "")
        h.append(f'<tr id="{_e(row.id)}"><td><code>{_e(row.id)}</code><br><span class="muted">{_e(row.spec_at)}</span></td>'
                 f"<td>{title_cell}</td><td>{_e(row.statement) or '—'}</td><td>{_e(row.source) or '—'}</td>"
                 f"<td>{_e(row.rounding) or '—'}</td><td>{lst(row.code)}</td>"
                 f'<td>{("<ul class=plain>" + "".join(obs) + "</ul>") if obs else "—"}</td>'
                 f'<td>{lst(row.tests)}</td><td class="{_cls(row.verdict)}">{_e(row.verdict)}</td></tr>')
    h.append("</tbody></table>")

    h.append('<h2 id="obligations">Obligation instances</h2><table><thead><tr><th>Instance</th><th>Rules</th>'
             "<th>Verdict</th><th>Time</th><th>Limit</th><th>Claim</th><th>Premises</th></tr></thead><tbody>")
    for inst, r in runs:
        h.append(f"<tr><td><code>{_e(r.key)}</code><br>{_e(inst.obligation.title)}</td>"
                 f"<td>{_e(', '.join(r.rules))}</td>"
                 f'<td class="{"ok" if r.ok else "bad"}">{_e(_status(r))}'
                 + (f'<br><span class="muted">{_e(r.detail.splitlines()[0])}</span>' if r.detail else "")
                 + f'</td><td class="num">{r.seconds:.2f}s</td><td class="num">{r.limit_seconds:g}s</td>'
                 f"<td>{_e(inst.obligation.statement)}</td><td>{_e(inst.obligation.premises)}</td></tr>")
    h.append("</tbody></table></body></html>")
    return "\n".join(h) + "\n"
