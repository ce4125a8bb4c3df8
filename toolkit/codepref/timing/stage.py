"""The ``time`` stage: runtime_ns / runtime_cov / cost / timing_stable per sample."""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Callable, Sequence

from datasets import Dataset, List, Value

from ..config import config_fingerprint, config_to_dict
from ..errors import DataError
from ..execution import WorkerPool
from ..resumable import require_columns, run_sharded_stage
from ..sandbox.host import build_jail
from . import measure, runner
from .config import TimingConfig

logger = logging.getLogger(__name__)
SelectTests = Callable[[dict], Sequence[int]]
OUTPUT_COLUMNS = ("runtime_ns", "runtime_cov", "cost", "timing_stable", "runtime_ratio")


def _int_list(value, n: int, tid, name: str, row: int) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        raise DataError("must be a list of test indices (int)", task_id=tid, field=name, row=row)
    bad = [x for x in value if not 0 <= x < n]
    if bad:
        raise DataError(f"test indices {bad} out of range 0..{n - 1}", task_id=tid, field=name, row=row)
    return list(value)


def _passes(matrix, i: int, t: int) -> bool:
    return matrix is None or (i < len(matrix) and t < len(matrix[i]) and matrix[i][t] == 0)


def plan_row(row: dict, index: int, cfg: TimingConfig, select: SelectTests | None) -> dict[int, dict]:
    """{sample index: solution dict} for the passing samples of one row, on the chosen tests."""
    tid = row.get("task_id")
    samples, passed = row.get("samples"), row.get("passed")
    if not isinstance(samples, list) or not all(isinstance(s, str) for s in samples):
        raise DataError("must be a list of programs (run sample first)", task_id=tid, field="samples", row=index)
    if passed is None and cfg.tests == "credible" and select is None:
        passed = [True] * len(samples)  # no ground-truth verdicts (CodeDPO): the credible tests decide
    if not isinstance(passed, list) or len(passed) != len(samples) or not all(isinstance(p, bool) for p in passed):
        raise DataError(
            "must be a list of booleans, one per sample (run execute first)", task_id=tid, field="passed", row=index
        )
    tests = row.get("tests") or []
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise DataError("must be a list of test units", task_id=tid, field="tests", row=index)
    setup = row.get("test_setup") or ""
    entry = row.get("entry_point")
    io = row.get("io_tests") or None
    matrix = row.get("exec_matrix")
    plans: dict[int, dict] = {}
    if not tests and io and io.get("input"):
        if select is not None or cfg.tests != "passed":
            raise DataError("test subsets are not supported for stdin/stdout problems", task_id=tid, field="io_tests")
        for i, ok in enumerate(passed):
            if ok:
                plans[i] = {"program": samples[i], "inputs": list(io["input"]), "expected": list(io["output"])}
        return plans
    if cfg.tests == "credible":
        gen, gm, score = row.get("gen_tests"), row.get("gen_exec_matrix"), row.get("score")
        if not isinstance(gen, list):
            raise DataError("tests=credible needs gen_tests", task_id=tid, field="gen_tests", row=index)
        if not isinstance(gm, list) or len(gm) != len(samples):
            raise DataError("tests=credible needs one row per sample", task_id=tid, field="gen_exec_matrix", row=index)
        if not isinstance(score, list) or len(score) != len(samples):
            raise DataError(
                "tests=credible needs one score per sample (run rank)", task_id=tid, field="score", row=index
            )
        if not samples:
            return plans
        top = max(range(len(samples)), key=lambda i: (score[i], -i))  # argmax, first on ties
        credible = [t for t in range(len(gen)) if _passes(gm, top, t)]
        if not credible:  # nothing to time on; pairs make no efficiency pairs either
            return plans
        for i, ok in enumerate(passed):
            # CodeDPO: a sample failing a credible test takes the time penalty (pairs), so it is not timed
            if ok and all(_passes(gm, i, t) for t in credible):
                plans[i] = {
                    "program": samples[i],
                    "setup": setup,
                    "tests": [gen[t] for t in credible],
                    "entry_point": entry,
                    "untrusted": True,  # model-written tests: a judge of their own, like execute's
                }
        return plans
    if select is not None:
        subset = _int_list(list(select(row)), len(tests), tid, "select_tests", index)
    elif cfg.tests == "passed":
        subset = list(range(len(tests)))
    else:
        if cfg.tests not in row:
            raise DataError(f"no column {cfg.tests!r} with test indices", task_id=tid, field=cfg.tests, row=index)
        subset = _int_list(row[cfg.tests], len(tests), tid, cfg.tests, index)
    for i, ok in enumerate(passed):
        if ok:
            units = [tests[t] for t in subset if _passes(matrix, i, t)]
            plans[i] = {"program": samples[i], "setup": setup, "tests": units, "entry_point": entry}
    return plans


