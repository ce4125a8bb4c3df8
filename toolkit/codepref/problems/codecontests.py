"""CodeContests (Li et al., 2022; AlphaCode): stdin/stdout problems, as IotaCode uses them.

Hidden tests (``io_tests``) are the private and generated tests; the public ones go to
``public_io_tests`` for AlphaCode's n@k filtering. ``canonical_solution`` is the first
Python 3 solution when the row has one. The human submissions in Python 3 are kept as
``solutions`` (verdict OK) and ``incorrect_solutions`` (any other verdict): IotaCode's preference
data (see :mod:`codepref.problems.submissions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset, List, Value, load_dataset

from ..dataset_io import read_dataset
from ..errors import DataError
from .schema import PROBLEM_FEATURES, build_problems

HUB_ID = "deepmind/code_contests"
PYTHON3 = 3  # CodeContests' language enum: 1 Python 2, 2 C++, 3 Python 3, 4 Java
PROMPT = (
    "{description}\n\nWrite a Python 3 program that reads the input from standard input and writes the "
    "answer to standard output.\n"
)
INSTRUCTION = PROMPT + "Reply with the complete program in a single ```python code block."


def _tests(raw: dict[str, Any], key: str, *, task_id: str, index: int, source: str) -> tuple[list[str], list[str]]:
    value = raw.get(key) or {"input": [], "output": []}
    ins, outs = value.get("input") or [], value.get("output") or []
    if len(ins) != len(outs):
        raise DataError(
            f"{len(ins)} inputs but {len(outs)} outputs", task_id=task_id, field=key, row=index, source=source
        )
    return list(ins), list(outs)


def codecontests_row(
    raw: dict[str, Any], *, index: int, source: str, hidden=("private_tests", "generated_tests")
) -> dict[str, Any]:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise DataError("missing problem name", field="name", row=index, source=source)
    task_id = f"codecontests/{name.split('.')[0].strip().replace(' ', '_')}"
    if not isinstance(raw.get("description"), str):
        raise DataError("missing or not a string", task_id=task_id, field="description", row=index, source=source)
    ins: list[str] = []
    outs: list[str] = []
    for key in hidden:
        i, o = _tests(raw, key, task_id=task_id, index=index, source=source)
        ins, outs = ins + i, outs + o
    pub_in, pub_out = _tests(raw, "public_tests", task_id=task_id, index=index, source=source)
    if not ins:  # some problems have no private tests: the public ones are all there is
        ins, outs = pub_in, pub_out
    py = _python3(raw, "solutions", task_id=task_id, index=index, source=source)
    return {
        "task_id": task_id,
        "prompt": PROMPT.format(description=raw["description"].strip()),
        "instruction": INSTRUCTION.format(description=raw["description"].strip()),
        "entry_point": None,
        "tests": [],
        "io_tests": {"input": ins, "output": outs},
        "public_io_tests": {"input": pub_in, "output": pub_out},
        "canonical_solution": py[0] if py else None,
        "solutions": py,
        "incorrect_solutions": _python3(raw, "incorrect_solutions", task_id=task_id, index=index, source=source),
    }


def _python3(raw: dict[str, Any], key: str, *, task_id: str, index: int, source: str) -> list[str]:
    value = raw.get(key) or {}
    langs, sols = value.get("language") or [], value.get("solution") or []
    if len(langs) != len(sols):
        raise DataError(
            f"{len(langs)} languages but {len(sols)} solutions", task_id=task_id, field=key, row=index, source=source
        )
    return [s for lang, s in zip(langs, sols, strict=True) if lang == PYTHON3 and isinstance(s, str) and s.strip()]


def load_codecontests(split: str = "test", *, source: str | None = None, revision: str | None = None) -> Dataset:
    """CodeContests problems of one split (``train``/``valid``/``test``) from the Hub or a local file/folder."""
    src = source or HUB_ID
    path = Path(src)
    if path.is_file():
        raws = read_dataset(path)
    else:
        raws = load_dataset(src, split=split, revision=revision)
    rows = [codecontests_row(dict(r), index=i, source=src) for i, r in enumerate(raws)]
    extra = {key: [r.pop(key) for r in rows] for key in ("public_io_tests", "solutions", "incorrect_solutions")}
    ds = build_problems(rows, source=src)
    ds = ds.add_column("public_io_tests", extra["public_io_tests"], feature=PROBLEM_FEATURES["io_tests"])
    for key in ("solutions", "incorrect_solutions"):
        ds = ds.add_column(key, extra[key], feature=List(Value("string")))
    return ds
