"""The problem schema (SPEC §3): the columns every loader returns, and row validation."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

from datasets import Dataset, Features, List, Value

from ..errors import DataError

PROBLEM_FEATURES = Features(
    {
        "task_id": Value("string"),
        "prompt": Value("string"),
        "instruction": Value("string"),
        "entry_point": Value("string"),
        "tests": List(Value("string")),
        "test_setup": Value("string"),
        "io_tests": {"input": List(Value("string")), "output": List(Value("string"))},
        "canonical_solution": Value("string"),
    }
)
PROBLEM_COLUMNS = list(PROBLEM_FEATURES)
_REQUIRED_TEXT = ("task_id",)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def validate_problem(row: Mapping[str, Any], *, index: int | None = None, source: str | None = None) -> None:
    """Raise :class:`DataError` naming the row and field if ``row`` breaks the schema."""
    task_id = row.get("task_id")

    def fail(field: str, msg: str) -> DataError:
        return DataError(
            msg, task_id=task_id if isinstance(task_id, str) else None, field=field, row=index, source=source
        )

    if not isinstance(task_id, str) or not task_id:
        raise fail("task_id", f"must be a non-empty string, got {task_id!r}")
    for name in ("prompt", "instruction", "test_setup"):
        if not isinstance(row.get(name), str):
            raise fail(name, f"must be a string, got {type(row.get(name)).__name__}")
    if not row["prompt"] and not row["instruction"]:
        raise fail("prompt", "a problem needs a prompt or an instruction")
    for name in ("entry_point", "canonical_solution"):
        if row.get(name) is not None and not isinstance(row[name], str):
            raise fail(name, f"must be a string or null, got {type(row[name]).__name__}")
    tests, io = row.get("tests"), row.get("io_tests")
    if not _is_str_list(tests):
        raise fail("tests", f"must be a list of strings, got {tests!r:.80}")
    for j, test in enumerate(tests):
        try:
            ast.parse(test)
        except SyntaxError as e:
            raise fail("tests", f"test {j} is not valid Python ({e.msg}, line {e.lineno}): {test!r:.80}") from None
    if io is not None:
        if not isinstance(io, Mapping) or not _is_str_list(io.get("input")) or not _is_str_list(io.get("output")):
            raise fail("io_tests", "must be {'input': list[str], 'output': list[str]}")
        if len(io["input"]) != len(io["output"]):
            raise fail("io_tests", f"{len(io['input'])} inputs but {len(io['output'])} outputs")
    if not tests and not (io and io["input"]):
        raise fail("tests", "a problem needs at least one test (tests or io_tests)")


def build_problems(rows: Iterable[Mapping[str, Any]], *, source: str) -> Dataset:
    """Validate rows (filling optional columns) and return them as a schema-typed Dataset."""
    out = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        full = {
            "instruction": "",
            "test_setup": "",
            "entry_point": None,
            "io_tests": None,
            "canonical_solution": None,
            "tests": [],
            **row,
        }
        validate_problem(full, index=i, source=source)
        if full["task_id"] in seen:
            raise DataError(
                f"duplicate task_id (first seen in row {seen[full['task_id']]})",
                task_id=full["task_id"],
                field="task_id",
                row=i,
                source=source,
            )
        seen[full["task_id"]] = i
        out.append({k: full[k] for k in PROBLEM_COLUMNS})
    return Dataset.from_list(out, features=PROBLEM_FEATURES)
