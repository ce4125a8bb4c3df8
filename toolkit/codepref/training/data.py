"""Loading a published dataset for a recipe: by name + config + revision, or from a local path.

A recipe must run without the rest of the pipeline having run on the same machine (GUIDE.md,
"Recipes are independent"), so the order is: a local path (``save_to_disk`` folder, ``.jsonl``,
``.parquet``) → the codepref store (:func:`codepref.hub.pull`: the embedded local git store, or the
Hub for ``hf://`` repos) → 🤗 ``datasets.load_dataset(name, config, revision=...)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, load_dataset

logger = logging.getLogger(__name__)


@dataclass
class RecipeArguments:
    """What every recipe script reads besides the model and the TRL config."""

    dataset_name: str = field(
        default="demo/humaneval-smollm2",
        metadata={"help": "Published dataset repo (local store or Hub), or a local folder / .jsonl / .parquet"},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset config, e.g. pairs-all, candidates"})
    dataset_revision: str | None = field(default=None, metadata={"help": "Version tag (e.g. v1), branch or commit"})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on"})
    dataset_test_split: str | None = field(
        default=None, metadata={"help": "Split to evaluate on; when absent, eval_fraction holds out problems"}
    )
    eval_fraction: float = field(
        default=0.0, metadata={"help": "Hold out this fraction of problems (by task_id) for validation"}
    )
    eval_source_split: str | None = field(
        default=None,
        metadata={
            "help": "Validate on the problems of this split of the source benchmark (e.g. validation: MBPP's task "
            "ids 511-600, as Code-Optimise does); takes precedence over eval_fraction"
        },
    )
    dynamic_selection: bool = field(
        default=False,
        metadata={"help": "Code-Optimise §3.4: re-draw one pair (DPO) / one solution (SFT) per problem per epoch"},
    )
    selection_seed: int = field(default=0, metadata={"help": "Seed of the per-epoch draws"})
    pair_kinds: list[str] | None = field(
        default=None, metadata={"help": "Dynamic DPO: draw only pairs of these kinds (e.g. qvs pvf)"}
    )


def resolve_model_path(name_or_path: str) -> str:
    """An embedded model name (``smollm2-135m-instruct``) becomes its converted local folder."""
    try:
        from codepref.sampling import resolve_model
    except ImportError:  # pragma: no cover - sampling is part of the package
        return name_or_path
    return resolve_model(name_or_path)


def load_recipe_dataset(
    name: str, config: str | None = None, revision: str | None = None, split: str | None = None
) -> Dataset | DatasetDict:
    """A published dataset by ``name`` + ``config`` + ``revision`` (see the module docstring)."""
    if Path(name).exists():
        from codepref.dataset_io import read_dataset

        path = Path(name)
        if path.is_dir() and config and (path / config).exists():  # a folder of configs
            path = path / config
        if path.is_dir() and not (path / "dataset_info.json").exists() and not (path / "dataset_dict.json").exists():
            return load_dataset(str(path), name=config, split=split)  # a Hub-layout folder
        try:
            return read_dataset(path, split=split)
        except Exception:
            return _as_dict(read_dataset(path))
    try:
        from codepref.hub import pull
    except ImportError:
        pull = None
    if pull is not None:
        try:
            return pull(name, config=config or "default", revision=revision or "main", split=split)
        except Exception as err:  # not in the codepref store: try 🤗 datasets (Hub / HF cache)
            logger.info(
                "codepref store has no %s/%s@%s (%s); trying datasets.load_dataset", name, config, revision, err
            )
    return load_dataset(name, config, revision=revision, split=split)


def _as_dict(obj: Dataset | DatasetDict) -> DatasetDict:
    return obj if isinstance(obj, DatasetDict) else DatasetDict({"train": obj})


def split_by_problem(ds: Dataset, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset | None]:
    """Hold out ``fraction`` of the problems (all rows of a task_id go to one side): no leakage."""
    if fraction <= 0:
        return ds, None
    ids = sorted(set(ds["task_id"]))
    rng = np.random.default_rng(seed)
    n_eval = max(1, round(fraction * len(ids)))
    held = set(rng.permutation(ids)[:n_eval].tolist())
    return ds.filter(lambda r: r["task_id"] not in held), ds.filter(lambda r: r["task_id"] in held)


def train_eval_datasets(args: RecipeArguments, config: str | None = None) -> tuple[Dataset, Dataset | None]:
    """The train split, and an eval split (a named split, or problems held out by ``eval_fraction``)."""
    data = _as_dict(load_recipe_dataset(args.dataset_name, config or args.dataset_config, args.dataset_revision))
    if args.dataset_train_split not in data:
        raise KeyError(f"dataset {args.dataset_name!r} has splits {list(data)}, not {args.dataset_train_split!r}")
    train = data[args.dataset_train_split]
    if args.dataset_test_split and args.dataset_test_split in data:
        return train, data[args.dataset_test_split]
    if args.eval_source_split:
        return split_by_source(train, args.eval_source_split)
    return split_by_problem(train, args.eval_fraction, args.selection_seed)


def split_by_source(ds: Dataset, split: str) -> tuple[Dataset, Dataset]:
    """(the other problems, the problems of the source benchmark's ``split``), by task id."""
    from codepref.problems.mbpp import mbpp_split_of

    held = {t for t in set(ds["task_id"]) if mbpp_split_of(t) == split}
    if not held:
        raise ValueError(
            f"eval_source_split={split!r}: no problem of the dataset comes from that split of its source "
            "(known for MBPP task ids); use eval_fraction instead"
        )
    return ds.filter(lambda r: r["task_id"] not in held), ds.filter(lambda r: r["task_id"] in held)


def last_checkpoint(output_dir: str | None) -> str | None:
    """The newest ``checkpoint-N`` folder in ``output_dir`` (None if there is none): a recipe run again
    with the same ``output_dir`` resumes from it, as alignment-handbook's scripts do."""
    if not output_dir or not Path(output_dir).is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    found = get_last_checkpoint(output_dir)
    if found is not None:
        logger.info("resuming from %s", found)
    return found
