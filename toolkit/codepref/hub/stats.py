"""Per-config statistics for dataset cards, computed with pyarrow (fast on 100k+ rows)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import DatasetDict


def _column(dd: DatasetDict, name: str) -> pa.ChunkedArray | None:
    parts = [ds.data.table.column(name) for ds in dd.values() if name in ds.column_names]
    if not parts:
        return None
    return pa.chunked_array([c for p in parts for c in p.chunks], type=parts[0].type)


def _flatten(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([pc.list_flatten(c) for c in arr.chunks], type=arr.type.value_type)


def config_statistics(dd: DatasetDict) -> dict[str, Any]:
    """Rows per split and columns; samples and pass rate where ``passed`` exists; pair counts by kind."""
    first = next(iter(dd.values()))
    stats: dict[str, Any] = {
        "rows": sum(len(ds) for ds in dd.values()),
        "splits": {name: len(ds) for name, ds in dd.items()},
        "columns": list(first.column_names),
    }
    passed = _column(dd, "passed")
    if passed is not None and pa.types.is_list(passed.type):
        flat = _flatten(passed)
        n, ok = len(flat), int(pc.sum(flat).as_py() or 0)
        stats.update(samples=n, passed=ok, pass_rate=round(ok / n, 6) if n else 0.0)
        stats["problems_solved"] = _problems_solved(passed)
    elif (samples := _column(dd, "samples")) is not None and pa.types.is_list(samples.type):
        stats["samples"] = len(_flatten(samples))
    pairs = _column(dd, "pairs")
    if pairs is not None and pa.types.is_list(pairs.type):
        flat = _flatten(pairs)
        stats["pairs"] = len(flat)
        if pa.types.is_struct(flat.type) and flat.type.get_field_index("kind") >= 0:
            kinds = pa.chunked_array([c.field("kind") for c in flat.chunks])
            stats["pairs_by_kind"] = {str(k): int(v) for k, v in Counter(kinds.to_pylist()).items()}
    elif "chosen" in first.column_names and "rejected" in first.column_names:
        stats["pairs"] = stats["rows"]
        kind = _column(dd, "kind")
        if kind is not None:
            stats["pairs_by_kind"] = {str(k): int(v) for k, v in Counter(kind.to_pylist()).items()}
    trust = _column(dd, "test_trust")
    if trust is not None and pa.types.is_list(trust.type):
        counts = Counter(_flatten(trust).to_pylist())
        stats.update(tests_judged=int(counts.get("judged", 0)), tests_in_process=int(counts.get("in-process", 0)))
    label = _column(dd, "label")
    if label is not None and pa.types.is_boolean(label.type):
        yes = int(pc.sum(label).as_py() or 0)
        stats.update(desirable=yes, undesirable=len(label) - label.null_count - yes)
    return stats


def _problems_solved(passed: pa.ChunkedArray) -> int:
    """Rows with at least one passing sample."""
    total = 0
    for chunk in passed.chunks:
        offsets = chunk.offsets.to_numpy()
        values = pc.fill_null(chunk.values, False).to_numpy(zero_copy_only=False).astype(np.int64)
        csum = np.concatenate([[0], values.cumsum()])
        per_row = csum[offsets[1:]] - csum[offsets[:-1]]
        total += int((per_row > 0).sum())
    return total
