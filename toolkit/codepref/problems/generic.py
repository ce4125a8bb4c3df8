"""Any Hub or local dataset as problems, through a column mapping."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasets import load_dataset

from ..dataset_io import read_dataset
from ..errors import DataError
from .schema import PROBLEM_COLUMNS, build_problems
from .test_units import split_asserts


def _open(source: str, *, config: str | None, split: str, revision: str | None):
    path = Path(source)
    if path.is_file():
        return read_dataset(path)
    return load_dataset(source, config, split=split, revision=revision)


def _as_tests(value: Any, *, task_id: str, index: int, source: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # one block of asserts → one unit per assert
        try:
            return split_asserts(value)
        except SyntaxError as e:
            raise DataError(
                f"tests are not valid Python ({e.msg}, line {e.lineno})",
                task_id=task_id,
                field="tests",
                row=index,
                source=source,
            ) from None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    raise DataError(
        f"tests must be a string or a list of strings, got {type(value).__name__}",
        task_id=task_id,
        field="tests",
        row=index,
        source=source,
    )


def load_generic(
    source: str,
    *,
    mapping: Mapping[str, str] | None = None,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    prefix: str | None = None,
):
    """Problems from any dataset whose columns ``mapping`` names (schema column → source column).

    Unmapped schema columns are taken from a same-named source column when present.
    ``tests`` may be a list of units or one block of asserts (split per assert). ``task_id``
    values get ``prefix/`` in front when ``prefix`` is given.
    """
    mapping = dict(mapping or {})
    unknown = set(mapping) - set(PROBLEM_COLUMNS)
    if unknown:
        raise DataError(
            f"mapping names unknown schema columns {sorted(unknown)}; known: {PROBLEM_COLUMNS}", field="mapping"
        )
    raw = _open(source, config=config, split=split, revision=revision)
    missing = sorted(c for c in mapping.values() if c not in raw.column_names)
    if missing:
        raise DataError(
            f"mapped columns {missing} are not in the dataset (columns: {raw.column_names})",
            field="mapping",
            source=source,
        )

    def rows():
        for i, r in enumerate(raw):
            row = {col: r[mapping.get(col, col)] for col in PROBLEM_COLUMNS if mapping.get(col, col) in r}
            tid = row.get("task_id")
            tid = str(tid) if tid is not None else str(i)
            row["task_id"] = f"{prefix}/{tid}" if prefix else tid
            row["tests"] = _as_tests(row.get("tests"), task_id=row["task_id"], index=i, source=source)
            for text_col in ("prompt", "instruction", "test_setup"):
                row[text_col] = row.get(text_col) or ""
            yield row

    return build_problems(rows(), source=source)
