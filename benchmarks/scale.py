"""Scale-out: the local and Ray execution backends on the same workload, and resuming an interrupted run.

Usage: python benchmarks/scale.py [--problems 200] [--samples 20] [--tests 5] [--shard-size 16]
                                  [--ray-address ADDR] [--skip-resume]

Workload: generated problems (``f(x) = a*x + b``), each with ``--samples`` programs (correct ones in
several styles, wrong ones, ones that raise, a syntax error) and ``--tests`` assert units.
Prints:
  * test verdicts/s and samples/s of ``execute`` with backend=local and backend=ray (warm pools, best
    of --repeat runs; the output of both is checked to be identical);
  * Ray's fixed overhead, apart: ``ray.init`` (a new local instance unless --ray-address) and the
    start-up of the per-node workers with their sandboxed pools (the local pool's start-up too);
  * resume: a fresh run with ``work_dir`` against an interrupted one (an exception injected after half
    of the shards) that is then resumed, and a re-run when every shard is already done, per backend.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "toolkit"))

import datasets  # noqa: E402
from datasets import Dataset  # noqa: E402

from codepref.execution import ExecuteConfig, WorkerPool, execute  # noqa: E402

datasets.disable_progress_bars()


def workload(n_problems: int, n_samples: int, n_tests: int) -> Dataset:
    rows = []
    for k in range(n_problems):
        a, b = k % 7 + 1, k % 11
        good = [
            f"def f(x):\n    return {a} * x + {b}\n",
            f"def f(x):\n    y = x * {a}\n    return y + {b}\n",
            f"def f(x):\n    return sum([x] * {a}) + {b}\n",
            f"def f(x):\n    total = {b}\n    for _ in range({a}):\n        total += x\n    return total\n",
        ]
        bad = [
            f"def f(x):\n    return {a} * x + {b + 1}\n",  # wrong
            f"def f(x):\n    return {a} * x - {b} - 1\n",  # wrong
            "def f(x):\n    raise ValueError(x)\n",  # error
            f"def f(x)\n    return {a} * x + {b}\n",  # syntax error
        ]
        samples = [(good[j % 4] if j % 5 < 3 else bad[j % 4]) for j in range(n_samples)]
        rows.append(
            {
                "task_id": f"gen/{k}",
                "tests": [f"assert f({i}) == {a * i + b}" for i in range(n_tests)],
                "test_setup": "",
                "samples": samples,
            }
        )
    return Dataset.from_list(rows)


class Interrupted(Exception):
    pass


@contextlib.contextmanager
def interrupted_after_saving(shards: int):
    """Every run inside dies (``Interrupted``) when it would save its shard number ``shards + 1``."""
    real = Dataset.save_to_disk
    count = [0]

    def save(self, *args, **kwargs):
        if count[0] >= shards:
            raise Interrupted
        count[0] += 1
        return real(self, *args, **kwargs)

    Dataset.save_to_disk = save
    try:
        yield
    finally:
        Dataset.save_to_disk = real


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def resume_figures(ds: Dataset, cfg: ExecuteConfig, pool, n_shards: int) -> dict[str, float]:
    """fresh run, interrupted run (half the shards), resumed completion, re-run with everything done."""
    with tempfile.TemporaryDirectory(prefix="scale-fresh-") as fresh_dir:
        _, fresh = timed(lambda: execute(ds, cfg, pool=pool, work_dir=fresh_dir))
        _, all_done = timed(lambda: execute(ds, cfg, pool=pool, work_dir=fresh_dir))
    with tempfile.TemporaryDirectory(prefix="scale-resume-") as work_dir:
        half = n_shards // 2
        t0 = time.perf_counter()
        with contextlib.suppress(Interrupted), interrupted_after_saving(half):
            execute(ds, cfg, pool=pool, work_dir=work_dir)
        first = time.perf_counter() - t0
        _, resumed = timed(lambda: execute(ds, cfg, pool=pool, work_dir=work_dir))
    return {"fresh": fresh, "interrupted": first, "resumed": resumed, "all_done": all_done, "half": half}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--tests", type=int, default=5)
    ap.add_argument("--shard-size", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--ray-address", default=None)
    ap.add_argument("--repeat", type=int, default=2, help="runs per backend; the best is reported")
    ap.add_argument("--skip-resume", action="store_true")
    args = ap.parse_args()

    ds = workload(args.problems, args.samples, args.tests)
    n_samples = args.problems * args.samples
    n_verdicts = n_samples * args.tests
    n_shards = -(-args.problems // args.shard_size)
    common = {"timeout": args.timeout, "shard_size": args.shard_size}
    local_cfg = ExecuteConfig(**common)
    ray_cfg = ExecuteConfig(**common, backend="ray", ray_address=args.ray_address)
    print(
        f"workload: {args.problems} problems x {args.samples} samples x {args.tests} tests = "
        f"{n_samples} samples, {n_verdicts} test verdicts; {n_shards} shards of {args.shard_size}; "
        f"{os.cpu_count()} CPUs"
    )
    rows: list[tuple[str, str]] = []
    resume: dict[str, dict[str, float]] = {}

    # -- local ---------------------------------------------------------------------------------------
    pool, t_pool = timed(lambda: WorkerPool(local_cfg))
    with pool:
        runs = [timed(lambda: execute(ds, local_cfg, pool=pool)) for _ in range(args.repeat)]
        local_out, t_local = runs[0][0], min(t for _, t in runs)
        if not args.skip_resume:
            resume["local"] = resume_figures(ds, local_cfg, pool, n_shards)
    rows.append(("local: pool start-up (fork servers)", f"{t_pool:.2f} s ({pool.config.n_slots} slots)"))
    rows.append(
        ("local: execute (warm pool)", f"{t_local:.2f} s = {n_verdicts / t_local:,.0f} verdicts/s, "
         f"{n_samples / t_local:,.0f} samples/s")
    )  # fmt: skip

    # -- ray -----------------------------------------------------------------------------------------
    from codepref.execution.ray_backend import RayPool, ensure_ray

    ray, t_init = timed(lambda: ensure_ray(args.ray_address))
    rpool, t_actors = timed(lambda: RayPool(ray_cfg))
    with rpool:
        runs = [timed(lambda: execute(ds, ray_cfg, pool=rpool)) for _ in range(args.repeat)]
        ray_out, t_ray = runs[0][0], min(t for _, t in runs)
        cluster = rpool.describe()["ray_cluster"]
        if not args.skip_resume:
            resume["ray"] = resume_figures(ds, ray_cfg, rpool, n_shards)
    same = ray_out.to_list() == local_out.to_list() and ray_out.features == local_out.features
    rows.append(("ray: ray.init", f"{t_init:.2f} s"))
    rows.append(
        ("ray: worker start-up (actors + their pools)",
         f"{t_actors:.2f} s ({cluster['nodes']} node(s), {cluster['cpus']} CPUs, {cluster['slots']} slots)")
    )  # fmt: skip
    rows.append(
        ("ray: execute (warm workers)", f"{t_ray:.2f} s = {n_verdicts / t_ray:,.0f} verdicts/s, "
         f"{n_samples / t_ray:,.0f} samples/s")
    )  # fmt: skip
    total = t_init + t_actors + t_ray
    rows.append(
        ("ray: including fixed overhead", f"{total:.2f} s = {n_verdicts / total:,.0f} verdicts/s, "
         f"{n_samples / total:,.0f} samples/s")
    )  # fmt: skip
    rows.append(("ray - local, per problem row", f"{(t_ray - t_local) / args.problems * 1e3:+.1f} ms"))
    rows.append(("ray output identical to local", str(same)))

    for backend, r in resume.items():
        rows.append(
            (f"{backend}: fresh run with work_dir", f"{r['fresh']:.2f} s ({n_shards} shards saved)")
        )  # fmt: skip
        rows.append(
            (f"{backend}: interrupted after {r['half']} shards", f"{r['interrupted']:.2f} s")
        )  # fmt: skip
        rows.append(
            (f"{backend}: resume to completion", f"{r['resumed']:.2f} s "
             f"({r['resumed'] / r['fresh']:.0%} of fresh; {n_shards - r['half']} shards executed)")
        )  # fmt: skip
        rows.append((f"{backend}: re-run, every shard done", f"{r['all_done']:.2f} s (loads only)"))

    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print("-" * (width + 50))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if not same:
        sys.exit("Ray and local outputs differ")


if __name__ == "__main__":
    main()
