"""Reading and writing datasets by path: ``save_to_disk`` folders, ``.jsonl`` and ``.parquet``.

Every CLI stage takes ``IN`` and ``OUT`` paths; the suffix picks the format. A folder is a
``Dataset.save_to_disk`` folder (fastest, keeps features exactly).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from .errors import DataError

_FILE_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}  # csv: read only


def read_dataset(path: str | os.PathLike, split: str | None = None) -> Dataset:
    """Load a dataset saved by :func:`write_dataset` (or any jsonl/parquet file of rows)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"no dataset at {str(p)!r}", source=str(p))
    suffix = p.suffix.lower()
    if p.is_file():
        if suffix not in _FILE_FORMATS:
            raise DataError(
                f"unknown dataset file type {suffix!r} (use .jsonl, .parquet, .csv or a folder)", source=str(p)
            )
        return _read_file(p, _FILE_FORMATS[suffix])
    obj = load_from_disk(str(p))
    if isinstance(obj, DatasetDict):
        if split is None:
            if len(obj) != 1:
                raise DataError(f"folder holds splits {list(obj)}; choose one with split=", source=str(p))
            split = next(iter(obj))
        return obj[split]
    return obj


def _read_file(path: Path, fmt: str) -> Dataset:
    """A .jsonl/.json/.parquet file as a Dataset; a file that cannot be read is one DataError naming the file
    and, for JSON lines, the line and the field."""
    lines = path.suffix.lower() == ".jsonl" or (fmt == "json" and not _head(path).lstrip().startswith(b"["))
    if lines:
        _check_json_lines(path)
    try:
        return load_dataset(fmt, data_files=str(path), split="train")
    except Exception as e:  # datasets wraps pyarrow's errors in its own; name the place instead of a traceback
        if lines:
            _check_field_types(path)
        raise DataError(f"cannot be read as {fmt}: {_root_cause(e)}", source=str(path)) from None


def _head(path: Path, size: int = 1024) -> bytes:
    with path.open("rb") as f:  # a peek, not the whole file
        return f.read(size)


def _json_rows(path: Path):
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                yield number, raw


def _check_json_lines(path: Path) -> None:
    for number, raw in _json_rows(path):
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(
                f"line {number}: not valid JSON ({e.msg} at character {e.pos})", source=str(path)
            ) from None
        except UnicodeDecodeError as e:
            raise DataError(f"line {number}: not UTF-8 ({e.reason})", source=str(path)) from None
        if not isinstance(row, dict):
            raise DataError(f"line {number}: expected a JSON object, got {type(row).__name__}", source=str(path))


def _kind(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _check_field_types(path: Path) -> None:
    """Raise DataError at the first line whose field has another type than on an earlier line."""
    first: dict[str, tuple[str, int]] = {}
    for number, raw in _json_rows(path):
        for name, value in json.loads(raw).items():
            kind = _kind(value)
            if kind is None:
                continue
            seen = first.setdefault(name, (kind, number))
            if seen[0] != kind:
                raise DataError(
                    f"line {number}: {kind}, but {seen[0]} on line {seen[1]} (one type per column)",
                    field=name,
                    source=str(path),
                )


def _root_cause(e: BaseException) -> str:
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


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