def time_samples(
    ds: Dataset,
    cfg: TimingConfig | None = None,
    *,
    work_dir: str | os.PathLike | None = None,
    select_tests: SelectTests | None = None,
) -> Dataset:
    """Time every passing sample in the sandbox; add runtime_ns, runtime_cov, timing_stable (+ cost / ratio).

    Failed samples get nulls (``timing_stable`` null: not timed). A passing sample whose measurement
    never stabilised or errored gets ``runtime_ns`` null, ``timing_stable`` False and ``passed`` False:
    "In the unlikely scenario that a stable runtime could not be obtained, we set passed = False (mark
    solution as failed)" (Code-Optimise §3.2), so every later reader (pairs, stats, evaluation metrics)
    sees it failed. The execution verdicts stay in ``exec_matrix``.
    ``select_tests(row) -> indices into row["tests"]`` overrides ``cfg.tests`` (not part of the fingerprint:
    pass a fresh ``work_dir`` when you change it).
    """
    cfg = cfg or TimingConfig()
    needed = ("samples",) if cfg.tests == "credible" and select_tests is None else ("samples", "passed")
    require_columns(ds, needed, "run execute first")
    if cfg.tests not in ("passed", "credible") and cfg.tests not in ds.column_names and select_tests is None:
        raise DataError(f"tests={cfg.tests!r} names no column of the dataset", field=cfg.tests)
    if cfg.mode == "count" and (runner.find_valgrind() is None or build_jail() is None):
        raise DataError(
            "mode=count needs valgrind and a C compiler with Python's headers (Debian: valgrind, gcc)", field="mode"
        )
    pool = WorkerPool(cfg, counting=cfg.mode == "count")
    infos: list[dict] = []
    want_cost = cfg.mode == "count"
    want_ratio = cfg.mode == "interleaved"
    marks_failed = "passed" in ds.column_names

    def fn(batch: dict[str, list]) -> dict[str, list]:
        n_rows = len(batch["samples"])
        rows = [{k: v[r] for k, v in batch.items()} for r in range(n_rows)]
        plans = [plan_row(row, r, cfg, select_tests) for r, row in enumerate(rows)]
        sols = [{"id": (r, i), **p} for r, plan in enumerate(plans) for i, p in plan.items()]
        results: dict = {}
        if cfg.mode == "code-optimise":
            results = measure.code_optimise(sols, cfg, pool)
        elif cfg.mode == "count":
            results, info = measure.count(sols, cfg, pool)
            infos.append(info)
        else:
            results = measure.interleaved([[s for s in sols if s["id"][0] == r] for r in range(n_rows)], cfg, pool)
        out: dict[str, list] = {"runtime_ns": [], "runtime_cov": [], "timing_stable": []}
        if marks_failed:
            out["passed"] = []
        if want_cost:
            out["cost"] = []
        if want_ratio:
            out["runtime_ratio"] = []
        for r, row in enumerate(rows):
            n = len(row["samples"])
            m = [results.get((r, i)) for i in range(n)]
            out["runtime_ns"].append([x.runtime_ns if x else None for x in m])
            out["runtime_cov"].append([x.runtime_cov if x else None for x in m])
            out["timing_stable"].append([x.stable if x else None for x in m])
            if marks_failed:  # Code-Optimise §3.2: no stable runtime → failed
                out["passed"].append(
                    [bool(p) and not (x is not None and not x.stable) for p, x in zip(row["passed"], m, strict=True)]
                )
            if want_cost:
                out["cost"].append([x.cost if x else None for x in m])
            if want_ratio:
                out["runtime_ratio"].append([x.ratio if x else None for x in m])
            for i, x in enumerate(m):
                if x is not None and x.error:
                    logger.info("time: %s sample %d not timed: %s", row.get("task_id"), i, x.error[:200])
        return out

    features = {"runtime_ns": List(Value("float64")), "runtime_cov": List(Value("float64"))}
    features["timing_stable"] = List(Value("bool"))
    if want_cost:
        features["cost"] = List(Value("int64"))
    if want_ratio:
        features["runtime_ratio"] = List(Value("float64"))
    if marks_failed:
        features["passed"] = List(Value("bool"))
    try:
        isolation = pool.isolation.as_dict()
        return run_sharded_stage(
            ds,
            fn,
            step="time",
            desc=f"time ({cfg.mode})",
            features=features,
            fingerprint=config_fingerprint(cfg, {"v": 3, "isolation": isolation}),
            record=lambda: _record(cfg, isolation, infos),
            work_dir=work_dir,
            shard_size=cfg.shard_size,
            replaces=[*OUTPUT_COLUMNS, *(["passed"] if marks_failed else [])],
        )
    finally:
        pool.close()


def _record(cfg: TimingConfig, isolation: dict, infos: list[dict]) -> dict:
    """The provenance entry of a timing run: how it measured, on what."""
    record = {
        "mode": cfg.mode,
        **config_to_dict(cfg),
        "cpu_model": runner.cpu_model(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "isolation": isolation,
        "measured": "every run is a fresh sample process answering every timed test once, each answer checked by "
        "the judge; CPU time read by the sandbox server from the kernel (the process's CPU clock, all threads)"
        + (
            "; instructions from valgrind's own totals for the run's process, minus those of an echo of the same "
            "conversation without the program (the harness's share)"
            if cfg.mode == "count"
            else ""
        ),
        "perf_counters_available": runner.perf_counters_available() if cfg.mode == "count" else None,
        "runtime_ns_meaning": {
            "count": "cost (instructions of the program's work in a run, median of the counted runs) x ns per "
            "instruction of a calibration workload timed natively on this CPU; rank by cost",
            "code-optimise": "mean over repetitions of the last stable batch's mean CPU time of a run (the "
            "program's definition and every timed test)",
            "interleaved": "median CPU time per run measured round-robin; runtime_ratio = median per-round ratio "
            f"to the round's {cfg.reference} candidate",
        }[cfg.mode],
    }
    if cfg.mode == "count":
        record["counter"] = "cachegrind"
        record["valgrind_version"] = runner.valgrind_version()
        record["valgrind_args"] = list(runner.VALGRIND_ARGS)
        cal = [i for i in infos if i.get("ns_per_instruction")]
        if cal:
            record["ns_per_instruction"] = sum(i["ns_per_instruction"] for i in cal) / len(cal)
    return record
