"""Shard-by-shard dataset transforms that survive interruption, and the skeleton of a long stage.

Long stages (sampling, execution, timing) run a batched function over the dataset one
shard at a time, through :func:`run_sharded_stage`: required columns checked, existing output
columns replaced, declared ``Features`` cast, provenance recorded. With a ``work_dir`` every
finished shard is saved atomically, so a run killed at any moment (even ``kill -9``) restarts
where it stopped: finished shards are loaded, not recomputed, and no row is lost or duplicated.
Shards are keyed by the input dataset's fingerprint and the stage's config fingerprint, so a
changed config never reuses stale work.

Why shards of our own and not the ``datasets`` cache: the cache writes a map's result only when
the whole map finishes (an interrupted map leaves nothing reusable), it is keyed by a fingerprint
of the function's pickled closure (a warm model or sandbox pool in the closure makes it unstable or
unpicklable), and it lives in a global cache folder rather than next to the stage's output. A shard
here is saved the moment it is done, keyed by the input's fingerprint and the config's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset, concatenate_datasets, load_from_disk

from . import progress
from .errors import DataError
from .provenance import get_provenance, with_provenance

logger = logging.getLogger(__name__)

BatchFn = Callable[[dict[str, list]], dict[str, list]]


def _shard_key(ds: Dataset, fingerprint: str, shard_size: int) -> str:
    blob = json.dumps([ds._fingerprint, fingerprint, shard_size, len(ds)]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _bounds(n: int, shard_size: int) -> list[tuple[int, int]]:
    return [(a, min(a + shard_size, n)) for a in range(0, n, shard_size)]


def pending_shards(
    ds: Dataset, *, fingerprint: str, work_dir: str | os.PathLike | None = None, shard_size: int = 16
) -> list[tuple[int, int]]:
    """The row ranges :func:`map_in_shards` will compute (those not saved by an earlier run), in order."""
    root = Path(work_dir) / _shard_key(ds, fingerprint, shard_size) if work_dir is not None else None
    return [
        (a, b)
        for i, (a, b) in enumerate(_bounds(len(ds), shard_size))
        if root is None or not (root / f"shard-{i:05d}").is_dir()
    ]


def map_in_shards(
    ds: Dataset,
    fn: BatchFn,
    *,
    desc: str,
    fingerprint: str,
    work_dir: str | os.PathLike | None = None,
    shard_size: int = 16,
    batch_size: int = 1,
    remove_columns: list[str] | None = None,
) -> Dataset:
    """Apply batched ``fn`` (batch dict → new/updated columns) to ``ds`` shard by shard.

    Progress counts rows. Without ``work_dir`` nothing is saved (no resume). The result has
    the input's rows in the input's order, with ``fn``'s columns added.
    """
    if shard_size < 1 or batch_size < 1:
        raise ValueError("shard_size and batch_size must be >= 1")
    n = len(ds)
    bounds = _bounds(n, shard_size)
    root: Path | None = None
    key = _shard_key(ds, fingerprint, shard_size)
    if work_dir is not None:
        root = Path(work_dir) / key
        root.mkdir(parents=True, exist_ok=True)
        (root / "meta.json").write_text(json.dumps({"desc": desc, "rows": n, "shards": len(bounds)}))
    done = {i for i in range(len(bounds)) if root is not None and (root / f"shard-{i:05d}").is_dir()}
    if done:
        logger.info("%s: resuming, %d of %d shards already done", desc, len(done), len(bounds))
    parts: list[Dataset] = []
    with progress.task(desc, total=n, completed=sum(b - a for i, (a, b) in enumerate(bounds) if i in done)) as adv:

        def counted(batch: dict[str, list]) -> dict[str, list]:
            out = fn(batch)
            adv(len(next(iter(batch.values()))) if batch else 0)
            return out

        for i, (a, b) in enumerate(bounds):
            shard_dir = root / f"shard-{i:05d}" if root is not None else None
            if shard_dir is not None and i in done:
                parts.append(load_from_disk(str(shard_dir)))
                continue
            part = ds.select(range(a, b)).map(
                counted,
                batched=True,
                batch_size=batch_size,
                load_from_cache_file=False,
                keep_in_memory=True,
                remove_columns=remove_columns,
                desc=None,
                new_fingerprint=hashlib.sha256(f"{key}:{i}".encode()).hexdigest()[:16],  # deterministic
            )
            if shard_dir is not None:
                tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
                part.save_to_disk(str(tmp / "d"))
                os.replace(tmp / "d", shard_dir)
                shutil.rmtree(tmp, ignore_errors=True)
                part = load_from_disk(str(shard_dir))
            parts.append(part)
    if not parts:
        return ds
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def require_columns(ds: Dataset, columns: Sequence[str], hint: str) -> None:
    """Raise ``DataError`` naming the columns the dataset lacks (``hint``: which stage makes them)."""
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise DataError(
            f"the dataset has no {missing[0]!r} column (lacks columns {missing}; has {ds.column_names}); {hint}",
            field=missing[0],
        )


def run_sharded_stage(
    ds: Dataset,
    fn: BatchFn,
    *,
    step: str,
    features: Mapping[str, Any],
    fingerprint: str,
    record: Callable[[], dict[str, Any]],
    work_dir: str | os.PathLike | None = None,
    shard_size: int = 16,
    desc: str | None = None,
    replaces: Sequence[str] | None = None,
) -> Dataset:
    """The skeleton every long stage runs: columns in (``fn`` of a shard's rows), columns out.

    ``fn`` maps a batch (one shard) to the new columns; ``features`` declares them (cast once at the
    end, so an all-empty or all-null column still gets its type). Input columns named in ``replaces``
    (default: the declared ones) are dropped first. Shards resume from ``work_dir`` (see
    :func:`map_in_shards`). ``record()`` — called after the last shard, while the stage's resources are
    still open — is the provenance entry ``step`` appended to the input's provenance.
    """
    replaced = [c for c in (features if replaces is None else replaces) if c in ds.column_names]
    out = map_in_shards(
        ds,
        fn,
        desc=desc or step,
        fingerprint=fingerprint,
        work_dir=work_dir,
        shard_size=shard_size,
        batch_size=shard_size,
        remove_columns=replaced,
    )
    for name, feature in features.items():
        if name in out.column_names and out.features[name] != feature:
            out = out.cast_column(name, feature)
    return with_provenance(out, step, record(), base=get_provenance(ds))
