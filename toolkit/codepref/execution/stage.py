"""The ``execute`` stage: samples × tests outcome matrices (SPEC §3, §4.3).

Adds ``exec_matrix`` (samples × ``tests``, or × stdin/stdout cases for ``io_tests``
problems), ``gen_exec_matrix`` (samples × ``gen_tests``, when that column exists),
``passed`` (every ground-truth test passed), ``exec_stderr`` (a bounded stderr tail per
failing sample) and ``test_trust`` (per ground-truth test: ``judged`` — the verdict was decided
in a judge process the sample cannot reach — or ``in-process``; see ``trust``). Model-written
``gen_tests`` are always judged, each unit in a judge and a sample process of its own. One warm
sandboxed pool serves the whole run; rows are executed shard by shard, so an interrupted run resumes
without re-executing finished shards.

The jobs run on an execution backend (``backend``): ``WorkerPool`` on this machine, or ``RayPool``,
the same sandboxed pool on every node of a Ray cluster, so the output is identical either way.
"""

from __future__ import annotations

import logging
import os

from datasets import Dataset, List, Value

from ..config import config_fingerprint, config_to_dict
from ..errors import ConfigError, DataError
from ..resumable import pending_shards, require_columns, run_sharded_stage
from .backend import ExecutionBackend, open_backend
from .config import ExecuteConfig, Outcome
from .pool import WorkerPool
from .trust import JUDGED, trust_levels

logger = logging.getLogger(__name__)
MATRIX = List(List(Value("int8")))


def _check(row: dict, index: int) -> None:
    tid = row.get("task_id")
    samples = row.get("samples")
    if not isinstance(samples, list) or not all(isinstance(s, str) for s in samples):
        raise DataError("must be a list of programs (run sample first)", task_id=tid, field="samples", row=index)
    if not isinstance(row.get("tests"), list):
        raise DataError("must be a list of test units", task_id=tid, field="tests", row=index)


def _plan(rows: list[dict], cfg: ExecuteConfig, want_gt: bool, want_gen: bool) -> tuple[list, list, list]:
    """(jobs, plan, trust levels) for already-checked ``rows``: one job per sample and matrix."""
    jobs: list[dict] = []
    plan: list[tuple[str, int, int, int]] = []  # (kind, row, first job, count) per matrix
    trust = [
        trust_levels(row["tests"], row.get("test_setup") or "", row.get("canonical_solution"))
        if row["tests"] or not (row.get("io_tests") or {}).get("input")
        else [JUDGED] * len(row["io_tests"]["input"])
        for row in rows
    ]
    for r, row in enumerate(rows):
        samples, setup, entry = row["samples"], row.get("test_setup") or "", row.get("entry_point")
        io = row.get("io_tests")
        if want_gt and io and io.get("input") and not row["tests"]:
            plan.append(("io", r, len(jobs), len(samples)))
            jobs += [WorkerPool.io_job(s, io["input"], io["output"], cfg.float_tolerance) for s in samples]
        elif want_gt:
            plan.append(("gt", r, len(jobs), len(samples)))
            jobs += [WorkerPool.assert_job(s, row["tests"], setup, entry_point=entry, trust=trust[r]) for s in samples]
        if want_gen:
            plan.append(("gen", r, len(jobs), len(samples)))
            gen = row.get("gen_tests") or []
            jobs += [WorkerPool.assert_job(s, gen, setup, untrusted=True, entry_point=entry) for s in samples]
    return jobs, plan, trust


def _assemble(n_rows: int, plan: list, trust: list, results: list, want_gt: bool, want_gen: bool) -> dict:
    """The new columns from the results of :func:`_plan`'s jobs."""
    out: dict[str, list] = {}
    if want_gt:
        out.update(exec_matrix=[[] for _ in range(n_rows)], passed=[[] for _ in range(n_rows)])
        out.update(exec_stderr=[[] for _ in range(n_rows)], test_trust=trust)
    if want_gen:
        out["gen_exec_matrix"] = [[] for _ in range(n_rows)]
    for kind, r, start, count in plan:
        done = results[start : start + count]
        matrix = [list(res.codes) for res in done]
        if kind == "gen":
            out["gen_exec_matrix"][r] = matrix
            continue
        out["exec_matrix"][r] = matrix
        out["passed"][r] = [res.passed for res in done]
        out["exec_stderr"][r] = ["" if res.passed else res.stderr_tail for res in done]
    return out


