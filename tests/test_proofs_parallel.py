"""Issue 14: proofs in parallel (-j N, a Dask cluster), a split obligation's parts joined by a
solver-checked cover, and the verdict cache keyed by the exact solver query."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import z3

from backstop.proofs import cache, kernel, pool
from backstop.proofs.registry import REGISTRY, Context, Instance, Obligation, instances
from backstop.reference import margin as M
from backstop.reference.profile import load_profile

OKX = load_profile("okx")
SMALL = ["OBL-MRG-001", "OBL-MRG-002"]  # quick obligations, 3 instruments each on okx


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A private, empty cache for one test (the suite's shared cache is left alone)."""
    monkeypatch.setenv("BACKSTOP_CACHE", str(tmp_path / "cache"))
    cache.set_enabled(True)
    cache.reset_stats()
    yield tmp_path / "cache"
    cache.set_enabled(None)


def _inst(key: str) -> Instance:
    return {i.key: i for i in instances(OKX)}[key]


# ---------------------------------------------------------------- the verdict cache

def test_a_warm_run_reads_the_cache_and_asks_the_solver_nothing(fresh_cache):
    inst = _inst("OBL-MRG-001[BTC-USDT-SWAP]")
    cold = kernel.prove(inst)
    assert cold.verdict == "proved"
    s = cache.stats()
    # cold: every question missed and was stored (the tier split's exhaustiveness, one question per
    # tier case and the vacuity check's witness)
    assert s["hits"] == 0 and s["stores"] == s["misses"] > 0
    assert any(fresh_cache.rglob("*")), "nothing was written to $BACKSTOP_CACHE"
    cache.reset_stats()
    warm = kernel.prove(inst)
    s = cache.stats()
    assert warm.verdict == "proved" and warm.detail == cold.detail
    assert s["misses"] == 0 and s["stores"] == 0 and s["hits"] > 0


def test_no_cache_asks_every_question(fresh_cache):
    inst = _inst("OBL-MRG-001[BTC-USDT-SWAP]")
    kernel.prove(inst)
    cache.set_enabled(False)
    cache.reset_stats()
    assert kernel.prove(inst).verdict == "proved"
    assert cache.stats() == {"hits": 0, "misses": 0, "stores": 0}


def test_a_planted_change_that_keeps_the_claim_is_proved_again(fresh_cache, monkeypatch):
    """MRG-001: doubling every position value keeps it positive, additive and monotone, but the
    query text differs, so every question is a miss and is asked again (and holds)."""
    inst = _inst("OBL-MRG-001[BTC-USDT-SWAP]")
    assert kernel.prove(inst).verdict == "proved"
    orig = M.compute_position_value
    monkeypatch.setattr(M, "compute_position_value", lambda i, s, p: orig(i, s, p) * 2)
    cache.reset_stats()
    r = kernel.prove(inst)
    assert r.verdict == "proved"
    assert cache.stats()["misses"] > 0 and cache.stats()["stores"] > 0


def test_a_planted_false_change_fails_despite_a_warm_cache(fresh_cache, monkeypatch):
    """MRG-001: value + 1 unit is not additive (value(a+b) = v(a)+v(b)+1 vs v(a)+1+v(b)+1): the
    warm cache holds the unchanged obligation's verdicts, and the changed one is still refuted."""
    inst = _inst("OBL-MRG-001[BTC-USDT-SWAP]")
    assert kernel.prove(inst).verdict == "proved"
    orig = M.compute_position_value
    monkeypatch.setattr(M, "compute_position_value", lambda i, s, p: orig(i, s, p) + 1)
    r = kernel.prove(inst)
    assert r.verdict == "counterexample" and not r.ok, r.detail
    # and a refutation is never stored as a verdict: asked again, it is refuted again
    cache.reset_stats()
    assert kernel.prove(inst).verdict == "counterexample"


def test_a_tampered_witness_is_checked_and_not_trusted(fresh_cache):
    """The cache stores a model (the vacuity check's witness) only as a certificate: one that does
    not satisfy the assertions is refused on use, and the solver answers instead."""
    ctx = z3.Context()
    x = z3.Real("x", ctx)
    assert cache.witness_holds([x > 1], {"Real:x": 2}, ctx) is not None
    assert cache.witness_holds([x > 1], {"Real:x": 0}, ctx) is None
    assert cache.witness_holds([x > 1], {}, ctx) is None  # a constant left free proves nothing


