"""Dynamic solution selection (Code-Optimise §3.4): a fresh pair / solution per problem per epoch.

The paper re-samples, at the start of every epoch, one preference pair per problem for DPO and one
passing solution (from the top-N% fastest) per problem for SFT, instead of training on a fixed draw.
Here that is two map-style datasets whose item ``i`` is problem ``i``'s draw for the current epoch,
and a :class:`ResampleCallback` whose ``on_epoch_begin`` moves them to the next epoch — TRL's and
transformers' public extension points; no trainer internals are overridden. Draws use a seeded RNG
keyed by ``(seed, epoch, problem)``: the same seed gives the same pairs, whatever the order items are
read in (shuffling, workers, resumption).

Both datasets are built from what the TRL trainer already tokenised (and, for DPO, scored with the
reference model once per unique completion: :mod:`codepref.training.reference`), and replace the
trainer's ``train_dataset`` before ``train()``.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict

import numpy as np
import torch
from datasets import Dataset
from transformers import TrainerCallback

from .reference import ReferenceCache, completion_key

logger = logging.getLogger(__name__)


def epoch_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The RNG of one problem's draw in one epoch."""
    return np.random.default_rng([seed, epoch, index])


def unique_draw(seed: int, epoch: int, index: int, size: int) -> int:
    """Problem ``index``'s draw from a pool of ``size`` in ``epoch``: without replacement.

    Code-Optimise §3.4 "dynamically select unique pairs ... at the start of a new epoch": epochs come
    in cycles of ``size``; each cycle walks a fresh seeded permutation of the pool, so no item repeats
    until the pool is used up. A function of (seed, epoch, index) alone: any read order gives the same.
    """
    if size < 1:
        raise ValueError("cannot draw from an empty pool")
    cycle, position = divmod(int(epoch), size)
    return int(epoch_rng(seed, cycle, index).permutation(size)[position])


