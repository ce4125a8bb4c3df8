"""training: the small set of helpers the recipes in ``recipes/`` share (SPEC §4.8).

- :mod:`.data` — load a published dataset by name + config + revision (or a local path);
- :mod:`.dynamic` — Code-Optimise §3.4 dynamic solution selection: per-epoch re-drawn pair / solution
  datasets and the callback that advances them;
- :mod:`.reference` — reference log-probs computed once per unique completion and reused;
- :mod:`.rewards` — the execution reward for GRPO (sandboxed, out of the trainer's process).

Imports are light: torch/transformers load only with the sub-modules that need them.
"""

from .data import (
    RecipeArguments,
    last_checkpoint,
    load_recipe_dataset,
    resolve_model_path,
    split_by_problem,
    train_eval_datasets,
)

__all__ = [
    "RecipeArguments",
    "last_checkpoint",
    "load_recipe_dataset",
    "resolve_model_path",
    "split_by_problem",
    "train_eval_datasets",
]