def test_the_key_is_the_query_text_version_seed_and_limit():
    k = cache.query_key("(assert (> x 0.0))", seed=1, limit=60)
    assert k == cache.query_key("(assert (> x 0.0))", seed=1, limit=60)
    assert len({k, cache.query_key("(assert (> x 1.0))", seed=1, limit=60),
                cache.query_key("(assert (> x 0.0))", seed=2, limit=60),
                cache.query_key("(assert (> x 0.0))", seed=1, limit=30)}) == 4


def test_the_cache_lives_outside_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("BACKSTOP_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "backstop" / "proofs"
    monkeypatch.setenv("BACKSTOP_CACHE", str(tmp_path / "b"))
    assert cache.cache_dir() == tmp_path / "b"


# ---------------------------------------------------------------- a split obligation

def _split_ob(cover_conds, claim=lambda x: x * x >= 0) -> Obligation:
    """x * x >= 0 for every rational x, in two parts (x >= 0, x < 0) -- or a cover under test."""
    def body(ctx: Context):
        x = ctx.rational("x")
        if ctx.part is not None:
            ctx.assume(cover_conds(x)[ctx.part])
        return claim(x)

    def cover(ctx: Context):
        return cover_conds(ctx.rational("x"))

    body.honours_parts = True  # it assumes its part's condition (as obligation(parts=...) marks it)

    return Obligation("OBL-TEST-SPLIT", "a split", ("MRG-001",), "x*x >= 0", "x rational", body,
                      per_instrument=False, parts=2, cover=cover)


def test_a_split_is_proved_when_its_parts_are_and_cover_the_domain():
    ob = _split_ob(lambda x: [x >= 0, x < 0])
    r = kernel.prove(Instance(ob, OKX, None))
    assert r.verdict == "proved" and r.key == "OBL-TEST-SPLIT" and "2 parts" in r.detail


def test_a_split_that_leaves_a_gap_is_not_a_proof():
    # x in (-1, 0) is in neither part: each part holds, the cover check refuses the join
    ob = _split_ob(lambda x: [x >= 0, x <= -1], claim=lambda x: x >= 0)
    parts = [kernel.prove_piece(p) for p in kernel.pieces(Instance(ob, OKX, None))]
    assert [p.verdict for p in parts] == ["proved", "counterexample"]
    ob = _split_ob(lambda x: [x >= 0, x <= -1])
    r = kernel.prove(Instance(ob, OKX, None))
    assert r.verdict != "proved" and not r.ok and "not shown exhaustive" in r.detail


def test_a_split_with_a_false_part_is_refuted_by_that_part():
    ob = _split_ob(lambda x: [x >= 0, x < 0], claim=lambda x: x >= 0)
    r = kernel.prove(Instance(ob, OKX, None))
    assert r.verdict == "counterexample" and r.replay == "confirmed" and r.detail.startswith("part 2 of 2")
    assert r.counterexample["x"] < 0


def test_a_copy_with_another_body_is_proved_whole():
    """A planted-bug run replaces the body (dataclasses.replace): that body does not read
    ctx.part, so the obligation is proved whole, not eight times."""
    import dataclasses
    inst = _inst("OBL-INV-024")
    assert len(kernel.pieces(inst)) == REGISTRY["OBL-INV-024"].parts
    copy = dataclasses.replace(inst, obligation=dataclasses.replace(inst.obligation, body=lambda ctx: True))
    assert kernel.pieces(copy) == [copy]


def test_inv024_split_rows_partition_the_grid_and_its_cover_is_exhaustive():
    """OBL-INV-024's part k is the price rows k, k + PARTS, ... of the 16-row grid (by hand: 8 parts
    of rows (k, k + 8)); the cover check (the solver, not this test) shows that the parts cover
    every row the premises allow.  PARTS is 1 today (proofs/loop.py says why)."""
    from backstop.proofs import loop
    assert loop.part_rows(16, 8) == [(k, k + 8) for k in range(8)]
    assert loop.part_rows(16, 1) == [tuple(range(16))]
    ob = REGISTRY["OBL-INV-024"]
    assert ob.parts == loop.PARTS
    rows = loop.part_rows(len(loop.LoopScenario.GRID), loop.PARTS)
    assert sorted(r for part in rows for r in part) == list(range(16))
    c = kernel.prove_cover(_inst("OBL-INV-024"))
    assert c.verdict == "proved", c.detail


# ---------------------------------------------------------------- the pool

def _strip_times(text: str) -> str:
    """The output without its times: the seconds, the column padding they set, and which instance
    was the slowest (a fact about the times)."""
    text = re.sub(r"slowest \S+ ", "slowest K ", re.sub(r"\d+\.\d\ds", "T", text))
    return re.sub(r" +", " ", re.sub(r"-+", "-", text))


def test_j2_gives_the_serial_results_in_registry_order(fresh_cache):
    insts = instances(OKX, SMALL)
    serial = [kernel.prove(i) for i in insts]
    cache.set_enabled(False)
    par = pool.prove_all("okx", insts, jobs=2, cache=False)
    assert [r.key for r in par] == [i.key for i in insts]
    assert [(r.verdict, r.detail, r.counterexample) for r in par] == [(r.verdict, r.detail, r.counterexample) for r in serial]


def test_jobs_start_slowest_first(fresh_cache):
    insts = instances(OKX, ["OBL-MRG-001", "OBL-INV-024"])
    jobs = pool.jobs_of("okx", insts)
    limits = {i.key: i.obligation.limit_seconds for i in insts}
    order = pool._order(jobs, limits)
    assert order[0].key == "OBL-INV-024"        # no recorded times: the larger limit first
    pool._save_times({f"okx::{order[-1].name}": 1e6})
    assert pool._order(jobs, limits)[0] == order[-1]  # a recorded time wins


def test_cli_j2_prints_what_j1_prints_apart_from_times(fresh_cache):
    def run(*extra: str) -> str:
        p = subprocess.run([sys.executable, "-m", "backstop.cli", "prove", "--profile", "okx", "--only", *SMALL,
                            "--no-cache", *extra], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout
    assert _strip_times(run("-j", "2")) == _strip_times(run())


def test_a_worker_that_cannot_rebuild_its_instance_reports_an_error():
    r = pool.run_job(pool.Job("okx", "OBL-NO-SUCH[X]", None, False))
    assert r.verdict == "error" and not r.ok and "could not rebuild" in r.detail


def test_dask_local_cluster_gives_the_serial_results(fresh_cache):
    distributed = pytest.importorskip("distributed")
    insts = instances(OKX, ["OBL-MRG-001"])
    serial = [kernel.prove(i) for i in insts]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc:
        # the address, as --scheduler ADDRESS gives it (the pool connects and disconnects)
        par = pool.prove_all("okx", insts, scheduler=lc.scheduler_address, cache=False)
    assert [(r.key, r.verdict, r.detail) for r in par] == [(r.key, r.verdict, r.detail) for r in serial]


# ---------------------------------------------------------------- the README's section

def test_the_readme_commands_of_proving_in_parallel_parse():
    """Every command the README's "Proving in parallel" section shows is accepted by the parser
    with the options it names; the paths it names exist."""
    from backstop.cli import build_parser
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Proving in parallel", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    cmds = [line.split()[1:] for line in block.splitlines() if line.startswith("backstop ")]
    assert len(cmds) == 4
    parsed = [build_parser().parse_args(c) for c in cmds]
    assert parsed[0].jobs == 2 and parsed[1].jobs == 2 and parsed[1].func.__name__ == "cmd_audit"
    assert parsed[2].no_cache and parsed[3].scheduler == "tcp://127.0.0.1:8786"
    root = Path(__file__).resolve().parents[1]
    for f in re.findall(r"`((?:proofs|bench)/[\w/]+\.py)`", section):
        assert (root / f).is_file(), f
    from backstop.proofs import loop
    assert "`PARTS = 1`" in section and loop.PARTS == 1


def test_a_cli_run_warms_the_cache_for_the_tests_and_back(fresh_cache):
    """make test and make audit share results: a `backstop prove` process (the audit's prover)
    fills the cache; the same instance proved here (as test_obligation_holds proves it) then asks
    the solver nothing."""
    p = subprocess.run([sys.executable, "-m", "backstop.cli", "prove", "--profile", "okx", "--only",
                        "OBL-MRG-002[BTC-USD-SWAP]", "--quiet"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    cache.reset_stats()
    r = kernel.prove(_inst("OBL-MRG-002[BTC-USD-SWAP]"))
    assert r.verdict == "proved"
    assert cache.stats()["misses"] == 0 and cache.stats()["hits"] > 0, cache.stats()


def test_j0_is_refused():
    from backstop.cli import main
    assert main(["prove", "--only", "OBL-MRG-001", "-j", "0", "--quiet"]) == 2
