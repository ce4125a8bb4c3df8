"""Reference log-probabilities computed once per unique (prompt, completion) and reused.

Dynamic DPO (Code-Optimise §3.4) draws a new pair per problem every epoch, so a pair-level cache
would recompute the same completions again and again. Instead every *unique* completion a pair can
use is scored by the reference model once, before training, and each epoch's pairs look their
scores up. TRL 1.12 supports exactly this through ``DPOConfig(precompute_ref_log_probs=True)``: the
trainer scores its ``train_dataset`` once at construction (with the reference model, or with the
LoRA adapter disabled) and its loss then reads the ``ref_chosen_logps`` / ``ref_rejected_logps``
columns of each batch instead of running the reference model.

So the dataset the trainer is built with is the **reference table**: each problem's unique
completions laid out two by two as pseudo-pairs (``chosen`` = the 2k-th, ``rejected`` = the
(2k+1)-th), so TRL's own tokenisation and reference pass score each unique completion once
(a problem with an odd count scores its last completion twice: one padding sequence). The cache
is then read back from the prepared table (:meth:`ReferenceCache.from_prepared`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset


def completion_key(prompt: Any, completion: Any) -> str:
    """A stable key of one (prompt, completion): identical texts share one reference score."""
    blob = json.dumps([prompt, completion], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode()).hexdigest()


def drawable_responses(row: dict, kinds: list[str] | None = None) -> list[int]:
    """Indices of the responses that appear in some (kind-filtered) pair of a candidates row."""
    used = {i for p in row["pairs"] if kinds is None or p["kind"] in kinds for i in (p["chosen"], p["rejected"])}
    return sorted(used)


def reference_table(candidates: Dataset, kinds: list[str] | None = None) -> Dataset:
    """Each problem's unique drawable completions as pseudo-pairs (see the module docstring)."""
    rows: list[dict] = []
    for row in candidates:
        seen: dict[str, Any] = {}
        for i in drawable_responses(row, kinds):
            seen.setdefault(completion_key(row["prompt"], row["responses"][i]), row["responses"][i])
        items = list(seen.items())
        if len(items) % 2:
            items.append(items[-1])  # padding: one extra sequence for an odd count
        for (ka, a), (kb, b) in zip(items[0::2], items[1::2], strict=True):
            rows.append(
                {
                    "task_id": row["task_id"],
                    "prompt": row["prompt"],
                    "chosen": a,
                    "rejected": b,
                    "chosen_key": ka,
                    "rejected_key": kb,
                }
            )
    if not rows:
        raise ValueError("the candidates dataset has no drawable pairs (check pair_kinds)")
    return Dataset.from_list(rows)


@dataclass
class ReferenceCache:
    """Tokenised completions and their reference log-probability, by :func:`completion_key`."""

    prompt_ids: dict[str, list[int]] = field(default_factory=dict)
    completion_ids: dict[str, list[int]] = field(default_factory=dict)
    logps: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_prepared(cls, prepared: Dataset) -> ReferenceCache:
        """Read the cache back from the reference table after TRL tokenised and scored it."""
        cols = [
            "prompt_ids",
            "chosen_ids",
            "rejected_ids",
            "ref_chosen_logps",
            "ref_rejected_logps",
            "chosen_key",
            "rejected_key",
        ]
        missing = [c for c in cols if c not in prepared.column_names]
        if missing:
            raise ValueError(
                f"reference table lacks {missing}: build the DPOTrainer with precompute_ref_log_probs=True"
            )
        d = prepared.select_columns(cols).to_dict()
        cache = cls()
        for side in ("chosen", "rejected"):
            for key, p, c, lp in zip(
                d[f"{side}_key"], d["prompt_ids"], d[f"{side}_ids"], d[f"ref_{side}_logps"], strict=True
            ):
                cache.prompt_ids[key], cache.completion_ids[key], cache.logps[key] = p, c, float(lp)
        return cache

    def __len__(self) -> int:
        return len(self.logps)

    def __contains__(self, key: str) -> bool:
        return key in self.logps


@dataclass
class ForwardCount:
    """Sequences the model ran without gradients (reference passes) and with them (policy passes)."""

    reference: int = 0
    policy: int = 0


@contextlib.contextmanager
def count_forwards(model: torch.nn.Module | type[torch.nn.Module]) -> Iterator[ForwardCount]:
    """Count the sequences a model processes; no-grad forwards are the reference passes.

    ``model`` is a module, or a module class (a model the trainer loads itself from a path): then
    the class's ``forward`` is wrapped for the duration of the block (a measuring tool for tests
    and benchmarks, not used in training).
    """
    count = ForwardCount()

    def record(args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        n = 0 if ids is None else int(ids.shape[0])
        if torch.is_grad_enabled():
            count.policy += n
        else:
            count.reference += n

    if isinstance(model, type):
        original = model.forward

        @functools.wraps(original)
        def forward(self, *args, **kwargs):
            record(args, kwargs)
            return original(self, *args, **kwargs)

        model.forward = forward
        try:
            yield count
        finally:
            model.forward = original
        return
    handle = model.register_forward_pre_hook(lambda _m, args, kwargs: record(args, kwargs), with_kwargs=True)
    try:
        yield count
    finally:
        handle.remove()
