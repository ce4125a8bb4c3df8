"""The three timing modes on a flat list of solutions (no datasets here; see transform.py for rows).

A *solution* is ``{"id": any marshal-able key, "program": str, "setup": str, "tests": [str]}``
(or ``"inputs": [str]`` for stdin/stdout problems). Each function returns ``{id: Measurement}``.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .config import TimingConfig
from .runner import Launcher

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


# -- code-optimise ---------------------------------------------------------------------------------
def code_optimise(sols: list[dict], cfg: TimingConfig, launcher: Launcher) -> dict:
    """Algorithm 1 per solution in ``cfg.processes`` separate processes, one solution at a time."""
    params = {
        "batch": cfg.batch_size,
        "threshold": cfg.cov_threshold,
        "max_batches": cfg.max_batches,
        "budget": cfg.max_seconds,
    }
    jobs = [{**s, "id": (k, p)} for k, s in enumerate(sols) for p in range(cfg.processes)]
    timeout = len(jobs) * (cfg.max_seconds + cfg.timeout + 10) + 60
    results = launcher.run("cpu", jobs, params, timeout=timeout)
    by_sol: dict[int, list[dict]] = {}
    for r in results:
        by_sol.setdefault(r["id"][0], []).append(r)
    out = {}
    for k, s in enumerate(sols):
        runs = by_sol.get(k, [])
        errors = [r["error"] for r in runs if "error" in r]
        if errors or len(runs) != cfg.processes:
            out[s["id"]] = _failed(errors[0] if errors else "missing result")
            continue
        means = [float(r["mean"]) for r in runs]
        if not all(r["stable"] for r in runs):  # Algorithm 1: never stable → marked failed
            out[s["id"]] = Measurement(None, cov(means), False, error="unstable")
            continue
        out[s["id"]] = Measurement(sum(means) / len(means), cov(means), True)
    return out


# -- count (callgrind) -----------------------------------------------------------------------------
_NATIVE_NS_PER_IR: dict[str, float] = {}
# The calibration workload's count, once per process and warm-up setting (a count is deterministic),
# so a dataset's shards after the first do not measure it again.
CALIBRATION_IR: dict[tuple, int] = {}


def _native_calibration_ns() -> float:
    """Median CPU time of the trusted calibration workload, run natively in this process (once)."""
    if "ns" in _NATIVE_NS_PER_IR:
        return _NATIVE_NS_PER_IR["ns"]
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
    _NATIVE_NS_PER_IR["ns"] = float(statistics.median(times))
    return _NATIVE_NS_PER_IR["ns"]


def count(sols: list[dict], cfg: TimingConfig, launcher: Launcher) -> tuple[dict, dict]:
    """callgrind instruction counts, many solutions per valgrind run, spread over parallel sessions."""
    params = {
        "warmup": cfg.warmup,
        "warmup_ns": int(cfg.warmup_seconds * 1e9),
        "repeats": cfg.repeats,
        "budget": cfg.max_seconds,
    }
    jobs = list(sols)
    cal_key = (cfg.warmup, cfg.warmup_seconds, launcher.bwrap is not None)
    if cfg.calibrate and cal_key not in CALIBRATION_IR:
        jobs.append(CALIBRATION)
    n = min(cfg.sessions or (os.cpu_count() or 1), len(jobs)) or 1
    # Round-robin over the sessions; they are independent (counts do not depend on load).
    chunks: list[list[dict]] = [jobs[i::n] for i in range(n)]
    timeout_each = max(len(c) for c in chunks) * (cfg.max_seconds + 10) + 120

    def run(args: tuple[int, list[dict]]) -> list[dict]:
        slot, chunk = args
        return launcher.run("count", chunk, params, slot=slot, valgrind=True, timeout=timeout_each)

    with ThreadPoolExecutor(max_workers=n) as ex:
        results = [r for part in ex.map(run, enumerate(chunks)) for r in part]
    by_id = {r["id"]: r for r in results}
    info: dict = {}
    ns_per_ir = None
    cal = by_id.pop(CALIBRATION["id"], None)
    if cal is not None and "counts" in cal:
        CALIBRATION_IR[cal_key] = int(statistics.median(cal["counts"]))
    if cfg.calibrate and cal_key in CALIBRATION_IR:
        ir = CALIBRATION_IR[cal_key]
        native = _native_calibration_ns()
        ns_per_ir = native / ir if ir else None
        info = {"calibration_ir": int(ir), "calibration_ns": native, "ns_per_instruction": ns_per_ir}
    out = {}
    for s in sols:
        r = by_id.get(s["id"])
        if r is None or "counts" not in r:
            out[s["id"]] = _failed((r or {}).get("error", "missing result"))
            continue
        counts = [int(c) for c in r["counts"]]
        c = cov(counts)
        cost = int(statistics.median(counts))
        stable = c <= cfg.cov_threshold
        runtime = cost * ns_per_ir if (ns_per_ir and stable) else None
        if not cfg.calibrate and stable:
            runtime = float(cost)  # documented: without calibration runtime_ns carries the raw count
        out[s["id"]] = Measurement(runtime, c, stable, cost=cost, error=None if stable else "unstable")
    return out, info


# -- interleaved -----------------------------------------------------------------------------------
def interleaved(sols: list[dict], cfg: TimingConfig, launcher: Launcher) -> dict:
    """All candidates of ONE problem timed round-robin; ratios per round cancel shared noise."""
    if not sols:
        return {}
    params = {
        "warmup": max(1, cfg.warmup_rounds),
        "rounds": cfg.rounds,
        "budget": cfg.max_seconds,
        "turn_ns": int(cfg.turn_ms * 1e6),
    }
    timeout = (cfg.rounds + cfg.warmup_rounds + 1) * len(sols) * (cfg.timeout + 1) + 60
    results = launcher.run("interleave", sols, params, timeout=timeout)
    by_id = {r["id"]: r for r in results}
    ok = [s["id"] for s in sols if "error" not in by_id[s["id"]] and len(by_id[s["id"]]["ns"]) == cfg.rounds]
    out = {}
    refs = []
    for r in range(cfg.rounds):
        vals = [by_id[i]["ns"][r] for i in ok]
        if not vals:
            refs.append(None)
        elif cfg.reference == "first":
            refs.append(vals[0])
        else:  # geometric mean of the round's candidates: every candidate moves it a little
            refs.append(math.exp(sum(math.log(max(v, 1)) for v in vals) / len(vals)))
    for s in sols:
        res = by_id[s["id"]]
        if s["id"] not in ok:
            out[s["id"]] = _failed(res.get("error", "incomplete"))
            continue
        ns = [float(x) for x in res["ns"]]
        ratios = [x / ref for x, ref in zip(ns[: len(refs)], refs, strict=True) if ref]
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
