"""The audit report as an auditor receives it: parsed with ``html.parser`` (no browser on the
machine), and the JSON and JUnit beside it.

Every run here is a real ``backstop audit`` with ``--only OBL-NUM-001`` (one proof of about 0.2 s)
and one scenario (a copy of ``examples/calm.toml``), so that the verdict, the header, the inline
chart and the sections come from the command itself.  Failures are planted by wrapping the
scenario runner (a violation, a refused event) or by a bad scenario file; expected values are
derived apart from the report code: hashes from the file bytes, versions from ``platform`` and
``z3``, assumed values from the comments of ``spec/profiles/okx.toml`` read by hand (two of them:
``margin.close_fee_rate`` and the ETH tier table), out-of-scope rows from ``spec/99-sources.md``
read by hand.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from backstop import cli, report
from backstop import simulate as SIM
from backstop.reference.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
ONLY = "OBL-NUM-001"


class Page(HTMLParser):
    """What a reader sees: tags, the banner, the header facts, sections by heading, charts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.banner = ""
        self.banner_class = ""
        self.facts: dict[str, str] = {}
        self.sections: dict[str, str] = {}   # h2 text -> text up to the next h2
        self.chart_svgs = 0
        self.text_outside_code: list[str] = []
        self._dt = ""
        self._cur_h2 = ""
        self._capture = ""
        self._buf: list[str] = []
        self.feed(text)

    _VOID = {"meta", "br", "col", "img", "link", "input", "hr"}

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "svg" and any(t == "div" and "chart" in at.get("class", "").split() for t, at in self.stack):
            self.chart_svgs += 1
        if tag not in self._VOID:
            self.stack.append((tag, a))
        if tag in ("dt", "dd", "h2") or (tag == "p" and a.get("id") == "verdict"):
            self._capture, self._buf = tag, []
            if tag == "p":
                self.banner_class = a.get("class", "")

    def handle_endtag(self, tag):
        if tag == self._capture:
            text = "".join(self._buf).strip()
            if tag == "dt":
                self._dt = text
            elif tag == "dd":
                self.facts[self._dt] = text
            elif tag == "h2":
                self._cur_h2 = text
                self.sections[text] = ""
            else:
                self.banner = text
            self._capture = ""
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        if self._capture:
            self._buf.append(data)
        if self._cur_h2:
            self.sections[self._cur_h2] += data
        if not any(t in ("code", "pre", "style") for t, _ in self.stack):
            self.text_outside_code.append(data)

    def section(self, prefix: str) -> str:
        hits = [v for k, v in self.sections.items() if k.startswith(prefix)]
        assert hits, f"no section {prefix!r}; sections: {list(self.sections)}"
        return hits[0]


def _audit(tmp_path: Path, *extra: str, scenarios: Path | None = None) -> tuple[int, Path]:
    out = tmp_path / "out"
    if scenarios is None:
        scenarios = tmp_path / "scn"
        scenarios.mkdir(exist_ok=True)
        shutil.copy(ROOT / "examples" / "calm.toml", scenarios / "calm.toml")
    rc = cli.main(["audit", "--only", ONLY, "--out", str(out), "--scenarios", str(scenarios),
                   "--json", str(out / "audit.json"), "--junit", str(out / "audit.xml"), "--quiet", *extra])
    return rc, out


@pytest.fixture(scope="module")
def passed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit-pass")
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    rc, out = _audit(tmp)
    after = datetime.datetime.now(datetime.timezone.utc)
    return rc, out, Page((out / "audit.html").read_text(encoding="utf-8")), before, after


def _violating_runner(monkeypatch):
    real = SIM.run_scenario

    def run(scn, check=False):
        res = real(scn, check)
        res.violation = "INV-003: planted violation for the report test"
        return res
    monkeypatch.setattr(SIM, "run_scenario", run)


# ---------------------------------------------------------------- the verdict

def test_a_passing_run_says_passed_and_exits_0(passed):
    rc, out, page, _, _ = passed
    assert rc == 0
    assert page.banner.startswith("PASSED") and "ok" in page.banner_class.split()
    assert f"partial run: --only {ONLY}" in page.banner  # a partial audit says so in its verdict
    doc = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert doc["verdict"] == "PASSED" and doc["problems"] == [] and doc["gaps"] == []
    assert [(s["name"], s["ok"], s["verdict"]) for s in doc["scenarios"]] == [("calm", True, "all hold")]
    assert [o["instance"] for o in doc["obligations"]] == [ONLY]


