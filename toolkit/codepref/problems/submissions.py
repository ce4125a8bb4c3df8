"""The ``submissions`` stage: a benchmark's own judged submissions as samples (IotaCode §3).

"Preferred completions are those with an 'OK' verdict, while all other completions are considered
dispreferred" (IotaCode): CodeContests ships, per problem, the human ``solutions`` (OK) and
``incorrect_solutions`` (any other verdict). This stage turns them into the pipeline's sample
columns — ``samples`` (correct ones first) and ``passed`` (the verdicts) — so the IotaCode pair
policy (Levenshtein-closest or random negatives) and every export work on them as on model samples.
Run ``execute`` afterwards to re-judge them in the sandbox instead of trusting the dataset's verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset, List, Value

from ..config import config_to_dict
from ..errors import ConfigError, DataError
from ..provenance import get_provenance, with_provenance
from ..ranking import row_seed

SOURCE_COLUMNS = ("solutions", "incorrect_solutions")


@dataclass
class SubmissionsConfig:
    """How many of each problem's judged submissions become samples."""

    max_correct: int | None = field(
        default=None, metadata={"help": "Keep at most this many correct submissions per problem (seeded); all"}
    )
    max_incorrect: int | None = field(
        default=None, metadata={"help": "Keep at most this many incorrect submissions per problem (seeded); all"}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the draws when a cap applies"})

    def __post_init__(self) -> None:
        for name in ("max_correct", "max_incorrect"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 (or None for all), got {value}")


def _draw(items: list[str], cap: int | None, seed: int) -> list[str]:
    if cap is None or len(items) <= cap:
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), cap, replace=False))
    return [items[k] for k in keep]


def submissions(ds: Dataset, cfg: SubmissionsConfig | None = None) -> Dataset:
    """Add ``samples`` (correct submissions, then incorrect ones) and ``passed`` (their verdicts)."""
    cfg = cfg or SubmissionsConfig()
    missing = [c for c in SOURCE_COLUMNS if c not in ds.column_names]
    if missing:
        raise DataError(
            f"the dataset has no {missing[0]!r} column (columns: {ds.column_names}); load CodeContests problems "
            "(problems: {source: codecontests}) to get its judged submissions",
            field=missing[0],
        )

    def fn(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"samples": [], "passed": []}
        for r, task_id in enumerate(batch["task_id"]):
            good, bad = batch["solutions"][r], batch["incorrect_solutions"][r]
            for name, value in (("solutions", good), ("incorrect_solutions", bad)):
                if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                    raise DataError("must be a list of programs", task_id=task_id, field=name, row=r)
            seed = row_seed(cfg.seed, task_id)
            good, bad = _draw(good, cfg.max_correct, seed), _draw(bad, cfg.max_incorrect, seed + 1)
            out["samples"].append(good + bad)
            out["passed"].append([True] * len(good) + [False] * len(bad))
        return out

    replaced = [c for c in ("samples", "passed", "completions") if c in ds.column_names]
    result = ds.map(fn, batched=True, remove_columns=replaced, desc=None)
    result = result.cast_column("samples", List(Value("string"))).cast_column("passed", List(Value("bool")))
    record = {**config_to_dict(cfg), "verdicts": "the dataset's own (OK = passed)"}
    return with_provenance(result, "submissions", record, base=get_provenance(ds))
