"""Dataset statistics — the one function behind ``codepref stats``, ``codepref show`` and dataset cards.

Code-Optimise's Table 1 (problems and solutions kept by its filter, pass rate) plus pair counts per kind,
runtime CoV, test trust levels and KTO labels, computed with pyarrow over every split (fast on 100k+
rows). A passing sample without a stable runtime counts as failed (Code-Optimise §3.2,
``pairs.effective_passed``) everywhere these numbers are shown.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict


def _column(dd: DatasetDict, name: str) -> pa.ChunkedArray | None:
    parts = [ds.data.table.column(name) for ds in dd.values() if name in ds.column_names]
    if not parts:
        return None
    return pa.chunked_array([c for p in parts for c in p.chunks], type=parts[0].type)


def _is_list(arr: pa.ChunkedArray | None) -> bool:
    return arr is not None and (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type))


def _flat(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([pc.list_flatten(c) for c in arr.chunks], type=arr.type.value_type)


def _lengths(arr: pa.ChunkedArray) -> np.ndarray:
    """Items per row (0 for a null list)."""
    parts = [pc.fill_null(pc.list_value_length(c), 0).to_numpy(zero_copy_only=False) for c in arr.chunks]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _per_row(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (flat, row after row) per row."""
    csum = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    ends = np.cumsum(lengths)
    return csum[ends] - csum[ends - lengths]


def _effective_passed(dd: DatasetDict, passed: pa.ChunkedArray, lengths: np.ndarray) -> np.ndarray:
    ok = pc.fill_null(_flat(passed), False).to_numpy(zero_copy_only=False).astype(bool)
    runtime = _column(dd, "runtime_ns")
    if _is_list(runtime) and np.array_equal(_lengths(runtime), lengths):
        rt = _flat(runtime).to_numpy(zero_copy_only=False)  # nulls become nan
        ok &= ~np.isnan(rt.astype(float))
    return ok


def dataset_stats(data: Dataset | DatasetDict, *, min_passing: int = 2, min_failing: int = 1) -> dict[str, Any]:
    """Statistics of a dataset (every split of a ``DatasetDict``).

    Always ``rows``, ``splits``, ``columns``. With ``samples``: ``problems_total``, ``solutions_total``;
    with ``passed`` too: ``solutions_passing``, ``pass_rate``, ``problems_solved`` (passing = passed and,
    when ``runtime_ns`` exists, a stable runtime), and Table 1's ``problems_kept``/``problems_ratio``/
    ``solutions_kept``/``solutions_ratio`` — a problem is kept when it has pairs (paired data) or passes
    Code-Optimise's filter (≥ ``min_passing`` passing, ≥ ``min_failing`` failing samples). Pairs (a
    ``pairs`` column, or one pair per row in TRL's format): ``pairs_total``, ``pairs_per_kind``. Timing:
    ``runtime_cov_mean``/``runtime_cov_max``/``runtimes_measured``. ``test_trust``: ``tests_judged``,
    ``tests_in_process``. KTO ``label``: ``desirable``, ``undesirable``.
    """
    dd = data if isinstance(data, DatasetDict) else DatasetDict({"train": data})
    first = next(iter(dd.values()))
    out: dict[str, Any] = {
        "rows": sum(len(ds) for ds in dd.values()),
        "splits": {name: len(ds) for name, ds in dd.items()},
        "columns": list(first.column_names),
    }
    samples, passed, pairs = _column(dd, "samples"), _column(dd, "passed"), _column(dd, "pairs")
    kept: np.ndarray | None = None
    n_samples = None
    if _is_list(samples):
        n_samples = _lengths(samples)
        out["problems_total"] = out["rows"]
        out["solutions_total"] = int(n_samples.sum())
        if _is_list(passed) and np.array_equal(_lengths(passed), n_samples):
            ok = _effective_passed(dd, passed, n_samples)
            per_row = _per_row(ok, n_samples)
            out["solutions_passing"] = int(ok.sum())
            out["pass_rate"] = out["solutions_passing"] / max(1, out["solutions_total"])
            out["problems_solved"] = int((per_row > 0).sum())
            kept = (per_row >= min_passing) & (n_samples - per_row >= min_failing)
    if _is_list(pairs):
        n_pairs = _lengths(pairs)
        flat = _flat(pairs)
        out["pairs_total"] = int(n_pairs.sum())
        if pa.types.is_struct(flat.type) and flat.type.get_field_index("kind") >= 0:
            kinds = Counter(pa.chunked_array([c.field("kind") for c in flat.chunks]).to_pylist())
            out["pairs_per_kind"] = {str(k): int(v) for k, v in sorted(kinds.items())}
        kept = n_pairs > 0
    elif "chosen" in first.column_names and "rejected" in first.column_names:
        out["pairs_total"] = out["rows"]
        kind = _column(dd, "kind")
        if kind is not None:
            out["pairs_per_kind"] = {str(k): int(v) for k, v in sorted(Counter(kind.to_pylist()).items())}
    if kept is not None and n_samples is not None:
        out["problems_kept"] = int(kept.sum())
        out["problems_ratio"] = out["problems_kept"] / max(1, out["rows"])
        out["solutions_kept"] = int(n_samples[kept].sum())
        out["solutions_ratio"] = out["solutions_kept"] / max(1, out["solutions_total"])
    cov = _column(dd, "runtime_cov")
    if _is_list(cov):
        covs = _flat(cov).drop_null().to_numpy(zero_copy_only=False).astype(float)
        covs = covs[~np.isnan(covs)]
        out["runtime_cov_mean"] = float(covs.mean()) if len(covs) else None
        out["runtime_cov_max"] = float(covs.max()) if len(covs) else None
        out["runtimes_measured"] = len(covs)
    trust = _column(dd, "test_trust")
    if _is_list(trust):
        counts = Counter(_flat(trust).to_pylist())
        out.update(tests_judged=int(counts.get("judged", 0)), tests_in_process=int(counts.get("in-process", 0)))
    label = _column(dd, "label")
    if label is not None and pa.types.is_boolean(label.type):
        yes = int(pc.sum(label).as_py() or 0)
        out.update(desirable=yes, undesirable=len(label) - label.null_count - yes)
    return out