def test_a_violated_scenario_fails_the_report_not_only_the_exit_code(tmp_path, monkeypatch):
    _violating_runner(monkeypatch)
    rc, out = _audit(tmp_path)
    assert rc == 1
    page = Page((out / "audit.html").read_text(encoding="utf-8"))
    assert page.banner.startswith("FAILED") and "bad" in page.banner_class.split()
    assert "1 scenario(s) not ok" in page.banner
    md = (out / "audit.md").read_text(encoding="utf-8")
    assert md.splitlines()[0].endswith(f"FAILED: 1 scenario(s) not ok (partial run: --only {ONLY})")
    doc = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert doc["verdict"] == "FAILED"
    assert doc["scenarios"][0]["violation"].startswith("INV-003: planted")
    suites = {s.get("name"): s for s in ET.parse(out / "audit.xml").getroot().iter("testsuite")}
    scn = suites["backstop.scenarios[okx]"]
    assert scn.get("failures") == "1" and scn.find("testcase/failure") is not None


def test_an_error_after_the_proofs_gives_exit_2_and_a_failed_report(tmp_path, monkeypatch):
    def refuse(scn, check=False):
        raise InvalidInput("calm.toml:40: events[3].price", "0", "must be > 0")
    monkeypatch.setattr(SIM, "run_scenario", refuse)
    rc, out = _audit(tmp_path)
    assert rc == 2
    page = Page((out / "audit.html").read_text(encoding="utf-8"))
    assert page.banner.startswith("FAILED") and "1 error(s)" in page.banner
    assert "events[3].price" in page.section("Errors")
    doc = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert doc["verdict"] == "FAILED" and len(doc["errors"]) == 1 and doc["scenarios"][0]["error"]
    root = ET.parse(out / "audit.xml").getroot()
    assert root.find(".//testcase/error") is not None


def test_a_bad_scenario_file_is_refused_before_any_proof(tmp_path, monkeypatch, capsys):
    def no_proofs(*a, **k):
        raise AssertionError("a proof ran before the inputs were validated")
    monkeypatch.setattr(cli, "run_proofs", no_proofs)
    scn = tmp_path / "scn"
    scn.mkdir()
    shutil.copy(ROOT / "examples" / "calm.toml", scn / "calm.toml")
    (scn / "zz_bad.toml").write_text('name = "bad"\nprofile = "okx"\nstart = 12.5\n', encoding="utf-8")
    rc, out = _audit(tmp_path, scenarios=scn)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "zz_bad.toml" in err and len(err.strip().splitlines()) == 1
    assert not (out / "audit.html").exists() and not (out / "audit.json").exists()


