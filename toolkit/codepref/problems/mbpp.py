"""MBPP (Austin et al., 2021; CC-BY-4.0): full (974) and sanitized (427).

Loaded from the Hub (``google-research-datasets/mbpp``, configs ``full``/``sanitized``), from
any Hub-style folder with the same layout, or from a local JSONL/parquet in MBPP's own
schema (``task_id, text, code, test_list, test_setup_code``). The completion prompt is the
paper's standard 3-shot prompt (tasks 2, 3, 4 of the ``prompt`` split, ``[BEGIN]``/``[DONE]``).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from datasets import Dataset, load_dataset

from ..dataset_io import read_dataset
from ..errors import DataError
from .schema import build_problems

HUB_ID = "google-research-datasets/mbpp"
SPLITS = ("train", "validation", "test", "prompt")
# The original split by task id (Austin et al., 2021, §2.1): used for local files.
SPLIT_RANGES = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
}


def mbpp_split_of(task_id: str) -> str | None:
    """The original MBPP split of ``mbpp/<n>`` (or ``mbpp-sanitized/<n>``, ``mbpp-plus/<n>``); None otherwise."""
    prefix, _, number = str(task_id).partition("/")
    if not prefix.startswith("mbpp") or not number.isdigit():
        return None
    return next((name for name, ids in SPLIT_RANGES.items() if int(number) in ids), None)


# Tasks 2, 3 and 4 of MBPP's prompt split: the standard 3-shot examples.
FEW_SHOT = (
    (
        "Write a function to find the similar elements from the given two tuple lists.",
        "def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n"
        "  return (res) ",
        [
            "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
            "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
            "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)",
        ],
    ),
    (
        "Write a python function to identify non-prime numbers.",
        "import math\r\ndef is_not_prime(n):\r\n    result = False\r\n    for i in range(2,int(math.sqrt(n)) + 1):"
        "\r\n        if n % i == 0:\r\n            result = True\r\n    return result",
        ["assert is_not_prime(2) == False", "assert is_not_prime(10) == True", "assert is_not_prime(35) == True"],
    ),
    (
        "Write a function to find the largest integers from a given list of numbers using heap queue algorithm.",
        "import heapq as hq\r\ndef heap_queue_largest(nums,n):\r\n  largest_nums = hq.nlargest(n, nums)\r\n"
        "  return largest_nums",
        [
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)==[85, 75, 65] ",
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],2)==[85, 75] ",
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],5)==[85, 75, 65, 58, 35]",
        ],
    ),
)
_TASK = (
    "You are an expert Python programmer, and here is your task: {text} "
    "Your code should pass these tests:\n\n{tests}\n"
)
INSTRUCTION_TEMPLATE = (
    "{text}\nYour code should pass these tests:\n\n{tests}\n\nThe function must be named `{entry_point}`. "
    "Reply with the complete Python code in a single ```python code block."
)


def few_shot_prompt(text: str, tests: list[str]) -> str:
    """The standard MBPP 3-shot prompt; the model continues after ``[BEGIN]``."""
    shots = "".join(
        _TASK.format(text=t, tests="\n".join(ts)) + f"[BEGIN]\n{code}\n[DONE]\n" for t, code, ts in FEW_SHOT
    )
    return shots + _TASK.format(text=text, tests="\n".join(tests)) + "[BEGIN]\n"


def entry_point_of(code: str, tests: list[str]) -> str | None:
    """The reference function the tests call: the first called name the code defines."""
    try:
        defined = [n.name for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    except SyntaxError:
        defined = []
    called: list[str] = []
    for test in tests:
        try:
            called += [
                n.func.id
                for n in ast.walk(ast.parse(test))
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            ]
        except SyntaxError:
            continue
    for name in called:
        if name in defined:
            return name
    for name in called:
        if not hasattr(builtins, name):
            return name
    return defined[-1] if defined else None


def mbpp_row(raw: Mapping[str, Any], *, index: int, source: str) -> dict[str, Any]:
    """One MBPP record (full or sanitized schema) → one problem row."""
    tid = raw.get("task_id")
    text = raw.get("text", raw.get("prompt"))  # the sanitized config calls it "prompt"
    tests = raw.get("test_list")
    if not isinstance(tid, int | str) or str(tid) == "":
        raise DataError("missing task_id", field="task_id", row=index, source=source)
    for field, value in (("text", text), ("code", raw.get("code"))):
        if not isinstance(value, str):
            raise DataError("missing or not a string", task_id=f"mbpp/{tid}", field=field, row=index, source=source)
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        raise DataError(
            "must be a non-empty list of strings", task_id=f"mbpp/{tid}", field="test_list", row=index, source=source
        )
    setup = raw.get("test_setup_code")
    if setup is None and raw.get("test_imports") is not None:
        setup = "\n".join(raw["test_imports"])
    # tests use math.isclose without importing math; the evaluation harnesses add the import
    setup = "import math\n" + (setup or "") if "math." in "\n".join(tests) else setup
    entry = entry_point_of(raw["code"], tests)
    return {
        "task_id": f"mbpp/{tid}",
        "prompt": few_shot_prompt(text, tests),
        "instruction": INSTRUCTION_TEMPLATE.format(text=text, tests="\n".join(tests), entry_point=entry),
        "entry_point": entry,
        "tests": [t.strip() for t in tests],
        "test_setup": setup or "",
        "canonical_solution": raw["code"],
    }


def _rows(raws: Iterable[Mapping[str, Any]], source: str) -> Dataset:
    return build_problems((mbpp_row(r, index=i, source=source) for i, r in enumerate(raws)), source=source)


def load_mbpp(
    split: str = "test", *, variant: str = "full", source: str | None = None, revision: str | None = None
) -> Dataset:
    """MBPP problems of one split (``train``/``validation``/``test``/``prompt``; ``all`` for every row;
    ``train+validation`` for several).

    ``source`` is a Hub id or Hub-style folder (default: the official Hub repo, config =
    ``variant``), or a local ``.jsonl``/``.json``/``.parquet`` file in MBPP's own schema, split by
    the paper's task-id ranges.
    """
    if "+" in split:  # e.g. Code-Optimise's "train+validation"
        from datasets import concatenate_datasets

        return concatenate_datasets(
            [load_mbpp(part, variant=variant, source=source, revision=revision) for part in split.split("+")]
        )
    if variant not in ("full", "sanitized"):
        raise DataError(f"unknown MBPP variant {variant!r} (full or sanitized)", field="variant")
    if split != "all" and split not in SPLITS:
        raise DataError(f"unknown MBPP split {split!r} (one of {', '.join(SPLITS)} or all)", field="split")
    src = source or HUB_ID
    path = Path(src)
    if path.is_file():
        raws = read_dataset(path)
        if split != "all":
            wanted = SPLIT_RANGES[split]
            raws = raws.filter(lambda r: int(r["task_id"]) in wanted)
        return _rows(raws, str(path))
    if split == "all":
        parts = load_dataset(src, variant, revision=revision)
        return _rows((r for s in SPLITS if s in parts for r in parts[s]), f"{src}:{variant}")
    return _rows(load_dataset(src, variant, split=split, revision=revision), f"{src}:{variant}:{split}")


PLUS_HUB_ID = "evalplus/mbppplus"


def load_mbpp_plus(source: str | None = None, *, split: str = "test", revision: str | None = None) -> Dataset:
    """MBPP+ (EvalPlus; Liu et al., 2023): sanitized MBPP with far more tests.

    The EvalPlus ``test`` program (inputs, expected results and an ``assertion`` loop) is kept
    as one test unit, as EvalPlus runs it; ``test_imports`` become ``test_setup``.
    """
    src = source or PLUS_HUB_ID
    path = Path(src)
    if path.is_file():
        raws = load_dataset("parquet" if path.suffix == ".parquet" else "json", data_files=str(path), split="train")
    else:
        raws = load_dataset(src, split=split, revision=revision)

    def rows():
        for i, raw in enumerate(raws):
            row = mbpp_row(raw, index=i, source=src)
            row["task_id"] = row["task_id"].replace("mbpp/", "mbpp-plus/", 1)
            if not isinstance(raw.get("test"), str) or not raw["test"].strip():
                raise DataError(
                    "missing the EvalPlus test program", task_id=row["task_id"], field="test", row=i, source=src
                )
            row["tests"] = [raw["test"]]
            yield row

    return build_problems(rows(), source=src)
