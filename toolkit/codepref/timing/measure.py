"""The three timing modes on a flat list of solutions (no datasets here; see stage.py for rows).

A *solution* is ``{"id": any hashable key, "program": str, "setup": str, "tests": [str],
"entry_point": str}`` (or ``"inputs"``/``"expected"`` for stdin/stdout problems). Each function returns
``{id: Measurement}``. Every number comes from *timed runs* (``WorkerPool.timed_job``): a fresh sample
process per run, every answer checked by the judge, CPU time and instruction counts read by the sandbox
server, never reported by the sample. A run with a wrong answer is not a measurement.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..execution.pool import WorkerPool
from .config import TimingConfig

logger = logging.getLogger(__name__)

# Trusted calibration workload for count mode's ns-per-instruction (a mix of loops, calls, dicts,
# strings, sorting and big ints, like typical test programs).
CALIBRATION = {
    "id": "__calibration__",
    "program": (
        "def work():\n"
        "    d = {}\n"
        "    for i in range(3000):\n"
        "        d[str(i)] = i * i % 97\n"
        "    xs = sorted(d.values())\n"
        "    s = sum(x for x in xs if x % 3)\n"
        "    t = ''.join(chr(65 + x % 26) for x in xs[:500])\n"
        "    f = 1\n"
        "    for k in range(1, 300):\n"
        "        f *= k\n"
        "    return s, len(t), f % 1000003\n"
    ),
    "setup": "",
    "tests": ["work()"],
}


@dataclass
class Measurement:
    runtime_ns: float | None
    runtime_cov: float | None
    stable: bool
    cost: int | None = None
    ratio: float | None = None
    error: str | None = None


def cov(values: Sequence[float]) -> float:
    """Coefficient of variation std/mean with the population std (numpy's default, as the paper's code)."""
    if not values:
        return math.nan
    mean = sum(values) / len(values)
    if mean <= 0:
        return math.inf if any(values) else 0.0
    return statistics.pstdev(values) / mean


def _failed(error: str) -> Measurement:
    return Measurement(None, None, False, error=error)


def _job(pool: WorkerPool, sol: dict, **kw) -> dict:
    return pool.timed_job(
        sol["program"],
        sol.get("tests") or [],
        sol.get("setup") or "",
        entry_point=sol.get("entry_point"),
        inputs=sol.get("inputs"),
        expected=sol.get("expected"),
        tol=sol.get("tol"),
        untrusted=bool(sol.get("untrusted")),
        **kw,
    )


def _first_error(runs: list[dict], fallback: str | None) -> str | None:
    for r in runs:
        if not r.get("ok"):
            return str(r.get("error") or "run failed")
    return fallback if not runs else None


# -- code-optimise -----------------------------------------------------------------------------------
def code_optimise(sols: list[dict], cfg: TimingConfig, pool: WorkerPool) -> dict:
    """Algorithm 1 (Code-Optimise §3.1): batches of ``batch_size`` runs, each batch's CoV = std/mean of its
    CPU times; the first batch with CoV ≤ ``cov_threshold`` gives the mean; at most ``max_batches`` batches
    (and ``max_seconds``); never stable → the sample is marked failed. The procedure is repeated
    ``processes`` times per solution and averaged. Runs are fresh processes timed from outside, so nothing
    a run leaves (a cache in ``sys``, a file) reaches the next one."""
    state = {(k, p): {"batches": 0, "t0": time.monotonic()} for k in range(len(sols)) for p in range(cfg.processes)}
    while pending := [key for key, st in state.items() if "done" not in st]:
        futures = pool.submit_jobs([_job(pool, sols[k], runs=cfg.batch_size) for k, _ in pending])
        for key, fut in zip(pending, futures, strict=True):
            st, res = state[key], fut.result()
            st["batches"] += 1
            error = res.error or _first_error(res.runs, "no runs")
            if error:
                st["done"], st["error"] = True, error
                continue
            times = [float(r["cpu_ns"]) for r in res.runs]
            st["mean"], st["cov"] = sum(times) / len(times), cov(times)
            if st["cov"] <= cfg.cov_threshold:
                st["done"], st["stable"] = True, True
            elif st["batches"] >= cfg.max_batches or (
                cfg.max_seconds is not None and time.monotonic() - st["t0"] > cfg.max_seconds
            ):
                st["done"], st["stable"] = True, False
    out = {}
    for k, s in enumerate(sols):
        reps = [state[(k, p)] for p in range(cfg.processes)]
        errors = [st["error"] for st in reps if "error" in st]
        if errors:
            out[s["id"]] = _failed(errors[0])
            continue
        means = [st["mean"] for st in reps]
        if not all(st.get("stable") for st in reps):  # Algorithm 1: never stable → marked failed
            out[s["id"]] = Measurement(None, cov(means), False, error="unstable")
            continue
        out[s["id"]] = Measurement(sum(means) / len(means), cov(means), True)
    return out


# -- count -------------------------------------------------------------------------------------------
_NATIVE_NS: dict[str, float] = {}
CALIBRATION_IR: dict[str, int] = {}  # the calibration workload's count, once per process (it is deterministic)


def _native_calibration_ns() -> float:
    """Median CPU time of the trusted calibration workload, run natively in this process (once)."""
    if "ns" in _NATIVE_NS:
        return _NATIVE_NS["ns"]
    ns: dict = {}
    exec(compile(CALIBRATION["program"], "<calibration>", "exec"), ns)  # trusted code, ours
    work = ns["work"]
    for _ in range(3):
        work()
    times = []
    for _ in range(30):
        t0 = time.process_time_ns()
        work()
        times.append(time.process_time_ns() - t0)
    _NATIVE_NS["ns"] = float(statistics.median(times))
    return _NATIVE_NS["ns"]


def count(sols: list[dict], cfg: TimingConfig, pool: WorkerPool) -> tuple[dict, dict]:
    """Instruction counts: ``repeats`` counted runs per solution (valgrind's totals for each run's process,
    minus what an empty run costs the harness); cost = their median, runtime_cov = their CoV."""
    jobs = [_job(pool, s, runs=cfg.repeats, counted=True, unit_seconds=cfg.count_seconds) for s in sols]
    calibrate = cfg.calibrate and "ir" not in CALIBRATION_IR
    if calibrate:
        jobs.append(_job(pool, CALIBRATION, runs=1, counted=True, unit_seconds=cfg.count_seconds))
    results = pool.map_jobs(jobs)
    if calibrate:
        cal = results.pop()
        if not cal.error and cal.runs and cal.runs[0].get("ok"):
            CALIBRATION_IR["ir"] = int(cal.runs[0]["ir"])
    info: dict = {}
    ns_per_ir = None
    if cfg.calibrate and CALIBRATION_IR.get("ir"):
        native = _native_calibration_ns()
        ns_per_ir = native / CALIBRATION_IR["ir"]
        info = {"calibration_ir": CALIBRATION_IR["ir"], "calibration_ns": native, "ns_per_instruction": ns_per_ir}
    out = {}
    for s, res in zip(sols, results, strict=True):
        error = res.error or _first_error(res.runs, "no runs")
        if error:
            out[s["id"]] = _failed(error)
            continue
        counts = [int(r["ir"]) for r in res.runs]
        c = cov(counts)
        cost = int(statistics.median(counts))
        stable = c <= cfg.cov_threshold
        runtime = cost * ns_per_ir if (ns_per_ir and stable) else None
        if not cfg.calibrate and stable:
            runtime = float(cost)  # documented: without calibration runtime_ns carries the raw count
        out[s["id"]] = Measurement(runtime, c, stable, cost=cost, error=None if stable else "unstable")
    return out, info


# -- interleaved -----------------------------------------------------------------------------------
def interleaved(groups: list[list[dict]], cfg: TimingConfig, pool: WorkerPool) -> dict:
    """The candidates of each problem (a group) timed round-robin on one server, problems in parallel; ratios
    per round cancel shared noise. A candidate whose run fails is dropped from its own measurement only."""
    groups = [g for g in groups if g]
    jobs = [pool.interleave_job([_job(pool, s) for s in g], cfg.rounds, cfg.warmup_rounds) for g in groups]
    out = {}
    for sols, res in zip(groups, pool.map_jobs(jobs), strict=True):
        out.update(_ratios(sols, res, cfg))
    return out


def _ratios(sols: list[dict], res, cfg: TimingConfig) -> dict:
    runs = res.runs if not res.error else [[{"ok": False, "error": res.error}] for _ in sols]
    ok = [k for k, rs in enumerate(runs) if len(rs) == cfg.rounds and all(r.get("ok") for r in rs)]
    refs: list[float | None] = []
    for r in range(cfg.rounds):
        vals = [float(runs[k][r]["cpu_ns"]) for k in ok]
        if not vals:
            refs.append(None)
        elif cfg.reference == "first":
            refs.append(vals[0])
        else:  # geometric mean of the round's candidates: every candidate moves it a little
            refs.append(math.exp(sum(math.log(max(v, 1.0)) for v in vals) / len(vals)))
    out = {}
    for k, s in enumerate(sols):
        if k not in ok:
            out[s["id"]] = _failed(_first_error(runs[k], "incomplete") or "incomplete")
            continue
        ns = [float(r["cpu_ns"]) for r in runs[k]]
        ratios = [x / ref for x, ref in zip(ns, refs, strict=True) if ref]
        c = cov(ratios) if ratios else math.inf
        stable = c <= cfg.cov_threshold
        out[s["id"]] = Measurement(
            float(statistics.median(ns)) if stable else None,
            c,
            stable,
            ratio=float(statistics.median(ratios)) if ratios and stable else None,
            error=None if stable else "unstable",
        )
    return out