def test_a_missing_scenarios_folder_is_refused_before_any_proof(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_proofs", lambda *a, **k: pytest.fail("a proof ran"))
    rc, _ = _audit(tmp_path, scenarios=tmp_path / "nowhere")
    assert rc == 2 and "--scenarios" in capsys.readouterr().err


def test_outside_a_source_tree_the_audit_refuses_with_a_clear_message(tmp_path, monkeypatch, capsys):
    """An installed package has spec/, reference/ and proofs/ as package data but no tests/."""
    import backstop.trace as T
    monkeypatch.setattr(T, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(cli, "run_proofs", lambda *a, **k: pytest.fail("a proof ran"))
    rc = cli.main(["audit", "--only", ONLY, "--out", str(tmp_path / "out"), "--scenarios", ""])
    err = capsys.readouterr().err
    assert rc == 2
    assert "installed package" in err and "tests/" in err and "backstop prove" in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the header

def test_the_header_names_date_versions_platform_solver_seed_and_profile_hash(passed):
    import z3
    from backstop import __version__
    from backstop.proofs.kernel import SEED
    _, _, page, before, after = passed
    f = page.facts
    when = datetime.datetime.strptime(f["Date (UTC)"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    assert before <= when <= after
    assert f["backstop"] == __version__
    assert re.fullmatch(r"[0-9a-f]{12}(\+dirty)?", f["Commit"])  # this is a git checkout
    assert f["Python"].startswith(platform.python_version())
    assert f["OS"] == platform.platform()
    assert f["Z3"] == z3.get_version_string()
    assert f["Seed"] == str(SEED) == "20261127"
    shipped = resources.files("backstop.spec").joinpath("profiles", "okx.toml").read_bytes()
    assert f["Profile SHA-256"] == hashlib.sha256(shipped).hexdigest()


def test_an_overlay_profile_is_hashed_by_its_text_and_names_its_base(tmp_path):
    text = 'extends = "okx"\n[margin]\nclose_fee_rate = "0.001"   # the venue\'s published taker fee\n'
    f = tmp_path / "venue.toml"
    f.write_bytes(text.encode("utf-8"))
    profile = cli._load_profile(str(f))
    meta = cli._meta(profile, str(f))
    assert meta.profile_file == str(f)
    assert meta.profile_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    okx = resources.files("backstop.spec").joinpath("profiles", "okx.toml").read_bytes()
    assert meta.profile_base.startswith("okx (") and hashlib.sha256(okx).hexdigest() in meta.profile_base


# ---------------------------------------------------------------- self-contained, Markdown, layout

def test_charts_are_inline_svg_and_nothing_points_at_a_file(passed):
    _, out, page, _, _ = passed
    html = (out / "audit.html").read_text(encoding="utf-8")
    assert page.chart_svgs == 1                      # one scenario, one chart, inside the page
    assert not [t for t, a in page.tags if t == "img" or "src" in a]
    assert not [a["href"] for t, a in page.tags if t == "a" and not a.get("href", "").startswith("#")]
    assert not [t for t, a in page.tags if t == "link"]
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def test_spec_markdown_is_rendered(passed):
    _, _, page, _, _ = passed
    text = "".join(page.text_outside_code)
    assert "**" not in text                          # no raw emphasis markers left
    assert "`" not in page.section("Rules")          # code spans rendered as <code>
    strong = [t for t, _ in page.tags if t == "strong"]
    assert len(strong) >= 3 * 80                     # Statement., Source., Rounding. of the 82 rules


def test_the_rules_table_shows_counts_and_folds_the_details(passed):
    from backstop.trace import build_trace
    _, out, _, _, _ = passed
    html = (out / "audit.html").read_text(encoding="utf-8")
    table = html[html.index('<h2 id="rules">'):html.index('<h2 id="obligations">')]
    heads = re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table.split("</thead>")[0])
    assert heads == ["ID", "Title and text", "Code", "Obligations", "Tests", "Status"]
    rows = re.findall(r'<tr id="([A-Z]{3}-\d{3}[a-z]?)">', table)
    assert rows == list(build_trace().rules)
    assert table.count("<details>") == len(rows)
    assert "table-layout:fixed" in html and "@media print" in html


def test_the_assumptions_and_scope_section(passed):
    _, _, page, _, _ = passed
    sec = page.section("Assumptions and scope")
    # okx.toml says "an assumption" on close_fee_rate's line and above [tier_tables.ETH]; nowhere else
    assert "margin.close_fee_rate" in sec and "tier_tables.ETH" in sec
    assert "tier_tables.BTC" not in sec
    # 99-sources.md: 000.8 (purpose) and 004.20 (not audited) are out of scope; 000.2 maps to INS-001, INS-004
    assert "000.8" in sec and "004.20" in sec and "000.2 " not in sec and "000.2\n" not in sec
    assert "Profile values marked as assumed (2)" in sec
    # the proof's stated domain
    assert "whole a, whole b != 0 (either sign)" in sec


def test_assumptions_of_a_base_profile_overridden_by_an_overlay_are_dropped():
    okx = resources.files("backstop.spec").joinpath("profiles", "okx.toml").read_text(encoding="utf-8")
    overlay = 'extends = "okx"\n[margin]\nclose_fee_rate = "0.001"\n'
    got = report.profile_assumptions([("venue.toml", overlay), ("okx.toml", okx)])
    assert [(f, p) for f, p, _ in got] == [("okx.toml", "tier_tables.ETH")]
    own = report.profile_assumptions([("v.toml", '[adl]\n# assumed: no public number\ndrawdown_fraction = "0.5"\n'
                                                 'ranking = "pnl_times_leverage"  # from the venue page\n')])
    assert [(p, n) for _, p, n in own] == [("adl.drawdown_fraction", "assumed: no public number")]


def test_inline_svg_drops_the_prolog_and_keeps_two_charts_apart():
    svg = ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n'
           '<svg xmlns="http://www.w3.org/2000/svg"><defs><clipPath id="c1"><rect/></clipPath></defs>'
           '<g clip-path="url(#c1)"><use xlink:href="#c1"/><a href="#elsewhere"/></g></svg>')
    a, b = report.inline_svg(svg, "s0-"), report.inline_svg(svg, "s1-")
    assert a.startswith("<svg") and "<?xml" not in a and "DOCTYPE" not in a
    assert 'id="s0-c1"' in a and "url(#s0-c1)" in a and 'xlink:href="#s0-c1"' in a and 'href="#elsewhere"' in a
    assert 'id="s1-c1"' in b and 's0-' not in b


# ---------------------------------------------------------------- traceability in the report

def test_a_rule_lists_only_the_tests_that_name_it_specifically(passed):
    """A catch-all (a test naming more than four rules) or a proof run cites a rule without
    covering it: the report must not list it under the rule."""
    from backstop.proofs.registry import REGISTRY
    from backstop.trace import build_trace
    _, out, _, _, _ = passed
    trace = build_trace()
    rows = {r.id: r for r in report.rule_rows([], trace, REGISTRY)}
    catch = [(rid, c) for rid, cs in trace.uncounted.items() for c in cs
             if c.where not in {t.where for t in trace.tests.get(rid, [])}]
    assert catch, "the tree has catch-all tests; this check needs one"
    html = (out / "audit.html").read_text(encoding="utf-8")
    for rid, c in catch:
        listed = [t.split(" ", 1)[1] for t in rows[rid].tests]
        assert c.where not in listed
        row = html[html.index(f'<tr id="{rid}">'):]
        tests_part = row[row.index("<h4>Tests"):row.index("</details>")]
        assert f"{c.file}:{c.line} {c.where}</code>" not in tests_part
    # and no test is listed under more rules than the traceability lets a test cover
    from collections import Counter
    from backstop.trace import MAX_RULES_PER_TEST
    per_test = Counter(t for r in rows.values() for t in r.tests)
    assert max(per_test.values()) <= MAX_RULES_PER_TEST


def test_the_junit_holds_proofs_traceability_and_scenarios(passed):
    from backstop.trace import build_trace
    _, out, _, _, _ = passed
    root = ET.parse(out / "audit.xml").getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"backstop.proofs[okx]", "backstop.traceability[okx]", "backstop.scenarios[okx]"}
    assert [c.get("name") for c in suites["backstop.proofs[okx]"].iter("testcase")] == [ONLY]
    rules = [c.get("name") for c in suites["backstop.traceability[okx]"].iter("testcase")]
    assert rules[:-1] == list(build_trace().rules) and rules[-1] == "cited IDs are defined"
    assert [c.get("name") for c in suites["backstop.scenarios[okx]"].iter("testcase")] == ["calm"]
    assert not list(root.iter("failure")) and not list(root.iter("error"))


def test_the_readme_audit_example(tmp_path, monkeypatch, capsys):
    """README's audit block is this command's output, times aside (run in a copy of the checkout's
    examples/, so that build/audit lands in a temporary folder)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("### `backstop audit"):]
    cmd, shown = re.search(r"```\n\$ backstop (audit [^\n]*)\n(.*?)```", block, re.S).groups()
    (tmp_path / "examples").mkdir()
    for f in (ROOT / "examples").glob("*.toml"):
        shutil.copy(f, tmp_path / "examples" / f.name)
    monkeypatch.chdir(tmp_path)
    assert cli.main(cmd.split()[0:]) == 0
    got = capsys.readouterr().out

    def times(s):
        return re.sub(r"\d+\.\d\ds", "T", s)
    assert times(got) == times(shown)
    assert (tmp_path / "build" / "audit" / "audit.html").is_file()


def test_an_output_path_that_cannot_be_made_is_refused_before_any_proof(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_proofs", lambda *a, **k: pytest.fail("a proof ran"))
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    rc = cli.main(["audit", "--only", ONLY, "--out", str(tmp_path / "out"), "--scenarios", "",
                   "--json", str(tmp_path / "afile" / "audit.json")])
    assert rc == 2 and "--json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_report_that_cannot_be_written_fails_the_others(tmp_path, monkeypatch):
    real = cli._write

    def write(path, text):
        if str(path).endswith(".xml"):
            raise InvalidInput(str(path), str(path), "cannot write: No space left on device")
        return real(path, text)
    monkeypatch.setattr(cli, "_write", write)
    rc, out = _audit(tmp_path)
    assert rc == 2
    page = Page((out / "audit.html").read_text(encoding="utf-8"))
    assert page.banner.startswith("FAILED") and "No space left" in page.section("Errors")
    assert json.loads((out / "audit.json").read_text(encoding="utf-8"))["verdict"] == "FAILED"


def test_a_report_of_an_earlier_run_is_removed_when_a_run_starts(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("audit.md", "audit.html", "audit.json", "audit.xml"):
        (out / name).write_text("PASSED (an earlier run)", encoding="utf-8")

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "run_proofs", interrupted)
    assert _audit(tmp_path)[0] == 130
    assert sorted(p.name for p in out.iterdir()) == []
