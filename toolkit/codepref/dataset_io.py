"""Reading and writing datasets by path: ``save_to_disk`` folders, ``.jsonl`` and ``.parquet``.

Every CLI stage takes ``IN`` and ``OUT`` paths; the suffix picks the format. A folder is a
``Dataset.save_to_disk`` folder (fastest, keeps features exactly).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from .errors import DataError

_FILE_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def read_dataset(path: str | os.PathLike, split: str | None = None) -> Dataset:
    """Load a dataset saved by :func:`write_dataset` (or any jsonl/parquet file of rows)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"no dataset at {str(p)!r}", source=str(p))
    suffix = p.suffix.lower()
    if p.is_file():
        if suffix not in _FILE_FORMATS:
            raise DataError(f"unknown dataset file type {suffix!r} (use .jsonl, .parquet or a folder)", source=str(p))
        return load_dataset(_FILE_FORMATS[suffix], data_files=str(p), split="train")
    obj = load_from_disk(str(p))
    if isinstance(obj, DatasetDict):
        if split is None:
            if len(obj) != 1:
                raise DataError(f"folder holds splits {list(obj)}; choose one with split=", source=str(p))
            split = next(iter(obj))
        return obj[split]
    return obj


def write_dataset(ds: Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically (a crash never leaves a half-written dataset)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = p.suffix.lower()
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent))
    try:
        if suffix in (".jsonl", ".json"):
            ds.to_json(str(tmp / "data"), lines=True, force_ascii=False)
            os.replace(tmp / "data", p)
        elif suffix == ".parquet":
            ds.to_parquet(str(tmp / "data"))
            os.replace(tmp / "data", p)
        else:
            ds.save_to_disk(str(tmp / "data"))
            if p.exists():
                shutil.rmtree(p)
            os.replace(tmp / "data", p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return p


@dataclass
class LoadConfig:
    """A pipeline stage that starts from an existing dataset (e.g. samples made elsewhere)."""

    path: str = field(metadata={"help": "Dataset folder (save_to_disk), .jsonl or .parquet file"})
    split: str | None = field(default=None, metadata={"help": "Split, for a folder holding several"})


def load_stage(cfg: LoadConfig) -> Dataset:
    """The ``load`` pipeline stage: :func:`read_dataset` of ``cfg.path``."""
    return read_dataset(cfg.path, split=cfg.split)
