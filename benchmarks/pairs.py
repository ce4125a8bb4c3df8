"""Ranking + pairing throughput: 10,000 problems × 100 samples × 20 tests (synthetic), every policy.

Target (issue 5): ≤ 60 s total on 2 cores. Prints seconds per method/policy, pairs made, and
the total. Matrices are synthetic: per problem a latent sample quality and test difficulty
decide passes, so pass rates vary across problems as in real data.

    python benchmarks/pairs.py [--problems 10000] [--samples 100] [--tests 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from codepref.pairs import code_optimise_pairs, codedpo_pairs, dstc_pairs, iotacode_pairs
from codepref.ranking import dual_agreement, minimax, self_validation


def synthetic(problems: int, samples: int, tests: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(problems):
        skill = rng.normal(rng.normal(0, 1.5), 1.0, size=samples)
        hard = rng.normal(0, 1.0, size=tests)
        r = (skill[:, None] - hard[None, :] + rng.normal(0, 0.5, (samples, tests))) > 0
        runtime = np.where(r.all(axis=1), rng.lognormal(11, 0.5, samples), np.nan)
        base = "".join(rng.choice(list("abcdefgh(): \n"), size=160))
        codes = [base[: 80 + int(k)] + str(k) for k in rng.integers(0, 80, size=samples)]
        yield r, runtime, codes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--tests", type=int, default=20)
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = list(synthetic(args.problems, args.samples, args.tests))
    print(
        f"synthetic data: {args.problems} × {args.samples} × {args.tests} in {time.perf_counter() - t0:.1f} s "
        "(not counted)"
    )
    steps = {
        "rank: pass_count": lambda r, rt, c: r.sum(axis=1),
        "rank: self_validation": lambda r, rt, c: self_validation(r),
        "rank: dual_agreement": lambda r, rt, c: dual_agreement(r),
        "rank: minimax": lambda r, rt, c: minimax(r),
        "pairs: code-optimise (All)": lambda r, rt, c: code_optimise_pairs(r.all(axis=1), rt),
        "pairs: iotacode (mix)": lambda r, rt, c: iotacode_pairs(c, r.all(axis=1), negatives="mix"),
        "pairs: codedpo": lambda r, rt, c: codedpo_pairs(r, rt),
        "pairs: dstc": lambda r, rt, c: dstc_pairs(r)[0],
    }
    total = 0.0
    print(f"{'step':32s} {'seconds':>8s} {'pairs':>12s}")
    for name, fn in steps.items():
        start = time.perf_counter()
        made = 0
        for r, rt, codes in data:
            out = fn(r, rt, codes)
            if isinstance(out, list):
                made += len(out)
        dt = time.perf_counter() - start
        total += dt
        print(f"{name:32s} {dt:8.2f} {made if name.startswith('pairs') else '':>12}")
    print(f"{'TOTAL':32s} {total:8.2f}   (target ≤ 60 s on 2 cores: {'met' if total <= 60 else 'NOT met'})")


if __name__ == "__main__":
    main()
