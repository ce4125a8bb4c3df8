"""Dataset statistics in the style of Code-Optimise's Table 1, plus pair counts per kind."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from datasets import Dataset

from .pairs import effective_passed, keep_problem


def dataset_stats(ds: Dataset, *, min_passing: int = 2, min_failing: int = 1) -> dict[str, Any]:
    """Problems total/kept/ratio, solutions total/kept/ratio, pass rate, mean runtime CoV, pairs per kind.

    A problem is *kept* when it has pairs (if the dataset is paired) or, before pairing, when it
    passes Code-Optimise's filter (≥ ``min_passing`` passing, ≥ ``min_failing`` failing samples);
    *solutions kept* are the samples of kept problems (Table 1's "Ratio").
    """
    cols = set(ds.column_names)
    out: dict[str, Any] = {"problems_total": len(ds)}
    if "samples" not in cols:
        return out
    n_samples = [len(s) for s in ds["samples"]]
    out["solutions_total"] = int(sum(n_samples))
    kept = [True] * len(ds)
    if "passed" in cols:
        runtimes = ds["runtime_ns"] if "runtime_ns" in cols else [None] * len(ds)
        ok = [
            effective_passed(
                np.asarray(p, bool),
                None if r is None else np.array([np.nan if v is None else v for v in r], dtype=float),
            )
            for p, r in zip(ds["passed"], runtimes, strict=True)
        ]
        passing = int(sum(int(o.sum()) for o in ok))
        out["solutions_passing"] = passing
        out["pass_rate"] = passing / max(1, out["solutions_total"])
        out["problems_solved"] = int(sum(bool(o.any()) for o in ok))
        kept = [keep_problem(o, min_passing, min_failing) for o in ok]
    if "pairs" in cols:
        kept = [len(p) > 0 for p in ds["pairs"]]
        kinds = Counter(p["kind"] for row in ds["pairs"] for p in row)
        out["pairs_total"] = int(sum(kinds.values()))
        out["pairs_per_kind"] = dict(sorted(kinds.items()))
    if "passed" in cols or "pairs" in cols:
        out["problems_kept"] = int(sum(kept))
        out["problems_ratio"] = out["problems_kept"] / max(1, len(ds))
        out["solutions_kept"] = int(sum(n for n, k in zip(n_samples, kept, strict=True) if k))
        out["solutions_ratio"] = out["solutions_kept"] / max(1, out["solutions_total"])
    if "runtime_cov" in cols:
        covs = [c for row in ds["runtime_cov"] for c in (row or []) if c is not None]
        out["runtime_cov_mean"] = float(np.mean(covs)) if covs else None
        out["runtime_cov_max"] = float(np.max(covs)) if covs else None
        out["runtimes_measured"] = len(covs)
    return out