class EpochResampledDataset(torch.utils.data.Dataset):
    """A dataset of one draw per problem; :meth:`set_epoch` selects the epoch whose draws it serves."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class DynamicPairDataset(EpochResampledDataset):
    """DPO: item ``i`` is a pair of problem ``i`` drawn for the current epoch, with its reference logps."""

    def __init__(
        self, candidates: Dataset, cache: ReferenceCache, seed: int = 0, kinds: list[str] | None = None
    ) -> None:
        super().__init__(seed)
        self.cache = cache
        self.task_ids: list[str] = []
        self.pairs: list[list[tuple[str, str, int, int]]] = []  # per problem: (chosen key, rejected key, i, j)
        dropped = 0
        for row in candidates:
            keep = []
            for p in row["pairs"]:
                if kinds is not None and p["kind"] not in kinds:
                    continue
                kc = completion_key(row["prompt"], row["responses"][p["chosen"]])
                kr = completion_key(row["prompt"], row["responses"][p["rejected"]])
                if kc in cache and kr in cache:
                    keep.append((kc, kr, p["chosen"], p["rejected"]))
                else:
                    dropped += 1  # truncated away by max_length during TRL's preparation
            if keep:
                self.task_ids.append(row["task_id"])
                self.pairs.append(keep)
        if dropped:
            logger.warning("dynamic DPO: %d pairs dropped (completion missing from the reference cache)", dropped)
        if not self.pairs:
            raise ValueError("dynamic DPO: no problem has a usable pair")

    def __len__(self) -> int:
        return len(self.pairs)

    def draw(self, index: int, epoch: int | None = None) -> tuple[str, str, int, int]:
        pairs = self.pairs[index]
        return pairs[unique_draw(self.seed, self.epoch if epoch is None else epoch, index, len(pairs))]

    def pairs_for_epoch(self, epoch: int) -> list[tuple[str, int, int]]:
        """``(task_id, chosen index, rejected index)`` of every problem in ``epoch``."""
        return [(t, *self.draw(i, epoch)[2:]) for i, t in enumerate(self.task_ids)]

    def __getitem__(self, index: int) -> dict:
        kc, kr, _, _ = self.draw(index)
        c = self.cache
        return {
            "prompt_ids": c.prompt_ids[kc],
            "chosen_ids": c.completion_ids[kc],
            "rejected_ids": c.completion_ids[kr],
            "ref_chosen_logps": c.logps[kc],
            "ref_rejected_logps": c.logps[kr],
        }


def sft_pool(candidates: Dataset) -> Dataset:
    """SFT: every solution of every problem's top-N% pool (the candidates' ``sft`` indices), once."""
    rows = []
    for row in candidates:
        seen = set()
        for i in row["sft"]:
            key = completion_key(row["prompt"], row["responses"][i])
            if key not in seen:
                seen.add(key)
                rows.append(
                    {
                        "task_id": row["task_id"],
                        "prompt": row["prompt"],
                        "completion": row["responses"][i],
                        "response_index": i,
                    }
                )
    if not rows:
        raise ValueError("the candidates dataset has no SFT solutions (empty `sft` lists)")
    return Dataset.from_list(rows)


class DynamicSFTDataset(EpochResampledDataset):
    """SFT: item ``i`` is one solution of problem ``i``'s pool, drawn for the current epoch.

    ``prepared`` is :func:`sft_pool` after TRL's SFT preparation (``input_ids`` / ``labels``).
    """

    FIELDS = ("input_ids", "labels", "seq_lengths")

    def __init__(self, prepared: Dataset, seed: int = 0) -> None:
        super().__init__(seed)
        if "task_id" not in prepared.column_names:
            raise ValueError("the prepared SFT pool lost its task_id column")
        groups: dict[str, list[int]] = defaultdict(list)
        for j, task_id in enumerate(prepared["task_id"]):
            groups[task_id].append(j)
        self.task_ids = sorted(groups)
        self.groups = [groups[t] for t in self.task_ids]
        self.fields = [f for f in self.FIELDS if f in prepared.column_names]
        self.rows = prepared.select_columns(self.fields + ["response_index"])

    def __len__(self) -> int:
        return len(self.groups)

    def draw(self, index: int, epoch: int | None = None) -> int:
        group = self.groups[index]
        return group[unique_draw(self.seed, self.epoch if epoch is None else epoch, index, len(group))]

    def solutions_for_epoch(self, epoch: int) -> list[tuple[str, int]]:
        """``(task_id, response index)`` of every problem in ``epoch``."""
        return [(t, self.rows[self.draw(i, epoch)]["response_index"]) for i, t in enumerate(self.task_ids)]

    def __getitem__(self, index: int) -> dict:
        row = self.rows[self.draw(index)]
        return {f: row[f] for f in self.fields}


class ResampleCallback(TrainerCallback):
    """Move an :class:`EpochResampledDataset` to the epoch that is starting (Code-Optimise §3.4)."""

    def __init__(self, dataset: EpochResampledDataset) -> None:
        self.dataset = dataset
        self.epochs_seen: list[int] = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        epoch = math.floor((state.epoch or 0.0) + 1e-6)
        self.dataset.set_epoch(epoch)
        self.epochs_seen.append(epoch)
        return control


def expand_pairs(candidates: Dataset, kinds: list[str] | None = None) -> Dataset:
    """Every pair of a candidates dataset as preference rows (a static eval set for dynamic DPO)."""
    rows = [
        {
            "task_id": r["task_id"],
            "prompt": r["prompt"],
            "chosen": r["responses"][p["chosen"]],
            "rejected": r["responses"][p["rejected"]],
            "kind": p["kind"],
        }
        for r in candidates
        for p in r["pairs"]
        if kinds is None or p["kind"] in kinds
    ]
    return Dataset.from_list(rows)


def first_draw(candidates: Dataset, seed: int = 0, kinds: list[str] | None = None) -> Dataset:
    """The static baseline: one pair per problem drawn once (epoch 0's draw), as preference rows."""
    rows = []
    for i, r in enumerate(candidates):
        pairs = [p for p in r["pairs"] if kinds is None or p["kind"] in kinds]
        if pairs:
            p = pairs[unique_draw(seed, 0, i, len(pairs))]
            rows.append(
                {
                    "task_id": r["task_id"],
                    "prompt": r["prompt"],
                    "chosen": r["responses"][p["chosen"]],
                    "rejected": r["responses"][p["rejected"]],
                    "kind": p["kind"],
                }
            )
    return Dataset.from_list(rows)