def _rows(batch: dict[str, list]) -> list[dict]:
    rows = [{k: v[i] for k, v in batch.items()} for i in range(len(batch["task_id"]))]
    for i, row in enumerate(rows):
        _check(row, i)
    return rows


class _LookAhead:
    """Keeps the pool busy across shard boundaries: while a shard finishes (its slowest sample holding
    it), the next pending shard's jobs are already running. Only work not yet saved is ever redone."""

    MAX_AHEAD = 8  # shards
    QUEUED_PER_SLOT = 16  # jobs waiting per slot before looking further ahead

    def __init__(self, ds: Dataset, bounds: list[tuple[int, int]], pool: ExecutionBackend, cfg, want_gt, want_gen):
        self.ds, self.bounds, self.pool = ds, list(bounds), pool
        self.args = (cfg, want_gt, want_gen)
        self.started: dict[tuple, tuple] = {}

    @staticmethod
    def _key(rows: list[dict]) -> tuple:
        return tuple((r["task_id"], len(r["samples"]), hash(tuple(r["samples"]))) for r in rows)

    def _start(self, rows: list[dict]) -> tuple:
        jobs, plan, trust = _plan(rows, *self.args)
        return plan, trust, self.pool.submit_jobs(jobs)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        rows = _rows(batch)
        key = self._key(rows)
        plan, trust, futures = self.started.pop(key, None) or self._start(rows)
        if self.bounds:
            self.bounds.pop(0)  # this shard (map_in_shards computes the pending shards in order)
        # later pending shards start now, behind this one's jobs, until enough work is queued to cover
        # this shard's slowest sample (at most a few shards ahead)
        for a, b in self.bounds[: self.MAX_AHEAD]:
            queued = sum(not f.done() for _, _, fs in self.started.values() for f in fs)
            if queued >= self.QUEUED_PER_SLOT * self.pool.n_slots:
                break
            nxt = _rows(self.ds.select(range(a, b)).to_dict())
            key = self._key(nxt)
            if key not in self.started:
                self.started[key] = self._start(nxt)
        results = [f.result() for f in futures]
        return _assemble(len(rows), plan, trust, results, *self.args[1:])


def execute(
    ds: Dataset,
    cfg: ExecuteConfig | None = None,
    *,
    work_dir: str | os.PathLike | None = None,
    pool: ExecutionBackend | None = None,
) -> Dataset:
    """Run every sample against its problem's tests in the sandbox and record the outcome codes.

    ``pool``: a warm backend to reuse across calls (a ``WorkerPool`` for backend=local, a ``RayPool``
    for backend=ray); by default the one ``cfg.backend`` names is started and closed here.
    """
    cfg = cfg or ExecuteConfig()
    require_columns(ds, ("samples",), "run sample first")
    want_gt = cfg.tests in ("both", "ground_truth")
    want_gen = cfg.tests in ("both", "generated") and "gen_tests" in ds.column_names
    if cfg.tests == "generated" and "gen_tests" not in ds.column_names:
        raise DataError("tests=generated but the dataset has no gen_tests column", field="gen_tests")
    if pool is not None and pool.backend != cfg.backend:
        raise ConfigError(f"backend={cfg.backend!r} does not match the pool passed ({type(pool).__name__})")
    own = pool is None
    backend = pool if pool is not None else open_backend(cfg)
    try:
        isolation = backend.isolation.as_dict()
        # the backend does not change any verdict: shards are shared between backends (resume either way)
        same_results = {k: v for k, v in config_to_dict(cfg).items() if k not in ("backend", "ray_address")}
        fingerprint = config_fingerprint(same_results, {"isolation": isolation, "v": 2})
        pending = pending_shards(ds, fingerprint=fingerprint, work_dir=work_dir, shard_size=cfg.shard_size)
        features = {"gen_exec_matrix": MATRIX} if want_gen else {}
        if want_gt:
            features = {
                "exec_matrix": MATRIX,
                "passed": List(Value("bool")),
                "exec_stderr": List(Value("string")),
                "test_trust": List(Value("string")),
                **features,
            }

        def record() -> dict:
            return {
                **config_to_dict(cfg),
                "isolation": isolation,
                "outcome_codes": {o.name.lower(): int(o) for o in Outcome},
                **backend.describe(),
            }

        return run_sharded_stage(
            ds,
            _LookAhead(ds, pending, backend, cfg, want_gt, want_gen),
            step="execute",
            features=features,
            fingerprint=fingerprint,
            record=record,
            work_dir=work_dir,
            shard_size=cfg.shard_size,
        )
    finally:
        if own:
            backend.close()
