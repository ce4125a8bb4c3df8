"""Evaluation speed: metrics + comparison + report for 164 problems × 100 samples, three models.

Target (issue 8): ≤ 30 s on 2 cores. Results are synthetic but shaped like real runs
(per-problem pass rates, runtimes of passing samples, program texts).

    python benchmarks/evaluation.py [--problems 164] [--n 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from datasets import Dataset

from codepref.evaluation import compare_runs, write_report


def synthetic_run(problems: int, n: int, skill: float, speed: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(problems):
        rate = 1 / (1 + np.exp(-(skill + rng.normal(0, 2))))
        passed = (rng.random(n) < rate).tolist()
        base_rt = np.random.default_rng(p).lognormal(12, 1)  # the problem fixes the scale, not the model
        runtime = [float(base_rt * speed * rng.lognormal(0, 0.2)) if ok else None for ok in passed]
        samples = ["def f(x):\n" + "    x += 1\n" * int(rng.integers(1, 30)) + "    return x\n" for _ in range(n)]
        rows.append({"task_id": f"humaneval/{p}", "samples": samples, "passed": passed, "runtime_ns": runtime})
    return Dataset.from_list(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=164)
    ap.add_argument("--n", type=int, default=100)
    args = ap.parse_args()
    runs = {
        name: synthetic_run(args.problems, args.n, skill, speed, seed)
        for seed, (name, skill, speed) in enumerate([("base", -0.5, 1.0), ("sft", -0.3, 1.02), ("dpo", 0.0, 0.95)])
    }
    start = time.perf_counter()
    cmp = compare_runs(runs, base="base")
    mid = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        write_report(cmp, d)
    end = time.perf_counter()
    print(f"{args.problems} problems × {args.n} samples × {len(runs)} models")
    print(
        f"metrics + comparison: {mid - start:.2f} s; report + plots: {end - mid:.2f} s; "
        f"total {end - start:.2f} s (target ≤ 30 s: {'met' if end - start <= 30 else 'NOT met'})"
    )
    for name, m in cmp["models"].items():
        print(
            f"  {name}: pass@1 {m['metrics']['pass@k']['1']:.3f}, runtime ratio "
            f"{m['ratios_to_base'].get('runtime', float('nan')):.3f}"
        )


if __name__ == "__main__":
    main()
