"""Proving instances in parallel: a process pool on this machine, or a Dask cluster.

Z3 contexts cannot cross a process boundary, so a job is only a name: (the profile's name or
path, the instance key, the part of a split obligation or the split's cover check, whether the
cache is on).  A worker loads the profile, rebuilds the instance from the registry and proves it;
it returns a :class:`~backstop.proofs.kernel.Result` (a plain, picklable dataclass).  Jobs start
slowest first (by the time recorded for the same job in the last run, else by the obligation's
limit); results are handed back in registry order, so the output does not depend on ``-j``.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

__all__ = ["Job", "jobs_of", "run_job", "prove_all"]

COVER = -1  # the part number of a split obligation's cover check
_PRELOAD = ["backstop.proofs.kernel", "backstop.proofs.kernel_laws", "backstop.proofs.margin",
            "backstop.proofs.liquidation", "backstop.proofs.fund", "backstop.proofs.adl",
            "backstop.proofs.transition", "backstop.proofs.loop", "backstop.proofs.loop_wide",
            "backstop.proofs.pool"]


@dataclass(frozen=True)
class Job:
    profile: str          # a shipped profile's name or a TOML path (what --profile was given)
    key: str              # the instance key (OBL-...[INSTRUMENT])
    part: int | None      # None: the whole instance; k: part k of a split; COVER: the split's check
    cache: bool = True

    @property
    def name(self) -> str:
        if self.part is None:
            return self.key
        return f"{self.key}#cover" if self.part == COVER else f"{self.key}#part{self.part + 1}"


def jobs_of(profile_ref: str, insts: Sequence[Any], cache: bool = True) -> list[Job]:
    from backstop.proofs.kernel import pieces
    out: list[Job] = []
    for inst in insts:
        ps = pieces(inst)
        if len(ps) == 1:
            out.append(Job(profile_ref, inst.key, None, cache))
        else:
            out += [Job(profile_ref, inst.key, p.part, cache) for p in ps]
            out.append(Job(profile_ref, inst.key, COVER, cache))
    return out


_PROFILES: dict[str, Any] = {}
_INSTANCES: dict[tuple[str, str], Any] = {}


def _instance(profile_ref: str, key: str) -> Any:
    if (profile_ref, key) not in _INSTANCES:
        from backstop.proofs.registry import instances
        from backstop.reference.profile import load_profile
        if profile_ref not in _PROFILES:
            _PROFILES[profile_ref] = load_profile(profile_ref)
        for inst in instances(_PROFILES[profile_ref]):
            _INSTANCES[(profile_ref, inst.key)] = inst
    return _INSTANCES[(profile_ref, key)]


def run_job(job: Job, smt_dir: str | None = None) -> Any:
    """Prove one job in this process (a pool worker or a Dask worker)."""
    import dataclasses

    from backstop.proofs import cache, kernel
    cache.set_enabled(job.cache)
    try:
        inst = _instance(job.profile, job.key)
    except Exception as e:  # the worker cannot rebuild the instance: an error, never a pass
        return kernel.Result(key=job.key, obligation_id=job.key.split("[", 1)[0], rules=(), instrument=None,
                             verdict="error", expected="proved", seconds=0.0, limit_seconds=0.0,
                             detail=f"worker could not rebuild {job.name} from {job.profile!r}: {type(e).__name__}: {e}")
    if job.part is None:
        return kernel.prove_piece(inst, Path(smt_dir) if smt_dir else None)
    if job.part == COVER:
        return kernel.prove_cover(inst)
    return kernel.prove_piece(dataclasses.replace(inst, part=job.part), Path(smt_dir) if smt_dir else None)


# ---------------------------------------------------------------- recorded times (the order)

def _times_file() -> Path:
    from backstop.proofs.cache import cache_dir
    return cache_dir() / "times.json"


def _load_times() -> dict[str, float]:
    try:
        data = json.loads(_times_file().read_text(encoding="utf-8"))
        return {k: float(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _save_times(times: dict[str, float]) -> None:
    old = _load_times()
    old.update(times)
    p = _times_file()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".times-{os.getpid()}.json")
        tmp.write_text(json.dumps(old, sort_keys=True, indent=0), encoding="utf-8")
        os.replace(tmp, p)
    except OSError:
        pass


def _order(jobs: list[Job], limits: dict[str, float]) -> list[Job]:
    """Slowest first: the time recorded for the job in the last run, else the obligation's limit
    (a job never timed goes before every timed one of a smaller limit)."""
    times = _load_times()
    tag: Callable[[Job], str] = lambda j: f"{j.profile}::{j.name}"  # noqa: E731
    return sorted(jobs, key=lambda j: -times.get(tag(j), limits[j.key]))


# ---------------------------------------------------------------- the run

def prove_all(profile_ref: str, insts: Sequence[Any], *, jobs: int = 1, scheduler: str | None = None,
              cache: bool = True, smt_dir: Path | None = None,
              on_result: Callable[[Any], None] | None = None) -> list[Any]:
    """Prove ``insts`` (instances of the profile ``profile_ref`` names) with ``jobs`` processes,
    or on the Dask cluster at ``scheduler``; returns the results in the order of ``insts`` and
    calls ``on_result`` in that order too, as soon as every earlier instance is done."""
    from backstop.proofs.kernel import merge_parts
    todo = jobs_of(profile_ref, insts, cache)
    limits = {inst.key: inst.obligation.limit_seconds for inst in insts}
    ordered = _order(todo, limits)
    done: dict[Job, Any] = {}
    by_inst: dict[str, list[Job]] = {}
    for j in todo:
        by_inst.setdefault(j.key, []).append(j)
    results: list[Any] = [None] * len(insts)
    nxt = 0
    sdir = str(smt_dir) if smt_dir else None

    def finish(job: Job, r: Any) -> None:
        nonlocal nxt
        done[job] = r
        while nxt < len(insts) and all(j in done for j in by_inst[insts[nxt].key]):
            inst = insts[nxt]
            mine = by_inst[inst.key]
            if len(mine) == 1:
                res = done[mine[0]]
            else:
                cover = [done[j] for j in mine if j.part == COVER][0]
                res = merge_parts(inst, cover, [done[j] for j in mine if j.part != COVER])
            results[nxt] = res
            nxt += 1
            if on_result is not None:
                on_result(res)

    if scheduler:
        _run_dask(scheduler, ordered, sdir, finish)
    elif jobs <= 1:
        for j in todo:  # registry order: -j 1 is the serial run
            finish(j, run_job(j, sdir))
    else:
        import multiprocessing as mp
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        if ctx.get_start_method() == "forkserver":
            # the server imports z3 and every obligation module once; each worker is forked from
            # it (single-threaded, no Z3 context made yet) instead of importing them again
            ctx.set_forkserver_preload(_PRELOAD)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
            futs = {ex.submit(run_job, j, sdir): j for j in ordered}
            for f in as_completed(futs):
                finish(futs[f], f.result())
    _save_times({f"{j.profile}::{j.name}": r.seconds for j, r in done.items()})
    return results


def _run_dask(address: str, ordered: list[Job], sdir: str | None, finish: Callable[[Job, Any], None]) -> None:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        from backstop.reference.errors import InvalidInput
        raise InvalidInput("--scheduler", address, "needs the optional extra: pip install 'backstop[dask]'") from None
    client = address if not isinstance(address, str) else Client(address)
    try:
        futs = {}
        for k, j in enumerate(ordered):
            # priority: the slowest first also on the cluster (Dask runs higher priorities first)
            f = client.submit(run_job, j, sdir, key=f"backstop-prove-{time.time_ns()}-{k}",
                              pure=False, priority=len(ordered) - k)
            futs[f] = j
        for f in dask_completed(list(futs)):
            finish(futs[f], f.result())
    finally:
        if isinstance(address, str):
            client.close()
